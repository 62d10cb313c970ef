/* Workers: one thread and one libuv loop each, with their own SO_REUSEPORT
 * listeners so the kernel spreads connections. Before any of them binds,
 * each address is probed without SO_REUSEPORT, so that a port another
 * process holds is refused instead of shared. The main thread only waits
 * for SIGTERM/SIGINT and tells every worker to drain.
 *
 * Drain: close listeners, close idle clients, let busy ones finish their
 * response with keep-alive off; after timeouts.drain, close the rest. */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "server/h1_server.h"
#include "server/h2_server.h"
#include "rules/memo.h"
#include "server/log.h"

static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int open_listener(struct srv_worker *w, const struct config_addr *a, uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    if (resolve(a->host, a->port, &ss) < 0) {
        log_msg(LOG_ERROR, "listen %s:%d: cannot resolve", a->host, a->port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss,
             ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) <
            0) {
        log_msg(LOG_ERROR, "listen %s:%d: %s", a->host, a->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uv_tcp_init(&w->loop, t);
    t->data = w;
    int rc = uv_tcp_open(t, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 1024, client_accept);
    if (rc < 0) {
        log_msg(LOG_ERROR, "listen %s:%d: %s", a->host, a->port, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* SO_REUSEPORT lets any process of our uid join a listener's group, and
 * the kernel then splits connections between two configs and two
 * origins (issue 12, part 2). A bind without it fails with EADDRINUSE
 * while anyone listens on the address (or on the wildcard of its port),
 * so one such bind, closed at once, tells whether the address is free.
 * SO_REUSEADDR keeps TIME_WAIT leftovers of a previous run from failing
 * it. Why not one socket shared by the workers: libuv accepts until
 * EAGAIN, so a burst would go to whichever worker wakes first, where the
 * kernel's SO_REUSEPORT hash spreads it. What this leaves open: two
 * instances started within the same few system calls, and a program that
 * itself binds with SO_REUSEPORT after us; a restart that keeps the port
 * will hand the listening sockets over rather than bind beside them. */
static int probe_address(const char *what, const struct config_addr *a)
{
    struct sockaddr_storage ss;
    if (resolve(a->host, a->port, &ss) < 0) {
        log_msg(LOG_ERROR, "%s %s:%d: cannot resolve", what, a->host, a->port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss,
             ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) <
            0) {
        int e = errno;
        log_msg(LOG_ERROR, "%s %s:%d: %s%s", what, a->host, a->port, strerror(e),
                e == EADDRINUSE ? " (another process listens there; idemcache does not share it)"
                                : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int probe_addresses(const struct config *cfg)
{
    for (int i = 0; i < cfg->nlisten; i++)
        if (probe_address("listen", &cfg->listen[i]) < 0)
            return -1;
    for (int i = 0; i < cfg->tls.nlisten; i++)
        if (probe_address("tls.listen", &cfg->tls.listen[i]) < 0)
            return -1;
    if (cfg->admin.port && probe_address("admin", &cfg->admin) < 0)
        return -1;
    return 0;
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct srv_worker *w = t->data;
    log_msg(LOG_WARN, "worker %d: drain timeout, closing %s connections", w->id, "remaining");
    while (!link_empty(&w->clients))
        client_close(container_of(w->clients.next, struct client, link));
    internal_abort_all(w);
}

static void on_co_async(uv_async_t *a)
{
    cache_stage_wake(a->data);
}

static void worker_finish(struct srv_worker *w)
{
    if (w->stopped)
        return;
    w->stopped = 1;
    upstream_close_idle(w);
    pthread_mutex_lock(&w->inbox_lock);
    w->inbox_closed = 1; /* no uv_async_send to a closing handle */
    pthread_mutex_unlock(&w->inbox_lock);
    uv_close((uv_handle_t *)&w->co_async, NULL);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
}

void worker_client_gone(struct srv_worker *w)
{
    if (w->draining && link_empty(&w->clients) && !w->background)
        worker_finish(w);
}

static void on_wakeup(uv_async_t *a)
{
    struct srv_worker *w = a->data;
    if (w->draining)
        return;
    w->draining = 1;
    for (int i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], NULL);
    /* Idle connections go now; busy ones after their response. */
    struct link *l = w->clients.next;
    while (l != &w->clients) {
        struct client *c = container_of(l, struct client, link);
        l = l->next;
        if (c->h2) { /* GOAWAY; its streams finish */
            h2_conn_drain(c);
            continue;
        }
        c->keepalive = 0;
        if (c->state != CS_HEAD || iobuf_len(&c->conn.in))
            continue;
        /* between requests; but an answer written whole (a hit) may
         * still be going out to a slow reader: it ends first */
        if (c->conn.write_pending)
            client_close_after_write(c);
        else
            client_close(c);
    }
    uv_timer_start(&w->drain_timer, on_drain_timeout, w->cfg->timeouts.drain, 0);
    worker_client_gone(w);
}

static void worker_main(void *arg)
{
    struct srv_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    internal_free_all(w);
    /* Every handle is closed by now; close the loop to prove it. */
    int rc = uv_loop_close(&w->loop);
    if (rc)
        log_msg(LOG_WARN, "worker %d: loop closed with handles open", w->id);
}

static int worker_init(struct srv_worker *w, int id, const struct config *cfg, struct store *store,
                       struct coalesce *co)
{
    memset(w, 0, sizeof *w);
    w->store = store;
    w->memo = store ? body_memo_new((unsigned)cfg->body_key.memo_entries) : NULL;
    w->co = co;
    w->magic = WORKER_MAGIC;
    w->id = id;
    w->cfg = cfg;
    link_init(&w->clients);
    link_init(&w->idle_upstreams);
    link_init(&w->parked);
    link_init(&w->streamers);
    link_init(&w->internals);
    pthread_mutex_init(&w->inbox_lock, NULL);
    http_request_init(&w->req, w->req_fields, HTTP_FIELDS_MAX);
    w->req_limits = (struct http_limits){cfg->limits.request_line, cfg->limits.header_section,
                                         (unsigned)cfg->limits.header_count};
    w->resp_limits = (struct http_limits){cfg->limits.response_header_section,
                                          cfg->limits.response_header_section, HTTP_FIELDS_MAX};
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    uv_async_init(&w->loop, &w->co_async, on_co_async);
    w->co_async.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    proxy_via_init(w);
    if (cfg->mode == MODE_REVERSE) {
        if (resolve(cfg->upstream.host, cfg->upstream.port, &w->upstream_addr) < 0) {
            log_msg(LOG_ERROR, "upstream %s: cannot resolve", cfg->upstream.host);
            return -1;
        }
        snprintf(w->upstream_key, sizeof w->upstream_key, "%s:%d", cfg->upstream.host,
                 cfg->upstream.port);
    }
    for (int i = 0; i < cfg->nlisten; i++) {
        if (open_listener(w, &cfg->listen[i], &w->listeners[i]) < 0)
            return -1;
        w->nlisteners++;
    }
    for (int i = 0; i < cfg->tls.nlisten; i++) {
        if (open_listener(w, &cfg->tls.listen[i], &w->listeners[w->nlisteners]) < 0)
            return -1;
        w->listener_tls[w->nlisteners++] = 1;
    }
    w->admin_listener = -1;
    if (id == 0 && cfg->admin.port) {
        if (open_listener(w, &cfg->admin, &w->listeners[w->nlisteners]) < 0)
            return -1;
        w->admin_listener = w->nlisteners++;
    }
    return 0;
}

/* Our own sockets as bound (the kernel's view, port 0 resolved), every
 * worker's, and this host's interface addresses: what the forward-mode
 * egress check refuses to connect to. Interfaces added after start are
 * not seen; loopback and unspecified addresses are refused by class. */
/* Each client connection may hold two descriptors (itself and an origin
 * connection). The soft limit is raised toward the hard one first (as
 * HAProxy does); a cap that still does not fit fails as EMFILE instead, so
 * the default is lowered to fit, and a configured value is kept with a
 * warning. Returns the cap in force. */
static unsigned long connection_cap(const struct config *cfg)
{
    unsigned long cap = (unsigned long)cfg->limits.max_connections;
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) < 0 || nofile.rlim_cur == RLIM_INFINITY)
        return cap;
    rlim_t needed = (rlim_t)(2 * cap + 64);
    if (nofile.rlim_cur < needed) {
        struct rlimit raised = nofile;
        raised.rlim_cur =
            nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > needed ? needed : nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            nofile = raised;
    }
    if (nofile.rlim_cur >= needed)
        return cap;
    unsigned long fits = nofile.rlim_cur > 66 ? (unsigned long)(nofile.rlim_cur - 64) / 2 : 1;
    if (cap == CONFIG_MAX_CONNECTIONS_DEFAULT) {
        log_msg(LOG_INFO, "limits.max_connections: %lu (ulimit -n is %llu)", fits,
                (unsigned long long)nofile.rlim_cur);
        return fits;
    }
    log_msg(LOG_WARN, "limits.max_connections %lu needs about %llu descriptors; ulimit -n is %llu",
            cap, (unsigned long long)needed, (unsigned long long)nofile.rlim_cur);
    return cap;
}

static struct srv_shared *shared_new(const struct config *cfg, struct srv_worker *ws, int n)
{
    struct srv_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    atomic_init(&sh->connections, 0);
    sh->self = calloc((size_t)n * (2 * CONFIG_LISTEN_MAX + 1), sizeof *sh->self);
    size_t nself = 0;
    for (int i = 0; sh->self && i < n; i++)
        for (int k = 0; k < ws[i].nlisteners; k++) {
            struct sockaddr_storage ss;
            int len = sizeof ss;
            struct net_endpoint e;
            if (uv_tcp_getsockname(&ws[i].listeners[k], (struct sockaddr *)&ss, &len) < 0 ||
                srv_endpoint_of((struct sockaddr *)&ss, &e) < 0)
                continue;
            size_t j = 0;
            while (j < nself &&
                   !(sh->self[j].port == e.port && net_addr_eq(&sh->self[j].addr, &e.addr)))
                j++;
            if (j == nself)
                sh->self[nself++] = e;
        }
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;
    size_t nlocal = 0;
    if (uv_interface_addresses(&ifs, &nifs) == 0 && nifs > 0) {
        sh->local = calloc((size_t)nifs, sizeof *sh->local);
        for (int i = 0; sh->local && i < nifs; i++) {
            struct net_endpoint e;
            if (srv_endpoint_of((struct sockaddr *)&ifs[i].address.address4, &e) == 0)
                sh->local[nlocal++] = e.addr;
        }
        uv_free_interface_addresses(ifs, nifs);
    }
    if (!sh->self) {
        free(sh->local);
        free(sh);
        return NULL;
    }
    sh->egress = (struct net_egress_policy){
        .self = sh->self,
        .nself = nself,
        .local = sh->local,
        .nlocal = nlocal,
        .allow_private = cfg->forward.allow_private,
        .allow = cfg->forward.allow,
        .nallow = cfg->forward.nallow,
    };
    return sh;
}

static void shared_free(struct srv_shared **sh)
{
    if (!*sh)
        return;
    free((*sh)->self);
    free((*sh)->local);
    free(*sh);
    *sh = NULL;
}

struct signal_ctx {
    struct srv_worker *workers;
    int n;
    uv_signal_t sigterm, sigint, sigusr1;
};

/* SIGUSR1: logrotate has moved the files; write to new ones (as nginx). */
static void on_reopen(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (log_reopen() < 0)
        log_msg(LOG_ERROR, "SIGUSR1: cannot reopen the log files: %s", strerror(errno));
    else
        log_msg(LOG_INFO, "SIGUSR1: log files reopened");
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct signal_ctx *ctx = s->data;
    log_msg(LOG_INFO, "%s: draining", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    for (int i = 0; i < ctx->n; i++)
        uv_async_send(&ctx->workers[i].wakeup);
    /* The handlers stay installed while workers drain, so a second signal
     * is absorbed instead of killing the process mid-response. */
    uv_stop(s->loop);
}

int worker_run_all(const struct config *cfg, const struct tls_contexts *tls)
{
    int n = cfg->workers;
    if (n <= 0) {
        uv_cpu_info_t *ci;
        if (uv_cpu_info(&ci, &n) < 0)
            n = 1;
        else
            uv_free_cpu_info(ci, n);
        if (n > COALESCE_MAX_WORKERS)
            n = COALESCE_MAX_WORKERS;
    }
    if (probe_addresses(cfg) < 0)
        return 1;
    struct srv_worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return 1;
    struct store *store = NULL;
    struct coalesce *co = NULL;
    if (cfg->cache.enabled) {
        store = store_mem_new(cfg->cache.memory_size, (unsigned)cfg->cache.max_variants);
        if (store)
            store_mem_set_eviction_scan(store, (size_t)cfg->cache.eviction_scan);
        co = coalesce_new();
    }
    struct peer_state *handshake = peer_state_new(cfg);
    int started = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        if (worker_init(&ws[i], i, cfg, store, co) < 0) {
            rc = 1;
            n = i + 1;
            break;
        }
    }
    unsigned long max_connections = connection_cap(cfg);
    struct srv_shared *shared = shared_new(cfg, ws, n);
    if (!shared)
        rc = 1;
    else {
        shared->max_connections = max_connections;
        shared->tls = tls;
    }
    for (int i = 0; i < n; i++) {
        ws[i].shared = shared;
        ws[i].peers = ws;
        ws[i].npeers = n;
        ws[i].handshake = handshake;
    }
    uv_loop_t *main_loop = uv_default_loop();
    struct signal_ctx ctx = {.workers = ws, .n = n};
    uv_signal_init(main_loop, &ctx.sigterm);
    uv_signal_init(main_loop, &ctx.sigint);
    uv_signal_init(main_loop, &ctx.sigusr1);
    ctx.sigterm.data = ctx.sigint.data = ctx.sigusr1.data = &ctx;
    if (rc == 0) {
        uv_signal_start(&ctx.sigterm, on_signal, SIGTERM);
        uv_signal_start(&ctx.sigint, on_signal, SIGINT);
        uv_signal_start(&ctx.sigusr1, on_reopen, SIGUSR1);
        for (int i = 0; i < n; i++) {
            uv_thread_create(&ws[i].thread, worker_main, &ws[i]);
            started++;
        }
        /* tls.listen alone is a TLS-only setup: no cleartext listener */
        const struct config_addr *first = cfg->nlisten ? &cfg->listen[0] : &cfg->tls.listen[0];
        log_msg(LOG_INFO, "idemcache listening on %s:%d (%s%d workers, %s mode)", first->host,
                first->port, cfg->nlisten ? "" : "TLS only, ", n,
                cfg->mode == MODE_FORWARD ? "forward" : "reverse");
        for (int i = cfg->nlisten ? 0 : 1; i < cfg->tls.nlisten; i++)
            log_msg(LOG_INFO, "idemcache listening on %s:%d (TLS)", cfg->tls.listen[i].host,
                    cfg->tls.listen[i].port);
        uv_run(main_loop, UV_RUN_DEFAULT);
        for (int i = 0; i < started; i++)
            uv_thread_join(&ws[i].thread);
        started = 0;
        uv_close((uv_handle_t *)&ctx.sigterm, NULL);
        uv_close((uv_handle_t *)&ctx.sigint, NULL);
        uv_close((uv_handle_t *)&ctx.sigusr1, NULL);
        uv_run(main_loop, UV_RUN_DEFAULT);
    } else {
        uv_close((uv_handle_t *)&ctx.sigterm, NULL);
        uv_close((uv_handle_t *)&ctx.sigint, NULL);
        uv_close((uv_handle_t *)&ctx.sigusr1, NULL);
        for (int i = 0; i < n; i++)
            uv_async_send(&ws[i].wakeup);
        for (int i = 0; i < n; i++)
            uv_run(&ws[i].loop, UV_RUN_DEFAULT);
        uv_run(main_loop, UV_RUN_DEFAULT);
    }
    for (int i = 0; i < started; i++)
        uv_thread_join(&ws[i].thread);
    uv_loop_close(main_loop);
    for (int i = 0; i < n; i++) {
        for (size_t k = 0; k < ws[i].inbox_len; k++)
            free(ws[i].inbox[k]);
        free(ws[i].inbox);
        body_memo_free(ws[i].memo);
        upstream_sessions_free(&ws[i]);
        pthread_mutex_destroy(&ws[i].inbox_lock);
    }
    free(ws);
    if (store)
        store->ops->free(store);
    coalesce_free(co);
    peer_state_free(handshake);
    shared_free(&shared);
    if (rc == 0)
        log_msg(LOG_INFO, "stopped");
    return rc;
}
