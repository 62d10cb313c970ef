/* The cache stage of the request pipeline: lookup and decide before going
 * upstream, answer hits and conditional requests from the store, add
 * validators to revalidations, store what may be stored as it streams, and
 * invalidate after unsafe requests. Decisions come from cache/policy.c;
 * this file only moves bytes and references.
 *
 *   cache_stage_request   hit -> served here (ANSWERED) | miss/stale -> upstream
 *                         (FORWARD) | a fetch of the key in flight (PARKED)
 *   cache_stage_response  304 to our revalidation -> served merged (ANSWERED);
 *                         5xx with stale-if-error -> served stale (ANSWERED);
 *                         unstorable 200 without ETag -> held (HOLD);
 *                         otherwise decides whether to store (RELAY)
 *   cache_stage_body / _finish   fill and publish the object
 *
 * Cache-Status (RFC 9211) describes each outcome: "hit", or fwd=uri-miss,
 * vary-miss, stale, request (the client's directives refused a fresh
 * copy) or bypass, with fwd-status, ttl, stored and detail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "server/server.h"
#include "server/log.h"
#include "cache/policy.h"
#include "cache/validate.h"
#include "cache/etag.h"
#include "cache/key.h"
#include "http/chars.h"
#include "http/date.h"
#include "http/fields.h"
#include "rules/rules.h"
#include "connect/connect.h"
#include "http/path.h"
#include "http/range.h"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void notify_waiters(struct srv_worker *w, const char *key, size_t len);
static void post_key(struct srv_worker *w, const uint64_t *mask, const char *key, size_t len);
static void stream_progress(struct srv_worker *w, const char *key, size_t len);

/* What a fill's reservation has past its body: the ETag a finish may add
 * and the store's entry, so that the insert of what was reserved fits it. */
#define FILL_SLACK 256

/* A fill is charged to its key's shard as it grows (Varnish's fetch
 * allocates from its storage as it goes): with a Content-Length, all of it
 * at the start; without, a segment at a time. Without it, a client whose
 * h2 streams stopped short of the ends of 100 misses held 100 fills that
 * no bound counted (RSS +72.6 MiB over a 16 MiB store). 0: refused. */
static int fill_covers(struct exchange *ex, size_t body_len)
{
    struct store *st = ex->w->store;
    int64_t expected = ex->fill->expected_len;
    uint64_t len = expected >= 0 && (uint64_t)expected > body_len ? (uint64_t)expected : body_len;
    size_t size = cache_object_size_with_body(ex->fill, len), need = size + FILL_SLACK;
    size_t limit = st->ops->object_limit(st);
    if (need > limit && size <= limit)
        need = limit; /* one that fits a shard is not refused for its slack */
    if (need <= ex->fill_reserved)
        return 1;
    if (expected < 0) {
        /* whole segments: what the body's blocks really take */
        uint64_t up = (len + CACHE_SEGMENT_SIZE - 1) / CACHE_SEGMENT_SIZE * CACHE_SEGMENT_SIZE;
        size_t whole = cache_object_size_with_body(ex->fill, up) + FILL_SLACK;
        if (whole <= limit)
            need = whole;
    }
    if (!st->ops->reserve(st, ex->fill->key, ex->fill->key_len, need - ex->fill_reserved))
        return 0;
    ex->fill_reserved = need;
    return 1;
}

/* A fill refused room: what it would have replaced must not answer the
 * next request (it is older than what this client got), as when an insert
 * dropped the same variant before it was refused: a miss, never the old
 * body. Still being sent, it stays charged (retired) until let go. */
static void fill_refused(struct exchange *ex)
{
    ex->cache_detail = "no-room";
    ex->w->store->ops->remove(ex->w->store, ex->fill->key, ex->fill->key_len);
}

/* Every end of a fill but its insert gives its reservation back. */
static void fill_release(struct exchange *ex)
{
    if (ex->fill && ex->fill_reserved)
        ex->w->store->ops->release(ex->w->store, ex->fill->key, ex->fill->key_len,
                                   ex->fill_reserved);
    ex->fill_reserved = 0;
}

static void fill_drop(struct exchange *ex)
{
    fill_release(ex);
    cache_object_unref(&ex->fill);
}

void cache_stage_release_key(struct srv_worker *w, const char *key, size_t len)
{
    notify_waiters(w, key, len);
}

void cache_stage_reset(struct exchange *ex)
{
    /* An unfinished fill here means the fetch failed: its streamers close.
     * Set before the wake-up below, which is what they act on. */
    if (ex->fill && ex->fill->shared && atomic_load(&ex->fill->fill) == FILL_OPEN)
        atomic_store(&ex->fill->fill, FILL_ABORTED);
    ex->fill_unstored = 0;
    if (ex->coalesce_leader) {
        /* The fetch is over, published or not: wake whoever waits. */
        ex->coalesce_leader = 0;
        notify_waiters(ex->w, ex->cache_key, ex->cache_key_len);
    }
    free(ex->cache_key);
    free(ex->req_fields_owned);
    cache_object_unref(&ex->stale);
    fill_drop(ex);
    cache_object_unref(&ex->held);
}

int srv_over_tls(const struct conninfo *ci)
{
    /* A background refresh's ci stands in for the request that started
     * it, for the key it refreshes and for what the origin is told. */
    return ci->tls;
}

enum cache_scheme srv_request_scheme(const struct exchange *ex, const struct http_request *r)
{
    if (ex->peer)
        return ex->peer_https ? CACHE_SCHEME_HTTPS : CACHE_SCHEME_HTTP;
    return cache_request_scheme(r, srv_over_tls(ex->ci), ex->w->cfg->mode == MODE_FORWARD);
}

static void build_key(struct exchange *ex, const struct http_request *r)
{
    ex->cache_key = cache_key_primary(r, srv_request_scheme(ex, r), &ex->cache_key_len);
}

/* The request fields the response's Vary is matched on, kept for when it
 * arrives: the exchange's own request's, which outlive the parse. */
static void keep_vary_fields(struct exchange *ex)
{
    const struct http_request *r = ex->req;
    ex->req_fields = r->fields;
    ex->req_nfields = r->nfields;
    /* See the lookup: a Connect call's Accept-Encoding is not varied on. */
    if (!ex->rpc || ex->req_fields_owned)
        return;
    struct http_field *f = malloc(sizeof *f * (r->nfields ? r->nfields : 1));
    unsigned n = 0;
    for (unsigned i = 0; i < r->nfields; i++)
        if (!slice_case_eq(r->fields[i].name, "accept-encoding"))
            f[n++] = r->fields[i];
    ex->req_fields = ex->req_fields_owned = f;
    ex->req_nfields = n;
}

/* RFC 9213: this cache's target list (cache.targeted_fields). */
static struct slice targets_of(const struct config *cfg)
{
    return (struct slice){cfg->cache.targeted_fields, strlen(cfg->cache.targeted_fields)};
}

int cache_stage_strips_field(const struct exchange *ex, struct slice name)
{
    const struct config *cfg = ex->w->cfg;
    if (!cfg->cache.strip_targeted)
        return 0;
    struct http_list_iter it = http_list_begin(targets_of(cfg));
    struct slice t;
    while (http_list_next(&it, &t) > 0)
        if (slice_case_eqs(name, t))
            return 1;
    return 0;
}

/* A response this cache keeps or answers with: the listed targeted fields
 * go when cache.strip_targeted says so (RFC 9213 §2.3 allows it). */
static void strip_targeted(const struct config *cfg, struct cache_object *o)
{
    if (cfg->cache.strip_targeted)
        cache_object_remove_fields(o, targets_of(cfg));
}

static int64_t object_age(const struct cache_object *o, int64_t now)
{
    return cache_age(&o->facts, o->request_time, o->response_time, now);
}

/* Surrogate-Key names the origin's purge groups (Fastly, Varnish xkey): it
 * is meant for caches, so clients do not see it unless
 * proxy.pass_surrogate_key says so; a verified peer is a cache and does. */
int cache_stage_strips_surrogate_key(const struct exchange *ex)
{
    return !ex->w->cfg->proxy.pass_surrogate_key && !ex->peer;
}

/* The range of o->head from its first Surrogate-Key line to the end of its
 * last, to be left out of a client's copy; empty when there is none. Other
 * fields inside the range (only when they sit between two Surrogate-Key
 * lines) are copied to `keep`. Field lines are "name: value" and CRLF there. */
static struct slice surrogate_key_hole(const struct cache_object *o, struct outbuf *keep)
{
    if (!o->surrogate_key)
        return (struct slice){0}; /* the usual case, known since the head was built */
    int first = -1, last = -1;
    for (unsigned i = 0; i < o->nfields; i++)
        if (slice_case_eq(o->fields[i].name, "surrogate-key")) {
            if (first < 0)
                first = (int)i;
            last = (int)i;
        }
    if (first < 0)
        return (struct slice){0};
    for (int i = first + 1; i < last; i++)
        if (!slice_case_eq(o->fields[i].name, "surrogate-key"))
            outbuf_addfield(keep, o->fields[i].name, o->fields[i].value);
    const char *start = o->fields[first].name.p;
    const char *end = o->fields[last].value.p + o->fields[last].value.len + 2;
    return (struct slice){start, (size_t)(end - start)};
}

/* Our fields on an answer from the store: Age (§4.2.3; not on a response
 * held straight from the origin, nor on a 416 of our own), Warning 110 or
 * 111 (0: none), Via, Cache-Status, then the peer's fields. */
