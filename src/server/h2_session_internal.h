/* What the parts of an HTTP/2 session share (h2_session.c: the session
 * and its frame callbacks; h2_stream.c: streams and the request side;
 * h2_output.c: responses, queued bodies and the flush batch). Private to
 * those three files: the owner's interface is h2_session.h. */
#ifndef IDEM_H2_SESSION_INTERNAL_H
#define IDEM_H2_SESSION_INTERNAL_H
#include <nghttp2/nghttp2.h>
#include "server/h2_session.h"

#define H2_SESSION_MAGIC 0x48325353u
#define H2_STREAM_MAGIC  0x48325354u

/* Bytes kept by a piece: refcounted, since one frame may end in the
 * middle of it and the rest go in the next flush. */
struct h2_chunk {
    int refs;
    char *heap; /* freed with the chunk; NULL: the bytes follow */
    char data[];
};

struct h2_piece {
    struct h2_piece *next;
    struct h2_chunk *chunk;   /* bytes at p (len left), or NULL */
    struct cache_object *obj; /* its body from `at` (len left), referenced */
    const char *p;
    uint64_t at, len;
    uint64_t cost; /* of the stream's queued_cost, until it leaves q */
};

/* What one flush writes: frame bytes (copied: nghttp2's buffer lasts
 * until its next call), slices of queued bodies, and what keeps those
 * alive until the socket took them. */
struct h2_vec {
    int in_bytes; /* an offset into bytes (which may still move) */
    size_t off;
    const char *p;
    size_t len;
};
struct h2_batch {
    struct outbuf bytes;
    struct h2_vec *v;
    unsigned n, cap;
    struct h2_chunk **chunks;
    unsigned nchunks, chunks_cap;
    struct cache_object **objs;
    unsigned nobjs, objs_cap;
    size_t total;
};

struct h2_session {
    uint32_t magic;
    nghttp2_session *ng;
    const struct h2_session_ops *ops;
    void *owner;
    struct h2_session_limits lim;
    struct link streams; /* open */
    struct link closed;  /* closed, to free at h2_session_collect */
    unsigned nstreams;
    uint64_t ahead;         /* window given ahead of consumption, all streams */
    struct h2_batch *batch; /* the flush under way */
    /* RFC 9113 §5.1.1: a HEADERS on a stream ID at or below the highest
     * the client used, where no stream is open, is a connection error
     * PROTOCOL_ERROR, whether the ID was skipped (closed for good) or its
     * stream closed. nghttp2 ignores one, as it cannot tell it from
     * trailers the client sent before our RST_STREAM reached it; §5.1
     * has us ignore those, for a period we may bound. The period is our
     * last `recent_cap` resets (h2.max_concurrent_streams, within 128 to
     * 1024): a client crossing our resets with its frames has at most
     * that many streams open. Memory: the ring, nothing per ID skipped
     * (it held 8 skipped ranges before, and let the 9th pass). */
    int32_t max_id;
    int32_t *recent_resets; /* a ring, allocated at the first reset */
    unsigned recent_cap, recent_n, recent_next;
    int protocol_error; /* a callback found one: GOAWAY(PROTOCOL_ERROR) */
    /* MadeYouReset (CVE-2025-8671): stream errors the client provokes make
     * us send RST_STREAM, which nghttp2's Rapid Reset bucket does not
     * count, while each stream may have started an origin fetch; they
     * spend a bucket of their own, as large (max_resets_per_10s) */
    uint64_t provoked_tokens, provoked_ms;
    /* Rapid Reset (CVE-2023-44487): the client's own RST_STREAMs, a bucket
     * of max_resets_per_10s counted before nghttp2's (which says
     * INTERNAL_ERROR when it trips; ours says ENHANCE_YOUR_CALM) */
    uint64_t reset_tokens, reset_ms;
    int calm; /* a bucket ran dry: GOAWAY(ENHANCE_YOUR_CALM), close */
    int failed;
    int in_flush;
    int held_at_mark;   /* that flush left DATA ready at WRITE_HIGH_WATER */
    uint64_t data_sent; /* DATA payload handed to the socket, all streams */
};

/* ---- h2_stream.c ------------------------------------------------------- */

/* The stream nghttp2 holds for id (its user data); NULL: none or closed. */
struct h2_stream *h2_stream_of(struct h2_session *s, int32_t id);
/* A stream error the client provoked (MadeYouReset): counted once. */
void h2_session_note_provoked(struct h2_session *s, struct h2_stream *st);
/* Its memory, queued body and held head included (h2_session_collect). */
void h2_stream_free(struct h2_stream *st);
/* The owner hears that the stream ended, once, unless it ended it. */
void h2_stream_gone(struct h2_stream *st);
/* END_HEADERS of a request: map it, then refuse it or hand it to the owner. */
void h2_stream_request_complete(struct h2_session *s, struct h2_stream *st, int end_stream);
/* nghttp2 callbacks of the request side (h2_session_new sets them). */
int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user);
int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                 size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user);
int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *user);

/* ---- h2_output.c ------------------------------------------------------- */

void h2_chunk_unref(struct h2_chunk *k);
/* The batch one h2_session_flush fills and hands to ops->write; released
 * once written (h2_batch_release is the write's release callback). */
struct h2_batch *h2_batch_new(void);
void h2_batch_release(void *arg);
/* Frame bytes, copied into the batch. */
void h2_batch_copy(struct h2_batch *b, const void *p, size_t n);
/* nghttp2's send_data_callback: a DATA frame as slices of the queue. */
int h2_on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user);

#endif
