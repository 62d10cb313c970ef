/* One HTTP/2 connection's protocol state on libnghttp2 (RFC 9113), with
 * no socket and no pipeline: bytes in (h2_session_recv), frames out as
 * vectors handed to the owner (h2_session_flush), and streams that carry
 * one request each. h2_server.c puts it on a client connection and binds
 * each stream to an exchange; the fuzz target binds it to a fake.
 *
 * Stream phases (h2_stream):
 *   HEADERS begin  -> fields gathered (on_header) -> END_HEADERS:
 *       mapped (http/h2_request.c): refused (RST_STREAM or 4xx/501), or
 *       owner->request(st)
 *   DATA           -> st->in; owner->req_data(st); window given back as
 *                     the owner consumes (h2_stream_consume) or ahead of it
 *                     (H2_FLOW_READ, within h2.max_read_ahead)
 *   response       -> h2_stream_respond (HEADERS), h2_stream_queue_* (DATA,
 *                     deferred until there is some, within the stream's
 *                     share of h2.max_output_buffer: h2_stream_room),
 *                     h2_stream_end
 *   closed/reset   -> owner->gone(st) unless the owner ended it, then freed
 *                     at the next h2_session_collect
 *
 * Never re-entered: nghttp2 is only driven from h2_session_recv and
 * h2_session_flush, which the owner calls from the top of its callbacks
 * (design server-layers.md §8); everything else only queues. */
#ifndef IDEM_H2_SESSION_H
#define IDEM_H2_SESSION_H
#include <stddef.h>
#include <stdint.h>
#include "http/http.h"
#include "http/h2_request.h"
#include "server/iobuf.h"
#include "server/link.h"

struct cache_object;
struct h2_session;
struct h2_stream;

/* What the pipeline wants of a request body now (front.h enum front_flow). */
enum h2_flow {
    H2_FLOW_WAIT, /* nothing: window only as it consumes */
    H2_FLOW_HOLD, /* the same: it cannot take bytes now */
    H2_FLOW_READ, /* give window ahead: it reads on (a body read ahead to key it) */
};

/* How a stream left, for the log and the tests. */
enum h2_stream_end {
    H2_END_NONE,     /* open */
    H2_END_ANSWERED, /* our response went out whole */
    H2_END_RESET,    /* reset, by either side, or the connection went */
};

struct h2_session_limits {
    uint32_t max_concurrent_streams;
    uint32_t initial_window;
    uint64_t max_header_list;
    uint32_t max_resets_per_10s;
    uint64_t max_read_ahead;
    /* h2.max_output_buffer: response body memory all streams may hold
     * queued; each stream gets its share (h2_stream_room) */
    uint64_t max_output_buffer;
    unsigned max_fields;     /* limits.header_count */
    size_t max_request_line; /* limits.request_line: :method and :path */
};

/* A piece of response body waiting in a stream: bytes it owns, a read
 * block it took over, or a stored object's body range (referenced). */
struct h2_piece;

struct h2_stream {
    uint32_t magic;
    int32_t id;
    struct h2_session *s;
    struct link link;      /* in the session's streams, or its closed list */
    void *owner;           /* the owner's (h2_server.c: the exchange) */
    void *conn;            /* the session's owner (h2_server.c: its h2_conn) */
    struct outbuf *hdr;    /* request fields as gathered: name\0value\0... */
    uint64_t list_size;    /* RFC 9113 §6.5.2 size so far */
    uint64_t trailer_size; /* the same for its trailers */
    unsigned nhdr;
    /* cookie crumbs seen, and of nhdr those after the first (§8.2.3: they
     * join into one field, which limits.header_count counts once) */
    unsigned crumbs, nhdr_crumbs;
    int too_large;           /* over max_header_list or the field count: 431 */
    struct http_request req; /* mapped (valid during owner->request) */
    enum h2_request_body body_kind;
    struct iobuf in;         /* request body bytes the owner has not consumed */
    int in_ended;            /* END_STREAM came */
    uint64_t in_total;       /* DATA bytes received */
    uint64_t uncredited;     /* of in: window not yet given back */
    uint64_t credited_ahead; /* of in: window given back before consumed */
    enum h2_flow flow;
    /* response */
    int responded;       /* HEADERS submitted */
    int deferred;        /* the data source waits for more */
    int complete;        /* the body's end is known: EOF once queued is sent */
    int has_body;        /* a data provider was submitted */
    int reset_after_end; /* RST_STREAM(NO_ERROR) once it ended (§8.1) */
    /* a relayed head held back until its body starts or it ends (the
     * cache stage may still replace it: h2_stream_hold) */
    struct outbuf *held;
    int held_status, held_has_body;
    int64_t held_length;
    struct h2_piece *q, **q_tail;
    uint64_t queued; /* body bytes in q */
    /* memory q holds of its own (copies and read blocks, not stored
     * objects): what the stream's share of h2.max_output_buffer bounds */
    uint64_t queued_cost;
    int provoked; /* a frame of it broke a rule: its reset is counted */
    int starved;  /* it had no room left: tell drained once it has */
    enum h2_stream_end end;
    int owner_gone; /* the owner knows it ended (or ended it) */
    /* malformed request trailers (RFC 9113 §8.1): reset, the rest ignored */
    int trailers_bad;
    /* when its request body last moved (mapped, DATA, flow, consumed), ms
     * of uv_hrtime: its timeouts.client_body_idle runs from there */
    uint64_t body_ms;
};

