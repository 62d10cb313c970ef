/* The path normalizer (RFC 3986 §6.2.2, §5.2.4): a table, and the
 * properties every output has (no longer than the input, a fixed point). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/path.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static const struct {
    const char *in, *want;
} rows[] = {
    /* already normal */
    {"/", "/"},
    {"", ""},
    {"/account/profile", "/account/profile"},
    {"*", "*"},
    /* §6.2.2.2: unreserved bytes decoded (issue 10, finding 9) */
    {"/%61ccount/profile", "/account/profile"},
    {"/api/%73etUser", "/api/setUser"},
    {"/%41%5a%30%39%2D%2e%5F%7E", "/AZ09-._~"},
    /* §6.2.2.1: other escapes kept, hex upper-cased */
    {"/a%2fb", "/a%2Fb"},
    {"/a%2Fb", "/a%2Fb"},
    {"/%e2%82%ac", "/%E2%82%AC"},
    {"/%20x", "/%20x"},
    /* broken escapes have no normal form (want NULL) */
    {"/%", NULL},
    {"/%4", NULL},
    {"/%zz", NULL},
    {"/%%61", NULL},
    {"/%%32%65", NULL}, /* else "%2e", which a second pass would decode */
    /* §5.2.4: dot segments (and their encoded forms) */
    {"/a/b/c/./../../g", "/a/g"},
    {"/mid/content=5/../6", "/mid/6"},
    {"/.", "/"},
    {"/..", "/"},
    {"/../..", "/"},
    {"/../a", "/a"},
    {"/a/.", "/a/"},
    {"/a/..", "/"},
    {"/a/b/..", "/a/"},
    {"/x/../account/profile", "/account/profile"},
    {"/x/%2e%2e/account/profile", "/account/profile"},
    {"/x/%2E./account", "/account"},
    {"/./account", "/account"},
    {"/a/.b/..c/...", "/a/.b/..c/..."},
    /* empty segments are kept, and count as segments for ".." */
    {"//a", "//a"},
    {"/a//..", "/a/"},
    {"/a//../b", "/a/b"},
    /* no leading '/': no dot-segment removal */
    {"a/../b", "a/../b"},
};

static void test_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct slice in = S(rows[i].in);
        char *out = malloc(in.len ? in.len : 1);
        size_t n = 0;
        enum http_path_rc rc = http_path_normalize(in, out, &n);
        if (!rows[i].want) {
            if (rc != HTTP_PATH_BAD_ESCAPE)
                fail_msg("row %zu: '%s' has no normal form", i, rows[i].in);
        } else if (rc != HTTP_PATH_OK || n != strlen(rows[i].want) || memcmp(out, rows[i].want, n))
            fail_msg("row %zu: '%s' -> '%.*s', want '%s'", i, rows[i].in, (int)n, out,
                     rows[i].want);
        free(out);
    }
}

/* Normalizing twice changes nothing, and the output never grows: over the
 * table's inputs and every path of up to 5 bytes from a small alphabet. */
static void test_fixed_point(void **st)
{
    (void)st;
    static const char alphabet[] = "/.%2eEa6";
    const size_t k = sizeof alphabet - 1;
    char in[5], a[5], b[5];
    for (size_t len = 0; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= k;
        for (size_t code = 0; code < total; code++) {
            size_t c = code;
            for (size_t i = 0; i < len; i++, c /= k)
                in[i] = alphabet[c % k];
            size_t n, m;
            if (http_path_normalize((struct slice){in, len}, a, &n) != HTTP_PATH_OK)
                continue;
            assert_true(n <= len);
            assert_int_equal(http_path_normalize((struct slice){a, n}, b, &m), HTTP_PATH_OK);
            if (m != n || memcmp(a, b, n))
                fail_msg("not a fixed point: '%.*s' -> '%.*s' -> '%.*s'", (int)len, in, (int)n, a,
                         (int)m, b);
        }
    }
}

/* The loose form (issue 10, re-attack C): what origins that route loosely
 * may take the path for. */
