/* Upstream connections and the per-worker keep-alive pool, keyed by
 * origin_key (scheme, host:port, SNI, TLS profile), with TLS sessions
 * resumed per key; getting a connection for an exchange: resolve (forward
 * mode, egress checked), connect, TLS handshake.
 *
 *   new -> (resolve) -> connect -> [TLS] -> busy -> release -> idle in pool -> reuse
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
#include "server/tls.h"
#include "server/origin.h"
#include "server/h2_server.h"

int origin_key_eq(const struct origin_key *a, const struct origin_key *b)
{
    return a->scheme == b->scheme && !strcmp(a->host_port, b->host_port) &&
           (a->scheme == ORIGIN_HTTP ||
            (a->tls == b->tls && a->verify == b->verify && !strcmp(a->sni, b->sni)));
}

static SSL_SESSION *session_of(struct srv_worker *w, const struct origin_key *k)
{
    for (unsigned i = 0; i < ORIGIN_SESSIONS_MAX; i++)
        if (w->sessions[i].session && origin_key_eq(&w->sessions[i].key, k))
            return w->sessions[i].session;
    return NULL;
}

/* Remember the connection's TLS session for the next connection to the
 * same key (TLS 1.3 tickets arrive after the handshake, so this runs when
 * a connection goes back to the pool or closes). */
static void keep_session(struct upstream *u)
{
    if (u->key.scheme != ORIGIN_HTTPS)
        return;
    SSL_SESSION *s = conn_tls_session(&u->conn);
    if (!s)
        return;
    struct srv_worker *w = u->w;
    struct origin_session *slot = NULL;
    for (unsigned i = 0; i < ORIGIN_SESSIONS_MAX && !slot; i++)
        if (w->sessions[i].session && origin_key_eq(&w->sessions[i].key, &u->key))
            slot = &w->sessions[i];
    if (!slot) {
        slot = &w->sessions[w->sessions_next];
        w->sessions_next = (w->sessions_next + 1) % ORIGIN_SESSIONS_MAX;
    }
    tls_session_unref(&slot->session);
    slot->key = u->key;
    slot->session = s;
}

void upstream_sessions_free(struct srv_worker *w)
{
    for (unsigned i = 0; i < ORIGIN_SESSIONS_MAX; i++)
        tls_session_unref(&w->sessions[i].session);
}

int upstream_start_tls(struct upstream *u)
{
    upstream_timer(u, UT_TLS_HANDSHAKE);
    return conn_tls_connect(&u->conn, (SSL_CTX *)u->key.tls, u->key.sni,
                            u->key.verify ? u->key.sni : NULL, session_of(u->w, &u->key));
}

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

/* limits.max_connections reserves two descriptors per client connection
 * (worker.c, connection_cap): itself and one origin connection. An h2
 * client has one origin connection per stream in flight, up to
 * h2.max_concurrent_streams: the first within its reserve, each further
 * one taking a slot of the same count, held until it closes (idle in the
 * pool too), so h2 streams hold no more descriptors than the limit
 * reserves; past it, 503 on that stream, as a new connection gets (attack
 * round 5, finding 5: 3 h2 connections of 100 streams took 281
 * descriptors under a limit of 118 clients). */
static int origin_slot_needed(const struct exchange *ex)
{
    return ex->w->shared && ex->fe == &h2_front;
}

static void release_origin_slot(struct upstream *u)
{
    if (u->slot)
        shared_slot_put(u->w->shared);
    u->slot = 0;
    if (u->reserve)
        h2_origin_reserve_put(u->reserve);
    u->reserve = NULL;
}

