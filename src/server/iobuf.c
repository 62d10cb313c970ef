/* Read buffers. Compaction keeps a parsed head contiguous from offset 0. */
#include <stdlib.h>
#include <string.h>
#include "server/iobuf.h"

int iobuf_reserve(struct iobuf *b, size_t want, size_t max)
{
    if (b->start == b->end)
        b->start = b->end = 0;
    if (b->cap - b->end >= want)
        return 0;
    if (b->start) {
        memmove(b->base, b->base + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
        if (b->cap - b->end >= want)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->end < want)
        cap *= 2;
    if (cap > max) {
        cap = max;
        if (cap <= b->end)
            return -1;
    }
    char *p = realloc(b->base, cap);
    if (!p)
        return -1;
    b->base = p;
    b->cap = cap;
    return 0;
}

void iobuf_consume(struct iobuf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

void iobuf_fini(struct iobuf *b)
{
    free(b->base);
    *b = (struct iobuf){0};
}
