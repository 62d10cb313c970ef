/* libFuzzer: the cache key builders on any request a client can send. The
 * input is a request head (parsed by the server's own parser) followed by
 * "\n--\n" and a media type, a content coding and a key_headers list, one
 * per line. Invariants, for each scheme: keys are built without reading
 * out of bounds; a body key (any class) is a body key of its own URL's GET
 * key and of no other scheme's; a GET key never is; two different media
 * types never share a body key; cache_key_parse reads back the scheme and
 * the URL the builders wrote; http and https never share a key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cache/key.h"
#include "http/http.h"

static struct http_request req;

static struct slice next_line(const char **p, const char *end)
{
    const char *s = *p;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    return (struct slice){s, (size_t)(e - s)};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits lim = {8192, 65536, 100};
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    const char *end = buf + size;
    const char *sep = memmem(buf, size, "\n--\n", 4);
    size_t head_len = sep ? (size_t)(sep - buf) + 1 : size;
    if (http_parse_request(buf, head_len, &lim, &req) != HTTP_PARSE_OK) {
        free(buf);
        return 0;
    }
    const char *p = sep ? sep + 4 : end;
    struct slice type = next_line(&p, end);
    struct slice coding = next_line(&p, end);
    struct slice key_headers = next_line(&p, end);
    unsigned char digest[32];
    memset(digest, 0xab, sizeof digest);

    char *gk[2];
    size_t gl[2];
    for (int sc = CACHE_SCHEME_HTTP; sc <= CACHE_SCHEME_HTTPS; sc++) {
        enum cache_scheme scheme = (enum cache_scheme)sc;
        size_t glen, plen, qlen, tlen;
        char *g = cache_key_primary(&req, scheme, &glen);
        char *post = cache_key_body('P', &req, scheme, digest, type, coding, key_headers, &plen);
        char *query = cache_key_body('Q', &req, scheme, digest, type, coding, key_headers, &qlen);
        /* the same body under another media type: another entry */
        char other_type[64] = "x/other-";
        size_t ol = strlen(other_type);
        size_t copy = type.len < sizeof other_type - ol ? type.len : sizeof other_type - ol;
        memcpy(other_type + ol, type.p, copy);
        char *typed =
            cache_key_body('P', &req, scheme, digest, (struct slice){other_type, ol + copy}, coding,
                           key_headers, &tlen);
        if (!g || !post || !query || !typed)
            abort();
        if (!cache_key_is_body_of(post, plen, g, glen) ||
            !cache_key_is_body_of(query, qlen, g, glen))
            abort();
        if (cache_key_is_body_of(g, glen, g, glen))
            abort();
        if (plen == qlen && !memcmp(post, query, plen))
            abort(); /* POST and QUERY never share an entry */
        if (tlen == plen && !memcmp(typed, post, plen))
            abort();
        struct cache_key_url gu, pu;
        if (cache_key_parse(g, glen, &gu) != CACHE_KEY_PARSED || gu.scheme != scheme ||
            gu.cls != 'G' || gu.url.p + gu.url.len != g + glen)
            abort();
        if (cache_key_parse(post, plen, &pu) != CACHE_KEY_PARSED || pu.scheme != scheme ||
            pu.cls != 'P' || pu.url.len != gu.url.len || memcmp(pu.url.p, gu.url.p, gu.url.len))
            abort();
        if (sc == CACHE_SCHEME_HTTPS && cache_key_is_body_of(post, plen, gk[0], gl[0]))
            abort(); /* an https body key is never the http URL's */
        gk[sc] = g;
        gl[sc] = glen;
        free(post);
        free(query);
        free(typed);
    }
    if (gl[0] == gl[1] && !memcmp(gk[0], gk[1], gl[0]))
        abort();
    free(gk[0]);
    free(gk[1]);
    free(buf);
    return 0;
}
