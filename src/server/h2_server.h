/* HTTP/2 toward clients on a client connection (h2_server.c): how
 * h1_server.c hands a connection over, and the h2 front (front.h). */
#ifndef IDEM_H2_SERVER_H
#define IDEM_H2_SERVER_H

struct client;
struct front_ops;

/* Does a cleartext connection begin with the client preface (RFC 9113
 * §3.4, prior knowledge)? Asked before its first request only, and only
 * with h2.enabled on a cleartext listener. */
enum h2_preface {
    H2_PREFACE_NONE,    /* HTTP/1 */
    H2_PREFACE_PARTIAL, /* a prefix of it so far: read on */
    H2_PREFACE_FOUND,   /* h2: h2_conn_start */
};
enum h2_preface h2_preface_check(const struct client *c);

/* The connection speaks h2 from here (the preface found, or ALPN "h2"):
 * its reads, writes and end go to h2_server.c; bytes already read are
 * fed to the session. 0, or -1 (out of memory: the caller closes). */
int h2_conn_start(struct client *c);
/* From client_close: every stream's exchange is told and freed. */
void h2_conn_closing(struct client *c);
/* SIGTERM: GOAWAY; the streams in flight finish, then it closes. */
void h2_conn_drain(struct client *c);
/* The client's timer ran out on an h2 connection: 1 if it was a request
 * body's idle time (the stalled streams end, the connection goes on), 0
 * if the connection is to close (send or keep-alive idle). */
int h2_conn_timer(struct client *c);

extern const struct front_ops h2_front;

/* limits.max_connections reserves one origin connection per client
 * connection (pool.c takes a slot for each further one an h2 stream
 * opens). The reserved one of an h2 connection, shared with the origin
 * connection that has it, which may outlive the client (a background
 * fetch): counted references. */
struct h2_origin_reserve;
struct exchange;
/* The reserve of ex's h2 connection if no origin connection has it: now
 * taken, a reference the caller gives back with h2_origin_reserve_put.
 * NULL: taken already (or ex is not on h2). */
struct h2_origin_reserve *h2_origin_reserve_take(struct exchange *ex);
/* Its origin connection closed: free again for the h2 connection. */
void h2_origin_reserve_put(struct h2_origin_reserve *r);

#endif