/* What a session tells its owner. Called from inside h2_session_recv or
 * h2_session_flush (never from another owner call): they may queue
 * responses but must not free the stream. */
struct h2_session_ops {
    /* A request was mapped: st->req, st->body_kind. The owner answers it
     * (now or later); st->owner is its. */
    void (*request)(void *owner, struct h2_stream *st);
    /* More body is in st->in, or it ended (st->in_ended). */
    void (*req_data)(void *owner, struct h2_stream *st);
    /* The stream ended before the owner ended it: reset by the client,
     * refused by us, or the connection going. st->owner is not used by
     * the session after this. */
    void (*gone)(void *owner, struct h2_stream *st);
    /* The stream has room again (h2_stream_room) after having had none:
     * its queue went out, or its share grew as other streams closed. */
    void (*drained)(void *owner, struct h2_stream *st);
    /* Bytes to write, in order; release(arg) once they are written (or
     * the connection is gone). 0 or < 0 (the connection fails). */
    int (*write)(void *owner, const struct slice *v, unsigned n, void (*release)(void *),
                 void *arg);
    /* Bytes written and not yet taken by the socket. */
    size_t (*write_pending)(void *owner);
    /* The stream's memory goes (h2_session_collect): the owner's too.
     * NULL: nothing to free. */
    void (*freed)(void *owner, struct h2_stream *st);
    /* A request refused as it mapped, before any owner: answered `status`
     * (0: malformed, RST_STREAM(PROTOCOL_ERROR)) for `why`, for the log.
     * NULL: not told. */
    void (*refused)(void *owner, struct h2_stream *st, int status, const char *why);
};

/* A new session, server side, with our SETTINGS queued. NULL: out of
 * memory. */
struct h2_session *h2_session_new(const struct h2_session_limits *lim,
                                  const struct h2_session_ops *ops, void *owner);
/* Bytes from the client (the preface included). 0, or -1: the connection
 * is to close once what h2_session_flush writes is out (a connection
 * error: GOAWAY is queued). */
int h2_session_recv(struct h2_session *s, const char *p, size_t n);
/* Serialize what is queued and hand it to ops->write: one write per call
 * (frame headers and body slices gathered). 0, or -1 (write failed). */
int h2_session_flush(struct h2_session *s);
/* Does the session have anything to say or hear? 0: both sides are done
 * (GOAWAY sent and no stream left, or a connection error): close. */
int h2_session_alive(const struct h2_session *s);
/* Did the last flush stop at WRITE_HIGH_WATER with DATA still ready? The
 * owner flushes again once its socket drains, or at once when the
 * socket took everything without a completion to wait for. */
int h2_session_held_at_mark(const struct h2_session *s);
/* Open streams (not yet closed). */
unsigned h2_session_streams(const struct h2_session *s);
/* Response body bytes queued in open streams and not yet sent (the
 * client's flow-control window may hold them back). */
uint64_t h2_session_queued(const struct h2_session *s);
/* DATA payload bytes handed to the socket so far, all streams: whether
 * our output moved (the send idle timer). */
