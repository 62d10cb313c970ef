/* Range (RFC 9110 §14.1.1, §14.2): (field value, size, limit) -> verdict
 * and the one range served. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/range.h"

static const struct {
    const char *value;
    uint64_t size;
    enum http_range_verdict want;
    uint64_t first, last;
} rows[] = {
    {"bytes=0-4", 10, HTTP_RANGE_SINGLE, 0, 4},
    {"bytes=5-", 10, HTTP_RANGE_SINGLE, 5, 9},
    {"bytes=-3", 10, HTTP_RANGE_SINGLE, 7, 9},
    {"bytes=-30", 10, HTTP_RANGE_SINGLE, 0, 9},
    {"bytes=2-100", 10, HTTP_RANGE_SINGLE, 2, 9},
    {"bytes=9-9", 10, HTTP_RANGE_SINGLE, 9, 9},
    {"BYTES=1-2", 10, HTTP_RANGE_SINGLE, 1, 2},
    {"bytes= 1-2 ", 10, HTTP_RANGE_SINGLE, 1, 2},
    {"bytes=0-18446744073709551615", 10, HTTP_RANGE_SINGLE, 0, 9},
    {"bytes=0-99999999999999999999999", 10, HTTP_RANGE_SINGLE, 0, 9},
    {"bytes=0-1,4-5", 10, HTTP_RANGE_MULTIPLE, 0, 1},
    {"bytes=0-1,20-30", 10, HTTP_RANGE_SINGLE, 0, 1}, /* the unsatisfiable one drops out */
    {"bytes=10-", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=10-20", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 10, HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-5", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=5-4", 10, HTTP_RANGE_IGNORE, 0, 0}, /* invalid int-range */
    {"bytes=0-1,5-4", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=,", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=-", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=a-b", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=1-2x", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=+1-2", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=1 - 2", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes = 1-2", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=\"1-2\"", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"items=0-4", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"", 10, HTTP_RANGE_IGNORE, 0, 0},
    {"bytes=0-0,1-1,2-2,3-3", 10, HTTP_RANGE_MULTIPLE, 0, 0},
};

static void test_parse(void **st)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t first = 0, last = 0;
        enum http_range_verdict v = http_range_parse(
            (struct slice){rows[i].value, strlen(rows[i].value)}, rows[i].size, 16, &first, &last);
        if (v != rows[i].want)
            fail_msg("%s: verdict %d, want %d", rows[i].value, v, rows[i].want);
        if (v == HTTP_RANGE_SINGLE && (first != rows[i].first || last != rows[i].last))
            fail_msg("%s: %llu-%llu", rows[i].value, (unsigned long long)first,
                     (unsigned long long)last);
    }
}

/* limits.ranges: at the limit still read, one more is ignored */
static void test_limit(void **st)
{
    uint64_t first, last;
    const char *four = "bytes=20-,30-,40-,50-";
    struct slice v = {four, strlen(four)};
    assert_int_equal(http_range_parse(v, 10, 4, &first, &last), HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(http_range_parse(v, 10, 3, &first, &last), HTTP_RANGE_IGNORE);
}

static void test_content_range(void **st)
{
    static const struct {
        const char *v;
        int ok;
        uint64_t first, last, complete;
    } cr[] = {
        {"bytes 0-4/10", 0, 0, 4, 10},
        {"bytes 9-9/10", 0, 9, 9, 10},
        {"BYTES 1-2/3", 0, 1, 2, 3},
        {"bytes 5-4/10", -1, 0, 0, 0},
        {"bytes 0-10/10", -1, 0, 0, 0},
        {"bytes 0-4/*", -1, 0, 0, 0},
        {"bytes */10", -1, 0, 0, 0},
        {"bytes 0-4/10 ", -1, 0, 0, 0},
        {"bytes 0-4", -1, 0, 0, 0},
        {"items 0-4/10", -1, 0, 0, 0},
        {"bytes 0-99999999999999999999999/99999999999999999999999", -1, 0, 0, 0},
        {"", -1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cr / sizeof cr[0]; i++) {
        uint64_t a = 0, b = 0, n = 0;
        int rc = http_content_range_parse((struct slice){cr[i].v, strlen(cr[i].v)}, &a, &b, &n);
        if (rc != cr[i].ok ||
            (rc == 0 && (a != cr[i].first || b != cr[i].last || n != cr[i].complete)))
            fail_msg("%s: %d %llu-%llu/%llu", cr[i].v, rc, (unsigned long long)a,
                     (unsigned long long)b, (unsigned long long)n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_content_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
