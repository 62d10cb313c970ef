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
    /* content without framing until the protocol says the input ended
     * (http_body_reader_end): an h2 request without content-length, its
     * DATA frames' payload (RFC 9113 §8.1) */
    HTTP_BODY_STREAM,
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

/* Why a head was refused, alongside the status the parser returns. The
 * texts (http_error_text) are the README's Errors table, word for word. */
enum http_error {
    HTTP_ERR_NONE,
    HTTP_ERR_CL_WITH_TE,         /* Content-Length with Transfer-Encoding (§6.3) */
    HTTP_ERR_CL_DUPLICATE,       /* two Content-Length lines */
    HTTP_ERR_CL_INVALID,         /* not 1*DIGIT, or too large */
    HTTP_ERR_TE_NOT_CHUNKED,     /* Transfer-Encoding not ending in chunked (§6.3) */
    HTTP_ERR_TE_INVALID,         /* not a list of codings, chunked twice or with parameters */
    HTTP_ERR_TE_HTTP10,          /* Transfer-Encoding in HTTP/1.0 (§6.1) */
    HTTP_ERR_TE_UNSUPPORTED,     /* 501: a coding other than chunked */
    HTTP_ERR_BARE_CR,            /* CR not followed by LF */
    HTTP_ERR_BARE_LF,            /* LF without CR */
    HTTP_ERR_OBS_FOLD,           /* a line that continues the previous field (§5.2) */
    HTTP_ERR_SPACE_BEFORE_NAME,  /* whitespace before the first field (§2.2) */
    HTTP_ERR_SPACE_BEFORE_COLON, /* (§5.1) */
    HTTP_ERR_FIELD_NAME,         /* empty, or a byte that is not a tchar */
    HTTP_ERR_FIELD_VALUE,        /* NUL or another control byte */
    HTTP_ERR_METHOD,             /* empty, or a byte that is not a tchar */
    HTTP_ERR_TARGET,             /* a byte or a form not allowed in the target */
    HTTP_ERR_TARGET_USERINFO,    /* user@host in an absolute target (RFC 9110 §4.2.4) */
    HTTP_ERR_HTTP09,             /* a request line without a version */
    HTTP_ERR_VERSION,            /* not HTTP/DIGIT.DIGIT */
    HTTP_ERR_VERSION_MAJOR,      /* 505: HTTP/2 or another major version */
    HTTP_ERR_HOST_MISSING,       /* HTTP/1.1 without Host (§3.2) */
    HTTP_ERR_HOST_DUPLICATE,
    HTTP_ERR_HOST_INVALID,
    HTTP_ERR_CONNECTION,     /* Connection not a list of tokens */
    HTTP_ERR_EXPECT,         /* 417 */
    HTTP_ERR_REQUEST_LINE,   /* 414: over limits.request_line */
    HTTP_ERR_HEADER_SECTION, /* 431: over limits.header_section */
    HTTP_ERR_HEADER_COUNT,   /* 431: over limits.header_count */
    HTTP_ERR__COUNT,
};

/* A short English reason for the client's body and the error log. */
const char *http_error_text(enum http_error e);

struct http_request {
    enum http_error error; /* set when the parser returns a status */
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
    /* Caller storage for the fields, set before parsing (http_request_init):
     * a per-worker scratch holds HTTP_FIELDS_MAX for the parse, and an
     * exchange's own copy holds only what its request has. More fields
     * than fields_cap: 431, like header_count. */
    unsigned fields_cap;
    struct http_field *fields;
};

/* An empty request whose fields go to `fields` (cap entries). */
static inline void http_request_init(struct http_request *r, struct http_field *fields,
                                     unsigned cap)
{
    *r = (struct http_request){.fields = fields, .fields_cap = cap};
}

/* Bytes an owned copy of r needs (http_request_copy): its head and its
 * field array. */
size_t http_request_copy_size(const struct http_request *r);
/* Copy r, parsed from the head at `head` (r->head_len bytes), into `dst`
 * backed by `arena` (http_request_copy_size bytes, suitably aligned for
 * struct http_field): every slice of dst points into arena, so the copy
 * outlives the buffer it was parsed from. */
void http_request_copy(struct http_request *dst, const struct http_request *r, const char *head,
                       void *arena);

struct http_response {
    enum http_error error; /* set when the parser returns 502 */
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
 * the HTTP status that answers the bad message (400, 414, 431, 501, 505...),
 * and the head's `error` says why. */
enum { HTTP_PARSE_OK = 0, HTTP_PARSE_MORE = 1 };

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req);

/* Responses are parsed with the same strictness; any error comes back as 502.
 * `method_head` and the status decide whether a body follows (RFC 9112 §6.3). */
int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        struct http_response *res);

/* The framing of a parsed response to a request with the given method. */
enum http_body_kind http_response_body_kind(const struct http_response *res, int method_head);
/* A Content-Length value (RFC 9110 §8.6): 1*DIGIT, at most 2^62 (a
 * bound no body reaches, far from overflow). 0, or -1 when it is not one.
 * The HTTP/1 parser and the h2 mapping read it alike. */
int http_content_length_parse(struct slice v, uint64_t *out);

/* Field lookup by case-insensitive name: the first match, or NULL. */
const struct http_field *http_find_field(const struct http_field *f, unsigned n, const char *name);

#endif
