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
