/* Field-value helpers: list iteration (RFC 9110 §5.6.1), tokens, lookup,
 * and the hop-by-hop set a proxy removes (RFC 9110 §7.6.1). */
#ifndef IDEM_HTTP_FIELDS_H
#define IDEM_HTTP_FIELDS_H
#include <stdbool.h>
#include "http/http.h"

struct http_list_iter {
    const char *p, *end;
};

static inline struct http_list_iter http_list_begin(struct slice v)
{
    /* an empty slice may have no pointer at all: NULL + 0 is undefined */
    return v.len ? (struct http_list_iter){v.p, v.p + v.len} : (struct http_list_iter){"", ""};
}

/* Next non-empty element, trimmed of OWS; quoted strings are kept whole.
 * Returns 1 with *el set, 0 at the end, -1 on an unterminated quote. */
int http_list_next(struct http_list_iter *it, struct slice *el);

bool http_is_token(struct slice s);

/* Is field f hop-by-hop in a message with these fields and Connection
 * flags? Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-*, and every name the Connection fields list (RFC 9110 §7.6.1).
 * Content-Length is framing, re-done by the proxy, so it counts too. */
bool http_is_hop_by_hop(const struct http_field *f, const struct http_field *fields, unsigned n,
                        unsigned conn_flags);

/* RFC 7239 §4: Forwarded = 1#forwarded-element, each element pairs of
 * token "=" (token / quoted-string) joined by ";". A proxy appends its own
 * element to a client's value, so it must know the client's value ends
 * where it seems to (no open quoted-string swallowing what follows). */
enum http_forwarded_syntax {
    HTTP_FORWARDED_WELL_FORMED,
    HTTP_FORWARDED_MALFORMED,
};
enum http_forwarded_syntax http_forwarded_check(struct slice v);

/* uri-host [":" port]; with need_port the port is mandatory (CONNECT). */
bool http_valid_authority(struct slice a, bool need_port);

#endif
