/* A cached response: immutable once published, shared by reference.
 *
 *   cache_object_new    (filling, owned by one exchange)
 *   cache_object_append (body bytes as they stream in)
 *   store insert        (published: immutable from here, any worker may read)
 *   cache_object_ref / cache_object_unref (last unref frees)
 *
 * The body lives in a separately refcounted cache_body so that a 304 can
 * publish a new object with merged fields over the same bytes (§4.3.4). */
#ifndef IDEM_CACHE_OBJECT_H
#define IDEM_CACHE_OBJECT_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "cache/policy.h"
#include "http/http.h"

#define CACHE_OBJECT_MAGIC 0x4f424a43u
/* Large bodies are kept in segments of this size, so that no body needs
 * one large contiguous block and an origin's Content-Length commits memory
 * only as its bytes arrive. */
#define CACHE_SEGMENT_SIZE (64 * 1024)
/* A body whose length is known and at most this is one allocation of
 * exactly its size, in the same block as its bookkeeping: an API cache
 * lives on bodies of a few hundred bytes, which a 64 KiB segment would
 * charge 100 times over. Beyond it, segments (the last one sized to what
 * remains). */
#define CACHE_BODY_ONE_PIECE_MAX CACHE_SEGMENT_SIZE

/* A body may be read by coalesced waiters on other workers while its one
 * writer appends to it: the links and lengths are atomic, and the bytes
 * below a length never change once it is published. */
struct cache_segment {
    struct cache_segment *_Atomic next;
    _Atomic size_t len;
    char data[];
};

/* The first segment may live in the same block, right after this header
 * (cache_object_expect). Every segment but the last is full; the last
 * holds `last_cap` bytes. */
struct cache_body {
    atomic_int refs;
    int first_inline; /* the first segment is in this block */
    struct cache_segment *_Atomic first;
    struct cache_segment *last; /* the writer's own */
    size_t last_cap;            /* the writer's own */
    _Atomic size_t len;
    /* The memory store's: its entries of objects over this body (a 304
     * merge shares it with the stale object, which a client may still be
     * sent), those of them still in its table, and what it charged for the
     * body, once for all of them. All of one key, so of one shard: changed
     * only under that shard's lock (store_mem.c body_attach). */
    unsigned store_refs, store_live;
    size_t store_cost;
};

/* While an object fills, waiters may stream it (cache_stage.c). */
enum cache_fill { FILL_OPEN, FILL_DONE, FILL_ABORTED };

/* One block holds the object, its key and (for a new response) its Vary
 * key; another its fields and head (the fields array first, then the head
 * text they point into). */
struct cache_object {
    uint32_t magic;
    atomic_int refs;
    int status;
    unsigned nfields;
    /* the first ETag, Last-Modified and Surrogate-Key of `fields` (NULL:
     * none), found when the head is built: every hit asks for them */
    const struct http_field *etag, *last_modified, *surrogate_key;
    size_t key_len;
    /* "HTTP/1.1 200 OK\r\n" and the stored fields, each ending in CRLF;
     * no framing, hop-by-hop, Age or Cache-Status fields. */
    char *head;
    size_t head_len;
    struct http_field *fields; /* slices into head */
    struct cache_response_facts facts;
    int64_t request_time, response_time, lifetime;
    /* Vary (§4.1): the nominated request field values, "name:value\n"
     * per name in order, lowercase names; NULL when the response has no Vary. */
    char *vary; /* after the key in the object's block when vary_inline */

    struct cache_body *body;
    int64_t expected_len; /* the response's Content-Length, or -1 */
    int complete;
    atomic_int fill; /* enum cache_fill */
    uint32_t vary_len;
    unsigned char shared; /* waiters stream it: its head must not change */
    unsigned char vary_inline;
    char key[]; /* key_len bytes, then the Vary key when vary_inline */
};

