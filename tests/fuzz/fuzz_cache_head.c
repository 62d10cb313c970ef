/* libFuzzer: a response head as the cache reads it (RFC 9111 §3, §4.1,
 * §4.3.4): its facts, the stored object, its Vary key, and a 304 merge of
 * the same head. Invariants: a variant whose Vary can be stored is found
 * again by the request it was made for (the head's own fields stand in for
 * the request's); one that cannot (Vary: *, unreadable) never matches; a
 * merge never takes a Set-Cookie from the 304; neither the object nor the
 * merge stores a 1xx Warning member (RFC 7234 §5.5). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cache/object.h"
#include "cache/policy.h"
#include "http/chars.h"
#include "http/fields.h"

static struct http_response res;

/* Does any stored Warning line hold a member whose code starts with 1? */
static int stores_1xx_warning(const struct cache_object *o)
{
    for (unsigned i = 0; i < o->nfields; i++) {
        if (!slice_case_eq(o->fields[i].name, "warning"))
            continue;
        struct http_list_iter it = http_list_begin(o->fields[i].value);
        struct slice m;
        while (http_list_next(&it, &m) > 0)
            if (m.len >= 3 && m.p[0] == '1' && http_is((unsigned char)m.p[1], CH_DIGIT) &&
                http_is((unsigned char)m.p[2], CH_DIGIT))
                return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits lim = {65536, 65536, HTTP_FIELDS_MAX};
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (http_parse_response(buf, size, &lim, &res) == HTTP_PARSE_OK && res.status != 304) {
        struct cache_object *o = cache_object_new("k", 1, &res, res.fields, res.nfields, 0, 0, 60);
        int keyable = !o->facts.vary_star && !o->facts.vary_invalid;
        if (cache_object_vary_match(o, res.fields, res.nfields) != keyable)
            abort();
        struct cache_object *m =
            cache_object_revalidated(o, &res, res.fields, res.nfields, 0, 0, 10, 60);
        int stored_cookie = cache_object_field(o, "set-cookie") != NULL;
        if (!stored_cookie && cache_object_field(m, "set-cookie"))
            abort();
        if (stores_1xx_warning(o) || stores_1xx_warning(m))
            abort();
        cache_object_unref(&m);
        cache_object_unref(&o);
    }
    free(buf);
    return 0;
}
