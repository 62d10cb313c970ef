/* Responses idemcache makes itself: a status, a short text body, and the
 * end of the client's connection or stream (the request may be half read;
 * RFC 9112 §9.6). The protocol writes it (front_ops.answer, abort). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"

const char *reply_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static void reply(struct exchange *ex, int status, const char *type, const char *body, int n)
{
    if (ex->fe->closing(ex))
        return;
    if (ex->up) {
        upstream_close(ex->up);
        ex->up = NULL;
    }
    struct outbuf ours = {0};
    cache_stage_status_field(ex, 0, &ours);
    peer_stage_fields(ex, &ours);
    ex->status = status;
    ex->fe->answer(
        ex, &(struct front_answer){.status = status,
                                   .reason = {reply_reason(status), strlen(reply_reason(status))},
                                   .type = type,
                                   .length = n,
                                   .ours = &ours,
                                   .body = body,
                                   .close = 1});
    free(ours.p);
    if (ex->req && log_access_enabled()) {
        struct access_entry e = {
            .method = ex->method,
            .target = ex->target,
            .client = (struct slice){ex->ci->ip, strlen(ex->ci->ip)},
            .status = status,
            .bytes_in = ex->bytes_in,
            .bytes_out = ex->bytes_out,
            .upstream_ms = ex->t_up_start ? (double)(uv_hrtime() - ex->t_up_start) / 1e6 : -1,
            .total_ms = (double)(uv_hrtime() - ex->t_start) / 1e6,
        };
        log_access(&e);
    } else if (!ex->req && log_access_enabled()) {
        int ended;
        struct access_entry e = {.method = SLICE_LIT("-"),
                                 .target = SLICE_LIT("-"),
                                 .client = (struct slice){ex->ci->ip, strlen(ex->ci->ip)},
                                 .status = status,
                                 .bytes_in = ex->fe->req_in(ex, &ended).len,
                                 .bytes_out = ex->bytes_out,
                                 .upstream_ms = -1};
        log_access(&e);
    }
    exchange_done(ex);
    ex->fe->abort(ex);
}

void reply_error(struct exchange *ex, int status, const char *detail)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reply_reason(status), detail);
    reply(ex, status, "text/plain; charset=utf-8", body, n);
}

/* RFC 9457. title and detail are our own constant texts: no escaping. */
void reply_problem(struct exchange *ex, int status, const char *title, const char *detail)
{
    char body[512];
    int n =
        snprintf(body, sizeof body,
                 "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}\n",
                 title, status, detail);
    reply(ex, status, "application/problem+json", body, n);
}
