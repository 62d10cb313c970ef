/* libFuzzer: a client's Range field (RFC 9110 §14.1.1) against stored
 * bodies of a few sizes, and an origin's Content-Range. A single range
 * always lies inside the body; a part read always lies inside its whole. */
#include <stdint.h>
#include <stdlib.h>
#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 10, 65536, UINT64_MAX / 2};
    struct slice v = {(const char *)data, size};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t first = 0, last = 0;
        enum http_range_verdict r = http_range_parse(v, sizes[k], 16, &first, &last);
        if (r == HTTP_RANGE_SINGLE && (first > last || last >= sizes[k]))
            abort();
        if (r != HTTP_RANGE_IGNORE && (size < 7))
            abort(); /* "bytes=" and at least one spec */
    }
    uint64_t a, b, n;
    if (http_content_range_parse(v, &a, &b, &n) == 0 && (a > b || b >= n))
        abort();
    return 0;
}
