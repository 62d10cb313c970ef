/* HTTP/2 toward clients (RFC 9113): an h2_session (h2_session.c) on a
 * client connection, each stream one exchange through the protocol
 * interface (front.h). Chosen by ALPN "h2" on TLS listeners and by the
 * prior-knowledge preface on cleartext ones (§3.3, §3.4), when h2.enabled.
 *
 *   h1_server: preface / ALPN h2 -> h2_conn_start (the client's conn now
 *   calls here) -> reads: h2_session_recv, then one flush -> streams:
 *   exchange_new/_copy_request/_begin; pipeline answers through h2_front
 *   (queued only) -> flush at the next idle phase, never inside nghttp2
 *   (design §8) -> GOAWAY on drain or a connection error -> shutdown ->
 *   client_close -> every stream's exchange gone, then freed
 *
 * Timers (the client's one): keep-alive idle with no stream open, send
 * idle while writes wait on a client that does not read (both close the
 * connection), body idle per stream: a stream whose request body has not
 * moved for timeouts.client_body_idle ends alone (h2_conn_timer); origin
 * and request timeouts are the pipeline's. */
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "server/h1_server.h"
#include "server/h2_server.h"
#include "server/h2_session.h"
#include "server/log.h"

#define H2_CONN_MAGIC 0x4832434eu

static const char client_magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct h2_conn {
    uint32_t magic;
    struct client *c;
    struct h2_session *s;
    uv_idle_t flush_idle; /* a flush at the next idle phase */
    int flush_wanted;
    int closing;
    int shutting;      /* conn_shutdown under way */
    unsigned refusals; /* requests refused as they mapped, logged up to REFUSALS_LOGGED */
    struct h2_origin_reserve *reserve; /* its origin connection within its slot */
    /* send idle: since when our output has not moved (0: not waiting),
     * and where it stood at the last look */
    uint64_t send_since, sent_mark;
    size_t pending_mark;
};

struct h2_origin_reserve {
    int refs;  /* the h2 connection's, and the origin connection's that took it */
    int taken; /* an origin connection has it */
};

static void h2_close(struct h2_conn *hc);
static void want_flush(struct h2_conn *hc);
static void h2_flush(struct h2_conn *hc);

static struct h2_conn *conn_of_stream(const struct h2_stream *st)
{
    struct h2_conn *hc = st->conn;
    CHECK_MAGIC(hc, H2_CONN_MAGIC);
    return hc;
}

static struct h2_stream *stream_of_ex(const struct exchange *ex)
{
    return ex->fe_ctx;
}

/* ---- flushing --------------------------------------------------------- */

/* Send idle: due client_send_idle after our output last moved (DATA
 * went to the socket, or the socket took some of what waits), not after
 * the client's last frame. Re-armed whole at every flush, it let a client
 * whose windows stayed shut on stored hits send a PING (its ACK is a
 * flush) every few seconds and keep them, charged to the store, for good. */
static void send_idle_timer(struct h2_conn *hc)
{
    struct client *c = hc->c;
    uint64_t now = uv_hrtime() / 1000000, sent = h2_session_data_sent(hc->s);
    size_t pending = c->conn.write_pending;
    if (!hc->send_since || sent != hc->sent_mark || pending < hc->pending_mark)
        hc->send_since = now;
    hc->sent_mark = sent;
    hc->pending_mark = pending;
    uint64_t due = hc->send_since + c->w->cfg->timeouts.client_send_idle;
    client_timer(c, due > now ? due - now : 1);
}

static void update_timer(struct h2_conn *hc)
{
    struct client *c = hc->c;
    const struct config *cfg = c->w->cfg;
    /* a client that reads nothing: its socket is full, or its windows
     * shut with our DATA waiting (RFC 9113 §6.9): send idle */
    uint64_t since;
    int waiting = c->conn.write_pending || h2_session_queued(hc->s);
    if (!waiting)
        hc->send_since = 0;
    if (waiting) {
        send_idle_timer(hc);
    } else if ((since = h2_session_body_idle_since(hc->s)) != 0) {
        /* the stream whose request body moved longest ago: due when its
         * own client_body_idle runs out, whatever the others send */
        uint64_t now = uv_hrtime() / 1000000, due = since + cfg->timeouts.client_body_idle;
        client_timer(c, due > now ? due - now : 1);
    } else if (!h2_session_streams(hc->s))
        client_timer(c, cfg->timeouts.keepalive_idle);
    else
        client_timer(c, 0); /* the pipeline's timeouts run */
}

