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

/* One "name=value" of a query, and where the next one starts. */
struct query_param {
    struct slice name, value;
};

static size_t next_param(struct slice q, size_t i, struct query_param *p)
{
    size_t j = i;
    while (j < q.len && q.p[j] != '&')
        j++;
    struct slice param = {q.p + i, j - i};
    const char *eq = memchr(param.p, '=', param.len);
    p->name = (struct slice){param.p, eq ? (size_t)(eq - param.p) : param.len};
    p->value = eq ? (struct slice){eq + 1, param.len - p->name.len - 1}
                  : (struct slice){param.p + param.len, 0};
    return j + 1;
}

enum connect_param {
    PARAM_OTHER,
    PARAM_CONNECT,
    PARAM_ENCODING,
    PARAM_MESSAGE,
    PARAM_BASE64,
    PARAM_COMPRESSION,
};

static enum connect_param param_kind(struct slice name)
{
    static const struct slice names[] = {
        {NULL, 0},           SLICE_LIT("connect"),    SLICE_LIT("encoding"), SLICE_LIT("message"),
        SLICE_LIT("base64"), SLICE_LIT("compression")};
    for (unsigned k = PARAM_CONNECT; k <= PARAM_COMPRESSION; k++)
        if (name.len == names[k].len && slice_eq(name, names[k]))
            return (enum connect_param)k;
    return PARAM_OTHER;
}

int connect_get_parse(struct slice q, struct connect_get *out)
{
    memset(out, 0, sizeof *out);
    unsigned seen = 0;
    for (size_t i = 0; i <= q.len;) {
        struct query_param p;
        i = next_param(q, i, &p);
        enum connect_param k = param_kind(p.name);
        if (k == PARAM_OTHER) {
            /* "%65ncoding" is "encoding" to the server */
            if (memchr(p.name.p, '%', p.name.len))
                return -1;
            continue;
        }
        if (seen & (1u << k)) /* one call, one meaning */
            return -1;
        seen |= 1u << k;
        switch (k) {
        case PARAM_CONNECT:
            if (!slice_eq(p.value, SLICE_LIT("v1")))
                return -1;
            break;
        case PARAM_ENCODING:
            if (!slice_eq(p.value, SLICE_LIT("proto")) && !slice_eq(p.value, SLICE_LIT("json")))
                return -1;
            out->encoding = p.value;
            break;
        case PARAM_MESSAGE:
            out->message = p.value;
            break;
        case PARAM_BASE64:
            if (!slice_eq(p.value, SLICE_LIT("1")))
                return -1;
            out->base64 = 1;
            break;
        case PARAM_COMPRESSION:
            if (memchr(p.value.p, '%', p.value.len) || memchr(p.value.p, '+', p.value.len))
                return -1;
            out->compression = p.value;
            break;
        default:
            break;
        }
    }
    return (seen & (1u << PARAM_ENCODING)) && (seen & (1u << PARAM_MESSAGE)) ? 0 : -1;
}

size_t connect_query_rest(struct slice q, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < q.len;) {
        struct query_param p;
        size_t start = i;
        i = next_param(q, i, &p);
        size_t len = i - 1 - start; /* i is one past the '&' or the end */
        /* an empty one ("a&&b") is no parameter to a form decoder */
        if (!len || param_kind(p.name) != PARAM_OTHER)
            continue;
        if (n)
            out[n++] = '&';
        memcpy(out + n, q.p + start, len);
        n += len;
    }
    return n;
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
