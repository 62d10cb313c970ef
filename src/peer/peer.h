/* The digest handshake between a forward and a reverse idemcache (DESIGN.md,
 * "Peer protocol"): authentication, the byte-bounded FIFO of bodies that
 * each side keeps in step, and the dcz coding. Pure: no I/O, no clock. */
#ifndef IDEM_PEER_H
#define IDEM_PEER_H
#include <stddef.h>
#include <stdint.h>
#include "http/http.h"

#define PEER_SECRET_MAX 256
#define PEER_SIG_LEN    44 /* base64 of 32 bytes */
#define PEER_SKEW_MAX   60 /* seconds a signature stays good */
#define PEER_NONCE_LEN  22 /* base64url, unpadded, of 16 random bytes */

/* sig = base64(HMAC-SHA-256(secret, id "\n" scheme "\n" method "\n"
 * target "\n" ts "\n" nonce "\n" digest)), digest being the request's
 * Idem-Digest value or empty (docs/peer-protocol.md, version 3). */
void peer_sign(const unsigned char *secret, size_t secret_len, struct slice id, struct slice scheme,
               struct slice method, struct slice target, int64_t ts, struct slice nonce,
               struct slice digest, char sig[PEER_SIG_LEN + 1]);

/* A fresh nonce from 16 random bytes (`random` is the caller's: no I/O
 * here), as PEER_NONCE_LEN base64url characters and a NUL. */
void peer_nonce_encode(const unsigned char random[16], char out[PEER_NONCE_LEN + 1]);

/* Idem-Peer: id=<name>, scheme=<http|https>, ts=<unix seconds>,
 * nonce=<22 base64url>, sig=<base64>. 0 with all five present (a nonce of
 * any other length or alphabet, a scheme other than http/https, is
 * refused), -1 otherwise. */
struct peer_claim {
    struct slice id, scheme, sig, nonce;
    int64_t ts;
};
int peer_parse(struct slice value, struct peer_claim *out);

/* 1 when the claim (its id, scheme and nonce included) is signed with `secret` and
 * within PEER_SKEW_MAX of now. */
int peer_verify(const struct peer_claim *c, const unsigned char *secret, size_t secret_len,
                struct slice method, struct slice target, struct slice digest, int64_t now);

/* Replay protection: the nonces a peer's verified requests carried, while
 * their signatures could still verify (ts + PEER_SKEW_MAX), bounded by
 * `capacity` entries. Time is an input; a caller serializes access (one
 * table per peer, under the peer's lock). Checked after the signature, so
 * only the peer's own requests ever fill it.
 *
 *   PEER_NONCE_FRESH     not seen inside the window: now remembered
 *   PEER_NONCE_REPLAYED  seen inside the window: refuse the request
 *   PEER_NONCE_FULL      `capacity` nonces younger than the window are
 *                        held: refuse the request rather than forget one,
 *                        which would let its request be replayed
 *
 * Only entries whose window is over are ever dropped. */
enum peer_nonce_result {
    PEER_NONCE_FRESH,
    PEER_NONCE_REPLAYED,
    PEER_NONCE_FULL,
    PEER_NONCE_MALFORMED, /* not PEER_NONCE_LEN long: peer_parse lets none through */
};
struct peer_nonces;
struct peer_nonces *peer_nonces_new(uint32_t capacity);
void peer_nonces_free(struct peer_nonces **t);
enum peer_nonce_result peer_nonces_check(struct peer_nonces *t, struct slice nonce, int64_t ts,
                                         int64_t now);
/* How many are held (expired ones not yet swept included). */
uint32_t peer_nonces_count(const struct peer_nonces *t);

/* Idem-Store: epoch=<1..16 chars>, capacity=<decimal bytes>, sent by the
 * reverse side on every response to a peer. 0 with both filled in (the
 * epoch NUL-terminated; a capacity past 2^63 saturates there), -1 when
 * either is missing or malformed: then nothing is learned from it. */
#define PEER_EPOCH_MAX 16
int peer_store_parse(struct slice value, char epoch[PEER_EPOCH_MAX + 1], uint64_t *capacity);

/* A FIFO of bodies by SHA-256, bounded in bytes. The reverse side keeps
 * the bodies; the forward side keeps only the digests and sizes, and runs
 * the same insertions, so both agree on what is held. Inserting a digest
 * already held changes nothing; a body whose cost exceeds the capacity is
 * never held.
 *
 * Each entry is charged peer_fifo_cost(len): its body and a fixed
 * PEER_FIFO_ENTRY_COST for the entry, its index slot and the allocator's
 * share, so that many tiny bodies cannot grow the store far past its
 * capacity (issue 10, finding 6). Both sides use this one formula, a
 * protocol constant rather than sizeof, so the mirror stays in step
 * whatever each side's build. */
#define PEER_FIFO_ENTRY_COST 128
static inline uint64_t peer_fifo_cost(uint64_t len)
{
    return len > UINT64_MAX - PEER_FIFO_ENTRY_COST ? UINT64_MAX : len + PEER_FIFO_ENTRY_COST;
}
struct peer_fifo;
struct peer_fifo *peer_fifo_new(uint64_t capacity, int keep_bodies);
void peer_fifo_free(struct peer_fifo *f);
void peer_fifo_reset(struct peer_fifo *f, uint64_t capacity);
uint64_t peer_fifo_capacity(const struct peer_fifo *f);
/* What the held entries are charged (never above the capacity), and how many. */
uint64_t peer_fifo_used(const struct peer_fifo *f);
uint64_t peer_fifo_count(const struct peer_fifo *f);
void peer_fifo_insert(struct peer_fifo *f, const unsigned char digest[32], const void *body,
                      size_t len);
/* 1 and (keep_bodies) a pointer to the held body, valid until the next
 * insert or reset; 0 when not held. */
int peer_fifo_find(const struct peer_fifo *f, const unsigned char digest[32], const void **body,
                   size_t *len);

/* dcz (RFC 9842 §4): the 8-byte magic, the SHA-256 of the dictionary, then
 * a zstd frame made with the dictionary as raw content. */
#define DCZ_HEADER_LEN 40
/* malloc'd, *out_len; NULL on failure. */
unsigned char *peer_dcz_encode(const void *body, size_t len, const void *dict, size_t dict_len,
                               const unsigned char dict_digest[32], size_t *out_len);
/* The body, malloc'd; NULL when the header names another dictionary, the
 * frame is broken or the result would exceed max. */
unsigned char *peer_dcz_decode(const void *in, size_t len, const void *dict, size_t dict_len,
                               const unsigned char dict_digest[32], size_t max, size_t *out_len);

/* "sha-256=:<base64>:" for a digest, and back. */
void peer_digest_field(const unsigned char digest[32], char out[64]);
int peer_digest_parse(struct slice v, unsigned char digest[32]);

#endif
