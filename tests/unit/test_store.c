/* The memory store: lookup/replace/remove, the variant cap, the byte bound,
 * and SIEVE against LRU on a skewed trace with one-hit wonders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cache/store.h"
#include "cache/etag.h"
#include "cache/key.h"
#include "cache/coalesce.h"

static struct http_response res;
static const struct http_limits lim = {8192, 65536, 100};

static struct cache_object *obj(const char *key, const char *fields, const struct http_field *req,
                                unsigned nreq)
{
    static char head[512];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%s\r\n", fields);
    assert_int_equal(http_parse_response(head, strlen(head), &lim, &res), 0);
    struct cache_object *o = cache_object_new(key, strlen(key), &res, req, nreq, 0, 0, 60);
    o->complete = 1;
    return o;
}

static struct cache_object *find(struct store *s, const char *key, const struct http_field *f,
                                 unsigned n)
{
    return s->ops->lookup(s, key, strlen(key), f, n, NULL);
}

static void test_basic(void **st)
{
    struct store *s = store_mem_new(1 << 20, 4);
    assert_null(find(s, "k", NULL, 0));
    s->ops->insert(s, obj("k", "X: 1\r\n", NULL, 0), 0);
    struct cache_object *o = find(s, "k", NULL, 0);
    assert_non_null(o);
    assert_non_null(strstr(o->head, "X: 1"));
    /* replace: the old object stays valid for its holder */
    s->ops->insert(s, obj("k", "X: 2\r\n", NULL, 0), 0);
    struct cache_object *o2 = find(s, "k", NULL, 0);
    assert_non_null(strstr(o2->head, "X: 2"));
    assert_non_null(strstr(o->head, "X: 1"));
    cache_object_unref(&o);
    cache_object_unref(&o2);
    assert_null(o);
    assert_int_equal(s->ops->remove(s, "k", 1), 1);
    assert_null(find(s, "k", NULL, 0));
    s->ops->free(s);
}

static void test_variants(void **st)
{
    struct store *s = store_mem_new(1 << 20, 3);
    char val[8][4];
    for (int i = 0; i < 5; i++) {
        snprintf(val[i], sizeof val[i], "l%d", i);
        struct http_field f = {{"Accept-Language", 15}, {val[i], 2}, HF_OTHER};
        s->ops->insert(s, obj("k", "Vary: accept-language\r\n", &f, 1), 0);
    }
    unsigned variants = 0;
    struct http_field f4 = {{"accept-language", 15}, {"l4", 2}, HF_OTHER};
    struct cache_object *o = s->ops->lookup(s, "k", 1, &f4, 1, &variants);
    assert_non_null(o);
    assert_int_equal(variants, 3); /* capped at max_variants, oldest dropped */
    cache_object_unref(&o);
    struct http_field f0 = {{"Accept-Language", 15}, {"l0", 2}, HF_OTHER};
    assert_null(find(s, "k", &f0, 1));
    assert_null(find(s, "k", NULL, 0)); /* a missing field is its own variant */
    assert_int_equal(s->ops->remove(s, "k", 1), 3);
    s->ops->free(s);
}

/* §4.1: values are compared normalized where that keeps their meaning. */
static void test_vary_normalized(void **st)
{
    static const struct {
        const char *vary, *a, *b; /* "Name: value" lines, \n-separated */
        int same;
    } rows[] = {
        {"accept-encoding", "Accept-Encoding: gzip, br", "accept-encoding: gzip,br", 1},
        {"accept-encoding", "Accept-Encoding: GZIP", "Accept-Encoding: gzip", 1},
        {"accept-encoding", "Accept-Encoding: gzip\nAccept-Encoding: br",
         "Accept-Encoding: gzip, br", 1},
        {"accept-encoding", "Accept-Encoding: br, gzip", "Accept-Encoding: gzip, br", 0},
        {"accept-language", "Accept-Language: en-US , fr", "Accept-Language: en-us,fr", 1},
        /* Accept-Language is a set of weighted ranges (issue 13) */
        {"accept-language", "Accept-Language: fr;q=0.5, en", "Accept-Language: en,fr;q=0.5", 1},
        {"accept-language", "Accept-Language: fr; q=0.50, en;q=1", "Accept-Language: en, fr;q=0.5",
         1},
        {"accept-language", "Accept-Language: en\nAccept-Language: fr;q=0.5",
         "Accept-Language: fr;q=0.500, EN;q=1.000", 1},
        {"accept-language", "Accept-Language: fr;q=0.5, en", "Accept-Language: fr;q=0.6, en", 0},
        {"accept-language", "Accept-Language: fr;q=0, en", "Accept-Language: en", 0},
        {"accept-language", "Accept-Language: fr;q=0", "Accept-Language: fr;q=0.000", 1},
        {"accept-language", "Accept-Language: fr, en", "Accept-Language: fr", 0},
        {"accept-language", "Accept-Language: fr;q=2", "Accept-Language: fr", 0}, /* not a weight */
        {"accept-language", "Accept-Language: fr;q=1.5", "Accept-Language: fr;q=1.5", 1},
        {"accept-language", "", "Accept-Language:", 0}, /* missing vs empty */
        {"accept-language", "Accept-Language:", "Accept-Language: ,", 1},
        {"accept", "Accept: text/html, */*", "Accept: text/html,*/*", 1},
        {"accept", "Accept: Text/HTML", "Accept: text/html", 0}, /* not lowered: params may care */
        {"user-agent", "User-Agent: a (x, y)", "User-Agent: a (x,y)", 0},
        {"x-tenant", "X-Tenant: A", "X-Tenant: a", 0},
        {"accept-encoding", "", "Accept-Encoding:", 0}, /* missing vs empty */
        {"accept-encoding, x-a", "X-A: 1\nAccept-Encoding: gzip", "Accept-Encoding: gzip\nX-A: 1",
         1},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct http_field fa[4], fb[4];
        char ba[256], bb[256];
        unsigned na = 0, nb = 0;
        const char *src[2] = {rows[r].a, rows[r].b};
        char *buf[2] = {ba, bb};
        struct http_field *fs[2] = {fa, fb};
        unsigned *ns[2] = {&na, &nb};
        for (int side = 0; side < 2; side++) {
            strcpy(buf[side], src[side]);
            for (char *line = strtok(buf[side], "\n"); line; line = strtok(NULL, "\n")) {
                char *colon = strchr(line, ':');
                char *v = colon + 1;
                while (*v == ' ')
                    v++;
                fs[side][(*ns[side])++] =
                    (struct http_field){{line, (size_t)(colon - line)}, {v, strlen(v)}, HF_OTHER};
            }
        }
        size_t la, lb;
        struct slice vary = {rows[r].vary, strlen(rows[r].vary)};
        char *ka = cache_vary_key(vary, fa, na, &la), *kb = cache_vary_key(vary, fb, nb, &lb);
        if ((la == lb && !memcmp(ka, kb, la)) != rows[r].same)
            fail_msg("row %zu: '%.*s' vs '%.*s'", r, (int)la, ka, (int)lb, kb);
        free(ka);
        free(kb);
    }
}

