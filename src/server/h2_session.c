/* An HTTP/2 server session on libnghttp2 (RFC 9113), without socket or
 * pipeline (h2_session.h draws the stream phases). nghttp2 does the
 * framing, HPACK, stream states, flow-control accounting, and its HTTP
 * messaging checks (http/h2_request.h lists them); this file gathers
 * request fields, maps them, holds request bodies and the response bodies
 * queued per stream, and turns nghttp2's output into one write per flush:
 * frame bytes copied into a batch, DATA payloads as slices of what the
 * stream queued (NGHTTP2_DATA_FLAG_NO_COPY + send_data_callback), so a
 * stored body reaches the socket without a copy (design §5). */
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "server/server.h"
#include "server/h2_session.h"
#include "cache/object.h"

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
    /* RFC 9113 §5.1.1: stream IDs the client skipped are closed for good;
     * nghttp2 ignores a HEADERS on one (it cannot tell it from trailers on
     * a stream it reset), so the skipped ranges are kept here, a few */
    int32_t max_id;
    struct {
        int32_t lo, hi;
    } skipped[8];
    unsigned nskipped;
    int protocol_error; /* a callback found one: GOAWAY(PROTOCOL_ERROR) */
    /* MadeYouReset (CVE-2025-8671): stream errors the client provokes make
     * us send RST_STREAM, which nghttp2's Rapid Reset bucket does not
     * count, while each stream may have started an origin fetch; they
     * spend a bucket of their own, as large (max_resets_per_10s) */
    uint64_t provoked_tokens, provoked_ms;
    int calm; /* that bucket ran dry: GOAWAY(ENHANCE_YOUR_CALM), close */
    int failed;
    int in_flush;
};

static void chunk_unref(struct h2_chunk *k)
{
    if (k && --k->refs == 0) {
        free(k->heap);
        free(k);
    }
}

/* ---- the batch -------------------------------------------------------- */

