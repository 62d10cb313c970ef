/* "G http://" + lowercased authority + path?query. GET and HEAD share the
 * "G" class: a HEAD is answered from a stored GET (RFC 9110 §9.3.2). */
#include <stdlib.h>
#include <string.h>
#include "cache/key.h"
#include "http/chars.h"

char *cache_key_for(struct slice host, struct slice path, size_t *len)
{
    char *k = malloc(9 + host.len + 1 + path.len);
    if (!k)
        abort();
    size_t p = 9;
    memcpy(k, "G http://", 9);
    for (size_t i = 0; i < host.len; i++)
        k[p++] = (char)http_lower((unsigned char)host.p[i]);
    if (path.len == 0 || path.p[0] != '/')
        k[p++] = '/';
    memcpy(k + p, path.p, path.len);
    *len = p + path.len;
    return k;
}

char *cache_key_primary(const struct http_request *r, size_t *len)
{
    int abs = r->form == HTTP_TARGET_ABSOLUTE;
    return cache_key_for(abs ? r->authority : r->host, abs ? r->path : r->target, len);
}
