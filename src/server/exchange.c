/* The exchange: one request on its way through the pipeline. It owns a
 * copy of its request, so the stages read it whatever happens to the
 * connection's buffer (pipelined bytes, a replay, a rewrite). */
#include <stdlib.h>
#include <string.h>
#include "server/server.h"

/* One exchange is allocated and freed per request, on the hit path too:
 * glibc serves blocks up to 1032 bytes from a per-thread cache without
 * locking (tcache); a larger exchange costs ~500 instructions a hit
 * (bench/hit-instructions.mjs). */
_Static_assert(sizeof(struct exchange) <= 1032, "struct exchange outgrew glibc's tcache");

int exchange_own_request(struct exchange *ex, const struct http_request *r, const char *head)
{
    /* one block: the request, its field array, then its head; kept small
     * enough for the allocator's fast path with a typical head */
    struct http_request *own = malloc(sizeof *own + http_request_copy_size(r) + 1);
    if (!own)
        return -1;
    http_request_copy(own, r, head, own + 1);
    ex->req = own;
    ex->method = own->method;
    ex->target = own->target;
    return 0;
}

struct exchange *exchange_new(struct client *c)
{
    /* Not calloc: the exchange is sized for glibc's per-thread cache,
     * which calloc bypasses. Zeroed past its first fields, so that the
     * compiler does not turn malloc+memset back into calloc. */
    struct exchange *ex = malloc(sizeof *ex);
    if (!ex)
        return NULL;
    ex->magic = EXCHANGE_MAGIC;
    ex->c = c;
    ex->w = c->w;
    memset(&ex->park_link, 0, sizeof *ex - offsetof(struct exchange, park_link));
    link_init(&ex->park_link);
    link_init(&ex->stream_link);
    link_init(&ex->retired_link);
    return ex;
}

/* Let go of what one attempt holds; its fields are left as they are. */
static void release_attempt(struct exchange *ex)
{
    CHECK_MAGIC(ex, EXCHANGE_MAGIC);
    if (ex->up) {
        /* every path that ends an exchange lets its upstream go first; one
         * left here would call back into a freed exchange */
        upstream_close(ex->up);
        ex->up = NULL;
    }
    free(ex->req);
    free(ex->up_key_own);
    free(ex->up_head.p);
    free(ex->retry_head.p);
    free(ex->resp_head.p);
    free(ex->peer_body.p);
    cache_stage_reset(ex);
}

void exchange_reset(struct exchange *ex)
{
    release_attempt(ex);
    /* the head of the exchange carries over: see struct exchange */
    memset(&ex->state, 0, sizeof *ex - offsetof(struct exchange, state));
}

void exchange_restart(struct exchange *ex)
{
    struct http_request *req = ex->req;
    uint64_t t_start = ex->t_start;
    ex->req = NULL;
    exchange_reset(ex);
    ex->req = req;
    ex->method = req->method;
    ex->target = req->target;
    ex->t_start = t_start;
}

void exchange_done(struct exchange *ex)
{
    exchange_reset(ex);
    ex->finished = 1;
}

void exchange_free(struct exchange **xp)
{
    struct exchange *ex = *xp;
    if (!ex)
        return;
    release_attempt(ex);
    cache_stage_unpark(ex);
    if (ex->bg_key) {
        /* an internal refresh that never started: free its key's slot */
        cache_stage_release_key(ex->w, ex->bg_key, ex->bg_key_len);
        free(ex->bg_key);
    }
    collect_free(ex);
    ex->magic = 0;
    free(ex);
    *xp = NULL;
}

void exchange_retire(struct client *c, struct exchange *x)
{
    link_insert(&c->retired, &c->ex->retired_link);
    c->ex = x;
}

void exchange_free_retired(struct client *c)
{
    while (!link_empty(&c->retired)) {
        struct exchange *x = container_of(c->retired.next, struct exchange, retired_link);
        link_remove(&x->retired_link);
        exchange_free(&x);
    }
}
