/* Cache-Control parsing: directives, arguments, duplicates and Pragma. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_directives),
                                       cmocka_unit_test(test_invalid_and_conflicts),
                                       cmocka_unit_test(test_pragma)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
