/* HTTP-date: the three forms, invalid input, and format/parse round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/date.h"

static int64_t P(const char *s)
{
    return http_date_parse((struct slice){s, strlen(s)});
}

static void test_forms(void **st)
{
    assert_int_equal(P("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(P("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(P("Sun Nov  6 08:49:37 1994"), 784111777);
    assert_int_equal(P("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(P("Tue, 29 Feb 2028 23:59:59 GMT"), 1835481599);
    /* wrong letter case in the day name, month and GMT (issue 13) */
    assert_int_equal(P("sun, 06 nov 1994 08:49:37 gmt"), 784111777);
    assert_int_equal(P("SUN, 06 NOV 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(P("SUNDAY, 06-nOV-94 08:49:37 Gmt"), 784111777);
    assert_int_equal(P("sun NOV  6 08:49:37 1994"), 784111777);
}

static void test_invalid(void **st)
{
    const char *bad[] = {"0",
                         "",
                         "-1",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 32 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 06 Nov 94 08:49:37 GMT",
                         "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT ",
                         "Sun, 06 Nov 1994 8:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (P(bad[i]) != HTTP_DATE_INVALID)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_roundtrip(void **st)
{
    char out[HTTP_DATE_LEN];
    for (int64_t t = 0; t < 4102444800LL; t += 86400 * 13 + 3607) {
        http_date_format(t, out);
        assert_int_equal(http_date_parse((struct slice){out, HTTP_DATE_LEN}), t);
    }
    http_date_format(784111777, out);
    assert_memory_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT", HTTP_DATE_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_forms), cmocka_unit_test(test_invalid),
                                       cmocka_unit_test(test_roundtrip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