/* A request body that stopped coming (h1 answers 408 and closes): this
 * stream alone ends, with a 408 if no response began (then
 * RST_STREAM(NO_ERROR), its body unread, RFC 9113 §8.1), else
 * RST_STREAM(CANCEL) and the exchange is told its client went. */
static void end_stalled(void *owner, struct h2_stream *st)
{
    struct h2_conn *hc = owner;
    struct exchange *ex = st->owner;
    log_msg(LOG_INFO, "client %s: h2 stream %d: request body idle timeout", hc->c->ci.ip,
            (int)st->id);
    if (ex && !ex->resp_started) {
        reply_error(ex, 408, "request body timeout");
        return;
    }
    h2_stream_reset(st, NGHTTP2_CANCEL);
    if (ex)
        exchange_front_gone(ex);
}

int h2_conn_timer(struct client *c)
{
    struct h2_conn *hc = c->h2;
    if (!hc || hc->closing || c->conn.write_pending || h2_session_queued(hc->s))
        return 0; /* send idle: the connection closes */
    uint64_t since = h2_session_body_idle_since(hc->s);
    if (!since)
        return 0; /* keep-alive idle */
    uint64_t now = uv_hrtime() / 1000000, idle = c->w->cfg->timeouts.client_body_idle;
    if (now >= idle)
        h2_session_stalled_bodies(hc->s, now - idle, end_stalled);
    h2_flush(hc); /* the answers go, and the timer is set again */
    return 1;
}

static void on_shutdown(void *owner, int status)
{
    struct h2_conn *hc = owner;
    client_close(hc->c);
}

/* Write what nghttp2 has queued, then close if neither side has more to
 * say. Only from the top of a callback: the pipeline is not on the stack,
 * so a stream that closes here can tell its exchange and be freed. */
static void h2_flush(struct h2_conn *hc)
{
    struct client *c = hc->c;
    if (hc->closing || c->closed)
        return;
    hc->flush_wanted = 0;
    h2_session_collect(hc->s);
    if (h2_session_flush(hc->s) < 0) {
        client_close(c);
        return;
    }
    h2_session_collect(hc->s);
    if (c->closed)
        return;
    if (!h2_session_alive(hc->s)) {
        if (!c->conn.write_pending && !hc->shutting) {
            hc->shutting = 1;
            conn_read(&c->conn, 0);
            if (conn_shutdown(&c->conn, on_shutdown) < 0)
                client_close(c);
        }
        return;
    }
    /* A client that sends and does not read (a PING or SETTINGS flood,
     * each asking an ACK): stop reading it while its answers wait */
    if (c->conn.write_pending > WRITE_HIGH_WATER)
        conn_read(&c->conn, 0);
    else if (c->conn.write_pending <= WRITE_LOW_WATER)
        conn_read(&c->conn, 1);
    /* DATA left at the mark waits for h2_written; a write the socket took
     * whole at once has no completion, so nothing would come (a client
     * that opened its windows wide and only reads): go on next turn */
    if (h2_session_held_at_mark(hc->s) && !c->conn.write_pending)
        want_flush(hc);
    update_timer(hc);
}

static void on_flush_idle(uv_idle_t *h)
{
    struct h2_conn *hc = h->data;
    uv_idle_stop(h);
    if (hc->flush_wanted)
        h2_flush(hc);
}

static void want_flush(struct h2_conn *hc)
{
    if (hc->flush_wanted || hc->closing)
        return;
    hc->flush_wanted = 1;
    uv_idle_start(&hc->flush_idle, on_flush_idle);
}

/* ---- the transport's callbacks ----------------------------------------- */

static void h2_room(void *owner, size_t *want, size_t *max)
{
    struct h2_conn *hc = owner;
    *want = 16 * 1024;
    *max = iobuf_len(&hc->c->conn.in) + READ_CHUNK;
}

