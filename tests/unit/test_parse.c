/* Request and response head parsing: what a valid head yields, and the
 * framing verdict for responses (RFC 9112 §6.3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/http.h"

static const struct http_limits lim = {8192, 65536, 100};
static struct http_field req_fields[HTTP_FIELDS_MAX];
static struct http_request req = {.fields = req_fields, .fields_cap = HTTP_FIELDS_MAX};
static struct http_response res;

static int preq(const char *s)
{
    return http_parse_request(s, strlen(s), &lim, &req);
}
static int pres(const char *s)
{
    return http_parse_response(s, strlen(s), &lim, &res);
}
static void assert_slice(struct slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_request_fields(void **st)
{
    const char *s = "POST /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nX-A:  v1 \t\r\n"
                    "Content-Length: 3\r\nConnection: Keep-Alive, Foo\r\n\r\nabcGET";
    assert_int_equal(preq(s), HTTP_PARSE_OK);
    assert_slice(req.method, "POST");
    assert_slice(req.target, "/a?b=c");
    assert_slice(req.host, "example.com:8080");
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.nfields, 4);
    assert_slice(req.fields[1].name, "X-A");
    assert_slice(req.fields[1].value, "v1"); /* OWS trimmed both sides */
    assert_int_equal(req.body, HTTP_BODY_LENGTH);
    assert_int_equal(req.content_length, 3);
    assert_int_equal(req.head_len, strlen(s) - 6);
    assert_true(req.conn_flags & HTTP_CONN_KEEPALIVE);
    assert_false(req.conn_flags & HTTP_CONN_CLOSE);
}