uint64_t h2_session_data_sent(const struct h2_session *s);
/* Of the open streams waiting for request body bytes the pipeline wants
 * (flow READ or HOLD, END_STREAM not come), the earliest body_ms; 0: no
 * stream waits. */
uint64_t h2_session_body_idle_since(const struct h2_session *s);
/* Each such stream whose body has not moved since `before_ms` goes to
 * fn (the owner ends it; it may queue, not free). One stalled stream
 * ends alone: the connection and its other streams go on. */
void h2_session_stalled_bodies(struct h2_session *s, uint64_t before_ms,
                               void (*fn)(void *owner, struct h2_stream *st));
/* Graceful shutdown (SIGTERM): GOAWAY with the last stream id taken;
 * streams in flight finish (RFC 9113 §6.8). */
void h2_session_drain(struct h2_session *s);
/* Free the streams that closed (their owners told): only from the top of
 * a callback, no owner call chain holding them. */
void h2_session_collect(struct h2_session *s);
/* Every stream still open ends (owner->gone), then the session is freed;
 * *sp becomes NULL. */
void h2_session_free(struct h2_session **sp);

/* ---- a stream's response (the owner's calls) ------------------------- */

/* The head: status, fields as "name: value\r\n" lines (`lines`, may be
 * empty) and an array of fields (`fields`, n; NULL: none; those in the
 * `omit` range of bytes skipped), content-length if length >= 0.
 * has_body 0: HEADERS ends the stream. Connection-specific fields are
 * dropped (RFC 9113 §8.2.2). */
struct h2_head {
    int status;
    struct slice lines;
    const struct http_field *fields;
    unsigned nfields;
    struct slice omit;
    const char *type; /* Content-Type; NULL: none */
    int64_t length;
    int has_body;
};
int h2_stream_respond(struct h2_stream *st, const struct h2_head *h);
/* The same, held back (h->lines copied; fields and type not used) until
 * body is queued, the body completes or the stream ends; a later
 * h2_stream_respond or h2_stream_hold replaces it. */
void h2_stream_hold(struct h2_stream *st, const struct h2_head *h);
/* A 1xx (RFC 9113 §8.1: HEADERS without END_STREAM). */
int h2_stream_interim(struct h2_stream *st, int status, struct slice lines);
/* Body bytes: copied (for short ones), an owned heap block (freed once
 * sent), a read block holding p..p+n (freed once sent), or a stored
 * object's bytes first..first+len-1 (a reference is held). */
void h2_stream_queue_copy(struct h2_stream *st, const char *p, size_t n);
void h2_stream_queue_heap(struct h2_stream *st, char *heap, const char *p, size_t n);
void h2_stream_queue_object(struct h2_stream *st, struct cache_object *o, uint64_t first,
                            uint64_t len);
/* No more body will be queued (a whole answer, a stored object, a relayed
 * body's end): END_STREAM goes with the last of it. The owner still ends
 * the stream (h2_stream_end). */
void h2_stream_body_complete(struct h2_stream *st);
/* The body is complete: END_STREAM once what is queued is sent.
 * body_unread: the request body was not read whole: RST_STREAM(NO_ERROR)
 * after it (RFC 9113 §8.1). The owner does not hear of the stream again. */
void h2_stream_end(struct h2_stream *st, int body_unread);
/* Reset (INTERNAL_ERROR, or `code`); the owner does not hear of it again. */
void h2_stream_reset(struct h2_stream *st, uint32_t code);
/* Is it closed or reset (nothing more can go to the client)? */
int h2_stream_closing(const struct h2_stream *st);
/* The memory of its own the stream may still queue: its share of
 * h2.max_output_buffer (the budget over the open streams, at least
 * H2_SHARE_FLOOR and at most WRITE_HIGH_WATER) less st->queued_cost; 0
 * marks it starved, and ops->drained tells the owner once it has room
 * again. A stalled stream (its window shut) fills its own share only. */
#define H2_SHARE_FLOOR (16 * 1024)
uint64_t h2_stream_share(const struct h2_stream *st);
uint64_t h2_stream_room(struct h2_stream *st);

/* ---- the request body ------------------------------------------------ */
/* The owner is done with n bytes of st->in: they leave it and the window
 * grows by what was not given ahead. */
void h2_stream_consume(struct h2_stream *st, size_t n);
void h2_stream_flow(struct h2_stream *st, enum h2_flow f);

#endif
