/* Key normalization of request bodies: content codings (RFC 9110 §8.4.1)
 * and canonical JSON. Every decoder stops at lim->max_bytes, so a small
 * body that inflates to gigabytes (a zip bomb) costs at most that many
 * bytes of work and memory, all freed before returning. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include "rules/normalize.h"
#include "rules/json_canon.h"
#include "http/chars.h"
#include "http/coding.h"

struct buf {
    char *p;
    size_t len, cap, max;
};

/* Room for at least one more byte; 0 when max is reached. */
static int buf_room(struct buf *b)
{
    if (b->len < b->cap)
        return 1;
    if (b->cap >= b->max)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 16384;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->p, cap);
    if (!p)
        return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

/* windowBits: 16+15 gzip, 15 zlib ("deflate" as RFC 9110 defines it),
 * -15 raw deflate (what some clients send as "deflate"). */
static int inflate_into(const char *in, size_t len, int window_bits, struct buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window_bits) != Z_OK)
        return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (!buf_room(out)) {
            rc = Z_MEM_ERROR;
            break;
        }
        z.next_out = (Bytef *)out->p + out->len;
        z.avail_out = (uInt)(out->cap - out->len);
        rc = inflate(&z, Z_NO_FLUSH);
        out->len = out->cap - z.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            rc = Z_DATA_ERROR; /* truncated */
            break;
        }
    }
    inflateEnd(&z);
    /* trailing garbage after the stream is refused, too */
    return rc == Z_STREAM_END && z.avail_in == 0 ? 0 : -1;
}

/* One call into a buffer of the whole limit: a single-shot decode writes
 * straight into the output, so the frame's window size (up to 2^31, RFC
 * 8878 §3.1.1.1.2) costs no memory of its own, and a frame made by a
 * streaming compressor (window 2^21 and no content size, as `zstd` writes
 * from a pipe) still decodes. Output past the limit, a truncated frame or
 * trailing bytes fail, and the body is keyed raw. */
static int unzstd_into(const char *in, size_t len, struct buf *out)
{
    if (out->cap < out->max) {
        char *p = realloc(out->p, out->max ? out->max : 1);
        if (!p)
            return -1;
        out->p = p;
        out->cap = out->max;
    }
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return -1;
    size_t rc = ZSTD_decompressDCtx(d, out->p, out->max, in, len);
    ZSTD_freeDCtx(d);
    if (ZSTD_isError(rc))
        return -1;
    out->len = rc;
    return 0;
}

static int decode_one(struct slice coding, const char *in, size_t len, struct buf *out)
{
    if (slice_case_eq(coding, "gzip") || slice_case_eq(coding, "x-gzip"))
        return inflate_into(in, len, 16 + MAX_WBITS, out);
    if (slice_case_eq(coding, "deflate")) {
        if (inflate_into(in, len, MAX_WBITS, out) == 0)
            return 0;
        out->len = 0;
        return inflate_into(in, len, -MAX_WBITS, out);
    }
    if (slice_case_eq(coding, "zstd"))
        return unzstd_into(in, len, out);
    return -1;
}

int body_is_json(struct slice ct)
{
    size_t end = 0;
    while (end < ct.len && ct.p[end] != ';')
        end++;
    while (end > 0 && (ct.p[end - 1] == ' ' || ct.p[end - 1] == '\t'))
        end--;
    struct slice type = {ct.p, end};
    if (slice_case_eq(type, "application/json"))
        return 1;
    return end > 5 && memchr(ct.p, '/', end) &&
           slice_case_eq((struct slice){ct.p + end - 5, 5}, "+json");
}

int body_normalize(struct slice content_type, struct slice content_encoding, const char *body,
                   size_t len, const struct norm_limits *lim, const char **out, size_t *out_len,
                   char **to_free)
{
    const char *cur = body;
    size_t cur_len = len;
    char *owned = NULL;
    int what = 0;
    *out = body;
    *out_len = len;
    *to_free = NULL;
    /* Codings are listed in the order applied: undo the last one first. */
    struct slice codings[8];
    unsigned nc = 0;
    struct http_coding_iter it = http_codings_of(content_encoding);
    struct slice el;
    enum http_coding_rc crc;
    while ((crc = http_coding_next(&it, &el)) == HTTP_CODING_NEXT) {
        if (slice_case_eq(el, "identity"))
            continue;
        if (nc == sizeof codings / sizeof codings[0])
            return -1;
        codings[nc++] = el;
    }
    if (crc == HTTP_CODING_MALFORMED)
        return -1; /* the same reading as the peer sides: keyed by its raw bytes */
    while (nc > 0) {
        struct buf b = {.max = lim->max_bytes};
        if (decode_one(codings[--nc], cur, cur_len, &b) < 0) {
            free(b.p);
            free(owned);
            return -1;
        }
        free(owned);
        owned = b.p;
        cur = b.p ? b.p : "";
        cur_len = b.len;
        what |= NORM_DECODED;
    }
    if (body_is_json(content_type)) {
        /* Over the limits the raw bytes are keyed, as sent: the work spent
         * on a body stays bounded whatever it inflates or nests to. */
        struct json_canon_limits jl = {lim->max_values, lim->max_depth};
        char *canon = NULL;
        size_t canon_len = 0;
        enum json_canon_result r = cur_len > lim->max_bytes
                                       ? JSON_CANON_OVER_LIMIT
                                       : json_canonicalize(cur, cur_len, &jl, &canon, &canon_len);
        if (r == JSON_CANON_OVER_LIMIT || r == JSON_CANON_NO_MEMORY) {
            free(owned);
            return -1;
        }
        if (r == JSON_CANON_OK) {
            free(owned);
            owned = canon;
            cur = canon;
            cur_len = canon_len;
            what |= NORM_JSON;
        } /* not JSON after all: its (decoded) bytes are the key */
    }
    *out = cur;
    *out_len = cur_len;
    *to_free = owned;
    return what;
}
