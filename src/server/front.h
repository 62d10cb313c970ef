/* The protocol interface: how the pipeline answers a client without
 * knowing which protocol carries the exchange (HTTP/1: h1_server.c; the
 * internal refresh: internal.c; h2 next; design server-layers.md §4).
 * CONNECT and Upgrade tunnels are HTTP/1 only (tunnel.c). A stage hands over
 * status, the fields it adds and a body; the protocol writes the status
 * line, the framing (Content-Length), Connection, and the bytes.
 *
 * Both ways (cf. Varnish's struct transport):
 *   protocol -> pipeline  exchange_new, exchange_begin, exchange_req_data,
 *                         exchange_front_drained, exchange_front_gone
 *                         (server.h, "exchange.c"), exchange_free
 *   pipeline -> protocol  the front_ops below, on ex->fe with ex->fe_ctx
 *                         (h1: the struct client; h2: its stream)
 *
 * The request body: the pipeline reads it itself, with http_body_reader
 * over the bytes the protocol holds (req_in, req_consume). h1 holds them
 * framed as the client sent them (Content-Length or chunked) behind the
 * head in its read buffer; h2 holds its DATA frames' content, which is
 * HTTP_BODY_LENGTH with a content-length and HTTP_BODY_STREAM without one
 * (ended by END_STREAM). One reader loop thus serves both, with the
 * origin's backpressure in one place (proxy.c): simpler than a push of
 * de-framed bytes, which would need a second buffer for the body read
 * ahead to key it and for the origin's full socket.
 *
 * `ours` is the stage's own fields, as field lines built with
 * outbuf_addfield* (never wire text spelled out in a stage): a protocol
 * that does not write HTTP/1 reads them back as name/value pairs. A type
 * header: nothing here does I/O. */
#ifndef IDEM_FRONT_H
#define IDEM_FRONT_H
#include <stddef.h>
#include <stdint.h>
#include "http/slice.h"

struct exchange;
struct outbuf;
struct cache_object;

/* Who sent an exchange's request, as its protocol knows it. Owned by the
 * protocol (h1: inside its struct client) and outlives the exchange. */
struct conninfo {
    char ip[64]; /* the client's address as text: logs, X-Forwarded-For */
    /* the request came over TLS: its scheme is https (an internal refresh:
     * the request that started it did) */
    int tls;
    int admin;    /* accepted on the admin listener */
    int internal; /* an internal refresh (internal.c), no client behind */
};

/* How a response ended, for front_ops.done. */
enum front_done {
    FRONT_DONE_NEXT,        /* the request was read whole: the next may follow */
    FRONT_DONE_BODY_UNREAD, /* its body was not read (all): h1 closes after
                             * the response, h2 resets the stream with
                             * NO_ERROR (RFC 9113 §8.1) */
};

/* What the pipeline wants of the request now, for front_ops.req_flow. */
enum front_flow {
    /* the request is the pipeline's (read whole, or none of its body is
     * wanted yet or ever): no request timer; a response is on its way */
    FRONT_FLOW_WAIT,
    /* its body is wanted but cannot be taken now (the origin is not
     * connected, or its socket is full): hold it where it is */
    FRONT_FLOW_HOLD,
    /* send its body: h1 reads on, first inviting it with 100 Continue
     * when the client expects one (RFC 9110 §10.1.1; ex->sent_continue),
     * and starts timeouts.client_body_idle; h2 opens the window */
    FRONT_FLOW_READ,
};

/* A whole response of our own: status, fields and a short body. */
struct front_answer {
    int status;
    struct slice reason;       /* h1 only */
    const char *type;          /* Content-Type; NULL: none */
    int64_t length;            /* Content-Length; -1: none (a 304) */
    const struct outbuf *ours; /* fields after the framing; NULL: none */
    const char *body;          /* `length` bytes, left out for HEAD */
    int close;                 /* the connection ends after it */
};

