/* An HTTP/2 session's streams (RFC 9113 §5.1) and their request side:
 * fields gathered and mapped (http/h2_request.c), request bodies held
 * and their flow-control window given back as the owner consumes them or
 * ahead of it (h2.max_read_ahead). */
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>
#include "server/server.h"
#include "server/h2_session_internal.h"
#include "cache/object.h"

struct h2_stream *h2_stream_of(struct h2_session *s, int32_t id)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s->ng, id);
    if (st)
        CHECK_MAGIC(st, H2_STREAM_MAGIC);
    return st;
}

void h2_stream_free(struct h2_stream *st)
{
    while (st->q) {
        struct h2_piece *pc = st->q;
        st->q = pc->next;
        h2_chunk_unref(pc->chunk);
        cache_object_unref(&pc->obj);
        free(pc);
    }
    if (st->hdr) {
        free(st->hdr->p);
        free(st->hdr);
    }
    if (st->held) {
        free(st->held->p);
        free(st->held);
    }
    iobuf_fini(&st->in);
    st->magic = 0;
    free(st);
}

/* The owner hears that the stream ended, once, unless it ended it. */
void h2_stream_gone(struct h2_stream *st)
{
    if (st->owner_gone)
        return;
    st->owner_gone = 1;
    st->s->ops->gone(st->s->owner, st);
}

/* Give the window back ahead of consumption (H2_FLOW_READ), within
 * h2.max_read_ahead across the connection's streams. */
static void give_ahead(struct h2_stream *st)
{
    struct h2_session *s = st->s;
    uint64_t n = st->uncredited;
    uint64_t room = s->lim.max_read_ahead > s->ahead ? s->lim.max_read_ahead - s->ahead : 0;
    if (n > room)
        n = room;
    if (!n)
        return;
    nghttp2_session_consume(s->ng, st->id, (size_t)n);
    st->uncredited -= n;
    st->credited_ahead += n;
    s->ahead += n;
}

/* An answer of the session's own, before any owner: 400, 415, 431, 501,
 * with a line saying why. */
static void refuse_with(struct h2_stream *st, int status, const char *why, struct slice lines)
{
    size_t n = why ? strlen(why) : 0;
    struct h2_head h = {.status = status,
                        .lines = lines,
                        .type = n ? "text/plain" : NULL,
                        .length = (int64_t)n,
                        .has_body = n > 0};
    h2_stream_respond(st, &h);
    if (n)
        h2_stream_queue_copy(st, why, n);
    st->complete = 1;
    /* RFC 9113 §8.1: a response before the request's end, then
     * RST_STREAM(NO_ERROR) so the client stops sending its body */
    if (!st->in_ended)
        st->reset_after_end = 1;
}

static enum h2_request_verdict map_request(struct h2_stream *st, int end_stream, char **arena_out,
                                           struct http_field **fields_out, const char **why)
{
    struct h2_session *s = st->s;
    struct h2_request_limits lim = {.max_header_list = st->list_size + 64,
                                    .max_fields = s->lim.max_fields,
                                    .max_request_line = s->lim.max_request_line};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field *fields = malloc((st->nhdr + 2) * sizeof *fields);
    if (!arena || !fields)
        srv_panic(__FILE__, __LINE__, "out of memory");
    *arena_out = arena;
    *fields_out = fields;
    struct h2_request h;
    h2_request_init(&h, &lim, arena, cap, fields, st->nhdr + 2);
    const char *p = st->hdr ? st->hdr->p : NULL, *end = p ? p + st->hdr->len : NULL;
    while (p && p < end) {
        uint32_t nl, vl;
        memcpy(&nl, p, 4);
        memcpy(&vl, p + 4, 4);
        h2_request_field(&h, (struct slice){p + 8, nl}, (struct slice){p + 8 + nl, vl});
        p += 8 + nl + vl;
    }
    enum h2_request_verdict v = h2_request_end(&h, end_stream, &st->req, &st->body_kind);
    *why = h.why; /* a literal */
    if (v == H2_REQUEST_OK && st->body_kind == H2_BODY_STREAM)
        st->req.body = HTTP_BODY_STREAM;
    return v;
}

