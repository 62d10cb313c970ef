/* Content-Digest parsing (RFC 9530 §2, RFC 8941 §3.2 dictionaries). */
#include <string.h>
#include "http/digest_field.h"
#include "http/chars.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* RFC 8941 §3.3.5 byte sequence content; padding optional. Returns the
 * decoded length, or -1. */
static int b64_decode(struct slice in, unsigned char *out, size_t cap)
{
    size_t len = in.len;
    while (len && in.p[len - 1] == '=')
        len--;
    if (in.len - len > 2)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in.p[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)n;
}

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
            int n = is_bytes ? b64_decode(bytes, buf, sizeof buf) : -1;
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
