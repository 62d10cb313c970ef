/* h2 request mapping (RFC 9113 §8): a table of header blocks, as nghttp2
 * hands them over, to the verdict and the request the pipeline gets; and
 * the response fields an h2 HEADERS may carry. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/h2_request.h"

enum {
    OK = H2_REQUEST_OK,
    MAL = H2_REQUEST_MALFORMED,
    BAD = H2_REQUEST_BAD,
    BIG = H2_REQUEST_TOO_LARGE,
    NI = H2_REQUEST_NOT_IMPLEMENTED,
    UMT = H2_REQUEST_UNSUPPORTED_MEDIA
};

#define GET_OK ":method=GET|:scheme=https|:authority=api.example|:path=/x"

static const struct {
    const char *block; /* "name=value|name=value", in order */
    int end_stream;
    int want;
    const char *head; /* OK: "METHOD target host|field lines...|body" */
} rows[] = {
    {GET_OK, 1, OK, "GET /x api.example|host: api.example|none"},
    /* :authority gives host; host alone too (§8.3.1) */
    {":method=GET|:scheme=http|:path=/|host=h:81", 1, OK, "GET / h:81|host: h:81|none"},
    {GET_OK "|host=API.example", 1, OK, "GET /x api.example|host: api.example|none"},
    {GET_OK "|host=other", 1, BAD, NULL},
    {":method=GET|:scheme=https|:path=/x", 1, BAD, NULL},
    {":method=GET|:scheme=https|:authority=u@h|:path=/x", 1, BAD, NULL},
    {":method=GET|:scheme=https|:authority=h:99999|:path=/x", 1, BAD, NULL},
    /* cookie crumbs joined with "; ", after the other fields (§8.2.3) */
    {GET_OK "|cookie=a=1|accept=*/*|cookie=b=2", 1, OK,
     "GET /x api.example|host: api.example|accept: */*|cookie: a=1; b=2|none"},
    /* an empty crumb adds no "; ": the same line as without it */
    {GET_OK "|cookie=a=1|cookie=", 1, OK, "GET /x api.example|host: api.example|cookie: a=1|none"},
    {GET_OK "|cookie=|cookie=a=1|cookie=|cookie=|cookie=b=2", 1, OK,
     "GET /x api.example|host: api.example|cookie: a=1; b=2|none"},
    {GET_OK "|cookie=|cookie=", 1, OK, "GET /x api.example|host: api.example|cookie: |none"},
    /* RFC 9110 §10.1.1: an expectation other than 100-continue: 417 */
    {GET_OK "|expect=something-else", 1, H2_REQUEST_EXPECTATION_FAILED, NULL},
    /* OPTIONS * and the asterisk form; * with another method */
    {":method=OPTIONS|:scheme=https|:authority=h|:path=*", 1, OK, "OPTIONS * h|host: h|none"},
    {":method=GET|:scheme=https|:authority=h|:path=*", 1, MAL, NULL},
    {":method=GET|:scheme=https|:authority=h|:path=x", 1, MAL, NULL},
    {":method=GET|:scheme=https|:authority=h|:path=", 1, MAL, NULL},
    {":method=GET|:scheme=https|:authority=h|:path=/a ", 1, MAL, NULL}, /* trailing SP */
    {":method=GET|:scheme=https|:authority=h|:path=/a b", 1, BAD, NULL},
    {":method=GET|:scheme=https|:authority=h|:path=/a\"b", 1, BAD, NULL},
    {":method=GET|:scheme=ftp|:authority=h|:path=/", 1, BAD, NULL},
    /* CONNECT (§8.5) and extended CONNECT (RFC 8441): 501 */
    {":method=CONNECT|:authority=h:443", 1, NI, NULL},
    {":method=CONNECT|:protocol=websocket|:scheme=https|:authority=h|:path=/chat", 1, NI, NULL},
    {":method=CONNECT|:scheme=https|:authority=h:443", 1, MAL, NULL},
    {":method=GET|:protocol=websocket|:scheme=https|:authority=h|:path=/", 1, MAL, NULL},
    /* pseudo-headers: required, known, once, before regular fields */
    {":scheme=https|:authority=h|:path=/", 1, MAL, NULL},
    {":method=GET|:authority=h|:path=/", 1, MAL, NULL},
    {":method=GET|:scheme=https|:authority=h", 1, MAL, NULL},
    {":method=GET|:method=GET|:scheme=https|:authority=h|:path=/", 1, MAL, NULL},
    {":method=GET|:scheme=https|:authority=h|:path=/|:status=200", 1, MAL, NULL},
    {":method=GET|:scheme=https|accept=*/*|:authority=h|:path=/", 1, MAL, NULL},
    {":method=G T|:scheme=https|:authority=h|:path=/", 1, MAL, NULL},
    /* names lowercase tokens, values clean (§8.2.1) */
    {GET_OK "|Accept=x", 1, MAL, NULL},
    {GET_OK "|acc ept=x", 1, MAL, NULL},
    {GET_OK "|accept= x", 1, MAL, NULL},
    {GET_OK "|accept=a\rb", 1, MAL, NULL},
    /* connection-specific fields (§8.2.2); te only trailers */
    {GET_OK "|connection=close", 1, MAL, NULL},
    {GET_OK "|keep-alive=5", 1, MAL, NULL},
    {GET_OK "|proxy-connection=x", 1, MAL, NULL},
    {GET_OK "|transfer-encoding=chunked", 1, MAL, NULL},
    {GET_OK "|upgrade=h2c", 1, MAL, NULL},
    {GET_OK "|te=gzip", 1, MAL, NULL},
    {GET_OK "|te=trailers", 1, OK, "GET /x api.example|host: api.example|te: trailers|none"},
    /* content-length: parsed; with END_STREAM it must be 0 (§8.1.1) */
    {":method=POST|:scheme=https|:authority=h|:path=/p|content-length=5", 0, OK,
     "POST /p h|host: h|content-length: 5|length 5"},
    {":method=POST|:scheme=https|:authority=h|:path=/p|content-length=5", 1, MAL, NULL},
    {":method=POST|:scheme=https|:authority=h|:path=/p|content-length=0", 1, OK,
     "POST /p h|host: h|content-length: 0|none"},
    {":method=POST|:scheme=https|:authority=h|:path=/p|content-length=-1", 0, MAL, NULL},
    {":method=POST|:scheme=https|:authority=h|:path=/p|content-length=1|content-length=1", 0, MAL,
     NULL},
    {":method=POST|:scheme=https|:authority=h|:path=/p", 0, OK, "POST /p h|host: h|stream"},
    {GET_OK "|host=a|host=a", 1, BAD, NULL},
    /* native gRPC is refused (415); gRPC-web and Connect are not */
    {":method=POST|:scheme=https|:authority=h|:path=/S/M|content-type=application/grpc", 0, UMT,
     NULL},
    {":method=POST|:scheme=https|:authority=h|:path=/S/M|content-type=application/grpc+proto", 0,
     UMT, NULL},
    {":method=POST|:scheme=https|:authority=h|:path=/S/M|content-type=application/grpc-web+proto",
     0, OK, "POST /S/M h|host: h|content-type: application/grpc-web+proto|stream"},
    {":method=POST|:scheme=https|:authority=h|:path=/S/M|content-type=application/proto", 0, OK,
     "POST /S/M h|host: h|content-type: application/proto|stream"},
};

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