static void add_our_fields(struct exchange *ex, const struct cache_object *o, struct outbuf *out,
                           const char *status_field, int with_age, int warning)
{
    if (with_age && o != ex->held)
        outbuf_addfieldu64(out, SLICE_LIT("Age"), (uint64_t)object_age(o, now_s()));
    if (warning == 110)
        outbuf_addfield(out, SLICE_LIT("Warning"), SLICE_LIT("110 - \"Response is Stale\""));
    else if (warning == 111)
        outbuf_addfield(out, SLICE_LIT("Warning"), SLICE_LIT("111 - \"Revalidation Failed\""));
    if (ex->w->cfg->proxy.via)
        outbuf_addfield(out, SLICE_LIT("Via"), (struct slice){ex->w->via, ex->w->via_len});
    outbuf_addstr(out, status_field);
}

/* Send a stored response: full, or 304 when the request's preconditions
 * say the client has it (RFC 9110 §13.2.2, §15.4.5). `warning` is 0, 110
 * or 111. */
static void serve_object(struct exchange *ex, struct cache_object *o, const char *status_field,
                         int warning)
{
    struct outbuf after = {0};
    struct slice hole = {0};
    if (cache_stage_strips_surrogate_key(ex))
        hole = surrogate_key_hole(o, &after);
    add_our_fields(ex, o, &after, status_field, 1, warning);
    ex->status = o->status;
    int with_body = !ex->method_head && o->status != 204 && o->status != 304;
    if (ex->peer && with_body) {
        peer_stage_send(ex, o, &after); /* coded for the peer, if it helps */
        free(after.p);
        return;
    }
    peer_stage_fields(ex, &after);
    ex->resp_started = 1;
    int64_t length = o->status != 204 && o->status != 304 ? (int64_t)o->body->len : -1;
    ex->fe->object(
        ex, &(struct front_object){
                .obj = o, .omit = hole, .ours = &after, .length = length, .with_body = with_body});
}

/* A 304 built from the stored fields that §15.4.5 lists. */
static void serve_304(struct exchange *ex, struct cache_object *o, const char *status_field)
{
    struct outbuf out = {0};
    for (unsigned i = 0; i < o->nfields; i++)
        if (cache_field_in_304(o->fields[i].name)) {
            outbuf_addfield(&out, o->fields[i].name, o->fields[i].value);
        }
    add_our_fields(ex, o, &out, status_field, 1, 0);
    peer_stage_fields(ex, &out);
    ex->status = 304;
    ex->resp_started = 1;
    ex->fe->answer(
        ex, &(struct front_answer){
                .status = 304, .reason = SLICE_LIT("Not Modified"), .length = -1, .ours = &out});
    free(out.p);
}

/* The stored ETag came from the origin (a tag we generated means nothing
 * to it, so revalidation must not send it). */
static int origin_etag(const struct cache_object *o)
{
    const struct http_field *t = cache_object_field(o, "etag");
    return t && !(t->value.len == CACHE_ETAG_LEN && !memcmp(t->value.p, "\"i-", 3));
}

static int request_conditional(const struct http_request *r)
{
    return http_find_field(r->fields, r->nfields, "if-none-match") ||
           http_find_field(r->fields, r->nfields, "if-modified-since");
}

/* If-Range (RFC 9110 §13.1.5): absent, or a strong validator of `o`.
 * An entity-tag compares strongly (a weak one never matches); a date
 * matches an equal Last-Modified only when that is strong (§8.8.2.2: at
 * least a second before the response's Date). */
static int if_range_holds(const struct http_field *rf, unsigned rn, const struct cache_object *o)
{
    const struct http_field *ir = http_find_field(rf, rn, "if-range");
    if (!ir)
        return 1;
    struct slice v = ir->value;
    if (v.len && (v.p[0] == '"' || v.p[0] == 'W')) {
        const struct http_field *etag = cache_object_field(o, "etag");
        return v.p[0] == '"' && etag && etag->value.len && etag->value.p[0] == '"' &&
               slice_eq(etag->value, v);
    }
    const struct http_field *lm = cache_object_field(o, "last-modified");
    int64_t when = http_date_parse(v);
    if (!lm || when == HTTP_DATE_INVALID)
        return 0;
    int64_t modified = http_date_parse(lm->value);
    return modified == when && o->facts.date != HTTP_DATE_INVALID && o->facts.date - modified >= 1;
}

/* 206 with one range of the stored body (§14.4, §15.3.7), sent as slices
 * of the stored segments. */
static void serve_partial(struct exchange *ex, struct cache_object *o, const char *status_field,
                          uint64_t first, uint64_t last, uint64_t complete, uint64_t part_first,
                          struct slice omit)
{
    struct outbuf after = {0};
    /* Surrogate-Key stays out of a 206 as out of a 200; a stored part
     * already leaves its own Content-Range out, and then keeps it (rare:
     * a 206 from an origin that also names purge groups). */
    if (!omit.len && cache_stage_strips_surrogate_key(ex))
        omit = surrogate_key_hole(o, &after);
    add_our_fields(ex, o, &after, status_field, 1, 0);
    peer_stage_fields(ex, &after);
    char range[80];
    int n = snprintf(range, sizeof range, "bytes %llu-%llu/%llu", (unsigned long long)first,
                     (unsigned long long)last, (unsigned long long)complete);
    outbuf_addfield(&after, SLICE_LIT("Content-Range"), (struct slice){range, (size_t)n});
    ex->status = 206;
    ex->resp_started = 1;
    ex->fe->object(ex, &(struct front_object){.obj = o,
                                              .status = 206,
                                              .omit = omit,
                                              .ours = &after,
                                              .length = (int64_t)(last - first + 1),
                                              .first = first - part_first,
                                              .with_body = 1});
}

/* 416 (§15.5.17): no range of the stored body is satisfiable. */
static void serve_unsatisfiable(struct exchange *ex, struct cache_object *o,
                                const char *status_field)
{
    struct outbuf out = {0};
    char range[32];
    int n = snprintf(range, sizeof range, "bytes */%llu", (unsigned long long)o->body->len);
    outbuf_addfield(&out, SLICE_LIT("Content-Range"), (struct slice){range, (size_t)n});
    add_our_fields(ex, o, &out, status_field, 0, 0);
    peer_stage_fields(ex, &out);
    ex->status = 416;
    ex->resp_started = 1;
    ex->fe->answer(ex, &(struct front_answer){.status = 416,
                                              .reason = SLICE_LIT("Range Not Satisfiable"),
                                              .length = 0,
                                              .ours = &out});
    free(out.p);
}

/* A GET with Range on a complete stored 200 (RFC 9110 §14.2): one range ->
 * 206, none satisfiable -> 416; several ranges, an invalid Range, another
 * unit, more than limits.ranges, or an If-Range that does not hold -> the
 * whole 200 (return 0). A peer exchange has its own coding: whole too. */
/* The request's Range field; NULL when absent, or sent twice (Range is a
 * singleton: two lines are invalid and ignored). */
static const struct http_field *request_range(const struct http_field *rf, unsigned rn)
{
    const struct http_field *range = NULL;
    for (unsigned i = 0; i < rn; i++)
        if (slice_case_eq(rf[i].name, "range")) {
            if (range)
                return NULL;
            range = &rf[i];
        }
    return range;
}

static int answer_range(struct exchange *ex, const struct http_field *rf, unsigned rn,
                        struct cache_object *o, const char *status_field)
{
    if (ex->method_head || ex->peer || o->status != 200 || !o->complete)
        return 0;
    const struct http_field *range = request_range(rf, rn);
    if (!range || !if_range_holds(rf, rn, o))
        return 0;
    uint64_t first, last;
    switch (http_range_parse(range->value, o->body->len, (unsigned)ex->w->cfg->limits.ranges,
                             &first, &last)) {
    case HTTP_RANGE_SINGLE:
        serve_partial(ex, o, status_field, first, last, o->body->len, 0, (struct slice){0});
        return 1;
    case HTTP_RANGE_UNSATISFIABLE:
        serve_unsatisfiable(ex, o, status_field);
        return 1;
    default:
        return 0;
    }
}

/* The part a stored 206 holds (RFC 9111 §3.3): its Content-Range, and
 * whether the body is exactly that long. */
static const struct http_field *stored_part(const struct cache_object *p, uint64_t *first,
                                            uint64_t *last, uint64_t *complete)
{
    const struct http_field *cr = cache_object_field(p, "content-range");
    if (!cr || http_content_range_parse(cr->value, first, last, complete) < 0 ||
        p->body->len != *last - *first + 1)
        return NULL;
    return cr;
}

/* §3.3: a stored part answers a request for one range wholly inside it
 * (and nothing else). Its own Content-Range line is left out of the head
 * sent. Returns 1 when it answered. */
static int answer_from_part(struct exchange *ex, const struct http_request *r,
                            struct cache_object *p, const char *status_field)
{
    uint64_t a, b, n, first, last;
    const struct http_field *cr;
    if (ex->method_head || ex->peer || !p->complete || request_conditional(r) ||
        !(cr = stored_part(p, &a, &b, &n)))
        return 0;
    const struct http_field *range = request_range(r->fields, r->nfields);
    if (!range || !if_range_holds(r->fields, r->nfields, p) ||
        http_range_parse(range->value, n, (unsigned)ex->w->cfg->limits.ranges, &first, &last) !=
            HTTP_RANGE_SINGLE ||
        first < a || last > b)
        return 0;
    /* the stored line is "Content-Range: value" and CRLF (object.c build_head) */
    struct slice omit = {cr->name.p, (size_t)(cr->value.p + cr->value.len + 2 - cr->name.p)};
    serve_partial(ex, p, status_field, first, last, n, a, omit);
    return 1;
}

