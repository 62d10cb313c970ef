/* An HTTP/2 session's responses: HEADERS (h2_stream_respond, held or
 * interim), response bodies queued per stream as pieces (bytes, read
 * blocks, stored objects by reference), and the batch one flush writes:
 * frame bytes copied, DATA payloads as slices of what the stream queued
 * (NGHTTP2_DATA_FLAG_NO_COPY + send_data_callback), so a stored body
 * reaches the socket without a copy (design §5). */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "server/server.h"
#include "server/h2_session_internal.h"
#include "cache/object.h"

/* ---- the batch -------------------------------------------------------- */

void h2_chunk_unref(struct h2_chunk *k)
{
    if (k && --k->refs == 0) {
        free(k->heap);
        free(k);
    }
}

struct h2_batch *h2_batch_new(void)
{
    struct h2_batch *b = calloc(1, sizeof *b);
    if (!b)
        srv_panic(__FILE__, __LINE__, "out of memory");
    return b;
}

void h2_batch_release(void *arg)
{
    struct h2_batch *b = arg;
    for (unsigned i = 0; i < b->nchunks; i++)
        h2_chunk_unref(b->chunks[i]);
    for (unsigned i = 0; i < b->nobjs; i++)
        cache_object_unref(&b->objs[i]);
    free(b->chunks);
    free(b->objs);
    free(b->v);
    free(b->bytes.p);
    free(b);
}

static struct h2_vec *batch_vec(struct h2_batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        if (!b->v)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    return &b->v[b->n++];
}

void h2_batch_copy(struct h2_batch *b, const void *p, size_t n)
{
    if (!n)
        return;
    size_t off = b->bytes.len;
    outbuf_add(&b->bytes, p, n);
    b->total += n;
    struct h2_vec *last = b->n ? &b->v[b->n - 1] : NULL;
    if (last && last->in_bytes && last->off + last->len == off) {
        last->len += n;
        return;
    }
    *batch_vec(b) = (struct h2_vec){.in_bytes = 1, .off = off, .len = n};
}

static void batch_slice(struct h2_batch *b, const char *p, size_t n)
{
    if (!n)
        return;
    b->total += n;
    *batch_vec(b) = (struct h2_vec){.p = p, .len = n};
}

