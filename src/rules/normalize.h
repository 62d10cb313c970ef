/* The bytes a request body is keyed by (seed 003, issue 4): its
 * Content-Encoding undone (gzip, x-gzip, deflate, zstd; a list is undone
 * last first) and JSON (application/json, any +json) in canonical form:
 * sorted keys, no insignificant whitespace, escapes resolved. For the key
 * only: what goes upstream is always the body as received. Pure. */
#ifndef IDEM_RULES_NORMALIZE_H
#define IDEM_RULES_NORMALIZE_H
#include <stddef.h>
#include "http/http.h"

enum {
    NORM_DECODED = 1 << 0, /* a content coding was undone */
    NORM_JSON = 1 << 1,    /* the JSON was canonicalized */
};

/* *out, *out_len: the bytes to key by (the body itself when nothing
 * changed); *to_free: memory the caller frees afterwards, or NULL. Returns
 * NORM_* bits, or -1 when a coding is unknown or broken or the result
 * would exceed max_out bytes: the caller then keys the raw bytes, with the
 * coding named in the key. */
int body_normalize(struct slice content_type, struct slice content_encoding, const char *body,
                   size_t len, size_t max_out, const char **out, size_t *out_len, char **to_free);

/* application/json or type/anything+json, parameters ignored. */
int body_is_json(struct slice content_type);

#endif