static void test_byte_bound(void **st)
{
    size_t limit = 16 * 64 * 1024; /* 64 KiB per shard */
    struct store *s = store_mem_new(limit, 1);
    char key[32], body[1000];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        struct cache_object *o = obj(key, "", NULL, 0);
        s->ops->insert(s, o, 0);
    }
    struct store_stats stats;
    store_mem_stats(s, &stats);
    assert_true(stats.bytes <= limit);
    assert_true(stats.evictions > 0);
    assert_true(stats.objects > 0 && stats.objects < 5000);
    s->ops->free(s);
}

/* Keys that differ only in a trailing number (an API's /items/1..400)
 * spread over every shard: FNV-1a's top bits alone put 400 of them in 6
 * of 16. Binomial(400, 1/16) has mean 25 and sd 4.8: each shard within
 * 25 +- 3 sd. */
static void test_shard_spread(void **st)
{
    static const char *const forms[] = {"G http://api.example/items/%d\n", "key-%d",
                                        "G http://h/?page=%d\n"};
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        unsigned count[STORE_MEM_SHARDS] = {0};
        char key[64];
        for (int i = 1; i <= 400; i++) {
            int n = snprintf(key, sizeof key, forms[f], i);
            unsigned sh = store_mem_shard_of(key, (size_t)n);
            assert_true(sh < STORE_MEM_SHARDS);
            count[sh]++;
        }
        for (int i = 0; i < STORE_MEM_SHARDS; i++) {
            assert_true(count[i] >= 11);
            assert_true(count[i] <= 40);
        }
    }
}

static struct cache_object *obj_body(const char *key, int64_t expected, size_t body_len)
{
    struct cache_object *o = obj(key, "Content-Type: application/json\r\n", NULL, 0);
    cache_object_expect(o, expected);
    char chunk[1000];
    memset(chunk, 'b', sizeof chunk);
    for (size_t done = 0; done < body_len;) {
        size_t n = body_len - done < sizeof chunk ? body_len - done : sizeof chunk;
        cache_object_append(o, chunk, n);
        done += n;
    }
    return o;
}

static size_t segments(const struct cache_object *o)
{
    size_t n = 0;
    for (const struct cache_segment *g = o->body->first; g; g = g->next)
        n++;
    return n;
}

/* A small body of known length is one block with its bookkeeping, at its
 * size; the object costs what its blocks cost, predicted before the body. */
static void test_small_object_cost(void **st)
{
    struct cache_object *o = obj_body("G http://api/items/1\n", 100, 100);
    assert_int_equal(o->body->len, 100);
    assert_int_equal(segments(o), 1);
    assert_true(o->body->first_inline);
    size_t cost = cache_object_size(o);
    assert_int_equal(cost, cache_object_size_with_body(o, 100));
    assert_true(cost < 1024); /* it was over 64 KiB */
    assert_true(cost >= sizeof *o + o->head_len + 100 + o->key_len);
    cache_object_unref(&o);

    /* larger known lengths: segments, the last one exact */
    size_t lens[] = {0, 1, 65536, 65537, 200000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        o = obj_body("k", (int64_t)lens[i], lens[i]);
        assert_int_equal(o->body->len, lens[i]);
        assert_int_equal(segments(o), (lens[i] + 65535) / 65536);
        assert_int_equal(cache_object_size(o), cache_object_size_with_body(o, lens[i]));
        cache_object_unref(&o);
    }
}

/* A body of unknown length grows by doubling, and is trimmed to its size
 * once complete; its bytes read back in order. */
static void test_unknown_length_trim(void **st)
{
    size_t lens[] = {100, 1024, 5000, 70000, 300000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct cache_object *o = obj("k", "", NULL, 0);
        for (size_t k = 0; k < lens[i]; k++) {
            char c = (char)('a' + k % 26);
            cache_object_append(o, &c, 1);
        }
        cache_object_trim(&o);
        assert_int_equal(o->body->len, lens[i]);
        size_t k = 0;
        for (const struct cache_segment *g = o->body->first; g; g = g->next)
            for (size_t j = 0; j < g->len; j++, k++)
                assert_int_equal(g->data[j], 'a' + k % 26);
        assert_int_equal(k, lens[i]);
        assert_int_equal(o->body->last_cap, o->body->last->len);
        if (lens[i] < 1024)
            assert_true(cache_object_size(o) < 1024);
        cache_object_unref(&o);
    }
}

/* A filling object others stream is not trimmed in place: a small body
 * becomes a compact copy, and the streamers' object stays whole. */
static void test_shared_trim_copies(void **st)
{
    struct cache_object *o = obj("k", "ETag: \"x\"\r\n", NULL, 0);
    o->shared = 1;
    cache_object_append(o, "hello, ", 7);
    cache_object_append(o, "world", 5);
    struct cache_object *streamer = o;
    cache_object_ref(streamer);
    cache_object_trim(&o);
    assert_ptr_not_equal(o, streamer);
    assert_int_equal(o->body->len, 12);
    assert_true(o->body->first_inline);
    assert_int_equal(o->body->last_cap, 12);
    assert_memory_equal(o->body->first->data, "hello, world", 12);
    assert_memory_equal(o->head, streamer->head, streamer->head_len);
    assert_true(cache_object_size(o) < cache_object_size(streamer));
    assert_memory_equal(streamer->body->first->data, "hello, world", 12);
    cache_object_unref(&streamer);
    cache_object_unref(&o);
}

/* The store charges each object its cost plus its entry, reports what it
 * holds and its capacity, and refuses an object larger than a shard. */
