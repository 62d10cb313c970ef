/* RFC 9111 policy tables: (request directives, response head, times) ->
 * storable?, lifetime, decision. Times are seconds; the response Date is
 * T0 unless the head says otherwise, and it arrived at T0. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "cache/policy.h"
#include "http/date.h"

#define T0 1795521600 /* Tue, 24 Nov 2026 12:00:00 GMT */
#define D0 "Tue, 24 Nov 2026 12:00:00 GMT"

static struct http_response res;
static char buf[2048];

static void facts(int status, const char *fields, struct cache_response_facts *r)
{
    static const struct http_limits lim = {8192, 65536, 100};
    snprintf(buf, sizeof buf, "HTTP/1.1 %d X\r\n%s\r\n", status, fields);
    assert_int_equal(http_parse_response(buf, strlen(buf), &lim, &res), 0);
    cache_response_facts(res.fields, res.nfields, status, r);
}

static void req_cc(const char *v, struct cache_control *cc)
{
    struct http_field f = {{"Cache-Control", 13}, {v, strlen(v)}, HF_OTHER};
    cache_control_parse(&f, v[0] ? 1 : 0, cc);
}

static const struct {
    const char *name;
    int method_ok, auth;
    const char *req;
    int status;
    const char *fields;
    enum cache_store_verdict want;
} store_rows[] = {
    {"max-age 200", 1, 0, "", 200, "Cache-Control: max-age=60\r\n", STORE_OK},
    {"heuristic 200", 1, 0, "", 200, "Last-Modified: " D0 "\r\n", STORE_OK},
    {"heuristic 404", 1, 0, "", 404, "", STORE_OK},
    {"302 no freshness", 1, 0, "", 302, "", STORE_NO_FRESHNESS},
    {"302 max-age", 1, 0, "", 302, "Cache-Control: max-age=5\r\n", STORE_OK},
    {"500 expires", 1, 0, "", 500, "Expires: " D0 "\r\n", STORE_OK},
    {"500 bare", 1, 0, "", 500, "", STORE_NO_FRESHNESS},
    {"no-store", 1, 0, "", 200, "Cache-Control: max-age=60, no-store\r\n", STORE_NO_STORE},
    {"request no-store", 1, 0, "no-store", 200, "Cache-Control: max-age=60\r\n", STORE_NO_STORE},
    {"private", 1, 0, "", 200, "Cache-Control: private, max-age=60\r\n", STORE_PRIVATE},
    {"private qualified", 1, 0, "", 200, "Cache-Control: private=\"X\", max-age=60\r\n",
     STORE_PRIVATE},
    {"authorization", 1, 1, "", 200, "Cache-Control: max-age=60\r\n", STORE_AUTHORIZATION},
    {"authorization public", 1, 1, "", 200, "Cache-Control: public, max-age=60\r\n", STORE_OK},
    {"authorization s-maxage", 1, 1, "", 200, "Cache-Control: s-maxage=60\r\n", STORE_OK},
    {"authorization must-revalidate", 1, 1, "", 200,
     "Cache-Control: must-revalidate, max-age=9\r\n", STORE_OK},
    {"vary star", 1, 0, "", 200, "Cache-Control: max-age=60\r\nVary: Accept, *\r\n",
     STORE_VARY_STAR},
    /* issue 10: a Vary member that is no field name cannot be keyed */
    {"vary unterminated quote", 1, 0, "", 200,
     "Cache-Control: max-age=60\r\nVary: Accept, \"x, Cookie\r\n", STORE_VARY_INVALID},
    {"vary with a parameter", 1, 0, "", 200, "Cache-Control: max-age=60\r\nVary: Cookie;q=1\r\n",
     STORE_VARY_INVALID},
    {"vary quoted name", 1, 0, "", 200, "Cache-Control: max-age=60\r\nVary: \"Cookie\"\r\n",
     STORE_VARY_INVALID},
    {"vary names over two lines", 1, 0, "", 200,
     "Cache-Control: max-age=60\r\nVary: Accept\r\nVary: , Cookie,\r\n", STORE_OK},
    /* an unterminated quote hides the rest of the line: never stored */
    {"cache-control unterminated quote hides private", 1, 0, "", 200,
     "Cache-Control: max-age=60, ext=\"unterminated, private\r\n", STORE_CC_INVALID},
    {"cache-control unterminated quote, no-store on it", 1, 0, "", 200,
     "Cache-Control: max-age=60, ext=\"a, no-store\r\n", STORE_CC_INVALID},
    {"cache-control quoted comma is fine", 1, 0, "", 200,
     "Cache-Control: max-age=60, ext=\"a, b\"\r\n", STORE_OK},
    {"206", 1, 0, "", 206, "Cache-Control: max-age=60\r\n", STORE_STATUS},
    {"304", 1, 0, "", 304, "Cache-Control: max-age=60\r\n", STORE_STATUS},
    {"POST", 0, 0, "", 200, "Cache-Control: max-age=60\r\n", STORE_METHOD},
    {"must-understand overrides no-store", 1, 0, "", 200,
     "Cache-Control: must-understand, no-store, max-age=9\r\n", STORE_OK},
    {"must-understand unknown status", 1, 0, "", 299,
     "Cache-Control: must-understand, no-store, max-age=9\r\n", STORE_STATUS},
    {"public without freshness", 1, 0, "", 500, "Cache-Control: public\r\n", STORE_OK},
    {"set-cookie", 1, 0, "", 200, "Cache-Control: max-age=60\r\nSet-Cookie: s=1\r\n",
     STORE_SET_COOKIE},
    {"set-cookie public", 1, 0, "", 200, "Cache-Control: public, max-age=60\r\nSet-Cookie: s=1\r\n",
     STORE_OK},
};

