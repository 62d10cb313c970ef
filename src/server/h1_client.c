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
