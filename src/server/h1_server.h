/* The HTTP/1 client connection (h1_server.c) and what shares it: the
 * tunnel (tunnel.c) and the drain loop (worker.c). The pipeline does not
 * include this: it knows an exchange's client only through front_ops and
 * its conninfo. */
#ifndef IDEM_H1_SERVER_H
#define IDEM_H1_SERVER_H
#include "server/server.h"

enum client_state {
    CS_HEAD,    /* reading a request head (or idle between requests) */
    CS_BODY,    /* reading the request body for the pipeline (to key it, or
                 * to forward it): front_ops.req_flow READ or HOLD */
    CS_WAIT,    /* request fully read; response in progress */
    CS_TUNNEL,  /* CONNECT or Upgrade: raw bytes both ways */
    CS_CLOSING, /* final bytes queued; then lingering close */
};

struct client {
    uint32_t magic;
    struct srv_worker *w;
    struct link link;
    struct conn conn;   /* the transport: socket, bytes read, writes queued */
    struct conninfo ci; /* its exchanges' (front.h) */
    uv_timer_t timer;
    int handles;
    enum client_state state;
    int keepalive;
    int head_timer;          /* the header deadline is running */
    int closed;              /* uv_close called */
    int tls;                 /* accepted on a TLS listener (ci.tls: the request's scheme) */
    int tls_ready;           /* its handshake completed (conn_alpn tells the protocol) */
    int counted;             /* holds a place in limits.max_connections */
    int processing;          /* inside client_process: it goes on with the next request */
    int body_hold;           /* FRONT_FLOW_HOLD: reading paused for the request body */
    int answered;            /* this request got an answer of ours, whole (h1_answer) */
    int send_wait;           /* CS_HEAD: the next request waits for answers to drain */
    int send_then_keepalive; /* CS_HEAD: client_send_idle runs until the last answer drains */
    size_t send_mark;        /* unsent() when the timer was last set */
    /* the request in progress, or the last one (finished) until the next
     * begins; never NULL while the client is open */
    struct exchange *ex;
    /* finished exchanges replaced by a newer one: freed when no call chain
     * can hold them (the next read callback, or the close) */
    struct link retired;
    struct h2_conn *h2; /* it speaks h2 (h2_server.c owns its reads and writes) */
    int h2_checked;     /* its first bytes were not the h2 preface */
};

/* h1_server.c: the client connection */
void client_accept(uv_stream_t *listener, int status);
struct client *client_new(struct srv_worker *w);
void client_start(struct client *c);
void client_process(struct client *c);
void client_resume_read(struct client *c);
void client_pause_read(struct client *c);
void client_close(struct client *c);
void client_close_after_write(struct client *c);
void client_timer(struct client *c, uint64_t ms);
void client_write_done(void *owner, int status);
/* A handle of c's (its tcp, its timer, h2's idle) closed: the last one
 * frees c. */
void client_handle_closed(struct client *c);

/* tunnel.c: the connection's side */
void tunnel_begin(struct client *c);
void tunnel_on_client_data(struct client *c);
void tunnel_on_upstream_data(struct client *c);
void tunnel_on_eof(struct client *c, int from_client);

#endif
