/* "G " + scheme + "://" + lowercased authority + path?query. GET and HEAD
 * share the "G" class: a HEAD is answered from a stored GET (RFC 9110
 * §9.3.2). The scheme's default port and an empty one are dropped (RFC
 * 9110 §4.2.3), so "host", "host:" and "host:80" name one http resource,
 * and "host:443" the https one. */
#include <stdlib.h>
#include <string.h>
#include "cache/key.h"
#include "http/chars.h"
#include "cache/object.h"

const char *cache_scheme_name(enum cache_scheme s)
{
    return s == CACHE_SCHEME_HTTPS ? "https" : "http";
}

enum cache_scheme cache_request_scheme(const struct http_request *r, int over_tls,
                                       int forward_proxy)
{
    if (forward_proxy && r->form == HTTP_TARGET_ABSOLUTE)
        return slice_case_eq(r->scheme, "https") ? CACHE_SCHEME_HTTPS : CACHE_SCHEME_HTTP;
    return over_tls ? CACHE_SCHEME_HTTPS : CACHE_SCHEME_HTTP;
}

char *cache_key_for(enum cache_scheme scheme, struct slice host, struct slice path, size_t *len)
{
    const char *port = scheme == CACHE_SCHEME_HTTPS ? ":443" : ":80";
    size_t pl = strlen(port);
    if (host.len >= pl && !memcmp(host.p + host.len - pl, port, pl))
        host.len -= pl;
    else if (host.len >= 1 && host.p[host.len - 1] == ':')
        host.len -= 1;
    const char *name = cache_scheme_name(scheme);
    size_t nl = strlen(name);
    char *k = malloc(2 + nl + 3 + host.len + 1 + path.len);
    if (!k)
        abort();
    size_t p = 0;
    k[p++] = 'G';
    k[p++] = ' ';
    memcpy(k + p, name, nl);
    p += nl;
    memcpy(k + p, "://", 3);
    p += 3;
    for (size_t i = 0; i < host.len; i++)
        k[p++] = (char)http_lower((unsigned char)host.p[i]);
    if (path.len == 0 || path.p[0] != '/')
        k[p++] = '/';
    memcpy(k + p, path.p, path.len);
    *len = p + path.len;
    return k;
}

char *cache_key_primary(const struct http_request *r, enum cache_scheme scheme, size_t *len)
{
    int abs = r->form == HTTP_TARGET_ABSOLUTE;
    return cache_key_for(scheme, abs ? r->authority : r->host, abs ? r->path : r->target, len);
}

enum cache_key_parse_result cache_key_parse(const char *key, size_t len, struct cache_key_url *out)
{
    if (len < 2 || key[1] != ' ')
        return CACHE_KEY_MALFORMED;
    out->cls = key[0];
    const char *s = key + 2, *end = key + len;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl)
        end = nl;
    size_t rest = (size_t)(end - s);
    if (rest >= 8 && !memcmp(s, "https://", 8)) {
        out->scheme = CACHE_SCHEME_HTTPS;
        s += 8;
    } else if (rest >= 7 && !memcmp(s, "http://", 7)) {
        out->scheme = CACHE_SCHEME_HTTP;
        s += 7;
    } else {
        return CACHE_KEY_MALFORMED;
    }
    /* the builders always put a path after the authority: "/" at least */
    const char *slash = memchr(s, '/', (size_t)(end - s));
    if (!slash)
        return CACHE_KEY_MALFORMED;
    out->authority = (struct slice){s, (size_t)(slash - s)};
    out->path = (struct slice){slash, (size_t)(end - slash)};
    out->url = (struct slice){key + 2, (size_t)(end - key - 2)};
    return CACHE_KEY_PARSED;
}

/* "Application/JSON ; Charset=UTF-8" -> "application/json;charset=utf-8":
 * type, subtype, parameter names and charset are case-insensitive (RFC
 * 9110 §8.3.1, §8.3.2); other parameter values are kept as sent. */
