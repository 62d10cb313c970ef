/* Storage tiers behind one table of functions (Varnish's stevedore): the
 * memory store now, persistent and Redis tiers later. Thread-safe: every
 * worker calls in. Objects come back referenced; the caller unrefs. */
#ifndef IDEM_CACHE_STORE_H
#define IDEM_CACHE_STORE_H
#include <stdatomic.h>
#include <stdint.h>
#include "cache/object.h"

struct store;

struct store_ops {
    /* The variant of `key` that this request selects, or NULL; *variants
     * (if not NULL) tells how many variants of the key exist. */
    struct cache_object *(*lookup)(struct store *s, const char *key, size_t len,
                                   const struct http_field *req_fields, unsigned n,
                                   unsigned *variants);
    /* Publish (takes the caller's reference); replaces the same variant.
     * `reserved`: what reserve() of o's key set aside for it (0 if none),
     * which becomes the entry's charge: an object no larger than its
     * reservation is never refused. */
    void (*insert)(struct store *s, struct cache_object *o, size_t reserved);
    /* Set aside `bytes` in key's part of the store for a response still
     * arriving (a fill), evicting objects not in use as an insert does;
     * 0 when refused (no room). Varnish's fetch allocates from the storage
     * as it goes: a fill held by a stalled client is charged, not free. */
    int (*reserve)(struct store *s, const char *key, size_t len, size_t bytes);
    /* Give back what reserve() set aside for a fill that is not inserted. */
    void (*release)(struct store *s, const char *key, size_t len, size_t bytes);
    /* Remove every variant of key; returns how many went. */
    unsigned (*remove)(struct store *s, const char *key, size_t len);
    /* Remove every object for which match(obj, arg) is true (a full scan:
     * for administrative purges, not the request path). */
    unsigned (*remove_matching)(struct store *s, int (*match)(const struct cache_object *, void *),
                                void *arg);
    /* Might any body key of this URL be stored? `url_key` is its "G ..."
     * key. Never a false no; a yes may be false (a counting filter). */
    int (*may_hold_body_keys)(struct store *s, const char *url_key, size_t len);
    /* The largest object (cache_object_size) an insert can keep: ask before
     * promising `stored` to a client. */
    size_t (*object_limit)(struct store *s);
    void (*free)(struct store *s);
};

struct store {
    const struct store_ops *ops;
    /* Bumped by every administrative purge: a fetch that went upstream
     * under an older generation may have read what was purged, and does
     * not store it (store_purged_since). Zero in a new store. */
    atomic_ullong purge_generation;
};

static inline uint64_t store_purge_generation(struct store *s)
{
    return atomic_load(&s->purge_generation);
}

/* Before removing what a purge names: fills in flight then see it. */
static inline void store_note_purge(struct store *s)
{
    atomic_fetch_add(&s->purge_generation, 1);
}

/* Did a purge come since `generation` was read? */
static inline int store_purged_since(struct store *s, uint64_t generation)
{
    return store_purge_generation(s) != generation;
}

/* `bytes`: what the objects cost, all in (cache_object_size and the
 * store's own entry for each), with `held`: the part that is objects
 * replaced or purged that a client is still being sent (charged until it
 * lets go), and `reserved`: the part set aside for fills still arriving;
 * `refused`: inserts and reservations that found no room (every object in
 * use); `capacity`: the most it will hold. */
struct store_stats {
    uint64_t objects, bytes, held, reserved, evictions, refused, capacity;
};

/* The memory store splits its bytes evenly over this many shards, each
 * with its own lock: one object is never larger than bytes / shards. */
#define STORE_MEM_SHARDS 16

/* Sharded, byte-bounded, SIEVE eviction, at most `max_variants` per key.
 * Objects in use stay charged: an insert with no room left is refused. */
struct store *store_mem_new(size_t bytes, unsigned max_variants);
/* The objects in use the eviction hand may pass over in one insert before
 * the insert is refused (cache.eviction_scan): what a client pinning
 * objects can make each insert cost. STORE_EVICTION_SCAN until set. */
#define STORE_EVICTION_SCAN 256
void store_mem_set_eviction_scan(struct store *s, size_t objects);
void store_mem_stats(struct store *s, struct store_stats *out);
/* The shard a key goes to (for tests of the spread). */
unsigned store_mem_shard_of(const char *key, size_t len);

#endif
