/* The origin side: who an upstream connection talks to (struct
 * origin_key), the connection itself (struct upstream) and the calls of
 * the per-worker pool (pool.c) and of the HTTP/1 client (h1_client.c).
 * Types and declarations only: it includes other type headers, never the
 * pipeline's (server.h includes this one). */
#ifndef IDEM_ORIGIN_H
#define IDEM_ORIGIN_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>
#include "http/http.h"
#include "http/netaddr.h"
#include "http/slice.h"
#include "server/conn.h"
#include "server/link.h"

#define UPSTREAM_MAGIC 0x55505354u

struct srv_worker;
struct exchange;
struct outbuf;

enum origin_scheme { ORIGIN_HTTP, ORIGIN_HTTPS };

/* Who an upstream connection talks to, as the idle pool keys it: a pooled
 * connection is reused only for the same scheme, host, port, name and TLS
 * profile, so one verified for a name never serves another. TLS sessions
 * are resumed per key too. */
struct origin_key {
    char host_port[300]; /* "host:port" as routed (ex->up_key) */
    uint8_t scheme;      /* enum origin_scheme */
    /* https only: */
    char sni[256];      /* the name sent (SNI) and, with verify, checked */
    bool verify;        /* the certificate is checked against sni */
    const SSL_CTX *tls; /* the profile: upstream_tls or peer_tls (tls_ctx.c) */
};
int origin_key_eq(const struct origin_key *a, const struct origin_key *b);

/* A TLS session to resume toward an origin key (pool.c). */
struct origin_session {
    struct origin_key key;
    SSL_SESSION *session; /* NULL: slot free */
};
#define ORIGIN_SESSIONS_MAX 8

enum upstream_timer { UT_NONE, UT_CONNECT, UT_TLS_HANDSHAKE, UT_FIRST_BYTE, UT_IDLE, UT_POOL };

struct upstream {
    uint32_t magic;
    struct srv_worker *w;
    struct link link; /* in the worker's idle pool */
    struct conn conn; /* the transport: socket, bytes read, writes queued */
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_getaddrinfo_t resolve_req;
    int handles;
    int reused;
    int closed;
    int got_bytes; /* any response byte on this use */
    int slot;      /* holds a limits.max_connections slot (opened for h2) */
    /* or its h2 client's reserved one (h2_server.h) */
    struct h2_origin_reserve *reserve;
    enum upstream_timer timer_kind;
    struct exchange *ex; /* while busy: the exchange it serves */
    struct origin_key key;
};

/* pool.c */
/* A connection for ex to where it goes (its origin_key: reverse origin,
 * the --peer idemcache, or the host the request names): a pooled one, or
 * a new one resolved (forward mode, egress checked), connected and, for
 * https, handshaken. proxy_on_connected follows, or proxy_fail. */
void pool_connect(struct exchange *ex);
struct upstream *upstream_acquire(struct srv_worker *w, const struct origin_key *key);
struct upstream *upstream_new(struct srv_worker *w, const struct origin_key *key);
/* https: start the handshake on the connected socket (SNI, verification,
 * a session of the same key resumed); conn_cb.ready follows. 0 or -1. */
int upstream_start_tls(struct upstream *u);
void upstream_sessions_free(struct srv_worker *w);
void upstream_release(struct upstream *u);
void upstream_close(struct upstream *u);
void upstream_close_idle(struct srv_worker *w);
void upstream_timer(struct upstream *u, enum upstream_timer kind);
void upstream_resume_read(struct upstream *u);
void upstream_pause_read(struct upstream *u);
/* Why its TLS failed ("": it did not, or it is cleartext). */
const char *upstream_tls_error(const struct upstream *u);
/* A sockaddr as http/netaddr.h sees it: 0, or -1 if neither IPv4 nor IPv6. */
int srv_endpoint_of(const struct sockaddr *sa, struct net_endpoint *e);
/* Forward mode: the first of the resolved addresses a client may make us
 * connect to (NET_EGRESS_ALLOWED, *out points into res), or why none is. */