/* Feed "a=b|c=d" (the first '=' after a leading ':' or not splits). */
static int
feed(struct h2_request *h, const char *block)
{
    char *copy = strdup(block), *save = NULL;
    int v = H2_REQUEST_OK;
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        char *eq = strchr(tok + 1, '=');
        assert_non_null(eq);
        *eq = 0;
        v = h2_request_field(h, S(tok), S(eq + 1));
    }
    free(copy);
    return v;
}

static void describe(const struct http_request *r, enum h2_request_body b, char *out, size_t n)
{
    int k = snprintf(out, n, "%.*s %.*s %.*s", (int)r->method.len, r->method.p, (int)r->target.len,
                     r->target.p, (int)r->host.len, r->host.p);
    for (unsigned i = 0; i < r->nfields; i++)
        k += snprintf(out + k, n - (size_t)k, "|%.*s: %.*s", (int)r->fields[i].name.len,
                      r->fields[i].name.p, (int)r->fields[i].value.len, r->fields[i].value.p);
    if (b == H2_BODY_LENGTH)
        snprintf(out + k, n - (size_t)k, "|length %llu", (unsigned long long)r->content_length);
    else
        snprintf(out + k, n - (size_t)k, "|%s", b == H2_BODY_NONE ? "none" : "stream");
}