static void test_accounting(void **st)
{
    struct store *s = store_mem_new(16 << 20, 1);
    struct cache_object *o = obj_body("G http://api/items/1\n", 100, 100);
    size_t cost = cache_object_size(o);
    s->ops->insert(s, o, 0);
    struct store_stats stats;
    store_mem_stats(s, &stats);
    assert_int_equal(stats.objects, 1);
    assert_true(stats.bytes > cost && stats.bytes < cost + 128);
    assert_int_equal(stats.capacity, 16 << 20);
    size_t limit = s->ops->object_limit(s);
    assert_true(limit < (1 << 20) && limit > (1 << 20) - 128);
    s->ops->free(s);

    /* 1 MiB in 16 shards: 64 KiB each, so a 64 KiB body does not fit */
    s = store_mem_new(1 << 20, 1);
    o = obj_body("big", 65536, 65536);
    assert_true(cache_object_size(o) > s->ops->object_limit(s));
    s->ops->insert(s, o, 0);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "small-%d", i);
        s->ops->insert(s, obj_body(key, 100, 100), 0);
    }
    store_mem_stats(s, &stats);
    assert_int_equal(stats.objects, 100); /* small ones all fit */
    assert_null(find(s, "big", NULL, 0));
    s->ops->free(s);
}

/* Keys "in-N" that land in shard 0, as many as asked. */
static void shard0_keys(char keys[][16], int n)
{
    for (int i = 0, found = 0; found < n; i++) {
        snprintf(keys[found], 16, "in-%d", i);
        if (store_mem_shard_of(keys[found], strlen(keys[found])) == 0)
            found++;
    }
}

static struct store_stats stats_of(struct store *s)
{
    struct store_stats st;
    store_mem_stats(s, &st);
    return st;
}

/* An object a client is still being sent holds its memory: eviction
 * passes over it, and when every object of the shard is in use a new one
 * is refused rather than charged past the limit (attack round 4, finding
 * 1: h2 streams behind shut windows held 42 MiB of evicted objects over an
 * 8 MiB store). */
static void test_in_use_not_evicted(void **st)
{
    /* 64 KiB a shard: three objects of 20 KiB fit, a fourth does not */
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[6][16];
    shard0_keys(keys, 6);
    struct cache_object *held[3];
    for (int i = 0; i < 3; i++) {
        s->ops->insert(s, obj_body(keys[i], 20000, 20000), 0);
        held[i] = find(s, keys[i], NULL, 0);
        assert_non_null(held[i]);
    }
    /* all three in use: the fourth is refused, none of the three goes */
    s->ops->insert(s, obj_body(keys[3], 20000, 20000), 0);
    assert_null(find(s, keys[3], NULL, 0));
    struct store_stats a = stats_of(s);
    assert_int_equal(a.objects, 3);
    assert_int_equal(a.refused, 1);
    assert_int_equal(a.evictions, 0);
    assert_true(a.bytes <= 64 * 1024);
    /* one let go: it is the one evicted, the others stay */
    cache_object_unref(&held[1]);
    s->ops->insert(s, obj_body(keys[4], 20000, 20000), 0);
    struct cache_object *o = find(s, keys[4], NULL, 0);
    assert_non_null(o);
    cache_object_unref(&o);
    struct cache_object *gone = find(s, keys[1], NULL, 0);
    assert_null(gone);
    for (int i = 0; i < 3; i += 2) {
        o = find(s, keys[i], NULL, 0);
        assert_non_null(o);
        cache_object_unref(&o);
    }
    assert_int_equal(stats_of(s).evictions, 1);
    cache_object_unref(&held[0]);
    cache_object_unref(&held[2]);
    s->ops->free(s);
}

/* Fill shard 0 with objects of 2000 bytes, each held as a client being
 * sent it would, until one is refused: how many went in. */
static int fill_in_use(struct store *s, char keys[64][16], struct cache_object *held[64])
{
    int n = 0;
    for (; n < 64; n++) {
        s->ops->insert(s, obj_body(keys[n], 2000, 2000), 0);
        held[n] = find(s, keys[n], NULL, 0);
        if (!held[n])
            break;
    }
    return n;
}

/* A shard whose objects are all being sent (pinned by clients that do not
 * read) made every insert there walk twice through all of them under the
 * shard's lock before refusing: 5 ms an insert at 26090 objects a shard.
 * Now one insert passes at most cache.eviction_scan objects in use, and
 * the next goes on from where it stopped, so one let go deep in the queue
 * is still found, some inserts later. */
static void test_eviction_scan_bounded(void **st)
{
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[64][16];
    shard0_keys(keys, 64);
    struct cache_object *held[64];
    int n = fill_in_use(s, keys, held);
    assert_true(n > 20 && n < 64);
    assert_int_equal(stats_of(s).refused, 1);
    /* the newest let go: the last one the hand (from the tail) comes to */
    cache_object_unref(&held[n - 1]);
    store_mem_set_eviction_scan(s, 4);
    s->ops->insert(s, obj_body(keys[n], 2000, 2000), 0);
    assert_null(find(s, keys[n], NULL, 0)); /* four passed, then refused */
    struct store_stats a = stats_of(s);
    assert_int_equal(a.refused, 2);
    assert_int_equal(a.evictions, 0); /* the one let go not reached yet */
    /* each try goes on (not looked up meanwhile, which would mark it
     * visited again): the hand reaches it, some tries later */
    struct cache_object *o;
    int tries = 0;
    while (!(o = find(s, keys[n], NULL, 0)) && tries < n) {
        s->ops->insert(s, obj_body(keys[n], 2000, 2000), 0);
        tries++;
    }
    assert_non_null(o);
    cache_object_unref(&o);
    /* a round of the queue, two if it still had its visited bit (the
     * refusal that ended the fill found no room and evicted nothing, so
     * cleared none) */
    assert_true(tries <= 2 * (n / 4 + 1));
    assert_null(find(s, keys[n - 1], NULL, 0)); /* the one evicted */
    assert_int_equal(stats_of(s).evictions, 1);
    for (int i = 0; i < n - 1; i++)
        cache_object_unref(&held[i]);
    s->ops->free(s);
}

/* An insert that cannot fit evicts nothing: it went on evicting until it
 * found it could not, so a client holding most of a shard had the rest
 * emptied by every large miss (a refused 600 KiB object took 284 small
 * ones with it). */