/* The answer a refusal gets (0: RST_STREAM(PROTOCOL_ERROR)). */
static int verdict_status(enum h2_request_verdict v)
{
    switch (v) {
    case H2_REQUEST_BAD:
        return 400;
    case H2_REQUEST_TOO_LARGE:
        return 431;
    case H2_REQUEST_NOT_IMPLEMENTED:
        return 501;
    case H2_REQUEST_URI_TOO_LONG:
        return 414;
    case H2_REQUEST_EXPECTATION_FAILED:
        return 417;
    case H2_REQUEST_UNSUPPORTED_MEDIA:
        return 415;
    default:
        return 0;
    }
}

/* README "Errors": a refused request leaves a line, over h2 as over h1
 * (attack round 5, finding 6: none did, probing over h2 went unseen). */
static void told_refused(struct h2_session *s, struct h2_stream *st, int status, const char *why)
{
    if (s->ops->refused)
        s->ops->refused(s->owner, st, status, why ? why : "refused");
}

void h2_stream_request_complete(struct h2_session *s, struct h2_stream *st, int end_stream)
{
    st->in_ended = end_stream;
    if (st->too_large) {
        refuse_with(st, 431, "header list over h2.max_header_list\n", (struct slice){"", 0});
        told_refused(s, st, 431, "header list over h2.max_header_list or limits.header_count");
        return;
    }
    char *arena;
    struct http_field *fields;
    const char *why = NULL;
    enum h2_request_verdict v = map_request(st, end_stream, &arena, &fields, &why);
    if (v != H2_REQUEST_OK)
        told_refused(s, st, verdict_status(v), why);
    if (st->hdr) {
        free(st->hdr->p);
        free(st->hdr);
        st->hdr = NULL;
    }
    switch (v) {
    case H2_REQUEST_OK:
        st->owner_gone = 0; /* it has an owner from here */
        st->body_ms = uv_hrtime() / 1000000;
        s->ops->request(s->owner, st);
        break;
    case H2_REQUEST_MALFORMED: /* §8.1.1 */
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        break;
    case H2_REQUEST_BAD:
    case H2_REQUEST_TOO_LARGE:
    case H2_REQUEST_NOT_IMPLEMENTED:
    case H2_REQUEST_URI_TOO_LONG:
    case H2_REQUEST_EXPECTATION_FAILED:
        refuse_with(st, verdict_status(v), NULL, (struct slice){"", 0});
        break;
    case H2_REQUEST_UNSUPPORTED_MEDIA:
        /* gRPC clients read grpc-status (12: UNIMPLEMENTED) where a
         * response carries one; the body says it to a human */
        refuse_with(st, 415,
                    "native gRPC (application/grpc) needs HTTP/2 to the origin, which "
                    "idemcache does not speak yet; use gRPC-web or Connect\n",
                    SLICE_LIT("grpc-status: 12\r\ngrpc-message: native gRPC is not proxied; "
                              "use gRPC-web or Connect\r\n"));
        break;
    }
    st->req = (struct http_request){0}; /* the owner copied what it keeps */
    free(arena);
    free(fields);
}

int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->magic = H2_STREAM_MAGIC;
    st->id = frame->hd.stream_id;
    st->s = s;
    st->conn = s->owner;
    st->owner_gone = 1; /* no owner until the request maps */
    st->q_tail = &st->q;
    link_insert(&s->streams, &st->link);
    s->nstreams++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

/* A header block far past our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113
 * §6.5.2, advisory): twice it for the request's fields (up to it, 431),
 * once for trailers (dropped anyway). nghttp2 checks each field's value
 * before we see it, and one byte of HPACK (RFC 7541 §6.1) may name a 4
 * KiB table entry: 9 frames of such references checked 440 MB of values,
 * 180 ms of CPU, for a 431 at the end (attack round 5, finding 1). Failing
 * the callback makes nghttp2 reset the stream (INTERNAL_ERROR) and decode
 * the rest of the block to keep its table in step, without the checks.
 * The reset is one the client provoked: counted as MadeYouReset's are. */
static int header_block_past_cap(struct h2_session *s, struct h2_stream *st, uint64_t size,
                                 uint64_t cap)
{
    if (size <= cap)
        return 0;
    h2_session_note_provoked(s, st);
    return 1;
}

