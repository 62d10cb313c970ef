/* List parsing and the hop-by-hop set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/fields.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

static void
test_list(void **st)
{
    struct http_list_iter it = http_list_begin(S(" a , ,b;q=\"x,y\",\tc  ,"));
    struct slice el;
    const char *want[] = {"a", "b;q=\"x,y\"", "c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_list_next(&it, &el), 1);
        assert_int_equal(el.len, strlen(want[i]));
        assert_memory_equal(el.p, want[i], el.len);
    }
    assert_int_equal(http_list_next(&it, &el), 0);
    it = http_list_begin(S("a, \"open"));
    assert_int_equal(http_list_next(&it, &el), 1);
    assert_int_equal(http_list_next(&it, &el), -1);
}

static void test_hop_by_hop(void **st)
{
    struct http_field f[] = {{S("Connection"), S("X-Secret, close"), HF_CONNECTION},
                             {S("X-Secret"), S("1"), HF_OTHER}};
    const char *hop[] = {"Connection",       "keep-alive",          "TE",
                         "Trailer",          "Transfer-Encoding",   "Upgrade",
                         "Proxy-Connection", "Proxy-Authorization", "x-secret",
                         "Content-Length"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++) {
        struct http_field x = {S(hop[i]), S(""), http_field_classify(S(hop[i]))};
        assert_true(http_is_hop_by_hop(&x, f, 2, HTTP_CONN_CLOSE | HTTP_CONN_OTHER));
    }
    const char *end[] = {"Host", "Accept", "X-Other", "Proxy", "Cache-Control", "Via"};
    for (size_t i = 0; i < sizeof end / sizeof end[0]; i++) {
        struct http_field x = {S(end[i]), S(""), http_field_classify(S(end[i]))};
        assert_false(http_is_hop_by_hop(&x, f, 2, HTTP_CONN_CLOSE | HTTP_CONN_OTHER));
    }
    /* Without other names in Connection, X-Secret is end-to-end. */
    struct http_field xs = {S("X-Secret"), S(""), HF_OTHER};
    assert_false(http_is_hop_by_hop(&xs, f, 2, HTTP_CONN_CLOSE));
}

static void test_classify(void **st)
{
    assert_int_equal(http_field_classify(S("HOST")), HF_HOST);
    assert_int_equal(http_field_classify(S("content-Length")), HF_CONTENT_LENGTH);
    assert_int_equal(http_field_classify(S("Transfer-Encoding")), HF_TRANSFER_ENCODING);
    assert_int_equal(http_field_classify(S("Proxy-Foo")), HF_PROXY);
    assert_int_equal(http_field_classify(S("Proxy")), HF_OTHER);
    assert_int_equal(http_field_classify(S("Hosts")), HF_OTHER);
    assert_int_equal(http_field_classify(S("upgradE")), HF_UPGRADE);
    assert_int_equal(http_field_classify(S("trailer")), HF_TRAILER);
    assert_int_equal(http_field_classify(S("x-forwarded-for")), HF_X_FORWARDED_FOR);
    assert_int_equal(http_field_classify(S("")), HF_OTHER);
}

static void test_authority(void **st)
{
    assert_true(http_valid_authority(S("a.example"), false));
    assert_true(http_valid_authority(S("a.example:80"), true));
    assert_true(http_valid_authority(S("[::1]:8080"), true));
    assert_true(http_valid_authority(S("127.0.0.1"), false));
    assert_false(http_valid_authority(S("a.example"), true));
    assert_false(http_valid_authority(S("a:65536"), false));
    assert_false(http_valid_authority(S("[zz]"), false));
    assert_false(http_valid_authority(S("a b"), false));
    assert_false(http_valid_authority(S(":80"), false));
}

/* RFC 7239 §4: pairs of token "=" (token / quoted-string) joined by ";",
 * elements by ",". */
static void test_forwarded(void **st)
{
    static const struct {
        const char *value;
        enum http_forwarded_syntax want;
    } rows[] = {
        {"for=192.0.2.60;proto=http;by=203.0.113.43", HTTP_FORWARDED_WELL_FORMED},
        {"for=\"[2001:db8:cafe::17]:4711\"", HTTP_FORWARDED_WELL_FORMED},
        {"for=a, for=b;proto=https", HTTP_FORWARDED_WELL_FORMED},
        {"for=a; proto=http , ,for=b", HTTP_FORWARDED_WELL_FORMED},
        {"x=\"a\\\"b,c\"", HTTP_FORWARDED_WELL_FORMED},
        {"for=6.6.6.6;proto=https;x=\"", HTTP_FORWARDED_MALFORMED}, /* finding 3 */
        {"x=\"ab\\\"", HTTP_FORWARDED_MALFORMED},                   /* escaped close */
        {"x=\"ab\\", HTTP_FORWARDED_MALFORMED},
        {"for", HTTP_FORWARDED_MALFORMED},
        {"for=", HTTP_FORWARDED_MALFORMED},
        {"=a", HTTP_FORWARDED_MALFORMED},
        {"for =a", HTTP_FORWARDED_MALFORMED},
        {"for=a b", HTTP_FORWARDED_MALFORMED},
        {"for=[::1]", HTTP_FORWARDED_MALFORMED}, /* ":" needs quotes */
        {"for=\"a\"b", HTTP_FORWARDED_MALFORMED},
        {"", HTTP_FORWARDED_MALFORMED},
        {" , ;", HTTP_FORWARDED_MALFORMED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (http_forwarded_check(S(rows[i].value)) != rows[i].want)
            fail_msg("row %zu: %s", i, rows[i].value);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),      cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_authority), cmocka_unit_test(test_classify),
        cmocka_unit_test(test_forwarded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
