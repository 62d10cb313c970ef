/* HTTP/1.1 toward origins and the reverse peer: the wire text of what we
 * send, given the pieces the exchange chose (proxy.c picks the target, the
 * Host value, the fields and the framing; this file writes them). The
 * client side's HTTP/1 text is elsewhere (client.c, proxy.c's response
 * head; a later step gathers it in h1_server.c).
 *
 * RFC 9112 §3 (request line), §3.2 (Host), §5 (field lines), §6 (message
 * body framing), §7.1 (chunked coding). */
#include "server/server.h"
#include "server/origin.h"
#include "server/log.h"

void h1_client_request_line(struct outbuf *o, struct slice method, struct slice target,
                            struct slice host)
{
    outbuf_addslice(o, method);
    outbuf_addstr(o, " ");
    outbuf_addslice(o, target);
    outbuf_addstr(o, " HTTP/1.1\r\nHost: ");
    if (host.len) /* an empty slice may have no pointer */
        outbuf_addslice(o, host);
    outbuf_addstr(o, "\r\n");
}

void h1_client_field(struct outbuf *o, struct slice name, struct slice value)
{
    outbuf_addfield(o, name, value);
}

void h1_client_end_head(struct outbuf *o, enum http_body_kind kind, uint64_t length)
{
    if (kind == HTTP_BODY_LENGTH) {
        outbuf_addstr(o, "Content-Length: ");
        outbuf_addu64(o, length);
        outbuf_addstr(o, "\r\n");
    } else if (kind == HTTP_BODY_CHUNKED)
        outbuf_addstr(o, "Transfer-Encoding: chunked\r\n");
    outbuf_addstr(o, "\r\n");
}

void h1_client_body(struct outbuf *o, struct slice d, int chunked)
{
    if (chunked) {
        outbuf_addhex(o, d.len);
        outbuf_addstr(o, "\r\n");
    }
    outbuf_addslice(o, d);
    if (chunked)
        outbuf_addstr(o, "\r\n");
}

void h1_client_body_end(struct outbuf *o, int chunked)
{
    if (chunked)
        outbuf_addstr(o, "0\r\n\r\n");
}

/* Response heads from u->conn.in, each handed to the exchange, until the
 * final one (RFC 9112 §2.1; 1xx first, RFC 9110 §15.2); the body that
 * follows goes to the exchange's pump. */
void h1_client_on_data(struct exchange *ex)
{
    struct srv_worker *w = ex->c->w;
    while (ex->up && ex->state == EX_RESP_HEAD) {
        struct upstream *u = ex->up;
        int rc = http_parse_response(iobuf_data(&u->conn.in), iobuf_len(&u->conn.in),
                                     &w->resp_limits, &w->res);
        if (rc == HTTP_PARSE_MORE)
            return;
        if (rc != HTTP_PARSE_OK) {
            log_msg(LOG_WARN, "upstream %s: invalid response head", u->key.host_port);
            proxy_fail(ex, 502, "invalid response from upstream");
            return;
        }
        switch (proxy_upstream_head(ex, &w->res)) {
        case UP_HEAD_WAIT:
        case UP_HEAD_GONE:
            return;
        case UP_HEAD_AGAIN:
            continue;
        case UP_HEAD_INTERIM:
            iobuf_consume(&u->conn.in, w->res.head_len);
            continue;
        case UP_HEAD_TUNNEL:
            iobuf_consume(&u->conn.in, w->res.head_len);
            proxy_upstream_tunnel(ex);
            return;
        case UP_HEAD_FINAL:
            iobuf_consume(&u->conn.in, w->res.head_len);
            ex->state = EX_RESP_BODY;
            upstream_timer(u, UT_IDLE);
            continue;
        }
    }
    proxy_upstream_body(ex);
}