static void h2_data(void *owner, size_t n)
{
    struct h2_conn *hc = owner;
    CHECK_MAGIC(hc, H2_CONN_MAGIC);
    struct client *c = hc->c;
    h2_session_collect(hc->s);
    struct iobuf *in = &c->conn.in;
    int rc = h2_session_recv(hc->s, iobuf_data(in), iobuf_len(in));
    iobuf_consume(in, iobuf_len(in));
    if (rc < 0)
        log_msg(LOG_INFO, "client %s: h2 connection error", c->ci.ip);
    h2_flush(hc);
}

static void h2_eof(void *owner, int err)
{
    struct h2_conn *hc = owner;
    CHECK_MAGIC(hc, H2_CONN_MAGIC);
    /* UV_ENOBUFS cannot happen (every read is consumed); anything else
     * ends the connection and its streams */
    client_close(hc->c);
}

static void h2_written(void *owner, int status)
{
    struct h2_conn *hc = owner;
    CHECK_MAGIC(hc, H2_CONN_MAGIC);
    if (status < 0) {
        client_close(hc->c);
        return;
    }
    /* the socket took some: DATA held back above WRITE_HIGH_WATER goes on */
    h2_flush(hc);
}

static const struct conn_cb h2_conn_cb = {
    .room = h2_room,
    .data = h2_data,
    .eof = h2_eof,
    .written = h2_written,
};

/* ---- the session's owner: streams to exchanges ------------------------- */

static void on_request(void *owner, struct h2_stream *st)
{
    struct h2_conn *hc = owner;
    struct client *c = hc->c;
    struct exchange *ex = exchange_new(c->w, &h2_front, st, &c->ci);
    if (!ex) {
        h2_stream_reset(st, 0);
        return;
    }
    st->owner = ex;
    if (exchange_copy_request(ex, &st->req) < 0) {
        h2_stream_reset(st, 0);
        return;
    }
    exchange_begin(ex);
}

static void on_req_data(void *owner, struct h2_stream *st)
{
    if (st->owner)
        exchange_req_data(st->owner);
}

static void on_gone(void *owner, struct h2_stream *st)
{
    struct exchange *ex = st->owner;
    if (!ex)
        return;
    /* the body still queued on the stream never went out: its line counts
     * what nghttp2 took (as h1's, what its socket took), not all that the
     * pipeline queued behind a window the client kept shut */
    ex->bytes_out -= st->queued < ex->bytes_out ? st->queued : ex->bytes_out;
    if (exchange_front_gone(ex) == EXCHANGE_DETACHED)
        st->owner = NULL; /* a background fetch now, internal.c's to free */
}

static void on_drained(void *owner, struct h2_stream *st)
{
    if (st->owner)
        exchange_front_drained(st->owner);
}

static void on_freed(void *owner, struct h2_stream *st)
{
    struct exchange *ex = st->owner;
    st->owner = NULL;
    if (ex)
        exchange_free(&ex);
}

static int on_write(void *owner, const struct slice *v, unsigned n, void (*release)(void *),
                    void *arg)
{
    struct h2_conn *hc = owner;
    return conn_writev_release(&hc->c->conn, v, n, release, arg);
}

static size_t on_write_pending(void *owner)
{
    struct h2_conn *hc = owner;
    return hc->c->conn.write_pending;
}

/* A refused request's line, as h1 logs one (README "Errors"). An h1
 * connection closes after one; an h2 client may send refusals as fast as
 * HEADERS frames: the first REFUSALS_LOGGED of a connection are logged,
 * the last of them saying the rest are not. */
#define REFUSALS_LOGGED 10

static void on_refused(void *owner, struct h2_stream *st, int status, const char *why)
{
    struct h2_conn *hc = owner;
    if (hc->refusals >= REFUSALS_LOGGED)
        return;
    const char *more = ++hc->refusals == REFUSALS_LOGGED
                           ? " (further refusals on this connection not logged)"
                           : "";
    if (status)
        log_msg(LOG_INFO, "client %s: h2 stream %d: %d %s: %s%s", hc->c->ci.ip, (int)st->id, status,
                reply_reason(status), why, more);
    else
        log_msg(LOG_INFO, "client %s: h2 stream %d: malformed request: %s%s", hc->c->ci.ip,
                (int)st->id, why, more);
}

