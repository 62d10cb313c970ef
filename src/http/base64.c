#include <stdint.h>
#include "http/base64.h"

static int value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int http_base64_decode(struct slice in, unsigned char *out, size_t cap, int url)
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
        int v = value((unsigned char)in.p[i], url);
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
    return bits >= 6 ? -1 : (int)n; /* a lone trailing symbol carries no byte */
}
