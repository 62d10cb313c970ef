/* HTTP/1.1 message heads (RFC 9112 §2-§6): parsed in place into slices that
 * point into the caller's buffer. Pure: no I/O, no allocation. */
#ifndef IDEM_HTTP_H
#define IDEM_HTTP_H
#include <stdint.h>
#include "http/slice.h"

#define HTTP_FIELDS_MAX 256 /* hard cap; the configured limit is lower */

/* Fields the proxy acts on, recognised once while parsing. */
enum http_field_id {
    HF_OTHER,
    HF_HOST,
    HF_CONTENT_LENGTH,
    HF_TRANSFER_ENCODING,
    HF_CONNECTION,
    HF_KEEP_ALIVE,
    HF_TE,
    HF_TRAILER,
    HF_UPGRADE,
    HF_EXPECT,
    HF_PROXY, /* any Proxy-* field: meant for this hop */
    HF_IDEM,  /* any Idem-* field: the peer handshake, between two idemcaches only */
    HF_X_FORWARDED_FOR,
    HF_FORWARDED,
};

struct http_field {
    struct slice name;
    struct slice value;
    enum http_field_id id;
};

enum http_field_id http_field_classify(struct slice name);

struct http_limits {
    size_t request_line;   /* bytes, excluding CRLF; over it: 414 */
    size_t header_section; /* bytes of the whole head; over it: 431 */
    unsigned header_count; /* fields; over it: 431 */
};

enum http_body_kind {
    HTTP_BODY_NONE,    /* no content */
    HTTP_BODY_LENGTH,  /* Content-Length */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding ending in chunked */
    HTTP_BODY_CLOSE,   /* response delimited by connection close */
};

enum http_target_form {
    HTTP_TARGET_ORIGIN,    /* /path?query */
    HTTP_TARGET_ABSOLUTE,  /* http://authority/path?query */
    HTTP_TARGET_AUTHORITY, /* host:port, CONNECT only */
    HTTP_TARGET_ASTERISK,  /* *, OPTIONS only */
};

/* Connection-level facts gathered while parsing a head. */
enum {
    HTTP_CONN_CLOSE = 1,
    HTTP_CONN_KEEPALIVE = 2,
    HTTP_CONN_UPGRADE = 4,
    HTTP_CONN_OTHER = 8, /* Connection names other fields: they are hop-by-hop */
};

struct http_request {
    struct slice method;
    struct slice target;
    struct slice host;      /* the Host field value */
    struct slice authority; /* of an absolute- or authority-form target */
    struct slice path;      /* origin-form part of the target (path?query) */
    struct slice scheme;    /* absolute-form only */
    enum http_target_form form;
    int minor; /* HTTP/1.<minor>: 0 or 1 */
    unsigned conn_flags;
    int expect_continue;
    int has_upgrade;
    enum http_body_kind body;
    uint64_t content_length;
    size_t head_len; /* bytes up to and including the blank line */
    unsigned nfields;
    struct http_field fields[HTTP_FIELDS_MAX];
};

struct http_response {
    int status;
    struct slice reason;
    int minor;
    unsigned conn_flags;
    int has_content_length;
    int has_transfer_encoding;
    int te_chunked;
    uint64_t content_length;
    size_t head_len;
    unsigned nfields;
    struct http_field fields[HTTP_FIELDS_MAX];
};

/* Return values of the parsers: 0 is a complete head (head_len set),
 * HTTP_PARSE_MORE means the buffer holds a valid prefix; any other value is
 * the HTTP status that answers the bad message (400, 414, 431, 501, 505...). */
enum { HTTP_PARSE_OK = 0, HTTP_PARSE_MORE = 1 };

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req);

/* Responses are parsed with the same strictness; any error comes back as 502.
 * `method_head` and the status decide whether a body follows (RFC 9112 §6.3). */
int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        struct http_response *res);

/* The framing of a parsed response to a request with the given method. */
enum http_body_kind http_response_body_kind(const struct http_response *res, int method_head);

/* Field lookup by case-insensitive name: the first match, or NULL. */
const struct http_field *http_find_field(const struct http_field *f, unsigned n, const char *name);

#endif
