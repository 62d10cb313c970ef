/* The in-flight table behind coalescing: a mutex and a chained hash map
 * from key to the bitmap of workers waiting on it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cache/coalesce.h"

#define BUCKETS 1024

struct flight {
    struct flight *next;
    struct cache_object *partial; /* the leader's object while it fills */
    int invalidated;              /* coalesce_invalidate: not to be stored */
    uint64_t hash;
    uint64_t waiters[COALESCE_MAX_WORKERS / 64];
    size_t len;
    char key[];
};

struct coalesce {
    pthread_mutex_t lock;
    struct flight *buckets[BUCKETS];
};

static uint64_t hash_key(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

struct coalesce *coalesce_new(void)
{
    struct coalesce *co = calloc(1, sizeof *co);
    if (co)
        pthread_mutex_init(&co->lock, NULL);
    return co;
}

void coalesce_free(struct coalesce *co)
{
    if (!co)
        return;
    for (int i = 0; i < BUCKETS; i++)
        for (struct flight *f = co->buckets[i], *next; f; f = next) {
            next = f->next;
            cache_object_unref(&f->partial);
            free(f);
        }
    pthread_mutex_destroy(&co->lock);
    free(co);
}

static struct flight **find(struct coalesce *co, uint64_t h, const char *key, size_t len)
{
    struct flight **pp = &co->buckets[h % BUCKETS];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && !memcmp((*pp)->key, key, len)))
        pp = &(*pp)->next;
    return pp;
}

int coalesce_join(struct coalesce *co, const char *key, size_t len, int worker)
{
    uint64_t h = hash_key(key, len);
    int leader = 0;
    pthread_mutex_lock(&co->lock);
    struct flight **pp = find(co, h, key, len);
    if (*pp) {
        (*pp)->waiters[worker / 64] |= 1ULL << (worker % 64);
    } else {
        struct flight *f = calloc(1, sizeof *f + len);
        if (f) {
            f->hash = h;
            f->len = len;
            memcpy(f->key, key, len);
            *pp = f;
        }
        leader = 1; /* without memory, lead uncoalesced */
    }
    pthread_mutex_unlock(&co->lock);
    return leader;
}

void coalesce_set_partial(struct coalesce *co, const char *key, size_t len, struct cache_object *o)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    if (f && !f->partial) {
        cache_object_ref(o);
        o->shared = 1;
        f->partial = o;
    }
    pthread_mutex_unlock(&co->lock);
}

void coalesce_invalidate(struct coalesce *co, const char *key, size_t len)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    if (f)
        f->invalidated = 1;
    pthread_mutex_unlock(&co->lock);
}

enum coalesce_flight coalesce_flight_state(struct coalesce *co, const char *key, size_t len)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    enum coalesce_flight st = !f               ? COALESCE_NO_FLIGHT
                              : f->invalidated ? COALESCE_FLIGHT_INVALIDATED
                                               : COALESCE_FLIGHT;
    pthread_mutex_unlock(&co->lock);
    return st;
}

void coalesce_drop_partial(struct coalesce *co, const char *key, size_t len)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    struct cache_object *o = f ? f->partial : NULL;
    if (f)
        f->partial = NULL;
    pthread_mutex_unlock(&co->lock);
    cache_object_unref(&o);
}

struct cache_object *coalesce_partial(struct coalesce *co, const char *key, size_t len,
                                      int *in_flight)
{
    uint64_t h = hash_key(key, len);
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    struct cache_object *o = f ? f->partial : NULL;
    if (o)
        cache_object_ref(o);
    *in_flight = f != NULL;
    pthread_mutex_unlock(&co->lock);
    return o;
}

int coalesce_waiters(struct coalesce *co, const char *key, size_t len,
                     uint64_t workers[COALESCE_MAX_WORKERS / 64])
{
    uint64_t h = hash_key(key, len);
    int n = 0;
    pthread_mutex_lock(&co->lock);
    struct flight *f = *find(co, h, key, len);
    if (f)
        memcpy(workers, f->waiters, sizeof f->waiters);
    else
        memset(workers, 0, sizeof(uint64_t) * (COALESCE_MAX_WORKERS / 64));
    pthread_mutex_unlock(&co->lock);
    for (int i = 0; i < COALESCE_MAX_WORKERS / 64; i++)
        n += __builtin_popcountll(workers[i]);
    return n;
}

int coalesce_release(struct coalesce *co, const char *key, size_t len,
                     uint64_t workers[COALESCE_MAX_WORKERS / 64])
{
    uint64_t h = hash_key(key, len);
    int n = 0;
    memset(workers, 0, sizeof(uint64_t) * (COALESCE_MAX_WORKERS / 64));
    pthread_mutex_lock(&co->lock);
    struct flight **pp = find(co, h, key, len);
    struct flight *f = *pp;
    if (f) {
        *pp = f->next;
        memcpy(workers, f->waiters, sizeof f->waiters);
    }
    pthread_mutex_unlock(&co->lock);
    if (!f)
        return 0;
    cache_object_unref(&f->partial);
    free(f);
    for (int i = 0; i < COALESCE_MAX_WORKERS / 64; i++)
        n += __builtin_popcountll(workers[i]);
    return n;
}
