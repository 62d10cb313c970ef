/* The internal front: an exchange with no client behind it, for the
 * background refresh (RFC 5861 §3, background.c) and for the background
 * fetch, a client's fetch that goes on into the cache after its client
 * left (Varnish's background fetch, nginx's proxy_cache: the fetch is the
 * object's, not the client's). The pipeline runs it as any other
 * (routing, validators, the 304 merge, storing, Vary, coalescing, the
 * access log); what it would send a client is dropped here. No socket,
 * no wire text: design server-layers.md §3, step 7.
 *
 *   internal_start -> exchange_begin -> ... -> done or abort: finished
 *   internal_adopt (exchange_front_gone, mid-body) -> ... -> the same
 *   finished -> reap (the next start or adoption, or the worker's end): freed
 *
 * A finished exchange is not freed at once: the pipeline may still be
 * unwinding through it (h1_client_on_eof reads it after the relay ends). */
#include <stdlib.h>
#include <string.h>
#include "server/server.h"

#define INTERNAL_MAGIC 0x494e544cu

struct internal {
    uint32_t magic;
    int finished;       /* answered or given up; no longer counted */
    int detached;       /* a client's fetch taken over (internal_adopt) */
    struct link link;   /* in the worker's internals */
    struct conninfo ci; /* its starter's, for the key and the log */
    struct exchange *ex;
};

static struct internal *of(const struct exchange *ex)
{
    struct internal *in = ex->fe_ctx;
    CHECK_MAGIC(in, INTERNAL_MAGIC);
    return in;
}

/* The refresh is over: its key's slot (if it never took it), its upstream
 * and its place among the worker's refreshes go now; its memory later. */
static void finish(struct exchange *ex)
{
    struct internal *in = of(ex);
    if (in->finished)
        return;
    in->finished = 1;
    exchange_front_gone(ex);
    struct srv_worker *w = ex->w;
    w->background--;
    if (w->draining)
        worker_client_gone(w); /* the last one may end a drain */
}

static void in_answer(struct exchange *ex, const struct front_answer *a)
{
    (void)ex;
    (void)a;
}

static void in_object(struct exchange *ex, const struct front_object *f)
{
    ex->bytes_out += f->with_body && f->length > 0 ? (uint64_t)f->length : 0;
    free(f->ours->p); /* the protocol's, as the head it would have sent */
    *f->ours = (struct outbuf){0};
}

static void in_head(struct exchange *ex, const struct front_head *h)
{
    (void)ex;
    (void)h;
}

static void in_frame(struct exchange *ex, struct outbuf *o, struct slice d)
{
    (void)o;
    ex->bytes_out += d.len;
}

static void in_frame_end(struct exchange *ex, struct outbuf *o)
{
    (void)ex;
    (void)o;
}

static void in_send(struct exchange *ex, struct outbuf *o)
{
    (void)ex;
    free(o->p);
    *o = (struct outbuf){0};
}

static void in_send_block(struct exchange *ex, struct outbuf *o, char *block, struct slice d)
{
    ex->bytes_out += d.len;
    free(o->p);
    *o = (struct outbuf){0};
    free(block);
}

static size_t in_queued(const struct exchange *ex)
{
    (void)ex;
    return 0; /* never a slow reader: the origin is read as fast as it sends */
}

static void in_interim(struct exchange *ex, int status, struct slice reason,
                       const struct outbuf *fields)
{
    (void)ex;
    (void)status;
    (void)reason;
    (void)fields;
}

static void in_done(struct exchange *ex, enum front_done how)
{
    (void)how;
    finish(ex);
}

static void in_req_flow(struct exchange *ex, enum front_flow flow)
{
    (void)ex;
    (void)flow; /* a GET: no body to read */
}

static struct slice in_req_in(struct exchange *ex, int *ended)
{
    (void)ex;
    *ended = 1;
    return (struct slice){"", 0};
}

static void in_req_consume(struct exchange *ex, size_t n)
{
    (void)ex;
    (void)n;
}

static int in_closing(const struct exchange *ex)
{
    return of(ex)->finished;
}

int internal_fetch_unwanted(const struct exchange *ex)
{
    /* A background fetch goes on for the store alone: once the store let
     * go of its object (it outgrew cache.max_object_size mid-body), the
     * rest would be read for no one. A refresh reads its answer out. */
    return ex->fe == &internal_front && of(ex)->detached && !of(ex)->finished && !ex->fill;
}

const struct front_ops internal_front = {
    .name = "internal",
    .answer = in_answer,
    .object = in_object,
    .head = in_head,
    .frame = in_frame,
    .frame_end = in_frame_end,
    .send = in_send,
    .send_block = in_send_block,
    .queued = in_queued,
    .interim = in_interim,
    .tunnel = in_interim, /* never: a refresh asks for no upgrade */
    .abort = finish,
    .done = in_done,
    .req_flow = in_req_flow,
    .req_in = in_req_in,
    .req_consume = in_req_consume,
    .closing = in_closing,
};

/* Free the finished refreshes: from the start of another, or once the
 * worker's loop has ended; never from inside one of them. */
static void reap(struct srv_worker *w, int all)
{
    struct link *l = w->internals.next;
    while (l != &w->internals) {
        struct internal *in = container_of(l, struct internal, link);
        l = l->next;
        if (!in->finished && !all)
            continue;
        link_remove(&in->link);
        exchange_free(&in->ex);
        in->magic = 0;
        free(in);
    }
}

int internal_start(struct srv_worker *w, const struct http_request *r, const struct conninfo *ci,
                   const char *key, size_t key_len)
{
    reap(w, 0);
    struct internal *in = calloc(1, sizeof *in);
    if (!in)
        return -1;
    in->magic = INTERNAL_MAGIC;
    in->ci = *ci;
    in->ci.internal = 1;
    in->ex = exchange_new(w, &internal_front, in, &in->ci);
    char *slot = malloc(key_len ? key_len : 1);
    if (!in->ex || !slot || exchange_copy_request(in->ex, r) < 0) {
        free(slot);
        exchange_free(&in->ex);
        free(in);
        return -1;
    }
    memcpy(slot, key, key_len);
    in->ex->bg_key = slot; /* the key's coalescing slot, its starter's until now */
    in->ex->bg_key_len = key_len;
    link_insert(&w->internals, &in->link);
    w->background++;
    exchange_begin(in->ex);
    return 0;
}

int internal_adopt(struct exchange *ex)
{
    struct srv_worker *w = ex->w;
    if (w->background >= w->cfg->cache.background_fetches)
        return -1; /* as many in flight as refreshes may be: it ends with its client */
    reap(w, 0);
    struct internal *in = calloc(1, sizeof *in);
    if (!in)
        return -1;
    in->magic = INTERNAL_MAGIC;
    in->detached = 1;
    in->ci = *ex->ci; /* the client's goes with its connection */
    in->ci.internal = 1;
    in->ex = ex;
    ex->fe = &internal_front;
    ex->fe_ctx = in;
    ex->ci = &in->ci;
    link_insert(&w->internals, &in->link);
    w->background++;
    return 0;
}

void internal_abort_all(struct srv_worker *w)
{
    for (struct link *l = w->internals.next; l != &w->internals; l = l->next) {
        struct internal *in = container_of(l, struct internal, link);
        if (!in->finished)
            finish(in->ex); /* logged 499, as a client gone before its answer */
    }
}

void internal_free_all(struct srv_worker *w)
{
    reap(w, 1);
}
