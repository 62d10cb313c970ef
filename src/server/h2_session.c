/* An HTTP/2 server session on libnghttp2 (RFC 9113), without socket or
 * pipeline (h2_session.h draws the stream phases). nghttp2 does the
 * framing, HPACK, stream states, flow-control accounting, and its HTTP
 * messaging checks (http/h2_request.h lists them). This file is the
 * session: its settings and limits, the frame callbacks, the reset
 * accounting (Rapid Reset, MadeYouReset), and the flush that turns
 * nghttp2's output into one write. Streams and the request side are in
 * h2_stream.c; responses and queued bodies in h2_output.c. */
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "server/server.h"
#include "server/h2_session_internal.h"
#include "cache/object.h"

/* ---- nghttp2 callbacks ------------------------------------------------ */

static int take_token(struct h2_session *s, uint64_t *tokens, uint64_t *ms);

/* A stream we reset, or nghttp2 will (on_invalid_frame): frames the
 * client sent before it knew are ignored for a while (§5.1). */
static void note_reset(struct h2_session *s, int32_t id)
{
    if (!s->recent_resets) {
        uint32_t n = s->lim.max_concurrent_streams;
        s->recent_cap = n < 128 ? 128 : n > 1024 ? 1024 : n;
        s->recent_resets = calloc(s->recent_cap, sizeof *s->recent_resets);
        if (!s->recent_resets)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    s->recent_resets[s->recent_next] = id;
    s->recent_next = (s->recent_next + 1) % s->recent_cap;
    if (s->recent_n < s->recent_cap)
        s->recent_n++;
}

static int reset_lately(const struct h2_session *s, int32_t id)
{
    for (unsigned i = 0; i < s->recent_n; i++)
        if (s->recent_resets[i] == id)
            return 1;
    return 0;
}

/* Every frame's header, before nghttp2 acts on it: a client RST_STREAM
 * spends a token of the Rapid Reset bucket (empty: the connection ends
 * with GOAWAY(ENHANCE_YOUR_CALM), RFC 9113 §5.4.1, §7); a HEADERS on a
 * stream ID at or below the highest one used, where no stream is open
 * and none was reset lately, is a connection error PROTOCOL_ERROR
 * (§5.1.1: the ID was skipped, or its stream closed; see max_id). */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    struct h2_session *s = user;
    if (s->calm)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* GOAWAY(ENHANCE_YOUR_CALM) */
    if (hd->type == NGHTTP2_RST_STREAM && !take_token(s, &s->reset_tokens, &s->reset_ms)) {
        s->calm = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (hd->type != NGHTTP2_HEADERS || !(hd->stream_id & 1))
        return 0;
    int32_t id = hd->stream_id;
    if (id > s->max_id) {
        s->max_id = id;
        return 0;
    }
    /* A stream nghttp2 still holds is its to judge: trailers on an open
     * one, a connection error STREAM_CLOSED on a closed one it remembers
     * (§5.1); not an idle one a PRIORITY made (RFC 7540 §5.3), whose ID
     * may be one skipped. Frames crossing our RST_STREAM are ignored. */
    nghttp2_stream *known = nghttp2_session_find_stream(ng, id);
    if ((known && nghttp2_stream_get_state(known) != NGHTTP2_STREAM_STATE_IDLE) ||
        reset_lately(s, id))
        return 0;
    s->protocol_error = 1;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = h2_stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        h2_stream_request_complete(s, st, end_stream);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && !st->trailers_bad &&
        h2_trailers_end(end_stream) != H2_REQUEST_OK) {
        st->trailers_bad = 1; /* §8.1: trailers without END_STREAM */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }
    if (st->trailers_bad)
        return 0;
    if (end_stream) { /* the last DATA, or trailers (dropped) */
        st->in_ended = 1;
        if (!st->owner_gone)
            s->ops->req_data(s->owner, st);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = h2_stream_of(s, id);
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
    h2_stream_gone(st);
    return 0;
}

/* A token of a bucket of max_resets_per_10s, refilled at a tenth of it
 * per second; 0 once it is empty. */
static int take_token(struct h2_session *s, uint64_t *tokens, uint64_t *ms)
{
    uint64_t cap = s->lim.max_resets_per_10s;
    uint64_t now = uv_hrtime() / 1000000;
    uint64_t refill = (now - *ms) * (cap / 10 ? cap / 10 : 1) / 1000;
    if (refill) {
        *tokens = *tokens + refill > cap ? cap : *tokens + refill;
        *ms = now;
    }
    if (!*tokens)
        return 0;
    (*tokens)--;
    return 1;
}

static int take_provoked_token(struct h2_session *s)
{
    return take_token(s, &s->provoked_tokens, &s->provoked_ms);
}

/* A frame nghttp2 found breaking a rule (a stream error it will answer
 * with RST_STREAM, or a connection error): counted as it comes, so the
 * frames after it in the same read are not taken once the bucket is dry. */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error,
                            void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = frame->hd.stream_id ? h2_stream_of(s, frame->hd.stream_id) : NULL;
    if (st)
        st->provoked = 1;
    /* nghttp2 resets the stream (a HEADERS past the streams it takes
     * opens none, so the RST_STREAM's send would come too late) */
    if (frame->hd.stream_id)
        note_reset(s, frame->hd.stream_id);
    if (frame->hd.stream_id && !take_provoked_token(s))
        s->calm = 1;
    return 0;
}

