/* Rule matching and the naming convention (seed 003). */
#include <string.h>
#include "rules/rules.h"
#include "http/chars.h"
#include "http/fields.h"

unsigned rules_method_bit(struct slice m)
{
    static const struct {
        const char *name;
        unsigned bit;
    } methods[] = {
        {"GET", RM_GET},       {"HEAD", RM_HEAD},   {"POST", RM_POST},   {"PUT", RM_PUT},
        {"DELETE", RM_DELETE}, {"PATCH", RM_PATCH}, {"QUERY", RM_QUERY}, {"OPTIONS", RM_OPTIONS},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (slice_eq(m, (struct slice){methods[i].name, strlen(methods[i].name)}))
            return methods[i].bit;
    return 0;
}

/* Linear-time in practice: on a mismatch, retry from the last '*' one byte
 * further along (the classic two-pointer glob; no recursion). `fold`
 * compares ASCII letters without case. */
static int glob(const char *pat, struct slice s, int fold)
{
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    size_t plen = strlen(pat);
    while (i < s.len) {
        if (p < plen &&
            (pat[p] == '?' || pat[p] == s.p[i] ||
             (fold && http_lower((unsigned char)pat[p]) == http_lower((unsigned char)s.p[i])))) {
            p++;
            i++;
        } else if (p < plen && pat[p] == '*') {
            star_p = p++;
            star_i = i;
        } else if (star_p != (size_t)-1) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return 0;
        }
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}

int rules_glob(const char *pat, struct slice s)
{
    return glob(pat, s, 0);
}

static int header_present(const struct rule *r, const struct http_field *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eq(f[i].name, r->header_name))
            continue;
        if (!r->header_value[0])
            return 1;
        /* the value as a list: "X-Request-Kind: query, batch" has "query" */
        struct http_list_iter it = http_list_begin(f[i].value);
        struct slice el;
        while (http_list_next(&it, &el) > 0)
            if (slice_case_eq(el, r->header_value))
                return 1;
    }
    return 0;
}

/* Issue 10, re-attack C: the origin may read the path as its loose form
 * (slashes merged, ";params" dropped, decoded twice, any case), so a
 * do-not-cache rule matches either form: caching less is always safe.
 * Caching more is not, so an allowing rule needs both: the strict form
 * alone would let "/public/..%2faccount" (loosely "/account") use an
 * exception written for /public before a do-not-cache rule on /account;
 * the loose form alone would widen it to spellings the origin may serve
 * differently. Order still decides between rules that match. */
static int path_matches(const struct rule *r, struct slice path, struct slice loose)
{
    int strict = rules_glob(r->path, path);
    if (!r->cache)
        return strict || glob(r->path, loose, 1);
    return strict && glob(r->path, loose, 1);
}

const struct rule *rules_match(const struct rule *rules, unsigned n, struct slice method,
                               struct slice path, struct slice loose,
                               const struct http_field *fields, unsigned nfields)
{
    unsigned bit = rules_method_bit(method);
    for (unsigned i = 0; i < n; i++) {
        const struct rule *r = &rules[i];
        if (r->methods && !(r->methods & bit))
            continue;
        if (!path_matches(r, path, loose))
            continue;
        if (r->header_name[0] && !header_present(r, fields, nfields))
            continue;
        return r;
    }
    return NULL;
}

int rules_never_cache_name(struct slice path, const char (*prefixes)[NAMING_PREFIX_LEN], unsigned n)
{
    size_t end = path.len;
    while (end > 0 && path.p[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path.p[start - 1] != '/')
        start--;
    struct slice seg = {path.p + start, end - start};
    for (unsigned i = 0; i < n; i++) {
        size_t k = strlen(prefixes[i]);
        if (!k || k > seg.len || !slice_case_eq((struct slice){seg.p, k}, prefixes[i]))
            continue;
        if (k == seg.len)
            return 1;
        unsigned char next = (unsigned char)seg.p[k];
        if ((next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9') || next == '_' ||
            next == '-' || next == '.')
            return 1;
    }
    return 0;
}
