/* An intrusive doubly linked list: the worker's clients, idle upstreams,
 * parked and streaming exchanges. A type header (no I/O, no pipeline). */
#ifndef IDEM_LINK_H
#define IDEM_LINK_H
#include <stddef.h>

struct link {
    struct link *prev, *next;
};
static inline void link_init(struct link *l)
{
    l->prev = l->next = l;
}
static inline void link_insert(struct link *head, struct link *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}
static inline void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}
static inline int link_empty(const struct link *l)
{
    return l->next == l;
}
#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

#endif