static void test_refused_insert_evicts_nothing(void **st)
{
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[200][16];
    shard0_keys(keys, 200);
    struct cache_object *held[2];
    for (int i = 0; i < 2; i++) {
        s->ops->insert(s, obj_body(keys[i], 20000, 20000), 0);
        held[i] = find(s, keys[i], NULL, 0);
        assert_non_null(held[i]);
    }
    int small = 0;
    while (stats_of(s).evictions == 0 && small < 190)
        s->ops->insert(s, obj_body(keys[2 + small++], 100, 100), 0);
    struct store_stats a = stats_of(s);
    assert_true(a.objects > 20);
    /* 40000 bytes: more than the small ones free, however many go */
    s->ops->insert(s, obj_body(keys[199], 40000, 40000), 0);
    assert_null(find(s, keys[199], NULL, 0));
    struct store_stats b = stats_of(s);
    assert_int_equal(b.refused, a.refused + 1);
    assert_int_equal(b.evictions, a.evictions);
    assert_int_equal(b.objects, a.objects);
    /* one that fits in what may go still goes in */
    s->ops->insert(s, obj_body(keys[198], 5000, 5000), 0);
    struct cache_object *o = find(s, keys[198], NULL, 0);
    assert_non_null(o);
    cache_object_unref(&o);
    assert_true(stats_of(s).evictions > b.evictions);
    cache_object_unref(&held[0]);
    cache_object_unref(&held[1]);
    s->ops->free(s);
}

/* A fill reserves its bytes in its shard as it grows (findings 4 and 5 of
 * the store round: 100 stalled h2 fills held +72.6 MiB over a 16 MiB
 * store, charged to nobody). A reservation counts as stored bytes, evicts
 * objects not in use as an insert does, is refused when there is no room,
 * and becomes the entry's charge on insert (never counted twice, never
 * refused there); a release gives it back. */
static void test_reserve_release(void **st)
{
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[8][16];
    shard0_keys(keys, 8);
    const char *k[8];
    for (int i = 0; i < 8; i++)
        k[i] = keys[i];
    assert_true(s->ops->reserve(s, k[0], strlen(k[0]), 30000));
    assert_true(s->ops->reserve(s, k[1], strlen(k[1]), 30000));
    struct store_stats a = stats_of(s);
    assert_int_equal(a.reserved, 60000);
    assert_int_equal(a.bytes, 60000);
    /* 64 KiB a shard: no room for 10000 more, nothing to evict */
    assert_false(s->ops->reserve(s, k[2], strlen(k[2]), 10000));
    assert_int_equal(stats_of(s).refused, 1);
    assert_int_equal(stats_of(s).reserved, 60000);
    /* more than a shard is refused outright */
    assert_false(s->ops->reserve(s, k[2], strlen(k[2]), 65537));
    /* released: the room is back */
    s->ops->release(s, k[1], strlen(k[1]), 30000);
    assert_int_equal(stats_of(s).reserved, 30000);
    /* the insert turns the reservation into the entry's charge: the
     * shard holds 30000 reserved + 30000 in use, so this 20000-byte
     * object fits only because its own reservation makes the room */
    assert_true(s->ops->reserve(s, k[1], strlen(k[1]), 30000));
    struct cache_object *o = obj_body(k[0], 20000, 20000);
    size_t cost = cache_object_size(o);
    s->ops->insert(s, o, 30000);
    a = stats_of(s);
    assert_int_equal(a.objects, 1);
    assert_int_equal(a.reserved, 30000);
    assert_true(a.bytes > 30000 + cost && a.bytes < 30000 + cost + 128);
    assert_int_equal(a.refused, 1);
    struct cache_object *held = find(s, k[0], NULL, 0);
    assert_non_null(held);
    /* the object in use stays; with k[1]'s 30000 that leaves no room */
    assert_false(s->ops->reserve(s, k[3], strlen(k[3]), 20000));
    assert_int_equal(stats_of(s).evictions, 0);
    s->ops->release(s, k[1], strlen(k[1]), 30000);
    assert_int_equal(stats_of(s).reserved, 0);
    /* let go, it is evicted to make room for a reservation */
    cache_object_unref(&held);
    assert_true(s->ops->reserve(s, k[3], strlen(k[3]), 60000));
    a = stats_of(s);
    assert_int_equal(a.evictions, 1);
    assert_int_equal(a.objects, 0);
    assert_int_equal(a.reserved, 60000);
    /* a reserved insert refused for its size still gives its bytes back */
    s->ops->insert(s, obj_body(k[3], 70000, 70000), 60000);
    assert_int_equal(stats_of(s).reserved, 0);
    assert_int_equal(stats_of(s).bytes, 0);
    s->ops->free(s);
}

/* The retired list too: a client holding many replaced or purged objects
 * made every insert in a full shard walk them all (244 us an insert with
 * 1670 a shard). A sweep passes at most cache.eviction_scan still held,
 * putting them at the back, so the next goes on with the others. */
static void test_retired_sweep_bounded(void **st)
{
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[64][16];
    shard0_keys(keys, 64);
    struct cache_object *held[64];
    int n = fill_in_use(s, keys, held);
    assert_true(n > 20 && n < 64);
    /* all purged while in use: retired, the shard still full of them */
    for (int i = 0; i < n; i++)
        assert_int_equal(s->ops->remove(s, keys[i], strlen(keys[i])), 1);
    /* the last one retired let go: the last one a sweep comes to */
    cache_object_unref(&held[n - 1]);
    store_mem_set_eviction_scan(s, 4);
    s->ops->insert(s, obj_body(keys[n], 2000, 2000), 0);
    struct cache_object *o = find(s, keys[n], NULL, 0);
    assert_null(o); /* four still held passed, then refused */
    int tries = 0;
    while (!(o = find(s, keys[n], NULL, 0)) && tries < n) {
        s->ops->insert(s, obj_body(keys[n], 2000, 2000), 0);
        tries++;
    }
    assert_non_null(o);
    cache_object_unref(&o);
    assert_true(tries <= n / 4 + 1);
    for (int i = 0; i < n - 1; i++)
        cache_object_unref(&held[i]);
    struct store_stats a;
    store_mem_stats(s, &a); /* /stats sweeps them all */
    assert_int_equal(a.held, 0);
    assert_int_equal(a.objects, 1);
    s->ops->free(s);
}

/* Replaced or purged while in use: out of the table at once (nobody finds
 * it), still charged until its holder lets go, then freed. */
