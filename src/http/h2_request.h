/* HTTP/2 messages <-> the request and response the pipeline knows (RFC 9113
 * §8): the fields nghttp2 hands over one by one become a struct
 * http_request as the HTTP/1 parser would have made it, and a response
 * head becomes the field list an h2 HEADERS frame carries. Pure: no I/O,
 * no allocation, no nghttp2; the caller gives the storage.
 *
 * Whose checks are whose. nghttp2's HTTP messaging checks (on unless
 * NGHTTP2_OPT_NO_HTTP_MESSAGING) run first and reset the stream with
 * PROTOCOL_ERROR for: uppercase or invalid field names, invalid values,
 * unknown, repeated or late pseudo-headers, a missing :method, :scheme or
 * :path, connection-specific fields, TE other than "trailers", a
 * content-length that does not parse or disagrees with the DATA, and the
 * CONNECT forms of §8.5. This layer checks the same rules again (it is
 * fuzzed alone, and a check must not depend on a library option), and
 * adds the proxy's own: the header list limit (431), :authority against
 * Host (400), the authority's syntax, cookie crumbs joined (§8.2.3), and
 * CONNECT refused (501 in this release). */
#ifndef IDEM_H2_REQUEST_H
#define IDEM_H2_REQUEST_H
#include <stdint.h>
#include "http/http.h"

/* What a request's fields come to. */
enum h2_request_verdict {
    H2_REQUEST_OK,                 /* go on (a field), or the request is built (the end) */
    H2_REQUEST_MALFORMED,          /* §8.1.1: stream error PROTOCOL_ERROR */
    H2_REQUEST_BAD,                /* answer 400 (a valid message we refuse) */
    H2_REQUEST_TOO_LARGE,          /* answer 431: over the header list limit or the field count */
    H2_REQUEST_NOT_IMPLEMENTED,    /* answer 501: CONNECT, extended CONNECT (RFC 8441) */
    H2_REQUEST_URI_TOO_LONG,       /* answer 414: :method and :path over limits.request_line */
    H2_REQUEST_EXPECTATION_FAILED, /* answer 417: expect other than 100-continue */
    /* answer 415: native gRPC (application/grpc), which needs h2 and
     * trailers to the origin; gRPC-web and Connect are fine */
    H2_REQUEST_UNSUPPORTED_MEDIA,
};

/* How the request's content ends. */
enum h2_request_body {
    H2_BODY_NONE,   /* END_STREAM on the HEADERS */
    H2_BODY_LENGTH, /* content-length; the DATA must add up to it (§8.1.1) */
    H2_BODY_STREAM, /* no content-length: END_STREAM ends it */
};

/* One request's fields, gathered. An all-zero struct is not usable:
 * h2_request_init gives it its storage. */
struct h2_request {
    /* caller storage: names and values are copied here (nghttp2's buffers
     * last only for the callback), so the request's slices all point into
     * [arena, arena + used), which http_request_copy can rebase */
    char *arena;
    size_t arena_cap, used;
    struct http_field *fields;
    unsigned fields_cap;
    uint64_t max_list;   /* SETTINGS_MAX_HEADER_LIST_SIZE we announced */
    unsigned max_fields; /* limits.header_count */
    size_t max_line;     /* limits.request_line (0: none) */

    uint64_t list_size; /* name + value + 32 per field (RFC 9113 §6.5.2) */
    unsigned nfields;
    unsigned pseudo_seen;            /* H2P_* bits */
    int regular_seen;                /* a regular field came: no pseudo-header may follow */
    int over;                        /* past a limit: the rest is counted, not kept */
    enum h2_request_verdict verdict; /* the first refusal, kept to the end */
    const char *why;                 /* its reason, for the log */
    struct slice method, scheme, authority, path, protocol;
    struct slice host; /* a host field, if any */
    int has_length;
    uint64_t content_length;
    unsigned cookies; /* cookie crumbs among fields */
    int expect_continue;
    int grpc; /* content-type application/grpc[+proto|;...] */
};

struct h2_request_limits {
    uint64_t max_header_list; /* h2.max_header_list */
    unsigned max_fields;      /* limits.header_count */
    size_t max_request_line;  /* limits.request_line (0: none) */
};

/* Bytes of arena a request under `lim` can need: every name and value,
 * and the joined cookie line. */
size_t h2_request_arena_size(const struct h2_request_limits *lim);

void h2_request_init(struct h2_request *h, const struct h2_request_limits *lim, char *arena,
                     size_t arena_cap, struct http_field *fields, unsigned fields_cap);

/* One field of the HEADERS (and CONTINUATION) block, in order. OK, or the
 * first refusal (kept: later calls return it again, and _end too). */
enum h2_request_verdict h2_request_field(struct h2_request *h, struct slice name,
                                         struct slice value);

/* The block ended; end_stream: it carried END_STREAM. On OK `out` is the
 * request (form origin or asterisk, HTTP/1.1 semantics, host from
 * :authority or host, the fields with cookie crumbs joined into one, a
 * host field first), its slices into the arena, head_len the arena bytes
 * used (http_request_copy copies them), and *body how its content ends. */
enum h2_request_verdict h2_request_end(struct h2_request *h, int end_stream,
                                       struct http_request *out, enum h2_request_body *body);

/* Request trailers (RFC 9113 §8.1: a HEADERS after the request's
 * HEADERS, with END_STREAM): checked, then dropped, as the HTTP/1 front
 * drops chunked ones (http/body.c; RFC 9110 §6.5.1 lets a proxy discard
 * them): the origin, the keys and the request's head never see them.
 * One field: OK, or MALFORMED (§8.1: a pseudo-header; §8.2: a name,
 * value or connection-specific field as a head would be refused for). */
enum h2_request_verdict h2_trailer_field(struct slice name, struct slice value);
/* The trailer section ended; end_stream: its HEADERS carried END_STREAM,
 * without which it is MALFORMED (§8.1). */
enum h2_request_verdict h2_trailers_end(int end_stream);

/* Response side. May this field of a response (or the fields we add) go
 * in an h2 HEADERS block? Connection-specific fields (§8.2.2), and those
 * the response's Connection names (`connection`, its value, may be
 * empty), may not. */
int h2_response_keeps_field(struct slice name, struct slice connection);

/* The next "name: value\r\n" line of a field block written with
 * outbuf_addfield (the fields a stage adds): 1 and *f, or 0 at the end.
 * A line without a colon ends it. */
int h2_next_field_line(struct slice *rest, struct http_field *f);

/* ":status" value: three digits. */
void h2_status_digits(int status, char out[3]);

#endif