static void test_rows(void **st)
{
    struct h2_request_limits lim = {.max_header_list = 4096, .max_fields = 100};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field fields[102];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct h2_request h;
        h2_request_init(&h, &lim, arena, cap, fields, 102);
        feed(&h, rows[i].block);
        struct http_request r;
        enum h2_request_body body;
        int v = h2_request_end(&h, rows[i].end_stream, &r, &body);
        if (v != rows[i].want)
            fail_msg("row %zu (%s): verdict %d, want %d (%s)", i, rows[i].block, v, rows[i].want,
                     h.why ? h.why : "");
        if (v != OK)
            continue;
        assert_null(h.why);
        char got[1024];
        describe(&r, body, got, sizeof got);
        if (strcmp(got, rows[i].head))
            fail_msg("row %zu: got '%s', want '%s'", i, got, rows[i].head);
        /* every slice is in the arena, or a name of ours */
        assert_true(r.head_len <= cap);
        assert_true(r.method.p >= arena && r.method.p + r.method.len <= arena + r.head_len);
    }
    free(arena);
}

/* limit + 1: the header list (§6.5.2 sizes) and the field count */
static void test_limits(void **st)
{
    struct h2_request_limits lim = {.max_header_list = 1024, .max_fields = 3};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field fields[8];
    struct h2_request h;
    /* pseudo-headers: 7+3+32, 7+5+32, 10+1+32, 5+1+32 = 167 */
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    feed(&h, ":method=GET|:scheme=https|:authority=h|:path=/");
    char v[1024];
    size_t fill = 1024 - 167 - 32 - 1; /* a field named "a" exactly at the limit */
    memset(v, 'v', fill);
    assert_int_equal(h2_request_field(&h, S("a"), (struct slice){v, fill}), OK);
    struct http_request r;
    enum h2_request_body b;
    assert_int_equal(h2_request_end(&h, 1, &r, &b), OK);
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    feed(&h, ":method=GET|:scheme=https|:authority=h|:path=/");
    assert_int_equal(h2_request_field(&h, S("a"), (struct slice){v, fill + 1}), BIG);
    assert_int_equal(h2_request_field(&h, S("b"), S("c")), BIG); /* kept */
    assert_int_equal(h2_request_end(&h, 1, &r, &b), BIG);
    /* three fields fit, a fourth does not */
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    assert_int_equal(feed(&h, GET_OK "|a=1|b=2|c=3"), OK);
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    assert_int_equal(feed(&h, GET_OK "|a=1|b=2|c=3|d=4"), BIG);
    /* cookie crumbs are the one field they join into (§8.2.3) */
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    assert_int_equal(feed(&h, GET_OK "|a=1|cookie=x|cookie=y|cookie=z|b=2"), OK);
    assert_int_equal(h2_request_end(&h, 1, &r, &b), OK);
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    assert_int_equal(feed(&h, GET_OK "|a=1|cookie=x|cookie=y|b=2|c=3"), BIG);
    free(arena);
}

/* limits.request_line: :method and :path as the line they become
 * ("GET /path HTTP/1.1"), at the limit and one byte over: 414 */
