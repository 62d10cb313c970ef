/* Raw byte tunnels after CONNECT (RFC 9110 §9.3.6) or a 101 Switching
 * Protocols (RFC 9110 §7.8): copy both ways with backpressure, pass each
 * half-close on, close when both directions ended. */
#include "server/server.h"
#include "server/log.h"

static void relay(struct iobuf *from, uv_stream_t *to, size_t *pending, void (*done)(void *, int),
                  void *owner)
{
    if (iobuf_len(from) == 0)
        return;
    struct outbuf o = {0};
    outbuf_add(&o, iobuf_data(from), iobuf_len(from));
    iobuf_consume(from, iobuf_len(from));
    srv_write(to, &o, pending, done, owner);
}

static void tunnel_write_to_up_done(void *owner, int status)
{
    struct upstream *u = owner;
    if (u->closed || !u->c)
        return;
    if (status < 0) {
        client_close(u->c);
        return;
    }
    if (u->write_pending <= WRITE_LOW_WATER)
        client_resume_read(u->c);
}

void tunnel_on_client_data(struct client *c)
{
    struct upstream *u = c->ex->up;
    if (!u)
        return;
    relay(&c->in, (uv_stream_t *)&u->tcp, &u->write_pending, tunnel_write_to_up_done, u);
    upstream_timer(u, UT_IDLE);
    if (u->write_pending >= WRITE_HIGH_WATER)
        client_pause_read(c);
}

void tunnel_on_upstream_data(struct client *c)
{
    struct upstream *u = c->ex->up;
    relay(&u->in, (uv_stream_t *)&c->tcp, &c->write_pending, client_write_done, c);
    upstream_timer(u, UT_IDLE);
    if (c->write_pending >= WRITE_HIGH_WATER)
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

static void on_up_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
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
        uv_shutdown(&u->shutdown_req, (uv_stream_t *)&u->tcp, on_up_shutdown);
    } else {
        ex->tun_up_eof = 1;
        uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_client_shutdown);
    }
    if (ex->tun_client_eof && ex->tun_up_eof)
        client_close(c);
}