static void batch_hold_chunk(struct h2_batch *b, struct h2_chunk *k)
{
    if (b->nchunks && b->chunks[b->nchunks - 1] == k)
        return;
    if (b->nchunks == b->chunks_cap) {
        b->chunks_cap = b->chunks_cap ? 2 * b->chunks_cap : 8;
        b->chunks = realloc(b->chunks, b->chunks_cap * sizeof *b->chunks);
        if (!b->chunks)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    k->refs++;
    b->chunks[b->nchunks++] = k;
}

static void batch_hold_obj(struct h2_batch *b, struct cache_object *o)
{
    if (b->nobjs && b->objs[b->nobjs - 1] == o)
        return;
    if (b->nobjs == b->objs_cap) {
        b->objs_cap = b->objs_cap ? 2 * b->objs_cap : 8;
        b->objs = realloc(b->objs, b->objs_cap * sizeof *b->objs);
        if (!b->objs)
            srv_panic(__FILE__, __LINE__, "out of memory");
    }
    cache_object_ref(o);
    b->objs[b->nobjs++] = o;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    struct h2_stream *st = source->ptr;
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (st->queued == 0) {
        if (st->complete) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = st->queued < length ? (size_t)st->queued : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->queued && st->complete)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The DATA frame nghttp2 chose: its header copied, its payload as slices
 * of the queued pieces (design §5: a hit is frame headers and segment
 * slices in one writev). Above WRITE_HIGH_WATER it waits for the socket. */
int h2_on_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = source->ptr;
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    struct h2_batch *b = s->batch;
    if (b->total && s->ops->write_pending(s->owner) + b->total > WRITE_HIGH_WATER) {
        s->held_at_mark = 1;
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    h2_batch_copy(b, framehd, 9);
    s->data_sent += length;
    uint64_t left = length;
    while (left) {
        struct h2_piece *pc = st->q;
        ASSERT(pc);
        uint64_t take = pc->len < left ? pc->len : left;
        if (pc->chunk) {
            batch_slice(b, pc->p, (size_t)take);
            batch_hold_chunk(b, pc->chunk);
            pc->p += take;
        } else {
            /* the stored body's segments, from pc->at */
            uint64_t at = 0, want = take, from = pc->at;
            for (struct cache_segment *g = pc->obj->body->first; g && want; g = g->next) {
                uint64_t glen = g->len;
                if (from < at + glen) {
                    uint64_t lo = from - at, n = glen - lo < want ? glen - lo : want;
                    batch_slice(b, g->data + lo, (size_t)n);
                    from += n;
                    want -= n;
                }
                at += glen;
            }
            ASSERT(want == 0);
            batch_hold_obj(b, pc->obj);
            pc->at += take;
        }
        pc->len -= take;
        left -= take;
        st->queued -= take;
        if (pc->len == 0) {
            /* its memory now belongs to the batch, which the socket's
             * WRITE_HIGH_WATER bounds for the whole connection */
            st->queued_cost -= pc->cost;
            st->q = pc->next;
            if (!st->q)
                st->q_tail = &st->q;
            h2_chunk_unref(pc->chunk);
            cache_object_unref(&pc->obj);
            free(pc);
        }
    }
    return 0;
}

static void add_nv(nghttp2_nv *nv, unsigned *n, struct slice name, struct slice value)
{
    nv[*n] = (nghttp2_nv){(uint8_t *)name.p, (uint8_t *)value.p, name.len, value.len,
                          NGHTTP2_NV_FLAG_NONE};
    (*n)++;
}

/* Field lines and fields to nv (names lowercased by nghttp2's copy). */
static unsigned build_nv(const struct h2_head *h, nghttp2_nv *nv, unsigned cap, char *status,
                         char *length, size_t length_cap)
{
    unsigned n = 0;
    h2_status_digits(h->status, status);
    add_nv(nv, &n, SLICE_LIT(":status"), (struct slice){status, 3});
    struct slice connection = {"", 0};
    for (unsigned i = 0; i < h->nfields; i++)
        if (slice_case_eq(h->fields[i].name, "connection"))
            connection = h->fields[i].value;
    for (unsigned i = 0; i < h->nfields && n < cap; i++) {
        const struct http_field *f = &h->fields[i];
        if (h->omit.len && f->name.p >= h->omit.p && f->name.p < h->omit.p + h->omit.len)
            continue;
        if (f->id == HF_CONTENT_LENGTH || !h2_response_keeps_field(f->name, connection))
            continue;
        add_nv(nv, &n, f->name, f->value);
    }
    struct slice rest = h->lines;
    struct http_field f;
    while (n < cap && h2_next_field_line(&rest, &f))
        if (f.id != HF_CONTENT_LENGTH && h2_response_keeps_field(f.name, connection))
            add_nv(nv, &n, f.name, f.value);
    if (h->type && n < cap)
        add_nv(nv, &n, SLICE_LIT("content-type"), (struct slice){h->type, strlen(h->type)});
    if (h->length >= 0 && n < cap && h->status != 204 && h->status != 304 &&
        !(h->status >= 100 && h->status < 200)) {
        int k = snprintf(length, length_cap, "%lld", (long long)h->length);
        add_nv(nv, &n, SLICE_LIT("content-length"), (struct slice){length, (size_t)k});
    }
    return n;
}

static unsigned count_lines(struct slice lines)
{
    unsigned n = 0;
    for (size_t i = 0; i < lines.len; i++)
        n += lines.p[i] == '\n';
    return n + 1;
}

static void drop_held(struct h2_stream *st)
{
    if (!st->held)
        return;
    free(st->held->p);
    free(st->held);
    st->held = NULL;
}

static int respond_now(struct h2_stream *st, const struct h2_head *h);

/* The held head goes: body is coming, or the response ends. */
static void release_held(struct h2_stream *st)
{
    if (!st->held)
        return;
    struct outbuf *o = st->held;
    st->held = NULL;
    struct h2_head h = {.status = st->held_status,
                        .lines = {o->p, o->len},
                        .length = st->held_length,
                        .has_body = st->held_has_body};
    respond_now(st, &h);
    free(o->p);
    free(o);
}

void h2_stream_hold(struct h2_stream *st, const struct h2_head *h)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    if (st->responded || h2_stream_closing(st))
        return;
    st->held = calloc(1, sizeof *st->held);
    if (!st->held)
        srv_panic(__FILE__, __LINE__, "out of memory");
    outbuf_add(st->held, h->lines.p, h->lines.len);
    st->held_status = h->status;
    st->held_length = h->length;
    st->held_has_body = h->has_body;
}

int h2_stream_respond(struct h2_stream *st, const struct h2_head *h)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    return respond_now(st, h);
}

static int respond_now(struct h2_stream *st, const struct h2_head *h)
{
    if (st->responded || h2_stream_closing(st))
        return -1;
    unsigned cap = 4 + h->nfields + count_lines(h->lines);
    nghttp2_nv stack[64], *nv = cap <= 64 ? stack : malloc(cap * sizeof *nv);
    if (!nv)
        srv_panic(__FILE__, __LINE__, "out of memory");
    char status[3], length[24];
    unsigned n = build_nv(h, nv, cap, status, length, sizeof length);
    st->responded = 1;
    st->has_body = h->has_body;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(st->s->ng, st->id, nv, n, h->has_body ? &prd : NULL);
    if (!h->has_body)
        st->complete = 1;
    if (nv != stack)
        free(nv);
    return rc == 0 ? 0 : -1;
}

