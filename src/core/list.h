/* SPDX-License-Identifier: MIT */
/*
 * list.h - intrusive circular doubly-linked lists, used by ferryd for the
 * dirty-connection list, service queues and the requests held by a worker.
 *
 * A node embedded in an object costs no allocation; removal is O(1), so an
 * object can leave any list it is on when it is freed.
 */
#ifndef FERRY_CORE_LIST_H
#define FERRY_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* A list head, or a node embedded in an element; owned by its container. */
struct list {
    struct list *prev; /* borrowed */
    struct list *next; /* borrowed */
};

#define container_of(ptr, type, member)                                        \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Makes an empty head, or marks a node as on no list. */
static inline void
list_init(struct list *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool
list_is_empty(const struct list *l)
{
    return l->next == l;
}

/* Appends node n before head h, at the tail of the list. */
static inline void
list_push_back(struct list *h, struct list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Removes n from whatever list it is on; harmless when on none. */
static inline void
list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* Moves every node of list from to the tail of list to; from ends empty. */
static inline void
list_splice(struct list *to, struct list *from)
{
    if (list_is_empty(from)) {
        return;
    }
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}

#endif
