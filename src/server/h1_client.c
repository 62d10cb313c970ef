/* HTTP/1.1 toward origins and the reverse peer, both ways. Out: the wire
 * text of the request, given the pieces the exchange chose (proxy.c picks
 * the target, the Host value, the fields and the framing; this file writes
 * them). In: the response heads parsed from u->conn.in and the body
 * de-framed, each handed to the exchange (proxy_upstream_head,
 * proxy_relay_*), which decides what the client gets; a response the
 * peer stage decoded from the link goes the same way from memory
 * (h1_client_deliver). The client side's HTTP/1 text is in h1_server.c.
 *
 * RFC 9112 §2.1 (message format), §3 (request line), §3.2 (Host), §5
 * (field lines), §6 (message body framing), §7.1 (chunked coding). */
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
    } else if (kind == HTTP_BODY_CHUNKED || kind == HTTP_BODY_STREAM) {
        /* an h2 body without content-length goes chunked (proxy.c
         * req_chunked): without this line the origin would read the
         * chunks as the next request */
        outbuf_addstr(o, "Transfer-Encoding: chunked\r\n");
    }
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

/* A head and a broken first chunk in one read: while no byte of the
 * response has gone out, a 502 is still possible, so the chunked framing
 * already buffered behind the head is checked first. Only what is already
 * here: nothing waits for more bytes, streamed answers gain no latency. */
static int first_chunks_malformed(const struct exchange *ex, const struct http_response *res)
{
    if (res->status < 200 || http_response_body_kind(res, ex->method_head) != HTTP_BODY_CHUNKED)
        return 0;
    const struct upstream *u = ex->up;
    const char *p = iobuf_data(&u->conn.in) + res->head_len;
    size_t len = iobuf_len(&u->conn.in) - res->head_len;
    struct http_body_reader scratch;
    http_body_init(&scratch, HTTP_BODY_CHUNKED, 0, ex->w->cfg->limits.response_header_section);
    while (len) {
        size_t used = 0;
        struct slice data;
        enum http_body_rc rc = http_body_read(&scratch, p, len, &used, &data);
        if (rc == HTTP_BODY_ERROR)
            return 1;
        if (rc != HTTP_BODY_DATA)
            return 0;
        p += used;
        len -= used;
    }
    return 0;
}

/* Response heads from u->conn.in, each handed to the exchange, until the
 * final one (RFC 9112 §2.1; 1xx first, RFC 9110 §15.2); the body that
 * follows goes to the exchange's pump. */
void h1_client_on_data(struct exchange *ex)
{
    struct srv_worker *w = ex->w;
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
        if (first_chunks_malformed(ex, &w->res)) {
            log_msg(LOG_WARN, "upstream %s: malformed chunked body", u->key.host_port);
            proxy_fail(ex, 502, "malformed chunked body from upstream");
            return;
        }
        switch (proxy_upstream_head(ex, &w->res)) {
        case UP_HEAD_WAIT:
        case UP_HEAD_GONE:
            return;
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

/* A response decoded from what the link carried (a peer's coded one,
 * peer_stage.c): the head goes to the exchange as a parsed one would,
 * the body whole from memory, and the wire_len bytes it came in leave
 * u->conn.in once relayed (res and body may point into them), so what
 * stays there is only what the peer sent behind it. The exchange is
 * finished on return (or failed): its upstream is not this one any more. */
void h1_client_deliver(struct exchange *ex, const struct http_response *res, struct slice body,
                       size_t wire_len)
{
    struct upstream *u = ex->up;
    /* res is final (a status >= 200) and its peer stage done: the head
     * goes to the client or the store, never back here */
    enum up_head_verdict v = proxy_upstream_head(ex, res);
    ASSERT(v == UP_HEAD_FINAL);
    if (ex->up != u)
        return; /* the client went away meanwhile */
    ex->state = EX_RESP_BODY;
    struct outbuf o;
    proxy_relay_begin(ex, &o);
    if (body.len)
        proxy_relay_data(ex, &o, body);
    iobuf_consume(&u->conn.in, wire_len);
    proxy_relay_end(ex, &o, 1);
}

/* A read that holds only body bytes goes to the client as it is, when the
 * client side takes it unchanged. Returns 1 when it did. */
static int relay_read_buffer(struct exchange *ex, struct outbuf *o)
{
    struct upstream *u = ex->up;
    if (ex->resp_body.kind == HTTP_BODY_CHUNKED || iobuf_len(&u->conn.in) == 0 ||
        !proxy_relay_takes_block(ex))
        return 0;
    size_t used;
    struct slice d;
    size_t len = iobuf_len(&u->conn.in);
    struct http_body_reader probe = ex->resp_body;
    if (http_body_read(&probe, iobuf_data(&u->conn.in), len, &used, &d) != HTTP_BODY_DATA ||
        used != len)
        return 0; /* the read also holds bytes after the body */
    ex->resp_body = probe;
    proxy_relay_block(ex, o, &u->conn.in, d);
    return 1;
}

/* De-frame the response body in u->conn.in (RFC 9112 §6.3: length,
 * chunked, or to the close) while the client side has room. */
void h1_client_read_body(struct exchange *ex)
{
    struct upstream *u = ex->up;
    struct outbuf o;
    proxy_relay_begin(ex, &o);
    int done = http_body_done(&ex->resp_body);
    if (!done && relay_read_buffer(ex, &o))
        done = http_body_done(&ex->resp_body);
    while (!done && iobuf_len(&u->conn.in) && proxy_relay_room(ex, &o)) {
        size_t used;
        struct slice d;
        enum http_body_rc rc = http_body_read(&ex->resp_body, iobuf_data(&u->conn.in),
                                              iobuf_len(&u->conn.in), &used, &d);
        if (rc == HTTP_BODY_ERROR) {
            proxy_relay_flush(ex, &o);
            log_msg(LOG_WARN, "upstream %s: malformed chunked response body", u->key.host_port);
            proxy_fail(ex, 502, "malformed response body");
            return;
        }
        if (rc == HTTP_BODY_DATA)
            proxy_relay_data(ex, &o, d);
        iobuf_consume(&u->conn.in, used);
        done = rc == HTTP_BODY_DONE || http_body_done(&ex->resp_body);
        if (rc == HTTP_BODY_MORE)
            break;
    }
    proxy_relay_end(ex, &o, done);
}

void h1_client_on_eof(struct exchange *ex, int status)
{
    struct upstream *u = ex->up;
    if (ex->state == EX_RESP_BODY && ex->resp_body.kind == HTTP_BODY_CLOSE && status == UV_EOF) {
        /* RFC 9112 §6.3 rule 8: the close ends the body. Drain what is
         * buffered first (backpressure may have left some). */
        h1_client_read_body(ex);
        if (ex->up != u || ex->fe->closing(ex))
            return;
        if (iobuf_len(&u->conn.in) == 0) {
            ex->resp_body.kind = HTTP_BODY_NONE;
            h1_client_read_body(ex);
        }
        return;
    }
    proxy_on_upstream_eof(ex, status);
}

int h1_client_send(struct upstream *u, struct outbuf *o)
{
    return conn_write(&u->conn, o);
}
