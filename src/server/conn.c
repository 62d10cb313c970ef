/* The transport (conn.h): reads into a plaintext iobuf, writes that own
 * their bytes until the socket took them, shutdown and close. A write
 * first tries the socket directly (uv_try_write): most complete there,
 * which saves a request, a callback and (libuv 1.44) an epoll_ctl.
 *
 * Under TLS (tls.c) the socket reads ciphertext into the free tail of
 * `in`; it is copied into the read BIO and the plaintext decrypted over
 * it, all of it at once, so nothing waits inside OpenSSL when the owner
 * pauses. A write is queued as plaintext vectors that still point into
 * what it owns (a stored object stays shared, referenced) and encrypted a
 * step at a time while less than WRITE_HIGH_WATER of ciphertext waits on
 * the socket, more as the socket drains (on_written); write_pending counts
 * both, so the owners' backpressure works as in clear text, and a client
 * that stops reading a large hit holds the proxy to about WRITE_HIGH_WATER
 * of ciphertext, not the whole object encrypted. */
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/conn.h"
#include "server/tls.h"
#include "cache/object.h"

static void tls_input(struct conn *c, size_t n);
static void tls_socket_ended(struct conn *c, int err);
static int tls_flush(struct conn *c, int notify);
static int tls_pump(struct conn *c);
static void plain_free_all(struct conn *c);

/* Plaintext encrypted per step: a few records, small next to
 * WRITE_HIGH_WATER, so the ciphertext queue overshoots it by little. */
#define TLS_ENCRYPT_STEP (64 * 1024)
#define TLS_RECORD_PLAIN 16384 /* the most plaintext one TLS record holds */

void conn_init(struct conn *c, uv_loop_t *loop, const struct conn_cb *cb, void *owner)
{
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = owner;
    c->cb = cb;
    c->owner = owner;
}

/* ---- reads ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct conn *c = container_of(h, struct conn, tcp);
    size_t want, max;
    c->cb->room(c->owner, &want, &max);
    if (iobuf_reserve(&c->in, want, max) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.base + c->in.end, (unsigned)(c->in.cap - c->in.end));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = container_of(s, struct conn, tcp);
    if (n == 0)
        return;
    if (n < 0) {
        if (n != UV_ENOBUFS)
            c->eof = 1;
        conn_read(c, 0);
        if (c->tls && n != UV_ENOBUFS)
            tls_socket_ended(c, (int)n);
        else
            c->cb->eof(c->owner, (int)n);
        return;
    }
    if (c->lingering)
        return; /* read into the free tail and dropped */
    if (c->tls) {
        tls_input(c, (size_t)n);
        return;
    }
    c->in.end += (size_t)n;
    c->cb->data(c->owner, (size_t)n);
}

