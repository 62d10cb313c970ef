/* libFuzzer: what a client's body and fields reach before any origin does:
 * body normalization (codings, canonical JSON and its limits) and the
 * Content-Digest parser. The
 * first byte picks the coding and the media type; the rest is the body
 * and, read again as text, a Content-Digest value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rules/normalize.h"
#include "http/digest_field.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const codings[] = {"", "gzip", "deflate", "zstd", "gzip, zstd", "br"};
    static const char *const types[] = {"application/json", "text/plain", "a/b+json; x=1"};
    if (size < 1)
        return 0;
    struct slice coding = {codings[data[0] % 6], strlen(codings[data[0] % 6])};
    struct slice type = {types[(data[0] / 6) % 3], strlen(types[(data[0] / 6) % 3])};
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    const char *out;
    size_t out_len;
    char *to_free;
    /* small limits, so deep nesting and many values reach them quickly */
    struct norm_limits lim = {1 << 16, 4096, 32};
    int what = body_normalize(type, coding, body, len, &lim, &out, &out_len, &to_free);
    if (what < 0 && (out != body || out_len != len || to_free))
        abort(); /* a failure keys the raw bytes */
    if (out_len > (1 << 16) && to_free)
        abort(); /* the bound holds */
    if (what > 0 && (what & NORM_JSON) && !(what & NORM_DECODED) && out_len > len)
        abort(); /* canonical JSON is never longer than the text */
    if (out_len && !out)
        abort();
    /* touch every byte so ASan checks the span */
    volatile unsigned sum = 0;
    for (size_t i = 0; i < out_len; i++)
        sum += (unsigned char)out[i];
    (void)sum;
    if (what > 0 && (what & NORM_JSON)) {
        /* canonical twice is canonical once: same bytes, same key */
        const char *again;
        size_t again_len;
        char *again_free;
        struct slice none = {"", 0};
        int w2 = body_normalize(type, none, out, out_len, &lim, &again, &again_len, &again_free);
        if (w2 != NORM_JSON || again_len != out_len || memcmp(again, out, out_len))
            abort();
        free(again_free);
    }
    free(to_free);
    unsigned char d[64];
    int alg = http_digest_field((struct slice){body, len}, d);
    if (alg != -1 && alg != 0 && alg != 256 && alg != 512)
        abort();
    return 0;
}
