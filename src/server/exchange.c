/* The exchange: one request on its way through the pipeline. It owns a
 * copy of its request, so the stages read it whatever happens to the
 * connection's buffer (pipelined bytes, a replay, a rewrite). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"

/* One exchange is allocated and freed per request, on the hit path too:
 * glibc serves blocks up to 1032 bytes from a per-thread cache without
 * locking (tcache); a larger exchange costs ~500 instructions a hit
 * (bench/hit-instructions.mjs). */
_Static_assert(sizeof(struct exchange) <= 1032, "struct exchange outgrew glibc's tcache");

int exchange_own_request(struct exchange *ex, const struct http_request *r, const char *head)
{
    /* one block: the request, its field array, then its head; kept small
     * enough for the allocator's fast path with a typical head */
    struct http_request *own = malloc(sizeof *own + http_request_copy_size(r) + 1);
    if (!own)
        return -1;
    http_request_copy(own, r, head, own + 1);
    ex->req = own;
    ex->method = own->method;
    ex->target = own->target;
    return 0;
}

/* A slice copied to *at, which moves past it. */
static struct slice copy_slice(struct slice s, char **at)
{
    if (!s.len)
        return (struct slice){*at, 0};
    memcpy(*at, s.p, s.len);
    struct slice c = {*at, s.len};
    *at += s.len;
    return c;
}

int exchange_copy_request(struct exchange *ex, const struct http_request *r)
{
    const struct slice *const top[] = {&r->method,    &r->target, &r->host,
                                       &r->authority, &r->path,   &r->scheme};
    size_t text = 0;
    for (unsigned i = 0; i < sizeof top / sizeof top[0]; i++)
        text += top[i]->len;
    for (unsigned i = 0; i < r->nfields; i++)
        text += r->fields[i].name.len + r->fields[i].value.len;
    /* the layout of exchange_own_request's block: the request, its fields,
     * then its text (head_len bytes of it: exchange_set_body copies it) */
    struct http_request *own =
        malloc(sizeof *own + r->nfields * sizeof(struct http_field) + text + 1);
    if (!own)
        return -1;
    struct http_field *fields = (struct http_field *)(own + 1);
    char *at = (char *)(fields + r->nfields);
    *own = *r;
    own->method = copy_slice(r->method, &at);
    own->target = copy_slice(r->target, &at);
    own->host = copy_slice(r->host, &at);
    own->authority = copy_slice(r->authority, &at);
    own->path = copy_slice(r->path, &at);
    own->scheme = copy_slice(r->scheme, &at);
    for (unsigned i = 0; i < r->nfields; i++) {
        fields[i].name = copy_slice(r->fields[i].name, &at);
        fields[i].value = copy_slice(r->fields[i].value, &at);
        fields[i].id = r->fields[i].id;
    }
    own->fields = fields;
    own->fields_cap = r->nfields;
    own->head_len = text;
    ex->req = own;
    ex->method = own->method;
    ex->target = own->target;
    return 0;
}

/* Where an owned request's head bytes are: behind its field array, all
 * fields_cap entries of it (see exchange_own_request, exchange_set_body). */
static const char *owned_head(const struct http_request *own)
{
    return (const char *)(own->fields + own->fields_cap);
}

