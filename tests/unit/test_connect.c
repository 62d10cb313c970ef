/* Connect: descriptor sets, procedure matching, GET queries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "connect/connect.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static unsigned char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* examples/connect/catalog.binpb is protoc's output for catalog.proto. */
static void test_descriptor(void **st)
{
    size_t len;
    unsigned char *buf = read_file("examples/connect/catalog.binpb", &len);
    struct connect_procedures p = {0};
    char err[128];
    assert_int_equal(connect_descriptors_add(&p, buf, len, err, sizeof err), 0);
    /* NO_SIDE_EFFECTS and unary only: not PutItem (none), CountItems
     * (IDEMPOTENT), WatchItem (server streaming) */
    assert_int_equal(p.n, 2);
    assert_string_equal(p.names[0], "/idem.example.v1.CatalogService/FindItem");
    assert_string_equal(p.names[1], "/idem.example.v1.CatalogService/GetItem");
    assert_true(connect_procedure_cacheable(&p, S("/idem.example.v1.CatalogService/GetItem")));
    assert_false(connect_procedure_cacheable(&p, S("/idem.example.v1.CatalogService/PutItem")));
    assert_false(connect_procedure_cacheable(&p, S("/idem.example.v1.CatalogService/GetIte")));
    connect_procedure_add(&p, "/a.B/C", 6);
    connect_procedure_remove(&p, "/idem.example.v1.CatalogService/FindItem", 40);
    assert_int_equal(p.n, 2);
    assert_true(connect_procedure_cacheable(&p, S("/a.B/C")));
    /* every truncation of a valid set is refused or yields a subset: never a crash */
    for (size_t k = 0; k < len; k++) {
        struct connect_procedures q = {0};
        connect_descriptors_add(&q, buf, k, err, sizeof err);
        assert_true(q.n <= 2);
        connect_procedures_free(&q);
    }
    struct connect_procedures q = {0};
    assert_int_equal(connect_descriptors_add(&q,
                                             (const unsigned char *)"\x0a\x05"
                                                                    "ab",
                                             4, err, sizeof err),
                     -1);
    assert_int_equal(connect_descriptors_add(&q, (const unsigned char *)"", 0, err, sizeof err),
                     -1);
    connect_procedures_free(&p);
}