static const struct h2_session_ops session_ops = {
    .request = on_request,
    .req_data = on_req_data,
    .gone = on_gone,
    .drained = on_drained,
    .write = on_write,
    .write_pending = on_write_pending,
    .freed = on_freed,
    .refused = on_refused,
};

/* ---- taking a connection ----------------------------------------------- */

enum h2_preface h2_preface_check(const struct client *c)
{
    const struct config *cfg = c->w->cfg;
    size_t have = iobuf_len(&c->conn.in), want = sizeof client_magic - 1;
    if (!cfg->h2.enabled || c->tls)
        return H2_PREFACE_NONE;
    size_t n = have < want ? have : want;
    if (memcmp(iobuf_data(&c->conn.in), client_magic, n) != 0)
        return H2_PREFACE_NONE;
    return have < want ? H2_PREFACE_PARTIAL : H2_PREFACE_FOUND;
}

int h2_conn_start(struct client *c)
{
    const struct config *cfg = c->w->cfg;
    struct h2_conn *hc = calloc(1, sizeof *hc);
    if (!hc)
        return -1;
    hc->magic = H2_CONN_MAGIC;
    hc->c = c;
    hc->reserve = calloc(1, sizeof *hc->reserve);
    if (!hc->reserve) {
        free(hc);
        return -1;
    }
    hc->reserve->refs = 1;
    struct h2_session_limits lim = {
        .max_concurrent_streams = (uint32_t)cfg->h2.max_concurrent_streams,
        .initial_window = (uint32_t)cfg->h2.initial_window,
        .max_header_list = cfg->h2.max_header_list,
        .max_resets_per_10s = (uint32_t)cfg->h2.max_resets_per_10s,
        .max_read_ahead = cfg->h2.max_read_ahead,
        .max_output_buffer = cfg->h2.max_output_buffer,
        .max_fields = (unsigned)cfg->limits.header_count,
        .max_request_line = cfg->limits.request_line,
    };
    if (!(hc->s = h2_session_new(&lim, &session_ops, hc))) {
        free(hc->reserve);
        free(hc);
        return -1;
    }
    uv_idle_init(&c->w->loop, &hc->flush_idle);
    hc->flush_idle.data = hc; /* c once it closes (client_handle_closed) */
    c->handles++;             /* the idle handle closes with the client */
    c->h2 = hc;
    c->state = CS_WAIT; /* h1 reads nothing more; its timer closes */
    c->conn.cb = &h2_conn_cb;
    c->conn.owner = hc;
    /* what already came (the preface, maybe frames) */
    if (iobuf_len(&c->conn.in))
        h2_data(hc, iobuf_len(&c->conn.in));
    else
        h2_flush(hc); /* our SETTINGS first (§3.4) */
    if (!c->closed)
        conn_read(&c->conn, 1);
    return 0;
}

static void reserve_unref(struct h2_origin_reserve *r)
{
    if (r && --r->refs == 0)
        free(r);
}

struct h2_origin_reserve *h2_origin_reserve_take(struct exchange *ex)
{
    if (ex->fe != &h2_front)
        return NULL;
    struct h2_origin_reserve *r = conn_of_stream(stream_of_ex(ex))->reserve;
    if (!r || r->taken)
        return NULL;
    r->taken = 1;
    r->refs++;
    return r;
}

void h2_origin_reserve_put(struct h2_origin_reserve *r)
{
    r->taken = 0;
    reserve_unref(r);
}

static void on_idle_closed(uv_handle_t *h)
{
    struct h2_conn *hc = h->data;
    struct client *c = hc->c;
    reserve_unref(hc->reserve);
    hc->magic = 0;
    c->h2 = NULL;
    free(hc);
    client_handle_closed(c);
}

static void h2_close(struct h2_conn *hc)
{
    if (hc->closing)
        return;
    hc->closing = 1;
    uv_idle_stop(&hc->flush_idle);
    /* every open stream's exchange is told, then all are freed */
    h2_session_free(&hc->s);
    uv_close((uv_handle_t *)&hc->flush_idle, on_idle_closed);
}

void h2_conn_closing(struct client *c)
{
    if (c->h2)
        h2_close(c->h2);
}

