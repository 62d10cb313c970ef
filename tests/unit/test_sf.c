/* Structured Field Dictionaries (RFC 9651 §4.2.2): input -> the members
 * read, in the form "key=type:value;params" joined by "|", or ERROR. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "http/sf.h"

static const char *const type_names[] = {
    [SF_INTEGER] = "int", [SF_DECIMAL] = "dec",  [SF_STRING] = "str",
    [SF_TOKEN] = "tok",   [SF_BYTES] = "bytes",  [SF_BOOLEAN] = "bool",
    [SF_DATE] = "date",   [SF_DISPLAY] = "disp", [SF_INNER_LIST] = "list",
};

static void render(const char *input, char *out, size_t cap)
{
    struct sf_dict_iter it = sf_dict_begin((struct slice){input, strlen(input)});
    struct sf_member m;
    enum sf_next rc;
    size_t len = 0;
    out[0] = 0;
    while ((rc = sf_dict_next(&it, &m)) == SF_MEMBER) {
        const struct sf_item *v = &m.value;
        int wrote;
        if (v->type == SF_INTEGER || v->type == SF_DECIMAL || v->type == SF_BOOLEAN ||
            v->type == SF_DATE)
            wrote = snprintf(out + len, cap - len, "%s%.*s=%s:%lld%.*s", len ? "|" : "",
                             (int)m.key.len, m.key.p, type_names[v->type], (long long)v->integer,
                             (int)m.params.len, m.params.p);
        else
            wrote = snprintf(out + len, cap - len, "%s%.*s=%s:%.*s%.*s", len ? "|" : "",
                             (int)m.key.len, m.key.p, type_names[v->type], (int)v->raw.len,
                             v->raw.p, (int)m.params.len, m.params.p);
        len += (size_t)wrote;
    }
    if (rc == SF_ERROR)
        snprintf(out, cap, "ERROR");
    /* an error is final */
    if (rc == SF_ERROR)
        assert_int_equal(sf_dict_next(&it, &m), SF_ERROR);
}

static const struct {
    const char *in, *want;
} rows[] = {
    {"", ""},
    {"   ", ""},
    {"max-age=60", "max-age=int:60"},
    {"  max-age=60  ", "max-age=int:60"},
    {"no-store", "no-store=bool:1"},
    {"no-store, max-age=60", "no-store=bool:1|max-age=int:60"},
    {"a=1,b=2", "a=int:1|b=int:2"},
    {"a=1 ,\tb=2", "a=int:1|b=int:2"},
    {"a=?0", "a=bool:0"},
    {"a=?1", "a=bool:1"},
    {"a=?2", "ERROR"},
    {"a=-5", "a=int:-5"},
    {"a=1.5", "a=dec:1500"},
    {"a=-0.25", "a=dec:-250"},
    {"a=1.", "ERROR"},
    {"a=1.2345", "ERROR"},
    {"a=123456789012.1", "a=dec:123456789012100"},
    {"a=1234567890123.1", "ERROR"},
    {"a=999999999999999", "a=int:999999999999999"},
    {"a=1000000000000000", "ERROR"},
    {"a=\"hi there\"", "a=str:hi there"},
    {"a=\"q\\\"x\\\\\"", "a=str:q\\\"x\\\\"},
    {"a=\"bad\\n\"", "ERROR"},
    {"a=\"open", "ERROR"},
    {"a=\"tab\there\"", "ERROR"},
    {"a=foo/bar:baz", "a=tok:foo/bar:baz"},
    {"a=*x", "a=tok:*x"},
    {"a=:aGk=:", "a=bytes:aGk="},
    {"a=:a!:", "ERROR"},
    {"a=:abc", "ERROR"},
    {"a=@1700000000", "a=date:1700000000"},
    {"a=@1.5", "ERROR"},
    {"a=%\"caf%c3%a9\"", "a=disp:caf%c3%a9"},
    {"a=%\"x%C3\"", "ERROR"},
    {"a=(1 2 \"x\");p", "a=list:(1 2 \"x\");p"},
    {"a=( 1  2 )", "a=list:( 1  2 )"},
    {"a=(1,2)", "ERROR"},
    {"a=(1", "ERROR"},
    {"a=1;p=2;q", "a=int:1;p=2;q"},
    {"no-cache;x=\"y\"", "no-cache=bool:1;x=\"y\""},
    {"a=1; p=2", "a=int:1; p=2"},
    {"a=1;P=2", "ERROR"},
    {"a=1;", "ERROR"},
    {"Max-Age=60", "ERROR"},
    {"max-age=60,", "ERROR"},
    {",max-age=60", "ERROR"},
    {"max-age=60,,a", "ERROR"},
    {"a b", "ERROR"},
    {"a=", "ERROR"},
    {"a==1", "ERROR"},
    {"a=1 b=2", "ERROR"},
    {"a=1,b=2,a=3", "a=int:1|b=int:2|a=int:3"}, /* the caller lets the last win */
    {"*k=1", "*k=int:1"},
    {"1a=1", "ERROR"},
    {"a=é", "ERROR"},
    {"a=1\r\n", "ERROR"},
    {"max-age=\"60\"", "max-age=str:60"},
};

static void test_dictionary(void **st)
{
    char out[512];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        render(rows[i].in, out, sizeof out);
        if (strcmp(out, rows[i].want))
            fail_msg("%s: got [%s], want [%s]", rows[i].in, out, rows[i].want);
    }
}

/* Slices never leave the input; a length-bounded input is never read past. */
static void test_bounds(void **st)
{
    const char full[] = "a=1,b=\"xyz\"";
    for (size_t n = 0; n <= sizeof full - 1; n++) {
        struct sf_dict_iter it = sf_dict_begin((struct slice){full, n});
        struct sf_member m;
        enum sf_next rc;
        while ((rc = sf_dict_next(&it, &m)) == SF_MEMBER)
            assert_true(m.key.p >= full && m.key.p + m.key.len <= full + n);
        /* "a=1,b=\"x" cut inside the string is an error, never a member */
        if (n > 7 && n < sizeof full - 1)
            assert_int_equal(rc, SF_ERROR);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dictionary),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
