/* What a Connect unary call carries (connect-protocol.md, "Unary-Request"
 * and "Unary-Get-Request"). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "connect/connect.h"
#include "http/chars.h"
#include "http/base64.h"

static struct slice media_type(struct slice ct)
{
    size_t end = 0;
    while (end < ct.len && ct.p[end] != ';')
        end++;
    while (end > 0 && (ct.p[end - 1] == ' ' || ct.p[end - 1] == '\t'))
        end--;
    return (struct slice){ct.p, end};
}

static int has_prefix(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && slice_case_eq((struct slice){s.p, n}, prefix);
}

enum connect_call_kind connect_classify(struct slice method, struct slice content_type,
                                        struct slice query, struct slice *codec)
{
    struct slice type = media_type(content_type);
    if (has_prefix(type, "application/connect+") || has_prefix(type, "application/grpc"))
        return CONNECT_STREAM;
    if (slice_eq(method, SLICE_LIT("POST"))) {
        if (!has_prefix(type, "application/") || type.len == 12)
            return CONNECT_NONE;
        *codec = (struct slice){type.p + 12, type.len - 12};
        /* Unary-Content-Type: "application/" Message-Codec; other media
         * types (x-www-form-urlencoded, ...) are no Connect call. */
        if (slice_case_eq(*codec, "proto") || slice_case_eq(*codec, "json"))
            return CONNECT_UNARY;
        return CONNECT_NONE;
    }
    if (slice_eq(method, SLICE_LIT("GET"))) {
        struct connect_get g;
        if (connect_get_parse(query, &g) == 0 && g.encoding.len) {
            *codec = g.encoding;
            return CONNECT_GET;
        }
    }
    return CONNECT_NONE;
}

int connect_get_parse(struct slice q, struct connect_get *out)
{
    memset(out, 0, sizeof *out);
    int seen_message = 0;
    size_t i = 0;
    while (i <= q.len) {
        size_t j = i;
        while (j < q.len && q.p[j] != '&')
            j++;
        struct slice param = {q.p + i, j - i};
        const char *eq = memchr(param.p, '=', param.len);
        struct slice name = {param.p, eq ? (size_t)(eq - param.p) : param.len};
        struct slice value = eq ? (struct slice){eq + 1, param.len - name.len - 1}
                                : (struct slice){param.p + param.len, 0};
        struct slice *slot = NULL;
        if (slice_eq(name, SLICE_LIT("encoding")))
            slot = &out->encoding;
        else if (slice_eq(name, SLICE_LIT("compression")))
            slot = &out->compression;
        else if (slice_eq(name, SLICE_LIT("message"))) {
            if (seen_message++)
                return -1;
            out->message = value;
        } else if (slice_eq(name, SLICE_LIT("base64")))
            out->base64 = slice_eq(value, SLICE_LIT("1"));
        if (slot) {
            if (slot->len) /* one call, one meaning */
                return -1;
            *slot = value;
        }
        i = j + 1;
    }
    return out->encoding.len && seen_message ? 0 : -1;
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *connect_get_message(const struct connect_get *g, size_t max, size_t *len)
{
    struct slice m = g->message;
    char *out = malloc(m.len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < m.len; i++) {
        unsigned char c = (unsigned char)m.p[i];
        if (c == '%') {
            int a = i + 1 < m.len ? hex((unsigned char)m.p[i + 1]) : -1;
            int b = i + 2 < m.len ? hex((unsigned char)m.p[i + 2]) : -1;
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(a * 16 + b);
            i += 2;
        } else {
            out[n++] = c == '+' ? ' ' : (char)c;
        }
    }
    if (g->base64) {
        /* RFC 4648 §5, padding optional; decoded in place (it shrinks) */
        int d = http_base64_decode((struct slice){out, n}, (unsigned char *)out, n, 1);
        if (d < 0) {
            free(out);
            return NULL;
        }
        n = (size_t)d;
    }
    if (n > max) {
        free(out);
        return NULL;
    }
    *len = n;
    return out;
}
