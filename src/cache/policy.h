/* RFC 9111 decisions as pure functions of request facts, stored response
 * facts and time (seconds since the epoch, always passed in).
 *
 *   cache_response_facts  head fields -> the facts caching depends on
 *   cache_storable        §3: may this shared cache store the response?
 *   cache_lifetime        §4.2.1/§4.2.2: freshness lifetime
 *   cache_age             §4.2.3: current age
 *   cache_decide          §4.2, §4.2.4, §5.2.1, RFC 5861: serve, or go upstream
 */
#ifndef IDEM_CACHE_POLICY_H
#define IDEM_CACHE_POLICY_H
#include <stdint.h>
#include "cache/cache_control.h"

struct cache_response_facts {
    int status;
    struct cache_control cc;
    int64_t date;    /* HTTP_DATE_INVALID when absent or malformed */
    int64_t expires; /* when has_expires: HTTP_DATE_INVALID means "already expired" */
    int has_expires;
    int64_t last_modified; /* HTTP_DATE_INVALID when absent */
    int64_t age;           /* age_value (§4.2.3): the Age received, 0 when absent */
    int vary_star;
    int vary_invalid;  /* a Vary member that is not a field name (§4.1): no key can hold it */
    int has_validator; /* ETag or Last-Modified */
    int set_cookie;
    int targeted; /* cc came from a targeted field (RFC 9213), Expires ignored */
};

/* The Age field's value (§5.1, rules at the definition). */
int64_t cache_age_value(const struct http_field *f, unsigned n);

void cache_response_facts(const struct http_field *f, unsigned n, int status,
                          struct cache_response_facts *out);

/* RFC 9213 §2.2: when a field on `targets` is valid and non-empty, its
 * directives replace Cache-Control and Expires in *r (r->targeted set);
 * returns whether one did. */
int cache_facts_targeted(const struct http_field *f, unsigned n, struct slice targets,
                         struct cache_response_facts *r);

enum cache_store_verdict {
    STORE_OK,
    STORE_METHOD,        /* only GET and HEAD are stored */
    STORE_STATUS,        /* 206, 304, 1xx, or not understood with must-understand */
    STORE_NO_STORE,      /* response or request no-store */
    STORE_PRIVATE,       /* private: never in a shared cache */
    STORE_AUTHORIZATION, /* §3.5 without public, s-maxage or must-revalidate */
    STORE_VARY_STAR,     /* Vary: * can never be matched (§4.1) */
    STORE_VARY_INVALID,  /* a Vary we cannot read is treated as Vary: * */
    STORE_NO_FRESHNESS,  /* not heuristically cacheable and no explicit freshness */
    STORE_SET_COOKIE,    /* a cookie is meant for one client (as Varnish does by default) */
    STORE_CC_INVALID,    /* a Cache-Control we cannot read to its end may hide no-store */
    STORE_HEAD,          /* a HEAD response has no body to store */
    STORE__COUNT,
};

const char *cache_store_reason(enum cache_store_verdict v);

/* `req_cc`: the request's directives; `req_authorization`: it carried
 * Authorization. Method is GET or HEAD as a boolean. */
enum cache_store_verdict cache_storable(int method_get_or_head, const struct cache_control *req_cc,
                                        int req_authorization,
                                        const struct cache_response_facts *r);

/* Heuristically cacheable statuses, RFC 9110 §15.1. */
int cache_status_heuristic(int status);

/* Freshness lifetime in seconds. `response_time` stands in for a missing
 * Date; heuristics use `heuristic_pct` percent of (Date - Last-Modified),
 * capped at `heuristic_max`; *heuristic is set when it applied. */
int64_t cache_lifetime(const struct cache_response_facts *r, int64_t response_time,
                       unsigned heuristic_pct, int64_t heuristic_max, int *heuristic);

/* §4.2.3 current_age at `now`: apparent_age = max(0, response_time -
 * date_value), corrected_age_value = age_value + (response_time -
 * request_time), corrected_initial_age = the larger, plus resident_time =
 * now - response_time. Every time is a parameter, in epoch seconds. */
int64_t cache_age(const struct cache_response_facts *r, int64_t request_time, int64_t response_time,
                  int64_t now);

enum cache_decision {
    DECIDE_FRESH,      /* serve from cache */
    DECIDE_STALE_OK,   /* stale, but the client's max-stale allows it */
    DECIDE_STALE_SWR,  /* serve stale and revalidate in the background */
    DECIDE_REVALIDATE, /* ask the origin (conditionally when a validator exists) */
};

const char *cache_decision_name(enum cache_decision d);

enum cache_decision cache_decide(const struct cache_control *req_cc,
                                 const struct cache_response_facts *r, int64_t lifetime,
                                 int64_t age);

/* May a stale response be served because the origin failed (stale-if-error,
 * RFC 5861 §4, from the response or the request)? */
int cache_stale_if_error(const struct cache_control *req_cc, const struct cache_response_facts *r,
                         int64_t lifetime, int64_t age);

#endif