static void hit_status(const struct config *cfg, char *buf, int64_t ttl, const char *detail);

/* A GET with Range that found no complete response: a fresh stored part
 * may answer it. */
static int lookup_part(struct exchange *ex, const struct http_request *r,
                       const struct http_field *lf, unsigned ln)
{
    struct srv_worker *w = ex->w;
    if (ex->method_head || !request_range(r->fields, r->nfields))
        return 0;
    size_t len;
    char *key = cache_key_partial(ex->cache_key, ex->cache_key_len, &len);
    unsigned variants;
    struct cache_object *p = w->store->ops->lookup(w->store, key, len, lf, ln, &variants);
    free(key);
    if (!p)
        return 0;
    int64_t age = object_age(p, ex->req_time);
    int served = 0;
    if (cache_decide(&ex->req_cc, &p->facts, p->lifetime, age) == DECIDE_FRESH) {
        char field[160];
        hit_status(w->cfg, field, p->lifetime - age, NULL);
        served = answer_from_part(ex, r, p, field);
    }
    cache_object_unref(&p);
    if (served)
        ex->fwd = NULL;
    return served;
}

/* Answer from the stored object, honouring the client's preconditions
 * (If-None-Match's 304 wins over Range, §13.2.2) and its Range. */
static void answer_from_store(struct exchange *ex, const struct http_field *rf, unsigned rn,
                              struct cache_object *o, const char *status_field, int warning)
{
    const struct http_field *etag = cache_object_field(o, "etag");
    const struct http_field *lm = cache_object_field(o, "last-modified");
    if (!lm) /* RFC 9111 §4.3.2: without Last-Modified, the Date compares */
        lm = cache_object_field(o, "date");
    if (o->status == 200 && cache_not_modified(rf, rn, etag ? etag->value : (struct slice){0},
                                               lm ? lm->value : (struct slice){0}))
        serve_304(ex, o, status_field);
    else if (!answer_range(ex, rf, rn, o, status_field))
        serve_object(ex, o, status_field, warning);
}

/* "Cache-Status: <name>; hit; ttl=N[; detail=D]" and CRLF without printf:
 * hits are hot. buf holds 160 bytes; the name is at most 63. */
static void hit_status(const struct config *cfg, char *buf, int64_t ttl, const char *detail)
{
    char digits[24];
    int n = 0, neg = ttl < 0;
    uint64_t v = neg ? (uint64_t)-ttl : (uint64_t)ttl;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t p = 14 + strlen(cfg->cache.name) + 11;
    memcpy(buf, "Cache-Status: ", 14);
    memcpy(buf + 14, cfg->cache.name, p - 25);
    memcpy(buf + p - 11, "; hit; ttl=", 11);
    if (neg)
        buf[p++] = '-';
    while (n)
        buf[p++] = digits[--n];
    if (detail) {
        memcpy(buf + p, "; detail=", 9);
        p += 9;
        size_t dl = strlen(detail);
        memcpy(buf + p, detail, dl);
        p += dl;
    }
    field_line_end(buf + p);
}

/* A miss or stale entry: lead the fetch for this key, or park behind the
 * one in flight (return 2). A woken request does not coalesce again: it
 * goes upstream itself if the leader stored nothing. Going upstream, the
 * request's fields are kept for the Vary key of what comes back. */
static enum cache_request_verdict coalesce_or_lead(struct exchange *ex,
                                                   const struct http_request *r, int no_coalesce)
{
    struct srv_worker *w = ex->w;
    if (no_coalesce || !w->co || ex->coalesce_leader) {
        keep_vary_fields(ex);
        return CACHE_REQ_FORWARD;
    }
    if (coalesce_join(w->co, ex->cache_key, ex->cache_key_len, w->id)) {
        ex->coalesce_leader = 1;
        keep_vary_fields(ex);
        return CACHE_REQ_FORWARD;
    }
    ex->park_key = malloc(ex->cache_key_len);
    memcpy(ex->park_key, ex->cache_key, ex->cache_key_len);
    ex->park_key_len = ex->cache_key_len;
    link_insert(&w->parked, &ex->park_link);
    int in_flight;
    struct cache_object *o = coalesce_partial(w->co, ex->park_key, ex->park_key_len, &in_flight);
    if (o) {
        /* already streaming to others: join in, from our own loop turn */
        uint64_t self[COALESCE_MAX_WORKERS / 64] = {0};
        self[w->id / 64] = 1ULL << (w->id % 64);
        post_key(w, self, ex->park_key, ex->park_key_len);
        cache_object_unref(&o);
    }
    return CACHE_REQ_PARKED;
}

/* Tell the workers in `mask` that something happened on key. */
static void post_key(struct srv_worker *w, const uint64_t *mask, const char *key, size_t len)
{
    for (int i = 0; i < w->npeers; i++) {
        if (!(mask[i / 64] & (1ULL << (i % 64))))
            continue;
        struct srv_worker *peer = &w->peers[i];
        char *copy = malloc(len + sizeof(size_t));
        memcpy(copy, &len, sizeof len);
        memcpy(copy + sizeof len, key, len);
        pthread_mutex_lock(&peer->inbox_lock);
        if (!peer->inbox_closed) {
            if (peer->inbox_len == peer->inbox_cap) {
                peer->inbox_cap = peer->inbox_cap ? peer->inbox_cap * 2 : 16;
                peer->inbox = realloc(peer->inbox, peer->inbox_cap * sizeof *peer->inbox);
            }
            peer->inbox[peer->inbox_len++] = copy;
            copy = NULL;
            uv_async_send(&peer->co_async);
        }
        pthread_mutex_unlock(&peer->inbox_lock);
        free(copy);
    }
}

static void notify_waiters(struct srv_worker *w, const char *key, size_t len)
{
    uint64_t mask[COALESCE_MAX_WORKERS / 64];
    if (w->co && coalesce_release(w->co, key, len, mask) > 0)
        post_key(w, mask, key, len);
}

/* The leader's object grew (or ended): wake whoever streams it. */
static void stream_progress(struct srv_worker *w, const char *key, size_t len)
{
    uint64_t mask[COALESCE_MAX_WORKERS / 64];
    if (w->co && coalesce_waiters(w->co, key, len, mask) > 0)
        post_key(w, mask, key, len);
}

void cache_stage_unpark(struct exchange *ex)
{
    if (!ex->park_key)
        return;
    link_remove(&ex->park_link);
    link_remove(&ex->stream_link);
    cache_object_unref(&ex->stream);
    free(ex->park_key);
    ex->park_key = NULL;
}

/* ---- streaming a fetch in flight to the requests that wait on it ----- */

/* The response ended for this waiter: next request, or close. */
static void stream_end(struct exchange *ex)
{
    cache_stage_unpark(ex);
    proxy_done(ex, FRONT_DONE_NEXT); /* then a pipelined request, if any */
}

void cache_stage_stream_pump(struct exchange *ex)
{
    struct cache_object *o = ex->stream;
    /* the state first: when it says done, every byte is already there */
    int state = atomic_load(&o->fill);
    struct outbuf out = ex->resp_head; /* the head leaves with the first bytes */
    ex->resp_head = (struct outbuf){0};
    int drained = 0;
    for (;;) {
        struct cache_segment *s = ex->stream_seg ? ex->stream_seg : o->body->first;
        if (!s) {
            drained = 1;
            break;
        }
        ex->stream_seg = s;
        size_t len = s->len;
        if (ex->stream_off < len) {
            if (ex->fe->queued(ex) + out.len >= WRITE_HIGH_WATER)
                break; /* exchange_front_drained brings us back */
            size_t n = len - ex->stream_off;
            ex->fe->frame(ex, &out, (struct slice){s->data + ex->stream_off, n});
            ex->stream_off = len;
            continue;
        }
        struct cache_segment *next = s->next;
        if (!next) {
            drained = 1;
            break;
        }
        ex->stream_seg = next;
        ex->stream_off = 0;
    }
    if (state == FILL_ABORTED) {
        /* the leader's response broke off: so does ours (RFC 9112 §9.6) */
        free(out.p);
        cache_stage_unpark(ex);
        ex->fe->abort(ex);
        return;
    }
    int done = state == FILL_DONE && drained;
    if (done)
        ex->fe->frame_end(ex, &out);
    if (out.len)
        ex->fe->send(ex, &out);
    else
        free(out.p);
    if (done)
        stream_end(ex);
}

/* A waiter whose request the leader's object answers as it fills: a plain
 * GET (no preconditions: those are answered from the store after the
 * fetch) that selects the same Vary variant. */
