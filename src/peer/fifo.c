/* The FIFO both peers run in step: insertion order, eviction from the
 * oldest, a hash index for lookups. */
#include <stdlib.h>
#include <string.h>
#include "peer/peer.h"

struct entry {
    unsigned char digest[32];
    size_t len;
    void *body; /* NULL on the forward side (digests only) */
    struct entry *next_fifo, *next_hash;
};

struct peer_fifo {
    uint64_t capacity, used;
    int keep_bodies;
    struct entry *head, *tail; /* oldest first */
    struct entry **buckets;
    size_t nbuckets, count;
};

static size_t bucket(const struct peer_fifo *f, const unsigned char d[32])
{
    size_t h;
    memcpy(&h, d, sizeof h); /* a SHA-256 is uniform already */
    return h & (f->nbuckets - 1);
}

struct peer_fifo *peer_fifo_new(uint64_t capacity, int keep_bodies)
{
    struct peer_fifo *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->capacity = capacity;
    f->keep_bodies = keep_bodies;
    f->nbuckets = 1024;
    f->buckets = calloc(f->nbuckets, sizeof *f->buckets);
    if (!f->buckets)
        abort();
    return f;
}

static void drop_all(struct peer_fifo *f)
{
    for (struct entry *e = f->head, *n; e; e = n) {
        n = e->next_fifo;
        free(e->body);
        free(e);
    }
    f->head = f->tail = NULL;
    f->used = 0;
    f->count = 0;
    memset(f->buckets, 0, f->nbuckets * sizeof *f->buckets);
}

void peer_fifo_free(struct peer_fifo *f)
{
    if (!f)
        return;
    drop_all(f);
    free(f->buckets);
    free(f);
}

void peer_fifo_reset(struct peer_fifo *f, uint64_t capacity)
{
    drop_all(f);
    f->capacity = capacity;
}

uint64_t peer_fifo_capacity(const struct peer_fifo *f)
{
    return f->capacity;
}

uint64_t peer_fifo_used(const struct peer_fifo *f)
{
    return f->used;
}

uint64_t peer_fifo_count(const struct peer_fifo *f)
{
    return f->count;
}

static struct entry *lookup(const struct peer_fifo *f, const unsigned char d[32])
{
    for (struct entry *e = f->buckets[bucket(f, d)]; e; e = e->next_hash)
        if (!memcmp(e->digest, d, 32))
            return e;
    return NULL;
}

static void evict_oldest(struct peer_fifo *f)
{
    struct entry *e = f->head;
    f->head = e->next_fifo;
    if (!f->head)
        f->tail = NULL;
    struct entry **pp = &f->buckets[bucket(f, e->digest)];
    while (*pp != e)
        pp = &(*pp)->next_hash;
    *pp = e->next_hash;
    f->used -= peer_fifo_cost(e->len);
    f->count--;
    free(e->body);
    free(e);
}

static void grow(struct peer_fifo *f)
{
    size_t n = f->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    free(f->buckets);
    f->buckets = b;
    f->nbuckets = n;
    for (struct entry *e = f->head; e; e = e->next_fifo) {
        size_t i = bucket(f, e->digest);
        e->next_hash = b[i];
        b[i] = e;
    }
}

void peer_fifo_insert(struct peer_fifo *f, const unsigned char digest[32], const void *body,
                      size_t len)
{
    uint64_t cost = peer_fifo_cost(len);
    if (cost > f->capacity || lookup(f, digest))
        return;
    while (f->used + cost > f->capacity)
        evict_oldest(f);
    struct entry *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    memcpy(e->digest, digest, 32);
    e->len = len;
    if (f->keep_bodies) {
        e->body = malloc(len ? len : 1);
        if (!e->body)
            abort();
        memcpy(e->body, body, len);
    }
    if (f->tail)
        f->tail->next_fifo = e;
    else
        f->head = e;
    f->tail = e;
    f->used += cost;
    size_t i = bucket(f, digest);
    e->next_hash = f->buckets[i];
    f->buckets[i] = e;
    if (++f->count > f->nbuckets)
        grow(f); /* rehashes every entry, this one too */
}

int peer_fifo_find(const struct peer_fifo *f, const unsigned char digest[32], const void **body,
                   size_t *len)
{
    const struct entry *e = lookup(f, digest);
    if (!e)
        return 0;
    if (body)
        *body = e->body;
    if (len)
        *len = e->len;
    return 1;
}