static void test_request_forms(void **st)
{
    assert_int_equal(preq("GET http://h.example:81/p?q HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(req.form, HTTP_TARGET_ABSOLUTE);
    assert_slice(req.authority, "h.example:81");
    assert_slice(req.path, "/p?q");
    assert_slice(req.scheme, "http");
    assert_int_equal(preq("GET http://h.example HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_slice(req.path, "");
    assert_int_equal(preq("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n"), 0);
    assert_int_equal(req.form, HTTP_TARGET_AUTHORITY);
    assert_slice(req.authority, "h.example:443");
    assert_int_equal(preq("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    assert_int_equal(req.form, HTTP_TARGET_ASTERISK);
}

static void test_request_incremental(void **st)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t i = 0; i < strlen(s); i++)
        assert_int_equal(http_parse_request(s, i, &lim, &req), HTTP_PARSE_MORE);
    assert_int_equal(preq(s), 0);
}

static void test_request_limits(void **st)
{
    struct http_limits small = {32, 128, 3};
    const char *ok = "GET /0123456789012345678 HTTP/1.1\r\nHost: a\r\n\r\n"; /* line: 33 */
    assert_int_equal(http_parse_request(ok, strlen(ok), &small, &req), 414);
    const char *three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(http_parse_request(three, strlen(three), &small, &req), 0);
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(http_parse_request(four, strlen(four), &small, &req), 431);
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    /* incomplete but already over the header section limit */
    assert_int_equal(http_parse_request(big, sizeof big, &small, &req), 431);
}

static void test_expect_and_upgrade(void **st)
{
    assert_int_equal(preq("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                          "Content-Length: 1\r\n\r\n"),
                     0);
    assert_true(req.expect_continue);
    /* RFC 9110 §10.1.1: ignored in HTTP/1.0 */
    assert_int_equal(preq("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), 0);
    assert_false(req.expect_continue);
    assert_int_equal(
        preq("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), 0);
    assert_true(req.has_upgrade);
    assert_true(req.conn_flags & HTTP_CONN_UPGRADE);
    assert_int_equal(preq("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    assert_int_equal(req.body, HTTP_BODY_CHUNKED);
}

/* Why a request is refused: bytes, status, reason (README "Errors"). */
static const struct {
    const char *head;
    int rc;
    enum http_error why;
} refusals[] = {
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     HTTP_ERR_CL_WITH_TE},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
     HTTP_ERR_CL_DUPLICATE},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, HTTP_ERR_CL_INVALID},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
     HTTP_ERR_TE_NOT_CHUNKED},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
     HTTP_ERR_TE_INVALID},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, HTTP_ERR_TE_HTTP10},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
     HTTP_ERR_TE_UNSUPPORTED},
    {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, HTTP_ERR_BARE_CR},
    {"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, HTTP_ERR_BARE_LF},
    {"GET / HTTP/1.1\r\nHost: a\r\n\nX: b\r\n\r\n", 400, HTTP_ERR_BARE_LF},
    {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, HTTP_ERR_BARE_LF},
    {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_BARE_CR},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400, HTTP_ERR_OBS_FOLD},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, HTTP_ERR_SPACE_BEFORE_NAME},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, HTTP_ERR_SPACE_BEFORE_COLON},
    {"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, HTTP_ERR_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400, HTTP_ERR_FIELD_NAME},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, HTTP_ERR_FIELD_VALUE},
    {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_METHOD},
    {" / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_METHOD},
    {"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_TARGET},
    {"GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_TARGET},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_TARGET},
    {"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_TARGET},
    {"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_TARGET_USERINFO},
    {"GET /\r\n\r\n", 400, HTTP_ERR_HTTP09},
    {"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400, HTTP_ERR_VERSION},
    {"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, HTTP_ERR_VERSION},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, HTTP_ERR_VERSION_MAJOR},
    {"GET / HTTP/1.1\r\n\r\n", 400, HTTP_ERR_HOST_MISSING},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, HTTP_ERR_HOST_DUPLICATE},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, HTTP_ERR_HOST_INVALID},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", 400, HTTP_ERR_CONNECTION},
    {"GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n", 417, HTTP_ERR_EXPECT},
};

static void test_refusal_reasons(void **st)
{
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        int rc = preq(refusals[i].head);
        if (rc != refusals[i].rc || req.error != refusals[i].why)
            fail_msg("refusal %zu: rc %d why %d (%s), want %d why %d", i, rc, req.error,
                     http_error_text(req.error), refusals[i].rc, refusals[i].why);
    }
    struct http_limits small = {32, 128, 3};
    const char *line = "GET /0123456789012345678 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(http_parse_request(line, strlen(line), &small, &req), 414);
    assert_int_equal(req.error, HTTP_ERR_REQUEST_LINE);
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(http_parse_request(four, strlen(four), &small, &req), 431);
    assert_int_equal(req.error, HTTP_ERR_HEADER_COUNT);
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    assert_int_equal(http_parse_request(big, sizeof big, &small, &req), 431);
    assert_int_equal(req.error, HTTP_ERR_HEADER_SECTION);
    /* a head that parses leaves no reason behind from the last one */
    assert_int_equal(preq("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(req.error, HTTP_ERR_NONE);
    for (int e = 1; e < HTTP_ERR__COUNT; e++)
        assert_true(strlen(http_error_text((enum http_error)e)) > 0);
}

/* The fields go to the caller's storage: past its capacity is 431 as past
 * header_count, so a small exchange-sized array can never overflow. */
static void test_request_field_storage(void **st)
{
    struct http_field two[2];
    struct http_request r;
    http_request_init(&r, two, 2);
    const char *ok = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n";
    assert_int_equal(http_parse_request(ok, strlen(ok), &lim, &r), 0);
    assert_int_equal(r.nfields, 2);
    assert_ptr_equal(r.fields, two);
    const char *three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(http_parse_request(three, strlen(three), &lim, &r), 431);
    assert_int_equal(r.error, HTTP_ERR_HEADER_COUNT);
    http_request_init(&r, NULL, 0);
    assert_int_equal(http_parse_request(ok, strlen(ok), &lim, &r), 431);
}

/* An owned copy: every slice points into the arena and reads the same
 * bytes after the parsed buffer is gone. */
static void test_request_copy(void **st)
{
    const char *s = "\r\nPOST http://h.example:81/p?q HTTP/1.1\r\nHost: h.example:81\r\n"
                    "X-A: v\r\nContent-Length: 2\r\n\r\nab";
    char *buf = strdup(s);
    assert_int_equal(preq(buf), 0);
    size_t n = http_request_copy_size(&req);
    assert_int_equal(n, req.nfields * sizeof(struct http_field) + req.head_len);
    void *arena = malloc(n);
    struct http_request c;
    http_request_copy(&c, &req, buf, arena);
    memset(buf, 'z', strlen(s));
    free(buf);
    const char *lo = arena, *hi = (const char *)arena + n;
    struct slice all[] = {c.method, c.target, c.host, c.authority, c.path, c.scheme};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        assert_true(all[i].p >= lo && all[i].p + all[i].len <= hi);
    assert_slice(c.method, "POST");
    assert_slice(c.target, "http://h.example:81/p?q");
    assert_slice(c.host, "h.example:81");
    assert_slice(c.authority, "h.example:81");
    assert_slice(c.scheme, "http");
    assert_int_equal(c.nfields, 3);
    assert_int_equal(c.fields_cap, 3);
    assert_ptr_equal(c.fields, arena);
    assert_slice(c.fields[1].name, "X-A");
    assert_slice(c.fields[1].value, "v");
    assert_int_equal(c.fields[2].id, HF_CONTENT_LENGTH);
    assert_int_equal(c.content_length, 2);
    assert_int_equal(c.body, HTTP_BODY_LENGTH);
    free(arena);
}

/* Response table: head bytes, HEAD request?, parse status, body kind. */
static const struct {
    const char *head;
    int head_req;
    int rc;
    enum http_body_kind kind;
} responses[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, 0, HTTP_BODY_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, HTTP_BODY_NONE},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 0, HTTP_BODY_NONE},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, HTTP_BODY_CHUNKED},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n", 0, 0, HTTP_BODY_CHUNKED},
    {"HTTP/1.1 200 OK\r\n\r\n", 0, 0, HTTP_BODY_CLOSE},
    {"HTTP/1.1 204 No Content\r\n\r\n", 0, 0, HTTP_BODY_NONE},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0, 0, HTTP_BODY_NONE},
    {"HTTP/1.1 100 Continue\r\n\r\n", 0, 0, HTTP_BODY_NONE},
    {"HTTP/1.0 200 OK\r\n\r\n", 0, 0, HTTP_BODY_CLOSE},
    {"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", 0, 0, HTTP_BODY_LENGTH},
    {"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n", 0, 0, HTTP_BODY_LENGTH},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 2000 OK\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 099 OK\r\n\r\n", 0, 502, 0},
    {"HTTP/2.0 200 OK\r\n\r\n", 0, 502, 0},
    {"garbage garbage\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, 502, 0},
    {"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", 0, 502, 0},
};

static void test_responses(void **st)
{
    for (size_t i = 0; i < sizeof responses / sizeof responses[0]; i++) {
        int rc = pres(responses[i].head);
        if (rc != responses[i].rc)
            fail_msg("response %zu: rc %d, want %d", i, rc, responses[i].rc);
        if (rc == 0 && http_response_body_kind(&res, responses[i].head_req) != responses[i].kind)
            fail_msg("response %zu: kind %d, want %d", i,
                     http_response_body_kind(&res, responses[i].head_req), responses[i].kind);
    }
    assert_int_equal(pres("HTTP/1.1 20"), HTTP_PARSE_MORE);
    assert_int_equal(pres("XTTP/1"), 502); /* garbage is refused before it completes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields),      cmocka_unit_test(test_request_forms),
        cmocka_unit_test(test_request_incremental), cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_expect_and_upgrade),  cmocka_unit_test(test_responses),
        cmocka_unit_test(test_refusal_reasons),     cmocka_unit_test(test_request_field_storage),
        cmocka_unit_test(test_request_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