void h2_conn_drain(struct client *c)
{
    struct h2_conn *hc = c->h2;
    if (!hc || hc->closing)
        return;
    h2_session_drain(hc->s);
    want_flush(hc);
}

/* ---- front_ops: answers on an h2 stream -------------------------------- */

static void h2_answer(struct exchange *ex, const struct front_answer *a)
{
    struct h2_stream *st = stream_of_ex(ex);
    int body = !ex->method_head && a->body && a->length > 0;
    struct h2_head h = {.status = a->status,
                        .lines = a->ours ? (struct slice){a->ours->p, a->ours->len}
                                         : (struct slice){"", 0},
                        .type = a->type,
                        .length = a->length,
                        .has_body = body};
    if (h2_stream_respond(st, &h) == 0 && body)
        h2_stream_queue_copy(st, a->body, (size_t)a->length);
    h2_stream_body_complete(st);
    ex->bytes_out += (uint64_t)(body ? a->length : 0);
    want_flush(conn_of_stream(st));
}

/* A hit: the stored fields through HPACK, the body as slices of the
 * stored segments (a reference held until written: design §5). */
static void h2_object(struct exchange *ex, const struct front_object *f)
{
    struct h2_stream *st = stream_of_ex(ex);
    struct cache_object *o = f->obj;
    int body = f->with_body && f->length > 0;
    struct h2_head h = {.status = f->status ? f->status : o->status,
                        .lines = {f->ours->p, f->ours->len},
                        .fields = o->fields,
                        .nfields = o->nfields,
                        .omit = f->omit,
                        .length = f->length,
                        .has_body = body};
    if (h2_stream_respond(st, &h) == 0 && body)
        h2_stream_queue_object(st, o, f->first, (uint64_t)f->length);
    h2_stream_body_complete(st);
    free(f->ours->p);
    *f->ours = (struct outbuf){0};
    ex->bytes_out += (uint64_t)(body ? f->length : 0);
    want_flush(conn_of_stream(st));
}

static void h2_head(struct exchange *ex, const struct front_head *fh)
{
    struct h2_stream *st = stream_of_ex(ex);
    int bodyless = ex->method_head || fh->status == 204 || fh->status == 304 || fh->length == 0;
    struct h2_head h = {.status = fh->status,
                        .lines = {fh->fields->p, fh->fields->len},
                        .length = fh->length,
                        .has_body = !bodyless};
    /* held back like h1's: the cache stage may hold the response for its
     * ETag and answer with the object instead (cache_stage.c release_held) */
    h2_stream_hold(st, &h);
    want_flush(conn_of_stream(st));
}

/* h2 frames the body itself (DATA): the bytes go as they are. */
static void h2_frame(struct exchange *ex, struct outbuf *o, struct slice d)
{
    outbuf_addslice(o, d);
}

static void h2_send(struct exchange *ex, struct outbuf *o);

/* h2 has no last chunk: END_STREAM goes with the last DATA once the
 * exchange is done (h2_done). A held response (cache_stage.c, for its
 * ETag) also comes here, before the object that replaces its head. */
static void h2_frame_end(struct exchange *ex, struct outbuf *o)
{
    if (o->len)
        h2_send(ex, o);
}

static void h2_send(struct exchange *ex, struct outbuf *o)
{
    struct h2_stream *st = stream_of_ex(ex);
    ex->bytes_out += o->len;
    if (o->len)
        h2_stream_queue_heap(st, o->p, o->p, o->len);
    else
        free(o->p);
    *o = (struct outbuf){0};
    want_flush(conn_of_stream(st));
}

static void h2_send_block(struct exchange *ex, struct outbuf *o, char *block, struct slice d)
{
    struct h2_stream *st = stream_of_ex(ex);
    h2_send(ex, o);
    ex->bytes_out += d.len;
    if (d.len)
        h2_stream_queue_heap(st, block, d.p, d.len);
    else
        free(block);
}

/* The pipeline stops relaying at WRITE_HIGH_WATER (proxy.c,
 * cache_stage.c): an h2 stream reports how much of that its share of
 * h2.max_output_buffer leaves it, so 100 streams of one connection hold
 * what the budget says, not 100 times what one h1 client may. The
 * socket's own queue is the connection's, bounded by h2_session_flush. */
