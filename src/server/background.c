/* Background revalidation (RFC 5861 §3, stale-while-revalidate): the
 * stale copy is served at once and the refresh runs as an internal request,
 * the way nginx's background update runs a subrequest.
 *
 * The internal request is an ordinary client of this worker on one end of
 * a socketpair; the other end is a sink that reads and drops the response.
 * So the whole pipeline is reused as it is: routing, validators, the 304
 * merge, storing, Vary, coalescing and the access log.
 *
 * One refresh per key: the foreground request takes the key's coalescing
 * slot before it starts the refresh, and hands it to the internal client,
 * which releases it when its fetch ends (or when it closes without one). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "server/h1_server.h"
#include "server/log.h"
#include "http/chars.h"
#include "http/fields.h"

/* The sink end of the socketpair: it writes the internal request's head
 * and drops whatever comes back. */
struct sink {
    uv_pipe_t pipe;
    uv_write_t write;
    char *head; /* owned until the write completes */
};

static void sink_closed(uv_handle_t *h)
{
    struct sink *s = h->data;
    free(s->head);
    free(s);
}

static void sink_close(struct sink *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->pipe))
        uv_close((uv_handle_t *)&s->pipe, sink_closed);
}

/* The head went in (or the internal client closed first: the read side
 * sees that as EOF). Runs before sink_closed when the close cancels it. */
static void sink_written(uv_write_t *req, int status)
{
    struct sink *s = req->data;
    free(s->head);
    s->head = NULL;
    if (status < 0 && status != UV_ECANCELED)
        sink_close(s);
}

static void sink_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static _Thread_local char drop[16384];
    *buf = uv_buf_init(drop, sizeof drop);
}

static void sink_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0)
        sink_close(s->data);
}

/* Request fields that must not reach the refresh: the client's own
 * preconditions, ranges and directives (ours are added by the pipeline). */
static int dropped_field(const struct http_field *f)
{
    static const char *const names[] = {
        "if-none-match", "if-modified-since",
        "if-match",      "if-unmodified-since",
        "if-range",      "range",
        "cache-control", "pragma",
        "expect",        NULL,
    };
    for (int i = 0; names[i]; i++)
        if (slice_case_eq(f->name, names[i]))
            return 1;
    return 0;
}

static void build_head(struct outbuf *o, const struct http_request *r)
{
    outbuf_addstr(o, "GET "); /* a HEAD's refresh fetches the body too */
    outbuf_addslice(o, r->target);
    outbuf_addstr(o, " HTTP/1.1\r\n");
    for (unsigned i = 0; i < r->nfields; i++) {
        const struct http_field *f = &r->fields[i];
        if (dropped_field(f) || http_is_hop_by_hop(f, r->fields, r->nfields, r->conn_flags))
            continue;
        outbuf_addfield(o, f->name, f->value);
    }
    outbuf_addstr(o, "Connection: close\r\n\r\n");
}

int background_revalidate(struct exchange *ex, const struct http_request *r, const char *key,
                          size_t key_len)
{
    struct srv_worker *w = ex->w;
    if (!w->co || w->draining || w->background >= w->cfg->cache.background_fetches)
        return -1;
    if (!coalesce_join(w->co, key, key_len, w->id))
        return 0; /* a fetch for this key is already in flight */
    struct outbuf head = {0};
    build_head(&head, r);
    int fds[2] = {-1, -1};
    struct client *bg = NULL;
    struct sink *sink = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        goto fail;
    if (!(sink = calloc(1, sizeof *sink)) || !(bg = client_new(w)))
        goto fail;
    uv_pipe_init(&w->loop, &sink->pipe, 0);
    sink->pipe.data = sink;
    sink->head = head.p; /* the sink owns it from here */
    head.p = NULL;
    if (uv_pipe_open(&sink->pipe, fds[1]) < 0)
        goto fail_sink;
    fds[1] = -1;
    /* Non-blocking (uv_pipe_open made it so): a head larger than the
     * socket buffer (limits.header_section allows 64 MiB) goes in as the
     * internal client reads it, on this same loop. A blocking write here
     * would wait for a reader that can never run. */
    sink->write.data = sink;
    uv_buf_t buf = uv_buf_init(sink->head, (unsigned)head.len);
    if (uv_write(&sink->write, (uv_stream_t *)&sink->pipe, &buf, 1, sink_written) < 0)
        goto fail_sink;
    uv_read_start((uv_stream_t *)&sink->pipe, sink_alloc, sink_read);
    if (uv_tcp_open(&bg->conn.tcp, fds[0]) < 0) {
        client_close(bg); /* the sink sees EOF when fds[0] closes below */
        goto fail_closed;
    }
    fds[0] = -1;
    snprintf(bg->ci.ip, sizeof bg->ci.ip, "%s", ex->ci->ip);
    bg->ci.internal = 1;
    /* its key and its proto= are its starter's (a verified peer's: the
     * signed scheme, not the link's transport) */
    bg->ci.tls = srv_request_scheme(ex, r) == CACHE_SCHEME_HTTPS;
    bg->ex->bg_key = malloc(key_len);
    memcpy(bg->ex->bg_key, key, key_len);
    bg->ex->bg_key_len = key_len;
    w->background++;
    client_start(bg);
    return 0;
fail_sink:
    sink_close(sink);
    sink = NULL;
fail:
    free(sink);
    if (bg)
        client_close(bg);
fail_closed:
    log_msg(LOG_WARN, "background revalidation not started: %s", strerror(errno));
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(head.p);
    cache_stage_release_key(w, key, key_len);
    return -1;
}