static int stream_start(struct exchange *ex, struct cache_object *o)
{
    struct srv_worker *w = ex->w;
    const struct http_request *r = ex->req;
    if (!slice_eq(r->method, SLICE_LIT("GET")) || request_conditional(r) ||
        !cache_object_vary_match(o, r->fields, r->nfields))
        return 0;
    link_remove(&ex->park_link);
    link_insert(&w->streamers, &ex->stream_link);
    ex->stream = o;
    ex->stream_seg = NULL;
    ex->stream_off = 0;
    struct outbuf h = {0};
    /* the stored fields, less Surrogate-Key as on a hit; the status line
     * is the front's */
    int strip_sk = cache_stage_strips_surrogate_key(ex);
    for (unsigned i = 0; i < o->nfields; i++)
        if (!strip_sk || !slice_case_eq(o->fields[i].name, "surrogate-key"))
            outbuf_addfield(&h, o->fields[i].name, o->fields[i].value);
    /* the age it arrived with (§4.2.3), a parent's Age included */
    outbuf_addfieldu64(&h, SLICE_LIT("Age"), (uint64_t)object_age(o, now_s()));
    if (w->cfg->proxy.via)
        outbuf_addfield(&h, SLICE_LIT("Via"), (struct slice){w->via, w->via_len});
    /* RFC 9211 §2.6: collapsed into another request's fetch */
    outbuf_addstr(&h, "Cache-Status: ");
    outbuf_addstr(&h, w->cfg->cache.name);
    outbuf_addstr(&h, "; fwd=");
    outbuf_addstr(&h, ex->fwd ? ex->fwd : "uri-miss");
    outbuf_addstr(&h, "; fwd-status=");
    outbuf_addu64(&h, (uint64_t)o->status);
    outbuf_addstr(&h, "; collapsed");
    outbuf_endline(&h);
    ex->status = o->status;
    ex->resp_started = 1;
    ex->fe->head(ex, &(struct front_head){.status = o->status,
                                          .reason = cache_object_reason(o),
                                          .fields = &h,
                                          .length = o->expected_len,
                                          .unframed = o->expected_len < 0});
    free(h.p);
    cache_stage_stream_pump(ex);
    return 1;
}

/* Wake a parked request the leader's fetch did not answer as it went:
 * it starts again from its exchange's own request (the store may answer
 * it now), and goes upstream itself if not. What the client pipelined
 * behind it is still with the protocol, served after it. */
static void restart_parked(struct exchange *ex)
{
    cache_stage_unpark(ex);
    ex->no_coalesce = 1;
    proxy_restart(ex); /* answered: then a pipelined request, if any */
}

void cache_stage_wake(struct srv_worker *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    char **keys = w->inbox;
    size_t n = w->inbox_len;
    w->inbox = NULL;
    w->inbox_len = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    for (size_t k = 0; k < n; k++) {
        size_t len;
        memcpy(&len, keys[k], sizeof len);
        const char *key = keys[k] + sizeof len;
        /* Waiters: stream the leader's object if it fills, wait if the
         * fetch goes on without one, else run the request again. */
        struct link *l = w->parked.next;
        while (l != &w->parked) {
            struct exchange *x = container_of(l, struct exchange, park_link);
            l = l->next;
            if (x->park_key_len != len || memcmp(x->park_key, key, len))
                continue;
            int in_flight;
            struct cache_object *o = coalesce_partial(w->co, key, len, &in_flight);
            if (o && stream_start(x, o))
                continue;
            cache_object_unref(&o);
            if (!in_flight)
                restart_parked(x);
        }
        /* streamers: more bytes, or the end */
        l = w->streamers.next;
        while (l != &w->streamers) {
            struct exchange *x = container_of(l, struct exchange, stream_link);
            l = l->next;
            if (x->park_key_len == len && !memcmp(x->park_key, key, len))
                cache_stage_stream_pump(x);
        }
        free(keys[k]);
    }
    free(keys);
}

static int has_bypass_field(const struct config *cfg, const struct http_request *r)
{
    struct slice list = {cfg->cache.bypass_fields, strlen(cfg->cache.bypass_fields)};
    struct http_list_iter it = http_list_begin(list);
    struct slice name;
    while (http_list_next(&it, &name) > 0)
        for (unsigned i = 0; i < r->nfields; i++)
            if (slice_case_eqs(r->fields[i].name, name))
                return 1;
    return 0;
}

/* The two readings of a request path every decision is made on: `strict`,
 * its RFC 3986 §6.2.2 normal form (issue 10, finding 9), and `loose`, what
 * an origin that routes loosely may take it for (http_path_loose; issue
 * 10, re-attack C). A "do not cache" reads both, an "allowed" only strict. */
struct request_paths {
    struct slice strict, loose;
};

/* Naming (seed 003) on the last segment of either reading: "/api/setUser;x"
 * or "/api/%2573etUser" reach setUser at a loose origin. */
static int named_mutation(const struct config *cfg, struct slice strict, struct slice loose)
{
    return rules_never_cache_name(strict, cfg->naming.never_cache_prefixes, cfg->naming.n) ||
           rules_never_cache_name(loose, cfg->naming.never_cache_prefixes, cfg->naming.n);
}

/* POST with a rule that allows it, QUERY always (RFC 10008 §2: safe, and
 * the content is part of the key). Naming (seed 003) vetoes a POST, on
 * both readings of the path. `side_effects`: a Connect call whose
 * procedure is not known to be free of them; without a rule that says so,
 * that is the reason it is not cached. */
static int body_cacheable(struct exchange *ex, const struct http_request *r,
                          const struct request_paths *path, const struct rule *rule, int query,
                          int side_effects)
{
    const struct config *cfg = ex->w->cfg;
    if (rule && !rule->cache) {
        ex->cache_detail = "rule";
        return 0;
    }
    if (query)
        return 1;
    if (!slice_eq(r->method, SLICE_LIT("POST"))) {
        ex->cache_detail = "method";
        return 0;
    }
    if (!rule) {
        ex->cache_detail = side_effects ? "side-effects" : "no-rule";
        return 0;
    }
    if (named_mutation(cfg, path->strict, path->loose)) {
        ex->cache_detail = "naming";
        return 0;
    }
    return 1;
}

/* The cache stage proper; `path` holds the readings of the request's path
 * every rule, naming and procedure decision reads, so that "/%61ccount"
 * and "//account" meet the rule for "/account" (issue 10, finding 9 and
 * re-attack C). The key keeps the target as received: two spellings the
 * origin might tell apart never share an entry, and the decisions can only
 * get stricter. */
