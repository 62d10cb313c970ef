/* Cache keys (cache/key.c): the scheme is part of every key (RFC 9110
 * §4.2: http and https URIs name different resources), each scheme drops
 * its own default port (§4.2.3), and cache_key_parse reads back what the
 * builders wrote. Tables: (request, transport, mode) -> key; key -> parts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cache/key.h"
#include "http/http.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static const struct http_limits lim = {8192, 65536, 100};

static const struct {
    const char *head;
    int over_tls, forward_proxy;
    const char *want;
} build_rows[] = {
    /* origin-form: the transport names the scheme */
    {"GET /x HTTP/1.1\r\nHost: A.example\r\n\r\n", 0, 0, "G http://a.example/x"},
    {"GET /x HTTP/1.1\r\nHost: A.example\r\n\r\n", 1, 0, "G https://a.example/x"},
    /* each scheme drops its own default port, and only its own */
    {"GET /x HTTP/1.1\r\nHost: a:80\r\n\r\n", 0, 0, "G http://a/x"},
    {"GET /x HTTP/1.1\r\nHost: a:80\r\n\r\n", 1, 0, "G https://a:80/x"},
    {"GET /x HTTP/1.1\r\nHost: a:443\r\n\r\n", 1, 0, "G https://a/x"},
    {"GET /x HTTP/1.1\r\nHost: a:443\r\n\r\n", 0, 0, "G http://a:443/x"},
    {"GET /x HTTP/1.1\r\nHost: a:\r\n\r\n", 1, 0, "G https://a/x"},
    /* a forward proxy keys an absolute target by the scheme it names */
    {"GET https://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1, "G https://a/x"},
    {"GET HTTPS://a:443/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1, "G https://a/x"},
    {"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 1, 1, "G http://a/x"},
    {"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 1, 1, "G https://a/x"},
    /* a reverse proxy keys it by the transport: the origin is told that one */
    {"GET https://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0, "G http://a/x"},
    {"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0, "G https://a/x"},
    /* an empty absolute path is "/" */
    {"GET https://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, 1, "G https://a/?q=1"},
};

static void test_build_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof build_rows / sizeof build_rows[0]; i++) {
        struct http_request r;
        const char *h = build_rows[i].head;
        assert_int_equal(http_parse_request(h, strlen(h), &lim, &r), HTTP_PARSE_OK);
        enum cache_scheme s =
            cache_request_scheme(&r, build_rows[i].over_tls, build_rows[i].forward_proxy);
        size_t len;
        char *k = cache_key_primary(&r, s, &len);
        if (len != strlen(build_rows[i].want) || memcmp(k, build_rows[i].want, len))
            fail_msg("row %zu: got '%.*s', want '%s'", i, (int)len, k, build_rows[i].want);
        free(k);
    }
}

static const struct {
    const char *key;
    enum cache_key_parse_result rc;
    char cls;
    enum cache_scheme scheme;
    const char *authority, *path, *url;
} parse_rows[] = {
    {"G http://a/x", CACHE_KEY_PARSED, 'G', CACHE_SCHEME_HTTP, "a", "/x", "http://a/x"},
    {"G https://a:8443/x?y", CACHE_KEY_PARSED, 'G', CACHE_SCHEME_HTTPS, "a:8443", "/x?y",
     "https://a:8443/x?y"},
    {"G http:///x", CACHE_KEY_PARSED, 'G', CACHE_SCHEME_HTTP, "", "/x", "http:///x"},
    /* a body key: the URL ends at its first line break */
    {"P https://a/p\nb:00\nt:\ne:\n", CACHE_KEY_PARSED, 'P', CACHE_SCHEME_HTTPS, "a", "/p",
     "https://a/p"},
    {"R http://a/p\nrange", CACHE_KEY_PARSED, 'R', CACHE_SCHEME_HTTP, "a", "/p", "http://a/p"},
    /* the old fixed offset's blind spots: nothing else is a key */
    {"", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"G", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"G http:/", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"G http://a", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"G ftp://a/x", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"G httpsx://a/x", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"Ghttp://a/x", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
    {"P http://a\n/x", CACHE_KEY_MALFORMED, 0, 0, NULL, NULL, NULL},
};

static void test_parse_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof parse_rows / sizeof parse_rows[0]; i++) {
        struct cache_key_url u;
        const char *k = parse_rows[i].key;
        enum cache_key_parse_result rc = cache_key_parse(k, strlen(k), &u);
        if (rc != parse_rows[i].rc)
            fail_msg("row %zu (%s): rc %d", i, k, rc);
        if (rc != CACHE_KEY_PARSED)
            continue;
        assert_int_equal(u.cls, parse_rows[i].cls);
        assert_int_equal(u.scheme, parse_rows[i].scheme);
        assert_int_equal(u.authority.len, strlen(parse_rows[i].authority));
        assert_memory_equal(u.authority.p, parse_rows[i].authority, u.authority.len);
        assert_int_equal(u.path.len, strlen(parse_rows[i].path));
        assert_memory_equal(u.path.p, parse_rows[i].path, u.path.len);
        assert_int_equal(u.url.len, strlen(parse_rows[i].url));
        assert_memory_equal(u.url.p, parse_rows[i].url, u.url.len);
    }
}

/* Body keys and partial keys belong to their own scheme's URL only: the
 * removal of http://a/p (invalidation, PURGE) leaves https://a/p's. */
static void test_body_keys_per_scheme(void **st)
{
    (void)st;
    struct http_request r;
    const char *h = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_parse_request(h, strlen(h), &lim, &r), HTTP_PARSE_OK);
    unsigned char d[32] = {0};
    size_t gh, gs, ph, ps, rh;
    char *g_http = cache_key_for(CACHE_SCHEME_HTTP, S("a"), S("/p"), &gh);
    char *g_https = cache_key_for(CACHE_SCHEME_HTTPS, S("a"), S("/p"), &gs);
    char *p_http = cache_key_body('P', &r, CACHE_SCHEME_HTTP, d, S(""), S(""), S(""), &ph);
    char *p_https = cache_key_body('P', &r, CACHE_SCHEME_HTTPS, d, S(""), S(""), S(""), &ps);
    char *r_https = cache_key_partial(g_https, gs, &rh);
    assert_true(cache_key_is_body_of(p_http, ph, g_http, gh));
    assert_true(cache_key_is_body_of(p_https, ps, g_https, gs));
    assert_false(cache_key_is_body_of(p_https, ps, g_http, gh));
    assert_false(cache_key_is_body_of(p_http, ph, g_https, gs));
    assert_true(cache_key_is_body_of(r_https, rh, g_https, gs));
    assert_false(cache_key_is_body_of(r_https, rh, g_http, gh));
    size_t c1, c2;
    char *rpc_http = cache_key_rpc(&r, CACHE_SCHEME_HTTP, S("/p"), S("json"), S(""), d, S(""), &c1);
    char *rpc_https =
        cache_key_rpc(&r, CACHE_SCHEME_HTTPS, S("/p"), S("json"), S(""), d, S(""), &c2);
    assert_true(cache_key_is_body_of(rpc_https, c2, g_https, gs));
    assert_false(cache_key_is_body_of(rpc_https, c2, g_http, gh));
    assert_true(c1 != c2 || memcmp(rpc_http, rpc_https, c1));
    free(g_http);
    free(g_https);
    free(p_http);
    free(p_https);
    free(r_https);
    free(rpc_http);
    free(rpc_https);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_table),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_body_keys_per_scheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