static void test_procedure_of(void **st)
{
    static const struct {
        const char *path, *proc;
    } rows[] = {
        {"/pkg.Svc/Method", "/pkg.Svc/Method"},
        {"/api/v2/pkg.Svc/Method", "/pkg.Svc/Method"},
        {"/Method", ""},
        {"/pkg.Svc/", ""},
        {"//Method", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct slice p = connect_procedure_of(S(rows[i].path));
        if (p.len != strlen(rows[i].proc) || memcmp(p.p, rows[i].proc, p.len))
            fail_msg("'%s': got '%.*s'", rows[i].path, (int)p.len, p.p);
    }
}

static void test_classify(void **st)
{
    static const struct {
        const char *method, *ct, *query, *codec;
        enum connect_call_kind kind;
    } rows[] = {
        {"POST", "application/proto", "", "proto", CONNECT_UNARY},
        {"POST", "application/json; charset=utf-8", "", "json", CONNECT_UNARY},
        {"POST", "application/connect+proto", "", "", CONNECT_STREAM},
        {"POST", "application/grpc-web+proto", "", "", CONNECT_STREAM},
        {"POST", "application/grpc", "", "", CONNECT_STREAM},
        {"POST", "application/x-www-form-urlencoded", "", "", CONNECT_NONE},
        {"POST", "text/plain", "", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=%7B%7D", "json", CONNECT_GET},
        {"GET", "", "message=AA&base64=1&encoding=proto&connect=v1", "proto", CONNECT_GET},
        {"GET", "", "encoding=json", "", CONNECT_NONE},
        {"GET", "", "message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=json&encoding=proto&message=x", "", CONNECT_NONE},
        {"GET", "", "x=1&encoding=json&message=&y", "json", CONNECT_GET},
        /* issue 10, finding 5: read otherwise by the server, so no Connect
         * call a cache can key: form decoding of names, first value wins */
        {"GET", "", "%65ncoding=proto&encoding=json&message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=json&m%65ssage=y&message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=js%6Fn&message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=JSON&message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=text&message=x", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&message=y", "", CONNECT_NONE},
        {"GET", "", "encoding=proto&message=AA&base64=%31", "", CONNECT_NONE},
        {"GET", "", "encoding=proto&message=AA&base64=1&base64=1", "", CONNECT_NONE},
        {"GET", "", "encoding=proto&message=AA&base64=0", "", CONNECT_NONE},
        {"GET", "", "encoding=proto&message=AA&base64", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&connect=v2", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&connect=v1&connect=v1", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&compression=%67zip", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&compression=gzip&compression=br", "", CONNECT_NONE},
        {"GET", "", "encoding=json&message=x&compression=gzip&user=%61lice", "json", CONNECT_GET},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct slice codec = {0};
        enum connect_call_kind k =
            connect_classify(S(rows[i].method), S(rows[i].ct), S(rows[i].query), &codec);
        if (k != rows[i].kind ||
            (k != CONNECT_NONE && k != CONNECT_STREAM &&
             (codec.len != strlen(rows[i].codec) || memcmp(codec.p, rows[i].codec, codec.len))))
            fail_msg("row %zu: kind %d codec '%.*s'", i, k, (int)codec.len, codec.p);
    }
}

static void test_get_message(void **st)
{
    static const struct {
        const char *query, *message; /* NULL: malformed */
        size_t len;
    } rows[] = {
        {"encoding=json&message=%7B%22name%22%3A%22Buf%22%7D", "{\"name\":\"Buf\"}", 14},
        {"encoding=json&message=%7B%22a%22:%22x+y%22%7D", "{\"a\":\"x y\"}", 11},
        {"encoding=proto&base64=1&message=CgNCdWY",
         "\x0a\x03"
         "Buf",
         5},
        {"encoding=proto&base64=1&message=CgNCdWY%3D",
         "\x0a\x03"
         "Buf",
         5},
        {"encoding=proto&base64=1&message=CgNCdWY=",
         "\x0a\x03"
         "Buf",
         5},
        {"encoding=proto&base64=1&message=-_8", "\xfb\xff", 2},
        {"encoding=proto&base64=1&message=C", NULL, 0},
        {"encoding=proto&base64=1&message=Cg+=", NULL, 0},
        {"encoding=json&message=%7", NULL, 0},
        {"encoding=json&message=%zz", NULL, 0},
        {"encoding=json&message=", "", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct connect_get g;
        assert_int_equal(connect_get_parse(S(rows[i].query), &g), 0);
        size_t len = 0;
        char *m = connect_get_message(&g, 1 << 20, &len);
        if (!rows[i].message) {
            if (m)
                fail_msg("row %zu should be malformed", i);
            continue;
        }
        if (!m || len != rows[i].len || memcmp(m, rows[i].message, len))
            fail_msg("row %zu: got %zu bytes", i, m ? len : 0);
        free(m);
    }
    struct connect_get g;
    assert_int_equal(connect_get_parse(S("encoding=json&message=abcdef"), &g), 0);
    size_t len;
    assert_null(connect_get_message(&g, 5, &len)); /* over the bound */
}

/* What a Connect GET keeps in its key beside the message (issue 10,
 * finding 5): every parameter that is not Connect's, as sent, in order. */
static void test_query_rest(void **st)
{
    (void)st;
    static const struct {
        const char *query, *rest;
    } rows[] = {
        {"encoding=json&message=x", ""},
        {"encoding=json&message=x&user=alice", "user=alice"},
        {"user=bob&encoding=json&message=x", "user=bob"},
        {"a=1&connect=v1&b&encoding=proto&base64=1&c=%20&message=AA&compression=gzip&d=",
         "a=1&b&c=%20&d="},
        {"encoding=json&message=x&user=a&user=b", "user=a&user=b"},
        {"%75ser=x&encoding=json&message=x", "%75ser=x"},
        {"", ""},
        {"a", "a"},
        {"encoding=json&message=x&", ""},
        {"=&a=1", "=&a=1"},
        {"&a=1&&encoding=json&&b&", "a=1&b"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct slice q = S(rows[i].query);
        char *out = malloc(q.len + 1);
        size_t n = connect_query_rest(q, out);
        if (n != strlen(rows[i].rest) || memcmp(out, rows[i].rest, n))
            fail_msg("row %zu: '%.*s', want '%s'", i, (int)n, out, rows[i].rest);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor), cmocka_unit_test(test_procedure_of),
        cmocka_unit_test(test_classify),   cmocka_unit_test(test_get_message),
        cmocka_unit_test(test_query_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
