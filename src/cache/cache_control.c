/* Cache-Control directives, RFC 9111 §5.2. Duplicates with different
 * values and malformed arguments of freshness directives mark the message
 * CC_INVALID, which the policy reads as "stale" (§4.2.1). */
#include <string.h>
#include "cache/cache_control.h"
#include "http/chars.h"
#include "http/fields.h"
#include "http/sf.h"

/* delta-seconds, optionally quoted (senders must not, recipients may accept). */
static int64_t delta_seconds(struct slice v)
{
    if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') {
        v.p++;
        v.len -= 2;
    }
    if (v.len == 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (!http_is((unsigned char)v.p[i], CH_DIGIT))
            return -1;
        if (n < CC_DELTA_MAX)
            n = n * 10 + (v.p[i] - '0');
    }
    return n > CC_DELTA_MAX ? CC_DELTA_MAX : n;
}

static void set_delta(struct cache_control *cc, int64_t *slot, struct slice arg, int has_arg,
                      int optional)
{
    int64_t v = has_arg ? delta_seconds(arg) : (optional ? CC_ANY : -1);
    if (v < 0) {
        cc->flags |= CC_INVALID;
        v = 0;
    }
    if (*slot != CC_UNSET && *slot != v)
        cc->flags |= CC_INVALID;
    if (*slot == CC_UNSET || v < *slot)
        *slot = v; /* the most restrictive of conflicting values */
}

static const struct {
    const char *name;
    unsigned flag;
} flag_directives[] = {
    {"no-store", CC_NO_STORE},
    {"no-cache", CC_NO_CACHE},
    {"private", CC_PRIVATE},
    {"public", CC_PUBLIC},
    {"must-revalidate", CC_MUST_REVALIDATE},
    {"proxy-revalidate", CC_PROXY_REVALIDATE},
    {"must-understand", CC_MUST_UNDERSTAND},
    {"no-transform", CC_NO_TRANSFORM},
    {"only-if-cached", CC_ONLY_IF_CACHED},
    {"immutable", CC_IMMUTABLE},
};

static void directive(struct cache_control *cc, struct slice el)
{
    struct slice name = el, arg = {0};
    const char *eq = memchr(el.p, '=', el.len);
    if (eq) {
        name.len = (size_t)(eq - el.p);
        arg = (struct slice){eq + 1, el.len - name.len - 1};
    }
    while (name.len && (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t'))
        name.len--;
    for (size_t i = 0; i < sizeof flag_directives / sizeof flag_directives[0]; i++)
        if (slice_case_eq(name, flag_directives[i].name)) {
            cc->flags |= flag_directives[i].flag;
            return;
        }
    if (slice_case_eq(name, "max-age"))
        set_delta(cc, &cc->max_age, arg, eq != NULL, 0);
    else if (slice_case_eq(name, "s-maxage"))
        set_delta(cc, &cc->s_maxage, arg, eq != NULL, 0);
    else if (slice_case_eq(name, "max-stale"))
        set_delta(cc, &cc->max_stale, arg, eq != NULL, 1);
    else if (slice_case_eq(name, "min-fresh"))
        set_delta(cc, &cc->min_fresh, arg, eq != NULL, 0);
    else if (slice_case_eq(name, "stale-while-revalidate"))
        set_delta(cc, &cc->stale_while_revalidate, arg, eq != NULL, 0);
    else if (slice_case_eq(name, "stale-if-error"))
        set_delta(cc, &cc->stale_if_error, arg, eq != NULL, 0);
    /* §5.2.3: unknown extensions are ignored. */
}

void cache_control_parse(const struct http_field *f, unsigned n, struct cache_control *cc)
{
    *cc = (struct cache_control){0, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET};
    int has_cc = 0, pragma = 0;
    for (unsigned i = 0; i < n; i++) {
        if (f[i].name.len == 13 && slice_case_eq(f[i].name, "cache-control")) {
            has_cc = 1;
            struct http_list_iter it = http_list_begin(f[i].value);
            struct slice el;
            int rc;
            while ((rc = http_list_next(&it, &el)) > 0)
                directive(cc, el);
            if (rc < 0)
                cc->flags |= CC_UNREADABLE;
        } else if (f[i].name.len == 6 && slice_case_eq(f[i].name, "pragma")) {
            struct http_list_iter it = http_list_begin(f[i].value);
            struct slice el;
            while (http_list_next(&it, &el) > 0)
                if (slice_case_eq(el, "no-cache"))
                    pragma = 1;
        }
    }
    /* §5.4: Pragma counts only when Cache-Control is absent. */
    if (pragma && !has_cc)
        cc->flags |= CC_PRAGMA_NO_CACHE;
}

/* ---- targeted fields (RFC 9213) ---- */

/* Every line of one targeted field parses, and they hold at least one
 * member (§2.1: an empty or invalid field is ignored). Lines combine with
 * commas (RFC 9110 §5.3), which is the same as reading them one by one. */
static int targeted_valid(const struct http_field *f, unsigned n, struct slice name)
{
    int members = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eqs(f[i].name, name))
            continue;
        struct sf_dict_iter it = sf_dict_begin(f[i].value);
        struct sf_member m;
        enum sf_next rc;
        while ((rc = sf_dict_next(&it, &m)) == SF_MEMBER)
            members++;
        if (rc == SF_ERROR)
            return 0;
    }
    return members > 0;
}

/* One member, overwriting what an earlier one with the same key said. */
static void targeted_directive(struct cache_control *cc, const struct sf_member *m)
{
    const struct sf_item *v = &m->value;
    for (size_t i = 0; i < sizeof flag_directives / sizeof flag_directives[0]; i++)
        if (slice_eq(m->key,
                     (struct slice){flag_directives[i].name, strlen(flag_directives[i].name)})) {
            cc->flags &= ~flag_directives[i].flag;
            int on = v->type == SF_BOOLEAN && v->integer == 1;
            /* no-cache="field" and private="field" are Strings (§2.1) */
            if (v->type == SF_STRING && (flag_directives[i].flag & (CC_NO_CACHE | CC_PRIVATE)))
                on = 1;
            if (on)
                cc->flags |= flag_directives[i].flag;
            return;
        }
    static const char *const deltas[] = {"max-age", "s-maxage", "stale-while-revalidate",
                                         "stale-if-error"};
    int64_t *slots[] = {&cc->max_age, &cc->s_maxage, &cc->stale_while_revalidate,
                        &cc->stale_if_error};
    for (int i = 0; i < 4; i++)
        if (slice_eq(m->key, (struct slice){deltas[i], strlen(deltas[i])})) {
            /* delta-seconds are Integers; anything else is not consumed */
            if (v->type == SF_INTEGER && v->integer >= 0)
                *slots[i] = v->integer > CC_DELTA_MAX ? CC_DELTA_MAX : v->integer;
            else
                *slots[i] = CC_UNSET;
            return;
        }
}

int cache_control_targeted(const struct http_field *f, unsigned n, struct slice targets,
                           struct cache_control *cc)
{
    struct http_list_iter names = http_list_begin(targets);
    struct slice name;
    while (http_list_next(&names, &name) > 0) {
        if (!targeted_valid(f, n, name))
            continue;
        *cc = (struct cache_control){0, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET, CC_UNSET};
        for (unsigned i = 0; i < n; i++) {
            if (!slice_case_eqs(f[i].name, name))
                continue;
            struct sf_dict_iter it = sf_dict_begin(f[i].value);
            struct sf_member m;
            while (sf_dict_next(&it, &m) == SF_MEMBER)
                targeted_directive(cc, &m);
        }
        return 1;
    }
    return 0;
}