static enum cache_request_verdict request_stage(struct exchange *ex, const struct http_request *r,
                                                const struct request_paths *path)
{
    struct srv_worker *w = ex->w;
    int no_coalesce = ex->no_coalesce;
    ex->no_coalesce = 0;
    int get = slice_eq(r->method, SLICE_LIT("GET"));
    int head = slice_eq(r->method, SLICE_LIT("HEAD"));
    int query = slice_eq(r->method, SLICE_LIT("QUERY"));
    const struct config *cfg = w->cfg;
    const struct rule *rule = cfg->nrules
                                  ? rules_match(cfg->rules, cfg->nrules, r->method, path->strict,
                                                path->loose, r->fields, r->nfields)
                                  : NULL;
    ex->rule_no = rule ? (int)(rule - cfg->rules) + 1 : 0;
    int by_body = 0;
    struct slice rpc_codec = {0};
    enum connect_call_kind rpc = CONNECT_NONE;
    int side_effects = 0;
    if (!head) {
        const struct http_field *ctf = http_find_field(r->fields, r->nfields, "content-type");
        rpc = connect_classify(r->method, ctf ? ctf->value : (struct slice){"", 0},
                               request_query(r), &rpc_codec);
    }
    if (rpc == CONNECT_STREAM) {
        /* Connect streams, gRPC and gRPC-Web pass untouched, unbuffered. */
        ex->fwd = "bypass";
        ex->cache_detail = "streaming";
        return CACHE_REQ_FORWARD;
    }
    if (rpc == CONNECT_UNARY || rpc == CONNECT_GET) {
        /* The same checks for both forms (issue 10, finding 5). A GET is a
         * Connect call only when its procedure is known to be cacheable:
         * any GET may carry encoding= and message=, and keying one by its
         * message alone would let a crafted query answer for another URL.
         * Otherwise it is an ordinary GET, keyed by its whole target,
         * stored only as the origin's freshness allows, never connect.ttl. */
        /* Procedures are named exactly (connect.cacheable is an allow
         * list), so a loose spelling is no Connect call: the strict form. */
        struct slice proc = connect_procedure_of(path->strict);
        if (connect_procedure_cacheable(&cfg->connect.never, proc))
            rpc = CONNECT_NONE, ex->cache_detail = "procedure"; /* connect.not_cacheable */
        else if (rule && !rule->cache)
            rpc = CONNECT_NONE; /* a do-not-cache rule wins over the descriptors */
        else if (!connect_procedure_cacheable(&cfg->connect.procs, proc)) {
            /* not marked NO_SIDE_EFFECTS; any JSON POST classifies as a
             * unary call, so only one that says it is Connect is told so */
            rpc = CONNECT_NONE;
            side_effects =
                proc.len && http_find_field(r->fields, r->nfields, "connect-protocol-version");
        } else if (rules_never_cache_name(proc, cfg->naming.never_cache_prefixes, cfg->naming.n))
            rpc = CONNECT_NONE, ex->cache_detail = "naming";
    }
    if (cfg->cache.bypass_fields[0] && has_bypass_field(cfg, r)) {
        /* Seed 003: the client's own way around the cache. */
        ex->fwd = "bypass";
        /* an unsafe request still invalidates; an idempotent one need not */
        ex->invalidates =
            !get && !head && !query && !body_cacheable(ex, r, path, rule, 0, side_effects);
        ex->cache_detail = "bypass-field";
        if (ex->invalidates)
            build_key(ex, r);
        return CACHE_REQ_FORWARD;
    }
    if (!get && !head) {
        if (ex->upgrade || ex->cache_detail ||
            (rpc != CONNECT_UNARY && !body_cacheable(ex, r, path, rule, query, side_effects))) {
            /* §4.4: unsafe methods invalidate; safe ones just pass. */
            static const char *const safe[] = {"OPTIONS", "TRACE", "CONNECT", "QUERY", NULL};
            ex->invalidates = 1;
            for (int i = 0; safe[i]; i++)
                if (slice_eq(r->method, (struct slice){safe[i], strlen(safe[i])}))
                    ex->invalidates = 0;
            ex->fwd = "bypass";
            if (!ex->cache_detail)
                ex->cache_detail = ex->upgrade ? "upgrade" : "method";
            if (ex->invalidates) {
                build_key(ex, r);
                /* its response may be kept for GET (store_post_answer) */
                ex->post_may_store = slice_eq(r->method, SLICE_LIT("POST")) && !ex->upgrade;
                ex->req_authorization =
                    http_find_field(r->fields, r->nfields, "authorization") != NULL;
                ex->req_time = now_s();
            }
            return CACHE_REQ_FORWARD; /* a body read ahead goes from memory */
        }
        by_body = rpc == CONNECT_UNARY ? 2 : 1;
        if (r->body != HTTP_BODY_NONE && ex->collected == COLLECT_NONE) {
            ex->fwd = "bypass";
            if (r->body == HTTP_BODY_LENGTH && r->content_length > cfg->body_key.max_bytes) {
                ex->cache_detail = "body-too-large";
                return CACHE_REQ_FORWARD;
            }
            /* Usually the whole body came with the head: key it now. */
            enum collect_need k = collect_ensure(ex, r);
            if (k == COLLECT_READ_MORE)
                return CACHE_REQ_READ_BODY;
            if (k == COLLECT_ANSWERED)
                return CACHE_REQ_ANSWERED;
        }
        if (ex->collected == COLLECT_TOO_LARGE) {
            ex->fwd = "bypass";
            ex->cache_detail = "body-too-large";
            collect_free(ex);
            return CACHE_REQ_FORWARD;
        }
    } else if (ex->upgrade || r->body != HTTP_BODY_NONE) {
        ex->fwd = "bypass";
        ex->cache_detail = ex->upgrade ? "upgrade" : "body";
        return CACHE_REQ_FORWARD;
    } else if (rule && !rule->cache) {
        ex->fwd = "bypass";
        ex->cache_detail = "rule";
        return CACHE_REQ_FORWARD;
    } else if (ex->cache_detail) {
        ex->fwd = "bypass"; /* a Connect GET of a procedure never cached */
        return CACHE_REQ_FORWARD;
    }
    cache_control_parse(r->fields, r->nfields, &ex->req_cc);
    ex->req_authorization = http_find_field(r->fields, r->nfields, "authorization") != NULL;
    ex->req_time = now_s();
    if (by_body) {
        int rc = by_body == 2 ? key_body(ex, r, NULL, 'C', rpc_codec)
                              : key_body(ex, r, rule, query ? 'Q' : 'P', rpc_codec);
        /* the body stays with the exchange: a miss sends it from memory */
        if (rc < 0)
            return CACHE_REQ_ANSWERED;
    } else if (rpc == CONNECT_GET && key_rpc_get(ex, r, rpc_codec) == 0) {
        /* keyed as its POST would be, the query's other parameters too */
    } else {
        rpc = CONNECT_NONE;
        build_key(ex, r);
        ex->rule_ttl = rule ? rule->ttl : 0;
    }
    if (rpc != CONNECT_NONE) {
        ex->rpc = 1;
        ex->rule_ttl = cfg->connect.ttl;
    }
    if (ex->bg_key) {
        /* An internal refresh: the slot its starter took is now ours. */
        if (ex->bg_key_len == ex->cache_key_len &&
            !memcmp(ex->bg_key, ex->cache_key, ex->cache_key_len))
            ex->coalesce_leader = 1;
        else
            notify_waiters(w, ex->bg_key, ex->bg_key_len);
        free(ex->bg_key);
        ex->bg_key = NULL;
    }
    if (ex->req_cc.flags & CC_NO_STORE) {
        ex->fwd = "bypass";
        ex->cache_detail = "no-store";
        return CACHE_REQ_FORWARD; /* the seed's "no-store bypasses the cache" */
    }
    ex->cache_candidate = 1;
    unsigned variants = 0;
    /* A Connect call's Accept-Encoding is not ours to vary on: the origin is
     * asked for identity, which every Connect client accepts. */
    struct http_field rpc_fields[256];
    const struct http_field *lf = r->fields;
    unsigned ln = r->nfields;
    if (ex->rpc) {
        ln = 0;
        for (unsigned i = 0; i < r->nfields && ln < 256; i++)
            if (!slice_case_eq(r->fields[i].name, "accept-encoding"))
                rpc_fields[ln++] = r->fields[i];
        lf = rpc_fields;
    }
    struct cache_object *o =
        w->store->ops->lookup(w->store, ex->cache_key, ex->cache_key_len, lf, ln, &variants);
    char field[160];
    if (!o) {
        if (get && lookup_part(ex, r, lf, ln))
            return CACHE_REQ_ANSWERED;
        ex->fwd = variants ? "vary-miss" : "uri-miss";
        if (ex->req_cc.flags & CC_ONLY_IF_CACHED) {
            reply_error(ex, 504, "only-if-cached and nothing stored");
            return CACHE_REQ_ANSWERED;
        }
        return coalesce_or_lead(ex, r, no_coalesce);
    }
    int64_t age = object_age(o, ex->req_time);
    enum cache_decision d = cache_decide(&ex->req_cc, &o->facts, o->lifetime, age);
    if (d == DECIDE_FRESH || d == DECIDE_STALE_OK) {
        hit_status(cfg, field, o->lifetime - age, NULL);
        answer_from_store(ex, r->fields, r->nfields, o, field, d == DECIDE_STALE_OK ? 110 : 0);
        cache_object_unref(&o);
        ex->fwd = NULL;
        return CACHE_REQ_ANSWERED;
    }
    if (ex->req_cc.flags & CC_ONLY_IF_CACHED) {
        cache_object_unref(&o);
        reply_error(ex, 504, "only-if-cached and the stored response is not usable");
        return CACHE_REQ_ANSWERED;
    }
    if (d == DECIDE_STALE_SWR && !ex->ci->internal &&
        background_revalidate(ex, r, ex->cache_key, ex->cache_key_len) == 0) {
        /* RFC 5861 §3: stale now, fresh for whoever comes next. */
        hit_status(cfg, field, o->lifetime - age, "stale-while-revalidate");
        answer_from_store(ex, r->fields, r->nfields, o, field, 110);
        cache_object_unref(&o);
        ex->fwd = NULL;
        return CACHE_REQ_ANSWERED;
    }
    /* Stale (or refused by the request): revalidate when we can. */
    int fresh = o->lifetime > age;
    ex->fwd = fresh ? "request" : "stale";
    /* Validators only on GET: a conditional POST means something else
     * (RFC 9110 §13.1.2: 412 when it fails). */
    if (!by_body && !request_conditional(r) &&
        (origin_etag(o) || cache_object_field(o, "last-modified")))
        ex->revalidating = 1;
    ex->stale = o;
    return coalesce_or_lead(ex, r, fresh || no_coalesce);
}

enum cache_request_verdict cache_stage_request(struct exchange *ex, const struct http_request *r)
{
    if (!ex->w->store) {
        ex->no_coalesce = 0;
        return CACHE_REQ_FORWARD;
    }
    ex->purge_generation = store_purge_generation(ex->w->store);
    struct slice raw = request_path(r);
    if (http_path_is_plain(raw)) {
        /* the usual API path: both readings are the path as sent */
        struct request_paths paths = {raw, raw};
        return request_stage(ex, r, &paths);
    }
    /* both readings side by side: each is no longer than the path */
    char small[1024];
    char *buf = 2 * raw.len <= sizeof small ? small : malloc(2 * raw.len);
    if (!buf)
        abort();
    size_t len, loose_len;
    enum cache_request_verdict k;
    http_path_loose(raw, buf + raw.len, &loose_len);
    if (http_path_normalize(raw, buf, &len) != HTTP_PATH_OK) {
        /* the parser refuses a bad escape; should one get here, no rule
         * could be trusted to see the path, so nothing is cached */
        ex->no_coalesce = 0;
        ex->fwd = "bypass";
        ex->cache_detail = "path";
        k = CACHE_REQ_FORWARD;
    } else {
        struct request_paths paths = {{buf, len}, {buf + raw.len, loose_len}};
        k = request_stage(ex, r, &paths);
    }
    if (buf != small)
        free(buf);
    return k;
}

/* Validators for our revalidation of ex->stale (§4.3.1). */
void cache_stage_upstream_fields(struct exchange *ex, struct outbuf *o)
{
    if (!ex->revalidating)
        return;
    const struct http_field *etag = cache_object_field(ex->stale, "etag");
    const struct http_field *lm = cache_object_field(ex->stale, "last-modified");
    if (etag && origin_etag(ex->stale))
        outbuf_addfield(o, SLICE_LIT("If-None-Match"), etag->value);
    if (lm)
        outbuf_addfield(o, SLICE_LIT("If-Modified-Since"), lm->value);
}

struct url_key {
    const char *key;
    size_t len;
};

static int body_key_of_url(const struct cache_object *o, void *arg)
{
    const struct url_key *u = arg;
    return cache_key_is_body_of(o->key, o->key_len, u->key, u->len);
}

