/* RFC 9110 §13: evaluating preconditions against a stored response. */
#include "cache/validate.h"
#include "http/date.h"
#include "http/fields.h"

/* entity-tag = [ W/ ] DQUOTE *etagc DQUOTE; returns the opaque-tag. */
static int opaque_tag(struct slice t, struct slice *out)
{
    if (t.len >= 2 && t.p[0] == 'W' && t.p[1] == '/') {
        t.p += 2;
        t.len -= 2;
    }
    if (t.len < 2 || t.p[0] != '"' || t.p[t.len - 1] != '"')
        return -1;
    for (size_t i = 1; i + 1 < t.len; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c == '"' || c < 0x21 || c == 0x7f)
            return -1;
    }
    *out = t;
    return 0;
}

int cache_etag_weak_eq(struct slice a, struct slice b)
{
    struct slice x, y;
    return opaque_tag(a, &x) == 0 && opaque_tag(b, &y) == 0 && slice_eq(x, y);
}

int cache_not_modified(const struct http_field *f, unsigned n, struct slice etag,
                       struct slice last_modified)
{
    int has_inm = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eq(f[i].name, "if-none-match"))
            continue;
        has_inm = 1;
        struct http_list_iter it = http_list_begin(f[i].value);
        struct slice el;
        while (http_list_next(&it, &el) > 0) {
            if (el.len == 1 && el.p[0] == '*' && etag.len)
                return 1; /* a current representation exists */
            if (etag.len && cache_etag_weak_eq(el, etag))
                return 1;
        }
    }
    if (has_inm)
        return 0; /* §13.2.2: If-Modified-Since is ignored when INM is present */
    const struct http_field *ims = http_find_field(f, n, "if-modified-since");
    if (!ims || !last_modified.len)
        return 0;
    int64_t since = http_date_parse(ims->value);
    int64_t lm = http_date_parse(last_modified);
    return since != HTTP_DATE_INVALID && lm != HTTP_DATE_INVALID && lm <= since;
}

int cache_field_in_304(struct slice name)
{
    static const char *const keep[] = {"content-location", "date",    "etag",          "vary",
                                       "cache-control",    "expires", "last-modified", NULL};
    for (int i = 0; keep[i]; i++)
        if (slice_case_eq(name, keep[i]))
            return 1;
    return 0;
}
