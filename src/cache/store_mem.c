/* The memory store: 16 shards, each a mutex, a chained hash table and a
 * SIEVE queue (Zhang et al., NSDI '24): new entries go in at the head, a hit
 * only sets a bit, and the hand walks from the tail clearing bits until it
 * finds an unvisited entry to evict. Lookups are O(1); no list moves on hits.
 *
 * An object is charged to its shard until its memory is free, not until it
 * leaves the table: a client still sending it (a slow reader, an h2 stream
 * behind a shut window) holds every byte. So the hand passes over objects
 * in use (evicting one frees nothing; Varnish nukes only unreferenced
 * objects too), one replaced or purged while in use is kept on the shard's
 * `retired` list until its last holder lets go, and an insert that finds no
 * room is refused: a miss, never memory past cache.memory_size. Such an
 * insert evicts nothing, and one passes at most cache.eviction_scan
 * objects in use on its way (room_possible, sieve_evict, sweep_retired).
 * A response still arriving (a fill) reserves its bytes the same way as it
 * grows (mem_reserve): charged from its first byte, not its last. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cache/store.h"

#define SHARDS     STORE_MEM_SHARDS
#define URL_FILTER 4096

struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* SIEVE queue: head is newest */
    struct cache_object *obj;
    /* no hash kept: 16 bytes less per object; chains are short, and
     * compare key lengths before bytes */
    /* its own part: the object's blocks less its body, which is charged
     * once for all the entries sharing it (body_attach) */
    uint32_t size; /* at most a shard's limit, checked on insert */
    int visited;
};

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, count, bytes, limit;
    struct entry *head, *tail, *hand;
    /* out of the table but still held elsewhere: charged, linked by hnext,
     * oldest first (a sweep puts one still held back at the end) */
    struct entry *retired, *retired_last;
    size_t retired_bytes, nretired;
    /* set aside for fills still arriving (mem_reserve) */
    size_t reserved;
    uint64_t evictions, refused;
    _Atomic uint32_t *url_filter; /* the store's, shared by all shards */
};

struct store_mem {
    struct store base;
    unsigned max_variants;
    /* objects in use the hand may pass in one insert (cache.eviction_scan) */
    size_t eviction_scan;
    struct shard shards[SHARDS];
    /* Body keys ("P|Q|C http://host/path\n...") counted under their URL,
     * so that invalidating a URL skips the scan when none exist for it. */
    _Atomic uint32_t url_filter[URL_FILTER];
};