static void test_in_use_retired(void **st)
{
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[3][16];
    shard0_keys(keys, 3);
    s->ops->insert(s, obj_body(keys[0], 20000, 20000), 0);
    struct cache_object *old = find(s, keys[0], NULL, 0);
    size_t one = stats_of(s).bytes;
    s->ops->insert(s, obj_body(keys[0], 20000, 20000), 0); /* replaced */
    struct cache_object *now = find(s, keys[0], NULL, 0);
    assert_ptr_not_equal(now, old);
    cache_object_unref(&now);
    struct store_stats a = stats_of(s);
    assert_int_equal(a.objects, 1);
    assert_int_equal(a.held, one);
    assert_int_equal(a.bytes, 2 * one);
    /* a purge of the new one while the old is still out: both charged */
    now = find(s, keys[0], NULL, 0);
    assert_int_equal(s->ops->remove(s, keys[0], strlen(keys[0])), 1);
    assert_null(find(s, keys[0], NULL, 0));
    a = stats_of(s);
    assert_int_equal(a.objects, 0);
    assert_int_equal(a.held, 2 * one);
    /* the charge leaves room for one more beside them: a second evicts it */
    s->ops->insert(s, obj_body(keys[1], 20000, 20000), 0);
    s->ops->insert(s, obj_body(keys[2], 20000, 20000), 0);
    a = stats_of(s);
    assert_int_equal(a.objects, 1);
    assert_int_equal(a.evictions, 1);
    assert_true(a.bytes <= 64 * 1024);
    /* until the holders let go */
    cache_object_unref(&old);
    cache_object_unref(&now);
    a = stats_of(s);
    assert_int_equal(a.held, 0);
    assert_int_equal(a.bytes, one);
    s->ops->insert(s, obj_body(keys[1], 20000, 20000), 0);
    assert_int_equal(stats_of(s).objects, 2);
    s->ops->free(s);
}

/* A 304 merge shares its stale object's body (RFC 9111 §4.3.4): while a
 * client is still sent the stale one (retired), the body is charged once
 * for both, so the merge of an object over half a shard still fits
 * (attack-store finding 7); after both go, nothing is charged. */
static void test_shared_body_charged_once(void **st)
{
    static struct http_response r304;
    static const char h304[] = "HTTP/1.1 304 Not Modified\r\nX-New: 1\r\n\r\n";
    /* 64 KiB a shard: one 40 KiB body fits, two do not */
    struct store *s = store_mem_new(16 * 64 * 1024, 1);
    char keys[1][16];
    shard0_keys(keys, 1);
    s->ops->insert(s, obj_body(keys[0], 40000, 40000), 0);
    struct cache_object *old = find(s, keys[0], NULL, 0);
    size_t one = stats_of(s).bytes;
    assert_int_equal(http_parse_response(h304, strlen(h304), &lim, &r304), 0);
    struct cache_object *merged = cache_object_revalidated(old, &r304, NULL, 0, 0, 0, 10, 3600);
    assert_ptr_equal(merged->body, old->body);
    size_t head = cache_object_head_size(merged);
    s->ops->insert(s, merged, 0); /* replaces old, which its holder keeps */
    struct store_stats a = stats_of(s);
    assert_int_equal(a.refused, 0);
    assert_int_equal(a.objects, 1);
    assert_true(a.bytes < one + head + 1024); /* the body once: ~40 KiB, not ~80 */
    struct cache_object *now = find(s, keys[0], NULL, 0);
    assert_ptr_equal(now, merged);
    /* both out of the table and still held: the body is held, once */
    assert_int_equal(s->ops->remove(s, keys[0], strlen(keys[0])), 1);
    a = stats_of(s);
    assert_int_equal(a.objects, 0);
    assert_int_equal(a.held, a.bytes);
    assert_true(a.bytes < one + head + 1024);
    cache_object_unref(&old);
    a = stats_of(s);
    assert_true(a.held > 40000); /* the merge alone still holds the body */
    cache_object_unref(&now);
    a = stats_of(s);
    assert_int_equal(a.held, 0);
    assert_int_equal(a.bytes, 0);
    s->ops->free(s);
}

/* A plain LRU of `cap` keys, to compare against. */
struct lru {
    int *prev, *next, head, tail, count, cap;
    char *in;
};

static int lru_access(struct lru *l, int k)
{
    int hit = l->in[k];
    if (hit) {
        if (l->head == k)
            return 1;
        if (l->prev[k] >= 0)
            l->next[l->prev[k]] = l->next[k];
        if (l->next[k] >= 0)
            l->prev[l->next[k]] = l->prev[k];
        if (l->tail == k)
            l->tail = l->prev[k];
    } else {
        if (l->count == l->cap) {
            int t = l->tail;
            l->tail = l->prev[t];
            l->next[l->tail] = -1;
            l->in[t] = 0;
            l->count--;
        }
        l->in[k] = 1;
        l->count++;
    }
    l->prev[k] = -1;
    l->next[k] = l->head;
    if (l->head >= 0)
        l->prev[l->head] = k;
    l->head = k;
    if (l->tail < 0)
        l->tail = k;
    return hit;
}

static void test_sieve_beats_lru(void **st)
{
    enum { KEYS = 20000, REQS = 200000 };
    /* Zipf(0.9) popular keys mixed with one-hit wonders (a third of requests). */
    double *cdf = malloc(KEYS * sizeof *cdf), sum = 0;
    for (int i = 0; i < KEYS; i++)
        sum += 1.0 / pow(i + 1, 0.9);
    double acc = 0;
    for (int i = 0; i < KEYS; i++)
        cdf[i] = (acc += 1.0 / pow(i + 1, 0.9) / sum);
    srand(12345);
    int *trace = malloc(REQS * sizeof *trace);
    int wonder = KEYS;
    for (int i = 0; i < REQS; i++) {
        if (rand() % 3 == 0) {
            trace[i] = wonder++;
            continue;
        }
        double u = rand() / (double)RAND_MAX;
        int lo = 0, hi = KEYS - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        trace[i] = lo;
    }
    /* Size the store for ~1600 objects; measure its capacity in objects. */
    struct cache_object *probe = obj("key-00000000", "", NULL, 0);
    size_t per = cache_object_size(probe);
    cache_object_unref(&probe);
    struct store *s = store_mem_new(per * 1600, 1);
    uint64_t sieve_hits = 0;
    char key[32];
    for (int i = 0; i < REQS; i++) {
        snprintf(key, sizeof key, "key-%08d", trace[i]);
        struct cache_object *o = find(s, key, NULL, 0);
        if (o) {
            sieve_hits++;
            cache_object_unref(&o);
        } else {
            s->ops->insert(s, obj(key, "", NULL, 0), 0);
        }
    }
    struct store_stats stats;
    store_mem_stats(s, &stats);
    /* LRU with the same number of objects the store actually held. */
    int cap = (int)stats.objects;
    struct lru l = {calloc(wonder, sizeof(int)),
                    calloc(wonder, sizeof(int)),
                    -1,
                    -1,
                    0,
                    cap,
                    calloc(wonder, 1)};
    uint64_t lru_hits = 0;
    for (int i = 0; i < REQS; i++)
        lru_hits += lru_access(&l, trace[i]);
    printf("skewed trace, %d objects: SIEVE %llu hits, LRU %llu hits\n", cap,
           (unsigned long long)sieve_hits, (unsigned long long)lru_hits);
    assert_true(sieve_hits > lru_hits);
    s->ops->free(s);
    free(l.prev);
    free(l.next);
    free(l.in);
    free(trace);
    free(cdf);
}

