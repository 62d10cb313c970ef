/* Content-Digest parsing (RFC 9530 §2, RFC 8941 §3.2 dictionaries). */
#include <string.h>
#include "http/digest_field.h"
#include "http/chars.h"
#include "http/base64.h"

static int is_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == '*';
}

int http_digest_field(struct slice v, unsigned char out[64])
{
    size_t i = 0;
    int best = HTTP_DIGEST_NONE;
    unsigned char buf[64];
    for (;;) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
            i++;
        if (i == v.len)
            return best;
        size_t k = i;
        while (i < v.len && is_key_char((unsigned char)v.p[i]))
            i++;
        struct slice key = {v.p + k, i - k};
        if (!key.len)
            return -1;
        struct slice bytes = {0};
        int is_bytes = 0;
        if (i < v.len && v.p[i] == '=') {
            i++;
            if (i < v.len && v.p[i] == ':') {
                size_t s = ++i;
                while (i < v.len && v.p[i] != ':')
                    i++;
                if (i == v.len)
                    return -1;
                bytes = (struct slice){v.p + s, i - s};
                is_bytes = 1;
                i++;
            } else {
                /* another bare item type: skip it (unknown algorithms only) */
                while (i < v.len && v.p[i] != ',' && v.p[i] != ';')
                    i++;
            }
        }
        while (i < v.len && v.p[i] == ';') /* parameters: ignored */
            while (i < v.len && v.p[i] != ',')
                i++;
        int alg = slice_eq(key, SLICE_LIT("sha-256"))   ? HTTP_DIGEST_SHA256
                  : slice_eq(key, SLICE_LIT("sha-512")) ? HTTP_DIGEST_SHA512
                                                        : HTTP_DIGEST_NONE;
        if (alg) {
            int n = is_bytes ? http_base64_decode(bytes, buf, sizeof buf, 0) : -1;
            if (n != alg / 8)
                return -1;
            if (alg > best) {
                memcpy(out, buf, (size_t)n);
                best = alg;
            }
        }
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
            i++;
        if (i == v.len)
            return best;
        if (v.p[i] != ',')
            return -1;
        i++;
    }
}
