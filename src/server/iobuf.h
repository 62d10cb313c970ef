/* A growable byte buffer with a consumed prefix: connections read into its
 * tail and parse from its head. */
#ifndef IDEM_IOBUF_H
#define IDEM_IOBUF_H
#include <stddef.h>

struct iobuf {
    char *base;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t cap;
};

/* Make room for at least `want` bytes after `end`, compacting first.
 * Returns 0, or -1 when the buffer would exceed `max`. */
int iobuf_reserve(struct iobuf *b, size_t want, size_t max);
void iobuf_consume(struct iobuf *b, size_t n);
void iobuf_fini(struct iobuf *b);

static inline size_t iobuf_len(const struct iobuf *b)
{
    return b->end - b->start;
}
static inline char *iobuf_data(const struct iobuf *b)
{
    return b->base + b->start;
}

#endif