static void test_storable(void **st)
{
    for (int v = 0; v < STORE__COUNT; v++)
        assert_non_null(cache_store_reason((enum cache_store_verdict)v));
    for (size_t i = 0; i < sizeof store_rows / sizeof store_rows[0]; i++) {
        struct cache_response_facts r;
        struct cache_control rc;
        facts(store_rows[i].status, store_rows[i].fields, &r);
        req_cc(store_rows[i].req, &rc);
        enum cache_store_verdict v =
            cache_storable(store_rows[i].method_ok, &rc, store_rows[i].auth, &r);
        if (v != store_rows[i].want)
            fail_msg("%s: %s, want %s", store_rows[i].name, cache_store_reason(v),
                     cache_store_reason(store_rows[i].want));
    }
}

static const struct {
    const char *name;
    int status;
    const char *fields;
    int64_t lifetime;
    int heuristic;
} life_rows[] = {
    {"s-maxage wins", 200, "Cache-Control: max-age=10, s-maxage=20\r\nDate: " D0 "\r\n", 20, 0},
    {"max-age over expires", 200,
     "Cache-Control: max-age=10\r\nExpires: Tue, 24 Nov 2026 13:00:00 GMT\r\nDate: " D0 "\r\n", 10,
     0},
    {"expires - date", 200, "Expires: Tue, 24 Nov 2026 13:00:00 GMT\r\nDate: " D0 "\r\n", 3600, 0},
    {"expires no date: response time", 200, "Expires: Tue, 24 Nov 2026 12:01:00 GMT\r\n", 60, 0},
    {"expires invalid", 200, "Expires: 0\r\nDate: " D0 "\r\n", 0, 0},
    {"expires in the past", 200, "Expires: Tue, 24 Nov 2026 11:00:00 GMT\r\nDate: " D0 "\r\n", 0,
     0},
    {"two expires", 200,
     "Expires: Tue, 24 Nov 2026 13:00:00 GMT\r\nExpires: Tue, 24 Nov 2026 14:00:00 GMT\r\nDate: " D0
     "\r\n",
     0, 0},
    {"heuristic 10%", 200, "Last-Modified: Tue, 14 Nov 2026 12:00:00 GMT\r\nDate: " D0 "\r\n",
     86400, 1},
    {"heuristic capped", 200, "Last-Modified: Tue, 24 Nov 2020 12:00:00 GMT\r\nDate: " D0 "\r\n",
     86400, 1},
    {"heuristic small", 200, "Last-Modified: Tue, 24 Nov 2026 11:00:00 GMT\r\nDate: " D0 "\r\n",
     360, 1},
    {"no heuristic for 500", 500,
     "Last-Modified: Tue, 24 Nov 2026 11:00:00 GMT\r\nDate: " D0 "\r\n", 0, 0},
    {"invalid max-age is stale", 200,
     "Cache-Control: max-age=1x\r\nExpires: Tue, 24 Nov 2026 13:00:00 GMT\r\n", 0, 0},
    {"conflicting max-age is stale", 200, "Cache-Control: max-age=10, max-age=20\r\n", 0, 0},
    {"nothing", 200, "", 0, 0},
};

