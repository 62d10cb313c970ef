/* The nonces a peer's verified requests carried, kept while a replay of
 * the request could still pass the signature's clock check (until
 * ts + PEER_SKEW_MAX), so the reverse side accepts each signed request
 * once. Pure: the time is an argument.
 *
 * An open-addressing set (linear probing) that grows by doubling up to
 * twice `capacity` slots, so memory follows the peer's request rate and
 * never passes the limit. Entries leave only when their window is over,
 * in a rebuild that runs when the set is full or must grow, and only when
 * something has expired since the last one (`earliest`). */
#include <stdlib.h>
#include <string.h>
#include "peer/peer.h"

struct nonce_slot {
    int64_t expires; /* the last second a replay could verify */
    char nonce[PEER_NONCE_LEN];
    uint8_t used;
};

struct peer_nonces {
    uint32_t capacity, count, nslots, max_slots;
    int64_t earliest; /* no held entry expires before this */
    struct nonce_slot *slots;
};

#define NONCES_MIN_SLOTS 64

static uint32_t max_slots_for(uint32_t capacity)
{
    uint32_t n = NONCES_MIN_SLOTS;
    while (n < 2 * (uint64_t)capacity && n < (UINT32_C(1) << 31))
        n *= 2;
    return n;
}

struct peer_nonces *peer_nonces_new(uint32_t capacity)
{
    struct peer_nonces *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->capacity = capacity;
    t->max_slots = max_slots_for(capacity);
    t->nslots = NONCES_MIN_SLOTS;
    t->earliest = INT64_MAX;
    t->slots = calloc(t->nslots, sizeof *t->slots);
    if (!t->slots)
        abort();
    return t;
}

void peer_nonces_free(struct peer_nonces **t)
{
    if (!*t)
        return;
    free((*t)->slots);
    free(*t);
    *t = NULL;
}

uint32_t peer_nonces_count(const struct peer_nonces *t)
{
    return t->count;
}

static uint32_t hash_nonce(const char *p)
{
    uint32_t h = 2166136261u; /* FNV-1a: nonces are random, and only a verified peer's */
    for (int i = 0; i < PEER_NONCE_LEN; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* The slot holding `nonce`, or the empty one where it would go. */
static struct nonce_slot *probe(struct nonce_slot *slots, uint32_t nslots, const char *nonce)
{
    uint32_t i = hash_nonce(nonce) & (nslots - 1);
    while (slots[i].used && memcmp(slots[i].nonce, nonce, PEER_NONCE_LEN))
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

/* Move the entries still inside their window into `nslots` new slots. */
static void rebuild(struct peer_nonces *t, uint32_t nslots, int64_t now)
{
    struct nonce_slot *fresh = calloc(nslots, sizeof *fresh);
    if (!fresh)
        abort();
    t->count = 0;
    t->earliest = INT64_MAX;
    for (uint32_t i = 0; i < t->nslots; i++) {
        const struct nonce_slot *s = &t->slots[i];
        if (!s->used || s->expires < now)
            continue;
        *probe(fresh, nslots, s->nonce) = *s;
        t->count++;
        if (s->expires < t->earliest)
            t->earliest = s->expires;
    }
    free(t->slots);
    t->slots = fresh;
    t->nslots = nslots;
}

enum peer_nonce_result peer_nonces_check(struct peer_nonces *t, struct slice nonce, int64_t ts,
                                         int64_t now)
{
    if (nonce.len != PEER_NONCE_LEN)
        return PEER_NONCE_MALFORMED;
    int64_t expires = ts > INT64_MAX - PEER_SKEW_MAX ? INT64_MAX : ts + PEER_SKEW_MAX;
    struct nonce_slot *s = probe(t->slots, t->nslots, nonce.p);
    if (s->used) {
        if (s->expires >= now)
            return PEER_NONCE_REPLAYED;
        s->expires = expires; /* its window was over: it may be used again */
        if (expires < t->earliest)
            t->earliest = expires;
        return PEER_NONCE_FRESH;
    }
    /* Full, or over half the slots used: first drop what has expired,
     * then grow if there is still no room. */
    if (t->count >= t->capacity || 2 * (t->count + 1) > t->nslots) {
        if (t->earliest < now)
            rebuild(t, t->nslots, now);
        if (t->count >= t->capacity)
            return PEER_NONCE_FULL;
        if (2 * (t->count + 1) > t->nslots && t->nslots < t->max_slots)
            rebuild(t, t->nslots * 2, now);
        s = probe(t->slots, t->nslots, nonce.p);
    }
    s->used = 1;
    s->expires = expires;
    memcpy(s->nonce, nonce.p, PEER_NONCE_LEN);
    t->count++;
    if (expires < t->earliest)
        t->earliest = expires;
    return PEER_NONCE_FRESH;
}