unsigned cache_stage_remove_url(struct store *st, const char *url_key, size_t len)
{
    unsigned n = st->ops->remove(st, url_key, len);
    /* Entries keyed by a body at this URL go too (issue 4): POST, QUERY and
     * Connect calls. A full scan, skipped when the store's counting filter
     * says there are none; an index of keys by URL is the better structure
     * once stores grow. */
    struct url_key u = {url_key, len};
    if (st->ops->may_hold_body_keys(st, url_key, len))
        n += st->ops->remove_matching(st, body_key_of_url, &u);
    return n;
}

/* The GET key of a Location or Content-Location value on the request's
 * own origin (RFC 9111 §4.4: same scheme and authority): a path, or an
 * absolute URI with our scheme and authority; NULL for another origin.
 * malloc'd. */
static char *same_host_key(const struct exchange *ex, struct slice v, size_t *len)
{
    struct cache_key_url own;
    if (cache_key_parse(ex->cache_key, ex->cache_key_len, &own) != CACHE_KEY_PARSED)
        return NULL;
    struct slice auth = own.authority;
    const char *scheme = cache_scheme_name(own.scheme);
    size_t pre = strlen(scheme) + 3; /* "scheme://" */
    struct slice path;
    if (v.len && v.p[0] == '/' && !(v.len > 1 && v.p[1] == '/')) {
        path = v;
    } else if (v.len >= pre + auth.len && !strncasecmp(v.p, scheme, pre - 3) &&
               !memcmp(v.p + pre - 3, "://", 3) &&
               slice_case_eqs((struct slice){v.p + pre, auth.len}, auth) &&
               (v.len == pre + auth.len || v.p[pre + auth.len] == '/' ||
                v.p[pre + auth.len] == '?')) {
        path = (struct slice){v.p + pre + auth.len, v.len - pre - auth.len};
    } else {
        return NULL;
    }
    return cache_key_for(own.scheme, auth, path, len);
}

static void invalidate(struct exchange *ex, const struct http_response *res)
{
    struct store *st = ex->w->store;
    cache_stage_remove_url(st, ex->cache_key, ex->cache_key_len);
    /* a fetch of it in flight (a client's, or one gone on without it)
     * began before this answer: not stored when it ends */
    if (ex->w->co)
        coalesce_invalidate(ex->w->co, ex->cache_key, ex->cache_key_len);
    /* §4.4: Location and Content-Location too, when on the same host. */
    for (unsigned i = 0; i < res->nfields; i++) {
        const struct http_field *f = &res->fields[i];
        if (!slice_case_eq(f->name, "location") && !slice_case_eq(f->name, "content-location"))
            continue;
        size_t len;
        char *key = same_host_key(ex, f->value, &len);
        if (!key)
            continue; /* another host: never invalidated (§4.4) */
        st->ops->remove(st, key, len);
        if (ex->w->co)
            coalesce_invalidate(ex->w->co, key, len);
        free(key);
    }
}

/* RFC 9111 §4.4: the leader's response was asked for before an unsafe
 * request to its URI succeeded (invalidate): storing it would bring back
 * what the invalidation removed. */
static int invalidated_in_flight(const struct exchange *ex)
{
    return ex->coalesce_leader && ex->w->co &&
           coalesce_flight_state(ex->w->co, ex->cache_key, ex->cache_key_len) ==
               COALESCE_FLIGHT_INVALIDATED;
}

/* RFC 9110 §9.3.3, RFC 9111 §4: a 200 to a POST whose Content-Location is
 * the POST's own target, with explicit freshness, is a representation of
 * that resource and may answer a later GET of it. It is judged as a GET's
 * response would be; a Vary cannot be keyed (the request's fields are not
 * kept for a POST), so such a response is not kept. */
static void store_post_answer(struct exchange *ex, const struct http_response *res)
{
    const struct config *cfg = ex->w->cfg;
    const struct http_field *cl = http_find_field(res->fields, res->nfields, "content-location");
    if (!ex->post_may_store || res->status != 200 || !cl ||
        http_find_field(res->fields, res->nfields, "vary") ||
        (res->has_content_length && res->content_length > cfg->cache.max_object_size))
        return;
    size_t len;
    char *key = same_host_key(ex, cl->value, &len);
    int own = key && len == ex->cache_key_len && !memcmp(key, ex->cache_key, len);
    free(key);
    if (!own)
        return;
    struct cache_response_facts facts;
    cache_response_facts(res->fields, res->nfields, res->status, &facts);
    cache_facts_targeted(res->fields, res->nfields, targets_of(cfg), &facts);
    struct cache_control none;
    cache_control_parse(NULL, 0, &none);
    int explicit_freshness = facts.cc.max_age != CC_UNSET || facts.cc.s_maxage != CC_UNSET ||
                             (facts.has_expires && facts.expires != HTTP_DATE_INVALID);
    if (!explicit_freshness || (facts.cc.flags & CC_INVALID) ||
        cache_storable(1, &none, ex->req_authorization, &facts) != STORE_OK)
        return;
    int64_t now = now_s(), lifetime;
    int heuristic;
    lifetime = cache_lifetime(&facts, now, (unsigned)cfg->cache.heuristic_percent,
                              (int64_t)(cfg->cache.heuristic_max / 1000), &heuristic);
    ex->fill = cache_object_new(ex->cache_key, ex->cache_key_len, res, NULL, 0, ex->req_time, now,
                                lifetime);
    if (facts.targeted)
        cache_facts_targeted(ex->fill->fields, ex->fill->nfields, targets_of(cfg),
                             &ex->fill->facts);
    strip_targeted(cfg, ex->fill);
    ex->fill->expected_len = res->has_content_length ? (int64_t)res->content_length : -1;
    if (!fill_covers(ex, 0)) {
        fill_refused(ex);
        cache_object_unref(&ex->fill); /* relayed, not stored */
    }
}

void cache_stage_status_field(struct exchange *ex, int status, struct outbuf *o)
{
    if (!ex->fwd)
        return;
    outbuf_addstr(o, "Cache-Status: ");
    outbuf_addstr(o, ex->w->cfg->cache.name);
    outbuf_addstr(o, "; fwd=");
    outbuf_addstr(o, ex->fwd);
    /* A bypass says why and nothing more: the cache took no part in it. */
    if (status && strcmp(ex->fwd, "bypass")) {
        outbuf_addstr(o, "; fwd-status=");
        outbuf_addu64(o, (uint64_t)status);
    }
    /* not on an error we answer instead (a held fetch that broke off) */
    if (ex->fill && status == ex->fill->status) {
        outbuf_addstr(o, "; stored");
        ex->said_stored = 1;
    }
    if (ex->cache_detail) {
        outbuf_addstr(o, "; detail=");
        outbuf_addstr(o, ex->cache_detail);
    }
    outbuf_endline(o);
}

static void serve_stale(struct exchange *ex, int upstream_status, int warning)
{
    char field[160];
    int n =
        snprintf(field, sizeof field - 3, "Cache-Status: %s; fwd=stale; fwd-status=%d; ttl=%lld",
                 ex->w->cfg->cache.name, upstream_status,
                 (long long)(ex->stale->lifetime - object_age(ex->stale, now_s())));
    field_line_end(field + (n < (int)sizeof field - 3 ? n : (int)sizeof field - 4));
    serve_object(ex, ex->stale, field, warning);
}

int cache_stage_serve_stale_on_error(struct exchange *ex, int status)
{
    if (!ex->stale || ex->resp_started)
        return 0;
    int64_t age = object_age(ex->stale, now_s());
    if (!ex->w->cfg->cache.serve_stale_on_error &&
        !cache_stale_if_error(&ex->req_cc, &ex->stale->facts, ex->stale->lifetime, age))
        return 0;
    log_msg(LOG_WARN, "%.*s: origin failed (%d), serving stale", (int)ex->target.len, ex->target.p,
            status);
    serve_stale(ex, status, 111);
    return 1;
}

/* Seed 004: a 200 that cannot be stored still gets the ETag its body
 * hashes to, and a client that already holds that body gets a 304 instead
 * of the download. The body must be complete before the head can carry
 * the tag, so only responses of a known, bounded size are held. */
static int holdable(const struct exchange *ex, const struct http_response *res)
{
    const struct config *cfg = ex->w->cfg;
    return cfg->cache.generate_etag && res->status == 200 && !ex->method_head &&
           res->has_content_length && res->content_length <= cfg->cache.etag_hold_max &&
           !http_find_field(res->fields, res->nfields, "etag");
}

static int hold(struct exchange *ex, const struct http_response *res)
{
    const struct config *cfg = ex->w->cfg;
    if (!holdable(ex, res))
        return 0;
    /* Unstored, the held body is this client's memory alone, read before
     * it takes a byte: no more than its protocol lets wait for it (h1:
     * WRITE_HIGH_WATER; h2: its stream's share of h2.max_output_buffer,
     * or 100 streams would hold 100 bodies). A larger one streams
     * untagged, within that bound. */
    size_t queued = ex->fe->queued(ex);
    if (res->content_length > (uint64_t)(queued < WRITE_HIGH_WATER ? WRITE_HIGH_WATER - queued : 0))
        return 0;
    ex->held =
        cache_object_new(ex->cache_key, ex->cache_key_len, res, NULL, 0, ex->req_time, now_s(), 0);
    strip_targeted(cfg, ex->held);
    return 1;
}

/* The held response is complete: tag it, then send it, or a 304 when the
 * client's If-None-Match names that tag (RFC 9110 §13.1.2). Set-Cookie
 * would be lost in a 304, so such a response always goes out whole. */