/* A stored response. status 0: the stored status line; else (206) this
 * status instead. The stored fields but those inside `omit`, then `ours`
 * (the protocol appends its framing and takes the memory), then with_body
 * body bytes first..first+length-1 of the stored segments. length -1: no
 * Content-Length (204, 304). */
struct front_object {
    struct cache_object *obj;
    int status;
    struct slice omit;
    struct outbuf *ours;
    int64_t length;
    uint64_t first;
    int with_body;
};

/* The head of a relayed response; its body follows (proxy_relay_*). */
struct front_head {
    int status;
    struct slice reason;
    const struct outbuf *fields; /* end-to-end fields and ours */
    int64_t length;              /* Content-Length; -1: none */
    int unframed;                /* the body ends by the origin's chunks or close */
};

struct front_ops {
    const char *name; /* for logs */
    void (*answer)(struct exchange *ex, const struct front_answer *a);
    /* On a cleartext h1 connection a hit is one writev: the stored head,
     * ours with the framing, and the body segments (hit-writes.test). */
    void (*object)(struct exchange *ex, const struct front_object *o);
    /* The head of a relayed response; the protocol chooses the framing
     * (h1: chunked, or the close for an HTTP/1.0 client) and may hold the
     * head back to leave with the first body bytes. */
    void (*head)(struct exchange *ex, const struct front_head *h);
    /* Body bytes go out in writes the pipeline gathers: frame() appends d
     * to o framed for this client (h1: a chunk when it chose chunked),
     * frame_end() what ends the body (h1: the last chunk); send() writes
     * o and takes its memory; send_block() then n bytes at p inside
     * `block`, a read buffer it takes over (zero-copy relay). */
    void (*frame)(struct exchange *ex, struct outbuf *o, struct slice d);
    void (*frame_end)(struct exchange *ex, struct outbuf *o);
    void (*send)(struct exchange *ex, struct outbuf *o);
    void (*send_block)(struct exchange *ex, struct outbuf *o, char *block, struct slice d);
    /* Bytes queued toward the client and not yet written (backpressure),
     * against WRITE_HIGH_WATER; h2: WRITE_HIGH_WATER less the room left
     * in its stream's share of h2.max_output_buffer (h2_server.c). */
    size_t (*queued)(const struct exchange *ex);
    /* A 1xx (RFC 9110 §15.2): ours (100 Continue, §10.1.1: fields NULL) or
     * relayed; callers send none to an HTTP/1.0 client (RFC 9110 §15.2). */
    void (*interim)(struct exchange *ex, int status, struct slice reason,
                    const struct outbuf *fields);
    /* The head that turns the connection into a tunnel: 200 to CONNECT,
     * 101 to an Upgrade (fields: the origin's, Connection: upgrade). */
    void (*tunnel)(struct exchange *ex, int status, struct slice reason,
                   const struct outbuf *fields);
    /* End the connection once what is queued is out (h2 later: reset the
     * stream). */
    void (*abort)(struct exchange *ex);
    /* The response is complete and the exchange finished (exchange_done
     * ran; the pipeline logged it). h1: keep-alive or close, then the next
     * pipelined request (not from inside its own parse loop: it goes on
     * there); h2: the stream ends. */
    void (*done)(struct exchange *ex, enum front_done how);
    /* The request body: see the top of this file. */
    void (*req_flow)(struct exchange *ex, enum front_flow flow);
    /* The request's body bytes the protocol holds and the pipeline has
     * not consumed (h1: its read buffer behind the head). *ended: no more
     * will come (h2: END_STREAM; h1: 0, its framing says where it ends). */
    struct slice (*req_in)(struct exchange *ex, int *ended);
    /* The pipeline is done with the request's head (h1: still at the
     * front of its buffer, if it is) and with n body bytes of req_in. */
    void (*req_consume)(struct exchange *ex, size_t n);
    /* Nothing more can go to this client: h1 closing or closed; h2: the
     * stream reset or closed. */
    int (*closing)(const struct exchange *ex);
};

/* The HTTP/1 front (h1_server.c). */
extern const struct front_ops h1_front;

#endif