void conn_read(struct conn *c, int on)
{
    if (on) {
        if (c->reading || c->closed || !c->connected)
            return;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        return;
    }
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* ---- writes ----------------------------------------------------------- */

/* What a write owns until the socket took its bytes: heap memory and a
 * read block freed then, a stored object referenced meanwhile. */
struct wown {
    char *heap;
    char *block;
    struct cache_object *obj; /* borrowed from the caller; referenced if queued */
    /* conn_writev_release: the owner's own release of what it gathered */
    void (*release)(void *arg);
    void *arg;
};

struct write_req {
    uv_write_t req;
    struct conn *c;
    struct wown own;
    size_t len;
    int notify; /* cb->written when done */
};

static void own_release(struct wown *own)
{
    free(own->heap);
    own->heap = NULL;
    free(own->block);
    own->block = NULL;
    if (own->release) {
        void (*release)(void *) = own->release;
        own->release = NULL;
        release(own->arg);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    c->write_pending -= w->len;
    own_release(&w->own);
    cache_object_unref(&w->own.obj);
    int notify = w->notify;
    free(w);
    if (c->tls && c->plain && !c->closed && status >= 0) {
        /* the socket drained some: encrypt the next steps */
        notify = 1;
        int rc = tls_pump(c);
        if (rc < 0)
            status = rc;
    }
    if (notify)
        c->cb->written(c->owner, status);
}

/* Write b[0..k), totalling `total` bytes, to the socket: at once when it
 * takes it all, else queued. May rewrite b (skipping what went out). */
static int socket_writev(struct conn *c, uv_buf_t *b, unsigned k, size_t total, struct wown own,
                         int notify)
{
    if (c->write_pending == c->plain_pending) { /* nothing queued on the socket */
        int n = uv_try_write((uv_stream_t *)&c->tcp, b, k);
        if (n == (int)total) {
            own_release(&own);
            return 0;
        }
        if (n > 0) {
            size_t skip = (size_t)n;
            unsigned i = 0;
            while (skip >= b[i].len)
                skip -= b[i++].len;
            b[i].base += skip;
            b[i].len -= skip;
            memmove(b, b + i, (k - i) * sizeof *b);
            k -= i;
            total -= (size_t)n;
        }
        /* On an error, uv_write below fails the same way and reports it
         * through the callback, from the loop, like any other write error. */
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w)
        srv_panic(__FILE__, __LINE__, "out of memory");
    *w = (struct write_req){.c = c, .own = own, .len = total, .notify = notify};
    if (own.obj)
        cache_object_ref(own.obj);
    c->write_pending += total;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, b, k, on_written);
    if (rc < 0) {
        c->write_pending -= total;
        own_release(&w->own);
        cache_object_unref(&w->own.obj);
        free(w);
    }
    return rc;
}

/* TLS: a write waiting to be encrypted. b[i..k) are what is left, the
 * first one advanced past what was encrypted. */
struct tls_plain {
    struct tls_plain *next;
    struct wown own;
    unsigned i, k;
    uv_buf_t b[];
};

static void plain_free(struct tls_plain *p)
{
    own_release(&p->own);
    cache_object_unref(&p->own.obj);
    free(p);
}

static void plain_free_all(struct conn *c)
{
    while (c->plain) {
        struct tls_plain *p = c->plain;
        c->plain = p->next;
        plain_free(p);
    }
    c->plain_tail = NULL;
    c->write_pending -= c->plain_pending;
    c->plain_pending = 0;
}

/* Queue b[0..k) (total bytes) for encryption, then encrypt what the
 * socket has room for. The vectors are copied, not the bytes. */
static int tls_queue(struct conn *c, const uv_buf_t *b, unsigned k, size_t total, struct wown own)
{
    if (total == 0) {
        own_release(&own);
        return 0;
    }
    struct tls_plain *p = malloc(sizeof *p + k * sizeof *b);
    if (!p)
        srv_panic(__FILE__, __LINE__, "out of memory");
    p->next = NULL;
    p->own = own;
    p->i = 0;
    p->k = k;
    memcpy(p->b, b, k * sizeof *b);
    if (own.obj)
        cache_object_ref(own.obj);
    if (!c->plain)
        c->plain_tail = &c->plain;
    *c->plain_tail = p;
    c->plain_tail = &p->next;
    c->plain_pending += total;
    c->write_pending += total;
    return tls_pump(c);
}

static int conn_writev(struct conn *c, uv_buf_t *b, unsigned k, struct wown own)
{
    size_t total = 0;
    for (unsigned i = 0; i < k; i++)
        total += b[i].len;
    if (c->tls)
        return tls_queue(c, b, k, total, own);
    return socket_writev(c, b, k, total, own, 1);
}

int conn_write_block(struct conn *c, struct outbuf *o, char *block, const char *p, size_t n)
{
    if (o->len + n == 0) {
        free(block);
        return 0;
    }
    uv_buf_t b[2];
    unsigned nb = 0;
    if (o->len)
        b[nb++] = uv_buf_init(o->p, (unsigned)o->len);
    if (n)
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
    struct wown own = {.heap = o->p, .block = block};
    *o = (struct outbuf){0};
    return conn_writev(c, b, nb, own);
}

int conn_writev_release(struct conn *c, const struct slice *v, unsigned n,
                        void (*release)(void *arg), void *arg)
{
    uv_buf_t stack[64];
    uv_buf_t *b = n <= 64 ? stack : malloc(n * sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    for (unsigned i = 0; i < n; i++)
        b[i] = uv_buf_init((char *)v[i].p, (unsigned)v[i].len);
    int rc = conn_writev(c, b, n, (struct wown){.release = release, .arg = arg});
    if (b != stack)
        free(b);
    return rc;
}

int conn_write(struct conn *c, struct outbuf *o)
{
    return conn_write_block(c, o, NULL, NULL, 0);
}

/* uv_buf_init is a call into libuv; a hit builds several of these */
static inline uv_buf_t piece(const char *p, size_t n)
{
    return (uv_buf_t){.base = (char *)p, .len = n};
}

int conn_write_object(struct conn *c, struct cache_object *obj, const char *status_line,
                      struct slice omit, struct outbuf *after, uint64_t first, uint64_t len)
{
    /* upper bound: head, status line, the head's two pieces around omit,
     * after, and every segment when there is a body */
    size_t nb = 4;
    if (len)
        for (struct cache_segment *g = obj->body->first; g; g = g->next)
            nb++;
    uv_buf_t stack[16];
    uv_buf_t *b = nb <= 16 ? stack : malloc(nb * sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    size_t k = 0;
    /* the head from `start`: all of it, or its fields behind a status line
     * of our own (a 206) */
    size_t start = 0;
    if (status_line) {
        const char *eol = memchr(obj->head, '\n', obj->head_len);
        start = eol ? (size_t)(eol - obj->head) + 1 : 0;
        b[k++] = piece(status_line, strlen(status_line));
    }
    if (omit.len && omit.p >= obj->head + start && omit.p + omit.len <= obj->head + obj->head_len) {
        size_t at = (size_t)(omit.p - obj->head);
        b[k++] = piece(obj->head + start, at - start);
        b[k++] = piece(obj->head + at + omit.len, obj->head_len - at - omit.len);
    } else {
        b[k++] = piece(obj->head + start, obj->head_len - start);
    }
    if (after->len)
        b[k++] = piece(after->p, after->len);
    /* the body: skip the segments before `first`, then `len` bytes on */
    struct cache_segment *g = len ? obj->body->first : NULL;
    uint64_t skip = first;
    for (; g && skip >= g->len; g = g->next)
        skip -= g->len;
    for (uint64_t left = len; g && left; g = g->next, skip = 0) {
        uint64_t n = g->len - skip < left ? g->len - skip : left;
        b[k++] = piece(g->data + skip, n);
        left -= n;
    }
    struct wown own = {.heap = after->p, .obj = obj};
    *after = (struct outbuf){0};
    int rc = conn_writev(c, b, (unsigned)k, own);
    if (b != stack)
        free(b);
    return rc;
}

/* ---- ending ----------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (c->shutdown_done)
        c->shutdown_done(c->owner, status);
}

int conn_shutdown(struct conn *c, void (*done)(void *owner, int status))
{
    if (c->tls && c->plain) {
        /* the close_notify goes after the last record: tls_pump sends it */
        c->shutdown_done = done;
        c->shutdown_wanted = 1;
        return 0;
    }
    if (c->tls && !c->incomplete) {
        tls_close_notify(c->tls);
        tls_flush(c, 0);
    }
    c->shutdown_done = done;
    c->shutdown_req.data = c;
    return uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown);
}

