/* The request pipeline: route a parsed request to an upstream, stream the
 * body each way with framing re-done, relay the response, and decide what
 * happens to the upstream connection afterwards; the client's side is its
 * protocol's (front_ops: answer, head, done, req_flow, ...). The upstream
 * connection comes from pool.c (resolve, connect, TLS); the HTTP/1 wire
 * toward it is h1_client.c's.
 *
 *   exchange_begin -> pool_connect -> send head -> pump body ->
 *   response head -> pump response body -> finish (pool or close, log)
 *
 * RFC 9110 §7.6 (hop-by-hop, Via), RFC 9112 §3.2 (target forms, Host),
 * §6 (framing), §9.6 (closing), RFC 7239 (Forwarded). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "server/server.h"
#include "server/log.h"
#include "http/fields.h"

/* log.level: debug: what the cache decided for this exchange and why,
 * one line each; the key as a hash, so a line can be matched to a PURGE
 * without printing what clients asked for twice. */
static void log_decision(struct exchange *ex)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < ex->cache_key_len; i++)
        h = (h ^ (unsigned char)ex->cache_key[i]) * 1099511628211ULL;
    char key[20] = "-", rule[16] = "none";
    if (ex->cache_key)
        snprintf(key, sizeof key, "%016llx", (unsigned long long)h);
    if (ex->rule_no)
        snprintf(rule, sizeof rule, "%d", ex->rule_no);
    const char *verdict = ex->fwd ? ex->fwd : ex->cache_key ? "hit" : "none";
    static const char *const conn[] = {"not contacted", "new connection", "reused connection"};
    log_msg(LOG_DEBUG, "%.*s %.*s: key %s, rule %s, cache %s%s%s%s%s, status %d, upstream %s",
            (int)ex->method.len, ex->method.p, (int)ex->target.len, ex->target.p, key, rule,
            ex->fwd ? "fwd=" : "", verdict, ex->said_stored ? " stored" : "",
            ex->cache_detail ? " detail=" : "", ex->cache_detail ? ex->cache_detail : "",
            ex->status, conn[ex->up_conn]);
}

void proxy_log_exchange(struct exchange *ex)
{
    if (log_debug_enabled())
        log_decision(ex);
    if (!log_access_enabled())
        return;
    struct access_entry e = {
        .method = ex->method,
        .target = ex->target,
        .client = (struct slice){ex->ci->ip, strlen(ex->ci->ip)},
        .status = ex->status,
        .bytes_in = ex->bytes_in,
        .bytes_out = ex->bytes_out,
        .upstream_ms =
            ex->t_up_start
                ? (double)((ex->t_up_end ? ex->t_up_end : uv_hrtime()) - ex->t_up_start) / 1e6
                : -1,
        .total_ms = ex->t_start ? (double)(uv_hrtime() - ex->t_start) / 1e6 : 0,
    };
    log_access(&e);
}

/* Answer with an error of our own. Always closes the client afterwards:
 * the request body may be unread, and the state of the peer is unknown. */
static void fail(struct exchange *ex, int status, const char *detail)
{
    if (ex->up) {
        upstream_close(ex->up);
        ex->up = NULL;
    }
    if ((status == 502 || status == 504) && cache_stage_serve_stale_on_error(ex, status)) {
        /* stale-if-error (RFC 5861 §4): the stored copy went out instead */
        ex->t_up_end = uv_hrtime();
        proxy_done(ex, ex->req_done ? FRONT_DONE_NEXT : FRONT_DONE_BODY_UNREAD);
        return;
    }
    if (ex->resp_started) {
        log_msg(LOG_WARN, "%.*s %.*s: %s after response start; closing", (int)ex->method.len,
                ex->method.p, (int)ex->target.len, ex->target.p, detail);
        ex->t_up_end = uv_hrtime();
        proxy_log_exchange(ex);
        exchange_done(ex);
        ex->fe->abort(ex);
        return;
    }
    reply_error(ex, status, detail);
}

void proxy_fail(struct exchange *ex, int status, const char *detail)
{
    fail(ex, status, detail);
}

void proxy_upstream_written(void *owner, int status)
{
    struct upstream *u = owner;
    CHECK_MAGIC(u, UPSTREAM_MAGIC);
    struct exchange *ex = u->ex;
    if (!ex || u->closed)
        return;
    if (status < 0) {
        /* The origin went away while we sent; its response (if any) or the
         * EOF will arrive on the read side. A tunnel has nothing to wait for. */
        if (ex->state == EX_TUNNEL)
            tunnel_close(ex);
        return;
    }
    if (u->conn.write_pending <= WRITE_LOW_WATER)
        proxy_upstream_drained(ex);
}

static int up_write(struct exchange *ex, struct outbuf *o)
{
    return h1_client_send(ex->up, o);
}

/* ---- Via ------------------------------------------------------------- */

/* RFC 9110 §7.6.3: each hop appends its own entry; ours is named by
 * cache.name (as in Cache-Status), so a forward and a reverse idemcache
 * named apart show as two hops, not one name twice. A pseudonym is a
 * token: a name with ':' or '/' (sf-token allows them) would read as a
 * port or a protocol, and "idemcache" stands in for it. */
void proxy_via_init(struct srv_worker *w)
{
    const char *name = w->cfg->cache.name;
    if (!name[0] || strpbrk(name, ":/"))
        name = "idemcache";
    int n = snprintf(w->via, sizeof w->via, "1.1 %s", name);
    w->via_len = n > 0 && (size_t)n < sizeof w->via ? (size_t)n : 0;
}

