/* The Content-Encoding reader: a table of values (one or more field lines)
 * and what it reads from each. Issue 10, finding 1: the reader both peer
 * sides and body normalization share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "http/coding.h"

static struct slice S(const char *s) {
    return (struct slice){s, strlen(s)};
}

struct coding_case {
    const char *lines[3]; /* Content-Encoding field lines, NULL-terminated */
    const char *want;     /* the codings read, joined by "|"; NULL: malformed */
};

static const struct coding_case cases[] = {
    {{"gzip"}, "gzip"},
    {{"gzip, br"}, "gzip|br"},
    {{" gzip ,\tbr\t"}, "gzip|br"},
    {{"gzip,,  ,br,"}, "gzip|br"}, /* empty elements: RFC 9110 §5.6.1 */
    {{""}, ""},
    {{"gzip", "idem-ref"}, "gzip|idem-ref"}, /* lines are one list: §5.3 */
    {{"GZIP", "", "Idem-Ref"}, "GZIP|Idem-Ref"},
    {{"x", "dcz, y"}, "x|dcz|y"},
    {{"\"x, idem-ref"}, NULL},         /* the value: an unterminated quote */
    {{"gzip, \"idem-ref\""}, NULL},    /* a quoted string is not a token */
    {{"gzip", "\"x, idem-ref"}, NULL}, /* on a later line too */
    {{"idem-ref;q=1"}, NULL},          /* content codings take no parameters */
    {{"id em-ref"}, NULL},
    {{"gzip, x/y"}, NULL},
    {{"\""}, NULL},
    {{"a\\b"}, NULL},
};

static void test_table(void **st)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct coding_case *k = &cases[i];
        struct http_field f[5];
        unsigned n = 0;
        f[n++] = (struct http_field){S("Content-Type"), S("a, idem-ref"), HF_OTHER};
        for (int j = 0; j < 3 && k->lines[j]; j++) {
            f[n++] = (struct http_field){S(j ? "content-encoding" : "Content-Encoding"),
                                         S(k->lines[j]), HF_OTHER};
        }
        f[n++] = (struct http_field){S("Accept-Encoding"), S("dcz"), HF_OTHER};
        struct http_coding_iter it = http_codings_begin(f, n);
        char got[128] = "";
        struct slice cd;
        enum http_coding_rc rc;
        while ((rc = http_coding_next(&it, &cd)) == HTTP_CODING_NEXT) {
            if (got[0])
                strcat(got, "|");
            strncat(got, cd.p, cd.len);
        }
        if (!k->want) {
            assert_int_equal(rc, HTTP_CODING_MALFORMED);
        } else {
            assert_int_equal(rc, HTTP_CODING_END);
            assert_string_equal(got, k->want);
        }
        if (!k->lines[1]) { /* one line: the same through http_codings_of */
            it = http_codings_of(S(k->lines[0]));
            got[0] = 0;
            while ((rc = http_coding_next(&it, &cd)) == HTTP_CODING_NEXT) {
                if (got[0])
                    strcat(got, "|");
                strncat(got, cd.p, cd.len);
            }
            assert_int_equal(rc, k->want ? HTTP_CODING_END : HTTP_CODING_MALFORMED);
            if (k->want)
                assert_string_equal(got, k->want);
        }
    }
}

static void test_no_field(void **st)
{
    struct http_coding_iter it = http_codings_begin(NULL, 0);
    struct slice cd;
    assert_int_equal(http_coding_next(&it, &cd), HTTP_CODING_END);
    it = http_codings_of((struct slice){NULL, 0});
    assert_int_equal(http_coding_next(&it, &cd), HTTP_CODING_END);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_no_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
