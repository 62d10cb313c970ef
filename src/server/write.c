/* Output buffers and writes. A write owns its bytes until libuv is done
 * with them, so the producer never waits and never copies twice. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"
#include "cache/object.h"

void srv_panic(const char *file, int line, const char *what)
{
    log_msg(LOG_ERROR, "assertion failed at %s:%d: %s", file, line, what);
    abort();
}

static void outbuf_grow(struct outbuf *o, size_t n)
{
    if (o->cap - o->len >= n)
        return;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap - o->len < n)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p)
        srv_panic(__FILE__, __LINE__, "out of memory");
    o->p = p;
    o->cap = cap;
}

void outbuf_add(struct outbuf *o, const void *p, size_t n)
{
    outbuf_grow(o, n);
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

void outbuf_addstr(struct outbuf *o, const char *s)
{
    outbuf_add(o, s, strlen(s));
}

void outbuf_addslice(struct outbuf *o, struct slice s)
{
    outbuf_add(o, s.p, s.len);
}

void outbuf_addu64(struct outbuf *o, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    outbuf_add(o, tmp + i, sizeof tmp - (size_t)i);
}

void outbuf_addfield(struct outbuf *o, struct slice name, struct slice value)
{
    outbuf_addslice(o, name);
    outbuf_addstr(o, ": ");
    outbuf_addslice(o, value);
    outbuf_addstr(o, "\r\n");
}

void outbuf_addstatus(struct outbuf *o, int status, struct slice reason)
{
    outbuf_addstr(o, "HTTP/1.1 ");
    outbuf_addu64(o, (uint64_t)status);
    outbuf_addstr(o, " ");
    outbuf_addslice(o, reason);
    outbuf_addstr(o, "\r\n");
}

void outbuf_addhex(struct outbuf *o, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int i = sizeof tmp;
    do {
        tmp[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    outbuf_add(o, tmp + i, sizeof tmp - (size_t)i);
}

void outbuf_printf(struct outbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    outbuf_grow(o, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

struct write_req {
    uv_write_t req;
    char *data;
    char *block;              /* a read buffer given to this write, freed after it */
    struct cache_object *obj; /* a stored response being sent, unref'd after */
    size_t len;
    size_t *pending;
    void (*done)(void *, int);
    void *owner;
};

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    *w->pending -= w->len;
    free(w->data);
    free(w->block);
    cache_object_unref(&w->obj);
    void (*done)(void *, int) = w->done;
    void *owner = w->owner;
    free(w);
    if (done)
        done(owner, status);
}

int srv_write_block(uv_stream_t *s, struct outbuf *o, char *block, const char *p, size_t n,
                    size_t *pending, void (*done)(void *, int), void *owner)
{
    size_t total = o->len + n;
    if (total == 0) {
        free(block);
        return 0;
    }
    uv_buf_t b[2];
    unsigned nb = 0;
    if (o->len)
        b[nb++] = uv_buf_init(o->p, (unsigned)o->len);
    if (n)
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
    /* Nothing queued: try to write now. Most writes complete here, which
     * saves a request, a callback and (in libuv 1.44) an epoll_ctl. */
    if (*pending == 0) {
        int w = uv_try_write(s, b, nb);
        if (w == (int)total) {
            free(o->p);
            *o = (struct outbuf){0};
            free(block);
            return 0;
        }
        if (w > 0) {
            size_t skip = (size_t)w;
            unsigned i = 0;
            while (skip >= b[i].len) {
                skip -= b[i].len;
                i++;
            }
            b[i].base += skip;
            b[i].len -= skip;
            if (i) {
                b[0] = b[1];
                nb = 1;
            }
            total -= (size_t)w;
        }
        /* On an error, uv_write below fails the same way and reports it
         * through the callback, from the loop, like any other write error. */
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w)
        srv_panic(__FILE__, __LINE__, "out of memory");
    *w = (struct write_req){.data = o->p,
                            .block = block,
                            .len = total,
                            .pending = pending,
                            .done = done,
                            .owner = owner};
    *o = (struct outbuf){0};
    *pending += w->len;
    int rc = uv_write(&w->req, s, b, nb, on_written);
    if (rc < 0) {
        *pending -= w->len;
        free(w->data);
        free(w->block);
        free(w);
    }
    return rc;
}

int srv_write(uv_stream_t *s, struct outbuf *o, size_t *pending, void (*done)(void *, int),
              void *owner)
{
    return srv_write_block(s, o, NULL, NULL, 0, pending, done, owner);
}

/* Write b[0..k) (slices of `obj` and of `after`): at once when the socket
 * takes it all, else queued holding a reference to `obj` and `after`'s
 * bytes until written. Frees b when it is not `stack`. */
