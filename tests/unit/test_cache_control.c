/* Cache-Control parsing: directives, arguments, duplicates and Pragma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "cache/cache_control.h"

static struct cache_control cc;

static void parse(const char *a, const char *b)
{
    struct http_field f[2] = {{{"Cache-Control", 13}, {a, strlen(a)}, HF_OTHER},
                              {{"Cache-Control", 13}, {b ? b : "", b ? strlen(b) : 0}, HF_OTHER}};
    cache_control_parse(f, b ? 2 : 1, &cc);
}

static void test_directives(void **st)
{
    parse("public, max-age=60, S-MAXAGE=\"30\", must-revalidate", NULL);
    assert_int_equal(cc.flags, CC_PUBLIC | CC_MUST_REVALIDATE);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 30);
    parse("no-store", "no-cache=\"Set-Cookie, X\", private");
    assert_int_equal(cc.flags, CC_NO_STORE | CC_NO_CACHE | CC_PRIVATE);
    parse("max-stale, min-fresh=5, only-if-cached, stale-if-error=9, stale-while-revalidate=7",
          NULL);
    assert_true(cc.max_stale == CC_ANY);
    assert_int_equal(cc.min_fresh, 5);
    assert_int_equal(cc.stale_if_error, 9);
    assert_int_equal(cc.stale_while_revalidate, 7);
    assert_true(cc.flags & CC_ONLY_IF_CACHED);
    parse("x-ext=\"a,b\", community=\"UCI\"", NULL);
    assert_int_equal(cc.flags, 0);
    assert_int_equal(cc.max_age, CC_UNSET);
}

static void test_invalid_and_conflicts(void **st)
{
    parse("max-age=abc", NULL);
    assert_true(cc.flags & CC_INVALID);
    parse("max-age", NULL);
    assert_true(cc.flags & CC_INVALID);
    parse("max-age=10", "max-age=20");
    assert_true(cc.flags & CC_INVALID);
    assert_int_equal(cc.max_age, 10);
    parse("max-age=10", "max-age=10");
    assert_false(cc.flags & CC_INVALID);
    parse("max-age=99999999999999999999", NULL);
    assert_true(cc.max_age == CC_DELTA_MAX); /* §1.2.2 */
}

static void test_pragma(void **st)
{
    struct http_field p[] = {{{"Pragma", 6}, {"no-cache", 8}, HF_OTHER}};
    cache_control_parse(p, 1, &cc);
    assert_true(cache_control_req_no_cache(&cc));
    struct http_field both[] = {{{"Pragma", 6}, {"no-cache", 8}, HF_OTHER},
                                {{"Cache-Control", 13}, {"max-age=5", 9}, HF_OTHER}};
    cache_control_parse(both, 2, &cc);
    assert_false(cache_control_req_no_cache(&cc)); /* §5.4: Cache-Control wins */
}

