/* The protocol interface: how the pipeline answers a client without
 * knowing which protocol carries the exchange (HTTP/1 today, h2 and the
 * internal refresh next; design server-layers.md §4). A stage hands over
 * status, the fields it adds and a body; the protocol writes the status
 * line, the framing (Content-Length), Connection, and the bytes.
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

struct front_ops {
    const char *name; /* for logs */
    void (*answer)(struct exchange *ex, const struct front_answer *a);
    /* On a cleartext h1 connection a hit is one writev: the stored head,
     * ours with the framing, and the body segments (hit-writes.test). */
    void (*object)(struct exchange *ex, const struct front_object *o);
    /* A 1xx of ours (100 Continue: RFC 9110 §10.1.1); h1 sends it only to
     * an HTTP/1.1 client. */
    void (*interim)(struct exchange *ex, int status);
    /* End the connection once what is queued is out (h2 later: reset the
     * stream). */
    void (*abort)(struct exchange *ex);
};

/* The HTTP/1 front (h1_server.c). */
extern const struct front_ops h1_front;

#endif
