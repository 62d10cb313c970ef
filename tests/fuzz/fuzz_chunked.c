/* libFuzzer: the chunked decoder. The input is decoded whole and in two
 * parts split at a point taken from the first byte; both must agree on
 * the verdict and the content. The same bytes as a STREAM body (an h2
 * request's DATA) come back whole, and DONE only once the input ended. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/body.h"

static int decode(const uint8_t *in, size_t n, size_t split, uint8_t *out, size_t *outlen)
{
    struct http_body_reader r;
    http_body_init(&r, HTTP_BODY_CHUNKED, 0, 4096);
    size_t pos = 0, limit = split;
    *outlen = 0;
    for (;;) {
        size_t used;
        struct slice d;
        enum http_body_rc rc = http_body_read(&r, (const char *)in + pos, limit - pos, &used, &d);
        if (used > limit - pos)
            abort();
        pos += used;
        if (rc == HTTP_BODY_DATA) {
            if (d.len == 0 || (const uint8_t *)d.p < in || (const uint8_t *)d.p + d.len > in + n)
                abort();
            memcpy(out + *outlen, d.p, d.len);
            *outlen += d.len;
            continue;
        }
        if (rc == HTTP_BODY_MORE && limit < n) {
            limit = n;
            continue;
        }
        return rc == HTTP_BODY_DONE ? (int)pos + 1 : -(int)rc;
    }
}

static void stream(const uint8_t *in, size_t n, size_t split)
{
    struct http_body_reader r;
    http_body_init(&r, HTTP_BODY_STREAM, 0, 4096);
    size_t pos = 0, got = 0, used;
    struct slice d;
    for (size_t limit = split;; limit = n) {
        enum http_body_rc rc;
        while ((rc = http_body_read(&r, (const char *)in + pos, limit - pos, &used, &d)) ==
               HTTP_BODY_DATA) {
            if (d.p != (const char *)in + pos || used != d.len || d.len == 0)
                abort();
            pos += used;
            got += d.len;
        }
        if (rc != HTTP_BODY_MORE || pos != limit)
            abort();
        if (limit == n)
            break;
    }
    http_body_reader_end(&r);
    if (got != n || http_body_read(&r, "", 0, &used, &d) != HTTP_BODY_DONE || !http_body_done(&r))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % size;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1), *a = malloc(n + 1), *b = malloc(n + 1);
    memcpy(buf, in, n);
    size_t la, lb;
    int ra = decode(buf, n, n, a, &la);
    int rb = decode(buf, n, split > n ? n : split, b, &lb);
    if (ra != rb || la != lb || memcmp(a, b, la) != 0)
        abort();
    stream(buf, n, split > n ? n : split);
    free(buf);
    free(a);
    free(b);
    return 0;
}