static struct h2_batch *batch_new(void)
{
    struct h2_batch *b = calloc(1, sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    return b;
}

static void batch_release(void *arg)
{
    struct h2_batch *b = arg;
    for (unsigned i = 0; i < b->nchunks; i++)
        chunk_unref(b->chunks[i]);
    for (unsigned i = 0; i < b->nobjs; i++)
        cache_object_unref(&b->objs[i]);
    free(b->chunks);
    free(b->objs);
    free(b->v);
    free(b->bytes.p);
    free(b);
}

static struct h2_vec *batch_vec(struct h2_batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        if (!b->v)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    return &b->v[b->n++];
}

static void batch_copy(struct h2_batch *b, const void *p, size_t n)
{
    if (!n)
        return;
    size_t off = b->bytes.len;
    outbuf_add(&b->bytes, p, n);
    b->total += n;
    struct h2_vec *last = b->n ? &b->v[b->n - 1] : NULL;
    if (last && last->in_bytes && last->off + last->len == off) {
        last->len += n;
        return;
    }
    *batch_vec(b) = (struct h2_vec){.in_bytes = 1, .off = off, .len = n};
}

static void batch_slice(struct h2_batch *b, const char *p, size_t n)
{
    if (!n)
        return;
    b->total += n;
    *batch_vec(b) = (struct h2_vec){.p = p, .len = n};
}

static void batch_hold_chunk(struct h2_batch *b, struct h2_chunk *k)
{
    if (b->nchunks && b->chunks[b->nchunks - 1] == k)
        return;
    if (b->nchunks == b->chunks_cap) {
        b->chunks_cap = b->chunks_cap ? 2 * b->chunks_cap : 8;
        b->chunks = realloc(b->chunks, b->chunks_cap * sizeof *b->chunks);
        if (!b->chunks)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    k->refs++;
    b->chunks[b->nchunks++] = k;
}

static void batch_hold_obj(struct h2_batch *b, struct cache_object *o)
{
    if (b->nobjs && b->objs[b->nobjs - 1] == o)
        return;
    if (b->nobjs == b->objs_cap) {
        b->objs_cap = b->objs_cap ? 2 * b->objs_cap : 8;
        b->objs = realloc(b->objs, b->objs_cap * sizeof *b->objs);
        if (!b->objs)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    cache_object_ref(o);
    b->objs[b->nobjs++] = o;
}

/* ---- streams ---------------------------------------------------------- */

static struct h2_stream *stream_of(struct h2_session *s, int32_t id)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
    if (st)
        CHECK_MAGIC(st, H2_STREAM_MAGIC);
    return st;
}

static void stream_free(struct h2_stream *st)
{
    while (st->q) {
        struct h2_piece *pc = st->q;
        st->q = pc->next;
        chunk_unref(pc->chunk);
        cache_object_unref(&pc->obj);
        free(pc);
    }
    if (st->hdr) {
        free(st->hdr->p);
        free(st->hdr);
    }
    if (st->held) {
        free(st->held->p);
        free(st->held);
    }
    iobuf_fini(&st->in);
    st->magic = 0;
    free(st);
}

/* The owner hears that the stream ended, once, unless it ended it. */
static void stream_gone(struct h2_stream *st)
{
    if (st->owner_gone)
        return;
    st->owner_gone = 1;
    st->s->ops->gone(st->s->owner, st);
}

/* Give the window back ahead of consumption (H2_FLOW_READ), within
 * h2.max_read_ahead across the connection's streams. */
static void give_ahead(struct h2_stream *st)
{
    struct h2_session *s = st->s;
    uint64_t n = st->uncredited;
    uint64_t room = s->lim.max_read_ahead > s->ahead ? s->lim.max_read_ahead - s->ahead : 0;
    if (n > room)
        n = room;
    if (!n)
        return;
    nghttp2_session_consume(s->ng, st->id, (size_t)n);
    st->uncredited -= n;
    st->credited_ahead += n;
    s->ahead += n;
}

/* ---- requests --------------------------------------------------------- */

/* An answer of the session's own, before any owner: 400, 415, 431, 501,
 * with a line saying why. */
static void refuse_with(struct h2_stream *st, int status, const char *why, struct slice lines)
{
    size_t n = why ? strlen(why) : 0;
    struct h2_head h = {.status = status,
                        .lines = lines,
                        .type = n ? "text/plain" : NULL,
                        .length = (int64_t)n,
                        .has_body = n > 0};
    h2_stream_respond(st, &h);
    if (n)
        h2_stream_queue_copy(st, why, n);
    st->complete = 1;
    /* RFC 9113 §8.1: a response before the request's end, then
     * RST_STREAM(NO_ERROR) so the client stops sending its body */
    if (!st->in_ended)
        st->reset_after_end = 1;
}

static enum h2_request_verdict map_request(struct h2_stream *st, int end_stream, char **arena_out,
                                           struct http_field **fields_out)
{
    struct h2_session *s = st->s;
    struct h2_request_limits lim = {.max_header_list = st->list_size + 64,
                                    .max_fields = s->lim.max_fields};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field *fields = malloc((st->nhdr + 2) * sizeof *fields);
    if (!arena || !fields)
        srv_panic(__FILE__, __LINE__, "out of memory");
    *arena_out = arena;
    *fields_out = fields;
    struct h2_request h;
    h2_request_init(&h, &lim, arena, cap, fields, st->nhdr + 2);
    const char *p = st->hdr ? st->hdr->p : NULL, *end = p ? p + st->hdr->len : NULL;
    while (p && p < end) {
        uint32_t nl, vl;
        memcpy(&nl, p, 4);
        memcpy(&vl, p + 4, 4);
        h2_request_field(&h, (struct slice){p + 8, nl}, (struct slice){p + 8 + nl, vl});
        p += 8 + nl + vl;
    }
    enum h2_request_verdict v = h2_request_end(&h, end_stream, &st->req, &st->body_kind);
    if (v == H2_REQUEST_OK && st->body_kind == H2_BODY_STREAM)
        st->req.body = HTTP_BODY_STREAM;
    return v;
}

static void request_complete(struct h2_session *s, struct h2_stream *st, int end_stream)
{
    st->in_ended = end_stream;
    if (st->too_large) {
        refuse_with(st, 431, "header list over h2.max_header_list\n", (struct slice){"", 0});
        return;
    }
    char *arena;
    struct http_field *fields;
    enum h2_request_verdict v = map_request(st, end_stream, &arena, &fields);
    if (st->hdr) {
        free(st->hdr->p);
        free(st->hdr);
        st->hdr = NULL;
    }
    switch (v) {
    case H2_REQUEST_OK:
        st->owner_gone = 0; /* it has an owner from here */
        s->ops->request(s->owner, st);
        break;
    case H2_REQUEST_MALFORMED: /* §8.1.1 */
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        break;
    case H2_REQUEST_BAD:
        refuse_with(st, 400, NULL, (struct slice){"", 0});
        break;
    case H2_REQUEST_TOO_LARGE:
        refuse_with(st, 431, NULL, (struct slice){"", 0});
        break;
    case H2_REQUEST_NOT_IMPLEMENTED:
        refuse_with(st, 501, NULL, (struct slice){"", 0});
        break;
    case H2_REQUEST_UNSUPPORTED_MEDIA:
        /* gRPC clients read grpc-status (12: UNIMPLEMENTED) where a
         * response carries one; the body says it to a human */
        refuse_with(st, 415,
                    "native gRPC (application/grpc) needs HTTP/2 to the origin, which "
                    "idemcache does not speak yet; use gRPC-web or Connect\n",
                    SLICE_LIT("grpc-status: 12\r\ngrpc-message: native gRPC is not proxied; "
                              "use gRPC-web or Connect\r\n"));
        break;
    }
    st->req = (struct http_request){0}; /* the owner copied what it keeps */
    free(arena);
    free(fields);
}

/* ---- nghttp2 callbacks ------------------------------------------------ */

/* Every frame's header, before nghttp2 acts on it: a HEADERS opening a
 * stream ID lower than one already opened is a connection error
 * PROTOCOL_ERROR (§5.1.1) when that ID was skipped (never opened). */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    struct h2_session *s = user;
    if (s->calm)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* GOAWAY(ENHANCE_YOUR_CALM) */
    if (hd->type != NGHTTP2_HEADERS || !(hd->stream_id & 1))
        return 0;
    int32_t id = hd->stream_id;
    if (id > s->max_id) {
        int32_t lo = s->max_id + 2;
        if (id > lo && s->nskipped < sizeof s->skipped / sizeof s->skipped[0]) {
            s->skipped[s->nskipped].lo = lo;
            s->skipped[s->nskipped].hi = id - 2;
            s->nskipped++;
        }
        s->max_id = id;
        return 0;
    }
    for (unsigned i = 0; i < s->nskipped; i++)
        if (id >= s->skipped[i].lo && id <= s->skipped[i].hi) {
            s->protocol_error = 1;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->magic = H2_STREAM_MAGIC;
    st->id = frame->hd.stream_id;
    st->s = s;
    st->conn = s->owner;
    st->owner_gone = 1; /* no owner until the request maps */
    st->q_tail = &st->q;
    link_insert(&s->streams, &st->link);
    s->nstreams++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: not forwarded (origins are HTTP/1.1, no trailers) */
    struct h2_stream *st = stream_of(s, frame->hd.stream_id);
    if (!st || st->too_large)
        return 0;
    /* RFC 9113 §6.5.2: our SETTINGS_MAX_HEADER_LIST_SIZE, counted as it
     * says; past it (or limits.header_count) the fields are dropped and
     * the request answered 431 */
    st->list_size += namelen + valuelen + 32;
    if (st->list_size > s->lim.max_header_list || st->nhdr >= s->lim.max_fields + 8) {
        st->too_large = 1;
        return 0;
    }
    if (!st->hdr && !(st->hdr = calloc(1, sizeof *st->hdr)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    uint32_t nl = (uint32_t)namelen, vl = (uint32_t)valuelen;
    outbuf_add(st->hdr, &nl, 4);
    outbuf_add(st->hdr, &vl, 4);
    outbuf_add(st->hdr, name, namelen);
    outbuf_add(st->hdr, value, valuelen);
    st->nhdr++;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        request_complete(s, st, end_stream);
        return 0;
    }
    if (end_stream) { /* the last DATA, or trailers */
        st->in_ended = 1;
        if (!st->owner_gone)
            s->ops->req_data(s->owner, st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = stream_of(s, id);
    if (!st || st->owner_gone) {
        /* no one reads it: its window comes back at once */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (iobuf_reserve(&st->in, len, SIZE_MAX) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(st->in.base + st->in.end, data, len);
    st->in.end += len;
    st->in_total += len;
    st->uncredited += len;
    if (st->flow == H2_FLOW_READ) {
        give_ahead(st);
        /* The pipeline reads ahead (a body keyed) and the connection's
         * budget is spent: half the stream's window waits uncredited, and
         * the window would shut and stay so (a client need not send the
         * last bytes of a window). Refused: the client may retry it (RFC
         * 9113 §8.7). */
        if (st->uncredited && 2 * st->uncredited >= s->lim.initial_window) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
    }
    s->ops->req_data(s->owner, st);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = stream_of(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (st->end == H2_END_NONE)
        st->end = H2_END_RESET;
    /* bytes held and never consumed still count against the connection's
     * window */
    if (st->uncredited)
        nghttp2_session_consume_connection(ng, (size_t)st->uncredited);
    st->uncredited = 0;
    s->ahead -= st->credited_ahead;
    st->credited_ahead = 0;
    link_remove(&st->link);
    link_insert(&s->closed, &st->link);
    s->nstreams--;
    stream_gone(st);
    return 0;
}

/* A token of the provoked-reset bucket, refilled at a tenth of it per
 * second as nghttp2's Rapid Reset one; 0 once it is empty. */
static int take_provoked_token(struct h2_session *s)
{
    uint64_t cap = s->lim.max_resets_per_10s;
    uint64_t now = uv_hrtime() / 1000000;
    uint64_t refill = (now - s->provoked_ms) * (cap / 10 ? cap / 10 : 1) / 1000;
    if (refill) {
        s->provoked_tokens = s->provoked_tokens + refill > cap ? cap : s->provoked_tokens + refill;
        s->provoked_ms = now;
    }
    if (!s->provoked_tokens)
        return 0;
    s->provoked_tokens--;
    return 1;
}

/* A frame nghttp2 found breaking a rule (a stream error it will answer
 * with RST_STREAM, or a connection error): counted as it comes, so the
 * frames after it in the same read are not taken once the bucket is dry. */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error,
                            void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = frame->hd.stream_id ? stream_of(s, frame->hd.stream_id) : NULL;
    if (st)
        st->provoked = 1;
    if (frame->hd.stream_id && !take_provoked_token(s))
        s->calm = 1;
    return 0;
}

/* RST_STREAM codes that say the client broke a rule on that stream
 * (RFC 9113 §5.4.2); ours for a refused or failed exchange do not count. */
static int provoked_reset(uint32_t code)
{
    return code == NGHTTP2_PROTOCOL_ERROR || code == NGHTTP2_FLOW_CONTROL_ERROR ||
           code == NGHTTP2_STREAM_CLOSED || code == NGHTTP2_FRAME_SIZE_ERROR;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *s = user;
    /* the stream errors nghttp2 finds without on_invalid_frame (a DATA
     * past content-length) count as their RST_STREAM goes */
    if (frame->hd.type == NGHTTP2_RST_STREAM && provoked_reset(frame->rst_stream.error_code)) {
        struct h2_stream *st = stream_of(s, frame->hd.stream_id);
        if (!(st && st->provoked) && !take_provoked_token(s))
            s->calm = 1;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *st = stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    st->end = H2_END_ANSWERED;
    if (st->reset_after_end && !st->in_ended)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct h2_stream *st = source->ptr;
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (st->queued == 0) {
        if (st->complete) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = st->queued < length ? (size_t)st->queued : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->queued && st->complete)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The DATA frame nghttp2 chose: its header copied, its payload as slices
 * of the queued pieces (design §5: a hit is frame headers and segment
 * slices in one writev). Above WRITE_HIGH_WATER it waits for the socket. */
static int send_body(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *source, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = source->ptr;
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    struct h2_batch *b = s->batch;
    if (b->total && s->ops->write_pending(s->owner) + b->total > WRITE_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK;
    batch_copy(b, framehd, 9);
    uint64_t left = length;
    while (left) {
        struct h2_piece *pc = st->q;
        ASSERT(pc);
        uint64_t take = pc->len < left ? pc->len : left;
        if (pc->chunk) {
            batch_slice(b, pc->p, (size_t)take);
            batch_hold_chunk(b, pc->chunk);
            pc->p += take;
        } else {
            /* the stored body's segments, from pc->at */
            uint64_t at = 0, want = take, from = pc->at;
            for (struct cache_segment *g = pc->obj->body->first; g && want; g = g->next) {
                uint64_t glen = g->len;
                if (from < at + glen) {
                    uint64_t lo = from - at, n = glen - lo < want ? glen - lo : want;
                    batch_slice(b, g->data + lo, (size_t)n);
                    from += n;
                    want -= n;
                }
                at += glen;
            }
            ASSERT(want == 0);
            batch_hold_obj(b, pc->obj);
            pc->at += take;
        }
        pc->len -= take;
        left -= take;
        st->queued -= take;
        if (pc->len == 0) {
            st->q = pc->next;
            if (!st->q)
                st->q_tail = &st->q;
            chunk_unref(pc->chunk);
            cache_object_unref(&pc->obj);
            free(pc);
        }
    }
    return 0;
}

/* ---- the session ------------------------------------------------------ */

struct h2_session *h2_session_new(const struct h2_session_limits *lim,
                                  const struct h2_session_ops *ops, void *owner)
{
    struct h2_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->magic = H2_SESSION_MAGIC;
    s->ops = ops;
    s->owner = owner;
    s->lim = *lim;
    s->provoked_tokens = lim->max_resets_per_10s;
    s->provoked_ms = uv_hrtime() / 1000000;
    link_init(&s->streams);
    link_init(&s->closed);
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(s);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_body);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        free(s);
        return NULL;
    }
    /* the window comes back as the pipeline takes the bytes (design §5) */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* Rapid Reset (CVE-2023-44487): a bucket of max_resets_per_10s
     * RST_STREAMs, refilled at a tenth of it per second; empty: GOAWAY */
    uint64_t rate = lim->max_resets_per_10s / 10 ? lim->max_resets_per_10s / 10 : 1;
    nghttp2_option_set_stream_reset_rate_limit(opt, lim->max_resets_per_10s, rate);
    /* CONTINUATION flood (CVE-2024-27316 class): nghttp2's default of 8
     * frames after a HEADERS holds any header list within 64KiB frames;
     * queued SETTINGS/PING ACKs are capped by its max_outbound_ack (1000),
     * past which the connection ends (FLOODED) */
    nghttp2_option_set_max_continuations(opt, 8);
    int rc = nghttp2_session_server_new2(&s->ng, cb, s, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        free(s);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->initial_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         lim->max_header_list > UINT32_MAX ? UINT32_MAX : (uint32_t)lim->max_header_list},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    /* The connection's window: what all streams may hold unconsumed, as
     * large as the read-ahead budget (and never below one stream's) */
    uint64_t conn_window =
        lim->max_read_ahead > lim->initial_window ? lim->max_read_ahead : lim->initial_window;
    if (conn_window > 2147483647u)
        conn_window = 2147483647u;
    if (conn_window > 65535)
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window);
    return s;
}

int h2_session_recv(struct h2_session *s, const char *p, size_t n)
{
    CHECK_MAGIC(s, H2_SESSION_MAGIC);
    if (s->failed)
        return -1;
    ssize_t rv = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, n);
    if (rv < 0) {
        /* A bad preface, a flood, too many CONTINUATIONs, our callback
         * failing: nghttp2 stops without a word; the client still gets
         * the GOAWAY of a connection error (RFC 9113 §5.4.1), then the
         * connection closes. */
        uint32_t code =
            s->protocol_error ? NGHTTP2_PROTOCOL_ERROR
            : s->calm || rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                ? NGHTTP2_ENHANCE_YOUR_CALM
            : rv == NGHTTP2_ERR_CALLBACK_FAILURE || rv == NGHTTP2_ERR_NOMEM
                ? NGHTTP2_INTERNAL_ERROR
                : NGHTTP2_PROTOCOL_ERROR;
        nghttp2_session_terminate_session(s->ng, code);
        s->failed = 1;
        return -1;
    }
    return 0;
}

int h2_session_flush(struct h2_session *s)
{
    CHECK_MAGIC(s, H2_SESSION_MAGIC);
    ASSERT(!s->in_flush);
    s->in_flush = 1;
    struct h2_batch *b = s->batch = batch_new();
    int rc = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s->ng, &data);
        if (n < 0) {
            s->failed = 1;
            rc = -1;
            break;
        }
        if (n == 0) {
            /* the provoked-reset bucket ran dry as frames went: the
             * connection error goes out in this same flush */
            if (s->calm && !s->failed) {
                nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
                s->failed = 1;
                continue;
            }
            break;
        }
        batch_copy(b, data, (size_t)n);
    }
    s->batch = NULL;
    s->in_flush = 0;
    if (b->n) {
        struct slice stack[64], *v = b->n <= 64 ? stack : malloc(b->n * sizeof *v);
        if (!v)
            srv_panic(__FILE__, __LINE__, "out of memory");
        for (unsigned i = 0; i < b->n; i++)
            v[i] = b->v[i].in_bytes ? (struct slice){b->bytes.p + b->v[i].off, b->v[i].len}
                                    : (struct slice){b->v[i].p, b->v[i].len};
        if (s->ops->write(s->owner, v, b->n, batch_release, b) < 0)
            rc = -1;
        if (v != stack)
            free(v);
    } else {
        batch_release(b);
    }
    /* streams whose queue went down tell their owners, now that nghttp2
     * is no longer on the stack */
    for (struct link *l = s->streams.next; l != &s->streams;) {
        struct h2_stream *st = container_of(l, struct h2_stream, link);
        l = l->next;
        if (st->was_high && st->queued < WRITE_LOW_WATER) {
            st->was_high = 0;
            if (!st->owner_gone)
                s->ops->drained(s->owner, st);
        }
    }
    return rc;
}

int h2_session_alive(const struct h2_session *s)
{
    return !s->failed && (nghttp2_session_want_read(s->ng) || nghttp2_session_want_write(s->ng));
}

unsigned h2_session_streams(const struct h2_session *s)
{
    return s->nstreams;
}

uint64_t h2_session_queued(const struct h2_session *s)
{
    uint64_t n = 0;
    for (const struct link *l = s->streams.next; l != &s->streams; l = l->next)
        n += container_of(l, struct h2_stream, link)->queued;
    return n;
}

int h2_session_awaits_body(const struct h2_session *s)
{
    for (const struct link *l = s->streams.next; l != &s->streams; l = l->next) {
        const struct h2_stream *st = container_of(l, struct h2_stream, link);
        if (!st->owner_gone && !st->in_ended && st->flow != H2_FLOW_WAIT)
            return 1;
    }
    return 0;
}

void h2_session_drain(struct h2_session *s)
{
    /* §6.8: the last stream we took; those after it were not processed */
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

void h2_session_collect(struct h2_session *s)
{
    while (!link_empty(&s->closed)) {
        struct h2_stream *st = container_of(s->closed.next, struct h2_stream, link);
        link_remove(&st->link);
        if (s->ops->freed)
            s->ops->freed(s->owner, st);
        stream_free(st);
    }
}

void h2_session_free(struct h2_session **sp)
{
    struct h2_session *s = *sp;
    if (!s)
        return;
    CHECK_MAGIC(s, H2_SESSION_MAGIC);
    *sp = NULL;
    while (!link_empty(&s->streams)) {
        struct h2_stream *st = container_of(s->streams.next, struct h2_stream, link);
        link_remove(&st->link);
        link_insert(&s->closed, &st->link);
        if (st->end == H2_END_NONE)
            st->end = H2_END_RESET;
        stream_gone(st);
    }
    h2_session_collect(s);
    nghttp2_session_del(s->ng);
    s->magic = 0;
    free(s);
}

/* ---- responses -------------------------------------------------------- */

int h2_stream_closing(const struct h2_stream *st)
{
    return st->end != H2_END_NONE || st->s->failed;
}

static void add_nv(nghttp2_nv *nv, unsigned *n, struct slice name, struct slice value)
{
    nv[*n] = (nghttp2_nv){(uint8_t *)name.p, (uint8_t *)value.p, name.len, value.len,
                          NGHTTP2_NV_FLAG_NONE};
    (*n)++;
}

/* Field lines and fields to nv (names lowercased by nghttp2's copy). */
static unsigned build_nv(const struct h2_head *h, nghttp2_nv *nv, unsigned cap, char *status,
                         char *length, size_t length_cap)
{
    unsigned n = 0;
    h2_status_digits(h->status, status);
    add_nv(nv, &n, SLICE_LIT(":status"), (struct slice){status, 3});
    struct slice connection = {"", 0};
    for (unsigned i = 0; i < h->nfields; i++)
        if (slice_case_eq(h->fields[i].name, "connection"))
            connection = h->fields[i].value;
    for (unsigned i = 0; i < h->nfields && n < cap; i++) {
        const struct http_field *f = &h->fields[i];
        if (h->omit.len && f->name.p >= h->omit.p && f->name.p < h->omit.p + h->omit.len)
            continue;
        if (f->id == HF_CONTENT_LENGTH || !h2_response_keeps_field(f->name, connection))
            continue;
        add_nv(nv, &n, f->name, f->value);
    }
    struct slice rest = h->lines;
    struct http_field f;
    while (n < cap && h2_next_field_line(&rest, &f))
        if (f.id != HF_CONTENT_LENGTH && h2_response_keeps_field(f.name, connection))
            add_nv(nv, &n, f.name, f.value);
    if (h->type && n < cap)
        add_nv(nv, &n, SLICE_LIT("content-type"), (struct slice){h->type, strlen(h->type)});
    if (h->length >= 0 && n < cap && h->status != 204 && h->status != 304 &&
        !(h->status >= 100 && h->status < 200)) {
        int k = snprintf(length, length_cap, "%lld", (long long)h->length);
        add_nv(nv, &n, SLICE_LIT("content-length"), (struct slice){length, (size_t)k});
    }
    return n;
}

static unsigned count_lines(struct slice lines)
{
    unsigned n = 0;
    for (size_t i = 0; i < lines.len; i++)
        n += lines.p[i] == '\n';
    return n + 1;
}

static void drop_held(struct h2_stream *st)
{
    if (!st->held)
        return;
    free(st->held->p);
    free(st->held);
    st->held = NULL;
}

static int respond_now(struct h2_stream *st, const struct h2_head *h);

/* The held head goes: body is coming, or the response ends. */
static void release_held(struct h2_stream *st)
{
    if (!st->held)
        return;
    struct outbuf *o = st->held;
    st->held = NULL;
    struct h2_head h = {.status = st->held_status,
                        .lines = {o->p, o->len},
                        .length = st->held_length,
                        .has_body = st->held_has_body};
    respond_now(st, &h);
    free(o->p);
    free(o);
}

void h2_stream_hold(struct h2_stream *st, const struct h2_head *h)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    if (st->responded || h2_stream_closing(st))
        return;
    st->held = calloc(1, sizeof *st->held);
    if (!st->held)
        srv_panic(__FILE__, __LINE__, "out of memory");
    outbuf_add(st->held, h->lines.p, h->lines.len);
    st->held_status = h->status;
    st->held_length = h->length;
    st->held_has_body = h->has_body;
}

int h2_stream_respond(struct h2_stream *st, const struct h2_head *h)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    return respond_now(st, h);
}

static int respond_now(struct h2_stream *st, const struct h2_head *h)
{
    if (st->responded || h2_stream_closing(st))
        return -1;
    unsigned cap = 4 + h->nfields + count_lines(h->lines);
    nghttp2_nv stack[64], *nv = cap <= 64 ? stack : malloc(cap * sizeof *nv);
    if (!nv)
        srv_panic(__FILE__, __LINE__, "out of memory");
    char status[3], length[24];
    unsigned n = build_nv(h, nv, cap, status, length, sizeof length);
    st->responded = 1;
    st->has_body = h->has_body;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(st->s->ng, st->id, nv, n, h->has_body ? &prd : NULL);
    if (!h->has_body)
        st->complete = 1;
    if (nv != stack)
        free(nv);
    return rc == 0 ? 0 : -1;
}

int h2_stream_interim(struct h2_stream *st, int status, struct slice lines)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (st->responded || h2_stream_closing(st))
        return -1;
    struct h2_head h = {.status = status, .lines = lines, .length = -1};
    unsigned cap = 2 + count_lines(lines);
    nghttp2_nv stack[32], *nv = cap <= 32 ? stack : malloc(cap * sizeof *nv);
    if (!nv)
        srv_panic(__FILE__, __LINE__, "out of memory");
    char st3[3], length[24];
    unsigned n = build_nv(&h, nv, cap, st3, length, sizeof length);
    int rc = nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, n, NULL);
    if (nv != stack)
        free(nv);
    return rc == 0 ? 0 : -1;
}

static void queue_piece(struct h2_stream *st, struct h2_piece *pc)
{
    release_held(st);
    pc->next = NULL;
    *st->q_tail = pc;
    st->q_tail = &pc->next;
    st->queued += pc->len;
    if (st->queued > WRITE_HIGH_WATER)
        st->was_high = 1;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
}

static int can_queue(struct h2_stream *st, size_t n)
{
    if (n)
        release_held(st);
    return n && st->has_body && !st->complete && !h2_stream_closing(st);
}

void h2_stream_queue_heap(struct h2_stream *st, char *heap, const char *p, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, n)) {
        free(heap);
        return;
    }
    struct h2_chunk *k = malloc(sizeof *k);
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!k || !pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    k->refs = 1;
    k->heap = heap;
    pc->chunk = k;
    pc->p = p;
    pc->len = n;
    queue_piece(st, pc);
}

