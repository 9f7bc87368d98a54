/* SPDX-License-Identifier: MIT */
/*
 * heap.c - the intrusive binary min-heap (see heap.h): sift up and down,
 * with each move written back into the node's slot.
 */
#include "core/heap.h"

#include <assert.h>
#include <stdlib.h>

#define HEAP_MIN_CAP 64

void
heap_init(struct heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->seq = 0;
}

void
heap_release(struct heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        h->v[i]->slot = HEAP_IDLE;
    }
    free(h->v);
    heap_init(h);
}

void
heap_node_init(struct heap_node *x)
{
    x->key = 0;
    x->seq = 0;
    x->slot = HEAP_IDLE;
}

static bool
heap_before(const struct heap_node *a, const struct heap_node *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void
heap_place(struct heap *h, size_t i, struct heap_node *x)
{
    h->v[i] = x;
    x->slot = i;
}

static void
heap_sift_up(struct heap *h, size_t i)
{
    struct heap_node *x = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(x, h->v[parent])) {
            break;
        }
        heap_place(h, i, h->v[parent]);
        i = parent;
    }
    heap_place(h, i, x);
}

static void
heap_sift_down(struct heap *h, size_t i)
{
    struct heap_node *x = h->v[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) {
            break;
        }
        if (child + 1 < h->n && heap_before(h->v[child + 1], h->v[child])) {
            child++;
        }
        if (!heap_before(h->v[child], x)) {
            break;
        }
        heap_place(h, i, h->v[child]);
        i = child;
    }
    heap_place(h, i, x);
}

/* Restores the order around slot i, whose node may have moved either way. */
static void
heap_fix(struct heap *h, size_t i)
{
    if (i > 0 && heap_before(h->v[i], h->v[(i - 1) / 2])) {
        heap_sift_up(h, i);
    } else {
        heap_sift_down(h, i);
    }
}

ferry_err
heap_push(struct heap *h, struct heap_node *x, uint64_t key)
{
    size_t i = x->slot;

    if (i == HEAP_IDLE) {
        if (h->n == h->cap) {
            size_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
            struct heap_node **v = realloc(h->v, cap * sizeof(*v));
            if (v == NULL) {
                return FERRY_ENOMEM;
            }
            h->v = v;
            h->cap = cap;
        }
        i = h->n++;
    } else {
        assert(i < h->n && h->v[i] == x);
    }
    x->key = key;
    x->seq = h->seq++;
    heap_place(h, i, x);
    heap_fix(h, i);
    return FERRY_OK;
}

void
heap_remove(struct heap *h, struct heap_node *x)
{
    size_t i = x->slot;
    struct heap_node *last;

    if (i == HEAP_IDLE) {
        return;
    }
    assert(i < h->n && h->v[i] == x);
    x->slot = HEAP_IDLE;
    last = h->v[--h->n];
    if (last == x) {
        return;
    }
    heap_place(h, i, last);
    heap_fix(h, i);
}

struct heap_node **
heap_take_all(struct heap *h, size_t *n)
{
    struct heap_node **v = h->v;

    *n = h->n;
    if (h->n == 0) {
        return NULL;
    }
    for (size_t i = 0; i < h->n; i++) {
        v[i]->slot = HEAP_IDLE;
    }
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    return v;
}