/* From a response head (fields as received) and the request it answered. */
struct cache_object *cache_object_new(const char *key, size_t key_len,
                                      const struct http_response *res,
                                      const struct http_field *req_fields, unsigned req_n,
                                      int64_t request_time, int64_t response_time,
                                      int64_t lifetime);

/* A copy of `old` whose fields are updated from a 304 (§3.2, §4.3.4):
 * every field in the 304 replaces the stored ones of that name, except
 * Set-Cookie, which is never merged (it belongs to the revalidating client
 * alone); body shared. `req_fields` are the revalidating request's, for
 * the Vary key when the 304 carries Vary. The merge is a new response: the
 * caller decides again whether it may be stored (cache_storable on its
 * facts) before publishing it. */
struct cache_object *cache_object_revalidated(const struct cache_object *old,
                                              const struct http_response *res304,
                                              const struct http_field *req_fields, unsigned req_n,
                                              int64_t request_time, int64_t response_time,
                                              unsigned heuristic_pct, int64_t heuristic_max);

/* The response says its body is `len` bytes: set expected_len and, while
 * the body is empty and unshared, allocate it to that size (one block up to
 * CACHE_BODY_ONE_PIECE_MAX). Call before anyone else reads the object. */
void cache_object_expect(struct cache_object *o, int64_t len);
void cache_object_append(struct cache_object *o, const char *p, size_t n);
/* The body is complete: give back the slack of its last segment (a body of
 * unknown length grows by doubling). An object others may be streaming is
 * left alone, or for a small body replaced in *o by a compact copy (the
 * caller's reference moves to it). */
void cache_object_trim(struct cache_object **o);
/* A copy of `old` with one more field, over the same body: for an object
 * others already read, whose head must not change. */
struct cache_object *cache_object_with_field(const struct cache_object *old, struct slice name,
                                             struct slice value);
/* Add a field to an object not yet published (its head is rebuilt). */
void cache_object_add_field(struct cache_object *o, struct slice name, struct slice value);
/* Remove every field named in `names` (a comma list) from an object not
 * yet published; its facts keep what was read from them (object.c
 * refresh_facts). */
void cache_object_remove_fields(struct cache_object *o, struct slice names);
/* What the object costs in memory, all in: every block it owns at what
 * the allocator charges for it (cache_alloc_cost). */
size_t cache_object_size(const struct cache_object *o);
/* Its two parts: the object's own blocks, and its body's (which objects
 * merged from a 304 share). cache_object_size is their sum. */
size_t cache_object_head_size(const struct cache_object *o);
size_t cache_body_size(const struct cache_body *b);
/* The cost it would have with a body of `body_len` bytes of known length
 * (its head as it is now): to decide before the head goes out whether the
 * store can hold it. */
size_t cache_object_size_with_body(const struct cache_object *o, uint64_t body_len);
/* What a malloc of n bytes takes from the heap: glibc's chunk, the size
 * plus an 8-byte header rounded up to 16, at least 32 (other allocators
 * are near it). The store's accounting is in these units, so that its
 * bytes are close to the process's resident memory. */
size_t cache_alloc_cost(size_t n);
void cache_object_ref(struct cache_object *o);
void cache_object_unref(struct cache_object **o);
/* Does anyone but the caller hold a reference? (The store asks under its
 * lock, where nobody can take a first one.) */
static inline int cache_object_in_use(const struct cache_object *o)
{
    return atomic_load(&o->refs) > 1;
}

/* The serialized secondary key of a request for a Vary value list. */
char *cache_vary_key(struct slice vary, const struct http_field *f, unsigned n, size_t *len);
/* Does this request select this stored variant? */
int cache_object_vary_match(const struct cache_object *o, const struct http_field *f, unsigned n);

const struct http_field *cache_object_field(const struct cache_object *o, const char *name);
/* The stored reason phrase (a slice into o->head; may be empty), so that
 * callers never read the stored status line's text themselves. */
struct slice cache_object_reason(const struct cache_object *o);

#endif