void h2_stream_queue_copy(struct h2_stream *st, const char *p, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, n))
        return;
    struct h2_chunk *k = malloc(sizeof *k + n);
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!k || !pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    k->refs = 1;
    k->heap = NULL;
    memcpy(k->data, p, n);
    pc->chunk = k;
    pc->p = k->data;
    pc->len = n;
    queue_piece(st, pc);
}

void h2_stream_queue_object(struct h2_stream *st, struct cache_object *o, uint64_t first,
                            uint64_t len)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, (size_t)len))
        return;
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    cache_object_ref(o);
    pc->obj = o;
    pc->at = first;
    pc->len = len;
    queue_piece(st, pc);
}

void h2_stream_body_complete(struct h2_stream *st)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    release_held(st);
    st->complete = 1;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
}

void h2_stream_end(struct h2_stream *st, int body_unread)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    st->owner_gone = 1;
    if (h2_stream_closing(st))
        return;
    release_held(st);
    if (!st->responded) {
        /* ended with no response: never a valid exchange */
        h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->complete = 1;
    if (body_unread && !st->in_ended)
        st->reset_after_end = 1;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
}

void h2_stream_reset(struct h2_stream *st, uint32_t code)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    st->owner_gone = 1;
    st->complete = 1;
    if (st->end != H2_END_NONE)
        return;
    nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id,
                              code ? code : NGHTTP2_INTERNAL_ERROR);
}

/* ---- request bodies ---------------------------------------------------- */

void h2_stream_consume(struct h2_stream *st, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (n > iobuf_len(&st->in))
        n = iobuf_len(&st->in);
    iobuf_consume(&st->in, n);
    uint64_t ahead = n < st->credited_ahead ? n : st->credited_ahead;
    st->credited_ahead -= ahead;
    st->s->ahead -= ahead;
    uint64_t rest = n - ahead;
    if (rest > st->uncredited)
        rest = st->uncredited;
    if (rest && st->end == H2_END_NONE)
        nghttp2_session_consume(st->s->ng, st->id, (size_t)rest);
    st->uncredited -= rest;
}

void h2_stream_flow(struct h2_stream *st, enum h2_flow f)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    st->flow = f;
    if (f == H2_FLOW_READ && st->end == H2_END_NONE)
        give_ahead(st);
}