void proxy_add_via(const struct srv_worker *w, int minor, struct outbuf *o)
{
    char v[sizeof w->via];
    memcpy(v, w->via, w->via_len);
    if (!minor)
        v[2] = '0'; /* "1.0 name": the message came as HTTP/1.0 */
    outbuf_addfield(o, SLICE_LIT("Via"), (struct slice){v, w->via_len});
}

/* ---- request head ---------------------------------------------------- */

/* X-Forwarded-For and Forwarded are lists: the client's elements are kept
 * and ours, the last, is the one an origin trusts (RFC 7239 §4). The
 * X-Forwarded-Proto a client sends is dropped (claims_scheme): it is
 * one value, and a client on cleartext must not claim https to an origin
 * that decides redirects or cookie flags by it. The proto we send is the
 * scheme the request is keyed under (srv_request_scheme), so a stored
 * answer always matches the proto the origin was told. */
static void add_forwarding_fields(struct exchange *ex, const struct http_request *r,
                                  struct outbuf *o)
{
    const struct config *cfg = ex->w->cfg;
    const char *ip = ex->ci->ip;
    /* The scheme the request is keyed under, not the listener's transport:
     * a forward proxy keys `GET http://...` by its target even over TLS, and
     * the answer made for that proto answers that key (finding 2). */
    const char *proto = cache_scheme_name(srv_request_scheme(ex, r));
    struct outbuf v = {0}; /* a field's value */
    if (cfg->proxy.x_forwarded_for) {
        for (unsigned i = 0; i < r->nfields; i++)
            if (r->fields[i].id == HF_X_FORWARDED_FOR && r->fields[i].value.len) {
                outbuf_addslice(&v, r->fields[i].value);
                outbuf_addstr(&v, ", ");
            }
        outbuf_addstr(&v, ip);
        h1_client_field(o, SLICE_LIT("X-Forwarded-For"), (struct slice){v.p, v.len});
        v.len = 0;
    }
    if (cfg->proxy.forwarded) {
        /* A client's line is kept only when well-formed: one with an open
         * quoted-string would swallow our element, the one an origin
         * trusts (finding 3). Each kept line is a whole list, so joined
         * they are one. */
        for (unsigned i = 0; i < r->nfields; i++)
            if (r->fields[i].id == HF_FORWARDED &&
                http_forwarded_check(r->fields[i].value) == HTTP_FORWARDED_WELL_FORMED) {
                outbuf_addslice(&v, r->fields[i].value);
                outbuf_addstr(&v, ", ");
            }
        /* RFC 7239 §6: IPv6 addresses are quoted and bracketed. */
        if (strchr(ip, ':'))
            outbuf_printf(&v, "for=\"[%s]\";proto=%s", ip, proto);
        else
            outbuf_printf(&v, "for=%s;proto=%s", ip, proto);
        h1_client_field(o, SLICE_LIT("Forwarded"), (struct slice){v.p, v.len});
        v.len = 0;
    }
    free(v.p);
    if (cfg->proxy.x_forwarded_proto)
        h1_client_field(o, SLICE_LIT("X-Forwarded-Proto"), (struct slice){proto, strlen(proto)});
    if (cfg->proxy.via)
        proxy_add_via(ex->w, r->minor, o);
}

/* The fields an origin reads the client's scheme from: ours
 * (X-Forwarded-Proto, Forwarded proto=) and the siblings origins read
 * before it (Rack: X-Forwarded-Ssl, X-Forwarded-Scheme; IIS/ARR:
 * Front-End-Https). A client's own are dropped so that a cleartext client
 * cannot claim https (finding 5). */
static int claims_scheme(struct slice name)
{
    return slice_case_eq(name, "x-forwarded-proto") || slice_case_eq(name, "x-forwarded-ssl") ||
           slice_case_eq(name, "x-forwarded-scheme") || slice_case_eq(name, "front-end-https");
}

/* The Host the origin gets (README, "Configuration": proxy.host). A
 * reverse proxy chooses: the client's (Varnish), the upstream's (nginx's
 * default), or a fixed name for an origin behind name-based hosting. A
 * forward proxy has no choice: RFC 9112 §3.2.2 wants the authority of the
 * absolute URI. Only the wire changes; the cache key keeps the client's. */
static void add_origin_host(const struct config *cfg, const struct http_request *r,
                            struct outbuf *o)
{
    enum config_origin_host mode = cfg->mode == MODE_REVERSE ? cfg->proxy.host : ORIGIN_HOST_CLIENT;
    if (mode == ORIGIN_HOST_FIXED) {
        outbuf_addstr(o, cfg->proxy.host_value);
    } else if (mode == ORIGIN_HOST_CLIENT && r->form == HTTP_TARGET_ABSOLUTE) {
        outbuf_addslice(o, r->authority);
    } else if (mode == ORIGIN_HOST_CLIENT && r->host.len) {
        outbuf_addslice(o, r->host);
    } else {
        /* upstream, and an HTTP/1.0 client that sent no Host */
        char up[300];
        /* RFC 9110 §4.2.2: an https URI's default port is 443 */
        config_addr_authority(&cfg->upstream, cfg->upstream.tls ? 443 : 80, up, sizeof up);
        outbuf_addstr(o, up);
    }
}

/* `body`: the request's content, read ahead whole, sent right behind the
 * head with its length (NULL: the body, if any, follows framed as the
 * request says). */