static void test_lifetime(void **st)
{
    for (size_t i = 0; i < sizeof life_rows / sizeof life_rows[0]; i++) {
        struct cache_response_facts r;
        facts(life_rows[i].status, life_rows[i].fields, &r);
        int h;
        int64_t l = cache_lifetime(&r, T0, 10, 86400, &h);
        if (l != life_rows[i].lifetime || h != life_rows[i].heuristic)
            fail_msg("%s: lifetime %lld (heuristic %d), want %lld (%d)", life_rows[i].name,
                     (long long)l, h, (long long)life_rows[i].lifetime, life_rows[i].heuristic);
    }
}

static void test_age(void **st)
{
    struct cache_response_facts r;
    /* Date 10 s before receipt, Age 5, request took 2 s, now 100 s later. */
    facts(200, "Date: Tue, 24 Nov 2026 11:59:50 GMT\r\nAge: 5\r\n", &r);
    assert_int_equal(cache_age(&r, T0 - 2, T0, T0 + 100), 10 + 100); /* apparent 10 > 5 + 2 */
    facts(200, "Date: " D0 "\r\nAge: 30\r\n", &r);
    assert_int_equal(cache_age(&r, T0 - 2, T0, T0 + 1), 32 + 1);
    facts(200, "Date: Tue, 24 Nov 2026 12:10:00 GMT\r\n", &r); /* origin clock ahead */
    assert_int_equal(cache_age(&r, T0, T0, T0), 0);
    facts(200, "Age: junk\r\n", &r);
    assert_int_equal(cache_age(&r, T0, T0, T0 + 3), 3);
    /* §4.2.3 step by step: apparent 0 (no Date), response_delay 4,
     * corrected_age_value 100 + 4, resident 6. */
    facts(200, "Age: 100\r\n", &r);
    assert_int_equal(cache_age(&r, T0 - 4, T0, T0 + 6), 110);
    /* apparent_age 50 wins over corrected_age_value 20 + 0 */
    facts(200, "Date: Tue, 24 Nov 2026 11:59:10 GMT\r\nAge: 20\r\n", &r);
    assert_int_equal(cache_age(&r, T0, T0, T0), 50);
}

/* §5.1 Age: delta-seconds, first line, first member; anything else is
 * as if absent; too large saturates at 2^31 (§1.2.2). */
static const struct {
    const char *fields;
    int64_t want;
} age_rows[] = {
    {"", 0},
    {"Age: 3600\r\n", 3600},
    {"Age: 0\r\n", 0},
    {"Age: -1\r\n", 0},
    {"Age: 1.5\r\n", 0},
    {"Age: abc\r\n", 0},
    {"Age: \r\n", 0},
    {"Age: 12abc\r\n", 0},
    {"Age: +5\r\n", 0},
    {"Age: old, 0\r\n", 0},
    {"Age: 0\r\nAge: old\r\n", 0},
    {"Age: 0, 0\r\n", 0},
    {"Age: 7, 3\r\n", 7},
    {"Age: 7 , 3\r\n", 7},
    {"Age: 7\r\nAge: 3\r\n", 7},
    {"Age: old\r\nAge: 9\r\n", 0},
    {"age: 42\r\n", 42},
    {"Age: \"5\"\r\n", 0},
    {"Age: 2147483647\r\n", 2147483647},
    {"Age: 2147483648\r\n", 2147483648LL},
    {"Age: 2147483649\r\n", 2147483648LL},
    {"Age: 99999999999999999999999999\r\n", 2147483648LL},
    {"Age: 000000000000000000000000000012\r\n", 12},
};

