/* libFuzzer: an h2 header block as nghttp2 hands it to on_header, mapped
 * to the pipeline's request (http/h2_request.h). Input: the first byte's
 * low bit is END_STREAM, then one field per line, "name\tvalue" (a line
 * without a tab is a name with an empty value); after a line "-", the
 * fields are a trailer section (the first byte's bit 1: its END_STREAM).
 * Invariants: a request built has a method, a host, a target that is
 * "*" or starts with "/", stays inside the arena, copies like a parsed
 * one, and never carries a connection-specific field; a refusal names its
 * reason; a trailer field is never a pseudo-header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/h2_request.h"

static int inside(struct slice s, const char *a, size_t n)
{
    return s.len == 0 || (s.p >= a && s.p + s.len <= a + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct h2_request_limits lim = {.max_header_list = 2048, .max_fields = 32};
    size_t cap = h2_request_arena_size(&lim);
    char *arena = malloc(cap);
    struct http_field fields[34];
    struct h2_request h;
    h2_request_init(&h, &lim, arena, cap, fields, 34);
    int end_stream = data[0] & 1;
    size_t crumbs = 0, crumb_bytes = 0; /* non-empty cookie fields */
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    int trailers = 0; /* after a line "-": a trailer section */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *tab = memchr(p, '\t', (size_t)(eol - p));
        struct slice name = {p, (size_t)((tab ? tab : eol) - p)};
        struct slice value =
            tab ? (struct slice){tab + 1, (size_t)(eol - tab - 1)} : (struct slice){"", 0};
        if (!trailers && slice_eq(name, SLICE_LIT("-")) && !tab) {
            trailers = 1;
            p = eol + 1;
            continue;
        }
        if (trailers) {
            /* RFC 9113 §8.1: never a pseudo-header in trailers; they are
             * dropped, so the request is built from the head alone */
            if (h2_trailer_field(name, value) == H2_REQUEST_OK && name.len && name.p[0] == ':')
                abort();
            p = eol + 1;
            continue;
        }
        h2_request_field(&h, name, value);
        if (slice_eq(name, SLICE_LIT("cookie")) && value.len) {
            crumbs++;
            crumb_bytes += value.len;
        }
        p = eol + 1;
    }
    if ((h2_trailers_end(data[0] & 2) == H2_REQUEST_OK) != !!(data[0] & 2))
        abort(); /* trailers must end the stream */
    struct http_request r;
    enum h2_request_body body;
    enum h2_request_verdict v = h2_request_end(&h, end_stream, &r, &body);
    if (v != H2_REQUEST_OK) {
        if (!h.why)
            abort();
        free(arena);
        return 0;
    }
    if (!r.method.len || !r.host.len || !r.target.len || h.used > cap || r.nfields > 34)
        abort();
    if (!(r.target.p[0] == '/' || (r.target.len == 1 && r.target.p[0] == '*')))
        abort();
    if (!inside(r.method, arena, h.used) || !inside(r.target, arena, h.used) ||
        !inside(r.host, arena, h.used))
        abort();
    if (end_stream ? body != H2_BODY_NONE : body == H2_BODY_NONE)
        abort();
    for (unsigned i = 0; i < r.nfields; i++) {
        struct slice n = r.fields[i].name;
        /* RFC 9113 §8.2.2: these never get through (te only as
         * "trailers"). Not h2_response_keeps_field: a response also drops
         * Trailer, which a request may carry on (it crashed here). */
        static const char *const specific[] = {"connection", "keep-alive", "proxy-connection",
                                               "transfer-encoding", "upgrade"};
        for (size_t k = 0; k < sizeof specific / sizeof specific[0]; k++)
            if (slice_case_eq(n, specific[k]))
                abort(); /* a connection-specific field got through */
        if (slice_case_eq(n, "te") && !slice_case_eq(r.fields[i].value, "trailers"))
            abort();
        if (i > 0 && r.fields[i].id == HF_HOST)
            abort(); /* one host, first */
        /* §8.2.3: crumbs joined with "; ", an empty one adding nothing */
        if (slice_case_eq(n, "cookie") &&
            r.fields[i].value.len != crumb_bytes + (crumbs ? 2 * (crumbs - 1) : 0))
            abort();
    }
    /* the exchange's own copy, as exchange_own_request makes it */
    void *copy = malloc(http_request_copy_size(&r) + 1);
    struct http_request c;
    http_request_copy(&c, &r, arena, copy);
    if (!slice_eq(c.method, r.method) || !slice_eq(c.target, r.target) ||
        !slice_eq(c.host, r.host) || c.nfields != r.nfields)
        abort();
    /* nothing of the copy points back into the arena it came from */
    if (c.method.p >= arena && c.method.p < arena + cap)
        abort();
    for (unsigned i = 0; i < c.nfields; i++)
        if (c.fields[i].value.len && c.fields[i].value.p >= arena &&
            c.fields[i].value.p < arena + cap)
            abort();
    free(copy);
    free(arena);
    return 0;
}