int exchange_set_body(struct exchange *ex, struct slice coding, const void *body, size_t len)
{
    const struct http_request *old = ex->req;
    char digits[24];
    int nd = snprintf(digits, sizeof digits, "%zu", len);
    static const char ce[] = "Content-Encoding", cl[] = "Content-Length";
    size_t extra = sizeof ce - 1 + coding.len + sizeof cl - 1 + (size_t)nd;
    unsigned cap = old->nfields + 2;
    /* one block as exchange_own_request's, with room for two more fields
     * and their text: the old fields land 2 slots up, then move down */
    struct http_request *own =
        malloc(sizeof *own + cap * sizeof(struct http_field) + old->head_len + extra);
    char *text = malloc(len ? len : 1);
    if (!own || !text) {
        free(own);
        free(text);
        return -1;
    }
    struct http_field *fields = (struct http_field *)(own + 1);
    http_request_copy(own, old, owned_head(old), fields + 2);
    char *t = (char *)(fields + cap) + old->head_len;
    unsigned n = 0;
    for (unsigned i = 0; i < old->nfields; i++) {
        const struct http_field *f = &fields[i + 2];
        if (f->id == HF_CONTENT_LENGTH || f->id == HF_TRANSFER_ENCODING ||
            slice_case_eq(f->name, "content-encoding"))
            continue;
        fields[n++] = *f;
    }
    if (coding.len) {
        memcpy(t, ce, sizeof ce - 1);
        memcpy(t + sizeof ce - 1, coding.p, coding.len);
        fields[n++] =
            (struct http_field){{t, sizeof ce - 1}, {t + sizeof ce - 1, coding.len}, HF_OTHER};
        t += sizeof ce - 1 + coding.len;
    }
    memcpy(t, cl, sizeof cl - 1);
    memcpy(t + sizeof cl - 1, digits, (size_t)nd);
    fields[n++] =
        (struct http_field){{t, sizeof cl - 1}, {t + sizeof cl - 1, (size_t)nd}, HF_CONTENT_LENGTH};
    own->fields = fields;
    own->fields_cap = cap;
    own->nfields = n;
    own->body = HTTP_BODY_LENGTH;
    own->content_length = len;
    free(ex->req);
    ex->req = own;
    ex->method = own->method;
    ex->target = own->target;
    /* the body, as if read ahead whole: none of it is the protocol's */
    memcpy(text, body, len);
    collect_free(ex);
    ex->col.body = (struct outbuf){text, len, len ? len : 1};
    ex->col.scanned = 0;
    ex->collected = COLLECT_COMPLETE;
    return 0;
}

struct exchange *exchange_new(struct srv_worker *w, const struct front_ops *fe, void *fe_ctx,
                              const struct conninfo *ci)
{
    /* Not calloc: the exchange is sized for glibc's per-thread cache,
     * which calloc bypasses. Zeroed past its first fields, so that the
     * compiler does not turn malloc+memset back into calloc. */
    struct exchange *ex = malloc(sizeof *ex);
    if (!ex)
        return NULL;
    ex->magic = EXCHANGE_MAGIC;
    ex->no_coalesce = 0;
    ex->fe = fe;
    ex->fe_ctx = fe_ctx;
    ex->ci = ci;
    ex->w = w;
    memset(&ex->park_link, 0, sizeof *ex - offsetof(struct exchange, park_link));
    link_init(&ex->park_link);
    link_init(&ex->stream_link);
    link_init(&ex->retired_link);
    return ex;
}

/* Let go of what one attempt holds; its fields are left as they are. */
static void release_attempt(struct exchange *ex)
{
    CHECK_MAGIC(ex, EXCHANGE_MAGIC);
    if (ex->up) {
        /* every path that ends an exchange lets its upstream go first; one
         * left here would call back into a freed exchange */
        upstream_close(ex->up);
        ex->up = NULL;
    }
    free(ex->req);
    free(ex->up_key_own);
    free(ex->up_head.p);
    free(ex->resp_head.p);
    free(ex->peer_body.p);
    cache_stage_reset(ex);
}

void exchange_reset(struct exchange *ex)
{
    release_attempt(ex);
    /* the head of the exchange carries over: see struct exchange */
    memset(&ex->state, 0, sizeof *ex - offsetof(struct exchange, state));
}

void exchange_restart(struct exchange *ex)
{
    struct http_request *req = ex->req;
    uint64_t t_start = ex->t_start;
    ex->req = NULL;
    exchange_reset(ex);
    ex->req = req;
    ex->method = req->method;
    ex->target = req->target;
    ex->t_start = t_start;
}

void exchange_done(struct exchange *ex)
{
    exchange_reset(ex);
    ex->finished = 1;
}

void exchange_free(struct exchange **xp)
{
    struct exchange *ex = *xp;
    if (!ex)
        return;
    release_attempt(ex);
    cache_stage_unpark(ex);
    if (ex->bg_key) {
        /* an internal refresh that never started: free its key's slot */
        cache_stage_release_key(ex->w, ex->bg_key, ex->bg_key_len);
        free(ex->bg_key);
    }
    collect_free(ex);
    ex->magic = 0;
    free(ex);
    *xp = NULL;
}

void exchange_renew(struct exchange *ex)
{
    exchange_reset(ex);
    collect_free(ex);
    ex->no_coalesce = 0;
    ex->peer_nonce_held = 0;
    ex->sent_continue = 0;
    ex->body_in = 0;
}
