/* Cache keys (RFC 9111 §2, §4): method class, scheme, lowercased
 * authority and the target as received: "G https://host/path?q". Pure. */
#ifndef IDEM_CACHE_KEY_H
#define IDEM_CACHE_KEY_H
#include "http/http.h"

/* The scheme of the request's target URI (RFC 9110 §4.2): http://a/x and
 * https://a/x are different resources and never share an entry. */
enum cache_scheme {
    CACHE_SCHEME_HTTP,
    CACHE_SCHEME_HTTPS,
};

/* "http" or "https". */
const char *cache_scheme_name(enum cache_scheme s);

/* The scheme a request is keyed under. A forward proxy keys an
 * absolute-form target by the scheme it names (RFC 9112 §3.3: the target
 * URI is the request target). Everything else is keyed by the transport
 * the request came over (`over_tls`), absolute-form too: the origin is
 * told that transport (X-Forwarded-Proto, Forwarded proto=), so a target
 * saying https over cleartext must not fill the https entry with an
 * answer meant for http. */
enum cache_scheme cache_request_scheme(const struct http_request *r, int over_tls,
                                       int forward_proxy);

/* The primary key of a GET/HEAD request; malloc'd, length in *len. */
char *cache_key_primary(const struct http_request *r, enum cache_scheme scheme, size_t *len);

/* The same for an authority and a path given apart (purges, Location). */
char *cache_key_for(enum cache_scheme scheme, struct slice authority, struct slice path,
                    size_t *len);

/* The URL parts of any key (class letter, scheme, authority, path up to
 * the end or the first '\n' of a body key): the inverse of the builders
 * above, for invalidation and the admin answer. */
struct cache_key_url {
    char cls;
    enum cache_scheme scheme;
    struct slice authority; /* lowercased, default port dropped */
    struct slice path;      /* path?query as keyed */
    struct slice url;       /* scheme://authority/path, for logs and answers */
};
enum cache_key_parse_result {
    CACHE_KEY_PARSED,
    CACHE_KEY_MALFORMED, /* not a key the builders above make */
};
enum cache_key_parse_result cache_key_parse(const char *key, size_t len, struct cache_key_url *out);

/* A request keyed by its body (a POST a rule allows, QUERY): class letter
 * ('P', 'Q'), the URL as for GET, then one line each for the SHA-256 of
 * the (normalized) body, the media type (lowercased, spaces dropped), the
 * content coding when it was not undone (else empty), and the values of
 * the `key_headers` list (serialized like a Vary key). A target or field
 * value never holds '\n', so no two different requests share a key. */
char *cache_key_body(char cls, const struct http_request *r, enum cache_scheme scheme,
                     const unsigned char digest[32], struct slice content_type, struct slice coding,
                     struct slice key_headers, size_t *len);

/* A Connect unary call, as a POST or a GET (connect-protocol.md): "C",
 * the URL without its query, the codec, the content coding when it was
 * not undone (else empty), the SHA-256 of the (decoded) message, and the
 * rest of the query: a GET's parameters other than Connect's, a POST's
 * whole query (issue 10, finding 5: they are the application's and may
 * change the answer). A GET and a POST carrying one message with one codec
 * and the same other parameters share the key. */
char *cache_key_rpc(const struct http_request *r, enum cache_scheme scheme, struct slice path,
                    struct slice codec, struct slice coding, const unsigned char digest[32],
                    struct slice rest, size_t *len);

/* Where a 206 for the URL `url_key` (a "G ..." key) is stored (RFC 9111
 * §3.3): "R" and the URL, then "\nrange". It reads as a body key of that
 * URL, so whatever removes those (invalidation, PURGE) removes it too, and
 * no request without a Range ever looks it up. malloc'd. */
char *cache_key_partial(const char *url_key, size_t url_len, size_t *len);

/* Is `key` a body key (any class) of the URL `url_key` (a "G ..." key)? */
int cache_key_is_body_of(const char *key, size_t len, const char *url_key, size_t url_len);

#endif
