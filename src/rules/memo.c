#include <stdlib.h>
#include <string.h>
#include "rules/memo.h"

struct memo_entry {
    unsigned char raw[32];
    unsigned char keyed[32];
    uint32_t tag;
    int what;
    int used;
};

struct body_memo {
    unsigned mask;
    struct memo_entry e[];
};

struct body_memo *body_memo_new(unsigned n)
{
    if (!n)
        return NULL;
    unsigned size = 1;
    while (size < n)
        size <<= 1;
    struct body_memo *m = calloc(1, sizeof *m + size * sizeof m->e[0]);
    if (m)
        m->mask = size - 1;
    return m;
}

void body_memo_free(struct body_memo *m)
{
    free(m);
}

static struct memo_entry *slot(const struct body_memo *m, const unsigned char raw[32])
{
    uint32_t h; /* the digest is uniform: any four bytes index well */
    memcpy(&h, raw, sizeof h);
    return (struct memo_entry *)&m->e[h & m->mask];
}

int body_memo_get(const struct body_memo *m, const unsigned char raw[32], uint32_t tag,
                  unsigned char keyed[32], int *what)
{
    if (!m)
        return 0;
    const struct memo_entry *e = slot(m, raw);
    if (!e->used || e->tag != tag || memcmp(e->raw, raw, 32))
        return 0;
    memcpy(keyed, e->keyed, 32);
    *what = e->what;
    return 1;
}

void body_memo_put(struct body_memo *m, const unsigned char raw[32], uint32_t tag,
                   const unsigned char keyed[32], int what)
{
    if (!m)
        return;
    struct memo_entry *e = slot(m, raw);
    memcpy(e->raw, raw, 32);
    memcpy(e->keyed, keyed, 32);
    e->tag = tag;
    e->what = what;
    e->used = 1;
}
