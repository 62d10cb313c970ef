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

static struct http_request req;

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

static void inside(const uint8_t *buf, size_t len, struct slice s)
{
    if (s.len && ((const uint8_t *)s.p < buf || (const uint8_t *)s.p + s.len > buf + len))
        abort();
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
        }
        if (req.body == HTTP_BODY_LENGTH && req.content_length == 0)
            abort();
    } else if (rc != HTTP_PARSE_MORE && (rc < 400 || rc > 505)) {
        abort();
    } else if (rc != HTTP_PARSE_MORE &&
               (req.error == HTTP_ERR_NONE || !*http_error_text(req.error))) {
        abort(); /* every refusal says why */
    }
    free(buf);
    return 0;
}