int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                 size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    struct h2_session *s = user;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
        /* request trailers: checked, then dropped, never in the head,
         * a key or the origin's request (h2_request.h) */
        struct h2_stream *st = h2_stream_of(s, frame->hd.stream_id);
        if (!st)
            return 0;
        st->trailer_size += namelen + valuelen + 32;
        if (header_block_past_cap(s, st, st->trailer_size, s->lim.max_header_list))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (!st->trailers_bad &&
            h2_trailer_field((struct slice){(const char *)name, namelen},
                             (struct slice){(const char *)value, valuelen}) != H2_REQUEST_OK) {
            st->trailers_bad = 1; /* §8.1.1: malformed, a stream error */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        }
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = h2_stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    /* RFC 9113 §6.5.2: our SETTINGS_MAX_HEADER_LIST_SIZE, counted as it
     * says; past it (or limits.header_count) the fields are dropped and
     * the request answered 431 */
    st->list_size += namelen + valuelen + 32;
    if (header_block_past_cap(s, st, st->list_size, 2 * s->lim.max_header_list))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->too_large)
        return 0;
    /* cookie crumbs after the first join it (§8.2.3): not another field */
    int crumb = namelen == 6 && !memcmp(name, "cookie", 6);
    if (crumb && st->crumbs++)
        st->nhdr_crumbs++;
    if (st->list_size > s->lim.max_header_list ||
        st->nhdr - st->nhdr_crumbs >= s->lim.max_fields + 8) {
        st->too_large = 1;
        return 0;
    }
    if (!st->hdr && !(st->hdr = calloc(1, sizeof *st->hdr)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    uint32_t nl = (uint32_t)namelen, vl = (uint32_t)valuelen;
    outbuf_add(st->hdr, &nl, 4);
    outbuf_add(st->hdr, &vl, 4);
    outbuf_add(st->hdr, name, namelen);
    outbuf_add(st->hdr, value, valuelen);
    st->nhdr++;
    return 0;
}

int h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *user)
{
    struct h2_session *s = user;
    struct h2_stream *st = h2_stream_of(s, id);
    if (!st || st->owner_gone) {
        /* no one reads it: its window comes back at once */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (iobuf_reserve(&st->in, len, SIZE_MAX) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(st->in.base + st->in.end, data, len);
    st->in.end += len;
    st->in_total += len;
    st->uncredited += len;
    st->body_ms = uv_hrtime() / 1000000;
    if (st->flow == H2_FLOW_READ) {
        give_ahead(st);
        /* The pipeline reads ahead (a body keyed) and the connection's
         * budget is spent: half the stream's window waits uncredited, and
         * the window would shut and stay so (a client need not send the
         * last bytes of a window). Refused: the client may retry it (RFC
         * 9113 §8.7). */
        if (st->uncredited && 2 * st->uncredited >= s->lim.initial_window) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
    }
    s->ops->req_data(s->owner, st);
    return 0;
}

int h2_stream_closing(const struct h2_stream *st)
{
    return st->end != H2_END_NONE || st->s->failed;
}

/* ---- request bodies ---------------------------------------------------- */

void h2_stream_consume(struct h2_stream *st, size_t n)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (n > iobuf_len(&st->in))
        n = iobuf_len(&st->in);
    iobuf_consume(&st->in, n);
    st->body_ms = uv_hrtime() / 1000000; /* window back: the client may send */
    uint64_t ahead = n < st->credited_ahead ? n : st->credited_ahead;
    st->credited_ahead -= ahead;
    st->s->ahead -= ahead;
    uint64_t rest = n - ahead;
    if (rest > st->uncredited)
        rest = st->uncredited;
    if (rest && st->end == H2_END_NONE)
        nghttp2_session_consume(st->s->ng, st->id, (size_t)rest);
    st->uncredited -= rest;
}

void h2_stream_flow(struct h2_stream *st, enum h2_flow f)
{
    CHECK_MAGIC(st, H2_STREAM_MAGIC);
    if (f != st->flow) /* its wait for the body starts (again) now */
        st->body_ms = uv_hrtime() / 1000000;
    st->flow = f;
    if (f == H2_FLOW_READ && st->end == H2_END_NONE)
        give_ahead(st);
}