void upstream_close(struct upstream *u)
{
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (u->closed)
        return;
    keep_session(u);
    release_origin_slot(u);
    u->closed = 1;
    if (!link_empty(&u->link)) {
        link_remove(&u->link);
        u->w->nidle--;
    }
    u->ex = NULL;
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
    if (u->ex)
        proxy_on_upstream_timeout(u->ex, kind);
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
    case UT_TLS_HANDSHAKE:
        ms = cfg->timeouts.tls_handshake;
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

/* The smallest read from an origin: one page, the iobuf's first size. */
#define UPSTREAM_READ_FLOOR (4 * 1024)

/* How much the next read from the origin may take: about what its client
 * has room for, WRITE_HIGH_WATER less fe->queued (h1: its socket's queue;
 * h2: its stream's share of h2.max_output_buffer), as the power of two at
 * most that, from UPSTREAM_READ_FLOOR to READ_CHUNK. The relay hands a
 * read to the client whole (proxy_relay_block) and stops reading only
 * once the room is spent, so a stream holds its room plus at most the
 * floor, not plus a whole READ_CHUNK; and each size is one of the iobuf's
 * own (4 KiB doubled), so the buffer given away is the read's size. A
 * fast client (h1 with its socket's queue short, a lone h2 stream, a
 * background fetch: internal_front queues nothing) still reads
 * READ_CHUNK. Not for a body read only to be dropped, nor a tunnel
 * (tunnel.c has its own marks). */
static size_t read_size(const struct upstream *u)
{
    const struct exchange *ex = u->ex;
    if (!ex || ex->state == EX_TUNNEL || ex->discard_body)
        return READ_CHUNK;
    size_t queued = ex->fe->queued(ex);
    size_t room = queued < WRITE_HIGH_WATER ? WRITE_HIGH_WATER - queued : 0;
    size_t n = READ_CHUNK;
    while (n > UPSTREAM_READ_FLOOR && n > room)
        n /= 2;
    return n;
}

static void on_room(void *owner, size_t *want, size_t *max)
{
    struct upstream *u = owner;
    size_t n = read_size(u);
    /* An empty buffer larger than a short read (a pooled connection's, or
     * one the response head grew) goes: a buffer given to the client costs
     * all its bytes (h2_stream_queue_heap), not just those read into it. */
    if (n < READ_CHUNK && !iobuf_len(&u->conn.in) && u->conn.in.cap > n)
        iobuf_fini(&u->conn.in);
    *want = n;
    /* a head over limits.response_header_section is refused by the parser
     * (h1_client.c), so in grows by a read at a time */
    *max = iobuf_len(&u->conn.in) + n;
}

static void on_data(void *owner, size_t n)
{
    (void)n;
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (!u->ex) {
        /* Idle in the pool: the origin closed it or sent junk. */
        upstream_close(u);
        return;
    }
    u->got_bytes = 1;
    h1_client_on_data(u->ex);
}

static void on_eof(void *owner, int err)
{
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (!u->ex) {
        upstream_close(u);
        return;
    }
    h1_client_on_eof(u->ex, err);
}

void upstream_resume_read(struct upstream *u)
{
    conn_read(&u->conn, 1);
}

void upstream_pause_read(struct upstream *u)
{
    conn_read(&u->conn, 0);
}

const char *upstream_tls_error(const struct upstream *u)
{
    return conn_tls_error(&u->conn);
}

/* ---- connecting ------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status)
{
    struct upstream *u = req->data;
    if (u->closed)
        return;
    if (!u->ex) {
        upstream_close(u);
        return;
    }
    if (status == 0) {
        u->conn.connected = 1;
        uv_tcp_nodelay(&u->conn.tcp, 1);
        if (u->key.scheme == ORIGIN_HTTPS) {
            if (upstream_start_tls(u) < 0) {
                struct exchange *ex = u->ex;
                log_msg(LOG_ERROR, "upstream %s: cannot start TLS: %s", u->key.host_port,
                        conn_tls_error(&u->conn));
                ex->cache_detail = "tls";
                proxy_fail(ex, 502, "TLS to upstream failed");
            }
            return; /* on_ready goes on */
        }
    }
    proxy_on_connected(u->ex, status);
}

/* The TLS handshake with the origin ended. A certificate that does not
 * verify (unknown CA, wrong name, expired) is never used: 502, and the
 * error log says why (OpenSSL's words for the verify result). */
static void on_ready(void *owner, int err)
{
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    if (u->closed)
        return;
    if (!u->ex) {
        upstream_close(u);
        return;
    }
    struct exchange *ex = u->ex;
    if (err < 0) {
        log_msg(LOG_ERROR, "upstream %s: TLS handshake failed: %s", u->key.host_port,
                conn_tls_error(&u->conn));
        ex->cache_detail = "tls";
        proxy_fail(ex, 502,
                   conn_tls_verify_failed(&u->conn) ? "upstream certificate not accepted"
                                                    : "TLS handshake with upstream failed");
        return;
    }
    proxy_on_connected(ex, 0);
}

/* Where this exchange goes, as the pool keys it: the origin (reverse
 * mode), the reverse idemcache (--peer), or a host from the request. */
