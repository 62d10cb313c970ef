/* Rules, naming, body normalization, Content-Digest and body keys: tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>
#include <openssl/sha.h>
#include "rules/rules.h"
#include "rules/normalize.h"
#include "http/digest_field.h"
#include "http/http.h"
#include "cache/key.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static void
test_glob(void **st)
{
    static const struct {
        const char *pat, *s;
        int match;
    } rows[] = {
        {"/api/*", "/api/users", 1},
        {"/api/*", "/api/", 1},
        {"/api/*", "/api", 0},
        {"/api/*", "/api/a/b/c", 1},
        {"/api/*/get", "/api/x/get", 1},
        {"/api/*/get", "/api/x/y/get", 1},
        {"/api/*/get", "/api/x/got", 0},
        {"/a?c", "/abc", 1},
        {"/a?c", "/ac", 0},
        {"*", "", 1},
        {"/x", "/x", 1},
        {"/x", "/xy", 0},
        {"*.json", "/a/b.json", 1},
        {"/**", "/", 1},
        {"/a*b*c", "/aXXbYYc", 1},
        {"/a*b*c", "/aXXbYY", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rules_glob(rows[i].pat, S(rows[i].s)) != rows[i].match)
            fail_msg("glob '%s' on '%s': expected %d", rows[i].pat, rows[i].s, rows[i].match);
}

