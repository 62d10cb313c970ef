/* Raw byte tunnels after CONNECT (RFC 9110 §9.3.6) or a 101 Switching
 * Protocols (RFC 9110 §7.8): copy both ways with backpressure, pass each
 * half-close on, close when both directions ended. HTTP/1 only: the
 * pipeline's calls (tunnel_start, tunnel_upstream_*, tunnel_close) take
 * an exchange whose front is h1_front, its fe_ctx the client. */
#include "server/h1_server.h"
#include "server/log.h"

static void relay(struct iobuf *from, struct conn *to)
{
    if (iobuf_len(from) == 0)
        return;
    struct outbuf o = {0};
    outbuf_add(&o, iobuf_data(from), iobuf_len(from));
    iobuf_consume(from, iobuf_len(from));
    conn_write(to, &o);
}

void tunnel_on_client_data(struct client *c)
{
    struct upstream *u = c->ex->up;
    if (!u)
        return;
    relay(&c->conn.in, &u->conn);
    upstream_timer(u, UT_IDLE);
    if (u->conn.write_pending >= WRITE_HIGH_WATER)
        client_pause_read(c);
}

void tunnel_on_upstream_data(struct client *c)
{
    struct upstream *u = c->ex->up;
    relay(&u->conn.in, &c->conn);
    upstream_timer(u, UT_IDLE);
    if (c->conn.write_pending >= WRITE_HIGH_WATER)
        upstream_pause_read(u);
}

void tunnel_begin(struct client *c)
{
    struct exchange *ex = c->ex;
    ex->state = EX_TUNNEL;
    c->state = CS_TUNNEL;
    client_timer(c, 0);
    upstream_timer(ex->up, UT_IDLE);
    tunnel_on_client_data(c);
    tunnel_on_upstream_data(c);
    if (c->closed)
        return;
    client_resume_read(c);
    upstream_resume_read(ex->up);
}

void tunnel_on_eof(struct client *c, int from_client)
{
    struct exchange *ex = c->ex;
    struct upstream *u = ex->up;
    if (!u) {
        client_close(c);
        return;
    }
    if (from_client) {
        ex->tun_client_eof = 1;
        conn_shutdown(&u->conn, NULL);
    } else {
        ex->tun_up_eof = 1;
        conn_shutdown(&c->conn, NULL);
    }
    if (ex->tun_client_eof && ex->tun_up_eof)
        client_close(c);
}

/* ---- from the pipeline -------------------------------------------------- */

static struct client *tunnel_client(struct exchange *ex)
{
    ASSERT(ex->fe == &h1_front);
    struct client *c = ex->fe_ctx;
    CHECK_MAGIC(c, CLIENT_MAGIC);
    return c;
}

void tunnel_start(struct exchange *ex)
{
    tunnel_begin(tunnel_client(ex));
}

void tunnel_upstream_data(struct exchange *ex)
{
    tunnel_on_upstream_data(tunnel_client(ex));
}

void tunnel_upstream_eof(struct exchange *ex)
{
    tunnel_on_eof(tunnel_client(ex), 0);
}

void tunnel_upstream_drained(struct exchange *ex)
{
    client_resume_read(tunnel_client(ex));
}

void tunnel_close(struct exchange *ex)
{
    client_close(tunnel_client(ex));
}