static void origin_key_of(struct exchange *ex, struct origin_key *k)
{
    const struct config *cfg = ex->w->cfg;
    const struct tls_contexts *tls = ex->w->shared ? ex->w->shared->tls : NULL;
    memset(k, 0, sizeof *k);
    snprintf(k->host_port, sizeof k->host_port, "%s", ex->up_key);
    k->scheme = ORIGIN_HTTP;
    if (ex->method_connect)
        return;
    const struct config_addr *to = NULL;
    const struct config_tls_client *profile = NULL;
    const SSL_CTX *ctx = NULL;
    if (cfg->mode == MODE_REVERSE && cfg->upstream.tls) {
        to = &cfg->upstream;
        profile = &cfg->upstream_tls;
        ctx = tls ? tls->upstream : NULL;
    } else if (cfg->mode == MODE_FORWARD && cfg->peer.forward && cfg->peer.url.tls) {
        to = &cfg->peer.url;
        profile = &cfg->peer_tls;
        ctx = tls ? tls->peer : NULL;
    } else {
        return;
    }
    k->scheme = ORIGIN_HTTPS;
    k->tls = ctx;
    k->verify = profile->verify;
    snprintf(k->sni, sizeof k->sni, "%s", profile->sni[0] ? profile->sni : to->host);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct upstream *u = req->data;
    if (u->closed || !u->ex) {
        if (res)
            uv_freeaddrinfo(res);
        if (!u->closed)
            upstream_close(u);
        if (--u->handles == 0) {
            conn_fini(&u->conn);
            u->magic = 0;
            free(u);
        }
        return;
    }
    u->handles--;
    if (status < 0 || !res) {
        log_msg(LOG_WARN, "upstream %s: cannot resolve: %s", u->key.host_port, uv_strerror(status));
        proxy_fail(u->ex, 502, "upstream host not found");
        return;
    }
    /* The reverse idemcache behind --peer is ours to name; any other
     * destination is the client's, checked on what it resolved to. */
    struct exchange *ex = u->ex;
    const struct sockaddr *to = res->ai_addr;
    if (!ex->w->cfg->peer.forward || ex->method_connect) {
        enum net_egress v = upstream_pick_address(ex->w, res, &to);
        if (v != NET_EGRESS_ALLOWED) {
            uv_freeaddrinfo(res);
            log_msg(LOG_INFO, "upstream %s: refused, %s", u->key.host_port,
                    v == NET_EGRESS_SELF ? "one of our own sockets" : "a private address");
            proxy_fail(
                ex, 403,
                v == NET_EGRESS_SELF
                    ? "destination is this proxy"
                    : "destination address not allowed (forward.allow_private, forward.allow)");
            return;
        }
    }
    int rc = uv_tcp_connect(&u->connect_req, &u->conn.tcp, to, on_connect);
    uv_freeaddrinfo(res);
    if (rc < 0)
        proxy_on_connected(u->ex, rc);
}

void pool_connect(struct exchange *ex)
{
    struct srv_worker *w = ex->w;
    struct origin_key key;
    origin_key_of(ex, &key);
    if (key.scheme == ORIGIN_HTTPS && !key.tls) {
        log_msg(LOG_ERROR, "upstream %s: https without a TLS context", key.host_port);
        ex->cache_detail = "tls";
        proxy_fail(ex, 502, "TLS to upstream not configured");
        return;
    }
    struct upstream *u = ex->method_connect || ex->upgrade ? NULL : upstream_acquire(w, &key);
    if (u) {
        u->ex = ex;
        ex->up = u;
        proxy_on_connected(ex, 0);
        return;
    }
    struct h2_origin_reserve *reserve = h2_origin_reserve_take(ex);
    int slot = !reserve && origin_slot_needed(ex);
    if (slot && !shared_slot_take(w->shared)) {
        log_msg(LOG_WARN,
                "client %s: h2 stream refused an origin connection, "
                "limits.max_connections (%lu) reached",
                ex->ci->ip, w->shared->max_connections);
        reply_error(ex, 503, "too many connections (limits.max_connections)");
        return;
    }
    u = upstream_new(w, &key);
    if (!u) {
        if (slot)
            shared_slot_put(w->shared);
        if (reserve)
            h2_origin_reserve_put(reserve);
        reply_error(ex, 503, "out of memory");
        return;
    }
    u->slot = slot;
    u->reserve = reserve;
    u->ex = ex;
    ex->up = u;
    ex->state = EX_CONNECTING;
    upstream_timer(u, UT_CONNECT);
    if (w->cfg->mode == MODE_REVERSE) {
        int rc = uv_tcp_connect(&u->connect_req, &u->conn.tcp, (struct sockaddr *)&w->upstream_addr,
                                on_connect);
        if (rc < 0)
            proxy_on_connected(ex, rc);
        return;
    }
    /* Forward mode: resolve host of "host:port" asynchronously. */
    char host[300];
    snprintf(host, sizeof host, "%s", ex->up_key);
    char *colon = strrchr(host, ':');
    const char *port = "80";
    if (colon) {
        *colon = 0;
        port = colon + 1;
    }
    char *h = host;
    if (*h == '[') {
        h++;
        h[strlen(h) - 1] = 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    ex->state = EX_RESOLVING;
    u->handles++;
    int rc = uv_getaddrinfo(&w->loop, &u->resolve_req, on_resolved, h, port, &hints);
    if (rc < 0) {
        u->handles--;
        proxy_fail(ex, 502, "upstream host not found");
    }
}

static const struct conn_cb upstream_conn_cb = {
    .room = on_room,
    .data = on_data,
    .eof = on_eof,
    .written = proxy_upstream_written,
    .ready = on_ready,
};

struct upstream *upstream_new(struct srv_worker *w, const struct origin_key *key)
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
    u->key = *key;
    return u;
}

struct upstream *upstream_acquire(struct srv_worker *w, const struct origin_key *key)
{
    for (struct link *l = w->idle_upstreams.next; l != &w->idle_upstreams; l = l->next) {
        struct upstream *u = container_of(l, struct upstream, link);
        if (!origin_key_eq(&u->key, key))
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
    u->ex = NULL;
    keep_session(u);
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