void conn_incomplete(struct conn *c)
{
    c->incomplete = 1;
}

void conn_linger(struct conn *c)
{
    c->lingering = 1;
}

void conn_close(struct conn *c, uv_close_cb close_cb)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (c->tls && c->write_pending == 0 && !c->eof && !c->incomplete) {
        /* Tell the peer this was no truncation, if the socket takes it now
         * (queued writes are dropped by the close anyway). */
        tls_close_notify(c->tls);
        struct outbuf o = {0};
        tls_take_out(c->tls, &o);
        if (o.len) {
            uv_buf_t b = uv_buf_init(o.p, (unsigned)o.len);
            uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
        free(o.p);
    }
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

void conn_fini(struct conn *c)
{
    iobuf_fini(&c->in);
    plain_free_all(c);
    tls_free(&c->tls);
}

/* ---- TLS ---------------------------------------------------------------- */

/* Send what OpenSSL has written (handshake, records, tickets, alerts);
 * `notify`: it carries the owner's write, which ends in cb->written. */
static int tls_flush(struct conn *c, int notify)
{
    struct outbuf o = {0};
    tls_take_out(c->tls, &o);
    if (!o.len) {
        free(o.p);
        return 0;
    }
    uv_buf_t b = uv_buf_init(o.p, (unsigned)o.len);
    return socket_writev(c, &b, 1, o.len, (struct wown){.heap = o.p}, notify);
}

/* Encrypt the staged bytes as one record. */
static int tls_out_bytes(struct conn *c, char *stage, size_t *staged)
{
    uv_buf_t b = uv_buf_init(stage, (unsigned)*staged);
    *staged = 0;
    return tls_out(c->tls, &b, 1) == TLS_OK ? 0 : -1;
}

/* Encrypt queued plaintext a step at a time while the socket has less
 * than WRITE_HIGH_WATER of ciphertext waiting; on_written calls again as
 * it drains. What a write owns is released once it is all encrypted. */
static int tls_pump(struct conn *c)
{
    while (c->plain && c->write_pending - c->plain_pending < WRITE_HIGH_WATER) {
        struct tls_plain *p = c->plain;
        size_t budget = TLS_ENCRYPT_STEP;
        /* Small pieces (a stored head, our fields, a small body) are
         * gathered into one record, as nginx's ssl_buffer does: a record
         * each would cost its own AEAD pass, header and tag. */
        char stage[TLS_RECORD_PLAIN];
        size_t staged = 0;
        while (budget && p->i < p->k) {
            uv_buf_t piece = p->b[p->i];
            if (piece.len > budget)
                piece.len = (unsigned)budget;
            if (!staged && piece.len >= sizeof stage) {
                if (tls_out(c->tls, &piece, 1) != TLS_OK)
                    return UV_EPROTO;
            } else {
                if (piece.len > sizeof stage - staged)
                    piece.len = (unsigned)(sizeof stage - staged);
                memcpy(stage + staged, piece.base, piece.len);
                staged += piece.len;
                if (staged == sizeof stage && tls_out_bytes(c, stage, &staged) < 0)
                    return UV_EPROTO;
            }
            p->b[p->i].base += piece.len;
            p->b[p->i].len -= piece.len;
            if (!p->b[p->i].len)
                p->i++;
            budget -= piece.len;
            c->plain_pending -= piece.len;
            c->write_pending -= piece.len;
        }
        if (staged && tls_out_bytes(c, stage, &staged) < 0)
            return UV_EPROTO;
        if (p->i == p->k) {
            c->plain = p->next;
            if (!c->plain)
                c->plain_tail = &c->plain;
            plain_free(p);
        }
        int rc = tls_flush(c, 1);
        if (rc < 0)
            return rc;
    }
    if (!c->plain && c->shutdown_wanted) {
        c->shutdown_wanted = 0;
        if (!c->incomplete) {
            tls_close_notify(c->tls);
            tls_flush(c, 0);
        }
        c->shutdown_req.data = c;
        int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown);
        if (rc < 0 && c->shutdown_done)
            c->shutdown_done(c->owner, rc);
    }
    return 0;
}