static void test_generated_etag(void **st)
{
    struct cache_object *o = obj("k", "", NULL, 0);
    cache_object_append(o, "abc", 3);
    char tag[CACHE_ETAG_LEN];
    cache_etag_of_body(o->body, tag);
    /* SHA-256("abc") in base64url */
    assert_memory_equal(tag, "\"i-ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0\"", CACHE_ETAG_LEN);
    cache_object_add_field(o, (struct slice){"ETag", 4}, (struct slice){tag, CACHE_ETAG_LEN});
    const struct http_field *f = cache_object_field(o, "etag");
    assert_non_null(f);
    assert_int_equal(f->value.len, CACHE_ETAG_LEN);
    assert_true(o->facts.has_validator);
    cache_object_unref(&o);
}

static void test_keys(void **st)
{
    static const struct {
        const char *head, *key;
    } rows[] = {
        {"GET /a?b HTTP/1.1\r\nHost: Example.COM:80\r\n\r\n", "G http://example.com/a?b"},
        {"HEAD /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", "G http://example.com/a?b"},
        {"GET http://EXAMPLE.com:80/a?b HTTP/1.1\r\nHost: x\r\n\r\n", "G http://example.com/a?b"},
        {"GET /a HTTP/1.1\r\nHost: example.com:\r\n\r\n", "G http://example.com/a"},
        {"GET /a HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "G http://example.com:8080/a"},
        {"GET /a HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "G http://[::1]/a"},
        {"GET /a HTTP/1.1\r\nHost: [::80]\r\n\r\n", "G http://[::80]/a"},
        {"GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", "G http://example.com/"},
        {"GET /A HTTP/1.1\r\nHost: example.com\r\n\r\n", "G http://example.com/A"},
    };
    static struct http_field fields[HTTP_FIELDS_MAX];
    static struct http_request req;
    http_request_init(&req, fields, HTTP_FIELDS_MAX);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(http_parse_request(rows[i].head, strlen(rows[i].head), &lim, &req), 0);
        size_t len;
        char *k = cache_key_primary(&req, CACHE_SCHEME_HTTP, &len);
        if (len != strlen(rows[i].key) || memcmp(k, rows[i].key, len))
            fail_msg("row %zu: got '%.*s'", i, (int)len, k);
        free(k);
    }
}

/* Invalidating a URL scans for its body keys only when some may exist. */
static void test_body_key_filter(void **st)
{
    struct store *s = store_mem_new(1 << 20, 4);
    const char *url = "G http://h/x", *other = "G http://h/y";
    assert_false(s->ops->may_hold_body_keys(s, url, strlen(url)));
    s->ops->insert(s, obj("P http://h/x\nb:00\nt:\ne:\n", "X: 1\r\n", NULL, 0), 0);
    s->ops->insert(s, obj("Q http://h/x\nb:01\nt:\ne:\n", "X: 1\r\n", NULL, 0), 0);
    s->ops->insert(s, obj("G http://h/y", "X: 1\r\n", NULL, 0), 0); /* not a body key */
    assert_true(s->ops->may_hold_body_keys(s, url, strlen(url)));
    assert_false(s->ops->may_hold_body_keys(s, other, strlen(other)));
    const char *p = "P http://h/x\nb:00\nt:\ne:\n";
    assert_int_equal(s->ops->remove(s, p, strlen(p)), 1);
    assert_true(s->ops->may_hold_body_keys(s, url, strlen(url)));
    const char *q = "Q http://h/x\nb:01\nt:\ne:\n";
    assert_int_equal(s->ops->remove(s, q, strlen(q)), 1);
    assert_false(s->ops->may_hold_body_keys(s, url, strlen(url)));
    s->ops->free(s);
}

/* Issue 10: a Vary line of any length keeps every name in the key; the
 * old fixed buffer dropped a line over ~1 KB, so a long "..., Cookie"
 * answered every cookie with one user's variant. */
static void test_vary_long(void **st)
{
    static char head[8192];
    size_t p = (size_t)snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nVary: ");
    for (int i = 0; i < 260; i++)
        p += (size_t)snprintf(head + p, sizeof head - p, "X-Pad-%04d, ", i);
    p += (size_t)snprintf(head + p, sizeof head - p, "Cookie\r\n\r\n");
    assert_true(p > 3000);
    assert_int_equal(http_parse_response(head, p, &lim, &res), 0);
    struct http_field alice = {{"Cookie", 6}, {"user=alice", 10}, HF_OTHER};
    struct http_field bob = {{"Cookie", 6}, {"user=bob", 8}, HF_OTHER};
    struct cache_object *o = cache_object_new("k", 1, &res, &alice, 1, 0, 0, 60);
    assert_non_null(o->vary);
    assert_true(cache_object_vary_match(o, &alice, 1));
    assert_false(cache_object_vary_match(o, &bob, 1));
    assert_false(cache_object_vary_match(o, NULL, 0));
    cache_object_unref(&o);
}

/* The stored Warning lines of `o`, "|"-joined (empty: none). */
static const char *stored_warnings(const struct cache_object *o)
{
    static char buf[512];
    size_t len = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < o->nfields; i++)
        if (slice_case_eq(o->fields[i].name, "warning"))
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.*s", len ? "|" : "",
                                    (int)o->fields[i].value.len, o->fields[i].value.p);
    return buf;
}

/* RFC 7234 §5.5: a 1xx warn-code speaks of freshness at the cache that
 * added it; a stored response keeps none (its other members as sent). */
