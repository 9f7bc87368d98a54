/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the loop's binary min-heap of deadlines (see timer.h).
 */
#include "core/timer.h"

#include <assert.h>
#include <stdlib.h>

void
timer_heap_init(struct timer_heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->seq = 0;
}

void
timer_heap_release(struct timer_heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        h->v[i]->slot = TIMER_IDLE;
    }
    free(h->v);
    timer_heap_init(h);
}

void
timer_init(struct timer *t, timer_cb cb)
{
    t->when = 0;
    t->seq = 0;
    t->slot = TIMER_IDLE;
    t->cb = cb;
}

static bool
timer_before(const struct timer *a, const struct timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
timer_place(struct timer_heap *h, size_t i, struct timer *t)
{
    h->v[i] = t;
    t->slot = i;
}

static void
timer_sift_up(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, h->v[parent])) {
            break;
        }
        timer_place(h, i, h->v[parent]);
        i = parent;
    }
    timer_place(h, i, t);
}

static void
timer_sift_down(struct timer_heap *h, size_t i)
{
    struct timer *t = h->v[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n) {
            break;
        }
        if (child + 1 < h->n && timer_before(h->v[child + 1], h->v[child])) {
            child++;
        }
        if (!timer_before(h->v[child], t)) {
            break;
        }
        timer_place(h, i, h->v[child]);
        i = child;
    }
    timer_place(h, i, t);
}

ferry_err
timer_start(struct timer_heap *h, struct timer *t, uint64_t when)
{
    if (timer_is_armed(t)) {
        timer_stop(h, t);
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct timer **v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL) {
            return FERRY_ENOMEM;
        }
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    t->seq = h->seq++;
    timer_place(h, h->n++, t);
    timer_sift_up(h, t->slot);
    return FERRY_OK;
}

void
timer_stop(struct timer_heap *h, struct timer *t)
{
    size_t i = t->slot;
    struct timer *last;

    if (i == TIMER_IDLE) {
        return;
    }
    assert(i < h->n && h->v[i] == t);
    t->slot = TIMER_IDLE;
    last = h->v[--h->n];
    if (last == t) {
        return;
    }
    timer_place(h, i, last);
    if (i > 0 && timer_before(last, h->v[(i - 1) / 2])) {
        timer_sift_up(h, i);
    } else {
        timer_sift_down(h, i);
    }
}

uint64_t
timer_heap_next(const struct timer_heap *h)
{
    return h->n > 0 ? h->v[0]->when : UINT64_MAX;
}

size_t
timer_heap_run(struct timer_heap *h, uint64_t now)
{
    size_t fired = 0;

    while (h->n > 0 && h->v[0]->when <= now) {
        struct timer *t = h->v[0];
        timer_stop(h, t);
        fired++;
        t->cb(t);
    }
    return fired;
}
