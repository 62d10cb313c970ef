/* Request coalescing: one fetch per key in flight across all workers.
 * The first miss on a key leads; later ones join and wait. When the leader's
 * exchange ends (published or not), release returns the workers that have
 * waiters, and each re-runs its waiting requests: they hit the new object,
 * or go upstream themselves when nothing was stored (private, no-store,
 * Set-Cookie, errors), so nobody receives a response meant for another. */
#ifndef IDEM_CACHE_COALESCE_H
#define IDEM_CACHE_COALESCE_H
#include <stddef.h>
#include <stdint.h>
#include "cache/object.h"

#define COALESCE_MAX_WORKERS 256

struct coalesce;

struct coalesce *coalesce_new(void);
void coalesce_free(struct coalesce *co);

/* 1: the caller leads the fetch for key; 0: a fetch is in flight, the
 * caller (on worker `worker`) waits for release. */
int coalesce_join(struct coalesce *co, const char *key, size_t len, int worker);

/* The leader stores its response as it arrives: waiters may stream `o`
 * while it fills. The flight takes a reference until release. */
void coalesce_set_partial(struct coalesce *co, const char *key, size_t len, struct cache_object *o);
/* The fetch gave its partial object up: waiters that have not started
 * streaming it wait for the fetch's end, then go upstream themselves. */
void coalesce_drop_partial(struct coalesce *co, const char *key, size_t len);
/* The partial object of a fetch in flight, referenced; NULL when there is
 * none (yet). *in_flight tells whether the fetch is still going. */
struct cache_object *coalesce_partial(struct coalesce *co, const char *key, size_t len,
                                      int *in_flight);
/* RFC 9111 §4.4: an unsafe request to key succeeded. A fetch in flight
 * for it began before and may carry what the origin said before: it is
 * marked, and its leader does not store it (coalesce_flight_state). No
 * flight: nothing to do. */
void coalesce_invalidate(struct coalesce *co, const char *key, size_t len);
enum coalesce_flight {
    COALESCE_NO_FLIGHT,          /* no fetch in flight for the key */
    COALESCE_FLIGHT,             /* one is */
    COALESCE_FLIGHT_INVALIDATED, /* one is, and the key was invalidated since it began */
};
enum coalesce_flight coalesce_flight_state(struct coalesce *co, const char *key, size_t len);
/* The workers with waiters on key, without ending anything. */
int coalesce_waiters(struct coalesce *co, const char *key, size_t len,
                     uint64_t workers[COALESCE_MAX_WORKERS / 64]);

/* The leader is done. Fills `workers` (a bitmap of COALESCE_MAX_WORKERS
 * bits) with the workers that have waiters; returns their count. */
int coalesce_release(struct coalesce *co, const char *key, size_t len,
                     uint64_t workers[COALESCE_MAX_WORKERS / 64]);

#endif
