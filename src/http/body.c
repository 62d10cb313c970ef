/* Body framing: Content-Length counting, stream bodies (an h2 request's
 * DATA, RFC 9113 §8.1) and the chunked decoder of RFC 9112 §7.1.
 * chunk-size overflow, junk, bare CR/LF and oversized trailers are errors;
 * chunk extensions are validated and dropped; trailer fields are
 * validated and dropped (§7.1.2 lets a proxy discard them). */
#include "http/body.h"
#include "http/chars.h"

enum {
    CH_SIZE,     /* reading hex digits */
    CH_SIZE_BWS, /* whitespace after the size: only a ';' may follow */
    CH_EXT,      /* after ';' up to CR */
    CH_SIZE_LF,  /* CR seen after the size line */
    CH_DATA,     /* chunk data */
    CH_DATA_CR,  /* CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER, /* at the start of a trailer line or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
};

#define CHUNK_DIGITS_MAX 15 /* < 2^60: no overflow possible */

void http_body_init(struct http_body_reader *r, enum http_body_kind kind, uint64_t length,
                    size_t trailer_max)
{
    *r = (struct http_body_reader){.kind = kind, .remaining = length, .trailer_max = trailer_max};
    if (kind == HTTP_BODY_LENGTH && length == 0)
        r->kind = HTTP_BODY_NONE;
    r->state = CH_SIZE;
}

void http_body_reader_end(struct http_body_reader *r)
{
    if (r->kind == HTTP_BODY_STREAM)
        r->ended = 1;
}

static enum http_body_rc chunked_read(struct http_body_reader *r, const char *buf, size_t len,
                                      size_t *consumed, struct slice *data)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        switch (r->state) {
        case CH_SIZE: {
            int h = http_hexval(c);
            if (h >= 0) {
                if (++r->size_digits > CHUNK_DIGITS_MAX)
                    goto error;
                r->remaining = (r->remaining << 4) | (uint64_t)h;
            } else if (r->size_digits == 0) {
                goto error;
            } else if (c == ';') {
                r->state = CH_EXT;
            } else if (c == ' ' || c == '\t') {
                r->state = CH_SIZE_BWS; /* BWS ";" chunk-ext (RFC 9112 §7.1.1) */
            } else if (c == '\r') {
                r->state = CH_SIZE_LF;
            } else {
                goto error;
            }
            i++;
            break;
        }
        case CH_SIZE_BWS:
            if (c == ';')
                r->state = CH_EXT;
            else if (c != ' ' && c != '\t')
                goto error;
            i++;
            break;
        case CH_EXT:
            /* chunk-ext tokens, quoted strings and BWS: all visible bytes. */
            if (c == '\r')
                r->state = CH_SIZE_LF;
            else if (!http_is(c, CH_VALUE))
                goto error;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto error;
            i++;
            r->size_digits = 0;
            r->state = r->remaining ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > r->remaining)
                n = (size_t)r->remaining;
            *data = (struct slice){buf + i, n};
            r->remaining -= n;
            if (r->remaining == 0)
                r->state = CH_DATA_CR;
            *consumed = i + n;
            return HTTP_BODY_DATA;
        }
        case CH_DATA_CR:
            if (c != '\r')
                goto error;
            r->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto error;
            r->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                r->state = CH_FINAL_LF;
            } else if (http_is(c, CH_TCHAR)) {
                r->state = CH_TRAILER_NAME;
            } else {
                goto error;
            }
            i++;
            if (++r->trailer_bytes > r->trailer_max)
                goto error;
            break;
        case CH_TRAILER_NAME:
            if (c == ':')
                r->state = CH_TRAILER_LINE;
            else if (!http_is(c, CH_TCHAR))
                goto error;
            i++;
            if (++r->trailer_bytes > r->trailer_max)
                goto error;
            break;
        case CH_TRAILER_LINE:
            if (c == '\r')
                r->state = CH_TRAILER_LF;
            else if (!http_is(c, CH_VALUE))
                goto error;
            i++;
            if (++r->trailer_bytes > r->trailer_max)
                goto error;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                goto error;
            r->state = CH_TRAILER;
            i++;
            break;
        case CH_FINAL_LF:
            if (c != '\n')
                goto error;
            *consumed = i + 1;
            r->kind = HTTP_BODY_NONE;
            return HTTP_BODY_DONE;
        }
    }
    *consumed = i;
    return HTTP_BODY_MORE;
error:
    *consumed = i;
    return HTTP_BODY_ERROR;
}

enum http_body_rc http_body_read(struct http_body_reader *r, const char *buf, size_t len,
                                 size_t *consumed, struct slice *data)
{
    *consumed = 0;
    switch (r->kind) {
    case HTTP_BODY_NONE:
        return HTTP_BODY_DONE;
    case HTTP_BODY_LENGTH: {
        if (len == 0)
            return HTTP_BODY_MORE;
        size_t n = len < r->remaining ? len : (size_t)r->remaining;
        *data = (struct slice){buf, n};
        *consumed = n;
        r->remaining -= n;
        if (r->remaining == 0)
            r->kind = HTTP_BODY_NONE;
        return HTTP_BODY_DATA;
    }
    case HTTP_BODY_CHUNKED:
        return chunked_read(r, buf, len, consumed, data);
    case HTTP_BODY_CLOSE:
        if (len == 0)
            return HTTP_BODY_MORE;
        *data = (struct slice){buf, len};
        *consumed = len;
        return HTTP_BODY_DATA;
    case HTTP_BODY_STREAM:
        if (len) {
            *data = (struct slice){buf, len};
            *consumed = len;
            return HTTP_BODY_DATA;
        }
        if (!r->ended)
            return HTTP_BODY_MORE;
        r->kind = HTTP_BODY_NONE;
        return HTTP_BODY_DONE;
    }
    return HTTP_BODY_ERROR;
}
