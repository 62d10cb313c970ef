/* What a body's normalization came to, remembered by the body's raw
 * SHA-256: a body sent again byte for byte (the usual case for a hit)
 * skips decoding and JSON work. Direct-mapped and owned by one worker, so
 * no locks; a collision just evicts. Pure. */
#ifndef IDEM_RULES_MEMO_H
#define IDEM_RULES_MEMO_H
#include <stdint.h>

struct body_memo;

/* n entries (rounded up to a power of two); NULL when n is 0. */
struct body_memo *body_memo_new(unsigned n);
void body_memo_free(struct body_memo *m);

/* `tag` covers every other input of the normalization (coding, media
 * type class, limits). 1 and the remembered digest and NORM_* bits (or
 * -1), or 0 when not remembered. */
int body_memo_get(const struct body_memo *m, const unsigned char raw[32], uint32_t tag,
                  unsigned char keyed[32], int *what);
void body_memo_put(struct body_memo *m, const unsigned char raw[32], uint32_t tag,
                   const unsigned char keyed[32], int what);

#endif
