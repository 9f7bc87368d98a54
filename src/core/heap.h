/* SPDX-License-Identifier: MIT */
/*
 * heap.h - an intrusive binary min-heap of nodes ordered by a 64-bit key,
 * for "what comes first": ferryd's loop deadlines (timer.c builds on it)
 * and libferry's calls by deadline (lib/calltab.c).
 *
 * A node is embedded in its owner and only borrowed by the heap, which
 * keeps the node's index in the node itself so that any node leaves in
 * O(log n) without a search. Equal keys come out in the order they were
 * pushed. Nothing is allocated per node; the array of pointers grows by
 * doubling and is kept. No libuv: libferry links it too.
 */
#ifndef FERRY_CORE_HEAP_H
#define FERRY_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

#define HEAP_IDLE SIZE_MAX

/* Embedded in its owner (a timer, a call). */
struct heap_node {
    uint64_t key; /* the order: smallest first */
    uint64_t seq; /* tie-breaker: the earlier push first */
    size_t slot;  /* index in the heap, HEAP_IDLE when in none */
};

/* Embedded in its owner (the timer heap of a loop, a call table). */
struct heap {
    struct heap_node **v; /* owned array of borrowed nodes */
    size_t n;             /* nodes in the heap */
    size_t cap;           /* slots in v */
    uint64_t seq;         /* next push sequence number */
};

void heap_init(struct heap *h);

/* Frees the array; every node still in the heap is left idle. */
void heap_release(struct heap *h);

/* Marks a node as in no heap. */
void heap_node_init(struct heap_node *x);

static inline bool
heap_node_is_queued(const struct heap_node *x)
{
    return x->slot != HEAP_IDLE;
}

/*
 * Puts x in the heap with this key; a node already in it moves to its new
 * place (and counts as pushed now). FERRY_ENOMEM when the heap cannot
 * grow; x is then left as it was.
 */
ferry_err heap_push(struct heap *h, struct heap_node *x, uint64_t key);

/* Takes x out of the heap; harmless when it is idle. */
void heap_remove(struct heap *h, struct heap_node *x);

/* The node with the smallest key, or NULL when the heap is empty. */
static inline struct heap_node *
heap_first(const struct heap *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}

/*
 * Empties the heap and hands over its array: returns the owned array of
 * *n nodes, each now idle, in no particular order (free it with free()),
 * or NULL when the heap was empty. The heap stays usable.
 */
struct heap_node **heap_take_all(struct heap *h, size_t *n);

#endif
