/* Preconditions against a stored response (RFC 9110 §13): If-None-Match
 * lists and weak comparison, If-Modified-Since, their precedence, and the
 * fields a 304 carries. One row per case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include "cache/validate.h"

#define S(x) ((struct slice){(x), sizeof(x) - 1})
#define NONE ((struct slice){"", 0})

struct precondition_row {
    const char *inm;  /* If-None-Match field line, or NULL */
    const char *inm2; /* a second If-None-Match line, or NULL */
    const char *ims;  /* If-Modified-Since, or NULL */
    const char *etag; /* stored ETag, or "" */
    const char *lm;   /* stored Last-Modified, or "" */
    int not_modified;
};

static const char LM[] = "Sun, 06 Nov 1994 08:49:37 GMT";
static const char LATER[] = "Mon, 07 Nov 1994 08:49:37 GMT";
static const char EARLIER[] = "Sat, 05 Nov 1994 08:49:37 GMT";

static const struct precondition_row rows[] = {
    /* §13.1.2: weak comparison, any member of the list */
    {"\"a\"", NULL, NULL, "\"a\"", "", 1},
    {"\"b\"", NULL, NULL, "\"a\"", "", 0},
    {"\"x\", \"y\", \"a\"", NULL, NULL, "\"a\"", "", 1},
    {"\"x\",\"a\"", NULL, NULL, "\"a\"", "", 1},
    {"\"x\"", "\"a\"", NULL, "\"a\"", "", 1}, /* a second field line counts too */
    {"W/\"a\"", NULL, NULL, "\"a\"", "", 1},  /* weak matches strong (§8.8.3.2) */
    {"\"a\"", NULL, NULL, "W/\"a\"", "", 1},
    {"W/\"a\"", NULL, NULL, "W/\"b\"", "", 0},
    {"\"A\"", NULL, NULL, "\"a\"", "", 0}, /* opaque tags compare octet by octet */
    {"*", NULL, NULL, "\"a\"", "", 1},
    {"*", NULL, NULL, "", LM, 0},        /* "*" needs a current representation with a tag */
    {"a", NULL, NULL, "a", "", 0},       /* not entity-tags: never a match */
    {"\"a", NULL, NULL, "\"a\"", "", 0}, /* unterminated */
    {"", NULL, NULL, "\"a\"", "", 0},
    /* §13.1.3: If-Modified-Since */
    {NULL, NULL, LM, "", LM, 1},
    {NULL, NULL, LATER, "", LM, 1},
    {NULL, NULL, EARLIER, "", LM, 0},
    {NULL, NULL, "yesterday", "", LM, 0}, /* an invalid date is ignored */
    {NULL, NULL, LM, "", "", 0},          /* nothing to compare with */
    /* §13.2.2: If-None-Match present means If-Modified-Since is ignored */
    {"\"b\"", NULL, LATER, "\"a\"", LM, 0},
    {"\"a\"", NULL, EARLIER, "\"a\"", LM, 1},
    {NULL, NULL, NULL, "\"a\"", LM, 0}, /* unconditional */
};

static void test_preconditions(void **st)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct precondition_row *r = &rows[i];
        struct http_field f[3];
        unsigned n = 0;
        if (r->inm)
            f[n++] = (struct http_field){S("If-None-Match"), {r->inm, strlen(r->inm)}, HF_OTHER};
        if (r->inm2)
            f[n++] = (struct http_field){S("If-None-Match"), {r->inm2, strlen(r->inm2)}, HF_OTHER};
        if (r->ims)
            f[n++] =
                (struct http_field){S("If-Modified-Since"), {r->ims, strlen(r->ims)}, HF_OTHER};
        int got = cache_not_modified(f, n, (struct slice){r->etag, strlen(r->etag)},
                                     (struct slice){r->lm, strlen(r->lm)});
        if (got != r->not_modified)
            fail_msg("row %zu (INM %s / %s, IMS %s, stored %s %s): got %d", i,
                     r->inm ? r->inm : "-", r->inm2 ? r->inm2 : "-", r->ims ? r->ims : "-", r->etag,
                     r->lm, got);
    }
}

static void test_weak_eq(void **st)
{
    assert_true(cache_etag_weak_eq(S("\"1\""), S("W/\"1\"")));
    assert_false(cache_etag_weak_eq(S("\"1\""), S("\"2\"")));
    assert_false(cache_etag_weak_eq(S("W/1"), S("W/1")));
    assert_false(cache_etag_weak_eq(S("\"a\"b\""), S("\"a\"b\"")));
    assert_false(cache_etag_weak_eq(NONE, NONE));
}

static void test_fields_in_304(void **st)
{
    static const char *const kept[] = {
        "ETag", "date", "Vary", "Cache-Control", "Expires", "Content-Location", "Last-Modified"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        assert_true(cache_field_in_304((struct slice){kept[i], strlen(kept[i])}));
    assert_false(cache_field_in_304(S("Content-Length")));
    assert_false(cache_field_in_304(S("Set-Cookie")));
    assert_false(cache_field_in_304(S("Content-Type")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preconditions),
        cmocka_unit_test(test_weak_eq),
        cmocka_unit_test(test_fields_in_304),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