/* RFC 9213: (target list, response fields) -> applied?, and what. */
static const struct {
    const char *name, *targets, *fields;
    int applied;
    unsigned flags;
    int64_t max_age, s_maxage, swr, sie;
} targeted_rows[] = {
    {"cdn max-age", "CDN-Cache-Control", "CDN-Cache-Control: max-age=600\n", 1, 0, 600, -1, -1, -1},
    {"no field", "CDN-Cache-Control", "Cache-Control: max-age=5\n", 0, 0, -1, -1, -1, -1},
    {"case-insensitive name", "CDN-Cache-Control", "cdn-cache-control: no-store\n", 1, CC_NO_STORE,
     -1, -1, -1, -1},
    {"empty is ignored", "CDN-Cache-Control", "CDN-Cache-Control: \n", 0, 0, -1, -1, -1, -1},
    {"invalid is ignored", "CDN-Cache-Control", "CDN-Cache-Control: max-age=60,\n", 0, 0, -1, -1,
     -1, -1},
    {"uppercase key is invalid", "CDN-Cache-Control", "CDN-Cache-Control: Max-Age=60\n", 0, 0, -1,
     -1, -1, -1},
    {"first on the list wins", "Idem-CC, CDN-Cache-Control",
     "CDN-Cache-Control: max-age=10\nIdem-CC: max-age=20\n", 1, 0, 20, -1, -1, -1},
    {"an invalid first falls to the next", "Idem-CC, CDN-Cache-Control",
     "CDN-Cache-Control: max-age=10\nIdem-CC: max-age=(\n", 1, 0, 10, -1, -1, -1},
    {"not on the list", "CDN-Cache-Control", "Other-Cache-Control: max-age=10\n", 0, 0, -1, -1, -1,
     -1},
    {"empty list", "", "CDN-Cache-Control: max-age=10\n", 0, 0, -1, -1, -1, -1},
    {"all directives", "CDN-Cache-Control",
     "CDN-Cache-Control: max-age=60, must-revalidate, no-cache, private, "
     "stale-while-revalidate=5, stale-if-error=9, s-maxage=7, x-unknown=3\n",
     1, CC_MUST_REVALIDATE | CC_NO_CACHE | CC_PRIVATE, 60, 7, 5, 9},
    {"decimal max-age not consumed", "CDN-Cache-Control", "CDN-Cache-Control: max-age=1.5\n", 1, 0,
     -1, -1, -1, -1},
    {"negative max-age not consumed", "CDN-Cache-Control", "CDN-Cache-Control: max-age=-1\n", 1, 0,
     -1, -1, -1, -1},
    {"string max-age not consumed", "CDN-Cache-Control", "CDN-Cache-Control: max-age=\"9\"\n", 1, 0,
     -1, -1, -1, -1},
    {"false boolean", "CDN-Cache-Control", "CDN-Cache-Control: no-store=?0, max-age=3\n", 1, 0, 3,
     -1, -1, -1},
    {"string no-store not consumed", "CDN-Cache-Control", "CDN-Cache-Control: no-store=\"x\"\n", 1,
     0, -1, -1, -1, -1},
    {"qualified no-cache", "CDN-Cache-Control", "CDN-Cache-Control: no-cache=\"Set-Cookie\"\n", 1,
     CC_NO_CACHE, -1, -1, -1, -1},
    {"last key wins", "CDN-Cache-Control", "CDN-Cache-Control: max-age=10, max-age=20\n", 1, 0, 20,
     -1, -1, -1},
    {"last key wins across lines", "CDN-Cache-Control",
     "CDN-Cache-Control: no-store\nCDN-Cache-Control: no-store=?0, max-age=4\n", 1, 0, 4, -1, -1,
     -1},
    {"one bad line spoils the field", "CDN-Cache-Control",
     "CDN-Cache-Control: max-age=10\nCDN-Cache-Control: ;\n", 0, 0, -1, -1, -1, -1},
    {"parameters ignored", "CDN-Cache-Control", "CDN-Cache-Control: max-age=10;foo=bar\n", 1, 0, 10,
     -1, -1, -1},
    {"saturates", "CDN-Cache-Control", "CDN-Cache-Control: max-age=999999999999999\n", 1, 0,
     CC_DELTA_MAX, -1, -1, -1},
};

static void test_targeted(void **st)
{
    for (size_t i = 0; i < sizeof targeted_rows / sizeof targeted_rows[0]; i++) {
        /* "Name: value\n" lines into fields */
        struct http_field f[8];
        unsigned n = 0;
        const char *p = targeted_rows[i].fields;
        while (*p) {
            const char *colon = strchr(p, ':'), *nl = strchr(p, '\n');
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            f[n++] = (struct http_field){{p, (size_t)(colon - p)}, {v, (size_t)(nl - v)}, HF_OTHER};
            p = nl + 1;
        }
        struct cache_control out = {0x7fff, 1, 1, 1, 1, 1, 1}; /* untouched unless applied */
        const char *t = targeted_rows[i].targets;
        int applied = cache_control_targeted(f, n, (struct slice){t, strlen(t)}, &out);
        if (applied != targeted_rows[i].applied)
            fail_msg("%s: applied %d", targeted_rows[i].name, applied);
        if (!applied) {
            assert_int_equal(out.flags, 0x7fff);
            continue;
        }
        if (out.flags != targeted_rows[i].flags || out.max_age != targeted_rows[i].max_age ||
            out.s_maxage != targeted_rows[i].s_maxage ||
            out.stale_while_revalidate != targeted_rows[i].swr ||
            out.stale_if_error != targeted_rows[i].sie)
            fail_msg("%s: flags %x max-age %lld s-maxage %lld swr %lld sie %lld",
                     targeted_rows[i].name, out.flags, (long long)out.max_age,
                     (long long)out.s_maxage, (long long)out.stale_while_revalidate,
                     (long long)out.stale_if_error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directives), cmocka_unit_test(test_invalid_and_conflicts),
        cmocka_unit_test(test_pragma), cmocka_unit_test(test_targeted)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
