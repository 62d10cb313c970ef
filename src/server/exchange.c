/* The exchange: one request on its way through the pipeline. It owns a
 * copy of its request, so the stages read it whatever happens to the
 * connection's buffer (pipelined bytes, a replay, a rewrite). */
#include <stdlib.h>
#include <string.h>
#include "server/server.h"

int exchange_own_request(struct exchange *ex, const struct http_request *r, const char *head)
{
    /* one block: the field array first, for its alignment, then the head */
    char *arena = malloc(http_request_copy_size(r) + 1);
    if (!arena)
        return -1;
    http_request_copy(&ex->req, r, head, arena);
    ex->req_arena = arena;
    ex->method = ex->req.method;
    ex->target = ex->req.target;
    return 0;
}

void exchange_free_request(struct exchange *ex)
{
    free(ex->req_arena);
    ex->req_arena = NULL;
    ex->req = (struct http_request){0};
}

struct exchange *exchange_new(struct client *c)
{
    struct exchange *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->magic = EXCHANGE_MAGIC;
    ex->c = c;
    ex->w = c->w;
    link_init(&ex->park_link);
    link_init(&ex->stream_link);
    link_init(&ex->retired_link);
    return ex;
}

void exchange_reset(struct exchange *ex)
{
    CHECK_MAGIC(ex, EXCHANGE_MAGIC);
    if (ex->up) {
        /* every path that ends an exchange lets its upstream go first; one
         * left here would call back into a freed exchange */
        upstream_close(ex->up);
        ex->up = NULL;
    }
    exchange_free_request(ex);
    free(ex->up_head.p);
    free(ex->retry_head.p);
    free(ex->resp_head.p);
    free(ex->peer_body.p);
    cache_stage_reset(ex);
    /* the head of the exchange carries over: see struct exchange */
    memset(&ex->state, 0, sizeof *ex - offsetof(struct exchange, state));
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
    exchange_reset(ex);
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
