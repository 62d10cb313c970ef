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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_all_splits),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_trailer_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