static size_t h2_queued(const struct exchange *ex)
{
    uint64_t room = h2_stream_room(stream_of_ex(ex));
    return WRITE_HIGH_WATER - (size_t)(room < WRITE_HIGH_WATER ? room : WRITE_HIGH_WATER);
}

/* RFC 9113 §8.1: a 1xx is HEADERS without END_STREAM; 101 does not
 * exist in h2 (§8.6). */
static void h2_interim(struct exchange *ex, int status, struct slice reason,
                       const struct outbuf *fields)
{
    struct h2_stream *st = stream_of_ex(ex);
    if (status == 101)
        return;
    h2_stream_interim(st, status,
                      fields ? (struct slice){fields->p, fields->len} : (struct slice){"", 0});
    want_flush(conn_of_stream(st));
}

/* CONNECT and Upgrade never reach here (h2_request.c: 501; §8.2.2:
 * upgrade is refused), but if they did: the stream ends. */
static void h2_tunnel(struct exchange *ex, int status, struct slice reason,
                      const struct outbuf *fields)
{
    struct h2_stream *st = stream_of_ex(ex);
    h2_stream_reset(st, 0);
    want_flush(conn_of_stream(st));
}

/* An answer of our own (reply.c: 502, 504, 400...) is whole once queued:
 * it goes, then the stream ends (RST_STREAM(NO_ERROR) if the request
 * body is unread, RFC 9113 §8.1), where h1 closes the connection. A
 * response broken off mid-body is reset, never ended as if whole. */
static void h2_abort(struct exchange *ex)
{
    struct h2_stream *st = stream_of_ex(ex);
    if (st->responded && st->complete)
        h2_stream_end(st, 1);
    else
        h2_stream_reset(st, 0);
    want_flush(conn_of_stream(st));
}

static void h2_done(struct exchange *ex, enum front_done how)
{
    struct h2_stream *st = stream_of_ex(ex);
    h2_stream_end(st, how == FRONT_DONE_BODY_UNREAD);
    want_flush(conn_of_stream(st));
}

static void h2_req_flow(struct exchange *ex, enum front_flow flow)
{
    struct h2_stream *st = stream_of_ex(ex);
    if (flow == FRONT_FLOW_READ && ex->req && ex->req->expect_continue && !ex->sent_continue &&
        !st->in_ended) {
        /* RFC 9110 §10.1.1: the client may wait for a 100 before its body
         * (on h2 too, RFC 9113 §8.1); we will read it, so invite it now.
         * sent_continue keeps the origin's own 100 from following. */
        ex->sent_continue = 1;
        h2_stream_interim(st, 100, (struct slice){"", 0});
    }
    h2_stream_flow(st, flow == FRONT_FLOW_READ   ? H2_FLOW_READ
                       : flow == FRONT_FLOW_HOLD ? H2_FLOW_HOLD
                                                 : H2_FLOW_WAIT);
    want_flush(conn_of_stream(st));
}

static struct slice h2_req_in(struct exchange *ex, int *ended)
{
    struct h2_stream *st = stream_of_ex(ex);
    *ended = st->in_ended;
    size_t n = iobuf_len(&st->in);
    /* an empty buffer may have no memory at all */
    return n ? (struct slice){iobuf_data(&st->in), n} : (struct slice){"", 0};
}

static void h2_req_consume(struct exchange *ex, size_t n)
{
    struct h2_stream *st = stream_of_ex(ex);
    if (!n)
        return;
    h2_stream_consume(st, n);
    want_flush(conn_of_stream(st));
}

static int h2_closing(const struct exchange *ex)
{
    return h2_stream_closing(stream_of_ex(ex));
}

const struct front_ops h2_front = {
    .name = "h2",
    .answer = h2_answer,
    .object = h2_object,
    .head = h2_head,
    .frame = h2_frame,
    .frame_end = h2_frame_end,
    .send = h2_send,
    .send_block = h2_send_block,
    .queued = h2_queued,
    .interim = h2_interim,
    .tunnel = h2_tunnel,
    .abort = h2_abort,
    .done = h2_done,
    .req_flow = h2_req_flow,
    .req_in = h2_req_in,
    .req_consume = h2_req_consume,
    .closing = h2_closing,
};
