/* Keys for requests the cache reads the body of: a POST a rule allows,
 * QUERY (issue 4, seed 003), and Connect unary calls as POST or GET
 * (issue 5). The body is read ahead into the exchange's own buffer, its
 * raw bytes left with the protocol (front_ops.req_in: h1 keeps them behind
 * the head); normalized for the key only (content codings undone, JSON
 * canonical, remembered per worker by raw digest), and digested. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "server/server.h"
#include "cache/key.h"
#include "http/chars.h"
#include "http/fields.h"
#include "http/digest_field.h"
#include "rules/normalize.h"
#include "rules/memo.h"
#include "connect/connect.h"

struct slice request_path(const struct http_request *r)
{
    struct slice p = r->form == HTTP_TARGET_ABSOLUTE ? r->path : r->target;
    const char *q = memchr(p.p, '?', p.len);
    if (q)
        p.len = (size_t)(q - p.p);
    return p;
}

struct slice request_query(const struct http_request *r)
{
    struct slice t = r->form == HTTP_TARGET_ABSOLUTE ? r->path : r->target;
    const char *q = memchr(t.p, '?', t.len);
    return q ? (struct slice){q + 1, (size_t)(t.p + t.len - q - 1)} : (struct slice){t.p, 0};
}

void collect_free(struct exchange *ex)
{
    free(ex->col.body.p);
    ex->col.body = (struct outbuf){0};
    ex->collected = COLLECT_NONE;
}

/* Read the body the protocol holds as far as it goes; the raw bytes stay
 * there (col->scanned of them read) until the pipeline consumes them. */
static enum collect_state collect_scan(struct exchange *ex)
{
    struct body_collect *col = &ex->col;
    uint64_t max = ex->w->cfg->body_key.max_bytes;
    int done = 0, too_large = 0;
    for (;;) {
        int ended = 0;
        struct slice in = ex->fe->req_in(ex, &ended);
        if (ended && in.len == col->scanned)
            http_body_reader_end(&col->reader); /* h2: END_STREAM */
        size_t used;
        struct slice d;
        enum http_body_rc rc =
            http_body_read(&col->reader, in.p + col->scanned, in.len - col->scanned, &used, &d);
        col->scanned += used;
        if (rc == HTTP_BODY_ERROR) {
            reply_error(ex, 400, "malformed chunked request body");
            return COLLECT_MALFORMED;
        }
        if (rc == HTTP_BODY_DATA) {
            /* as the body pump refuses it: once past the limit, not after
             * body_key.max_bytes of it were read ahead (a chunked body
             * says no length before) */
            uint64_t limit = ex->w->cfg->limits.request_body;
            if (limit && col->body.len + d.len > limit) {
                reply_error(ex, 413, "request body exceeds limits.request_body");
                return COLLECT_OVER_LIMIT;
            }
            if (col->body.len + d.len > max) {
                too_large = 1;
                break;
            }
            /* the exchange's own: keyed from here, and sent from here on a
             * miss, whatever happens to the protocol's input meanwhile */
            outbuf_add(&col->body, d.p, d.len);
        }
        if (rc == HTTP_BODY_DONE || http_body_done(&col->reader)) {
            done = 1;
            break;
        }
        if (rc == HTTP_BODY_MORE)
            break;
    }
    /* Tiny chunks can make the framing far larger than the content. */
    if (!done && col->scanned > 2 * max + 65536)
        too_large = 1;
    return done ? COLLECT_COMPLETE : too_large ? COLLECT_TOO_LARGE : COLLECT_NONE;
}

enum collect_state collect_start(struct exchange *ex, const struct http_request *r)
{
    ex->col.scanned = 0;
    ex->col.body.len = 0;
    http_body_init(&ex->col.reader, r->body, r->content_length, ex->w->cfg->limits.header_section);
    enum collect_state k = collect_scan(ex);
    if (k == COLLECT_COMPLETE || k == COLLECT_TOO_LARGE)
        ex->collected = k;
    return k;
}