static void build_request_head(struct exchange *ex, const struct http_request *r,
                               const struct outbuf *body)
{
    const struct config *cfg = ex->w->cfg;
    struct outbuf *o = &ex->up_head;
    /* The target as sent, computed once: the peer handshake signs exactly
     * these bytes (issue 10, finding 12). */
    struct outbuf target = {0};
    if (r->form == HTTP_TARGET_ABSOLUTE) {
        /* RFC 9112 §3.2.2: origin-form toward the origin, Host from the URI;
         * an empty path is "/" (RFC 9112 §3.2.1), so http://h?x=1 is /?x=1. */
        if (r->path.len == 0 || r->path.p[0] != '/')
            outbuf_addstr(&target, "/");
        outbuf_addslice(&target, r->path);
    } else {
        outbuf_addslice(&target, r->target);
    }
    struct outbuf host = {0};
    add_origin_host(cfg, r, &host);
    h1_client_request_line(o, r->method, (struct slice){target.p, target.len},
                           (struct slice){host.p, host.len});
    free(host.p);
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct http_field *f = &r->fields[i];
        if (f->id == HF_HOST || f->id == HF_EXPECT ||
            http_is_hop_by_hop(f, r->fields, r->nfields, r->conn_flags))
            continue;
        if ((cfg->proxy.x_forwarded_for && f->id == HF_X_FORWARDED_FOR) ||
            (cfg->proxy.forwarded && f->id == HF_FORWARDED) || claims_scheme(f->name))
            continue;
        /* A cached Connect call is stored as identity and served to any
         * client (all accept identity, connect-protocol.md): ask for it. */
        if (ex->rpc && slice_case_eq(f->name, "accept-encoding"))
            continue;
        if (peer_stage_skip_field(ex, f))
            continue;
        h1_client_field(o, f->name, f->value);
    }
    add_forwarding_fields(ex, r, o);
    cache_stage_upstream_fields(ex, o);
    int framed = peer_stage_upstream_fields(ex, r, (struct slice){target.p, target.len}, o);
    free(target.p);
    if (framed)
        return; /* the peer handshake wrote the framing and the body */
    if (ex->upgrade) {
        h1_client_field(o, SLICE_LIT("Connection"), SLICE_LIT("upgrade"));
        for (unsigned i = 0; i < r->nfields; i++)
            if (r->fields[i].id == HF_UPGRADE)
                h1_client_field(o, SLICE_LIT("Upgrade"), r->fields[i].value);
    }
    if (body) {
        h1_client_end_head(o, HTTP_BODY_LENGTH, body->len);
        if (body->len) /* an empty body read ahead has no memory: p is NULL */
            outbuf_add(o, body->p, body->len);
        return;
    }
    /* a body of unknown length (h2 without content-length) goes chunked */
    h1_client_end_head(o, r->body == HTTP_BODY_STREAM ? HTTP_BODY_CHUNKED : r->body,
                       r->content_length);
}

/* The port of a CONNECT authority-form "host:port" or "[v6]:port"
 * (RFC 9112 §3.2.3: the port is required); -1 when absent or not 1..65535. */
