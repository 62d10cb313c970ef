/* libFuzzer: the request head parser. Invariants: never reads past len,
 * returns OK/MORE/an HTTP error status, and an OK head's slices lie inside
 * the input; parsing any prefix never succeeds with a longer head. The
 * target's path then goes through the normalizers the rules match on: its
 * normal form and its loose form are each no longer than it and their own
 * normal or loose form (fixed points). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/http.h"
#include "http/path.h"
#include "http/fields.h"

static struct http_field req_fields[HTTP_FIELDS_MAX];
static struct http_request req = {.fields = req_fields, .fields_cap = HTTP_FIELDS_MAX};

static void check_path(struct slice target)
{
    const char *q = memchr(target.p, '?', target.len);
    struct slice path = {target.p, q ? (size_t)(q - target.p) : target.len};
    char *a = malloc(path.len + 1), *b = malloc(path.len + 1);
    size_t n, m;
    if (http_path_normalize(path, a, &n) == HTTP_PATH_OK) {
        if (n > path.len)
            abort();
        if (http_path_normalize((struct slice){a, n}, b, &m) != HTTP_PATH_OK || m != n ||
            memcmp(a, b, n))
            abort();
    }
    http_path_loose(path, a, &n);
    if (n > path.len)
        abort();
    http_path_loose((struct slice){a, n}, b, &m);
    if (m != n || memcmp(a, b, n))
        abort();
    free(a);
    free(b);
}

static void inside(const void *buf, size_t len, struct slice s)
{
    if (s.len && ((const uint8_t *)s.p < (const uint8_t *)buf ||
                  (const uint8_t *)s.p + s.len > (const uint8_t *)buf + len))
        abort();
}

/* An exchange's owned copy reads the same bytes as the parse, and every
 * slice of it lies in its own arena, none back in the input. */
static void check_copy(uint8_t *buf, const struct http_request *r)
{
    void *arena = malloc(http_request_copy_size(r) + 1);
    struct http_request c;
    http_request_copy(&c, r, (const char *)buf, arena);
    struct slice a[] = {r->method, r->target, r->host, r->authority, r->path, r->scheme};
    struct slice b[] = {c.method, c.target, c.host, c.authority, c.path, c.scheme};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        if (a[i].len != b[i].len || (a[i].len && memcmp(a[i].p, b[i].p, a[i].len)))
            abort();
        else
            inside(arena, http_request_copy_size(r), b[i]);
    if (c.nfields != r->nfields || c.fields_cap != r->nfields)
        abort();
    for (unsigned i = 0; i < c.nfields; i++) {
        inside(arena, http_request_copy_size(r), c.fields[i].name);
        inside(arena, http_request_copy_size(r), c.fields[i].value);
        if (c.fields[i].id != r->fields[i].id)
            abort();
    }
    free(arena);
}

/* A Forwarded value the proxy keeps is a whole list: no quote left open,
 * and the element the proxy appends stays a separate, well-formed one. */
static void check_forwarded(struct slice v)
{
    if (http_forwarded_check(v) != HTTP_FORWARDED_WELL_FORMED)
        return;
    struct http_list_iter it = http_list_begin(v);
    struct slice el;
    int rc;
    while ((rc = http_list_next(&it, &el)) == 1)
        ;
    if (rc != 0)
        abort();
    static const char ours[] = ", for=192.0.2.1;proto=http";
    char *joined = malloc(v.len + sizeof ours);
    memcpy(joined, v.p, v.len);
    memcpy(joined + v.len, ours, sizeof ours - 1);
    if (http_forwarded_check((struct slice){joined, v.len + sizeof ours - 1}) !=
        HTTP_FORWARDED_WELL_FORMED)
        abort();
    free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits lim = {8192, 65536, 100};
    /* Copy into an exact-size heap block so ASan catches any over-read. */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int rc = http_parse_request((const char *)buf, size, &lim, &req);
    if (rc == HTTP_PARSE_OK) {
        if (req.head_len > size || req.nfields > lim.header_count)
            abort();
        inside(buf, size, req.method);
        inside(buf, size, req.target);
        inside(buf, size, req.host);
        check_path(req.target);
        for (unsigned i = 0; i < req.nfields; i++) {
            inside(buf, size, req.fields[i].name);
            inside(buf, size, req.fields[i].value);
            if (req.fields[i].name.len == 0)
                abort();
            if (req.fields[i].id == HF_FORWARDED)
                check_forwarded(req.fields[i].value);
        }
        if (req.body == HTTP_BODY_LENGTH && req.content_length == 0)
            abort();
        check_copy(buf, &req);
    } else if (rc != HTTP_PARSE_MORE && (rc < 400 || rc > 505)) {
        abort();
    } else if (rc != HTTP_PARSE_MORE &&
               (req.error == HTTP_ERR_NONE || !*http_error_text(req.error))) {
        abort(); /* every refusal says why */
    }
    free(buf);
    return 0;
}
