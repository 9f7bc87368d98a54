/* SPDX-License-Identifier: MIT */
/*
 * calltab.h - the caller's table of calls in flight: found by request id
 * when a reply comes back, and ordered by deadline so that the earliest one
 * to expire is always at hand.
 *
 * Call records are pooled: a finished call goes back on a free list and
 * the next call reuses it, so a busy caller allocates nothing per call once
 * the table has grown to its working size.
 */
#ifndef FERRY_LIB_CALLTAB_H
#define FERRY_LIB_CALLTAB_H

#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

/* One call in flight; owned by the table (or its free list). */
struct ferry__call {
    uint64_t id;              /* request id on the wire */
    uint64_t deadline_at;     /* monotonic ms when it fails locally */
    ferry_reply_cb cb;        /* completion, run exactly once */
    void *arg;                /* borrowed: passed to cb */
    struct ferry__call *next; /* hash chain, or free list */
    size_t heap_idx;          /* position in the deadline heap */
};

/* Embedded in the client. */
struct ferry__calltab {
    struct ferry__call **buckets; /* owned: hash chains by id */
    size_t nbuckets;              /* a power of two, or 0 */
    struct ferry__call **heap;    /* owned: min-heap by deadline_at */
    size_t count;                 /* calls in the table (and the heap) */
    size_t heap_cap;              /* slots in heap */
    struct ferry__call *free;     /* owned: pooled records */
};

void ferry__calltab_init(struct ferry__calltab *t);

/* Frees every record, pooled or in the table. */
void ferry__calltab_release(struct ferry__calltab *t);

/* A record from the pool, or a new one; NULL when out of memory. */
struct ferry__call *ferry__calltab_get(struct ferry__calltab *t);

/* Gives a record that is not in the table back to the pool. */
void ferry__calltab_put(struct ferry__calltab *t, struct ferry__call *call);

/* Adds a call whose id and deadline_at are set; FERRY_ENOMEM. */
ferry_err ferry__calltab_insert(struct ferry__calltab *t,
                                struct ferry__call *call);

/* The call with this id, or NULL. */
struct ferry__call *ferry__calltab_find(const struct ferry__calltab *t,
                                        uint64_t id);

/* Takes a call out of the table (the record stays the caller's). */
void ferry__calltab_remove(struct ferry__calltab *t, struct ferry__call *call);

/*
 * Empties the table and hands its calls to the caller: returns an owned
 * array of *n records (free it with free() after putting each record back)
 * or NULL when the table was empty. Records put back meanwhile, and calls
 * inserted meanwhile, are unaffected.
 */
struct ferry__call **ferry__calltab_take_all(struct ferry__calltab *t,
                                             size_t *n);

/* The call with the earliest deadline, or NULL when empty. */
static inline struct ferry__call *
ferry__calltab_first(const struct ferry__calltab *t)
{
    return t->count > 0 ? t->heap[0] : NULL;
}

#endif
