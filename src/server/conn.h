/* The transport: bytes in and out of one TCP connection, TLS inside when
 * the connection has it, so callers only ever see plaintext. The only
 * place that starts reads or writes on a socket (uv_read_start, uv_write,
 * uv_try_write). Knows no HTTP.
 *
 *   conn_init -> (connect/accept by the owner) -> [conn_tls_*: handshake,
 *   cb->ready] -> reads (cb->data, cb->eof) and writes (cb->written)
 *   -> conn_shutdown (close_notify, FIN) -> conn_close -> owner's close
 *   callback -> conn_fini
 */
#ifndef IDEM_CONN_H
#define IDEM_CONN_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "http/slice.h"
#include "server/iobuf.h"

struct outbuf;
struct cache_object;
struct tls;

/* What a connection tells its owner. Each may close the connection. */
struct conn_cb {
    /* The next read goes into in: reserve `want` bytes, in growing to at
     * most `max` (past it the read ends with eof(UV_ENOBUFS)). */
    void (*room)(void *owner, size_t *want, size_t *max);
    /* n plaintext bytes were appended to in. */
    void (*data)(void *owner, size_t n);
    /* The read side ended and reading is paused: UV_EOF (a FIN, or a TLS
     * close_notify), a socket error, UV_ENOBUFS (in reached its max; not
     * an end, reading may resume), UV_EPROTO (TLS failed: conn_tls_error). */
    void (*eof)(void *owner, int err);
    /* A write that had to wait completed (write_pending already lowered),
     * or failed (status < 0). Writes that went out at once do not call. */
    void (*written)(void *owner, int status);
    /* The TLS handshake completed (0) or failed (< 0, conn_tls_error says
     * why). NULL: not told. */
    void (*ready)(void *owner, int err);
};

struct conn {
    uv_tcp_t tcp; /* .data is the owner: its close callback finds it there */
    uv_shutdown_t shutdown_req;
    const struct conn_cb *cb;
    void *owner;
    struct iobuf in; /* plaintext read, parsed by the owner */
    /* bytes written and not yet taken by the socket: under TLS the
     * ciphertext queued plus the plaintext not yet encrypted */
    size_t write_pending;
    int reading;
    int eof;       /* the read side ended (not UV_ENOBUFS) */
    int connected; /* reads may start */
    int closed;    /* conn_close called */
    int lingering; /* closing: what arrives is read and dropped */
    void (*shutdown_done)(void *owner, int status);
    struct tls *tls; /* NULL: cleartext */
    /* TLS: writes not yet (fully) encrypted, in order; encrypted a step
     * at a time as the socket drains (conn.c tls_pump) */
    struct tls_plain *plain, **plain_tail;
    size_t plain_pending; /* their bytes (part of write_pending) */
    int shutdown_wanted;  /* conn_shutdown waits for them */
    int incomplete;       /* conn_incomplete: the end is no close_notify */
};

/* tcp is initialized on loop; the owner accepts, opens or connects it. */
void conn_init(struct conn *c, uv_loop_t *loop, const struct conn_cb *cb, void *owner);
/* Reading on or off (the owner's backpressure). Turning it on does
 * nothing once closed or before connected; after an EOF it reads again
 * (and sees the EOF again: an owner may count on that). */
void conn_read(struct conn *c, int on);

/* Writes. Each takes what it is given to own (an outbuf's memory, a read
 * block) and frees it once written or encrypted; an object it must wait on
 * is held by a reference. Most writes complete at once, in one writev; the
 * rest are queued (write_pending) and end in cb->written. Under TLS the
 * plaintext is encrypted as the socket drains, about WRITE_HIGH_WATER of
 * ciphertext ahead at most. 0 or a uv error. */
int conn_write(struct conn *c, struct outbuf *o);
/* o's bytes, then n bytes at p that live inside `block` (a heap buffer
 * the write takes over): zero-copy relay of a read buffer. */
int conn_write_block(struct conn *c, struct outbuf *o, char *block, const char *p, size_t n);
/* n slices in order, as one write; release(arg) once the socket took
 * them (or the write failed, or the connection closed): the caller's
 * gathered owners (h2: frame headers, stored objects, body blocks). */
int conn_writev_release(struct conn *c, const struct slice *v, unsigned n,
                        void (*release)(void *arg), void *arg);
/* A stored response in one writev, zero copy: `status_line` (outliving
 * the write; NULL: the stored one) and the stored fields, but the bytes
 * `omit` covers (a range inside the head, or empty); then `after`
 * (emptied); then body bytes first..first+len-1 as slices of the stored
 * segments (len 0: no body). A hit is (NULL, omit, after, 0, body length);
 * a 206 (RFC 9110 §15.3.7) has its own status line and range. */
int conn_write_object(struct conn *c, struct cache_object *obj, const char *status_line,
                      struct slice omit, struct outbuf *after, uint64_t first, uint64_t len);

/* End our side once the queued writes are out: a TLS close_notify, then a
 * FIN. done(owner, status) follows. One at a time. */
int conn_shutdown(struct conn *c, void (*done)(void *owner, int status));
/* What was sent is cut short (a response broken off): the end sends no
 * TLS close_notify, which would tell the peer the data is complete (RFC
 * 8446 §6.1; RFC 9112 §9.8: an incomplete close is no whole response). */
void conn_incomplete(struct conn *c);
/* Start dropping what arrives (a lingering close): no more cb->data. */
void conn_linger(struct conn *c);
/* Close the socket (queued writes are dropped); close_cb runs with the
 * tcp handle, whose .data is the owner. */
void conn_close(struct conn *c, uv_close_cb close_cb);
/* From the owner's close callback: frees in and the TLS state. */
void conn_fini(struct conn *c);

/* ---- TLS (tls.c does the OpenSSL part) ------------------------------- */
struct ssl_ctx_st;
struct ssl_session_st;
/* Server side: the handshake runs as the client's bytes arrive; ready(0)
 * when it completes. 0 or -1 (out of memory). */
int conn_tls_accept(struct conn *c, struct ssl_ctx_st *ctx);
/* Client side, on a connected socket: SNI `sni` (NULL or an IP literal:
 * none), the certificate checked against `verify_host` (NULL: not), a
 * session to resume (NULL: none). Starts reading; ready() follows. */
int conn_tls_connect(struct conn *c, struct ssl_ctx_st *ctx, const char *sni,
                     const char *verify_host, struct ssl_session_st *resume);
/* Why the handshake or the connection failed, for the log ("" if it did not). */
const char *conn_tls_error(const struct conn *c);
/* The handshake failed on the peer's certificate (then 502 detail=tls). */
int conn_tls_verify_failed(const struct conn *c);
/* The negotiated ALPN protocol ("http/1.1"), or empty. */
struct slice conn_alpn(const struct conn *c);
/* A new reference to the session, if it can be resumed (else NULL). */
struct ssl_session_st *conn_tls_session(const struct conn *c);
/* Did the handshake resume a session? */
int conn_tls_resumed(const struct conn *c);

#endif
