/* Generated entity-tags (seed 004): a strong ETag from the SHA-256 of the
 * body, for stored 200s whose origin sent none. Same bytes, same tag, so a
 * client's If-None-Match keeps matching across refetches. Pure. */
#ifndef IDEM_CACHE_ETAG_H
#define IDEM_CACHE_ETAG_H
#include "cache/object.h"

#define CACHE_ETAG_LEN 47 /* "\"i-" + 43 base64url chars + "\"" */

/* Writes the quoted tag (CACHE_ETAG_LEN bytes, no NUL). */
void cache_etag_of_body(const struct cache_body *b, char out[CACHE_ETAG_LEN]);

#endif
