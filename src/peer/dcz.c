/* Dictionary-compressed zstd (RFC 9842 §4): the receiver knows which body
 * the sender used as dictionary from the SHA-256 in the header. */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "peer/peer.h"

static const unsigned char dcz_magic[8] = {0x5e, 0x2a, 0x4d, 0x18, 0x20, 0x00, 0x00, 0x00};

unsigned char *peer_dcz_encode(const void *body, size_t len, const void *dict, size_t dict_len,
                               const unsigned char dict_digest[32], size_t *out_len)
{
    ZSTD_CCtx *z = ZSTD_createCCtx();
    if (!z)
        return NULL;
    size_t cap = DCZ_HEADER_LEN + ZSTD_compressBound(len);
    unsigned char *out = malloc(cap);
    size_t n = 0;
    /* The dictionary as a raw-content prefix (never a trained one); the
     * window must reach back over all of it (RFC 9842 §4). */
    int wlog = 10;
    while (wlog < 27 && ((size_t)1 << wlog) < dict_len + len)
        wlog++;
    if (out && !ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, wlog)) &&
        !ZSTD_isError(ZSTD_CCtx_refPrefix(z, dict, dict_len))) {
        memcpy(out, dcz_magic, 8);
        memcpy(out + 8, dict_digest, 32);
        n = ZSTD_compress2(z, out + DCZ_HEADER_LEN, cap - DCZ_HEADER_LEN, body, len);
    }
    ZSTD_freeCCtx(z);
    if (!out || !n || ZSTD_isError(n)) {
        free(out);
        return NULL;
    }
    *out_len = DCZ_HEADER_LEN + n;
    return out;
}

unsigned char *peer_dcz_decode(const void *in, size_t len, const void *dict, size_t dict_len,
                               const unsigned char dict_digest[32], size_t max, size_t *out_len)
{
    const unsigned char *p = in;
    if (len < DCZ_HEADER_LEN || memcmp(p, dcz_magic, 8) || memcmp(p + 8, dict_digest, 32))
        return NULL;
    ZSTD_DCtx *z = ZSTD_createDCtx();
    if (!z)
        return NULL;
    unsigned char *out = NULL;
    size_t n = 0, cap = 0;
    if (!ZSTD_isError(ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 27)) &&
        !ZSTD_isError(ZSTD_DCtx_refPrefix(z, dict, dict_len))) {
        ZSTD_inBuffer ib = {p + DCZ_HEADER_LEN, len - DCZ_HEADER_LEN, 0};
        size_t rc = 1;
        while (rc != 0) {
            if (n == cap) {
                if (cap >= max)
                    break;
                cap = cap ? cap * 2 : 16384;
                if (cap > max)
                    cap = max;
                unsigned char *g = realloc(out, cap ? cap : 1);
                if (!g)
                    break;
                out = g;
            }
            ZSTD_outBuffer ob = {out, cap, n};
            size_t before = ib.pos;
            rc = ZSTD_decompressStream(z, &ob, &ib);
            n = ob.pos;
            if (ZSTD_isError(rc) || (rc && ib.pos == before && ob.pos < ob.size))
                break;
        }
        if (rc != 0 || ib.pos != ib.size) {
            free(out);
            out = NULL;
        }
    }
    ZSTD_freeDCtx(z);
    if (out)
        *out_len = n;
    return out;
}
