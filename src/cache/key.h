/* Cache keys (RFC 9111 §2, §4): method class, scheme, lowercased
 * authority and the target as received. Pure. */
#ifndef IDEM_CACHE_KEY_H
#define IDEM_CACHE_KEY_H
#include "http/http.h"

/* The primary key of a GET/HEAD request; malloc'd, length in *len. */
char *cache_key_primary(const struct http_request *r, size_t *len);

/* The same for an authority and a path given apart (purges, Location). */
char *cache_key_for(struct slice authority, struct slice path, size_t *len);

#endif