enum collect_need collect_ensure(struct exchange *ex, const struct http_request *r)
{
    if (ex->collected != COLLECT_NONE)
        return COLLECT_READY;
    switch (collect_start(ex, r)) {
    case COLLECT_MALFORMED:
    case COLLECT_OVER_LIMIT:
        return COLLECT_ANSWERED;
    case COLLECT_NONE:
        return COLLECT_READ_MORE;
    default:
        return COLLECT_READY;
    }
}

struct slice collect_body(struct exchange *ex, const struct http_request *r)
{
    if (r->body == HTTP_BODY_NONE || !ex->col.body.len)
        return (struct slice){"", 0};
    return (struct slice){ex->col.body.p, ex->col.body.len};
}

void collect_continue(struct exchange *ex)
{
    enum collect_state k = collect_scan(ex);
    if (k == COLLECT_COMPLETE || k == COLLECT_TOO_LARGE) {
        ex->collected = k;
        proxy_restart(ex); /* the stages again, from the exchange's request */
    }
    /* else the protocol reads on (front_flow READ still holds) */
}

/* Every line of a field as one list (RFC 9110 §5.3): Content-Encoding
 * sent as two lines is both codings, for the key as for the origin. Points
 * into the request when there is one line; else joined into *buf. */
static struct slice all_lines(const struct http_request *r, const char *name, struct outbuf *buf)
{
    const struct http_field *first = NULL;
    unsigned lines = 0;
    for (unsigned i = 0; i < r->nfields; i++)
        if (slice_case_eq(r->fields[i].name, name) && lines++ == 0)
            first = &r->fields[i];
    if (lines <= 1)
        return first ? first->value : (struct slice){"", 0};
    for (unsigned i = 0; i < r->nfields; i++) {
        if (!slice_case_eq(r->fields[i].name, name))
            continue;
        if (buf->len)
            outbuf_add(buf, ", ", 2);
        outbuf_add(buf, r->fields[i].value.p, r->fields[i].value.len);
    }
    return (struct slice){buf->p, buf->len};
}

/* The digest a body is keyed by: `raw` (its SHA-256) unless its coding is
 * undone or its JSON made canonical, for the key only. Request
 * Cache-Control: no-transform keeps the bytes as they are (RFC 9111
 * §5.2.1.6 in spirit). *coding is emptied when it was undone. */
static void normalized_digest(struct exchange *ex, struct slice type, struct slice *coding,
                              struct slice body, const unsigned char raw[32], int normalize,
                              unsigned char digest[32])
{
    memcpy(digest, raw, 32);
    int json = body_is_json(type);
    if (!normalize || (ex->req_cc.flags & CC_NO_TRANSFORM) || !(json || coding->len))
        return;
    uint32_t tag = 2166136261u; /* FNV-1a of what else decides the result */
    for (size_t i = 0; i < coding->len; i++)
        tag = (tag ^ (unsigned char)coding->p[i]) * 16777619u;
    tag = (tag ^ (uint32_t)json) * 16777619u;
    int what;
    if (!body_memo_get(ex->w->memo, raw, tag, digest, &what)) {
        const char *keyed;
        size_t keyed_len;
        char *to_free;
        const struct config *cfg = ex->w->cfg;
        struct norm_limits lim = {
            .max_bytes = (size_t)cfg->body_key.normalize_max_bytes,
            .max_values = (unsigned)cfg->body_key.normalize_max_values,
            .max_depth = (unsigned)cfg->body_key.normalize_max_depth,
        };
        what = body_normalize(type, *coding, body.p, body.len, &lim, &keyed, &keyed_len, &to_free);
        if (what > 0)
            SHA256((const unsigned char *)keyed, keyed_len, digest);
        free(to_free);
        body_memo_put(ex->w->memo, raw, tag, digest, what);
    }
    if (what > 0 && (what & NORM_DECODED))
        *coding = (struct slice){"", 0};
}

/* What the request body is keyed by; 0, or -1 after a reply of our own.
 * cls 'C' is a Connect unary call with codec rpc_codec. */
