/* The admin listener (off unless --admin/`admin:` is set; bind it to
 * loopback): GET /healthz, GET /stats, PURGE of one URL (all its variants,
 * and its POST, QUERY and Connect entries),
 * and PURGE by Surrogate-Key (the origin's Surrogate-Key response field,
 * space-separated keys, as Fastly and Varnish xkey use it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/log.h"
#include "http/chars.h"
#include "http/fields.h"
#include "cache/key.h"

static void respond(struct exchange *ex, int status, const char *reason, const char *body)
{
    ex->status = status;
    ex->fe->answer(ex, &(struct front_answer){.status = status,
                                              .reason = {reason, strlen(reason)},
                                              .type = "application/json",
                                              .length = (int64_t)strlen(body),
                                              .body = body});
}

struct surrogate_match {
    struct slice keys; /* the keys asked for, space-separated */
};

/* Does a space-separated list contain word w? */
static int list_has(struct slice list, struct slice w)
{
    size_t i = 0;
    while (i < list.len) {
        while (i < list.len && (list.p[i] == ' ' || list.p[i] == '\t'))
            i++;
        size_t s = i;
        while (i < list.len && list.p[i] != ' ' && list.p[i] != '\t')
            i++;
        if (i > s && i - s == w.len && !memcmp(list.p + s, w.p, w.len))
            return 1;
    }
    return 0;
}

/* Every Surrogate-Key line counts: an origin may send several. */
static int has_surrogate_key(const struct cache_object *o, void *arg)
{
    struct surrogate_match *m = arg;
    for (unsigned k = 0; k < o->nfields; k++) {
        const struct http_field *f = &o->fields[k];
        if (!slice_case_eq(f->name, "surrogate-key"))
            continue;
        size_t i = 0;
        while (i < m->keys.len) {
            while (i < m->keys.len && m->keys.p[i] == ' ')
                i++;
            size_t s = i;
            while (i < m->keys.len && m->keys.p[i] != ' ')
                i++;
            if (i > s && list_has(f->value, (struct slice){m->keys.p + s, i - s}))
                return 1;
        }
    }
    return 0;
}

/* A JSON string's content: quotes, backslashes and control bytes escaped.
 * Stops short rather than overflow; returns the bytes written. */
static size_t json_escape(char *out, size_t cap, struct slice s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = 0;
    return n;
}

/* PURGE of one URL, origin-form with Host as curl -X PURGE sends it, or
 * absolute-form (PURGE http://host/path). An operator purges a URL, not a
 * transport: origin-form removes the http and the https entries of the
 * path and answers with the scheme-relative "//host/path" (RFC 3986 §4.2);
 * absolute-form names one scheme and removes only its entries. The answer
 * and the log line name what was looked up, so that a purge that found
 * nothing shows which key it missed. */
static unsigned purge_url(struct store *st, const struct http_request *r, char *what, size_t cap)
{
    int abs = r->form == HTTP_TARGET_ABSOLUTE;
    enum cache_scheme only = cache_request_scheme(r, 0, 1);
    unsigned n = 0;
    for (int s = CACHE_SCHEME_HTTP; s <= CACHE_SCHEME_HTTPS; s++) {
        if (abs && s != (int)only)
            continue;
        size_t len;
        char *key = cache_key_primary(r, (enum cache_scheme)s, &len);
        n += cache_stage_remove_url(st, key, len); /* what invalidation removes */
        struct cache_key_url u;
        if ((abs || s == CACHE_SCHEME_HTTP) && cache_key_parse(key, len, &u) == CACHE_KEY_PARSED) {
            /* the key's "G " class says nothing to an operator: show the URL */
            struct slice shown = u.url;
            if (!abs) { /* "//host/path": both schemes */
                shown.p += 5;
                shown.len -= 5;
            }
            json_escape(what, cap, shown);
        }
        free(key);
    }
    return n;
}

static void purge(struct exchange *ex, const struct http_request *r)
{
    struct store *st = ex->w->store;
    if (!st) {
        respond(ex, 404, "Not Found", "{\"error\":\"the cache is disabled\"}\n");
        return;
    }
    const struct http_field *sk = http_find_field(r->fields, r->nfields, "surrogate-key");
    /* no response fetched before this purge may be stored after it
     * (cache_stage.c: a fill or refresh in flight checks the generation) */
    store_note_purge(st);
    unsigned n;
    char what[2048];
    const char *label;
    if (sk) {
        struct surrogate_match m = {sk->value};
        n = st->ops->remove_matching(st, has_surrogate_key, &m);
        label = "surrogate_key";
        json_escape(what, sizeof what, sk->value);
    } else {
        n = purge_url(st, r, what, sizeof what);
        label = "key";
    }
    char body[2200];
    snprintf(body, sizeof body, "{\"purged\":%u,\"%s\":\"%s\"}\n", n, label, what);
    log_msg(LOG_INFO, "admin: PURGE %s %s: %u purged", sk ? "surrogate key" : "key", what, n);
    respond(ex, n ? 200 : 404, n ? "OK" : "Not Found", body);
}

void admin_handle(struct exchange *ex, const struct http_request *r)
{
    int get = slice_eq(r->method, SLICE_LIT("GET")) || slice_eq(r->method, SLICE_LIT("HEAD"));
    ex->req_done = 1;
    if (r->body != HTTP_BODY_NONE) {
        reply_error(ex, 400, "admin requests carry no body");
        return;
    }
    proxy_consume_request(ex, 0);
    if (slice_eq(r->method, SLICE_LIT("PURGE"))) {
        purge(ex, r);
    } else if (get && slice_eq(r->target, SLICE_LIT("/healthz"))) {
        respond(ex, 200, "OK", "{\"status\":\"ok\"}\n");
    } else if (get && slice_eq(r->target, SLICE_LIT("/stats"))) {
        struct store_stats s = {0};
        if (ex->w->store)
            store_mem_stats(ex->w->store, &s);
        struct peer_stats ps;
        peer_state_stats(ex->w->handshake, &ps);
        char body[768];
        snprintf(body, sizeof body,
                 "{\"objects\":%llu,\"bytes\":%llu,\"held_bytes\":%llu,\"reserved_bytes\":%llu,"
                 "\"capacity_bytes\":%llu,"
                 "\"evictions\":%llu,\"refused\":%llu,"
                 "\"peer_body_refs\":%llu,\"peer_body_full\":%llu,\"peer_fallbacks\":%llu,"
                 "\"peer_request_store_bytes\":%llu,\"peer_request_store_entries\":%llu,"
                 "\"peer_response_store_bytes\":%llu,\"peer_response_store_entries\":%llu,"
                 "\"peer_mirror_bytes\":%llu,\"peer_mirror_entries\":%llu}\n",
                 (unsigned long long)s.objects, (unsigned long long)s.bytes,
                 (unsigned long long)s.held, (unsigned long long)s.reserved,
                 (unsigned long long)s.capacity, (unsigned long long)s.evictions,
                 (unsigned long long)s.refused, (unsigned long long)ps.refs,
                 (unsigned long long)ps.fulls, (unsigned long long)ps.fallbacks,
                 (unsigned long long)ps.request_store_bytes,
                 (unsigned long long)ps.request_store_entries,
                 (unsigned long long)ps.response_store_bytes,
                 (unsigned long long)ps.response_store_entries, (unsigned long long)ps.mirror_bytes,
                 (unsigned long long)ps.mirror_entries);
        respond(ex, 200, "OK", body);
    } else {
        respond(ex, 404, "Not Found", "{\"error\":\"unknown admin request\"}\n");
    }
    proxy_done(ex, FRONT_DONE_NEXT);
}
