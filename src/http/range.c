/* Range: bytes=... (RFC 9110 §14.1.1, §14.1.2, §14.2). The whole field
 * must parse or it is ignored; "bytes" is the only unit we serve. */
#include "http/range.h"
#include "http/chars.h"
#include "http/fields.h"

/* 1*DIGIT; saturates (a position past any size is as good as infinite). */
static int parse_pos(struct slice v, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t n = 0;
    while (*i < v.len && http_is((unsigned char)v.p[*i], CH_DIGIT)) {
        uint64_t d = (uint64_t)(v.p[*i] - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        (*i)++;
    }
    *out = n;
    return *i > start;
}

enum http_range_verdict http_range_parse(struct slice value, uint64_t size, unsigned max_ranges,
                                         uint64_t *first, uint64_t *last)
{
    /* ranges-specifier = range-unit "=" range-set; the unit is
     * case-insensitive (§14.1); no space around "=" */
    if (value.len < 6 || !slice_case_eq((struct slice){value.p, 6}, "bytes="))
        return HTTP_RANGE_IGNORE;
    struct http_list_iter it = http_list_begin((struct slice){value.p + 6, value.len - 6});
    struct slice spec;
    int rc;
    unsigned specs = 0, satisfiable = 0;
    while ((rc = http_list_next(&it, &spec)) > 0) {
        if (++specs > max_ranges)
            return HTTP_RANGE_IGNORE;
        size_t i = 0;
        uint64_t a = 0, b = UINT64_MAX;
        int has_first = parse_pos(spec, &i, &a);
        if (i >= spec.len || spec.p[i] != '-')
            return HTTP_RANGE_IGNORE;
        i++;
        int has_last = parse_pos(spec, &i, &b);
        if (i != spec.len || (!has_first && !has_last))
            return HTTP_RANGE_IGNORE;
        if (has_first && has_last && b < a)
            return HTTP_RANGE_IGNORE; /* §14.1.1: invalid int-range */
        uint64_t lo, hi;
        if (!has_first) { /* suffix-range: the last b bytes */
            if (b == 0 || size == 0)
                continue; /* §14.1.1: unsatisfiable */
            lo = b >= size ? 0 : size - b;
            hi = size - 1;
        } else {
            if (a >= size)
                continue; /* first-pos past the end: unsatisfiable */
            lo = a;
            hi = !has_last || b >= size ? size - 1 : b;
        }
        if (++satisfiable == 1) {
            *first = lo;
            *last = hi;
        }
    }
    if (rc < 0 || specs == 0)
        return HTTP_RANGE_IGNORE;
    if (satisfiable == 0)
        return HTTP_RANGE_UNSATISFIABLE;
    return satisfiable == 1 ? HTTP_RANGE_SINGLE : HTTP_RANGE_MULTIPLE;
}

int http_content_range_parse(struct slice v, uint64_t *first, uint64_t *last, uint64_t *complete)
{
    if (v.len < 6 || !slice_case_eq((struct slice){v.p, 6}, "bytes "))
        return -1;
    size_t i = 6;
    if (!parse_pos(v, &i, first) || i >= v.len || v.p[i++] != '-' || !parse_pos(v, &i, last) ||
        i >= v.len || v.p[i++] != '/' || !parse_pos(v, &i, complete) || i != v.len)
        return -1;
    if (*first > *last || *last >= *complete || *complete == UINT64_MAX)
        return -1;
    return 0;
}