int key_body(struct exchange *ex, const struct http_request *r, const struct rule *rule, char cls,
             struct slice rpc_codec)
{
    struct slice body = collect_body(ex, r);
    unsigned char raw[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)body.p, body.len, raw);
    const struct http_field *cd = http_find_field(r->fields, r->nfields, "content-digest");
    if (cd) {
        /* RFC 9530 §2: the digest of the content as received. */
        unsigned char want[64], got[64];
        int alg = http_digest_field(cd->value, want);
        if (alg == HTTP_DIGEST_SHA256)
            memcpy(got, raw, sizeof raw);
        else if (alg == HTTP_DIGEST_SHA512)
            SHA512((const unsigned char *)body.p, body.len, got);
        if (alg < 0 || (alg > 0 && memcmp(want, got, (size_t)alg / 8))) {
            reply_problem(ex, 400, alg < 0 ? "Malformed Content-Digest" : "Content-Digest mismatch",
                          alg < 0 ? "the Content-Digest field could not be parsed"
                                  : "the request content does not match its Content-Digest");
            return -1;
        }
    }
    const struct http_field *ct = http_find_field(r->fields, r->nfields, "content-type");
    struct outbuf joined = {0};
    struct slice type = ct ? ct->value : (struct slice){"", 0};
    struct slice coding = all_lines(r, "content-encoding", &joined);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    /* Normalizing costs work a client chooses, so it is opt-in, for QUERY
     * as for POST: a rule with normalize (its default). Connect calls are
     * configured procedures; their messages are normalized. */
    int normalize = cls == 'C' || (rule && rule->normalize);
    normalized_digest(ex, type, &coding, body, raw, normalize, digest);
    if (cls == 'C') {
        /* a POST's query is the application's: all of it is keyed */
        ex->cache_key = cache_key_rpc(r, srv_request_scheme(ex, r), request_path(r), rpc_codec,
                                      coding, digest, request_query(r), &ex->cache_key_len);
    } else {
        struct slice headers = rule ? (struct slice){rule->key_headers, strlen(rule->key_headers)}
                                    : (struct slice){"", 0};
        ex->cache_key = cache_key_body(cls, r, srv_request_scheme(ex, r), digest, type, coding,
                                       headers, &ex->cache_key_len);
    }
    free(joined.p);
    ex->body_keyed = 1;
    ex->rule_ttl = rule ? rule->ttl : 0;
    return 0;
}

/* A Connect GET: the message from the query, keyed as its POST would be,
 * with the query's other parameters (issue 10, finding 5: dropping them
 * let one user's `?user=alice` answer another's `?user=bob`). -1 when the
 * query does not decode (then it is an ordinary GET). */
int key_rpc_get(struct exchange *ex, const struct http_request *r, struct slice codec)
{
    struct connect_get g;
    struct slice query = request_query(r);
    if (connect_get_parse(query, &g) < 0)
        return -1;
    size_t len;
    char *msg = connect_get_message(&g, ex->w->cfg->body_key.max_bytes, &len);
    if (!msg)
        return -1;
    char type[64];
    int tl = snprintf(type, sizeof type, "application/%.*s", (int)codec.len, codec.p);
    unsigned char raw[SHA256_DIGEST_LENGTH], digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)msg, len, raw);
    struct slice coding = !g.compression.len || slice_eq(g.compression, SLICE_LIT("identity"))
                              ? (struct slice){"", 0}
                              : g.compression;
    normalized_digest(ex, (struct slice){type, tl > 0 && tl < (int)sizeof type ? (size_t)tl : 0},
                      &coding, (struct slice){msg, len}, raw, 1, digest);
    free(msg);
    char *rest = malloc(query.len + 1);
    if (!rest)
        abort();
    struct slice others = {rest, connect_query_rest(query, rest)};
    ex->cache_key = cache_key_rpc(r, srv_request_scheme(ex, r), request_path(r), codec, coding,
                                  digest, others, &ex->cache_key_len);
    free(rest);
    return 0;
}