static void release_held(struct exchange *ex)
{
    int match = 0;
    /* held for its tag (above), or to be coded for a peer (peer_stage.c) */
    if (ex->w->cfg->cache.generate_etag && ex->held->status == 200 &&
        !cache_object_field(ex->held, "etag")) {
        char tag[CACHE_ETAG_LEN];
        cache_etag_of_body(ex->held->body, tag);
        struct slice etag = {tag, sizeof tag};
        cache_object_add_field(ex->held, SLICE_LIT("ETag"), etag);
        match = !cache_object_field(ex->held, "set-cookie") &&
                cache_not_modified(ex->req_fields, ex->req_nfields, etag, (struct slice){0});
    }
    struct outbuf status = {0};
    cache_stage_status_field(ex, ex->held->status, &status);
    outbuf_add(&status, "", 1);
    if (match)
        serve_304(ex, ex->held, status.p);
    else
        serve_object(ex, ex->held, status.p, 0);
    free(status.p);
    cache_object_unref(&ex->held);
}

/* A 206 this cache can keep as a part: the request was a GET with one
 * Range, the response has one Content-Range with a known complete length
 * (a multipart/byteranges has none), and a Content-Length, if any, that
 * agrees with it. */
static int storable_part(const struct exchange *ex, const struct http_response *res)
{
    uint64_t a, b, n;
    const struct http_field *cr = NULL;
    for (unsigned i = 0; i < res->nfields; i++)
        if (slice_case_eq(res->fields[i].name, "content-range")) {
            if (cr)
                return 0;
            cr = &res->fields[i];
        }
    return !ex->method_head && request_range(ex->req_fields, ex->req_nfields) && cr &&
           http_content_range_parse(cr->value, &a, &b, &n) == 0 &&
           (!res->has_content_length || res->content_length == b - a + 1);
}

/* §3: may this exchange store a response with these facts? The RFC's
 * verdict, with a rule's ttl (or connect.ttl, for a 200 only: a Connect
 * error is stored only when its handler says so) standing in for
 * freshness; *rule_lifetime is that ttl in seconds when it applies, else
 * -1. The same decision for a fresh response and for a 304 merge. */
static enum cache_store_verdict store_verdict(const struct exchange *ex,
                                              const struct cache_response_facts *facts,
                                              int64_t *rule_lifetime)
{
    enum cache_store_verdict v = cache_storable(1, &ex->req_cc, ex->req_authorization, facts);
    int explicit_freshness = facts->cc.max_age != CC_UNSET || facts->cc.s_maxage != CC_UNSET ||
                             facts->has_expires || (facts->cc.flags & CC_INVALID);
    int ttl_applies = ex->rule_ttl && (!ex->rpc || facts->status == 200);
    if (v == STORE_NO_FRESHNESS && ttl_applies && cache_status_heuristic(facts->status))
        v = STORE_OK;
    if (v == STORE_OK && (ex->body_keyed || ex->rpc) && !explicit_freshness && !ttl_applies)
        v = STORE_NO_FRESHNESS; /* no heuristics for a response to a body or a call */
    *rule_lifetime = !explicit_freshness && ttl_applies ? (int64_t)(ex->rule_ttl / 1000) : -1;
    return v;
}

/* A response stored with no lifetime is stale at once (§4.2), and without
 * a validator (§4.3.1) it cannot be revalidated either: storing it gains
 * nothing, unless it may be served stale on error (cache.serve_stale_on_error,
 * or RFC 5861 stale-if-error) or while revalidating, or a validator lets a client's conditional
 * request be answered. */
static int no_gain_exception(const struct cache_response_facts *f, bool serve_stale_on_error)
{
    return f->has_validator || serve_stale_on_error ||
           (f->cc.stale_if_error != CC_UNSET && f->cc.stale_if_error > 0) ||
           (f->cc.stale_while_revalidate != CC_UNSET && f->cc.stale_while_revalidate > 0);
}

/* A PURGE answered while this request was upstream means what it fetched
 * (a 200, or the purged object a 304 revalidated) may be what was purged:
 * its client has it, the store does not (the answer to a purge is that no
 * earlier response reappears). Checked again after the insert, which can
 * race a purge on another thread. Takes the caller's reference, and
 * `reserved` (what the store set aside for o, inserted or given back). */
static void insert_unless_purged(struct exchange *ex, struct cache_object *o, size_t reserved)
{
    struct store *st = ex->w->store;
    /* The stale object this fetch revalidated is what `o` replaces, and
     * nothing reads it from here on (the response is whole, or answered
     * from a 304's merge). Still held, the store would retire it as in use
     * and charge its body twice (a merge shares it), so an object over half
     * a shard could never be refreshed: refused, the next request a miss. */
    cache_object_unref(&ex->stale);
    if (store_purged_since(st, ex->purge_generation)) {
        ex->cache_detail = "purged";
        if (reserved)
            st->ops->release(st, o->key, o->key_len, reserved);
        cache_object_unref(&o);
        return;
    }
    struct cache_object *kept = o; /* its key, past the insert */
    cache_object_ref(kept);
    st->ops->insert(st, o, reserved);
    if (store_purged_since(st, ex->purge_generation)) {
        ex->cache_detail = "purged";
        st->ops->remove(st, kept->key, kept->key_len);
    }
    cache_object_unref(&kept);
}

/* §4.3.4: a 304 to our revalidation freshens the stored response, and the
 * merge is served. The merge is a new response, so it is stored only if
 * it may be (a 304 can say private or no-store: then the entry goes, as it
 * would for a 200 saying so). A Set-Cookie in the 304 goes to this client
 * only (object.c never merges it). */
static enum cache_response_verdict serve_revalidated(struct exchange *ex,
                                                     const struct http_response *res, int64_t now)
{
    struct srv_worker *w = ex->w;
    const struct config *cfg = w->cfg;
    struct cache_object *fresh = cache_object_revalidated(
        ex->stale, res, ex->req_fields, ex->req_nfields, ex->req_time, now,
        (unsigned)cfg->cache.heuristic_percent, (int64_t)(cfg->cache.heuristic_max / 1000));
    /* RFC 9213: a targeted field in the merge (the 304's, or the stored
     * one) decides; a stripped one was applied when first stored. */
    if (cache_facts_targeted(fresh->fields, fresh->nfields, targets_of(cfg), &fresh->facts) ||
        fresh->facts.targeted) {
        int h;
        fresh->lifetime = cache_lifetime(&fresh->facts, now, (unsigned)cfg->cache.heuristic_percent,
                                         (int64_t)(cfg->cache.heuristic_max / 1000), &h);
    }
    strip_targeted(cfg, fresh);
    int64_t rule_lifetime;
    enum cache_store_verdict v = store_verdict(ex, &fresh->facts, &rule_lifetime);
    if (rule_lifetime >= 0)
        fresh->lifetime = rule_lifetime;
    if (v == STORE_OK && invalidated_in_flight(ex)) {
        /* not stored again: the stale one was removed with the URI */
    } else if (v == STORE_OK) {
        cache_object_ref(fresh);
        insert_unless_purged(ex, fresh, 0); /* what a PURGE removed stays out */
    } else {
        w->store->ops->remove(w->store, ex->cache_key, ex->cache_key_len);
        ex->cache_detail = cache_store_reason(v);
    }
    struct outbuf after = {0};
    char field[160];
    snprintf(field, sizeof field, "Cache-Status: %s; fwd=%s; fwd-status=304; ttl=%lld",
             cfg->cache.name, ex->fwd, (long long)(fresh->lifetime - object_age(fresh, now)));
    outbuf_addstr(&after, field);
    if (v != STORE_OK) {
        outbuf_addstr(&after, "; detail=");
        outbuf_addstr(&after, ex->cache_detail);
    }
    outbuf_endline(&after);
    for (unsigned i = 0; i < res->nfields; i++)
        if (slice_case_eq(res->fields[i].name, "set-cookie") ||
            slice_case_eq(res->fields[i].name, "set-cookie2"))
            outbuf_addfield(&after, res->fields[i].name, res->fields[i].value);
    outbuf_add(&after, "", 1);
    /* we only revalidate for clients that sent no preconditions; a Range
     * is answered from the merge */
    answer_from_store(ex, ex->req_fields, ex->req_nfields, fresh, after.p, 0);
    free(after.p);
    cache_object_unref(&fresh);
    return CACHE_RESP_ANSWERED;
}