int h2_stream_interim(struct h2_stream *st, int status, struct slice lines)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (st->responded || h2_stream_closing(st))
        return -1;
    struct h2_head h = {.status = status, .lines = lines, .length = -1};
    unsigned cap = 2 + count_lines(lines);
    nghttp2_nv stack[32], *nv = cap <= 32 ? stack : malloc(cap * sizeof *nv);
    if (!nv)
        srv_panic(__FILE__, __LINE__, "out of memory");
    char st3[3], length[24];
    unsigned n = build_nv(&h, nv, cap, st3, length, sizeof length);
    int rc = nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, n, NULL);
    if (nv != stack)
        free(nv);
    return rc == 0 ? 0 : -1;
}

/* ---- the output budget ------------------------------------------------- */

/* A fair share rather than one connection-wide mark: with a single mark, a
 * stream whose window the client keeps shut would fill the budget and
 * stop every other stream; with shares it fills its own only. Capped at
 * WRITE_HIGH_WATER, what one HTTP/1 client may have waiting. */
uint64_t h2_stream_share(const struct h2_stream *st)
{
    const struct h2_session *s = st->s;
    uint64_t share = s->lim.max_output_buffer / (s->nstreams ? s->nstreams : 1);
    if (share < H2_SHARE_FLOOR)
        share = H2_SHARE_FLOOR;
    return share < WRITE_HIGH_WATER ? share : WRITE_HIGH_WATER;
}

uint64_t h2_stream_room(struct h2_stream *st)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    uint64_t share = h2_stream_share(st);
    if (st->queued_cost < share)
        return share - st->queued_cost;
    st->starved = 1;
    return 0;
}

/* DATA nghttp2 was told to wait for (read_body deferred it): there is
 * some now, or the end. */
static void resume_deferred(struct h2_stream *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
}

static void queue_piece(struct h2_stream *st, struct h2_piece *pc)
{
    release_held(st);
    pc->next = NULL;
    *st->q_tail = pc;
    st->q_tail = &pc->next;
    st->queued += pc->len;
    st->queued_cost += pc->cost;
    if (pc->cost && st->queued_cost >= h2_stream_share(st))
        st->starved = 1; /* the owner stops at its next look (h2_stream_room) */
    resume_deferred(st);
}

static int can_queue(struct h2_stream *st, size_t n)
{
    if (n)
        release_held(st);
    return n && st->has_body && !st->complete && !h2_stream_closing(st);
}

void h2_stream_queue_heap(struct h2_stream *st, char *heap, const char *p, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, n)) {
        free(heap);
        return;
    }
    struct h2_chunk *k = malloc(sizeof *k);
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!k || !pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    k->refs = 1;
    k->heap = heap;
    pc->chunk = k;
    pc->p = p;
    pc->len = n;
    /* the whole block stays until its last byte is sent: a read buffer
     * holding a few bytes costs all of it */
    size_t block = malloc_usable_size(heap);
    pc->cost = sizeof *k + (block > n ? block : n);
    queue_piece(st, pc);
}

void h2_stream_queue_copy(struct h2_stream *st, const char *p, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, n))
        return;
    struct h2_chunk *k = malloc(sizeof *k + n);
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!k || !pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    k->refs = 1;
    k->heap = NULL;
    memcpy(k->data, p, n);
    pc->chunk = k;
    pc->p = k->data;
    pc->len = n;
    pc->cost = sizeof *k + n;
    queue_piece(st, pc);
}

void h2_stream_queue_object(struct h2_stream *st, struct cache_object *o, uint64_t first,
                            uint64_t len)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (!can_queue(st, (size_t)len))
        return;
    struct h2_piece *pc = calloc(1, sizeof *pc);
    if (!pc)
        srv_panic(__FILE__, __LINE__, "out of memory");
    /* cost 0: a stored body is the store's memory (bounded by its size
     * limits, shared by every reader), and the stream holds a reference,
     * no copy; a hit waiting on a shut window costs no more than that */
    cache_object_ref(o);
    pc->obj = o;
    pc->at = first;
    pc->len = len;
    queue_piece(st, pc);
}

void h2_stream_body_complete(struct h2_stream *st)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    release_held(st);
    st->complete = 1;
    resume_deferred(st);
}

void h2_stream_end(struct h2_stream *st, int body_unread)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    st->owner_gone = 1;
    if (h2_stream_closing(st))
        return;
    release_held(st);
    if (!st->responded) {
        /* ended with no response: never a valid exchange */
        h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->complete = 1;
    if (body_unread && !st->in_ended)
        st->reset_after_end = 1;
    resume_deferred(st);
}

void h2_stream_reset(struct h2_stream *st, uint32_t code)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    drop_held(st);
    st->owner_gone = 1;
    st->complete = 1;
    if (st->end != H2_END_NONE)
        return;
    nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id,
                              code ? code : NGHTTP2_INTERNAL_ERROR);
}