void h2_session_note_provoked(struct h2_session *s, struct h2_stream *st)
{
    if (st->provoked)
        return;
    st->provoked = 1;
    note_reset(s, st->id);
    if (!take_provoked_token(s))
        s->calm = 1;
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
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        note_reset(s, frame->hd.stream_id);
    /* the stream errors nghttp2 finds without on_invalid_frame (a DATA
     * past content-length) count as their RST_STREAM goes */
    if (frame->hd.type == NGHTTP2_RST_STREAM && provoked_reset(frame->rst_stream.error_code)) {
        struct h2_stream *st = h2_stream_of(s, frame->hd.stream_id);
        if (!(st && st->provoked) && !take_provoked_token(s))
            s->calm = 1;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct h2_stream *st = h2_stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    st->end = H2_END_ANSWERED;
    if (st->reset_after_end && !st->in_ended)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
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
    s->provoked_tokens = s->reset_tokens = lim->max_resets_per_10s;
    s->provoked_ms = s->reset_ms = uv_hrtime() / 1000000;
    link_init(&s->streams);
    link_init(&s->closed);
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(s);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_send_data_callback(cb, h2_on_send_data);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        free(s);
        return NULL;
    }
    /* the window comes back as the pipeline takes the bytes (design §5) */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* Rapid Reset (CVE-2023-44487): our bucket (on_begin_frame) trips
     * first and says ENHANCE_YOUR_CALM; nghttp2's, twice as deep at the
     * same rate, stays as a backstop (its GOAWAY says INTERNAL_ERROR).
     * Twice: its whole-second refill may lag ours by a second's worth,
     * a tenth of the bucket, so it is never the one to run dry first. */
    uint64_t rate = lim->max_resets_per_10s / 10 ? lim->max_resets_per_10s / 10 : 1;
    nghttp2_option_set_stream_reset_rate_limit(opt, 2 * (uint64_t)lim->max_resets_per_10s, rate);
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
    s->held_at_mark = 0;
    struct h2_batch *b = s->batch = h2_batch_new();
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
        h2_batch_copy(b, data, (size_t)n);
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
        if (s->ops->write(s->owner, v, b->n, h2_batch_release, b) < 0)
            rc = -1;
        if (v != stack)
            free(v);
    } else {
        h2_batch_release(b);
    }
    /* starved streams whose queue went down, or whose share grew as
     * others closed, tell their owners, now that nghttp2 is no longer on
     * the stack; a quarter of the share free at least, as h1 waits for
     * WRITE_LOW_WATER, so each wake-up moves a good part of it */
    for (struct link *l = s->streams.next; l != &s->streams;) {
        struct h2_stream *st = container_of(l, struct h2_stream, link);
        l = l->next;
        if (st->starved && st->queued_cost < h2_stream_share(st) / 4) {
            st->starved = 0;
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

int h2_session_held_at_mark(const struct h2_session *s)
{
    return s->held_at_mark;
}

unsigned h2_session_streams(const struct h2_session *s)
{
    return s->nstreams;
}

uint64_t h2_session_data_sent(const struct h2_session *s)
{
    return s->data_sent;
}

uint64_t h2_session_queued(const struct h2_session *s)
{
    uint64_t n = 0;
    for (const struct link *l = s->streams.next; l != &s->streams; l = l->next)
        n += container_of(l, struct h2_stream, link)->queued;
    return n;
}

static int awaits_body(const struct h2_stream *st)
{
    return !st->owner_gone && !st->in_ended && st->flow != H2_FLOW_WAIT && st->end == H2_END_NONE;
}

uint64_t h2_session_body_idle_since(const struct h2_session *s)
{
    uint64_t since = 0;
    for (const struct link *l = s->streams.next; l != &s->streams; l = l->next) {
        const struct h2_stream *st = container_of(l, struct h2_stream, link);
        if (awaits_body(st) && (!since || st->body_ms < since))
            since = st->body_ms ? st->body_ms : 1;
    }
    return since;
}

void h2_session_stalled_bodies(struct h2_session *s, uint64_t before_ms,
                               void (*fn)(void *owner, struct h2_stream *st))
{
    CHECK_MAGIC(s, H2_SESSION_MAGIC);
    for (struct link *l = s->streams.next; l != &s->streams;) {
        struct h2_stream *st = container_of(l, struct h2_stream, link);
        l = l->next; /* fn only queues: st stays in the list */
        if (awaits_body(st) && st->body_ms <= before_ms)
            fn(s->owner, st);
    }
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
        h2_stream_free(st);
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
        h2_stream_gone(st);
    }
    h2_session_collect(s);
    nghttp2_session_del(s->ng);
    free(s->recent_resets);
    s->magic = 0;
    free(s);
}