enum cache_response_verdict cache_stage_response(struct exchange *ex,
                                                 const struct http_response *res)
{
    struct srv_worker *w = ex->w;
    const struct config *cfg = w->cfg;
    if (!w->store)
        return CACHE_RESP_RELAY;
    if (ex->invalidates) {
        if (res->status >= 200 && res->status < 400) {
            invalidate(ex, res);
            store_post_answer(ex, res);
        }
        return CACHE_RESP_RELAY;
    }
    if (!ex->cache_candidate)
        return CACHE_RESP_RELAY;
    int64_t now = now_s();
    if (ex->stale && ex->revalidating && res->status == 304)
        return serve_revalidated(ex, res, now);
    if (res->status >= 500 && cache_stage_serve_stale_on_error(ex, res->status))
        return CACHE_RESP_ANSWERED;
    struct cache_response_facts facts;
    cache_response_facts(res->fields, res->nfields, res->status, &facts);
    cache_facts_targeted(res->fields, res->nfields, targets_of(cfg), &facts);
    int64_t rule_lifetime;
    /* §3.3: a 206 with one Content-Range, to a GET with Range, is kept as
     * a part, judged as the 200 it is part of; stored apart (key.h). */
    int part = res->status == 206 && storable_part(ex, res);
    struct cache_response_facts judged = facts;
    if (part)
        judged.status = 200;
    enum cache_store_verdict v = store_verdict(ex, &judged, &rule_lifetime);
    if (v == STORE_OK && ex->method_head)
        v = STORE_HEAD;
    if (v == STORE_OK && res->has_content_length &&
        res->content_length > cfg->cache.max_object_size) {
        ex->cache_detail = "too-large";
        return CACHE_RESP_RELAY;
    }
    int heuristic;
    int64_t lifetime = cache_lifetime(&facts, now, (unsigned)cfg->cache.heuristic_percent,
                                      (int64_t)(cfg->cache.heuristic_max / 1000), &heuristic);
    if (rule_lifetime >= 0)
        lifetime = rule_lifetime;
    /* never fresh, never revalidated: nothing to gain. It streams through
     * as it did when it was stored (not held for a generated ETag). */
    int no_gain = v == STORE_OK && lifetime <= 0 &&
                  !no_gain_exception(&facts, cfg->cache.serve_stale_on_error);
    if (no_gain)
        v = STORE_NO_FRESHNESS;
    if (v != STORE_OK) {
        ex->cache_detail = cache_store_reason(v);
        if (ex->stale && res->status < 500)
            w->store->ops->remove(w->store, ex->cache_key, ex->cache_key_len);
        return !no_gain && hold(ex, res) ? CACHE_RESP_HOLD : CACHE_RESP_RELAY;
    }
    if (store_purged_since(w->store, ex->purge_generation)) {
        ex->cache_detail = "purged"; /* fetched across a PURGE: not stored */
        return CACHE_RESP_RELAY;
    }
    if (part) {
        size_t plen;
        char *pkey = cache_key_partial(ex->cache_key, ex->cache_key_len, &plen);
        ex->fill = cache_object_new(pkey, plen, res, ex->req_fields, ex->req_nfields, ex->req_time,
                                    now, lifetime);
        free(pkey);
    } else {
        ex->fill = cache_object_new(ex->cache_key, ex->cache_key_len, res, ex->req_fields,
                                    ex->req_nfields, ex->req_time, now, lifetime);
    }
    cache_object_expect(ex->fill, res->has_content_length ? (int64_t)res->content_length : -1);
    if (res->has_content_length && cache_object_size_with_body(ex->fill, res->content_length) >
                                       w->store->ops->object_limit(w->store)) {
        /* decided before the head goes out: it would not fit a shard */
        cache_object_unref(&ex->fill);
        ex->cache_detail = "too-large";
        return CACHE_RESP_RELAY;
    }
    /* The stale object this 200 replaces is not read from here on: held,
     * it would be in use, and an object over half a shard could never be
     * refreshed (its reservation refused, as its insert was before). Not
     * when the 200 is held whole to be tagged, or may be for a peer
     * (peer_stage_hold): nothing has gone out until its last byte, and if
     * the origin breaks off first the stale copy answers (stale-if-error,
     * RFC 5861 §4). */
    if (!holdable(ex, res) && !ex->peer)
        cache_object_unref(&ex->stale);
    if (!fill_covers(ex, 0)) {
        /* no room in its shard (every object there in use or set aside):
         * relayed unstored, within the client's own buffers */
        fill_refused(ex);
        cache_object_unref(&ex->fill);
        return hold(ex, res) ? CACHE_RESP_HOLD : CACHE_RESP_RELAY;
    }
    if (holdable(ex, res)) {
        /* Seed 004 on the first response too: the client whose request
         * stores it gets the tag hits will carry, so it can revalidate.
         * The object being filled is the one held (release_held tags it,
         * cache_stage_finish stores it); waiters are not streamed a head
         * that is about to change, they are answered from the store. */
        cache_object_ref(ex->fill);
        ex->held = ex->fill;
    }
    if (facts.targeted)
        cache_facts_targeted(ex->fill->fields, ex->fill->nfields, targets_of(cfg),
                             &ex->fill->facts);
    strip_targeted(cfg, ex->fill);
    if (ex->coalesce_leader && !ex->method_head && !ex->held && !part) {
        /* Waiters get this response as it arrives, not after. */
        coalesce_set_partial(w->co, ex->cache_key, ex->cache_key_len, ex->fill);
        stream_progress(w, ex->cache_key, ex->cache_key_len);
    }
    return ex->held ? CACHE_RESP_HOLD : CACHE_RESP_RELAY;
}

/* A fill past what the store takes is fed on, unstored, while requests
 * collapsed onto it stream it (their references beyond the fetch's own and
 * the coalescing table's), up to cache.max_stream_buffer: its body is held
 * whole from the first byte for the slowest of them. Past that bound, or
 * once they are gone, it is given up. */
static int feeds_followers(const struct exchange *ex, size_t body_len)
{
    return ex->fill->shared && atomic_load(&ex->fill->refs) > 2 &&
           body_len <= ex->w->cfg->cache.max_stream_buffer;
}

void cache_stage_body(struct exchange *ex, const char *p, size_t n)
{
    if (ex->held && ex->held != ex->fill)
        cache_object_append(ex->held, p, n);
    if (!ex->fill)
        return;
    size_t len = ex->fill->body->len;
    int outgrown =
        ex->fill_unstored || len + n > ex->w->cfg->cache.max_object_size ||
        (ex->fill->expected_len < 0 && cache_object_size_with_body(ex->fill, len + n) >
                                           ex->w->store->ops->object_limit(ex->w->store));
    if (outgrown || !fill_covers(ex, len + n)) {
        /* never stored now: nothing stays set aside for it */
        fill_release(ex);
        if (!outgrown)
            fill_refused(ex);
        else if (!ex->fill_unstored)
            ex->cache_detail = "too-large";
        if (ex->held == ex->fill)
            cache_object_append(ex->held, p, n); /* held keeps its own reference */
        if (feeds_followers(ex, len + n)) {
            /* Too large to store, but requests collapsed onto this fetch
             * stream it: they get the whole response from the fill, which
             * is never inserted (Varnish's transient busy object). */
            ex->fill_unstored = 1;
            cache_object_append(ex->fill, p, n);
            stream_progress(ex->w, ex->cache_key, ex->cache_key_len);
            return;
        }
        if (ex->fill->shared) { /* its streamers cannot have the rest */
            atomic_store(&ex->fill->fill, FILL_ABORTED);
            /* waiters not yet streaming go upstream themselves when the
             * fetch ends, rather than start on a cut-off body */
            coalesce_drop_partial(ex->w->co, ex->cache_key, ex->cache_key_len);
            stream_progress(ex->w, ex->cache_key, ex->cache_key_len);
        }
        cache_object_unref(&ex->fill); /* streams on, unstored */
        return;
    }
    cache_object_append(ex->fill, p, n);
    if (ex->fill->shared)
        stream_progress(ex->w, ex->cache_key, ex->cache_key_len);
}

void cache_stage_finish(struct exchange *ex, int complete)
{
    if (ex->held && complete)
        release_held(ex);
    if (!ex->fill)
        return;
    if (complete && invalidated_in_flight(ex)) {
        if (ex->fill->shared) { /* its streamers have it whole: they end well */
            ex->fill->complete = 1;
            atomic_store(&ex->fill->fill, FILL_DONE);
        }
        fill_drop(ex);
        return;
    }
    if (complete) {
        ex->fill->complete = 1;
        atomic_store(&ex->fill->fill, FILL_DONE); /* before the wake-up that ends streams */
        if (ex->fill_unstored) {
            fill_drop(ex); /* its streamers had it all; never stored */
            return;
        }
        if (ex->fill->status == 200 && ex->w->cfg->cache.generate_etag &&
            !cache_object_field(ex->fill, "etag")) {
            char tag[CACHE_ETAG_LEN];
            cache_etag_of_body(ex->fill->body, tag);
            struct slice etag = {tag, sizeof tag};
            if (ex->fill->shared) {
                /* streamers read its head: store a tagged copy instead */
                struct cache_object *tagged =
                    cache_object_with_field(ex->fill, SLICE_LIT("ETag"), etag);
                cache_object_unref(&ex->fill); /* its reservation is the copy's */
                ex->fill = tagged;
            } else {
                cache_object_add_field(ex->fill, SLICE_LIT("ETag"), etag);
            }
        }
        uint64_t a, b, n;
        if (ex->fill->status == 206 && !stored_part(ex->fill, &a, &b, &n)) {
            fill_drop(ex); /* not the part it said it was */
            return;
        }
        if (ex->fill->status == 200 && ex->fill->key[0] == 'G') {
            /* a complete response replaces the parts of it (§3.3) */
            struct store *st = ex->w->store;
            if (st->ops->may_hold_body_keys(st, ex->fill->key, ex->fill->key_len)) {
                size_t plen;
                char *pkey = cache_key_partial(ex->fill->key, ex->fill->key_len, &plen);
                st->ops->remove(st, pkey, plen);
                free(pkey);
            }
        }
        cache_object_trim(&ex->fill);
        insert_unless_purged(ex, ex->fill, ex->fill_reserved); /* the charge moves over */
        ex->fill_reserved = 0;
        ex->fill = NULL;
    } else {
        fill_drop(ex); /* §3: incomplete responses are not stored */
    }
}
