/* Upstream connections and the per-worker keep-alive pool.
 *
 *   new -> (resolve) -> connect -> busy -> release -> idle in pool -> reuse
 *                                      \-> close (error, close-delimited, not reusable)
 *
 * A connection goes back to the pool only when its response was read to
 * the exact end, the request was sent in full, and neither side said close.
 * An idle pooled connection that reads anything or EOF is closed. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"

static void on_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (--u->handles > 0)
        return;
    conn_fini(&u->conn);
    u->magic = 0;
    free(u);
}

void upstream_close(struct upstream *u)
{
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (u->closed)
        return;
    u->closed = 1;
    if (!link_empty(&u->link)) {
        link_remove(&u->link);
        u->w->nidle--;
    }
    u->c = NULL;
    conn_close(&u->conn, on_closed);
    uv_close((uv_handle_t *)&u->timer, on_closed);
}

void upstream_close_idle(struct srv_worker *w)
{
    while (!link_empty(&w->idle_upstreams))
        upstream_close(container_of(w->idle_upstreams.next, struct upstream, link));
}

static void on_timer(uv_timer_t *t)
{
    struct upstream *u = t->data;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    enum upstream_timer kind = u->timer_kind;
    u->timer_kind = UT_NONE;
    if (u->c)
        proxy_on_upstream_timeout(u->c, kind);
    else
        upstream_close(u);
}

void upstream_timer(struct upstream *u, enum upstream_timer kind)
{
    const struct config *cfg = u->w->cfg;
    uint64_t ms = 0;
    switch (kind) {
    case UT_NONE:
        break;
    case UT_CONNECT:
        ms = cfg->timeouts.upstream_connect;
        break;
    case UT_FIRST_BYTE:
        ms = cfg->timeouts.upstream_first_byte;
        break;
    case UT_IDLE:
        ms = cfg->timeouts.upstream_idle;
        break;
    case UT_POOL:
        ms = cfg->timeouts.upstream_keepalive;
        break;
    }
    u->timer_kind = kind;
    if (ms)
        uv_timer_start(&u->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&u->timer);
}

static void on_room(void *owner, size_t *want, size_t *max)
{
    struct upstream *u = owner;
    *want = READ_CHUNK;
    *max = iobuf_len(&u->conn.in) + READ_CHUNK;
    if (*max < u->w->cfg->limits.response_header_section + 4096)
        *max = u->w->cfg->limits.response_header_section + 4096;
}

static void on_data(void *owner, size_t n)
{
    (void)n;
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (!u->c) {
        /* Idle in the pool: the origin closed it or sent junk. */
        upstream_close(u);
        return;
    }
    u->got_bytes = 1;
    proxy_on_upstream_data(u->c);
}

static void on_eof(void *owner, int err)
{
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (!u->c) {
        upstream_close(u);
        return;
    }
    proxy_on_upstream_eof(u->c, err);
}

void upstream_resume_read(struct upstream *u)
{
    conn_read(&u->conn, 1);
}

void upstream_pause_read(struct upstream *u)
{
    conn_read(&u->conn, 0);
}

static const struct conn_cb upstream_conn_cb = {
    .room = on_room,
    .data = on_data,
    .eof = on_eof,
    .written = proxy_upstream_written,
};

struct upstream *upstream_new(struct srv_worker *w, const char *key)
{
    struct upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->magic = UPSTREAM_MAGIC;
    u->w = w;
    link_init(&u->link);
    conn_init(&u->conn, &w->loop, &upstream_conn_cb, u);
    uv_timer_init(&w->loop, &u->timer);
    u->timer.data = u->connect_req.data = u->resolve_req.data = u;
    u->handles = 2;
    snprintf(u->key, sizeof u->key, "%s", key);
    return u;
}

struct upstream *upstream_acquire(struct srv_worker *w, const char *key)
{
    for (struct link *l = w->idle_upstreams.next; l != &w->idle_upstreams; l = l->next) {
        struct upstream *u = container_of(l, struct upstream, link);
        if (strcmp(u->key, key) != 0)
            continue;
        link_remove(&u->link);
        w->nidle--;
        upstream_timer(u, UT_NONE);
        u->reused = 1;
        u->got_bytes = 0;
        return u;
    }
    return NULL;
}

void upstream_release(struct upstream *u)
{
    struct srv_worker *w = u->w;
    u->c = NULL;
    if (w->draining || iobuf_len(&u->conn.in) || u->conn.write_pending ||
        w->nidle >= w->cfg->limits.upstream_idle_per_worker) {
        upstream_close(u);
        return;
    }
    iobuf_consume(&u->conn.in, 0);
    link_insert(&w->idle_upstreams, &u->link);
    w->nidle++;
    upstream_timer(u, UT_POOL);
    /* Keep reading so an origin-side close is noticed while idle. */
    upstream_resume_read(u);
}

int srv_endpoint_of(const struct sockaddr *sa, struct net_endpoint *e)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        net_addr_from_ipv4(&e->addr, (const uint8_t *)&in->sin_addr);
        e->port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        net_addr_from_ipv6(&e->addr, in6->sin6_addr.s6_addr);
        e->port = ntohs(in6->sin6_port);
        return 0;
    }
    return -1;
}

/* Judged on the resolved address, never on the name: "localhost", a DNS
 * name pointing at 127.0.0.1, "127.1" or "[::ffff:127.0.0.1]" all end
 * here as the loopback address they are. */
enum net_egress upstream_pick_address(const struct srv_worker *w, const struct addrinfo *res,
                                      const struct sockaddr **out)
{
    enum net_egress why = NET_EGRESS_PRIVATE;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct net_endpoint dst;
        if (srv_endpoint_of(ai->ai_addr, &dst) < 0)
            continue;
        enum net_egress v = net_egress_decide(&w->shared->egress, &dst);
        if (v == NET_EGRESS_ALLOWED) {
            *out = ai->ai_addr;
            return v;
        }
        if (v == NET_EGRESS_SELF)
            why = v;
    }
    return why;
}
