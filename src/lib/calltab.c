/* SPDX-License-Identifier: MIT */
/*
 * calltab.c - calls in flight by id (chained hash) and by deadline (binary
 * min-heap), with pooled records. Ids come from a counter, so id & mask
 * spreads them evenly over the buckets.
 */
#include "lib/calltab.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define CALLTAB_MIN_BUCKETS 64

void
ferry__calltab_init(struct ferry__calltab *t)
{
    memset(t, 0, sizeof(*t));
}

void
ferry__calltab_release(struct ferry__calltab *t)
{
    struct ferry__call *call;

    for (size_t i = 0; i < t->count; i++) {
        free(t->heap[i]);
    }
    while ((call = t->free) != NULL) {
        t->free = call->next;
        free(call);
    }
    free(t->buckets);
    free(t->heap);
    ferry__calltab_init(t);
}

struct ferry__call *
ferry__calltab_get(struct ferry__calltab *t)
{
    struct ferry__call *call = t->free;

    if (call != NULL) {
        t->free = call->next;
    } else {
        call = malloc(sizeof(*call));
        if (call == NULL) {
            return NULL;
        }
    }
    memset(call, 0, sizeof(*call));
    return call;
}

void
ferry__calltab_put(struct ferry__calltab *t, struct ferry__call *call)
{
    call->cb = NULL;
    call->arg = NULL;
    call->next = t->free;
    t->free = call;
}

static void
calltab_heap_set(struct ferry__calltab *t, size_t i, struct ferry__call *c)
{
    t->heap[i] = c;
    c->heap_idx = i;
}

static void
calltab_sift_up(struct ferry__calltab *t, size_t i)
{
    struct ferry__call *c = t->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent]->deadline_at <= c->deadline_at) {
            break;
        }
        calltab_heap_set(t, i, t->heap[parent]);
        i = parent;
    }
    calltab_heap_set(t, i, c);
}

static void
calltab_sift_down(struct ferry__calltab *t, size_t i)
{
    struct ferry__call *c = t->heap[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= t->count) {
            break;
        }
        if (r < t->count && t->heap[r]->deadline_at < t->heap[l]->deadline_at) {
            m = r;
        }
        if (c->deadline_at <= t->heap[m]->deadline_at) {
            break;
        }
        calltab_heap_set(t, i, t->heap[m]);
        i = m;
    }
    calltab_heap_set(t, i, c);
}

/* Doubles the buckets and rehashes every call. */
static ferry_err
calltab_grow_buckets(struct ferry__calltab *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : CALLTAB_MIN_BUCKETS;
    struct ferry__call **b = calloc(n, sizeof(*b));

    if (b == NULL) {
        return FERRY_ENOMEM;
    }
    for (size_t i = 0; i < t->count; i++) {
        struct ferry__call *c = t->heap[i];
        size_t h = (size_t)c->id & (n - 1);
        c->next = b[h];
        b[h] = c;
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
    return FERRY_OK;
}

ferry_err
ferry__calltab_insert(struct ferry__calltab *t, struct ferry__call *call)
{
    size_t h;

    if (t->count == t->heap_cap) {
        size_t cap = t->heap_cap ? t->heap_cap * 2 : CALLTAB_MIN_BUCKETS;
        struct ferry__call **heap = realloc(t->heap, cap * sizeof(*heap));
        if (heap == NULL) {
            return FERRY_ENOMEM;
        }
        t->heap = heap;
        t->heap_cap = cap;
    }
    if (t->count >= t->nbuckets && calltab_grow_buckets(t) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    h = (size_t)call->id & (t->nbuckets - 1);
    call->next = t->buckets[h];
    t->buckets[h] = call;
    t->heap[t->count] = call;
    call->heap_idx = t->count;
    t->count++;
    calltab_sift_up(t, call->heap_idx);
    return FERRY_OK;
}

struct ferry__call *
ferry__calltab_find(const struct ferry__calltab *t, uint64_t id)
{
    struct ferry__call *c;

    if (t->nbuckets == 0) {
        return NULL;
    }
    for (c = t->buckets[(size_t)id & (t->nbuckets - 1)]; c != NULL;
         c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

void
ferry__calltab_remove(struct ferry__calltab *t, struct ferry__call *call)
{
    struct ferry__call **pp = &t->buckets[(size_t)call->id & (t->nbuckets - 1)];
    size_t i = call->heap_idx;
    struct ferry__call *last;

    while (*pp != call) {
        assert(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = call->next;
    call->next = NULL;

    assert(i < t->count && t->heap[i] == call);
    t->count--;
    if (i == t->count) {
        return;
    }
    last = t->heap[t->count];
    calltab_heap_set(t, i, last);
    if (i > 0 && t->heap[(i - 1) / 2]->deadline_at > last->deadline_at) {
        calltab_sift_up(t, i);
    } else {
        calltab_sift_down(t, i);
    }
}

struct ferry__call **
ferry__calltab_take_all(struct ferry__calltab *t, size_t *n)
{
    struct ferry__call **calls = t->heap;

    *n = t->count;
    if (t->count == 0) {
        return NULL;
    }
    t->heap = NULL;
    t->heap_cap = 0;
    t->count = 0;
    memset(t->buckets, 0, t->nbuckets * sizeof(*t->buckets));
    return calls;
}