static void test_age_value(void **st)
{
    for (size_t i = 0; i < sizeof age_rows / sizeof age_rows[0]; i++) {
        struct cache_response_facts r;
        facts(200, age_rows[i].fields, &r);
        if (r.age != age_rows[i].want)
            fail_msg("%s: age_value %lld, want %lld", age_rows[i].fields, (long long)r.age,
                     (long long)age_rows[i].want);
    }
    /* An origin or parent saying Age 3600 with max-age=60: stale on arrival. */
    struct cache_response_facts r;
    struct cache_control rc;
    req_cc("", &rc);
    facts(200, "Date: " D0 "\r\nCache-Control: max-age=60\r\nAge: 3600\r\n", &r);
    int h;
    int64_t life = cache_lifetime(&r, T0, 10, 86400, &h);
    assert_int_equal(cache_age(&r, T0, T0, T0), 3600);
    assert_int_equal(cache_decide(&rc, &r, life, cache_age(&r, T0, T0, T0)), DECIDE_REVALIDATE);
    facts(200, "Date: " D0 "\r\nCache-Control: max-age=60\r\nAge: 59\r\n", &r);
    assert_int_equal(cache_decide(&rc, &r, life, cache_age(&r, T0, T0, T0)), DECIDE_FRESH);
    assert_int_equal(cache_decide(&rc, &r, life, cache_age(&r, T0, T0, T0 + 1)), DECIDE_REVALIDATE);
    static const char *const huge[] = {"2147483647", "2147483648", "2147483649"};
    for (int k = 0; k < 3; k++) {
        char f[128];
        snprintf(f, sizeof f, "Cache-Control: max-age=2147483646\r\nAge: %s\r\n", huge[k]);
        facts(200, f, &r);
        life = cache_lifetime(&r, T0, 10, 86400, &h);
        assert_int_equal(cache_decide(&rc, &r, life, cache_age(&r, T0, T0, T0)), DECIDE_REVALIDATE);
    }
}

/* RFC 9213 §2.2: a valid targeted field replaces Cache-Control and Expires. */
static void test_targeted(void **st)
{
    struct cache_response_facts r;
    struct cache_control rc;
    const struct slice cdn = SLICE_LIT("CDN-Cache-Control");
    int h;
    req_cc("", &rc);
    facts(200, "Cache-Control: no-store\r\nCDN-Cache-Control: max-age=600\r\nDate: " D0 "\r\n", &r);
    assert_int_equal(cache_storable(1, &rc, 0, &r), STORE_NO_STORE);
    assert_true(cache_facts_targeted(res.fields, res.nfields, cdn, &r));
    assert_true(r.targeted);
    assert_int_equal(cache_storable(1, &rc, 0, &r), STORE_OK);
    assert_int_equal(cache_lifetime(&r, T0, 10, 86400, &h), 600);
    facts(200,
          "Expires: Tue, 24 Nov 2026 13:00:00 GMT\r\nCDN-Cache-Control: no-cache\r\nDate: " D0
          "\r\n",
          &r);
    assert_true(cache_facts_targeted(res.fields, res.nfields, cdn, &r));
    assert_int_equal(cache_lifetime(&r, T0, 10, 86400, &h), 0); /* Expires ignored too */
    assert_int_equal(cache_decide(&rc, &r, 600, 0), DECIDE_REVALIDATE);
    facts(200, "Cache-Control: max-age=60\r\nCDN-Cache-Control: no-store\r\n", &r);
    assert_true(cache_facts_targeted(res.fields, res.nfields, cdn, &r));
    assert_int_equal(cache_storable(1, &rc, 0, &r), STORE_NO_STORE);
    facts(200, "Cache-Control: max-age=60\r\nCDN-Cache-Control: max-age=1.5\r\n", &r);
    /* valid, so it still replaces Cache-Control: no explicit freshness left */
    assert_true(cache_facts_targeted(res.fields, res.nfields, cdn, &r));
    assert_int_equal(cache_lifetime(&r, T0, 10, 86400, &h), 0);
    facts(200, "Cache-Control: max-age=60\r\nCDN-Cache-Control: max-age=10,\r\n", &r);
    assert_false(cache_facts_targeted(res.fields, res.nfields, cdn, &r));
    assert_false(r.targeted);
    assert_int_equal(cache_lifetime(&r, T0, 10, 86400, &h), 60);
}