static int authority_port(struct slice a)
{
    const char *colon = a.len ? memrchr(a.p, ':', a.len) : NULL;
    if (!colon || colon == a.p || (memchr(a.p, ']', a.len) && colon[-1] != ']'))
        return -1;
    size_t n = a.len - (size_t)(colon + 1 - a.p);
    if (n == 0 || n > 5)
        return -1;
    int port = 0;
    for (size_t i = 1; i <= n; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            return -1;
        port = port * 10 + (colon[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* ex->up_key for a destination the request names: "host:port", owned. */
static void own_up_key(struct exchange *ex, struct slice host, int port)
{
    size_t cap = host.len + sizeof ":65535";
    if (cap > sizeof ex->w->upstream_key)
        cap = sizeof ex->w->upstream_key; /* as long as an upstream's own key */
    ex->up_key = ex->up_key_own = malloc(cap);
    if (port)
        snprintf(ex->up_key_own, cap, "%.*s:%d", (int)host.len, host.p, port);
    else
        snprintf(ex->up_key_own, cap, "%.*s", (int)host.len, host.p);
}

/* Which upstream serves this request: "host:port" into ex->up_key.
 * Returns 0, or an HTTP status with the reason in *why (README "Errors"). */
static int route(struct exchange *ex, const struct http_request *r, const char **why)
{
    const struct config *cfg = ex->w->cfg;
    if (cfg->mode == MODE_REVERSE) {
        *why = "CONNECT sent to a reverse proxy";
        if (ex->method_connect)
            return 405;
        ex->up_key = ex->w->upstream_key;
        return 0;
    }
    *why = "a forward proxy needs an absolute target (http://host/path)";
    if (cfg->peer.forward && !ex->method_connect) {
        if (r->form != HTTP_TARGET_ABSOLUTE)
            return 400;
        /* everything we cannot answer goes to the reverse idemcache */
        const char *peer = cfg->peer.url.host;
        own_up_key(ex, (struct slice){peer, strlen(peer)}, cfg->peer.url.port);
        return 0;
    }
    if (ex->method_connect) {
        /* RFC 9110 §9.3.6: a proxy may restrict the ports it tunnels to;
         * anything but TLS on 443 reaches services we have no business with */
        int port = authority_port(r->authority);
        *why = "CONNECT target without a valid port";
        if (port <= 0)
            return 400;
        unsigned i = 0;
        while (i < cfg->forward.nconnect_ports && cfg->forward.connect_ports[i] != port)
            i++;
        *why = "CONNECT port not in forward.connect_ports";
        if (i == cfg->forward.nconnect_ports)
            return 403;
        own_up_key(ex, r->authority, 0);
        return 0;
    }
    if (r->form != HTTP_TARGET_ABSOLUTE)
        return 400; /* a forward proxy needs to know where to go */
    *why = "https:// target (use CONNECT)";
    if (!slice_case_eq(r->scheme, "http"))
        return 501;
    struct slice a = r->authority;
    const char *colon = a.len && a.p[a.len - 1] != ']' ? memrchr(a.p, ':', a.len) : NULL;
    if (colon && colon[-1] != ']' && memchr(a.p, ']', a.len))
        colon = NULL;
    own_up_key(ex, a, colon ? 0 : 80);
    return 0;
}

/* The exchange is answered (from the store, by admin, or the origin's
 * response relayed whole): log it, and the protocol goes on (h1: the next
 * request or the close; h2: the stream ends). */
void proxy_done(struct exchange *ex, enum front_done how)
{
    proxy_log_exchange(ex);
    exchange_done(ex);
    ex->fe->done(ex, how);
}

static void run_stages(struct exchange *ex);
static void pump_request_body(struct exchange *ex);

void exchange_begin(struct exchange *ex)
{
    ex->t_start = uv_hrtime();
    run_stages(ex);
}

void proxy_restart(struct exchange *ex)
{
    exchange_restart(ex);
    run_stages(ex);
}

/* Let go of the request's bytes the protocol holds: its head if still
 * there, and with `body` the body bytes read ahead. Once gone they are
 * gone: a restart of the same request consumes nothing again. */
void proxy_consume_request(struct exchange *ex, int body)
{
    ex->fe->req_consume(ex, body ? ex->col.scanned : 0);
    if (body) {
        ex->body_in += ex->col.scanned;
        ex->bytes_in += ex->col.scanned;
        ex->col.scanned = 0;
    }
}

void exchange_req_data(struct exchange *ex)
{
    if (ex->req_phase == EX_BODY_COLLECT)
        collect_continue(ex);
    else if (ex->req_phase == EX_BODY_FORWARD)
        pump_request_body(ex);
}

/* The pipeline for the exchange's own request. Its head and any body read
 * ahead (ex->col.scanned bytes) may still be held by the protocol (h1: at
 * the front of its buffer); a request started again (woken from parking)
 * has let go of them, its body read ahead kept in ex->col.body. */
static void run_stages(struct exchange *ex)
{
    const struct config *cfg = ex->w->cfg;
    const struct http_request *r = ex->req; /* the peer stage may replace it */
    ex->method_head = slice_eq(r->method, SLICE_LIT("HEAD"));
    ex->method_connect = slice_eq(r->method, SLICE_LIT("CONNECT"));
    ex->client_minor = r->minor;
    /* nginx's $request_length: the bytes received, head and body as
     * framed; a reference a peer expanded counts as the reference */
    ex->bytes_in = r->head_len + ex->body_in;
    ex->upgrade = r->has_upgrade && (r->conn_flags & HTTP_CONN_UPGRADE) && r->minor >= 1;
    ex->fe->req_flow(ex, FRONT_FLOW_WAIT); /* the head is read: no request timer */
    if (ex->ci->admin) {
        admin_handle(ex, r);
        return;
    }

    const char *why = NULL;
    int rc = route(ex, r, &why);
    if (rc) {
        log_msg(LOG_INFO, "client %s: %d %s: %s", ex->ci->ip, rc, reply_reason(rc), why);
        reply_error(ex, rc, why);
        return;
    }
    if (cfg->limits.request_body && r->body == HTTP_BODY_LENGTH &&
        r->content_length > cfg->limits.request_body) {
        reply_error(ex, 413, "request body exceeds limits.request_body");
        return;
    }
    enum peer_request_verdict peer = peer_stage_request(ex, r);
    if (peer == PEER_REQ_ANSWERED)
        return;
    if (peer == PEER_REQ_ANSWERED_KEEP) {
        /* Answered. Only a request without a body may keep the connection:
         * an unread body would be parsed as the next request. */
        proxy_consume_request(ex, 0);
        proxy_done(ex, r->body != HTTP_BODY_NONE ? FRONT_DONE_BODY_UNREAD : FRONT_DONE_NEXT);
        return;
    }
    if (r != ex->req) {
        /* a peer's reference expanded into its request, body and all */
        r = ex->req;
        if (cfg->limits.request_body && r->content_length > cfg->limits.request_body) {
            reply_error(ex, 413, "request body exceeds limits.request_body");
            return;
        }
    }
    enum cache_request_verdict cached =
        peer == PEER_REQ_READ_BODY ? CACHE_REQ_READ_BODY : cache_stage_request(ex, r);
    if (cached == CACHE_REQ_READ_BODY) {
        /* Read the body ahead to key it; the head stays where it is. */
        ex->req_phase = EX_BODY_COLLECT;
        ex->fe->req_flow(ex, FRONT_FLOW_READ);
        return;
    }
    int body_read = ex->collected == COLLECT_COMPLETE;
    if (cached == CACHE_REQ_PARKED) {
        /* Parked behind another request's fetch of the same key: woken,
         * it starts again from the exchange (proxy_restart), its body read
         * ahead kept; what the client pipelined behind it stays. */
        proxy_consume_request(ex, body_read);
        return;
    }
    /* A body read ahead whole goes from memory on a miss: take it before
     * it is let go of (a peer's forward side sends its own, peer_body). */
    struct outbuf body = {0};
    int from_memory = 0;
    if (cached == CACHE_REQ_FORWARD && body_read && r->body != HTTP_BODY_NONE && !ex->peer_inline &&
        !ex->method_connect && !ex->upgrade) {
        body = ex->col.body;
        ex->col.body = (struct outbuf){0};
        from_memory = 1;
    }
    collect_free(ex); /* whoever read the body ahead is done with it */
    if (cached == CACHE_REQ_ANSWERED) {
        /* Answered from the store (or refused by only-if-cached); a body
         * read to key the request goes too. A refusal closes, and the
         * exchange let go of the request (r) already. */
        if (ex->fe->closing(ex))
            return;
        proxy_consume_request(ex, body_read);
        /* a body never read is not the next request */
        proxy_done(ex, r->body != HTTP_BODY_NONE && !body_read ? FRONT_DONE_BODY_UNREAD
                                                               : FRONT_DONE_NEXT);
        return;
    }
    if (from_memory && cfg->limits.request_body && body.len > cfg->limits.request_body) {
        /* as the body pump would have found (a chunked body: no length) */
        free(body.p);
        reply_error(ex, 413, "request body exceeds limits.request_body");
        return;
    }
    http_body_init(&ex->req_body, r->body, r->content_length, cfg->limits.header_section);
    /* a body of unknown length (h2 without content-length) goes chunked */
    ex->req_chunked = r->body == HTTP_BODY_CHUNKED || r->body == HTTP_BODY_STREAM;
    if (!ex->method_connect)
        build_request_head(ex, r, from_memory ? &body : NULL);
    free(body.p);
    int inline_body = ex->peer_inline || from_memory;
    ex->req_done = r->body == HTTP_BODY_NONE || ex->method_connect || inline_body;
    /* Whole in memory, the request can be sent again (a retry, a 415 to a
     * reference): bodiless, or its body the peer's (peer_body, kept); a
     * body sent from memory here is not kept. */
    ex->resendable = ex->req_done && !ex->method_connect && !ex->upgrade && !from_memory;
    /* a body sent from memory goes from the protocol's input too */
    proxy_consume_request(ex, inline_body);
    if (!ex->req_done) {
        ex->req_phase = EX_BODY_FORWARD;
        ex->fe->req_flow(ex, FRONT_FLOW_HOLD); /* until the origin is connected */
    }
    pool_connect(ex);
}

/* ---- connected ------------------------------------------------------- */

void proxy_on_connected(struct exchange *ex, int status)
{
    struct upstream *u = ex->up;
    if (status < 0) {
        log_msg(LOG_WARN, "upstream %s: connect failed: %s", ex->up_key, uv_strerror(status));
        fail(ex, status == UV_ETIMEDOUT ? 504 : 502,
             status == UV_ECONNREFUSED ? "upstream refused the connection"
                                       : "cannot connect to upstream");
        return;
    }
    ex->up_conn = u->reused ? 2 : 1;
    ex->t_up_start = uv_hrtime();
    if (ex->method_connect) {
        ex->status = 200;
        ex->resp_started = 1;
        ex->fe->tunnel(ex, 200, SLICE_LIT("Connection Established"), NULL);
        tunnel_start(ex);
        return;
    }
    ex->state = EX_RESP_HEAD;
    if (ex->up_head.len == 0 && ex->resendable) {
        /* a resend: the head built again from the request, as the first
         * time; the peer stage signs it anew (its nonce was spent) */
        build_request_head(ex, ex->req, NULL);
    }
    /* With a body, the head leaves together with the first body bytes that
     * decode cleanly, so a framing error in them reaches no origin. */
    if (ex->req_phase != EX_BODY_FORWARD)
        up_write(ex, &ex->up_head);
    upstream_timer(u, UT_FIRST_BYTE);
    upstream_resume_read(u);
    if (ex->req_phase == EX_BODY_FORWARD) {
        /* we will read the body now: the protocol invites it (100
         * Continue, RFC 9110 §10.1.1) */
        ex->fe->req_flow(ex, FRONT_FLOW_READ);
        pump_request_body(ex);
    }
}

/* ---- request body ---------------------------------------------------- */

/* The request body, from what the protocol holds (req_in) to the origin,
 * re-framed (h1_client.c), while the origin's socket takes it. */
static void pump_request_body(struct exchange *ex)
{
    struct upstream *u = ex->up;
    const struct config *cfg = ex->w->cfg;
    if (!u || (ex->state != EX_RESP_HEAD && ex->state != EX_RESP_BODY)) {
        ex->fe->req_flow(ex, FRONT_FLOW_HOLD); /* not connected yet */
        return;
    }
    struct outbuf o = ex->up_head;
    ex->up_head = (struct outbuf){0};
    for (;;) {
        int ended = 0;
        struct slice in = ex->fe->req_in(ex, &ended);
        if (!in.len && !ended)
            break;
        if (u->conn.write_pending + o.len >= WRITE_HIGH_WATER) {
            /* Send what is ready and go on with the bytes already buffered
             * while the socket takes them: no read will come to announce
             * them (a body read ahead to key it lies here whole, and its
             * last chunk was left behind; issue 10, re-attack B). Only a
             * write still pending past high water waits for its drain. */
            if (!o.len || up_write(ex, &o) < 0 || u->conn.write_pending >= WRITE_HIGH_WATER)
                break;
            continue;
        }
        if (ended)
            http_body_reader_end(&ex->req_body);
        size_t used;
        struct slice d;
        enum http_body_rc rc = http_body_read(&ex->req_body, in.p, in.len, &used, &d);
        if (rc == HTTP_BODY_ERROR) {
            free(o.p);
            log_msg(LOG_INFO, "client %s: bad chunked body", ex->ci->ip);
            fail(ex, 400, "malformed chunked request body");
            return;
        }
        if (rc == HTTP_BODY_DATA) {
            ex->req_bytes += d.len;
            if (cfg->limits.request_body && ex->req_bytes > cfg->limits.request_body) {
                free(o.p);
                fail(ex, 413, "request body exceeds limits.request_body");
                return;
            }
            h1_client_body(&o, d, ex->req_chunked);
        }
        ex->fe->req_consume(ex, used);
        ex->bytes_in += used;
        if (rc == HTTP_BODY_DONE || http_body_done(&ex->req_body)) {
            h1_client_body_end(&o, ex->req_chunked);
            ex->req_done = 1;
            break;
        }
        if (rc == HTTP_BODY_MORE)
            break;
    }
    up_write(ex, &o);
    free(o.p);
    if (ex->req_done) {
        ex->req_phase = EX_BODY_NONE;
        ex->fe->req_flow(ex, FRONT_FLOW_WAIT);
        if (ex->state == EX_RESP_HEAD)
            upstream_timer(u, UT_FIRST_BYTE);
        return;
    }
    ex->fe->req_flow(ex,
                     u->conn.write_pending >= WRITE_HIGH_WATER ? FRONT_FLOW_HOLD : FRONT_FLOW_READ);
}

void proxy_upstream_drained(struct exchange *ex)
{
    if (ex->req_phase == EX_BODY_FORWARD)
        pump_request_body(ex);
    else if (ex->state == EX_TUNNEL)
        tunnel_upstream_drained(ex);
}

/* ---- response -------------------------------------------------------- */

static void finish(struct exchange *ex)
{
    struct upstream *u = ex->up;
    ex->t_up_end = uv_hrtime();
    ex->up = NULL;
    if (u) {
        if (ex->up_reusable && ex->req_done && !ex->up_answered_early &&
            iobuf_len(&u->conn.in) == 0)
            upstream_release(u);
        else
            upstream_close(u);
    }
    /* the rest of the request body may still be unread */
    enum front_done how = ex->req_done ? FRONT_DONE_NEXT : FRONT_DONE_BODY_UNREAD;
    cache_stage_finish(ex, 1);
    proxy_done(ex, how);
}

static void send_response_head(struct exchange *ex, const struct http_response *res)
{
    const struct config *cfg = ex->w->cfg;
    enum http_body_kind kind = http_response_body_kind(res, ex->method_head);
    http_body_init(&ex->resp_body, kind, res->content_length, cfg->limits.response_header_section);
    ex->status = res->status;
    if (res->minor >= 1)
        ex->up_reusable = !(res->conn_flags & HTTP_CONN_CLOSE);
    else
        ex->up_reusable =
            (res->conn_flags & HTTP_CONN_KEEPALIVE) && !(res->conn_flags & HTTP_CONN_CLOSE);
    if (kind == HTTP_BODY_CLOSE)
        ex->up_reusable = 0;
    struct outbuf o = {0};
    int strip_sk = cache_stage_strips_surrogate_key(ex);
    for (unsigned i = 0; i < res->nfields; i++) {
        const struct http_field *f = &res->fields[i];
        if (http_is_hop_by_hop(f, res->fields, res->nfields, res->conn_flags) ||
            cache_stage_strips_field(ex, f->name))
            continue;
        if (strip_sk && slice_case_eq(f->name, "surrogate-key"))
            continue;
        outbuf_addfield(&o, f->name, f->value);
    }
    if (cfg->proxy.via)
        proxy_add_via(ex->w, res->minor, &o);
    cache_stage_status_field(ex, res->status, &o);
    peer_stage_fields(ex, &o);
    ex->resp_started = 1;
    /* a HEAD or 304 keeps the origin's Content-Length, which describes
     * the representation */
    int64_t length = res->has_content_length && res->status >= 200 && res->status != 204
                         ? (int64_t)res->content_length
                         : -1;
    ex->fe->head(
        ex, &(struct front_head){.status = res->status,
                                 .reason = res->reason,
                                 .fields = &o,
                                 .length = length,
                                 .unframed = kind == HTTP_BODY_CHUNKED || kind == HTTP_BODY_CLOSE});
    free(o.p);
}

/* Relay a 1xx (RFC 9110 §15.2) to a client that reads them, or start a tunnel
 * after 101 to a request that asked for the upgrade. 0 or -1 on error. */
static int interim_response(struct exchange *ex, const struct http_response *res)
{
    if (res->status == 101) {
        if (!ex->upgrade)
            return -1;
        struct outbuf o = {0};
        for (unsigned i = 0; i < res->nfields; i++) {
            const struct http_field *f = &res->fields[i];
            if (http_is_hop_by_hop(f, res->fields, res->nfields, res->conn_flags) &&
                f->id != HF_UPGRADE)
                continue;
            outbuf_addfield(&o, f->name, f->value);
        }
        outbuf_addfield(&o, SLICE_LIT("Connection"), SLICE_LIT("upgrade"));
        ex->status = 101;
        ex->resp_started = 1;
        ex->fe->tunnel(ex, 101, res->reason, &o);
        free(o.p);
        return 0;
    }
    if (ex->client_minor == 0 || (res->status == 100 && ex->sent_continue))
        return 0;
    /* relayed as it came, its fields included */
    struct outbuf o = {0};
    for (unsigned i = 0; i < res->nfields; i++)
        outbuf_addfield(&o, res->fields[i].name, res->fields[i].value);
    ex->fe->interim(ex, res->status, res->reason, &o);
    free(o.p);
    return 0;
}

/* ---- response body: h1_client.c de-frames it, the client gets it ---- */

void proxy_relay_begin(struct exchange *ex, struct outbuf *o)
{
    *o = ex->resp_head; /* the head leaves with the first body bytes: one write */
    ex->resp_head = (struct outbuf){0};
}

int proxy_relay_room(const struct exchange *ex, const struct outbuf *o)
{
    return ex->fe->queued(ex) + o->len < WRITE_HIGH_WATER;
}

int proxy_relay_takes_block(const struct exchange *ex)
{
    return !(ex->resp_chunked || ex->fe->queued(ex) >= WRITE_HIGH_WATER || ex->discard_body ||
             ex->holding);
}

/* Unframed output of a read that holds only body bytes: give the read
 * buffer itself to the client write instead of copying it. */
void proxy_relay_block(struct exchange *ex, struct outbuf *o, struct iobuf *in, struct slice d)
{
    cache_stage_body(ex, d.p, d.len);
    char *block = in->base;
    *in = (struct iobuf){0};
    ex->fe->send_block(ex, o, block, d);
}

void proxy_relay_data(struct exchange *ex, struct outbuf *o, struct slice d)
{
    if (ex->holding) {
        cache_stage_body(ex, d.p, d.len);
    } else if (!ex->discard_body) {
        cache_stage_body(ex, d.p, d.len);
        ex->fe->frame(ex, o, d);
    }
}

void proxy_relay_flush(struct exchange *ex, struct outbuf *o)
{
    ex->fe->send(ex, o);
}

/* A background fetch the store let go of mid-body (internal.c): the
 * origin is left, as for a client gone with a response not stored; the
 * fetch's line is logged, as when it ends whole. */
static void stop_unwanted(struct exchange *ex)
{
    log_msg(LOG_INFO, "%.*s %.*s: background fetch stopped: %s", (int)ex->method.len, ex->method.p,
            (int)ex->target.len, ex->target.p,
            ex->cache_detail ? ex->cache_detail : "its response is not stored");
    upstream_close(ex->up);
    ex->up = NULL;
    ex->t_up_end = uv_hrtime();
    proxy_log_exchange(ex);
    exchange_done(ex);
    ex->fe->abort(ex);
}

void proxy_relay_end(struct exchange *ex, struct outbuf *o, int done)
{
    struct upstream *u = ex->up;
    if (done && !ex->discard_body)
        ex->fe->frame_end(ex, o);
    if (o->len)
        ex->fe->send(ex, o);
    else
        free(o->p);
    if (done) {
        finish(ex);
        return;
    }
    if (internal_fetch_unwanted(ex)) {
        stop_unwanted(ex);
        return;
    }
    if (ex->fe->queued(ex) >= WRITE_HIGH_WATER) {
        /* the client reads too slowly: the protocol's send timer runs
         * (h1: timeouts.client_send_idle) until exchange_front_drained */
        upstream_pause_read(u);
        upstream_timer(u, UT_NONE);
    } else {
        upstream_resume_read(u);
        upstream_timer(u, UT_IDLE);
    }
}

/* The origin's response head, parsed by h1_client.c from u->conn.in
 * (still there: a 1xx is relayed as it came). */
enum up_head_verdict proxy_upstream_head(struct exchange *ex, const struct http_response *res)
{
    struct srv_worker *w = ex->w;
    struct upstream *u = ex->up;
    if (res->status < 200) {
        if (interim_response(ex, res) < 0) {
            fail(ex, 502, "unexpected 101 from upstream");
            return UP_HEAD_GONE;
        }
        return res->status == 101 ? UP_HEAD_TUNNEL : UP_HEAD_INTERIM;
    }
    /* An answer before our request was all written: the upstream did
     * not read it the way we sent it, so the connection is not reused
     * (issue 10, finding 1; the bytes still queued may be read as the
     * next request). */
    if (!ex->req_done || u->conn.write_pending)
        ex->up_answered_early = 1;
    struct peer_rebuilt *rebuilt = NULL;
    enum peer_response_verdict pr = peer_stage_response(ex, res, &rebuilt);
    if (pr == PEER_WAIT)
        return UP_HEAD_WAIT; /* the coded body is read whole before anything goes on */
    if (pr == PEER_REBUILT) {
        /* the origin's response, decoded: it goes on from memory */
        h1_client_deliver(ex, &rebuilt->res, rebuilt->body, rebuilt->wire_len);
        peer_rebuilt_free(&rebuilt);
        return UP_HEAD_GONE;
    }
    if (pr == PEER_FAIL) {
        log_msg(LOG_WARN, "peer %s: response failed verification", u->key.host_port);
        fail(ex, 502, "peer response failed verification");
        return UP_HEAD_GONE;
    }
    if (pr == PEER_RETRY) {
        /* RFC 9110 §15.5.16: our reference was not understood; the whole
         * body goes again, at once, on a fresh connection. */
        upstream_close(u);
        ex->up = NULL;
        free(ex->up_head.p);
        ex->up_head = (struct outbuf){0};
        ex->peer_ref = 0;
        ex->up_answered_early = 0;
        pool_connect(ex);
        return UP_HEAD_GONE;
    }
    enum cache_response_verdict staged = cache_stage_response(ex, res);
    if (staged == CACHE_RESP_RELAY && peer_stage_hold(ex, res))
        staged = CACHE_RESP_HOLD;
    if (staged == CACHE_RESP_HOLD) {
        /* Held by the cache stage until complete, then sent by it. */
        send_response_head(ex, res);
        free(ex->resp_head.p);
        ex->resp_head = (struct outbuf){0};
        ex->resp_started = 0;
        ex->holding = 1;
    } else if (staged == CACHE_RESP_ANSWERED) {
        /* Served from the store; read the origin's body to the end
         * (or close) and drop it. */
        enum http_body_kind kind = http_response_body_kind(res, ex->method_head);
        http_body_init(&ex->resp_body, kind, res->content_length,
                       w->cfg->limits.response_header_section);
        ex->discard_body = 1;
        ex->up_reusable =
            kind != HTTP_BODY_CLOSE && res->minor >= 1 && !(res->conn_flags & HTTP_CONN_CLOSE);
    } else {
        send_response_head(ex, res);
    }
    return UP_HEAD_FINAL;
}

void proxy_upstream_tunnel(struct exchange *ex)
{
    tunnel_start(ex);
}

void proxy_upstream_body(struct exchange *ex)
{
    if (ex->up && ex->state == EX_RESP_BODY)
        h1_client_read_body(ex);
    else if (ex->state == EX_TUNNEL)
        tunnel_upstream_data(ex);
}

void exchange_front_drained(struct exchange *ex)
{
    if (ex->stream) {
        cache_stage_stream_pump(ex);
        return;
    }
    if (ex->state == EX_RESP_BODY && ex->up) {
        h1_client_read_body(ex);
    } else if (ex->state == EX_TUNNEL && ex->up) {
        upstream_resume_read(ex->up);
    }
}

/* RFC 9110 §9.2.2: idempotent methods, which a proxy may send again when
 * a connection fails before any answer; the safe ones (§9.2.1, and QUERY)
 * with PUT and DELETE. */
static int idempotent(struct slice m)
{
    static const char *const methods[] = {"GET",   "HEAD", "OPTIONS", "TRACE",
                                          "QUERY", "PUT",  "DELETE"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (slice_eq(m, (struct slice){methods[i], strlen(methods[i])}))
            return 1;
    return 0;
}

void proxy_on_upstream_eof(struct exchange *ex, int status)
{
    struct upstream *u = ex->up;
    if (ex->state == EX_TUNNEL) {
        if (status == UV_EOF)
            tunnel_upstream_eof(ex);
        else
            tunnel_close(ex);
        return;
    }
    if (ex->state == EX_RESP_HEAD && u->reused && !u->got_bytes && ex->resendable && !ex->retried &&
        idempotent(ex->method)) {
        /* A pooled connection the origin had closed: retry once, fresh.
         * Not a POST or PATCH: "a proxy MUST NOT automatically retry
         * non-idempotent requests" (RFC 9110 §9.2.2), the origin may have
         * acted on it before closing. */
        ex->retried = 1;
        upstream_close(u);
        ex->up = NULL;
        free(ex->up_head.p);
        ex->up_head = (struct outbuf){0};
        pool_connect(ex);
        return;
    }
    log_msg(LOG_WARN, "upstream %s: connection closed early: %s", ex->up_key,
            status == UV_EPROTO && u ? upstream_tls_error(u) : uv_strerror(status));
    fail(ex, 502, "upstream closed the connection"); /* started: the client is closed */
}

void proxy_on_upstream_timeout(struct exchange *ex, enum upstream_timer kind)
{
    if (ex->state == EX_TUNNEL) {
        tunnel_close(ex);
        return;
    }
    log_msg(LOG_WARN, "upstream %s: %s timeout", ex->up_key,
            kind == UT_CONNECT         ? "connect"
            : kind == UT_TLS_HANDSHAKE ? "TLS handshake"
            : kind == UT_FIRST_BYTE    ? "first byte"
                                       : "idle");
    if (kind == UT_TLS_HANDSHAKE)
        ex->cache_detail = "tls";
    fail(ex, 504, kind == UT_CONNECT ? "upstream connect timed out" : "upstream timed out");
}

/* The client went while its response streams into the cache: the fetch
 * is the object's, not the client's (Varnish's background fetch; nginx
 * keeps writing a proxy_cache file). Others may follow it as it fills
 * (cache_stage_stream_pump) or wait for it to be stored; no one wastes
 * the origin's work. Only a request sent whole, and only while stored:
 * anything else ends with its client, as before. The client's line is
 * logged now, as any client gone; the fetch's own when it ends, as a
 * refresh's (its bytes: those after this). */
static int go_on_without_client(struct exchange *ex)
{
    if (ex->fe == &internal_front || ex->state != EX_RESP_BODY || !ex->up || !ex->fill ||
        !ex->req_done || ex->discard_body || internal_adopt(ex) < 0)
        return 0;
    proxy_log_exchange(ex);
    log_msg(LOG_INFO, "client %s gone: %.*s %.*s goes on into the cache (background fetch)",
            ex->ci->ip, (int)ex->method.len, ex->method.p, (int)ex->target.len, ex->target.p);
    ex->bytes_in = ex->bytes_out = 0;
    /* what was held back for the client (its socket full) is read on;
     * the relay's own timers run again (timeouts.upstream_idle) */
    exchange_front_drained(ex);
    return 1;
}

enum exchange_gone exchange_front_gone(struct exchange *ex)
{
    cache_stage_unpark(ex);
    if (ex->bg_key) {
        /* an internal refresh that never started: free its key's slot */
        cache_stage_release_key(ex->w, ex->bg_key, ex->bg_key_len);
        free(ex->bg_key);
        ex->bg_key = NULL;
    }
    if (go_on_without_client(ex))
        return EXCHANGE_DETACHED;
    if (ex->up) {
        upstream_close(ex->up);
        ex->up = NULL;
    }
    if (ex->req && ex->status == 0)
        ex->status = 499; /* nginx's "client closed request" */
    if (ex->req)
        proxy_log_exchange(ex);
    exchange_done(ex);
    return EXCHANGE_ENDED;
}