static void test_match(void **st)
{
    struct rule rules[3];
    memset(rules, 0, sizeof rules);
    strcpy(rules[0].path, "/api/write/*");
    rules[0].methods = RM_POST;
    strcpy(rules[1].path, "/rpc/*");
    rules[1].methods = RM_POST;
    strcpy(rules[1].header_name, "X-Request-Kind");
    strcpy(rules[1].header_value, "query");
    rules[1].cache = true;
    strcpy(rules[2].path, "/api/*");
    rules[2].methods = RM_POST | RM_QUERY;
    rules[2].cache = true;
    struct http_field kind = {S("x-request-kind"), S("Query"), 0};
    struct http_field other = {S("X-Request-Kind"), S("mutation"), 0};
    struct http_field list = {S("X-Request-Kind"), S("batch, query"), 0};
    const struct {
        const char *method, *path;
        struct http_field *f;
        int want; /* rule index or -1 */
    } rows[] = {
        {"POST", "/api/write/x", NULL, 0}, {"POST", "/api/read", NULL, 2},
        {"QUERY", "/api/read", NULL, 2},   {"GET", "/api/read", NULL, -1},
        {"POST", "/rpc/a", NULL, -1},      {"POST", "/rpc/a", &kind, 1},
        {"POST", "/rpc/a", &other, -1},    {"POST", "/rpc/a", &list, 1},
        {"PUT", "/api/write/x", NULL, -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct rule *r = rules_match(rules, 3, S(rows[i].method), S(rows[i].path),
                                           S(rows[i].path), rows[i].f, rows[i].f ? 1 : 0);
        int got = r ? (int)(r - rules) : -1;
        if (got != rows[i].want)
            fail_msg("row %zu: %s %s: expected rule %d, got %d", i, rows[i].method, rows[i].path,
                     rows[i].want, got);
    }
    assert_int_equal(rules_method_bit(S("QUERY")), RM_QUERY);
    assert_int_equal(rules_method_bit(S("post")), 0); /* methods are case-sensitive */
}

/* Issue 10, re-attack C: a do-not-cache rule matches the strict or (without
 * case) the loose form; an allowing rule needs both; order still decides. */
static void test_match_loose(void **st)
{
    (void)st;
    struct rule rules[3];
    memset(rules, 0, sizeof rules);
    strcpy(rules[0].path, "/public/*");
    rules[0].cache = true;
    strcpy(rules[1].path, "/account/*");
    strcpy(rules[2].path, "/Api/*");
    rules[2].cache = true;
    const struct {
        const char *strict, *loose;
        int want; /* rule index or -1 */
    } rows[] = {
        {"/account/profile", "/account/profile", 1},
        {"//account/profile", "/account/profile", 1},    /* merged slashes */
        {"/account;x/profile", "/account/profile", 1},   /* ;params */
        {"/ACCOUNT/profile", "/ACCOUNT/profile", 1},     /* case */
        {"/%2561ccount/profile", "/account/profile", 1}, /* decoded twice */
        {"/public/x", "/public/x", 0},                   /* the exception, written first */
        {"/public/..%2Faccount/x", "/account/x", 1},     /* escapes it loosely: denied */
        {"//public/x", "/public/x", -1},                 /* loose alone never allows */
        {"/PUBLIC/x", "/PUBLIC/x", -1},
        {"/Api/x", "/Api/x", 2},
        {"/Api/x;v=1", "/Api/x", 2},
        {"/api/x", "/api/x", -1}, /* strict keeps its case */
        {"/other", "/other", -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct rule *r =
            rules_match(rules, 3, S("GET"), S(rows[i].strict), S(rows[i].loose), NULL, 0);
        int got = r ? (int)(r - rules) : -1;
        if (got != rows[i].want)
            fail_msg("row %zu: %s (loosely %s): expected rule %d, got %d", i, rows[i].strict,
                     rows[i].loose, rows[i].want, got);
    }
}

static void test_naming(void **st)
{
    static const char prefixes[][NAMING_PREFIX_LEN] = {"set", "add", "delete", "update", "put"};
    static const struct {
        const char *path;
        int never;
    } rows[] = {
        {"/api/setUser", 1},     {"/api/SetUser", 1}, {"/api/set_user", 1},
        {"/api/set-user", 1},    {"/api/set", 1},     {"/api/delete.json", 1},
        {"/pkg.Svc/AddItem", 1}, {"/api/update/", 1}, {"/api/settings", 0},
        {"/api/address", 0},     {"/api/getUser", 0}, {"/api/setup", 0},
        {"/set/getUser", 0},     {"/api/output", 0},  {"/", 0},
        {"/api/Put2", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rules_never_cache_name(S(rows[i].path), prefixes, 5) != rows[i].never)
            fail_msg("naming '%s': expected %d", rows[i].path, rows[i].never);
}

static char *norm_lim(const char *ct, const char *ce, const void *body, size_t len,
                      const struct norm_limits *lim, int *what, size_t *out_len)
{
    const char *out;
    char *to_free;
    *what = body_normalize(S(ct), S(ce), body, len, lim, &out, out_len, &to_free);
    if (*what < 0 && (out != body || *out_len != len || to_free))
        fail_msg("a body over a limit or undecodable is keyed raw, as sent");
    char *copy = malloc(*out_len + 1);
    memcpy(copy, out, *out_len);
    copy[*out_len] = 0;
    free(to_free);
    return copy;
}

/* Limits on bytes only, like the tests written before values and depth
 * were bounded. */
static char *norm(const char *ct, const char *ce, const void *body, size_t len, size_t max,
                  int *what, size_t *out_len)
{
    struct norm_limits lim = {max, 1u << 24, 64};
    return norm_lim(ct, ce, body, len, &lim, what, out_len);
}

static void test_json(void **st)
{
    static const struct {
        const char *ct, *in, *out;
        int what;
    } rows[] = {
        {"application/json", "{ \"b\": 1, \"a\": [1, 2] }", "{\"a\":[1,2],\"b\":1}", NORM_JSON},
        {"application/json; charset=utf-8", "{\"a\":{\"y\":1,\"x\":2}}",
         "{\"a\":{\"x\":2,\"y\":1}}", NORM_JSON},
        {"application/problem+json", " [3, 1] ", "[3,1]", NORM_JSON},
        {"Application/JSON", "\"\\u00e9\"", "\"\xc3\xa9\"", NORM_JSON},
        /* numbers as written (finding 11): no rounding through a double */
        {"application/json", "1.50", "1.50", NORM_JSON},
        {"application/json", "{ \"amount\" : 0.1000000000000000055511151231257827 }",
         "{\"amount\":0.1000000000000000055511151231257827}", NORM_JSON},
        {"application/json", "[123456789012345678901234567890, -0, 1E+2, 1e-7, 0.0]",
         "[123456789012345678901234567890,-0,1E+2,1e-7,0.0]", NORM_JSON},
        {"application/json", "[01]", "[01]", 0},
        {"application/json", "[1.]", "[1.]", 0},
        {"application/json", "[.5]", "[.5]", 0},
        {"application/json", "[-]", "[-]", 0},
        {"application/json", "[1e]", "[1e]", 0},
        {"application/json", "[+1]", "[+1]", 0},
        /* strings: one escape per character, everything else as UTF-8 */
        {"application/json", "\"\\/\\u0041\\u001F\\b\\u0008\\\"\"", "\"/A\\u001f\\b\\b\\\"\"",
         NORM_JSON},
        {"application/json", "\"\\ud83d\\ude00\\u0000\"", "\"\xf0\x9f\x98\x80\\u0000\"", NORM_JSON},
        {"application/json", "\"\\ud800\"", "\"\\ud800\"", 0}, /* lone high surrogate */
        {"application/json", "\"\\udc00\"", "\"\\udc00\"", 0}, /* lone low surrogate */
        {"application/json", "\"\\ud800\\u0041\"", "\"\\ud800\\u0041\"", 0},
        {"application/json", "\"a\tb\"", "\"a\tb\"", 0},                 /* raw control */
        {"application/json", "\"\xff\"", "\"\xff\"", 0},                 /* not UTF-8 */
        {"application/json", "\"\xc0\xaf\"", "\"\xc0\xaf\"", 0},         /* overlong */
        {"application/json", "\"\xed\xa0\x80\"", "\"\xed\xa0\x80\"", 0}, /* surrogate */
        {"application/json", "\"\\x\"", "\"\\x\"", 0},
        {"application/json", "\"abc", "\"abc", 0},
        /* members sorted at every level, by key bytes */
        {"application/json", "{\"b\":{\"d\":1,\"c\":[{\"z\":0,\"y\":1}]},\"a\":[]}",
         "{\"a\":[],\"b\":{\"c\":[{\"y\":1,\"z\":0}],\"d\":1}}", NORM_JSON},
        {"application/json", "{\"ab\":1,\"a\":2,\"\":3}", "{\"\":3,\"a\":2,\"ab\":1}", NORM_JSON},
        {"application/json", "{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}", 0}, /* duplicates: raw */
        {"application/json", "{\"b\":1,\"a\":1,\"b\":2}", "{\"b\":1,\"a\":1,\"b\":2}", 0},
        {"application/json", "{\"a\":1,\"\\u0061\":2}", "{\"a\":1,\"\\u0061\":2}", 0},
        /* grammar */
        {"application/json", " \t\r\n true \n", "true", NORM_JSON},
        {"application/json", "\fnull", "\fnull", 0},
        {"application/json", "nul", "nul", 0},
        {"application/json", "[1,]", "[1,]", 0},
        {"application/json", "{\"a\":1,}", "{\"a\":1,}", 0},
        {"application/json", "{\"a\" 1}", "{\"a\" 1}", 0},
        {"application/json", "{1:2}", "{1:2}", 0},
        {"application/json", "[] []", "[] []", 0},
        {"application/json", "[", "[", 0},
        {"application/json", "{", "{", 0},
        {"application/json", "", "", 0},
        {"application/json", "{not json", "{not json", 0},
        {"text/plain", "{ \"b\": 1 }", "{ \"b\": 1 }", 0},
        {"application/jsonx", "{ }", "{ }", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int what;
        size_t n;
        char *got = norm(rows[i].ct, "", rows[i].in, strlen(rows[i].in), 1 << 20, &what, &n);
        if (strcmp(got, rows[i].out) || what != rows[i].what)
            fail_msg("row %zu: got '%s' (%d)", i, got, what);
        free(got);
    }
}

static size_t gzip_of(const char *in, size_t len, unsigned char *out, size_t cap, int bits);

/* Bodies that must, and must not, share a key once canonical. */
static void test_json_pairs(void **st)
{
    static const struct {
        const char *a, *b;
        int same;
    } rows[] = {
        /* finding 11: equal as doubles, different as numbers */
        {"{\"amount\":0.1000000000000000055511151231257827}", "{\"amount\":0.1}", 0},
        {"[9007199254740993]", "[9007199254740992]", 0},
        {"[1e400]", "[1e401]", 0},
        {"[1.0]", "[1]", 0},
        {"{\"a\":1, \"b\":[true,null]}", "{ \"b\" : [ true , null ] , \"a\" : 1 }", 1},
        {"\"\\u00e9\\/\"", "\"\xc3\xa9/\"", 1},
        {"\"\\u00E9\"", "\"\\u00e9\"", 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int wa, wb;
        size_t na, nb;
        char *a = norm("application/json", "", rows[i].a, strlen(rows[i].a), 1 << 20, &wa, &na);
        char *b = norm("application/json", "", rows[i].b, strlen(rows[i].b), 1 << 20, &wb, &nb);
        assert_int_equal(wa, NORM_JSON);
        assert_int_equal(wb, NORM_JSON);
        if ((na == nb && !memcmp(a, b, na)) != rows[i].same)
            fail_msg("row %zu: '%s' and '%s'", i, a, b);
        free(a);
        free(b);
    }
}

static char *repeat(const char *unit, size_t n, const char *open, const char *close)
{
    size_t u = strlen(unit), o = strlen(open), c = strlen(close);
    char *s = malloc(o + u * n + c + 1);
    memcpy(s, open, o);
    for (size_t i = 0; i < n; i++)
        memcpy(s + o + i * u, unit, u);
    memcpy(s + o + u * n, close, c + 1);
    return s;
}

/* Issue 10 finding 4: every limit at limit and limit + 1; past one the
 * body is keyed raw, as sent. */
static void test_json_limits(void **st)
{
    int what;
    size_t n;
    char *got;
    /* values: "[0,0,0]" is four */
    struct norm_limits lim = {1 << 20, 4, 64};
    got = norm_lim("application/json", "", "[0, 0, 0]", 9, &lim, &what, &n);
    assert_int_equal(what, NORM_JSON);
    assert_string_equal(got, "[0,0,0]");
    free(got);
    lim.max_values = 3;
    got = norm_lim("application/json", "", "[0, 0, 0]", 9, &lim, &what, &n);
    assert_int_equal(what, -1);
    assert_string_equal(got, "[0, 0, 0]");
    free(got);
    /* the attack's shape, [{},{},...]: one value per object, one array */
    char *objs = repeat("{},", 1000, "[", "{}]");
    lim = (struct norm_limits){1 << 20, 1002, 64};
    got = norm_lim("application/json", "", objs, strlen(objs), &lim, &what, &n);
    assert_int_equal(what, NORM_JSON);
    free(got);
    lim.max_values = 1001;
    got = norm_lim("application/json", "", objs, strlen(objs), &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    /* bytes: the JSON text itself, identity coding */
    lim = (struct norm_limits){strlen(objs), 1u << 20, 64};
    got = norm_lim("application/json", "", objs, strlen(objs), &lim, &what, &n);
    assert_int_equal(what, NORM_JSON);
    free(got);
    lim.max_bytes--;
    got = norm_lim("application/json", "", objs, strlen(objs), &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    /* bytes: decoded size; over it the gzip bytes as sent are the key */
    unsigned char gz[8192];
    size_t gzl = gzip_of(objs, strlen(objs), gz, sizeof gz, 16 + 15);
    lim = (struct norm_limits){strlen(objs), 1u << 20, 64};
    got = norm_lim("application/json", "gzip", gz, gzl, &lim, &what, &n);
    assert_int_equal(what, NORM_DECODED | NORM_JSON);
    free(got);
    lim.max_bytes--;
    got = norm_lim("application/json", "gzip", gz, gzl, &lim, &what, &n);
    assert_int_equal(what, -1);
    assert_int_equal(n, gzl);
    free(got);
    free(objs);
    /* depth: "[[[]]]" is three */
    lim = (struct norm_limits){1 << 20, 1u << 20, 3};
    got = norm_lim("application/json", "", "[[[]]]", 6, &lim, &what, &n);
    assert_int_equal(what, NORM_JSON);
    free(got);
    got = norm_lim("application/json", "", "{\"a\":[{}]}", 10, &lim, &what, &n);
    assert_int_equal(what, NORM_JSON);
    free(got);
    lim.max_depth = 2;
    got = norm_lim("application/json", "", "[[[]]]", 6, &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    got = norm_lim("application/json", "", "{\"a\":[{}]}", 10, &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    /* far deeper than any stack allows: refused at the limit, no crash */
    char *deep = repeat("[", 200000, "", "");
    lim = (struct norm_limits){1 << 20, 1u << 24, 64};
    got = norm_lim("application/json", "", deep, strlen(deep), &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    free(deep);
    deep = repeat("{\"a\":", 100000, "", "");
    got = norm_lim("application/json", "", deep, strlen(deep), &lim, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    free(deep);
}

static size_t gzip_of(const char *in, size_t len, unsigned char *out, size_t cap, int bits)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static void test_codings(void **st)
{
    const char *body = "{\"q\":\"hello\",\"n\":[1,2,3]}";
    const char *canon = "{\"n\":[1,2,3],\"q\":\"hello\"}";
    unsigned char buf[4096];
    int what;
    size_t n, len;
    char *got;
    static const int bits[] = {16 + 15, 15, -15};
    static const char *const names[] = {"gzip", "deflate", "deflate"};
    for (int i = 0; i < 3; i++) {
        len = gzip_of(body, strlen(body), buf, sizeof buf, bits[i]);
        got = norm("application/json", names[i], buf, len, 1 << 20, &what, &n);
        assert_string_equal(got, canon);
        assert_int_equal(what, NORM_DECODED | NORM_JSON);
        free(got);
    }
    len = ZSTD_compress(buf, sizeof buf, body, strlen(body), 3);
    assert_false(ZSTD_isError(len));
    got = norm("application/json", "zstd", buf, len, 1 << 20, &what, &n);
    assert_string_equal(got, canon);
    free(got);
    /* a list is undone last first: zstd(gzip(body)) is "gzip, zstd" */
    unsigned char gz[4096];
    size_t gzl = gzip_of(body, strlen(body), gz, sizeof gz, 16 + 15);
    len = ZSTD_compress(buf, sizeof buf, gz, gzl, 3);
    got = norm("application/json", "gzip, zstd", buf, len, 1 << 20, &what, &n);
    assert_string_equal(got, canon);
    free(got);
    /* unknown, broken, truncated: -1 and the raw bytes */
    got = norm("application/json", "br", body, strlen(body), 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    len = gzip_of(body, strlen(body), buf, sizeof buf, 16 + 15);
    got = norm("application/json", "gzip", buf, len - 4, 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    got = norm("application/json", "zstd", "garbage", 7, 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    /* a bomb: 8 MiB of zeros in a few KiB stops at max_out */
    char *zeros = calloc(1, 8 << 20);
    unsigned char *bomb = malloc(1 << 16);
    len = gzip_of(zeros, 8 << 20, bomb, 1 << 16, 16 + 15);
    got = norm("application/octet-stream", "gzip", bomb, len, 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    got = norm("application/octet-stream", "gzip", bomb, len, 16 << 20, &what, &n);
    assert_int_equal(what, NORM_DECODED);
    assert_int_equal(n, 8 << 20);
    free(got);
    free(zeros);
    free(bomb);
}

/* A zstd frame that does not state its size and asks for a large window
 * (as a streaming compressor writes one) decodes into the output alone: a
 * single-shot decode needs no window of its own. Output past the limit
 * fails, whatever the window. */
static void test_zstd_window(void **st)
{
    const char *body = "{\"w\":1}";
    unsigned char frame[256];
    ZSTD_CCtx *z = ZSTD_createCCtx();
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 27)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, 0)));
    ZSTD_outBuffer ob = {frame, sizeof frame, 0};
    ZSTD_inBuffer ib = {body, strlen(body), 0};
    /* streamed, so the compressor does not shrink the window to the input */
    assert_false(ZSTD_isError(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_continue)));
    assert_int_equal(ZSTD_compressStream2(z, &ob, &ib, ZSTD_e_end), 0);
    ZSTD_freeCCtx(z);
    assert_int_equal(ZSTD_getFrameContentSize(frame, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    int what;
    size_t n;
    char *got = norm("application/json", "zstd", frame, ob.pos, 1 << 20, &what, &n);
    assert_int_equal(what, NORM_DECODED | NORM_JSON);
    assert_string_equal(got, body);
    free(got);
    got = norm("application/json", "zstd", frame, ob.pos, 64, &what, &n);
    assert_int_equal(what, NORM_DECODED | NORM_JSON);
    free(got);
    /* 8 MiB of zeros in a few hundred bytes: past the limit, keyed raw */
    char *zeros = calloc(1, 8 << 20);
    size_t cap = ZSTD_compressBound(8 << 20);
    unsigned char *bomb = malloc(cap);
    size_t blen = ZSTD_compress(bomb, cap, zeros, 8 << 20, 3);
    assert_false(ZSTD_isError(blen));
    got = norm("application/octet-stream", "zstd", bomb, blen, 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    got = norm("application/octet-stream", "zstd", bomb, blen, 8 << 20, &what, &n);
    assert_int_equal(what, NORM_DECODED);
    assert_int_equal(n, 8 << 20);
    free(got);
    /* truncated, and trailing bytes after the frame */
    got = norm("application/octet-stream", "zstd", bomb, blen - 1, 8 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    memcpy(frame + ob.pos, "xy", 2);
    got = norm("application/json", "zstd", frame, ob.pos + 2, 1 << 20, &what, &n);
    assert_int_equal(what, -1);
    free(got);
    free(zeros);
    free(bomb);
}

static void test_digest_field(void **st)
{
    unsigned char sha[32], sha512[64], out[64];
    SHA256((const unsigned char *)"abc", 3, sha);
    SHA512((const unsigned char *)"abc", 3, sha512);
    /* base64 of SHA-256("abc") and SHA-512("abc") */
    const char *b256 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
    const char *b512 =
        "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==";
    char v[300];
    snprintf(v, sizeof v, "sha-256=:%s:", b256);
    assert_int_equal(http_digest_field(S(v), out), HTTP_DIGEST_SHA256);
    assert_memory_equal(out, sha, 32);
    snprintf(v, sizeof v, "unixsum=:AAAA:, sha-256=:%s:;p=1 , sha-512=:%s:", b256, b512);
    assert_int_equal(http_digest_field(S(v), out), HTTP_DIGEST_SHA512);
    assert_memory_equal(out, sha512, 64);
    assert_int_equal(http_digest_field(S("md5=:AAAA:, crc32c=5"), out), HTTP_DIGEST_NONE);
    static const char *const bad[] = {
        "sha-256=:AAAA:",         /* wrong length */
        "sha-256=:not base64!!:", /* alphabet */
        "sha-256=:abc",           /* unterminated */
        "sha-256=abc",            /* not a byte sequence */
        "=:AAAA:",                /* no key */
        "sha-256=:AAAA: junk",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (http_digest_field(S(bad[i]), out) != -1)
            fail_msg("'%s' should be malformed", bad[i]);
}

/* Pairs of requests that must, and must not, share a body key. */
static void test_body_keys(void **st)
{
    static const struct {
        const char *a, *b; /* request heads; the body digest is the same */
        const char *ct_a, *ct_b, *ce_a, *ce_b, *headers;
        int same;
    } rows[] = {
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: H:80\r\n\r\n",
         "application/json", "application/json", "", "", "", 1},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\n\r\n",
         "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8", "", "", "", 1},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "text/plain",
         "application/json", "", "", "", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\n\r\n",
         "multipart/form-data; boundary=A", "multipart/form-data; boundary=a", "", "", "", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x?a HTTP/1.1\r\nHost: h\r\n\r\n", "", "", "",
         "", "", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h2\r\n\r\n", "", "", "",
         "", "", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "", "",
         "gzip", "", "", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\n\r\n",
         "POST /x HTTP/1.1\r\nHost: h\r\nAccept: a/c\r\n\r\n", "", "", "", "", "Accept", 0},
        {"POST /x HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\n\r\n",
         "POST /x HTTP/1.1\r\nHost: h\r\nAccept: a/c\r\n\r\n", "", "", "", "", "", 1},
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\nAccept:\r\n\r\n",
         "", "", "", "", "Accept", 0},
        /* the content type cannot smuggle another line into the key */
        {"POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "POST /x HTTP/1.1\r\nHost: h\r\n\r\n", "a;e=gzip",
         "a", "", "", "", 0},
    };
    static struct http_field fa[HTTP_FIELDS_MAX], fb[HTTP_FIELDS_MAX];
    static struct http_request ra, rb;
    http_request_init(&ra, fa, HTTP_FIELDS_MAX);
    http_request_init(&rb, fb, HTTP_FIELDS_MAX);
    struct http_limits lim = {8192, 65536, 100};
    unsigned char d[32] = {1, 2, 3};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(http_parse_request(rows[i].a, strlen(rows[i].a), &lim, &ra), 0);
        assert_int_equal(http_parse_request(rows[i].b, strlen(rows[i].b), &lim, &rb), 0);
        size_t la, lb;
        char *ka = cache_key_body('P', &ra, CACHE_SCHEME_HTTP, d, S(rows[i].ct_a), S(rows[i].ce_a),
                                  S(rows[i].headers), &la);
        char *kb = cache_key_body('P', &rb, CACHE_SCHEME_HTTP, d, S(rows[i].ct_b), S(rows[i].ce_b),
                                  S(rows[i].headers), &lb);
        int same = la == lb && !memcmp(ka, kb, la);
        if (same != rows[i].same)
            fail_msg("row %zu: keys '%.*s' and '%.*s'", i, (int)la, ka, (int)lb, kb);
        free(ka);
        free(kb);
    }
    /* one more digest bit, another key; another class, another key */
    size_t la, lb, lg;
    assert_int_equal(http_parse_request(rows[0].a, strlen(rows[0].a), &lim, &ra), 0);
    char *ka = cache_key_body('P', &ra, CACHE_SCHEME_HTTP, d, S(""), S(""), S(""), &la);
    unsigned char d2[32] = {1, 2, 4};
    char *kb = cache_key_body('P', &ra, CACHE_SCHEME_HTTP, d2, S(""), S(""), S(""), &lb);
    assert_false(la == lb && !memcmp(ka, kb, la));
    free(kb);
    kb = cache_key_body('Q', &ra, CACHE_SCHEME_HTTP, d, S(""), S(""), S(""), &lb);
    assert_false(la == lb && !memcmp(ka, kb, la));
    /* a body key belongs to its URL for invalidation, and only to it */
    char *g = cache_key_primary(&ra, CACHE_SCHEME_HTTP, &lg);
    assert_true(cache_key_is_body_of(ka, la, g, lg));
    assert_true(cache_key_is_body_of(kb, lb, g, lg));
    assert_false(cache_key_is_body_of(g, lg, g, lg));
    char *g2 = cache_key_for(CACHE_SCHEME_HTTP, S("h"), S("/x2"), &lg);
    assert_false(cache_key_is_body_of(ka, la, g2, lg));
    free(g2);
    char *g3 = cache_key_for(CACHE_SCHEME_HTTP, S("h"), S("/"), &lg);
    assert_false(cache_key_is_body_of(ka, la, g3, lg));
    free(g3);
    /* Connect keys: the other query parameters are in it (issue 10,
     * finding 5), and a Connect key is a body key of its path for PURGE */
    char *r1 = cache_key_rpc(&ra, CACHE_SCHEME_HTTP, S("/p.S/M"), S("json"), S(""), d,
                             S("user=alice"), &la);
    char *r2 =
        cache_key_rpc(&ra, CACHE_SCHEME_HTTP, S("/p.S/M"), S("json"), S(""), d, S("user=bob"), &lb);
    assert_false(la == lb && !memcmp(r1, r2, la));
    free(r2);
    r2 = cache_key_rpc(&ra, CACHE_SCHEME_HTTP, S("/p.S/M"), S("json"), S(""), d, S(""), &lb);
    assert_false(la == lb && !memcmp(r1, r2, la));
    char *gp = cache_key_for(CACHE_SCHEME_HTTP, S("h"), S("/p.S/M"), &lg);
    assert_true(cache_key_is_body_of(r1, la, gp, lg));
    assert_true(cache_key_is_body_of(r2, lb, gp, lg));
    free(gp);
    free(r1);
    free(r2);
    free(g);
    free(ka);
    free(kb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),         cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_loose),  cmocka_unit_test(test_naming),
        cmocka_unit_test(test_json),         cmocka_unit_test(test_codings),
        cmocka_unit_test(test_digest_field), cmocka_unit_test(test_body_keys),
        cmocka_unit_test(test_json_pairs),   cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_zstd_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