static const struct {
    const char *name;
    const char *req;
    const char *fields;
    int64_t lifetime, age;
    enum cache_decision want;
} decide_rows[] = {
    {"fresh", "", "", 60, 10, DECIDE_FRESH},
    {"exactly expired", "", "", 60, 60, DECIDE_REVALIDATE},
    {"stale", "", "", 60, 61, DECIDE_REVALIDATE},
    {"request no-cache", "no-cache", "", 60, 1, DECIDE_REVALIDATE},
    {"response no-cache", "", "Cache-Control: no-cache, max-age=60\r\n", 60, 1, DECIDE_REVALIDATE},
    {"request max-age too old", "max-age=5", "", 60, 10, DECIDE_REVALIDATE},
    {"request max-age ok", "max-age=20", "", 60, 10, DECIDE_FRESH},
    {"request max-age=0", "max-age=0", "", 60, 1, DECIDE_REVALIDATE},
    {"min-fresh unmet", "min-fresh=55", "", 60, 10, DECIDE_REVALIDATE},
    {"min-fresh met", "min-fresh=50", "", 60, 10, DECIDE_FRESH},
    {"max-stale any", "max-stale", "", 60, 1000, DECIDE_STALE_OK},
    {"max-stale bounded ok", "max-stale=10", "", 60, 70, DECIDE_STALE_OK},
    {"max-stale bounded too old", "max-stale=10", "", 60, 71, DECIDE_REVALIDATE},
    {"max-stale vs must-revalidate", "max-stale", "Cache-Control: must-revalidate\r\n", 60, 61,
     DECIDE_REVALIDATE},
    {"max-stale vs s-maxage", "max-stale", "Cache-Control: s-maxage=60\r\n", 60, 61,
     DECIDE_REVALIDATE},
    {"max-stale vs proxy-revalidate", "max-stale", "Cache-Control: proxy-revalidate\r\n", 60, 61,
     DECIDE_REVALIDATE},
    {"swr inside window", "", "Cache-Control: max-age=60, stale-while-revalidate=30\r\n", 60, 80,
     DECIDE_STALE_SWR},
    {"swr outside window", "", "Cache-Control: max-age=60, stale-while-revalidate=30\r\n", 60, 91,
     DECIDE_REVALIDATE},
    {"swr vs must-revalidate", "",
     "Cache-Control: max-age=60, must-revalidate, stale-while-revalidate=30\r\n", 60, 61,
     DECIDE_REVALIDATE},
    {"pragma no-cache", "", "", 60, 1, DECIDE_FRESH},
};

static void test_decide(void **st)
{
    for (size_t i = 0; i < sizeof decide_rows / sizeof decide_rows[0]; i++) {
        struct cache_response_facts r;
        struct cache_control rc;
        facts(200, decide_rows[i].fields, &r);
        req_cc(decide_rows[i].req, &rc);
        enum cache_decision d = cache_decide(&rc, &r, decide_rows[i].lifetime, decide_rows[i].age);
        if (d != decide_rows[i].want)
            fail_msg("%s: %s, want %s", decide_rows[i].name, cache_decision_name(d),
                     cache_decision_name(decide_rows[i].want));
    }
    struct http_field pragma = {{"Pragma", 6}, {"no-cache", 8}, HF_OTHER};
    struct cache_control rc;
    struct cache_response_facts r;
    cache_control_parse(&pragma, 1, &rc);
    facts(200, "", &r);
    assert_int_equal(cache_decide(&rc, &r, 60, 1), DECIDE_REVALIDATE);
}

static void test_stale_if_error(void **st)
{
    struct cache_response_facts r;
    struct cache_control rc;
    req_cc("", &rc);
    facts(200, "Cache-Control: max-age=60, stale-if-error=100\r\n", &r);
    assert_true(cache_stale_if_error(&rc, &r, 60, 160));
    assert_false(cache_stale_if_error(&rc, &r, 60, 161));
    facts(200, "Cache-Control: max-age=60\r\n", &r);
    assert_false(cache_stale_if_error(&rc, &r, 60, 61));
    req_cc("stale-if-error=5", &rc);
    assert_true(cache_stale_if_error(&rc, &r, 60, 65));
    facts(200, "Cache-Control: max-age=60, must-revalidate, stale-if-error=100\r\n", &r);
    assert_false(cache_stale_if_error(&rc, &r, 60, 61));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_age_value),
        cmocka_unit_test(test_targeted),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_stale_if_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
