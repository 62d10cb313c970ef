/* Range requests (RFC 9110 §14): the Range field against a representation
 * of known length. Pure. */
#ifndef IDEM_HTTP_RANGE_H
#define IDEM_HTTP_RANGE_H
#include <stdint.h>
#include "http/slice.h"

enum http_range_verdict {
    HTTP_RANGE_IGNORE,        /* invalid, another unit, or too many: send the whole 200 */
    HTTP_RANGE_SINGLE,        /* one satisfiable range: 206 with *first..*last */
    HTTP_RANGE_MULTIPLE,      /* several satisfiable ranges (we send the whole 200) */
    HTTP_RANGE_UNSATISFIABLE, /* none satisfiable: 416 with Content-Range: bytes *\/size */
};

/* `value`: the Range field value; `size`: the representation's length;
 * more than `max_ranges` range-specs is HTTP_RANGE_IGNORE (§14.2 lets a
 * server ignore a Range it finds excessive). On HTTP_RANGE_SINGLE,
 * *first and *last are the inclusive byte positions, last < size. */
enum http_range_verdict http_range_parse(struct slice value, uint64_t size, unsigned max_ranges,
                                         uint64_t *first, uint64_t *last);

/* Content-Range of a 206 (§14.4): "bytes first-last/complete" with a
 * known complete length and first <= last < complete; 0, or -1 for
 * anything else (an unknown length "*" included: such a part is not kept). */
int http_content_range_parse(struct slice value, uint64_t *first, uint64_t *last,
                             uint64_t *complete);

#endif
