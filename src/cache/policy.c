/* RFC 9111 for a shared cache: storage (§3, §3.5), freshness (§4.2),
 * serving stale (§4.2.4), request directives (§5.2.1) and RFC 5861. */
#include "cache/policy.h"
#include "http/chars.h"
#include "http/date.h"
#include "http/fields.h"

static int64_t field_date(struct slice v)
{
    return http_date_parse(v);
}

/* §5.1: Age = delta-seconds (§1.2.2). Only the first line counts, and of
 * a list on it only the first member (a sender that repeats Age, or a
 * proxy that joins lines, has it first); a value that is not all digits is
 * ignored as if absent; one too large saturates at 2^31, which makes any
 * response stale (§1.2.2 lets a recipient read it so). */
int64_t cache_age_value(const struct http_field *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!slice_case_eq(f[i].name, "age"))
            continue;
        struct slice v = f[i].value;
        size_t end = 0;
        while (end < v.len && v.p[end] != ',')
            end++;
        while (end && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
            end--;
        size_t k = 0;
        while (k < end && (v.p[k] == ' ' || v.p[k] == '\t'))
            k++;
        if (k == end)
            return 0;
        int64_t a = 0;
        for (; k < end; k++) {
            if (!http_is((unsigned char)v.p[k], CH_DIGIT))
                return 0;
            if (a < CC_DELTA_MAX)
                a = a * 10 + (v.p[k] - '0');
        }
        return a > CC_DELTA_MAX ? CC_DELTA_MAX : a;
    }
    return 0;
}

void cache_response_facts(const struct http_field *f, unsigned n, int status,
                          struct cache_response_facts *r)
{
    cache_control_parse(f, n, &r->cc);
    r->status = status;
    r->date = r->expires = r->last_modified = HTTP_DATE_INVALID;
    r->has_expires = r->vary_star = r->vary_invalid = r->has_validator = r->set_cookie = 0;
    r->age = cache_age_value(f, n);
    r->targeted = 0;
    int dates = 0, expires = 0;
    for (unsigned i = 0; i < n; i++) {
        struct slice name = f[i].name, v = f[i].value;
        if (slice_case_eq(name, "date")) {
            r->date = dates++ ? HTTP_DATE_INVALID : field_date(v);
        } else if (slice_case_eq(name, "expires")) {
            /* §5.3: invalid (e.g. "0") means already expired; several are
             * a conflict, read as stale (§4.2.1). */
            r->has_expires = 1;
            r->expires = expires++ ? HTTP_DATE_INVALID : field_date(v);
        } else if (slice_case_eq(name, "last-modified")) {
            r->last_modified = field_date(v);
            r->has_validator = 1;
        } else if (slice_case_eq(name, "set-cookie")) {
            r->set_cookie = 1;
        } else if (slice_case_eq(name, "etag")) {
            r->has_validator = 1;
        } else if (slice_case_eq(name, "vary")) {
            /* §12.5.5 of RFC 9110: "*" or field names. Anything else (an
             * unterminated quote, a parameter) would drop out of the
             * variant key and let one variant answer every request. */
            struct http_list_iter it = http_list_begin(v);
            struct slice el;
            int rc;
            while ((rc = http_list_next(&it, &el)) > 0) {
                if (el.len == 1 && el.p[0] == '*')
                    r->vary_star = 1;
                else if (!http_is_token(el))
                    r->vary_invalid = 1;
            }
            if (rc < 0)
                r->vary_invalid = 1;
        }
    }
}

int cache_facts_targeted(const struct http_field *f, unsigned n, struct slice targets,
                         struct cache_response_facts *r)
{
    struct cache_control cc;
    if (!cache_control_targeted(f, n, targets, &cc))
        return 0;
    r->cc = cc;
    r->has_expires = 0; /* "MUST ignore the Cache-Control and Expires" */
    r->expires = HTTP_DATE_INVALID;
    r->targeted = 1;
    return 1;
}

int cache_status_heuristic(int s)
{
    switch (s) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return 1;
    default:
        return 0;
    }
}

/* Statuses whose caching rules this cache implements (§5.2.2.3). 206 is
 * not: there is no range support to combine partial content. */
static int status_understood(int s)
{
    switch (s) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return 1;
    default:
        return 0;
    }
}

static const char *const store_reasons[] = {
    [STORE_OK] = "stored",
    [STORE_METHOD] = "method",
    [STORE_STATUS] = "status",
    [STORE_NO_STORE] = "no-store",
    [STORE_PRIVATE] = "private",
    [STORE_CC_INVALID] = "cache-control-invalid",
    [STORE_AUTHORIZATION] = "authorization",
    [STORE_VARY_STAR] = "vary-star",
    [STORE_VARY_INVALID] = "vary-invalid",
    [STORE_NO_FRESHNESS] = "no-freshness",
    [STORE_SET_COOKIE] = "set-cookie",
    [STORE_HEAD] = "head",
};
/* A verdict without a name would index past the table. */
_Static_assert(sizeof store_reasons / sizeof store_reasons[0] == STORE__COUNT,
               "every store verdict needs a reason");

const char *cache_store_reason(enum cache_store_verdict v)
{
    return store_reasons[v];
}

