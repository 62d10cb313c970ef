/* Content-Encoding (RFC 9110 §8.4): the codings applied to a message, in
 * the order applied. The one reader of the field for every part of
 * idemcache (both peer sides, body normalization), so that no two parts
 * can read one value two ways. Pure: no I/O, no allocation. */
#ifndef IDEM_HTTP_CODING_H
#define IDEM_HTTP_CODING_H
#include "http/fields.h"

enum http_coding_rc {
    HTTP_CODING_MALFORMED = -1, /* an unterminated quote or an element that is not a token */
    HTTP_CODING_END = 0,
    HTTP_CODING_NEXT = 1,
};

struct http_coding_iter {
    const struct http_field *next_field, *end; /* field lines not yet read */
    struct http_list_iter list;                /* within the line being read */
};

/* Every Content-Encoding field line of a message, in order: several lines
 * are one list (RFC 9110 §5.3). */
struct http_coding_iter http_codings_begin(const struct http_field *fields, unsigned n);
/* One value on its own (a stored field, or lines already combined). */
struct http_coding_iter http_codings_of(struct slice value);

/* The next coding (content-coding = token, §8.4.1; no parameters), or the
 * end, or MALFORMED: then the whole field is malformed and no coding of it
 * may be acted on. Empty list elements are skipped (§5.6.1). */
enum http_coding_rc http_coding_next(struct http_coding_iter *it, struct slice *coding);

#endif
