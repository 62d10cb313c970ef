/* Responses idemcache makes itself: a status, a short text body, and a
 * closed connection (the request may be half read; RFC 9112 §9.6). */
#include <stdio.h>
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

static void reply(struct client *c, int status, const char *type, const char *body, int n)
{
    struct exchange *ex = &c->ex;
    if (c->closed || c->state == CS_CLOSING)
        return;
    if (ex->up) {
        upstream_close(ex->up);
        ex->up = NULL;
    }
    struct outbuf o = {0};
    outbuf_printf(&o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n", status,
                  reply_reason(status), type, n);
    cache_stage_status_field(c, 0, &o);
    peer_stage_fields(c, &o);
    outbuf_addstr(&o, "Connection: close\r\n\r\n");
    if (!ex->method_head)
        outbuf_add(&o, body, (size_t)n);
    ex->status = status;
    ex->bytes_out += o.len;
    conn_write(&c->conn, &o);
    if (ex->line && log_access_enabled()) {
        struct access_entry e = {
            .method = ex->method,
            .target = ex->target,
            .client = (struct slice){c->ip, strlen(c->ip)},
            .status = status,
            .bytes_in = ex->bytes_in,
            .bytes_out = ex->bytes_out,
            .upstream_ms = ex->t_up_start ? (double)(uv_hrtime() - ex->t_up_start) / 1e6 : -1,
            .total_ms = (double)(uv_hrtime() - ex->t_start) / 1e6,
        };
        log_access(&e);
    } else if (!ex->line && log_access_enabled()) {
        struct access_entry e = {.method = SLICE_LIT("-"),
                                 .target = SLICE_LIT("-"),
                                 .client = (struct slice){c->ip, strlen(c->ip)},
                                 .status = status,
                                 .bytes_in = iobuf_len(&c->conn.in),
                                 .bytes_out = ex->bytes_out,
                                 .upstream_ms = -1};
        log_access(&e);
    }
    proxy_exchange_reset(c);
    c->keepalive = 0;
    client_close_after_write(c);
}

void reply_error(struct client *c, int status, const char *detail)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reply_reason(status), detail);
    reply(c, status, "text/plain; charset=utf-8", body, n);
}

/* RFC 9457. title and detail are our own constant texts: no escaping. */
void reply_problem(struct client *c, int status, const char *title, const char *detail)
{
    char body[512];
    int n =
        snprintf(body, sizeof body,
                 "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}\n",
                 title, status, detail);
    reply(c, status, "application/problem+json", body, n);
}
