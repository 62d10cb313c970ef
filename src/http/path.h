/* The normal form of a request path for comparison (RFC 3986 §6.2.2):
 * what rules and the naming convention match, so that "/%61ccount" and
 * "/a/../account" meet the rules written for "/account". Pure. */
#ifndef IDEM_HTTP_PATH_H
#define IDEM_HTTP_PATH_H
#include <stddef.h>
#include "http/http.h"

enum http_path_rc {
    HTTP_PATH_OK,
    /* a '%' not followed by two hex digits (RFC 3986 §2.1): no normal form;
     * the request parser answers 400 to such a target before this is asked */
    HTTP_PATH_BAD_ESCAPE,
};

/* Write the normal form of `path` (a target's path, without its query)
 * into `out`, which holds at least path.len bytes, its length in *len,
 * never more than path.len:
 *  - §6.2.2.2: a percent-encoded unreserved byte (ALPHA DIGIT - . _ ~) is
 *    decoded; §6.2.2.1: other escapes get upper-case hex digits;
 *  - §6.2.2.3: dot segments are removed (§5.2.4), after the decoding, so
 *    "%2e%2e" is a ".." segment. Only for a path that begins with '/':
 *    another one (asterisk-form "*") keeps its segments.
 * Empty segments ("//") are kept: they are no dot segments. The normal
 * form of a normal form is itself. */
enum http_path_rc http_path_normalize(struct slice path, char *out, size_t *len);

#endif