static uint64_t hash_key(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* FNV-1a's high bits barely move when only the last bytes of a key differ
 * ("/item/1" ... "/item/400" landed in 6 of 16 shards): the 64-bit
 * finalizer of MurmurHash3 spreads every input bit over the whole word
 * before shard and bucket bits are taken. */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t entry_hash(const char *key, size_t len)
{
    return mix64(hash_key(key, len));
}

/* The URL slot of a key: body keys only (not "G" ones), or -1. */
static long url_slot(const char *key, size_t len)
{
    const char *nl = len && key[0] != 'G' ? memchr(key, '\n', len) : NULL;
    return nl ? (long)(hash_key(key + 1, (size_t)(nl - key - 1)) % URL_FILTER) : -1;
}

static unsigned shard_index(uint64_t h)
{
    return (unsigned)(h >> 60); /* the top 4 bits: SHARDS is 16 */
}
_Static_assert(SHARDS == 16, "shard_index takes 4 bits");

static struct shard *shard_of(struct store_mem *m, uint64_t h)
{
    return &m->shards[shard_index(h)];
}

unsigned store_mem_shard_of(const char *key, size_t len)
{
    return shard_index(entry_hash(key, len));
}

/* An entry's own cost in the shard: the object less its body, the entry,
 * and its share of the bucket array (which grows to at most two slots per
 * entry). */
static size_t entry_cost(const struct cache_object *o)
{
    return cache_object_head_size(o) + cache_alloc_cost(sizeof(struct entry)) +
           2 * sizeof(struct entry *);
}

/* A body is charged once in its shard however many entries share it: a
 * 304 merge (RFC 9111 §4.3.4) publishes a new object over the stale one's
 * body, and while a client is still sent the stale one (retired, charged
 * until let go) charging the body to both refused any merge of an object
 * over half a shard. Objects sharing a body have one key, so one shard,
 * whose lock guards the body's store_* fields. Its charge is in s->bytes
 * while an entry of it is in the table, else in s->retired_bytes (held by
 * clients only), and goes when its last entry is freed (body_unref). */
static void body_attach(struct shard *s, struct cache_body *b)
{
    if (b->store_refs == 0) {
        b->store_cost = cache_body_size(b);
        s->bytes += b->store_cost;
    } else if (b->store_live == 0) {
        s->retired_bytes -= b->store_cost;
        s->bytes += b->store_cost;
    }
    b->store_refs++;
    b->store_live++;
}

/* An entry of the body leaves the table (it is still charged: body_unref
 * when it is freed). */
static void body_detach(struct shard *s, struct cache_body *b)
{
    if (--b->store_live == 0) {
        s->bytes -= b->store_cost;
        s->retired_bytes += b->store_cost;
    }
}

/* An entry out of the table is freed: the body's charge goes with its last. */
static void body_unref(struct shard *s, struct cache_body *b)
{
    if (--b->store_refs == 0)
        s->retired_bytes -= b->store_cost;
}

/* What evicting an entry would free: its body too when no other entry
 * shares it. */
static size_t entry_frees(const struct entry *e)
{
    const struct cache_body *b = e->obj->body;
    return e->size + (b->store_refs == 1 ? b->store_cost : 0);
}

static void entry_free(struct shard *s, struct entry *e)
{
    body_unref(s, e->obj->body);
    cache_object_unref(&e->obj);
    free(e);
}

static void queue_unlink(struct shard *s, struct entry *e)
{
    if (s->hand == e)
        s->hand = e->prev;
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
}

static void retired_append(struct shard *s, struct entry *e)
{
    e->hnext = NULL;
    if (s->retired_last)
        s->retired_last->hnext = e;
    else
        s->retired = e;
    s->retired_last = e;
}

static void retire(struct shard *s, struct entry *e)
{
    if (!cache_object_in_use(e->obj)) {
        entry_free(s, e);
        return;
    }
    retired_append(s, e);
    s->retired_bytes += e->size;
    s->nretired++;
}

/* Free the retired objects whose holders have let go: under the shard's
 * lock nobody can take a new reference to one, so the store's is the last.
 * One still held goes to the back of the list and counts against *scan,
 * as an object in use passed by the hand does (NULL: no bound, for
 * /stats): a client holding many replaced objects (each pinned, then
 * fetched again with no-cache) made every insert in a full shard walk
 * them all, 244 us an insert with 1670 of them a shard (16 MiB), and
 * their setup quadratic. The next sweep goes on with those not yet seen. */
static void sweep_retired(struct shard *s, size_t *scan)
{
    for (size_t n = s->nretired; n && s->retired; n--) {
        struct entry *e = s->retired;
        s->retired = e->hnext;
        if (!s->retired)
            s->retired_last = NULL;
        if (!cache_object_in_use(e->obj)) {
            s->retired_bytes -= e->size;
            s->nretired--;
            entry_free(s, e);
            continue;
        }
        retired_append(s, e);
        if (scan) {
            if (*scan == 0)
                break;
            --*scan;
        }
    }
}

static void entry_drop(struct shard *s, struct entry *e)
{
    uint64_t h = entry_hash(e->obj->key, e->obj->key_len);
    struct entry **pp = &s->buckets[h & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    queue_unlink(s, e);
    s->count--;
    s->bytes -= e->size;
    body_detach(s, e->obj->body);
    long slot = url_slot(e->obj->key, e->obj->key_len);
    if (slot >= 0)
        s->url_filter[slot]--;
    retire(s, e);
}

/* Evict one entry not in use; 0 if every one is, or if the hand passed
 * *scan objects in use on the way (for this insert, all calls together).
 * Two rounds of the queue are enough: the first clears every visited bit.
 * Visited bits cost one step per hit, paid once; an object in use is
 * passed again by every insert until it is let go, so a client pinning a
 * shard's objects (h2 streams behind shut windows, pipelined h1 hits)
 * made each insert there walk all of them twice under the lock: 5 ms
 * with 26090 objects of 560 bytes a shard (256 MiB), 28 us with the
 * default budget of 256. Past the budget the insert is
 * refused (a miss) and the hand stays where it stopped, so the next one
 * goes on from there: an object let go deep in the queue is still found,
 * some inserts later. */
static int sieve_evict(struct shard *s, size_t *scan)
{
    struct entry *e = s->hand ? s->hand : s->tail;
    for (size_t steps = 2 * s->count; e && steps; steps--) {
        struct entry *next = e->prev ? e->prev : s->tail;
        if (!cache_object_in_use(e->obj)) {
            if (!e->visited) {
                s->hand = e->prev;
                entry_drop(s, e);
                s->evictions++;
                return 1;
            }
        } else if (*scan == 0) {
            s->hand = next;
            return 0;
        } else {
            --*scan;
        }
        e->visited = 0;
        e = next;
    }
    return 0;
}

static size_t shard_charged(const struct shard *s)
{
    return s->bytes + s->retired_bytes + s->reserved;
}

/* Can evictions make `need` bytes of room? The queue from the hand, as
 * sieve_evict walks it, adding up what is not in use, passing at most
 * `scan` objects that are (past them, the hand moves on to where this
 * stopped, as sieve_evict's does, so that the next insert looks further).
 * Without it an insert that could not fit went on evicting until it found
 * it could not: one refused 600 KiB object emptied a 1 MiB shard of its
 * 284 small objects besides the two of 300 KiB being sent, and a client
 * could have a shard emptied so by every large miss. Under the shard's
 * lock nobody takes a first reference, so what is free here is still free
 * when sieve_evict comes to it. */
static int room_possible(struct shard *s, size_t need, size_t scan)
{
    size_t have = 0;
    struct entry *e = s->hand ? s->hand : s->tail;
    for (size_t n = s->count; e && n; n--) {
        struct entry *next = e->prev ? e->prev : s->tail;
        if (!cache_object_in_use(e->obj)) {
            have += entry_frees(e);
            if (have >= need)
                return 1;
        } else if (scan-- == 0) {
            s->hand = next;
            return 0;
        }
        e = next;
    }
    return 0;
}

static void grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (struct entry *e = s->buckets[i], *next; e; e = next) {
            next = e->hnext;
            uint64_t h = entry_hash(e->obj->key, e->obj->key_len);
            e->hnext = b[h & (n - 1)];
            b[h & (n - 1)] = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static int same_key(const struct entry *e, const char *key, size_t len)
{
    return e->obj->key_len == len && !memcmp(e->obj->key, key, len);
}

static struct cache_object *mem_lookup(struct store *st, const char *key, size_t len,
                                       const struct http_field *f, unsigned n, unsigned *variants)
{
    struct store_mem *m = (struct store_mem *)st;
    uint64_t h = entry_hash(key, len);
    struct shard *s = shard_of(m, h);
    struct cache_object *found = NULL;
    unsigned seen = 0;
    pthread_mutex_lock(&s->lock);
    for (struct entry *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->hnext) {
        if (!same_key(e, key, len))
            continue;
        seen++;
        if (!found && cache_object_vary_match(e->obj, f, n)) {
            e->visited = 1;
            found = e->obj;
            cache_object_ref(found);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (variants)
        *variants = seen;
    return found;
}

/* Make `size` more bytes fit the shard under its lock, evicting objects not
 * in use; 0 (and nothing evicted, counted refused) when they cannot. */
static int make_room(struct store_mem *m, struct shard *s, size_t size)
{
    size_t scan = m->eviction_scan;
    if (s->retired && shard_charged(s) + size > s->limit)
        sweep_retired(s, &scan);
    if (shard_charged(s) + size <= s->limit)
        return 1;
    if (!room_possible(s, shard_charged(s) + size - s->limit, scan)) {
        s->refused++;
        return 0;
    }
    while (shard_charged(s) + size > s->limit)
        if (!sieve_evict(s, &scan)) {
            s->refused++;
            return 0;
        }
    return 1;
}

static void unreserve(struct shard *s, size_t bytes)
{
    s->reserved -= bytes < s->reserved ? bytes : s->reserved;
}

static void mem_insert(struct store *st, struct cache_object *o, size_t reserved)
{
    struct store_mem *m = (struct store_mem *)st;
    uint64_t h = entry_hash(o->key, o->key_len);
    struct shard *s = shard_of(m, h);
    size_t size = entry_cost(o);
    struct entry *e = size + cache_body_size(o->body) > s->limit || size > UINT32_MAX
                          ? NULL
                          : calloc(1, sizeof *e);
    pthread_mutex_lock(&s->lock);
    /* the reservation becomes this entry's charge (or goes, if refused) */
    unreserve(s, reserved);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        cache_object_unref(&o);
        return;
    }
    e->obj = o;
    e->size = size;
    /* Replace the same variant; cap the number of variants of one key. */
    unsigned variants = 0;
    struct entry *oldest = NULL;
    for (struct entry *x = s->buckets[h & (s->nbuckets - 1)], *next; x; x = next) {
        next = x->hnext;
        if (!same_key(x, o->key, o->key_len))
            continue;
        if ((!x->obj->vary && !o->vary) ||
            (x->obj->vary && o->vary && x->obj->vary_len == o->vary_len &&
             !memcmp(x->obj->vary, o->vary, o->vary_len))) {
            entry_drop(s, x);
            continue;
        }
        variants++;
        oldest = x; /* chains are newest first */
    }
    if (variants >= m->max_variants && oldest)
        entry_drop(s, oldest);
    /* The body is charged (if no entry already has it) before room is
     * made for the entry's own part: an eviction of another entry over
     * the same body then frees none of it, as room_possible counts. */
    body_attach(s, o->body);
    if (!make_room(m, s, size)) {
        body_detach(s, o->body);
        body_unref(s, o->body);
        pthread_mutex_unlock(&s->lock);
        cache_object_unref(&o);
        free(e);
        return;
    }
    if (s->count + 1 > s->nbuckets)
        grow(s);
    struct entry **b = &s->buckets[h & (s->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    long slot = url_slot(o->key, o->key_len);
    if (slot >= 0)
        s->url_filter[slot]++;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    s->head = e;
    if (!s->tail)
        s->tail = e;
    s->count++;
    s->bytes += size;
    pthread_mutex_unlock(&s->lock);
}

/* A fill's bytes, set aside in its key's shard as an insert would make
 * room for them: what a fill may hold is then within cache.memory_size
 * like every stored object (a client stalling 100 h2 streams of misses
 * short of their ends held 100 fills, charged to nobody). */
static int mem_reserve(struct store *st, const char *key, size_t len, size_t bytes)
{
    struct store_mem *m = (struct store_mem *)st;
    struct shard *s = shard_of(m, entry_hash(key, len));
    if (bytes > s->limit)
        return 0;
    pthread_mutex_lock(&s->lock);
    int ok = make_room(m, s, bytes);
    if (ok)
        s->reserved += bytes;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void mem_release(struct store *st, const char *key, size_t len, size_t bytes)
{
    struct store_mem *m = (struct store_mem *)st;
    struct shard *s = shard_of(m, entry_hash(key, len));
    pthread_mutex_lock(&s->lock);
    unreserve(s, bytes);
    pthread_mutex_unlock(&s->lock);
}

static unsigned mem_remove(struct store *st, const char *key, size_t len)
{
    struct store_mem *m = (struct store_mem *)st;
    uint64_t h = entry_hash(key, len);
    struct shard *s = shard_of(m, h);
    unsigned n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct entry *x = s->buckets[h & (s->nbuckets - 1)], *next; x; x = next) {
        next = x->hnext;
        if (same_key(x, key, len)) {
            entry_drop(s, x);
            n++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static unsigned mem_remove_matching(struct store *st,
                                    int (*match)(const struct cache_object *, void *), void *arg)
{
    struct store_mem *m = (struct store_mem *)st;
    unsigned n = 0;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &m->shards[i];
        pthread_mutex_lock(&s->lock);
        for (struct entry *e = s->head, *next; e; e = next) {
            next = e->next;
            if (match(e->obj, arg)) {
                entry_drop(s, e);
                n++;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    return n;
}

static void mem_free(struct store *st)
{
    struct store_mem *m = (struct store_mem *)st;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &m->shards[i];
        while (s->head)
            entry_drop(s, s->head);
        /* every holder is gone by now: the workers have stopped */
        while (s->retired) {
            struct entry *e = s->retired;
            s->retired = e->hnext;
            entry_free(s, e);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(m);
}

static int mem_may_hold_body_keys(struct store *st, const char *url_key, size_t len)
{
    struct store_mem *m = (struct store_mem *)st;
    return len > 1 && m->url_filter[hash_key(url_key + 1, len - 1) % URL_FILTER] != 0;
}

/* Every shard has the same limit; the entry's own cost comes off it. */
static size_t mem_object_limit(struct store *st)
{
    struct store_mem *m = (struct store_mem *)st;
    size_t own = cache_alloc_cost(sizeof(struct entry)) + 2 * sizeof(struct entry *);
    return m->shards[0].limit > own ? m->shards[0].limit - own : 0;
}

static const struct store_ops mem_ops = {.lookup = mem_lookup,
                                         .insert = mem_insert,
                                         .reserve = mem_reserve,
                                         .release = mem_release,
                                         .remove = mem_remove,
                                         .remove_matching = mem_remove_matching,
                                         .may_hold_body_keys = mem_may_hold_body_keys,
                                         .object_limit = mem_object_limit,
                                         .free = mem_free};

struct store *store_mem_new(size_t bytes, unsigned max_variants)
{
    struct store_mem *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &mem_ops;
    m->max_variants = max_variants ? max_variants : 1;
    m->eviction_scan = STORE_EVICTION_SCAN;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &m->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->nbuckets = 64;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        s->limit = bytes / SHARDS;
        s->url_filter = m->url_filter;
    }
    return &m->base;
}

void store_mem_set_eviction_scan(struct store *st, size_t objects)
{
    ((struct store_mem *)st)->eviction_scan = objects;
}

void store_mem_stats(struct store *st, struct store_stats *out)
{
    struct store_mem *m = (struct store_mem *)st;
    *out = (struct store_stats){0};
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &m->shards[i];
        pthread_mutex_lock(&s->lock);
        sweep_retired(s, NULL);
        out->objects += s->count;
        out->bytes += shard_charged(s);
        out->held += s->retired_bytes;
        out->reserved += s->reserved;
        out->evictions += s->evictions;
        out->refused += s->refused;
        out->capacity += s->limit;
        pthread_mutex_unlock(&s->lock);
    }
}
