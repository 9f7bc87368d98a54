/* SPDX-License-Identifier: MIT */
/*
 * timer.h - the one deadline structure of a loop: timers in a binary
 * min-heap (core/heap.h) ordered by expiry time in milliseconds; among
 * equal expiries, the earlier arming fires first.
 *
 * Request deadlines, handshake time-outs and heartbeat checks all live
 * here; the loop arms a single uv_timer_t for the earliest entry (see
 * loop.c), so thousands of requests in flight cost one OS timer. A timer is
 * embedded in its owner, and the heap only borrows it: the owner must stop
 * it before freeing itself.
 */
#ifndef FERRY_CORE_TIMER_H
#define FERRY_CORE_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/heap.h"
#include "ferry.h"

struct timer;
typedef void (*timer_cb)(struct timer *t);

/* Embedded in its owner (a request, a connection). */
struct timer {
    struct heap_node node; /* key: expiry in loop ms; seq: arming order */
    timer_cb cb;           /* called once when the timer expires */
};

/* Owned by the loop. */
struct timer_heap {
    struct heap heap; /* the armed timers' nodes */
};

void timer_heap_init(struct timer_heap *h);
void timer_heap_release(struct timer_heap *h);

void timer_init(struct timer *t, timer_cb cb);

static inline bool
timer_is_armed(const struct timer *t)
{
    return heap_node_is_queued(&t->node);
}

/* The expiry of the last arming, in loop milliseconds. */
static inline uint64_t
timer_when(const struct timer *t)
{
    return t->node.key;
}

/*
 * Arms t to fire at when (re-arming moves it). Returns FERRY_ENOMEM when
 * the heap cannot grow; t is then left as it was.
 */
ferry_err timer_start(struct timer_heap *h, struct timer *t, uint64_t when);

/* Disarms t; harmless when it is not armed. */
void timer_stop(struct timer_heap *h, struct timer *t);

/* The earliest expiry, or UINT64_MAX when nothing is armed. */
uint64_t timer_heap_next(const struct timer_heap *h);

/*
 * Fires, in expiry order, every timer due at or before now. A callback may
 * start and stop timers, itself included. Returns how many fired.
 */
size_t timer_heap_run(struct timer_heap *h, uint64_t now);

#endif