static const struct {
    const char *in, *want;
} loose_rows[] = {
    {"/account/profile", "/account/profile"},
    {"", ""},
    {"/", "/"},
    {"*", "*"},
    /* nginx merge_slashes */
    {"//account/profile", "/account/profile"},
    {"/account//profile", "/account/profile"},
    {"///", "/"},
    /* Tomcat/Jetty path parameters, and "..;" read as ".." */
    {"/account;x/profile", "/account/profile"},
    {"/account/profile;.css", "/account/profile"},
    {"/;x/account", "/account"},
    {"/public/..;/account/x", "/account/x"},
    {"/account/%3bx/profile", "/account/profile"},
    /* case is kept; callers compare without it */
    {"/ACCOUNT/profile", "/ACCOUNT/profile"},
    /* decoded until no escape is left */
    {"/%61ccount/profile", "/account/profile"},
    {"/%2561ccount/profile", "/account/profile"},
    {"/%252561ccount", "/account"},
    {"/%2%35", "/%"},
    {"/%%61", "/%a"},
    {"/%", "/%"},
    {"/%zz", "/%zz"},
    {"/%2", "/%2"},
    /* encoded separators and dots */
    {"/a/..%2f..%2faccount", "/account"},
    {"/a%2f%2e%2e/account", "/account"},
    {"/a%252f%252e%252e/account", "/account"},
    {"%2faccount", "/account"},
    /* IIS: a backslash is a slash */
    {"\\account\\profile", "/account/profile"},
    {"/account%5cprofile", "/account/profile"},
    /* dot segments, and what is left at the end */
    {"/a/./b/../c", "/a/c"},
    {"/a/.", "/a/"},
    {"/a/..", "/"},
    {"/..", "/"},
    {"/../../account", "/account"},
    {"/account/", "/account/"},
    {"/account//", "/account/"},
    {"/a/.b/..c", "/a/.b/..c"},
    /* no leading '/': decoded only */
    {"a/../b", "a/../b"},
    {"a;b", "a;b"},
};

static void test_loose_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof loose_rows / sizeof loose_rows[0]; i++) {
        struct slice in = S(loose_rows[i].in);
        char *out = malloc(in.len ? in.len : 1);
        size_t n = 0;
        http_path_loose(in, out, &n);
        if (n != strlen(loose_rows[i].want) || memcmp(out, loose_rows[i].want, n))
            fail_msg("loose row %zu: '%s' -> '%.*s', want '%s'", i, loose_rows[i].in, (int)n, out,
                     loose_rows[i].want);
        free(out);
    }
}

/* Every loose form is no longer than its input, is its own loose form,
 * and (for a path from '/') has nothing left that a loose origin would
 * read otherwise: no escape, '\\', ';', empty or dot segment. */
static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void check_loose(const char *in, size_t len)
{
    char a[8], b[8];
    size_t n, m;
    http_path_loose((struct slice){in, len}, a, &n);
    assert_true(n <= len);
    http_path_loose((struct slice){a, n}, b, &m);
    if (m != n || memcmp(a, b, n))
        fail_msg("loose form not a fixed point: '%.*s' -> '%.*s' -> '%.*s'", (int)len, in, (int)n,
                 a, (int)m, b);
    if (!n || a[0] != '/')
        return;
    for (size_t i = 0; i < n; i++) {
        int escape = a[i] == '%' && i + 2 < n && is_hex(a[i + 1]) && is_hex(a[i + 2]);
        int empty = a[i] == '/' && i + 1 < n && a[i + 1] == '/';
        int dot =
            a[i] == '/' && i + 1 < n && a[i + 1] == '.' &&
            (i + 2 == n || a[i + 2] == '/' || (a[i + 2] == '.' && (i + 3 == n || a[i + 3] == '/')));
        if (escape || empty || dot || a[i] == ';' || a[i] == '\\')
            fail_msg("loose form of '%.*s' is '%.*s'", (int)len, in, (int)n, a);
    }
}

/* A path said to be plain is its own normal form and its own loose form. */
static void check_plain(const char *in, size_t len)
{
    struct slice p = {in, len};
    if (!http_path_is_plain(p))
        return;
    char norm[16], loose[16];
    size_t nl, ll;
    assert_int_equal(http_path_normalize(p, norm, &nl), HTTP_PATH_OK);
    http_path_loose(p, loose, &ll);
    if (nl != len || memcmp(norm, in, len) || ll != len || memcmp(loose, in, len))
        fail_msg("plain path '%.*s' is not its own normal and loose form", (int)len, in);
}

static void test_loose_properties(void **st)
{
    (void)st;
    static const char alphabet[] = "/.%25a;\\fA";
    const size_t k = sizeof alphabet - 1;
    char in[6];
    for (size_t len = 0; len <= 6; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= k;
        for (size_t code = 0; code < total; code++) {
            size_t c = code;
            for (size_t i = 0; i < len; i++, c /= k)
                in[i] = alphabet[c % k];
            check_loose(in, len);
            check_plain(in, len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fixed_point),
        cmocka_unit_test(test_loose_table),
        cmocka_unit_test(test_loose_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