/* The TLS session ended badly: tell the owner once, as a failed handshake
 * when it never completed (ready), else as an end of the read side. */
static void tls_failed(struct conn *c)
{
    c->eof = 1;
    conn_read(c, 0);
    if (!tls_handshake_done(c->tls) && c->cb->ready)
        c->cb->ready(c->owner, UV_EPROTO);
    else
        c->cb->eof(c->owner, UV_EPROTO);
}

/* The socket ended under TLS. Toward an origin: an end during the
 * handshake is a failed handshake, and a FIN without close_notify is an
 * incomplete close, not a clean end (RFC 9112 §9.8: a response delimited
 * by the close is complete only after a valid closure alert). A client
 * that leaves without close_notify is only gone: UV_EOF as in clear text. */
static void tls_socket_ended(struct conn *c, int err)
{
    if (!tls_is_server(c->tls)) {
        if (!tls_handshake_done(c->tls) && c->cb->ready) {
            tls_set_error(c->tls, "connection closed during the handshake");
            c->cb->ready(c->owner, UV_EPROTO);
            return;
        }
        if (err == UV_EOF && !tls_peer_closed(c->tls)) {
            tls_set_error(c->tls, "connection closed without close_notify (incomplete close)");
            err = UV_EPROTO;
        }
    }
    c->cb->eof(c->owner, err);
}

/* n ciphertext bytes were read into the tail of in. */
static void tls_input(struct conn *c, size_t n)
{
    int was_done = tls_handshake_done(c->tls);
    size_t added = 0;
    enum tls_rc rc = tls_in(c->tls, c->in.base + c->in.end, n, &c->in, &added);
    /* answers to what came in (handshake, a KeyUpdate, an alert) */
    tls_flush(c, 0);
    if (c->closed)
        return;
    if (!was_done && tls_handshake_done(c->tls)) {
        if (c->cb->ready)
            c->cb->ready(c->owner, 0);
        if (c->closed)
            return;
    }
    if (added) {
        c->cb->data(c->owner, added);
        if (c->closed)
            return;
    }
    if (rc == TLS_CLOSED) {
        c->eof = 1;
        conn_read(c, 0);
        c->cb->eof(c->owner, UV_EOF);
    } else if (rc == TLS_FAILED) {
        tls_failed(c);
    }
}

int conn_tls_accept(struct conn *c, SSL_CTX *ctx)
{
    c->tls = tls_new(ctx, 1, NULL, NULL, NULL);
    return c->tls ? 0 : -1;
}

int conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *sni, const char *verify_host,
                     SSL_SESSION *resume)
{
    c->tls = tls_new(ctx, 0, sni, verify_host, resume);
    if (!c->tls)
        return -1;
    enum tls_rc rc = tls_start(c->tls);
    int w = tls_flush(c, 0);
    if (rc != TLS_OK || w < 0)
        return -1;
    conn_read(c, 1);
    return 0;
}

const char *conn_tls_error(const struct conn *c)
{
    return c->tls ? tls_error(c->tls) : "";
}

int conn_tls_verify_failed(const struct conn *c)
{
    return c->tls && tls_verify_failed(c->tls);
}

struct slice conn_alpn(const struct conn *c)
{
    if (!c->tls || !tls_handshake_done(c->tls))
        return (struct slice){"", 0};
    return tls_alpn(c->tls);
}

SSL_SESSION *conn_tls_session(const struct conn *c)
{
    return c->tls && tls_handshake_done(c->tls) ? tls_session(c->tls) : NULL;
}

int conn_tls_resumed(const struct conn *c)
{
    return c->tls && tls_handshake_done(c->tls) && tls_resumed(c->tls);
}