static size_t media_type_norm(struct slice in, char *out)
{
    size_t n = 0, i = 0;
    int in_value = 0, lower_value = 0;
    size_t name_start = 0;
    for (; i < in.len; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (c == ' ' || c == '\t')
            continue;
        if (c == ';') {
            in_value = 0;
            out[n++] = ';';
            name_start = n;
            continue;
        }
        if (c == '=' && !in_value) {
            in_value = 1;
            lower_value = n - name_start == 7 && !memcmp(out + name_start, "charset", 7);
            out[n++] = '=';
            continue;
        }
        out[n++] = (char)(!in_value || lower_value ? http_lower(c) : c);
    }
    return n;
}

static void hex32(const unsigned char d[32], char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
}

char *cache_key_body(char cls, const struct http_request *r, enum cache_scheme scheme,
                     const unsigned char digest[32], struct slice content_type, struct slice coding,
                     struct slice key_headers, size_t *len)
{
    size_t url_len;
    char *url = cache_key_primary(r, scheme, &url_len);
    size_t hl = 0;
    char *hk = key_headers.len ? cache_vary_key(key_headers, r->fields, r->nfields, &hl) : NULL;
    size_t cap = url_len + 1 + 2 + 64 + 1 + 2 + content_type.len + 1 + 2 + coding.len + 1 + hl;
    char *k = malloc(cap);
    if (!k)
        abort();
    size_t p = 0;
    memcpy(k, url, url_len);
    k[0] = cls;
    p = url_len;
    memcpy(k + p, "\nb:", 3);
    p += 3;
    hex32(digest, k + p);
    p += 64;
    memcpy(k + p, "\nt:", 3);
    p += 3;
    p += media_type_norm(content_type, k + p);
    memcpy(k + p, "\ne:", 3);
    p += 3;
    for (size_t i = 0; i < coding.len; i++)
        if (coding.p[i] != ' ' && coding.p[i] != '\t')
            k[p++] = (char)http_lower((unsigned char)coding.p[i]);
    k[p++] = '\n';
    if (hl)
        memcpy(k + p, hk, hl);
    p += hl;
    free(url);
    free(hk);
    *len = p;
    return k;
}

char *cache_key_partial(const char *url_key, size_t url_len, size_t *len)
{
    static const char tail[] = "\nrange";
    char *k = malloc(url_len + sizeof tail - 1);
    if (!k)
        abort();
    memcpy(k, url_key, url_len);
    k[0] = 'R';
    memcpy(k + url_len, tail, sizeof tail - 1);
    *len = url_len + sizeof tail - 1;
    return k;
}

int cache_key_is_body_of(const char *key, size_t len, const char *url_key, size_t url_len)
{
    return len > url_len && key[0] != 'G' && key[url_len] == '\n' &&
           !memcmp(key + 1, url_key + 1, url_len - 1);
}

char *cache_key_rpc(const struct http_request *r, enum cache_scheme scheme, struct slice path,
                    struct slice codec, struct slice coding, const unsigned char digest[32],
                    struct slice rest, size_t *len)
{
    int abs = r->form == HTTP_TARGET_ABSOLUTE;
    size_t url_len;
    char *url = cache_key_for(scheme, abs ? r->authority : r->host, path, &url_len);
    char *k = malloc(url_len + 3 + codec.len + 3 + coding.len + 3 + 64 + 3 + rest.len + 1);
    if (!k)
        abort();
    memcpy(k, url, url_len);
    k[0] = 'C';
    size_t p = url_len;
    memcpy(k + p, "\nc:", 3);
    p += 3;
    for (size_t i = 0; i < codec.len; i++)
        k[p++] = (char)http_lower((unsigned char)codec.p[i]);
    memcpy(k + p, "\ne:", 3);
    p += 3;
    for (size_t i = 0; i < coding.len; i++)
        if (coding.p[i] != ' ' && coding.p[i] != '\t')
            k[p++] = (char)http_lower((unsigned char)coding.p[i]);
    memcpy(k + p, "\nb:", 3);
    p += 3;
    hex32(digest, k + p);
    p += 64;
    memcpy(k + p, "\nq:", 3);
    p += 3;
    if (rest.len)
        memcpy(k + p, rest.p, rest.len);
    p += rest.len;
    k[p++] = '\n';
    free(url);
    *len = p;
    return k;
}