enum net_egress upstream_pick_address(const struct srv_worker *w, const struct addrinfo *res,
                                      const struct sockaddr **out);

/* h1_client.c: the HTTP/1.1 wire text of a request toward an origin. */
/* "METHOD target HTTP/1.1", then Host. */
void h1_client_request_line(struct outbuf *o, struct slice method, struct slice target,
                            struct slice host);
/* One field line. */
void h1_client_field(struct outbuf *o, struct slice name, struct slice value);
/* The framing fields for a body of this kind (Content-Length `length`,
 * chunked, or none) and the end of the head. */
void h1_client_end_head(struct outbuf *o, enum http_body_kind kind, uint64_t length);
/* Body content d as sent: a chunk when the body is re-framed chunked. */
void h1_client_body(struct outbuf *o, struct slice d, int chunked);
/* The end of a chunked body (the last chunk, no trailers); nothing else. */
void h1_client_body_end(struct outbuf *o, int chunked);
/* Write o (request head and body bytes) toward the origin; takes its
 * memory. 0 or a uv error. */
int h1_client_send(struct upstream *u, struct outbuf *o);
/* Parse the response heads in u->conn.in (conn_cb.data while busy) and
 * hand each to the exchange: proxy_upstream_head, then the body to
 * proxy_upstream_body. */
void h1_client_on_data(struct exchange *ex);

/* A final response not parsed from u->conn.in but decoded from the
 * wire_len bytes at its front (a peer's coded one): the head to
 * proxy_upstream_head, the body whole to the relay, then those bytes go.
 * Ends the exchange (ex->up is let go of). */
void h1_client_deliver(struct exchange *ex, const struct http_response *res, struct slice body,
                       size_t wire_len);

/* proxy.c: what the exchange does with what h1_client.c parsed. */
/* De-frame the response body in u->conn.in and hand the content to the
 * exchange (proxy_relay_*) while it has room. */
void h1_client_read_body(struct exchange *ex);
/* The origin closed (conn_cb.eof while busy): the end of a body delimited
 * by the close, else proxy_on_upstream_eof. */
void h1_client_on_eof(struct exchange *ex, int status);

enum up_head_verdict {
    UP_HEAD_FINAL,   /* the final head: its bytes go, the body follows */
    UP_HEAD_INTERIM, /* a 1xx relayed (or dropped): its bytes go, the next head follows */
    UP_HEAD_TUNNEL,  /* 101 to an Upgrade: its bytes go, then proxy_upstream_tunnel */
    UP_HEAD_WAIT,    /* more bytes are needed first (a peer's coded body, read whole) */
    UP_HEAD_GONE,    /* answered, failed or restarted: ex->up is not this one any more */
};
enum up_head_verdict proxy_upstream_head(struct exchange *ex, const struct http_response *res);
void proxy_upstream_tunnel(struct exchange *ex);
/* Response body bytes in u->conn.in (or tunnel bytes): relay them. */
void proxy_upstream_body(struct exchange *ex);
/* The client side of one h1_client_read_body: o starts with the response
 * head not sent yet; each de-framed piece goes to the store and, framed
 * for the client, into o; _end writes o and finishes the exchange (done)
 * or turns reading on or off by the client's queue. */
void proxy_relay_begin(struct exchange *ex, struct outbuf *o);
/* Is there room for more in the client's queue? */
int proxy_relay_room(const struct exchange *ex, const struct outbuf *o);
/* Would the client get content unchanged, so a whole read buffer can go? */
int proxy_relay_takes_block(const struct exchange *ex);
/* The read buffer `in`, all content d, goes to the client behind o. */
void proxy_relay_block(struct exchange *ex, struct outbuf *o, struct iobuf *in, struct slice d);
void proxy_relay_data(struct exchange *ex, struct outbuf *o, struct slice d);
/* Write what o holds now (before a failure). */
void proxy_relay_flush(struct exchange *ex, struct outbuf *o);
void proxy_relay_end(struct exchange *ex, struct outbuf *o, int done);

#endif
