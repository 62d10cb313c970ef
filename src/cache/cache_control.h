/* Cache-Control (RFC 9111 §5.2) and Pragma (§5.4), parsed from all field
 * lines of a message into one struct. Pure. */
#ifndef IDEM_CACHE_CONTROL_H
#define IDEM_CACHE_CONTROL_H
#include <stdint.h>
#include "http/http.h"
#include "http/slice.h"

enum {
    CC_NO_STORE = 1 << 0,
    CC_NO_CACHE = 1 << 1, /* also a qualified no-cache="...", treated as unqualified */
    CC_PRIVATE = 1 << 2,  /* also qualified private="...": a shared cache keeps none of it */
    CC_PUBLIC = 1 << 3,
    CC_MUST_REVALIDATE = 1 << 4,
    CC_PROXY_REVALIDATE = 1 << 5,
    CC_MUST_UNDERSTAND = 1 << 6,
    CC_NO_TRANSFORM = 1 << 7,
    CC_ONLY_IF_CACHED = 1 << 8,
    CC_IMMUTABLE = 1 << 9,
    CC_INVALID = 1 << 10, /* a freshness directive was malformed or repeated with another value */
    CC_PRAGMA_NO_CACHE = 1 << 11,
    /* a field line could not be read to its end (an unterminated quote):
     * what follows may be no-store or private, so nothing is stored */
    CC_UNREADABLE = 1 << 12,
};

#define CC_UNSET     (-1)
#define CC_ANY       INT64_MAX    /* max-stale without a value */
#define CC_DELTA_MAX 2147483648LL /* RFC 9111 §1.2.2: larger values are read as 2^31 */

struct cache_control {
    unsigned flags;
    int64_t max_age, s_maxage, max_stale, min_fresh;
    int64_t stale_while_revalidate, stale_if_error;
};

void cache_control_parse(const struct http_field *f, unsigned n, struct cache_control *cc);

/* RFC 9213 §2.1-2.2: `targets` is the cache's target list (field names,
 * comma-separated, most applicable first). The first of them present with
 * a valid, non-empty Structured Fields Dictionary value (all its lines
 * together) is read into *cc and 1 returned; else 0 and *cc is untouched.
 * Directives keep their Cache-Control meaning; a value of the wrong type
 * (max-age=1.5, no-store="x") drops that directive; a repeated key: the
 * last wins (RFC 9651 §3.2); unknown keys and all parameters are ignored. */
int cache_control_targeted(const struct http_field *f, unsigned n, struct slice targets,
                           struct cache_control *cc);

/* Request no-cache, including Pragma: no-cache when Cache-Control is absent. */
static inline int cache_control_req_no_cache(const struct cache_control *cc)
{
    return (cc->flags & (CC_NO_CACHE | CC_PRAGMA_NO_CACHE)) != 0;
}

#endif
