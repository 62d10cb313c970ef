/* HTTP/1 toward clients: the client connection, a state machine over
 * bytes in and out, and the front_ops of an HTTP/1 connection (front.h):
 * the pipeline hands over a status, the fields it adds and a body; this
 * writes the status line, the framing, Connection (RFC 9112 §9.3) and the
 * bytes, on the exchange's client connection. The pipeline drives the
 * states through front_ops: req_flow (WAIT, HOLD, READ) and done.
 *
 *   accept -> HEAD --head parsed--> WAIT --flow READ/HOLD--> BODY --flow WAIT--+
 *              ^                     |                                        |
 *              +--- done: keep-alive +<---------------------------------------+
 *   HEAD/BODY/WAIT --Upgrade 101 or CONNECT--> TUNNEL
 *   any --error, timeout, Connection: close--> CLOSING (flush, linger) -> closed
 *
 * Timers, one at a time: header deadline (total, from the first byte, so a
 * slowloris fails), body idle, keep-alive idle, send idle, linger. */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "server/h1_server.h"
#include "server/h2_server.h"
#include "server/log.h"

/* A new request begins on c: c->ex, finished, goes to c->retired and x
 * takes its place. A pipelined request can begin deep inside the call
 * chain that finished the last one, which may still read it. */
static void retire(struct client *c, struct exchange *x)
{
    link_insert(&c->retired, &c->ex->retired_link);
    c->ex = x;
}

/* Free c's retired exchanges: only from the top of a callback. */
static void free_retired(struct client *c)
{
    while (!link_empty(&c->retired)) {
        struct exchange *x = container_of(c->retired.next, struct exchange, retired_link);
        link_remove(&x->retired_link);
        exchange_free(&x);
    }
}

void client_handle_closed(struct client *c)
{
    CHECK_MAGIC(c, CLIENT_MAGIC);
    if (--c->handles > 0)
        return;
    struct srv_worker *w = c->w;
    if (c->counted)
        shared_slot_put(w->shared);
    conn_fini(&c->conn);
    free_retired(c);
    exchange_free(&c->ex);
    c->magic = 0;
    free(c);
    worker_client_gone(w);
}

static void on_client_closed(uv_handle_t *h)
{
    client_handle_closed(h->data);
}

