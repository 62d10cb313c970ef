/* Canonical JSON text (RFC 8259) for cache keys: insignificant whitespace
 * dropped, object members sorted by key, strings written with one escape
 * for each character. Numbers keep their lexical form: 0.1 and
 * 0.1000000000000000055511151231257827 are different keys (issue 10,
 * finding 11), as are 1 and 1.0. Pure, and bounded: the output is never
 * longer than the input, and a text with more values or deeper nesting
 * than allowed is refused before any more work is spent on it. */
#ifndef IDEM_RULES_JSON_CANON_H
#define IDEM_RULES_JSON_CANON_H
#include <stddef.h>

enum json_canon_result {
    JSON_CANON_OK,
    JSON_CANON_INVALID,    /* not a JSON text (or not UTF-8), or a duplicate key */
    JSON_CANON_OVER_LIMIT, /* more than max_values values or max_depth levels */
    JSON_CANON_NO_MEMORY,
};

struct json_canon_limits {
    unsigned max_values; /* every scalar, array and object counts one */
    unsigned max_depth;  /* arrays and objects inside one another: "[[]]" is 2 */
};

/* The canonical form of in[0..len). On JSON_CANON_OK, *out is a heap
 * buffer of *out_len bytes (at most len) that the caller frees; otherwise
 * *out is NULL. Duplicate keys are refused: parsers disagree on what they
 * mean, so such a text has no one canonical form. */
enum json_canon_result json_canonicalize(const char *in, size_t len,
                                         const struct json_canon_limits *lim, char **out,
                                         size_t *out_len);

#endif
