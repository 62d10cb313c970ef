/* A borrowed run of bytes: never NUL-terminated, never owned. */
#ifndef IDEM_SLICE_H
#define IDEM_SLICE_H
#include <stddef.h>
#include <string.h>

struct slice {
    const char *p;
    size_t len;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

static inline int slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive equality, for field names and tokens (RFC 9110 §5.1). */
int slice_case_eq(struct slice a, const char *lit);
int slice_case_eqs(struct slice a, struct slice b);

#endif
