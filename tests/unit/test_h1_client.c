/* h1_client.c, the request side: the exact bytes of each piece of a
 * request toward an origin (request line and Host, field lines, framing
 * fields and end of head, chunks), and a request built from them parsed
 * back (RFC 9112 §3, §6, §7.1) to the method, target, Host, framing and
 * content it was given. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "server/server.h"
#include "server/origin.h"
#include "http/body.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static void
expect_bytes(struct outbuf *o, const char *want)
{
    assert_int_equal(o->len, strlen(want));
    assert_memory_equal(o->p, want, o->len);
    free(o->p);
    *o = (struct outbuf){0};
}

static void test_pieces(void **st)
{
    (void)st;
    struct outbuf o = {0};
    h1_client_request_line(&o, S("GET"), S("/x?a=1"), S("a.example:8080"));
    expect_bytes(&o, "GET /x?a=1 HTTP/1.1\r\nHost: a.example:8080\r\n");
    h1_client_request_line(&o, S("OPTIONS"), S("*"), (struct slice){NULL, 0});
    expect_bytes(&o, "OPTIONS * HTTP/1.1\r\nHost: \r\n");
    h1_client_field(&o, S("Via"), S("1.1 idemcache"));
    expect_bytes(&o, "Via: 1.1 idemcache\r\n");

    static const struct {
        enum http_body_kind kind;
        uint64_t length;
        const char *want;
    } heads[] = {
        {HTTP_BODY_NONE, 0, "\r\n"},
        {HTTP_BODY_LENGTH, 0, "Content-Length: 0\r\n\r\n"},
        {HTTP_BODY_LENGTH, 18446744073709551615ULL, "Content-Length: 18446744073709551615\r\n\r\n"},
        {HTTP_BODY_CHUNKED, 99, "Transfer-Encoding: chunked\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        h1_client_end_head(&o, heads[i].kind, heads[i].length);
        expect_bytes(&o, heads[i].want);
    }

    h1_client_body(&o, S("hello"), 0);
    expect_bytes(&o, "hello");
    h1_client_body(&o, S("0123456789abcdefX"), 1);
    expect_bytes(&o, "11\r\n0123456789abcdefX\r\n");
    h1_client_body_end(&o, 0);
    assert_int_equal(o.len, 0);
    h1_client_body_end(&o, 1);
    expect_bytes(&o, "0\r\n\r\n");
}

/* What we write parses back to what we meant. */
static void test_round_trip(void **st)
{
    (void)st;
    static const char *const parts[] = {"hello", " ", "world"};
    for (int chunked = 0; chunked <= 1; chunked++) {
        struct outbuf o = {0};
        h1_client_request_line(&o, S("POST"), S("/rpc"), S("origin:9000"));
        h1_client_field(&o, S("Content-Type"), S("text/plain"));
        h1_client_end_head(&o, chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_LENGTH, 11);
        for (size_t i = 0; i < 3; i++)
            h1_client_body(&o, S(parts[i]), chunked);
        h1_client_body_end(&o, chunked);

        struct http_field fields[HTTP_FIELDS_MAX];
        struct http_request r;
        const struct http_limits lim = {8192, 65536, 100};
        http_request_init(&r, fields, HTTP_FIELDS_MAX);
        assert_int_equal(http_parse_request(o.p, o.len, &lim, &r), HTTP_PARSE_OK);
        assert_true(slice_eq(r.method, SLICE_LIT("POST")));
        assert_true(slice_eq(r.target, SLICE_LIT("/rpc")));
        assert_true(slice_eq(r.host, SLICE_LIT("origin:9000")));
        assert_int_equal(r.minor, 1);
        assert_int_equal(r.body, chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_LENGTH);

        struct http_body_reader br;
        http_body_init(&br, r.body, r.content_length, 8192);
        char got[64];
        size_t n = 0, at = r.head_len;
        while (!http_body_done(&br)) {
            size_t used;
            struct slice d;
            enum http_body_rc rc = http_body_read(&br, o.p + at, o.len - at, &used, &d);
            assert_int_not_equal(rc, HTTP_BODY_ERROR);
            assert_int_not_equal(rc, HTTP_BODY_MORE);
            if (rc == HTTP_BODY_DATA) {
                assert_true(n + d.len <= sizeof got);
                memcpy(got + n, d.p, d.len);
                n += d.len;
            }
            at += used;
            if (rc == HTTP_BODY_DONE)
                break;
        }
        assert_int_equal(at, o.len); /* nothing left over: the next response is not eaten */
        assert_int_equal(n, 11);
        assert_memory_equal(got, "hello world", 11);
        free(o.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
