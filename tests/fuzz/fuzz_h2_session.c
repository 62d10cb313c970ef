/* libFuzzer: raw bytes from a client into one h2 connection (nghttp2 and
 * h2_session.c's callbacks), the pipeline replaced by a tiny fake that
 * answers GETs at once, echoes POST bodies read ahead, leaves paths
 * under /slow unanswered, and relays 256 KiB under /big as the pipeline
 * does: copies queued while the stream has room (h2_stream_room), more at
 * each drained. The first input byte says where the bytes are
 * cut in two reads; the client preface is prepended; at the end, every
 * request body still awaited has stalled (client_body_idle). Invariants: no
 * crash, no leak (ASan), every stream freed, writes well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "server/server.h"
#include "server/h2_session.h"

#define BIG_BODY (256 * 1024)

/* Queue /big's body while the stream has room; st->owner counts what
 * went. A stream's memory stays within its share plus the last copy. */
static void fake_relay(struct h2_stream *st)
{
    static char block[8192];
    uintptr_t sent = (uintptr_t)st->owner;
    while (sent < BIG_BODY && h2_stream_room(st) > 0) {
        h2_stream_queue_copy(st, block, sizeof block);
        sent += sizeof block;
    }
    if (st->queued_cost > h2_stream_share(st) + sizeof block + 64)
        abort(); /* past its share */
    st->owner = (void *)sent;
    if (sent >= BIG_BODY) {
        h2_stream_body_complete(st);
        h2_stream_end(st, !st->in_ended);
    }
}

static void fake_request(void *owner, struct h2_stream *st)
{
    if (st->req.path.len >= 5 && !memcmp(st->req.path.p, "/slow", 5))
        return; /* answered never: ends by reset or the connection */
    if (st->req.path.len >= 4 && !memcmp(st->req.path.p, "/big", 4)) {
        struct h2_head h = {.status = 200, .length = BIG_BODY, .has_body = 1};
        st->owner = (void *)0;
        if (h2_stream_respond(st, &h) == 0)
            fake_relay(st);
        else
            h2_stream_end(st, !st->in_ended);
        return;
    }
    if (slice_eq(st->req.method, SLICE_LIT("POST"))) {
        h2_stream_flow(st, H2_FLOW_READ);
        if (!st->in_ended)
            return;
    }
    struct h2_head h = {.status = 200,
                        .lines = SLICE_LIT("Cache-Status: fake\r\nConnection: x\r\n"),
                        .type = "text/plain",
                        .length = 5,
                        .has_body = !slice_eq(st->req.method, SLICE_LIT("HEAD"))};
    if (h2_stream_respond(st, &h) == 0 && h.has_body) {
        char *heap = malloc(5);
        memcpy(heap, "hello", 5);
        h2_stream_queue_heap(st, heap, heap, 5);
    }
    h2_stream_end(st, !st->in_ended);
}

static void fake_req_data(void *owner, struct h2_stream *st)
{
    if (!st->in_ended) {
        if (iobuf_len(&st->in) > 4096)
            h2_stream_consume(st, iobuf_len(&st->in) / 2);
        return;
    }
    h2_stream_consume(st, iobuf_len(&st->in));
    struct h2_head h = {.status = 201, .length = -1, .has_body = 1};
    if (h2_stream_respond(st, &h) == 0)
        h2_stream_queue_copy(st, "done", 4);
    h2_stream_end(st, 0);
}

static void fake_gone(void *owner, struct h2_stream *st)
{
}
static void fake_drained(void *owner, struct h2_stream *st)
{
    fake_relay(st);
}

/* A request body stalled (h2_server.c end_stalled): 408, or a reset once
 * the response began. */
static void fake_stalled(void *owner, struct h2_stream *st)
{
    if (st->responded) {
        h2_stream_reset(st, 8 /* CANCEL */);
        return;
    }
    struct h2_head h = {.status = 408, .length = 0};
    h2_stream_respond(st, &h);
    h2_stream_end(st, 1);
}

static int fake_write(void *owner, const struct slice *v, unsigned n, void (*release)(void *),
                      void *arg)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!v[i].p || !v[i].len)
            abort(); /* no empty vector in a write */
        total += v[i].len;
    }
    if (total < 9)
        abort(); /* at least one frame header */
    release(arg);
    return 0;
}

static size_t fake_pending(void *owner)
{
    return 0;
}

static const struct h2_session_ops fake_ops = {
    .request = fake_request,
    .req_data = fake_req_data,
    .gone = fake_gone,
    .drained = fake_drained,
    .write = fake_write,
    .write_pending = fake_pending,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct h2_session_limits lim = {.max_concurrent_streams = 8,
                                    .initial_window = 16384,
                                    .max_header_list = 4096,
                                    .max_resets_per_10s = 20,
                                    .max_read_ahead = 65536,
                                    .max_output_buffer = 65536,
                                    .max_fields = 32};
    struct h2_session *s = h2_session_new(&lim, &fake_ops, NULL);
    if (!s)
        return 0;
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t cut = data[0] < size - 1 ? data[0] : size - 1;
    const char *p = (const char *)data + 1;
    int ok = h2_session_recv(s, preface, sizeof preface - 1) == 0;
    h2_session_flush(s);
    if (ok)
        ok = h2_session_recv(s, p, cut) == 0;
    h2_session_flush(s);
    h2_session_collect(s);
    if (ok)
        h2_session_recv(s, p + cut, size - 1 - cut);
    h2_session_flush(s);
    h2_session_collect(s);
    /* then every body still awaited has stalled */
    if (h2_session_body_idle_since(s))
        h2_session_stalled_bodies(s, UINT64_MAX, fake_stalled);
    if (h2_session_body_idle_since(s))
        abort(); /* each stalled stream ended */
    h2_session_flush(s);
    h2_session_collect(s);
    h2_session_free(&s);
    return 0;
}