static void test_stored_warnings(void **st)
{
    (void)st;
    static const struct {
        const char *name, *fields, *want;
    } rows[] = {
        {"none", "A: b\r\n", ""},
        {"110 alone", "Warning: 110 - \"Response is Stale\"\r\n", ""},
        {"111 112 113 199",
         "Warning: 111 - \"a\"\r\nWarning: 112 - \"b\"\r\n"
         "Warning: 113 - \"c\", 199 - \"d\"\r\n",
         ""},
        {"214 kept as sent", "Warning: 214 proxy \"Transformation Applied\"\r\n",
         "214 proxy \"Transformation Applied\""},
        {"299 kept", "Warning: 299 - \"Misc\"\r\n", "299 - \"Misc\""},
        {"mixed line rewritten", "Warning: 110 - \"x\", 214 - \"y\" , 112 - \"z\",299 - \"w\"\r\n",
         "214 - \"y\",299 - \"w\""},
        {"comma in a quoted text", "Warning: 214 - \"a, 110 - b\", 110 - \"c\"\r\n",
         "214 - \"a, 110 - b\""},
        {"lines apart", "Warning: 110 - \"x\"\r\nX: 1\r\nWarning: 214 - \"y\"\r\n", "214 - \"y\""},
        {"with a date", "Warning: 110 h \"s\" \"Sat, 25 Aug 2012 23:34:45 GMT\"\r\n", ""},
        {"unterminated quote dropped", "Warning: 214 - \"y\", 110 - \"x\r\n", ""},
        {"empty value dropped", "Warning:\r\n", ""},
        {"not a code: kept", "Warning: 2x4 - \"odd\"\r\n", "2x4 - \"odd\""},
        {"1xx read by its first digits", "Warning: 1100 - \"x\"\r\n", ""},
        {"name case", "WARNING: 110 - \"x\"\r\nwarning: 214 - \"y\"\r\n", "214 - \"y\""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cache_object *o = obj("k", rows[i].fields, NULL, 0);
        const char *got = stored_warnings(o);
        if (strcmp(got, rows[i].want))
            fail_msg("%s: stored '%s', want '%s'", rows[i].name, got, rows[i].want);
        /* and the head text says what the fields say */
        char *head = strndup(o->head, o->head_len);
        if (!*rows[i].want && strstr(head, "arning"))
            fail_msg("%s: a Warning line left in %s", rows[i].name, head);
        free(head);
        cache_object_unref(&o);
    }
}

/* §4.3.4 with RFC 7234's Warning rule: a 304's 1xx warnings are not
 * stored and replace nothing; stored 1xx are gone, stored 2xx stay unless
 * the 304 brings 2xx of its own. */
/* RFC 9111 §4.4: an invalidation marks the flight in progress for its
 * key only, and the next flight of that key starts unmarked. Each row: an
 * action, then the state the key's flight is in. */
static void test_coalesce_invalidate(void **st)
{
    (void)st;
    enum step { JOIN, INVALIDATE_K, INVALIDATE_OTHER, RELEASE };
    static const struct {
        enum step step;
        enum coalesce_flight after;
    } rows[] = {
        {INVALIDATE_K, COALESCE_NO_FLIGHT}, /* no flight: nothing marked */
        {JOIN, COALESCE_FLIGHT},
        {INVALIDATE_OTHER, COALESCE_FLIGHT},
        {INVALIDATE_K, COALESCE_FLIGHT_INVALIDATED},
        {JOIN, COALESCE_FLIGHT_INVALIDATED}, /* a waiter joins the marked flight */
        {RELEASE, COALESCE_NO_FLIGHT},
        {JOIN, COALESCE_FLIGHT}, /* the next one starts clean */
        {RELEASE, COALESCE_NO_FLIGHT},
    };
    struct coalesce *co = coalesce_new();
    uint64_t workers[COALESCE_MAX_WORKERS / 64];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        switch (rows[i].step) {
        case JOIN:
            coalesce_join(co, "GET k", 5, 0);
            break;
        case INVALIDATE_K:
            coalesce_invalidate(co, "GET k", 5);
            break;
        case INVALIDATE_OTHER:
            coalesce_invalidate(co, "GET j", 5);
            break;
        case RELEASE:
            coalesce_release(co, "GET k", 5, workers);
            break;
        }
        assert_int_equal(coalesce_flight_state(co, "GET k", 5), rows[i].after);
    }
    coalesce_free(co);
}

static void test_revalidated_warnings(void **st)
{
    (void)st;
    static const struct {
        const char *name, *stored, *r304, *want;
    } rows[] = {
        {"304 110 not added", "ETag: \"e\"\r\n", "Warning: 110 - \"Response is Stale\"\r\n", ""},
        {"304 110 keeps stored 214", "Warning: 214 - \"old\"\r\n", "Warning: 110 - \"x\"\r\n",
         "214 - \"old\""},
        {"304 214 replaces stored 214", "Warning: 214 - \"old\"\r\n", "Warning: 214 - \"new\"\r\n",
         "214 - \"new\""},
        {"304 mixed: its 214 replaces", "Warning: 214 - \"old\"\r\n",
         "Warning: 111 - \"x\", 214 - \"new\"\r\n", "214 - \"new\""},
        {"304 unreadable replaces nothing", "Warning: 214 - \"old\"\r\n", "Warning: 214 \"x\r\n",
         "214 - \"old\""},
        {"no Warning in the 304", "Warning: 214 - \"old\"\r\n", "X-New: 1\r\n", "214 - \"old\""},
    };
    static struct http_response r304;
    static char h304[512];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cache_object *old = obj("k", rows[i].stored, NULL, 0);
        snprintf(h304, sizeof h304, "HTTP/1.1 304 Not Modified\r\n%s\r\n", rows[i].r304);
        assert_int_equal(http_parse_response(h304, strlen(h304), &lim, &r304), 0);
        struct cache_object *o = cache_object_revalidated(old, &r304, NULL, 0, 0, 0, 10, 3600);
        const char *got = stored_warnings(o);
        if (strcmp(got, rows[i].want))
            fail_msg("%s: merged '%s', want '%s'", rows[i].name, got, rows[i].want);
        cache_object_unref(&o);
        cache_object_unref(&old);
    }
}

/* §4.3.4 merge tables: what a 304 may change in the shared entry. The
 * merged facts go through cache_storable again, as cache_stage.c does. */
