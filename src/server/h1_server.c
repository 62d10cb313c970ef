/* HTTP/1 toward clients: the front_ops of an HTTP/1 connection (front.h).
 * The pipeline hands over a status, the fields it adds and a body; this
 * writes the status line, the framing, Connection (RFC 9112 §9.3) and the
 * bytes, on the exchange's client connection. */
#include <string.h>
#include "server/server.h"
#include "server/front.h"

/* Connection as this client needs it (RFC 9112 §9.3), and the blank line
 * that ends the head. close: the connection ends after this response. */
static void end_head(struct exchange *ex, struct outbuf *out, int close)
{
    struct client *c = ex->c;
    if (close || !c->keepalive)
        outbuf_addstr(out, "Connection: close\r\n");
    else if (ex->client_minor == 0)
        outbuf_addstr(out, "Connection: keep-alive\r\n");
    outbuf_addstr(out, "\r\n");
}

static void add_length(struct outbuf *out, int64_t length)
{
    if (length < 0)
        return;
    outbuf_addstr(out, "Content-Length: ");
    outbuf_addu64(out, (uint64_t)length);
    outbuf_addstr(out, "\r\n");
}

static void h1_answer(struct exchange *ex, const struct front_answer *a)
{
    struct client *c = ex->c;
    struct outbuf o = {0};
    outbuf_addstatus(&o, a->status, a->reason);
    if (a->type) {
        outbuf_addstr(&o, "Content-Type: ");
        outbuf_addstr(&o, a->type);
        outbuf_addstr(&o, "\r\n");
    }
    add_length(&o, a->length);
    if (a->ours && a->ours->len)
        outbuf_add(&o, a->ours->p, a->ours->len);
    end_head(ex, &o, a->close);
    if (!ex->method_head && a->body && a->length > 0)
        outbuf_add(&o, a->body, (size_t)a->length);
    ex->bytes_out += o.len;
    conn_write(&c->conn, &o);
}

/* One writev: the stored head (or a new status line and the stored
 * fields), ours with the framing, the body segments; zero copy. */
static void h1_object(struct exchange *ex, const struct front_object *f)
{
    struct client *c = ex->c;
    struct cache_object *o = f->obj;
    struct outbuf *after = f->ours;
    add_length(after, f->length);
    end_head(ex, after, 0);
    uint64_t body = f->with_body && f->length > 0 ? (uint64_t)f->length : 0;
    if (!f->status) {
        ex->bytes_out += o->head_len - f->omit.len + after->len + body;
        conn_write_object(&c->conn, o, f->omit, after, f->with_body);
        return;
    }
    /* only a 206 replaces the stored status line today */
    static const char partial[] = "HTTP/1.1 206 Partial Content\r\n";
    ex->bytes_out += sizeof partial - 1 + o->head_len - f->omit.len + after->len + body;
    conn_write_object_range(&c->conn, o, partial, f->omit, after, f->first, body);
}

static void h1_interim(struct exchange *ex, int status)
{
    struct client *c = ex->c;
    struct outbuf o = {0};
    outbuf_addstatus(&o, status, status == 100 ? SLICE_LIT("Continue") : SLICE_LIT("Early Hints"));
    outbuf_addstr(&o, "\r\n");
    ex->bytes_out += o.len;
    conn_write(&c->conn, &o);
}

static void h1_abort(struct exchange *ex)
{
    struct client *c = ex->c;
    c->keepalive = 0;
    client_close_after_write(c);
}

const struct front_ops h1_front = {
    .name = "http/1.1",
    .answer = h1_answer,
    .object = h1_object,
    .interim = h1_interim,
    .abort = h1_abort,
};
