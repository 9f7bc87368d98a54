/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the loop's deadlines (see timer.h): a timer is a heap node
 * with a callback, and running the heap fires the nodes that are due.
 */
#include "core/timer.h"

#include "core/list.h"

void
timer_heap_init(struct timer_heap *h)
{
    heap_init(&h->heap);
}

void
timer_heap_release(struct timer_heap *h)
{
    heap_release(&h->heap);
}

void
timer_init(struct timer *t, timer_cb cb)
{
    heap_node_init(&t->node);
    t->cb = cb;
}

ferry_err
timer_start(struct timer_heap *h, struct timer *t, uint64_t when)
{
    return heap_push(&h->heap, &t->node, when);
}

void
timer_stop(struct timer_heap *h, struct timer *t)
{
    heap_remove(&h->heap, &t->node);
}

uint64_t
timer_heap_next(const struct timer_heap *h)
{
    const struct heap_node *first = heap_first(&h->heap);

    return first != NULL ? first->key : UINT64_MAX;
}

size_t
timer_heap_run(struct timer_heap *h, uint64_t now)
{
    struct heap_node *first;
    size_t fired = 0;

    while ((first = heap_first(&h->heap)) != NULL && first->key <= now) {
        struct timer *t = container_of(first, struct timer, node);
        heap_remove(&h->heap, first);
        fired++;
        t->cb(t);
    }
    return fired;
}