static void test_revalidated_merge(void **st)
{
    static const struct {
        const char *name, *stored, *r304;
        const char *present, *absent; /* substrings of the merged head */
        enum cache_store_verdict want;
    } rows[] = {
        {"set-cookie never merged", "Cache-Control: max-age=0\r\nETag: \"e\"\r\n",
         "Cache-Control: max-age=60\r\nSet-Cookie: session=alice\r\nETag: \"e\"\r\n", "max-age=60",
         "session=alice", STORE_OK},
        {"set-cookie2 never merged", "Cache-Control: max-age=0\r\n", "Set-Cookie2: s=a\r\n",
         "max-age=0", "s=a", STORE_OK},
        {"stored public cookie is not replaced by the 304's",
         "Cache-Control: public, max-age=0\r\nSet-Cookie: pub=1\r\n",
         "Set-Cookie: session=alice\r\n", "pub=1", "session=alice", STORE_OK},
        {"private", "Cache-Control: max-age=0\r\n", "Cache-Control: private, max-age=60\r\n",
         "private", NULL, STORE_PRIVATE},
        {"no-store", "Cache-Control: max-age=0\r\n", "Cache-Control: no-store, max-age=60\r\n",
         "no-store", NULL, STORE_NO_STORE},
        {"vary star", "Cache-Control: max-age=0\r\n", "Vary: *\r\n", "Vary: *", NULL,
         STORE_VARY_STAR},
        {"vary unreadable", "Cache-Control: max-age=0\r\n", "Vary: \"x, Cookie\r\n", NULL, NULL,
         STORE_VARY_INVALID},
        {"no cache-control keeps the stored one", "Cache-Control: max-age=0\r\n", "X-New: 1\r\n",
         "X-New: 1", NULL, STORE_OK},
        {"stored private stays private", "Cache-Control: private, max-age=0\r\n", "X-New: 1\r\n",
         NULL, NULL, STORE_PRIVATE},
    };
    static struct http_response r304;
    static char h304[512];
    struct cache_control none;
    cache_control_parse(NULL, 0, &none);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cache_object *old = obj("k", rows[i].stored, NULL, 0);
        snprintf(h304, sizeof h304, "HTTP/1.1 304 Not Modified\r\n%s\r\n", rows[i].r304);
        assert_int_equal(http_parse_response(h304, strlen(h304), &lim, &r304), 0);
        struct cache_object *o = cache_object_revalidated(old, &r304, NULL, 0, 0, 0, 10, 3600);
        /* NUL-terminate a copy to search it */
        char *head = strndup(o->head, o->head_len);
        if (rows[i].present && !strstr(head, rows[i].present))
            fail_msg("%s: '%s' missing from %s", rows[i].name, rows[i].present, head);
        if (rows[i].absent && strstr(head, rows[i].absent))
            fail_msg("%s: '%s' merged into %s", rows[i].name, rows[i].absent, head);
        enum cache_store_verdict v = cache_storable(1, &none, 0, &o->facts);
        if (v != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].name, cache_store_reason(v),
                     cache_store_reason(rows[i].want));
        free(head);
        cache_object_unref(&o);
        cache_object_unref(&old);
    }
}

/* A 304 naming other Vary fields re-keys the merge by the request that
 * revalidated (it is the one the origin answered). */
static void test_revalidated_vary(void **st)
{
    struct http_field alice[2] = {{{"Cookie", 6}, {"user=alice", 10}, HF_OTHER},
                                  {{"Accept", 6}, {"text/html", 9}, HF_OTHER}};
    struct http_field bob[2] = {{{"Cookie", 6}, {"user=bob", 8}, HF_OTHER},
                                {{"Accept", 6}, {"text/html", 9}, HF_OTHER}};
    struct cache_object *old = obj("k", "Vary: Accept\r\n", alice, 2);
    assert_true(cache_object_vary_match(old, bob, 2));
    static struct http_response r304;
    static char h304[] = "HTTP/1.1 304 Not Modified\r\nVary: Accept, Cookie\r\n\r\n";
    assert_int_equal(http_parse_response(h304, strlen(h304), &lim, &r304), 0);
    struct cache_object *o = cache_object_revalidated(old, &r304, alice, 2, 0, 0, 10, 3600);
    assert_true(cache_object_vary_match(o, alice, 2));
    assert_false(cache_object_vary_match(o, bob, 2));
    cache_object_unref(&o);
    /* without Vary in the 304, the stored key stays */
    static char plain[] = "HTTP/1.1 304 Not Modified\r\nX-New: 1\r\n\r\n";
    assert_int_equal(http_parse_response(plain, strlen(plain), &lim, &r304), 0);
    o = cache_object_revalidated(old, &r304, bob, 2, 0, 0, 10, 3600);
    assert_true(cache_object_vary_match(o, alice, 2));
    assert_int_equal(o->vary_len, old->vary_len);
    cache_object_unref(&o);
    cache_object_unref(&old);
}

/* The stored reason phrase, as the status line carried it (one word,
 * several, none), without its line end. */
static void test_object_reason(void **st)
{
    (void)st;
    static const struct {
        const char *head, *reason;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", "OK"},
        {"HTTP/1.1 404 Not Found\r\n\r\n", "Not Found"},
        {"HTTP/1.1 200 \r\nA: b\r\n\r\n", ""},
        {"HTTP/1.0 203 Non-Authoritative Information\r\n\r\n", "Non-Authoritative Information"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_response r;
        assert_int_equal(http_parse_response(cases[i].head, strlen(cases[i].head), &lim, &r), 0);
        struct cache_object *o = cache_object_new("k", 1, &r, NULL, 0, 0, 0, 60);
        struct slice got = cache_object_reason(o);
        assert_int_equal(got.len, strlen(cases[i].reason));
        assert_memory_equal(got.p, cases[i].reason, got.len);
        cache_object_unref(&o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_shard_spread),
        cmocka_unit_test(test_small_object_cost),
        cmocka_unit_test(test_unknown_length_trim),
        cmocka_unit_test(test_accounting),
        cmocka_unit_test(test_shared_trim_copies),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_in_use_not_evicted),
        cmocka_unit_test(test_in_use_retired),
        cmocka_unit_test(test_shared_body_charged_once),
        cmocka_unit_test(test_eviction_scan_bounded),
        cmocka_unit_test(test_retired_sweep_bounded),
        cmocka_unit_test(test_refused_insert_evicts_nothing),
        cmocka_unit_test(test_reserve_release),
        cmocka_unit_test(test_sieve_beats_lru),
        cmocka_unit_test(test_generated_etag),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_body_key_filter),
        cmocka_unit_test(test_vary_normalized),
        cmocka_unit_test(test_vary_long),
        cmocka_unit_test(test_revalidated_merge),
        cmocka_unit_test(test_revalidated_vary),
        cmocka_unit_test(test_object_reason),
        cmocka_unit_test(test_stored_warnings),
        cmocka_unit_test(test_revalidated_warnings),
        cmocka_unit_test(test_coalesce_invalidate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
