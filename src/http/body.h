/* Message body framing (RFC 9112 §6, §7.1): an incremental reader that turns
 * Content-Length, chunked, close-delimited or stream bytes into data spans.
 * Pure and zero-copy: spans point into the caller's buffer. */
#ifndef IDEM_HTTP_BODY_H
#define IDEM_HTTP_BODY_H
#include <stdint.h>
#include "http/http.h"

struct http_body_reader {
    enum http_body_kind kind;
    uint64_t remaining; /* of the body (LENGTH) or of the current chunk */
    int state;          /* chunked decoder state */
    unsigned size_digits;
    size_t trailer_bytes;
    size_t trailer_max;
    int ended; /* STREAM: the input ended (http_body_reader_end) */
};

enum http_body_rc {
    HTTP_BODY_MORE,  /* all input consumed, body not finished */
    HTTP_BODY_DATA,  /* *data is the next span of content */
    HTTP_BODY_DONE,  /* the body ended; bytes after it are not consumed */
    HTTP_BODY_ERROR, /* malformed chunked framing */
};

/* `trailer_max` bounds the trailer section of a chunked body. */
void http_body_init(struct http_body_reader *r, enum http_body_kind kind, uint64_t length,
                    size_t trailer_max);

/* Consume from buf; *consumed is always set. Call again with the rest of the
 * input after DATA. For CLOSE bodies the end is the connection's EOF. A
 * STREAM body is all bytes given until http_body_reader_end; then a read
 * of no bytes returns DONE. */
enum http_body_rc http_body_read(struct http_body_reader *r, const char *buf, size_t len,
                                 size_t *consumed, struct slice *data);

/* The input of a STREAM body ended (h2: END_STREAM): once the bytes
 * already given are read, the body is DONE. No effect on other kinds,
 * whose framing says where they end. */
void http_body_reader_end(struct http_body_reader *r);

static inline int http_body_done(const struct http_body_reader *r)
{
    return r->kind == HTTP_BODY_NONE;
}

#endif