static void test_request_line(void **st)
{
    struct h2_request_limits lim = {
        .max_header_list = 4096, .max_fields = 100, .max_request_line = 20};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field fields[8];
    struct h2_request h;
    struct http_request r;
    enum h2_request_body b;
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    feed(&h, ":method=GET|:scheme=https|:authority=h|:path=/abcdef"); /* 20 */
    assert_int_equal(h2_request_end(&h, 1, &r, &b), OK);
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    feed(&h, ":method=GET|:scheme=https|:authority=h|:path=/abcdefg"); /* 21 */
    assert_int_equal(h2_request_end(&h, 1, &r, &b), H2_REQUEST_URI_TOO_LONG);
    h2_request_init(&h, &lim, arena, cap, fields, 8);
    feed(&h, ":method=GETT|:scheme=https|:authority=h|:path=/abcdef"); /* 21 */
    assert_int_equal(h2_request_end(&h, 1, &r, &b), H2_REQUEST_URI_TOO_LONG);
    free(arena);
}

/* Request trailers (§8.1): regular fields pass (to be dropped); a
 * pseudo-header, a bad name or value, a connection-specific field, or no
 * END_STREAM is malformed. */
static void test_trailers(void **st)
{
    static const struct {
        const char *name, *value;
        int want;
    } rows3[] = {
        {"x-checksum", "abc", OK},
        {"grpc-status", "0", OK},
        {":path", "/other", MAL},
        {":method", "GET", MAL},
        {":status", "200", MAL},
        {"X-Upper", "v", MAL},
        {"x-sp", " v", MAL},
        {"x-crlf", "a\r\nb", MAL},
        {"connection", "close", MAL},
        {"transfer-encoding", "chunked", MAL},
        {"", "v", MAL},
    };
    for (size_t i = 0; i < sizeof rows3 / sizeof rows3[0]; i++) {
        int v = h2_trailer_field(S(rows3[i].name), S(rows3[i].value));
        if (v != rows3[i].want)
            fail_msg("trailer row %zu (%s): verdict %d, want %d", i, rows3[i].name, v,
                     rows3[i].want);
    }
    assert_int_equal(h2_trailers_end(1), OK);
    assert_int_equal(h2_trailers_end(0), MAL);
}

static void test_response_fields(void **st)
{
    static const struct {
        const char *name, *connection;
        int keep;
    } rows2[] = {
        {"content-type", "", 1},      {"Content-Type", "", 1},
        {"connection", "", 0},        {"Keep-Alive", "", 0},
        {"transfer-encoding", "", 0}, {"upgrade", "", 0},
        {"proxy-connection", "", 0},  {"te", "", 0},
        {"trailer", "", 0},           {"x-hop", "close, X-Hop", 0},
        {"x-other", "x-hop", 1},      {":status", "", 0},
    };
    for (size_t i = 0; i < sizeof rows2 / sizeof rows2[0]; i++)
        if (h2_response_keeps_field(S(rows2[i].name), S(rows2[i].connection)) != rows2[i].keep)
            fail_msg("row %zu: %s", i, rows2[i].name);

    struct slice rest = S("Age: 3\r\nCache-Status: idemcache; hit\r\nVia:  1.1 x \r\nbroken\r\n");
    struct http_field f;
    assert_int_equal(h2_next_field_line(&rest, &f), 1);
    assert_true(slice_eq(f.name, S("Age")) && slice_eq(f.value, S("3")));
    assert_int_equal(h2_next_field_line(&rest, &f), 1);
    assert_true(slice_eq(f.value, S("idemcache; hit")));
    assert_int_equal(h2_next_field_line(&rest, &f), 1);
    assert_true(slice_eq(f.name, S("Via")) && slice_eq(f.value, S("1.1 x")));
    assert_int_equal(h2_next_field_line(&rest, &f), 0);
    assert_int_equal(rest.len, 0);

    char d[3];
    h2_status_digits(204, d);
    assert_memory_equal(d, "204", 3);
    h2_status_digits(42, d);
    assert_memory_equal(d, "500", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_response_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
