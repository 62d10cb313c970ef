/* Cache keys (RFC 9111 §2, §4): method class, scheme, lowercased
 * authority and the target as received. Pure. */
#ifndef IDEM_CACHE_KEY_H
#define IDEM_CACHE_KEY_H
#include "http/http.h"

/* The primary key of a GET/HEAD request; malloc'd, length in *len. */
char *cache_key_primary(const struct http_request *r, size_t *len);

/* The same for an authority and a path given apart (purges, Location). */
char *cache_key_for(struct slice authority, struct slice path, size_t *len);

/* A request keyed by its body (a POST a rule allows, QUERY): class letter
 * ('P', 'Q'), the URL as for GET, then one line each for the SHA-256 of
 * the (normalized) body, the media type (lowercased, spaces dropped), the
 * content coding when it was not undone (else empty), and the values of
 * the `key_headers` list (serialized like a Vary key). A target or field
 * value never holds '\n', so no two different requests share a key. */
char *cache_key_body(char cls, const struct http_request *r, const unsigned char digest[32],
                     struct slice content_type, struct slice coding, struct slice key_headers,
                     size_t *len);

/* A Connect unary call, as a POST or a GET (connect-protocol.md): "C",
 * the URL without its query, the codec, the content coding when it was
 * not undone (else empty), the SHA-256 of the (decoded) message, and the
 * rest of the query: a GET's parameters other than Connect's, a POST's
 * whole query (issue 10, finding 5: they are the application's and may
 * change the answer). A GET and a POST carrying one message with one codec
 * and the same other parameters share the key. */
char *cache_key_rpc(const struct http_request *r, struct slice path, struct slice codec,
                    struct slice coding, const unsigned char digest[32], struct slice rest,
                    size_t *len);

/* Where a 206 for the URL `url_key` (a "G ..." key) is stored (RFC 9111
 * §3.3): "R" and the URL, then "\nrange". It reads as a body key of that
 * URL, so whatever removes those (invalidation, PURGE) removes it too, and
 * no request without a Range ever looks it up. malloc'd. */
char *cache_key_partial(const char *url_key, size_t url_len, size_t *len);

/* Is `key` a body key (any class) of the URL `url_key` (a "G ..." key)? */
int cache_key_is_body_of(const char *key, size_t len, const char *url_key, size_t url_len);

#endif
