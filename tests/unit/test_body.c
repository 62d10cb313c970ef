/* Body framing: the same bytes decode to the same content at every split,
 * and framing errors are caught wherever the split falls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/body.h"

/* Decode `in` fed in two parts split at `split`; returns rc of the end. */
static enum http_body_rc decode(enum http_body_kind kind, uint64_t len, const char *in, size_t n,
                                size_t split, char *out, size_t *outlen, size_t *rest)
{
    struct http_body_reader r;
    http_body_init(&r, kind, len, 1024);
    *outlen = 0;
    size_t pos = 0;
    size_t limit = split;
    for (;;) {
        size_t used;
        struct slice d;
        enum http_body_rc rc = http_body_read(&r, in + pos, limit - pos, &used, &d);
        pos += used;
        if (rc == HTTP_BODY_DATA) {
            memcpy(out + *outlen, d.p, d.len);
            *outlen += d.len;
            continue;
        }
        if (rc == HTTP_BODY_MORE && limit < n) {
            limit = n;
            continue;
        }
        *rest = n - pos;
        return rc;
    }
}

static void test_chunked_all_splits(void **st)
{
    const char *in =
        "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nNEXT";
    size_t n = strlen(in);
    for (size_t split = 0; split <= n; split++) {
        char out[64];
        size_t outlen, rest;
        enum http_body_rc rc = decode(HTTP_BODY_CHUNKED, 0, in, n, split, out, &outlen, &rest);
        assert_int_equal(rc, HTTP_BODY_DONE);
        assert_int_equal(outlen, 31);
        assert_memory_equal(out, "helloabcdefghijklmnopqrstuvwxyz", 31);
        assert_int_equal(rest, 4); /* the next message is not consumed */
    }
}

static void test_length(void **st)
{
    char out[16];
    size_t outlen, rest;
    assert_int_equal(decode(HTTP_BODY_LENGTH, 5, "helloGET", 8, 3, out, &outlen, &rest),
                     HTTP_BODY_DONE);
    assert_int_equal(outlen, 5);
    assert_int_equal(rest, 3);
    struct http_body_reader r;
    http_body_init(&r, HTTP_BODY_LENGTH, 0, 0);
    assert_true(http_body_done(&r));
}

static void test_chunked_errors(void **st)
{
    static const char *bad[] = {
        "x\r\n",                 /* junk size */
        "10000000000000000\r\n", /* 17 hex digits: overflow */
        "5\r\nhelloX\r\n",       /* data longer than size */
        "5\nhello\r\n",          /* bare LF */
        "5 \r\nhello\r\n",       /* BWS without extension */
        "5;\x01\r\nhello\r\n",   /* CTL in extension */
        "0\r\nNoColon\r\n\r\n",  /* trailer without colon */
        "0\r\n: v\r\n\r\n",      /* empty trailer name */
        "0\r\nT: v\r\r\n",       /* bare CR in trailer */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64];
        size_t outlen, rest;
        enum http_body_rc rc = decode(HTTP_BODY_CHUNKED, 0, bad[i], strlen(bad[i]), strlen(bad[i]),
                                      out, &outlen, &rest);
        if (rc != HTTP_BODY_ERROR)
            fail_msg("bad chunked %zu accepted (rc %d)", i, rc);
    }
}

static void test_trailer_limit(void **st)
{
    char in[2100] = "0\r\nX: ";
    memset(in + 6, 'a', 2000);
    memcpy(in + 2006, "\r\n\r\n", 5);
    char out[8];
    size_t outlen, rest;
    assert_int_equal(decode(HTTP_BODY_CHUNKED, 0, in, strlen(in), strlen(in), out, &outlen, &rest),
                     HTTP_BODY_ERROR);
}

/* HTTP_BODY_STREAM (an h2 request without content-length): every byte is
 * content, MORE until the protocol ends the input, then DONE. */
static void test_stream(void **st)
{
    static const struct {
        const char *in;
        size_t split;
        int end; /* http_body_reader_end after the input */
        enum http_body_rc rc;
    } rows[] = {
        {"", 0, 1, HTTP_BODY_DONE},                        /* END_STREAM with no DATA */
        {"", 0, 0, HTTP_BODY_MORE},                        /* nothing yet */
        {"hello", 2, 0, HTTP_BODY_MORE},                   /* more may come */
        {"hello", 2, 1, HTTP_BODY_DONE},                   /* all of it, then the end */
        {"0\r\n\r\nGET / HTTP/1.1", 3, 1, HTTP_BODY_DONE}, /* framing-looking bytes are content */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct http_body_reader r;
        http_body_init(&r, HTTP_BODY_STREAM, 0, 1024);
        size_t n = strlen(rows[i].in), pos = 0, outlen = 0, used;
        char out[64];
        struct slice d;
        /* in two parts, as DATA frames would bring it */
        for (size_t limit = rows[i].split;; limit = n) {
            while (http_body_read(&r, rows[i].in + pos, limit - pos, &used, &d) == HTTP_BODY_DATA) {
                memcpy(out + outlen, d.p, d.len);
                outlen += d.len;
                pos += used;
            }
            if (limit == n)
                break;
        }
        if (rows[i].end)
            http_body_reader_end(&r);
        enum http_body_rc rc = http_body_read(&r, rows[i].in + pos, 0, &used, &d);
        if (rc != rows[i].rc || outlen != n || memcmp(out, rows[i].in, n) != 0)
            fail_msg("stream row %zu: rc %d, %zu bytes", i, rc, outlen);
        assert_int_equal(http_body_done(&r), rows[i].rc == HTTP_BODY_DONE);
    }
    /* the end of the input means nothing to a framed body */
    struct http_body_reader r;
    http_body_init(&r, HTTP_BODY_LENGTH, 5, 0);
    http_body_reader_end(&r);
    size_t used;
    struct slice d;
    assert_int_equal(http_body_read(&r, "", 0, &used, &d), HTTP_BODY_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_all_splits),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
