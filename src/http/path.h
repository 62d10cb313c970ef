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

/* The loose form of `path`: the broadest reading an origin may give it,
 * for do-not-cache decisions only (issue 10, re-attack C). Origins route
 * more spellings to one handler than RFC 3986 says are equal: nginx merges
 * slashes by default, Tomcat and Jetty drop ";params" from segments (and
 * read "..;" as ".."), IIS takes '\' for '/', some frameworks decode
 * twice, Express routes case-insensitively. A rule that says "never cache
 * under /account/" must also see "//account/profile", "/account;x/profile" and
 * "/%2561ccount/profile"; a rule that allows caching must not be widened,
 * so it keeps the strict normal form above. Steps, in this order:
 *  - every escape decoded, again and again until none is left (one pass:
 *    a decoded byte that completes an escape with the bytes before it is
 *    decoded at once); a '%' that starts no escape stays as it is;
 *  - in a path that begins with '/' (or '\'): '\' read as '/', each
 *    segment cut at its first ';', empty segments dropped (slashes
 *    merged), dot segments removed (RFC 3986 §5.2.4); a trailing '/' or
 *    dot segment leaves one trailing '/'.
 * Case is kept (the naming convention needs "setUser"'s word boundary);
 * callers compare it case-insensitively. `out` holds at least path.len
 * bytes; *len is never more than path.len. Never fails: any bytes have a
 * loose form, and the loose form of a loose form is itself. */
void http_path_loose(struct slice path, char *out, size_t *len);

/* 1 when `path` is already both its normal and its loose form, so neither
 * needs computing: it begins with '/', holds no '%', ';' or '\', no empty
 * segment ("//") and no segment that begins with '.'. Most API paths are
 * such; the check is one pass over the bytes, on every request. */
int http_path_is_plain(struct slice path);

#endif