enum cache_store_verdict cache_storable(int get_or_head, const struct cache_control *req,
                                        int req_authorization, const struct cache_response_facts *r)
{
    const struct cache_control *cc = &r->cc;
    if (!get_or_head)
        return STORE_METHOD;
    if (r->status < 200 || r->status == 206 || r->status == 304)
        return STORE_STATUS;
    if (cc->flags & CC_MUST_UNDERSTAND) {
        /* §5.2.2.3: understood status overrides no-store; otherwise never. */
        if (!status_understood(r->status))
            return STORE_STATUS;
    } else if (cc->flags & CC_NO_STORE) {
        return STORE_NO_STORE;
    }
    if (req->flags & CC_NO_STORE)
        return STORE_NO_STORE; /* §5.2.1.5 */
    /* A line cut short by an unterminated quote is read no further: what
     * it hides (no-store, private) must not be stored for everyone. */
    if ((cc->flags | req->flags) & CC_UNREADABLE)
        return STORE_CC_INVALID;
    if (cc->flags & CC_PRIVATE)
        return STORE_PRIVATE;
    /* §3.5: public, s-maxage and must-revalidate allow shared caching. */
    if (req_authorization && !(cc->flags & (CC_PUBLIC | CC_MUST_REVALIDATE)) &&
        cc->s_maxage == CC_UNSET)
        return STORE_AUTHORIZATION;
    if (r->vary_star)
        return STORE_VARY_STAR;
    if (r->vary_invalid)
        return STORE_VARY_INVALID;
    /* RFC 9111 allows it, but a shared cache that replays Set-Cookie hands
     * one client's session to the next; explicit public opts in. */
    if (r->set_cookie && !(cc->flags & CC_PUBLIC))
        return STORE_SET_COOKIE;
    if (cc->max_age != CC_UNSET || cc->s_maxage != CC_UNSET || r->has_expires ||
        (cc->flags & CC_PUBLIC) || cache_status_heuristic(r->status))
        return STORE_OK;
    return STORE_NO_FRESHNESS;
}

int64_t cache_lifetime(const struct cache_response_facts *r, int64_t response_time,
                       unsigned heuristic_pct, int64_t heuristic_max, int *heuristic)
{
    const struct cache_control *cc = &r->cc;
    *heuristic = 0;
    if (cc->flags & CC_INVALID)
        return 0;
    if (cc->s_maxage != CC_UNSET)
        return cc->s_maxage;
    if (cc->max_age != CC_UNSET)
        return cc->max_age;
    int64_t date = r->date != HTTP_DATE_INVALID ? r->date : response_time;
    if (r->has_expires) {
        if (r->expires == HTTP_DATE_INVALID || r->expires <= date)
            return 0;
        return r->expires - date;
    }
    /* §4.2.2: only for heuristically cacheable statuses or public. */
    if (!cache_status_heuristic(r->status) && !(cc->flags & CC_PUBLIC))
        return 0;
    if (r->last_modified == HTTP_DATE_INVALID || r->last_modified >= date)
        return 0;
    int64_t h = (date - r->last_modified) * (int64_t)heuristic_pct / 100;
    *heuristic = 1;
    return h > heuristic_max ? heuristic_max : h;
}

int64_t cache_age(const struct cache_response_facts *r, int64_t request_time, int64_t response_time,
                  int64_t now)
{
    /* §4.2.3, in its own terms; a clock that runs backwards counts 0. */
    int64_t apparent_age = 0;
    if (r->date != HTTP_DATE_INVALID && response_time > r->date)
        apparent_age = response_time - r->date;
    int64_t response_delay = response_time > request_time ? response_time - request_time : 0;
    int64_t corrected_age_value = r->age + response_delay;
    int64_t corrected_initial_age =
        apparent_age > corrected_age_value ? apparent_age : corrected_age_value;
    int64_t resident_time = now > response_time ? now - response_time : 0;
    return corrected_initial_age + resident_time;
}

static const char *const decision_names[] = {
    [DECIDE_FRESH] = "fresh",
    [DECIDE_STALE_OK] = "stale-ok",
    [DECIDE_STALE_SWR] = "stale-while-revalidate",
    [DECIDE_REVALIDATE] = "revalidate",
};

const char *cache_decision_name(enum cache_decision d)
{
    return decision_names[d];
}

/* §4.2.4: directives that forbid serving this response stale. */
static int stale_forbidden(const struct cache_response_facts *r)
{
    return (r->cc.flags & (CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE | CC_NO_CACHE)) ||
           r->cc.s_maxage != CC_UNSET;
}

enum cache_decision cache_decide(const struct cache_control *req,
                                 const struct cache_response_facts *r, int64_t lifetime,
                                 int64_t age)
{
    if (cache_control_req_no_cache(req) || (r->cc.flags & CC_NO_CACHE))
        return DECIDE_REVALIDATE; /* §5.2.1.4, §5.2.2.4 */
    if (req->max_age != CC_UNSET && age > req->max_age)
        return DECIDE_REVALIDATE; /* §5.2.1.1 */
    int64_t remaining = lifetime - age;
    if (req->min_fresh != CC_UNSET && remaining < req->min_fresh)
        return DECIDE_REVALIDATE; /* §5.2.1.3 */
    if (remaining > 0)
        return DECIDE_FRESH;
    if (stale_forbidden(r))
        return DECIDE_REVALIDATE;
    int64_t staleness = -remaining;
    if (req->max_stale != CC_UNSET && staleness <= req->max_stale)
        return DECIDE_STALE_OK; /* §5.2.1.2 */
    if (r->cc.stale_while_revalidate != CC_UNSET && staleness <= r->cc.stale_while_revalidate)
        return DECIDE_STALE_SWR; /* RFC 5861 §3 */
    return DECIDE_REVALIDATE;
}

int cache_stale_if_error(const struct cache_control *req, const struct cache_response_facts *r,
                         int64_t lifetime, int64_t age)
{
    if (stale_forbidden(r))
        return 0;
    int64_t staleness = age - lifetime;
    if (staleness < 0)
        staleness = 0;
    return (r->cc.stale_if_error != CC_UNSET && staleness <= r->cc.stale_if_error) ||
           (req->stale_if_error != CC_UNSET && staleness <= req->stale_if_error);
}
