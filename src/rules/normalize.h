/* The bytes a request body is keyed by (seed 003, issue 4): its
 * Content-Encoding undone (gzip, x-gzip, deflate, zstd; a list is undone
 * last first) and JSON (application/json, any +json) in canonical form:
 * sorted keys, no insignificant whitespace, escapes resolved, numbers as
 * written (json_canon.h). For the key only: what goes upstream is always
 * the body as received. Pure. */
#ifndef IDEM_RULES_NORMALIZE_H
#define IDEM_RULES_NORMALIZE_H
#include <stddef.h>
#include "http/http.h"

enum {
    NORM_DECODED = 1 << 0, /* a content coding was undone */
    NORM_JSON = 1 << 1,    /* the JSON was canonicalized */
};

/* How much work one body may cost (issue 10, finding 4): the configured
 * body_key.normalize_max_bytes, _max_values and _max_depth. */
struct norm_limits {
    size_t max_bytes;    /* decoded size, and so the JSON text, at most */
    unsigned max_values; /* JSON values (scalars, arrays, objects) */
    unsigned max_depth;  /* JSON arrays and objects one inside another */
};

/* *out, *out_len: the bytes to key by (the body itself when nothing
 * changed); *to_free: memory the caller frees afterwards, or NULL. Returns
 * NORM_* bits, or -1 when a coding is unknown or broken, or when a limit
 * is passed (the decoded body is over max_bytes, or its JSON has too many
 * values or levels): the caller then keys the raw bytes as sent, with the
 * coding named in the key. Text that is not JSON after all is keyed
 * decoded, as it is. */
int body_normalize(struct slice content_type, struct slice content_encoding, const char *body,
                   size_t len, const struct norm_limits *lim, const char **out, size_t *out_len,
                   char **to_free);

/* application/json or type/anything+json, parameters ignored. */
int body_is_json(struct slice content_type);

#endif