static int write_object_bufs(uv_stream_t *s, struct cache_object *obj, struct outbuf *after,
                             uv_buf_t *b, uv_buf_t *stack, size_t k, size_t *pending,
                             void (*done)(void *, int), void *owner)
{
    size_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += b[i].len;
    if (*pending == 0) {
        /* Most hits fit the socket buffer: one writev, nothing queued. */
        int n = uv_try_write(s, b, (unsigned)k);
        if (n == (int)total) {
            free(after->p);
            *after = (struct outbuf){0};
            if (b != stack)
                free(b);
            return 0;
        }
        if (n > 0) {
            size_t skip = (size_t)n, i = 0;
            while (skip >= b[i].len)
                skip -= b[i++].len;
            b[i].base += skip;
            b[i].len -= skip;
            memmove(b, b + i, (k - i) * sizeof *b);
            k -= i;
            total -= (size_t)n;
        }
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w)
        srv_panic(__FILE__, __LINE__, "out of memory");
    *w = (struct write_req){
        .data = after->p, .len = total, .pending = pending, .done = done, .owner = owner};
    *after = (struct outbuf){0};
    cache_object_ref(obj);
    w->obj = obj;
    *pending += total;
    int rc = uv_write(&w->req, s, b, (unsigned)k, on_written);
    if (b != stack)
        free(b);
    if (rc < 0) {
        *pending -= total;
        free(w->data);
        cache_object_unref(&w->obj);
        free(w);
    }
    return rc;
}

int srv_write_object(uv_stream_t *s, struct cache_object *obj, struct slice hole,
                     struct outbuf *after, int with_body, size_t *pending,
                     void (*done)(void *, int), void *owner)
{
    size_t nseg = 0;
    if (with_body)
        for (struct cache_segment *g = obj->body->first; g; g = g->next)
            nseg++;
    uv_buf_t stack[16];
    size_t nb = 3 + nseg;
    uv_buf_t *b = nb <= 16 ? stack : malloc(nb * sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    size_t k = 0;
    if (hole.len) {
        size_t cut = (size_t)(hole.p - obj->head);
        b[k++] = uv_buf_init(obj->head, (unsigned)cut);
        b[k++] =
            uv_buf_init(obj->head + cut + hole.len, (unsigned)(obj->head_len - cut - hole.len));
    } else {
        b[k++] = uv_buf_init(obj->head, (unsigned)obj->head_len);
    }
    if (after->len)
        b[k++] = uv_buf_init(after->p, (unsigned)after->len);
    if (with_body)
        for (struct cache_segment *g = obj->body->first; g; g = g->next)
            b[k++] = uv_buf_init(g->data, (unsigned)g->len);
    return write_object_bufs(s, obj, after, b, stack, k, pending, done, owner);
}

int srv_write_object_range(uv_stream_t *s, struct cache_object *obj, const char *status_line,
                           struct slice omit, struct outbuf *after, uint64_t first, uint64_t len,
                           size_t *pending, void (*done)(void *, int), void *owner)
{
    size_t nseg = 0;
    for (struct cache_segment *g = obj->body->first; g; g = g->next)
        nseg++;
    uv_buf_t stack[16];
    size_t nb = 4 + nseg;
    uv_buf_t *b = nb <= 16 ? stack : malloc(nb * sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    size_t k = 0;
    /* the stored status line replaced, the stored fields as they are but
     * for `omit` (a stored part's own Content-Range) */
    const char *eol = memchr(obj->head, '\n', obj->head_len);
    size_t line = eol ? (size_t)(eol - obj->head) + 1 : 0;
    b[k++] = uv_buf_init((char *)status_line, (unsigned)strlen(status_line));
    if (omit.len && omit.p >= obj->head + line && omit.p + omit.len <= obj->head + obj->head_len) {
        size_t at = (size_t)(omit.p - obj->head);
        b[k++] = uv_buf_init(obj->head + line, (unsigned)(at - line));
        b[k++] = uv_buf_init(obj->head + at + omit.len, (unsigned)(obj->head_len - at - omit.len));
    } else {
        b[k++] = uv_buf_init(obj->head + line, (unsigned)(obj->head_len - line));
    }
    if (after->len)
        b[k++] = uv_buf_init(after->p, (unsigned)after->len);
    uint64_t at = 0, end = first + len;
    for (struct cache_segment *g = obj->body->first; g && at < end; g = g->next) {
        uint64_t glen = g->len, lo = first > at ? first - at : 0;
        if (lo < glen) {
            uint64_t hi = end - at < glen ? end - at : glen;
            b[k++] = uv_buf_init(g->data + lo, (unsigned)(hi - lo));
        }
        at += glen;
    }
    return write_object_bufs(s, obj, after, b, stack, k, pending, done, owner);
}
