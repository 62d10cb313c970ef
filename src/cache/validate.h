/* Conditional requests answered from a stored response: If-None-Match with
 * weak comparison (RFC 9110 §13.1.2, §8.8.3.2) and If-Modified-Since
 * (§13.1.3), in the precedence of §13.2.2. Pure. */
#ifndef IDEM_CACHE_VALIDATE_H
#define IDEM_CACHE_VALIDATE_H
#include "http/http.h"

/* 1: the stored response with these validators is "not modified" for this
 * request (answer 304); 0: send it in full. `etag` and `last_modified` are
 * the stored field values (len 0 when absent). GET/HEAD only. */
int cache_not_modified(const struct http_field *req_fields, unsigned n, struct slice etag,
                       struct slice last_modified);

/* Weak comparison of two entity-tags (§8.8.3.2); malformed tags never match. */
int cache_etag_weak_eq(struct slice a, struct slice b);

/* The fields a 304 carries from the stored response (§15.4.5). */
int cache_field_in_304(struct slice name);

#endif
