/* SHA-256 over the stored segments, base64url without padding. The "i-"
 * prefix marks tags idemcache made, so it never sends one to an origin
 * that could not know it. */
#include <openssl/evp.h>
#include <string.h>
#include "cache/etag.h"

void cache_etag_of_body(const struct cache_body *b, char out[CACHE_ETAG_LEN])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (const struct cache_segment *s = b->first; s; s = s->next)
        EVP_DigestUpdate(ctx, s->data, s->len);
    EVP_DigestFinal_ex(ctx, d, &dl);
    EVP_MD_CTX_free(ctx);
    size_t p = 0;
    out[p++] = '"';
    out[p++] = 'i';
    out[p++] = '-';
    for (int i = 0; i < 32; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < 32 ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < 32 ? d[i + 2] : 0);
        out[p++] = b64[v >> 18 & 63];
        out[p++] = b64[v >> 12 & 63];
        if (i + 1 < 32)
            out[p++] = b64[v >> 6 & 63];
        if (i + 2 < 32)
            out[p++] = b64[v & 63];
    }
    out[p++] = '"';
}
