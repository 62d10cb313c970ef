/* libFuzzer: a Structured Fields Dictionary, as a targeted cache control
 * field (RFC 9213) from any origin. Iteration ends, every slice lies in the
 * input, an error is final; the field read through the cache's target list
 * (two lines: the input split at the first LF) never crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/sf.h"
#include "cache/cache_control.h"

static void inside(struct slice s, const char *p, size_t size)
{
    if (s.len && (s.p < p || s.p + s.len > p + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct sf_dict_iter it = sf_dict_begin((struct slice){p, size});
    struct sf_member m;
    enum sf_next rc;
    size_t members = 0;
    while ((rc = sf_dict_next(&it, &m)) == SF_MEMBER) {
        if (!m.key.len || ++members > size)
            abort();
        inside(m.key, p, size);
        inside(m.params, p, size);
        if (m.value.type != SF_INTEGER && m.value.type != SF_DECIMAL &&
            m.value.type != SF_BOOLEAN && m.value.type != SF_DATE)
            inside(m.value.raw, p, size);
    }
    if (rc == SF_ERROR && sf_dict_next(&it, &m) != SF_ERROR)
        abort();
    const char *lf = memchr(p, '\n', size);
    size_t first = lf ? (size_t)(lf - p) : size;
    struct http_field f[2] = {
        {{"CDN-Cache-Control", 17}, {p, first}, HF_OTHER},
        {{"cdn-cache-control", 17}, {lf ? lf + 1 : p + size, lf ? size - first - 1 : 0}, HF_OTHER},
    };
    struct cache_control cc;
    if (cache_control_targeted(f, 2, (struct slice){"X-CC, CDN-Cache-Control", 23}, &cc) &&
        ((cc.max_age != CC_UNSET && (cc.max_age < 0 || cc.max_age > CC_DELTA_MAX))))
        abort();
    return 0;
}