void client_close(struct client *c)
{
    CHECK_MAGIC(c, CLIENT_MAGIC);
    if (c->closed)
        return;
    c->closed = 1;
    h2_conn_closing(c); /* its streams' exchanges are told */
    if (exchange_front_gone(c->ex) == EXCHANGE_DETACHED)
        c->ex = NULL; /* a background fetch now, internal.c's to free */
    link_remove(&c->link);
    conn_close(&c->conn, on_client_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

/* What our writes still hold, in libuv's queue or ours: it goes down as
 * the client reads, also inside one large write (a hit is one), whose
 * completion is its only callback. */
static size_t unsent(struct client *c)
{
    return c->conn.write_pending + uv_stream_get_write_queue_size((uv_stream_t *)&c->conn.tcp);
}

static void on_timer(uv_timer_t *t)
{
    struct client *c = t->data;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    if (c->state == CS_BODY && c->conn.eof) {
        client_close(c); /* the body can never be complete (h1_req_flow READ) */
        return;
    }
    if (c->tls && c->state == CS_HEAD && !c->tls_ready) {
        log_msg(LOG_INFO, "client %s: TLS handshake timeout", c->ci.ip);
        client_close(c);
        return;
    }
    if (c->state == CS_HEAD && c->head_timer && iobuf_len(&c->conn.in) > 0 && !c->ex->req) {
        log_msg(LOG_INFO, "client %s: request head timeout", c->ci.ip);
        reply_error(c->ex, 408, "request header timeout");
        return;
    }
    if (c->h2 && h2_conn_timer(c))
        return; /* a stalled h2 request body ends its stream alone */
    if (c->state == CS_BODY && !c->ex->resp_started) {
        log_msg(LOG_INFO, "client %s: request body idle timeout", c->ci.ip);
        reply_error(c->ex, 408, "request body timeout");
        return;
    }
    if (!c->h2 && c->conn.write_pending && unsent(c) < c->send_mark) {
        /* client_send_idle is idle time: a client that took some of a
         * large hit since is slow, not gone (one reading an 8 MiB hit
         * slower than 140 KB/s was cut off at 60 s, mid-body) */
        client_timer(c, c->w->cfg->timeouts.client_send_idle);
        return;
    }
    client_close(c);
}

void client_timer(struct client *c, uint64_t ms)
{
    c->head_timer = 0;
    c->send_mark = unsent(c);
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void on_room(void *owner, size_t *want, size_t *max)
{
    struct client *c = owner;
    *max = c->state == CS_BODY ? iobuf_len(&c->conn.in) + READ_CHUNK
                               : c->w->cfg->limits.header_section + 4096;
    *want = c->state == CS_HEAD ? 4096 : READ_CHUNK;
}

static void on_eof(void *owner, int err)
{
    struct client *c = owner;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    free_retired(c);
    if (err == UV_ENOBUFS) {
        /* The head outgrew the buffer limit: the parser answers 431. */
        client_process(c);
        return;
    }
    if (c->state == CS_TUNNEL && err == UV_EOF) {
        tunnel_on_eof(c, 1);
    } else if (c->state == CS_CLOSING) {
        client_close(c);
    } else if (c->state == CS_WAIT && err == UV_EOF && c->ex->req) {
        /* half-close: still answer this request, wherever it is (on its
         * way upstream, or parked behind another fetch: EX_NONE then) */
        c->keepalive = 0;
    } else if (c->state == CS_BODY && err == UV_EOF && c->body_hold) {
        /* TLS: a close_notify read with the body, which waits in the
         * buffer until the origin takes it (FRONT_FLOW_HOLD): the
         * pipeline reads it then (h1_req_flow READ) */
        c->keepalive = 0;
    } else {
        client_close(c);
    }
}

static void on_data(void *owner, size_t n)
{
    struct client *c = owner;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    free_retired(c);
    if (c->state == CS_HEAD && !c->head_timer && iobuf_len(&c->conn.in) == n) {
        client_timer(c, c->w->cfg->timeouts.client_header);
        c->head_timer = 1;
    }
    /* timeouts.client_body_idle is silence, not a deadline: each read of
     * a body re-arms it, read ahead to key it (no req_flow per read) or not */
    if (c->state == CS_BODY)
        client_timer(c, c->w->cfg->timeouts.client_body_idle);
    if (c->state == CS_TUNNEL)
        tunnel_on_client_data(c);
    else
        client_process(c);
}

void client_resume_read(struct client *c)
{
    if (!c->closed && !c->conn.eof)
        conn_read(&c->conn, 1);
}

void client_pause_read(struct client *c)
{
    conn_read(&c->conn, 0);
}

/* A request head parsed into r: its exchange (a new one but for the
 * connection's first), its own copy of r, whether the connection persists
 * (RFC 9112 §9.3), then the pipeline. */
static void begin_request(struct client *c, const struct http_request *r)
{
    if (c->ex->finished) {
        struct exchange *x = exchange_new(c->w, &h1_front, c, &c->ci);
        if (!x) {
            reply_error(c->ex, 503, "out of memory");
            return;
        }
        retire(c, x);
    } else {
        exchange_renew(c->ex);
    }
    struct exchange *ex = c->ex;
    if (exchange_own_request(ex, r, iobuf_data(&c->conn.in)) < 0) {
        reply_error(ex, 503, "out of memory");
        return;
    }
    ex->in_head = r->head_len; /* consumed by h1_req_consume */
    c->answered = 0;
    if (r->minor >= 1)
        c->keepalive = !(r->conn_flags & HTTP_CONN_CLOSE);
    else
        c->keepalive = (r->conn_flags & HTTP_CONN_KEEPALIVE) && !(r->conn_flags & HTTP_CONN_CLOSE);
    if (c->w->draining)
        c->keepalive = 0;
    exchange_begin(ex);
}

/* Parse and dispatch as far as the buffered bytes allow. Pipelined
 * requests wait in the buffer until the one before them is answered. */
static void process(struct client *c)
{
    struct srv_worker *w = c->w;
    for (;;) {
        if (c->closed)
            return;
        switch (c->state) {
        case CS_HEAD: {
            if (iobuf_len(&c->conn.in) == 0) {
                if (c->conn.eof) {
                    client_close(c);
                    return;
                }
                client_resume_read(c);
                return;
            }
            if (c->conn.write_pending >= WRITE_HIGH_WATER) {
                /* Answers wait on a client that does not read them (a
                 * pipelined hit queues without reading anything from the
                 * origin): no next request until they drain
                 * (client_write_done), as h2 stops reading; else each one
                 * queues its write, without bound. */
                client_pause_read(c);
                if (!c->send_wait) {
                    c->send_wait = 1;
                    client_timer(c, w->cfg->timeouts.client_send_idle);
                }
                return;
            }
            c->send_wait = 0;
            if (!c->head_timer) {
                client_timer(c, w->cfg->timeouts.client_header);
                c->head_timer = 1;
            }
            if (!c->h2_checked) {
                /* prior knowledge (RFC 9113 §3.3): the preface first */
                enum h2_preface pre = h2_preface_check(c);
                if (pre == H2_PREFACE_PARTIAL && !c->conn.eof) {
                    client_resume_read(c);
                    return;
                }
                c->h2_checked = 1;
                if (pre == H2_PREFACE_FOUND) {
                    if (h2_conn_start(c) < 0)
                        client_close(c);
                    return;
                }
            }
            int rc = http_parse_request(iobuf_data(&c->conn.in), iobuf_len(&c->conn.in),
                                        &w->req_limits, &w->req);
            if (rc == HTTP_PARSE_MORE) {
                if (c->conn.eof) {
                    client_close(c);
                    return;
                }
                client_resume_read(c);
                return;
            }
            if (rc != HTTP_PARSE_OK) {
                const char *why = http_error_text(w->req.error);
                log_msg(LOG_INFO, "client %s: %d %s: %s", c->ci.ip, rc, reply_reason(rc), why);
                reply_error(c->ex, rc, why);
                return;
            }
            begin_request(c, &w->req);
            break;
        }
        case CS_BODY:
            exchange_req_data(c->ex);
            if (c->state != CS_BODY)
                break;
            if (c->conn.eof) {
                client_close(c); /* the body can never be complete */
                return;
            }
            if (!c->body_hold)
                client_resume_read(c);
            return;
        case CS_WAIT:
            /* Keep reading (to see an early close) until a pipelined
             * request is waiting; then let the kernel hold the rest. */
            if (iobuf_len(&c->conn.in))
                client_pause_read(c);
            return;
        case CS_TUNNEL:
        case CS_CLOSING:
            return;
        }
    }
}

void client_process(struct client *c)
{
    int outer = c->processing;
    c->processing = 1;
    process(c);
    c->processing = outer;
}

static void on_shutdown(void *owner, int status)
{
    struct client *c = owner;
    if (c->closed)
        return;
    if (status < 0 || c->conn.eof) {
        client_close(c);
        return;
    }
    /* Lingering close: keep reading (and discarding) briefly so a client
     * still sending does not get a reset that eats our last response. */
    client_timer(c, LINGER_MS);
    client_resume_read(c);
}

void client_close_after_write(struct client *c)
{
    if (c->closed || c->state == CS_CLOSING)
        return;
    c->state = CS_CLOSING;
    client_pause_read(c);
    iobuf_consume(&c->conn.in, iobuf_len(&c->conn.in));
    conn_linger(&c->conn);
    if (conn_shutdown(&c->conn, on_shutdown) < 0)
        client_close(c);
}

void client_write_done(void *owner, int status)
{
    struct client *c = owner;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    if (c->closed)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->conn.write_pending > WRITE_LOW_WATER)
        return;
    if (c->ex->state == EX_RESP_BODY && c->ex->up)
        client_timer(c, 0); /* the send timer of a relay (send_idle) */
    if (c->send_then_keepalive) {
        c->send_then_keepalive = 0;
        if (c->state == CS_HEAD && !c->head_timer && !c->send_wait)
            client_timer(c, c->w->cfg->timeouts.keepalive_idle); /* the answer went out (h1_done) */
    }
    exchange_front_drained(c->ex);
    if (c->send_wait && c->state == CS_HEAD && !c->processing && !c->closed)
        client_process(c); /* the pipelined requests held back */
}

/* The TLS handshake ended: the request head's deadline starts now. A
 * client that fails it (plaintext HTTP on a TLS port, an old version, a
 * bad record) is closed without a word: it cannot read one. */
static void on_tls_ready(void *owner, int err)
{
    struct client *c = owner;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    if (err < 0) {
        log_msg(LOG_INFO, "client %s: TLS handshake failed: %s", c->ci.ip,
                conn_tls_error(&c->conn));
        client_close(c);
        return;
    }
    c->tls_ready = 1;
    if (slice_eq(conn_alpn(&c->conn), SLICE_LIT("h2"))) { /* RFC 9113 §3.2 */
        c->h2_checked = 1;
        if (h2_conn_start(c) < 0)
            client_close(c);
        return;
    }
    if (c->state == CS_HEAD) {
        client_timer(c, c->w->cfg->timeouts.client_header);
        c->head_timer = 1;
    }
}

static const struct conn_cb client_conn_cb = {
    .room = on_room,
    .data = on_data,
    .eof = on_eof,
    .written = client_write_done,
    .ready = on_tls_ready,
};

struct client *client_new(struct srv_worker *w)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->magic = CLIENT_MAGIC;
    c->w = w;
    /* the exchange for its first request, so that an error before any
     * request began has one to answer through */
    if (!(c->ex = exchange_new(w, &h1_front, c, &c->ci))) {
        free(c);
        return NULL;
    }
    conn_init(&c->conn, &w->loop, &client_conn_cb, c);
    c->conn.connected = 1; /* accepted or opened before it reads */
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    link_init(&c->link);
    link_init(&c->retired);
    link_insert(&w->clients, &c->link);
    return c;
}

void client_start(struct client *c)
{
    c->state = CS_HEAD;
    c->keepalive = 1;
    if (c->tls) {
        /* timeouts.tls_handshake first; the head's deadline once it is done */
        client_timer(c, c->w->cfg->timeouts.tls_handshake);
    } else {
        client_timer(c, c->w->cfg->timeouts.client_header);
        c->head_timer = 1;
    }
    client_resume_read(c);
}

/* limits.max_connections counts accepted client connections across all
 * workers; the admin listener stays reachable past it so an operator can
 * still look. A slot is held until the connection's memory goes. */
static int take_connection_slot(struct client *c)
{
    struct srv_shared *sh = c->w->shared;
    if (!sh || !shared_slot_take(sh))
        return 0;
    c->counted = 1;
    return 1;
}

void client_accept(uv_stream_t *listener, int status)
{
    struct srv_worker *w = listener->data;
    if (status < 0)
        return;
    CHECK_MAGIC(w, WORKER_MAGIC);
    struct client *c = client_new(w);
    if (!c)
        return;
    if (uv_accept(listener, (uv_stream_t *)&c->conn.tcp) < 0) {
        client_close(c);
        return;
    }
    uv_tcp_nodelay(&c->conn.tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    strcpy(c->ci.ip, "-");
    if (uv_tcp_getpeername(&c->conn.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->ci.ip, sizeof c->ci.ip);
        else if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ci.ip, sizeof c->ci.ip);
    }
    c->ci.admin =
        w->admin_listener >= 0 && listener == (uv_stream_t *)&w->listeners[w->admin_listener];
    c->tls = w->listener_tls[(uv_tcp_t *)listener - w->listeners];
    c->ci.tls = c->tls;
    if (c->tls) {
        SSL_CTX *ctx = w->shared && w->shared->tls ? w->shared->tls->server : NULL;
        if (!ctx || conn_tls_accept(&c->conn, ctx) < 0) {
            client_close(c);
            return;
        }
    }
    if (!c->ci.admin && !take_connection_slot(c)) {
        log_msg(LOG_WARN, "client %s: refused, limits.max_connections (%llu) reached", c->ci.ip,
                (unsigned long long)w->shared->max_connections);
        if (c->tls)
            client_close(c); /* nothing can be said before a handshake */
        else
            reply_error(c->ex, 503, "too many connections (limits.max_connections)");
        return;
    }
    client_start(c);
}

/* ---- front_ops: answers on an HTTP/1 connection ----------------------- */

/* Connection as this client needs it (RFC 9112 §9.3), and the blank line
 * that ends the head. close: the connection ends after this response. */
static void end_head(struct exchange *ex, struct outbuf *out, int close)
{
    struct client *c = ex->fe_ctx;
    if (close || !c->keepalive || c->w->draining)
        outbuf_addstr(out, "Connection: close\r\n");
    else if (ex->client_minor == 0)
        outbuf_addstr(out, "Connection: keep-alive\r\n");
    outbuf_addstr(out, "\r\n");
}

static void add_length(struct outbuf *out, int64_t length)
{
    if (length < 0)
        return;
    outbuf_addstr(out, "Content-Length: ");
    outbuf_addu64(out, (uint64_t)length);
    outbuf_addstr(out, "\r\n");
}

static void h1_answer(struct exchange *ex, const struct front_answer *a)
{
    struct client *c = ex->fe_ctx;
    c->answered = 1;
    struct outbuf o = {0};
    outbuf_addstatus(&o, a->status, a->reason);
    if (a->type) {
        outbuf_addstr(&o, "Content-Type: ");
        outbuf_addstr(&o, a->type);
        outbuf_addstr(&o, "\r\n");
    }
    add_length(&o, a->length);
    if (a->ours && a->ours->len)
        outbuf_add(&o, a->ours->p, a->ours->len);
    end_head(ex, &o, a->close);
    if (!ex->method_head && a->body && a->length > 0)
        outbuf_add(&o, a->body, (size_t)a->length);
    ex->bytes_out += o.len;
    conn_write(&c->conn, &o);
}

/* One writev: the stored head (or a new status line and the stored
 * fields), ours with the framing, the body segments; zero copy. */
static void h1_object(struct exchange *ex, const struct front_object *f)
{
    struct client *c = ex->fe_ctx;
    struct cache_object *o = f->obj;
    struct outbuf *after = f->ours;
    add_length(after, f->length);
    end_head(ex, after, 0);
    uint64_t body = f->with_body && f->length > 0 ? (uint64_t)f->length : 0;
    if (!f->status) {
        ex->bytes_out += o->head_len - f->omit.len + after->len + body;
        conn_write_object(&c->conn, o, NULL, f->omit, after, 0, body);
        return;
    }
    /* only a 206 replaces the stored status line today */
    static const char partial[] = "HTTP/1.1 206 Partial Content\r\n";
    ex->bytes_out += sizeof partial - 1 + o->head_len - f->omit.len + after->len + body;
    conn_write_object(&c->conn, o, partial, f->omit, after, f->first, body);
}

static void h1_head(struct exchange *ex, const struct front_head *h)
{
    struct client *c = ex->fe_ctx;
    ex->resp_chunked = h->unframed && ex->client_minor >= 1;
    if (h->unframed && ex->client_minor == 0)
        c->keepalive = 0; /* an HTTP/1.0 client learns the end by the close */
    if (c->w->draining)
        c->keepalive = 0;
    struct outbuf o = {0};
    outbuf_reserve(&o, 32 + h->fields->len + 64);
    outbuf_addstatus(&o, h->status, h->reason);
    outbuf_add(&o, h->fields->p, h->fields->len);
    /* Framing is ours (RFC 9112 §6.3) */
    if (h->length >= 0)
        add_length(&o, h->length);
    else if (ex->resp_chunked && !ex->method_head && h->status != 304 && h->status != 204)
        outbuf_addstr(&o, "Transfer-Encoding: chunked\r\n");
    end_head(ex, &o, 0);
    free(ex->resp_head.p);
    ex->resp_head = o; /* h1_client_read_body sends it with the body */
}

/* A head with no framing and no Connection of ours: a 1xx, or the start
 * of a tunnel. */
static void bare_head(struct exchange *ex, int status, struct slice reason,
                      const struct outbuf *fields)
{
    struct client *c = ex->fe_ctx;
    struct outbuf o = {0};
    outbuf_addstatus(&o, status, reason);
    if (fields)
        outbuf_add(&o, fields->p, fields->len);
    outbuf_addstr(&o, "\r\n");
    ex->bytes_out += o.len;
    conn_write(&c->conn, &o);
}

static void h1_interim(struct exchange *ex, int status, struct slice reason,
                       const struct outbuf *fields)
{
    bare_head(ex, status, reason, fields);
}

static void h1_frame(struct exchange *ex, struct outbuf *o, struct slice d)
{
    if (ex->resp_chunked) {
        outbuf_addhex(o, d.len);
        outbuf_addstr(o, "\r\n");
    }
    outbuf_addslice(o, d);
    if (ex->resp_chunked)
        outbuf_addstr(o, "\r\n");
}

static void h1_frame_end(struct exchange *ex, struct outbuf *o)
{
    if (ex->resp_chunked && !ex->method_head && ex->status != 304 && ex->status != 204)
        outbuf_addstr(o, "0\r\n\r\n");
}

/* A client that stops reading a relayed response: the origin's side is
 * paused (proxy_relay_end) and this timer closes us unless the writes
 * drain first (client_write_done stops it). */
static void send_timer(struct client *c, struct exchange *ex)
{
    if (ex->up && c->conn.write_pending >= WRITE_HIGH_WATER && !c->closed)
        client_timer(c, c->w->cfg->timeouts.client_send_idle);
}

static void h1_send(struct exchange *ex, struct outbuf *o)
{
    struct client *c = ex->fe_ctx;
    ex->bytes_out += o->len;
    conn_write(&c->conn, o);
    send_timer(c, ex);
}

static void h1_send_block(struct exchange *ex, struct outbuf *o, char *block, struct slice d)
{
    struct client *c = ex->fe_ctx;
    ex->bytes_out += o->len + d.len;
    conn_write_block(&c->conn, o, block, d.p, d.len);
    send_timer(c, ex);
}

static size_t h1_queued(const struct exchange *ex)
{
    const struct client *c = ex->fe_ctx;
    return c->conn.write_pending;
}

/* After an answer of ours the close ends a whole response; otherwise a
 * response broke off mid-way, and the close must not say it is whole
 * (an HTTP/1.0 client reads a body to the close). */
static void h1_abort(struct exchange *ex)
{
    struct client *c = ex->fe_ctx;
    if (!c->answered)
        conn_incomplete(&c->conn);
    c->keepalive = 0;
    client_close_after_write(c);
}

/* The response went out in full: the next request, or the close. Not
 * from inside client_process: its loop goes on with the next itself. */
static void h1_done(struct exchange *ex, enum front_done how)
{
    struct client *c = ex->fe_ctx;
    if (c->closed)
        return;
    if (how == FRONT_DONE_BODY_UNREAD)
        c->keepalive = 0; /* its unread body would be parsed as the next request */
    if (!c->keepalive || c->w->draining) {
        client_close_after_write(c);
        return;
    }
    c->state = CS_HEAD;
    if (c->conn.write_pending > WRITE_LOW_WATER) {
        /* The answer is still going out (a hit is one write): the client's
         * reading is what we wait for, so client_send_idle times it until
         * client_write_done hands over to keepalive_idle. */
        c->send_then_keepalive = 1;
        client_timer(c, c->w->cfg->timeouts.client_send_idle);
    } else {
        client_timer(c, c->w->cfg->timeouts.keepalive_idle);
    }
    if (!c->processing)
        client_process(c); /* a pipelined request may be waiting */
}

static void h1_req_flow(struct exchange *ex, enum front_flow flow)
{
    struct client *c = ex->fe_ctx;
    if (c->closed || c->state == CS_CLOSING)
        return;
    switch (flow) {
    case FRONT_FLOW_WAIT:
        c->state = CS_WAIT;
        c->body_hold = 0;
        client_timer(c, 0);
        if (!c->processing && iobuf_len(&c->conn.in))
            client_pause_read(c); /* a pipelined request waits in the kernel */
        return;
    case FRONT_FLOW_HOLD:
        c->state = CS_BODY;
        c->body_hold = 1;
        client_pause_read(c);
        /* client_body_idle times the client's silence: we are the ones not
         * reading now (the origin's timers bound it), so it stops; only a
         * response stuck toward the client keeps its send timer. */
        client_timer(c, 0);
        send_timer(c, ex);
        return;
    case FRONT_FLOW_READ:
        c->state = CS_BODY;
        c->body_hold = 0;
        if (ex->req && ex->req->expect_continue && ex->req->minor >= 1 && !ex->sent_continue) {
            /* RFC 9110 §10.1.1: we will read the body, so invite it now */
            ex->sent_continue = 1;
            h1_interim(ex, 100, SLICE_LIT("Continue"), NULL);
        }
        client_resume_read(c);
        client_timer(c, c->w->cfg->timeouts.client_body_idle);
        if (c->conn.eof) /* the client's end was read (on_eof): nothing more comes */
            uv_timer_start(&c->timer, on_timer, 0, 0);
        return;
    }
}

/* The body bytes behind the request's head, as the client framed them. */
static struct slice h1_req_in(struct exchange *ex, int *ended)
{
    struct client *c = ex->fe_ctx;
    *ended = 0; /* the framing says where the body ends */
    size_t len = iobuf_len(&c->conn.in);
    if (len <= ex->in_head)
        return (struct slice){"", 0}; /* and no pointer into an empty buffer */
    return (struct slice){iobuf_data(&c->conn.in) + ex->in_head, len - ex->in_head};
}

static void h1_req_consume(struct exchange *ex, size_t n)
{
    struct client *c = ex->fe_ctx;
    iobuf_consume(&c->conn.in, ex->in_head + n);
    ex->in_head = 0;
}

static int h1_closing(const struct exchange *ex)
{
    const struct client *c = ex->fe_ctx;
    return c->closed || c->state == CS_CLOSING;
}

const struct front_ops h1_front = {
    .name = "http/1.1",
    .answer = h1_answer,
    .object = h1_object,
    .head = h1_head,
    .frame = h1_frame,
    .frame_end = h1_frame_end,
    .send = h1_send,
    .send_block = h1_send_block,
    .queued = h1_queued,
    .interim = h1_interim,
    .tunnel = bare_head,
    .abort = h1_abort,
    .done = h1_done,
    .req_flow = h1_req_flow,
    .req_in = h1_req_in,
    .req_consume = h1_req_consume,
    .closing = h1_closing,
};
