/* SPDX-License-Identifier: MIT */
/*
 * calltab.h - the caller's table of calls in flight: found by request id
 * when a reply comes back, and ordered by deadline so that the earliest one
 * to expire is always at hand.
 *
 * Call records are pooled: a finished call goes back to the pool and the
 * next call reuses it, so a busy caller allocates nothing per call once
 * the table has grown to its working size. The pool, the id index and the
 * deadline order are core's pool, hash map and heap, as in ferryd.
 */
#ifndef FERRY_LIB_CALLTAB_H
#define FERRY_LIB_CALLTAB_H

#include <stddef.h>
#include <stdint.h>

#include "core/heap.h"
#include "core/list.h"
#include "core/map.h"
#include "core/pool.h"
#include "ferry.h"

/* One call in flight; owned by the table's pool. */
struct ferry__call {
    uint64_t id;               /* request id on the wire */
    struct heap_node deadline; /* key: monotonic ms when it fails locally */
    ferry_reply_cb cb;         /* completion, run exactly once */
    void *arg;                 /* borrowed: passed to cb */
};

/* Embedded in the client. */
struct ferry__calltab {
    struct map by_id;        /* id -> borrowed call, every call in flight */
    struct heap by_deadline; /* the same calls, earliest deadline first */
    struct pool records;     /* every record, in the table or not */
};

void ferry__calltab_init(struct ferry__calltab *t);

/* Frees every record, pooled or in the table. */
void ferry__calltab_release(struct ferry__calltab *t);

/* A record from the pool, or a new one; NULL when out of memory. */
struct ferry__call *ferry__calltab_get(struct ferry__calltab *t);

/* Gives a record that is not in the table back to the pool. */
void ferry__calltab_put(struct ferry__calltab *t, struct ferry__call *call);

/* Adds a call whose id is set, to fail locally at deadline_at; the table
 * is unchanged on FERRY_ENOMEM. */
ferry_err ferry__calltab_insert(struct ferry__calltab *t,
                                struct ferry__call *call, uint64_t deadline_at);

/* The call with this id, or NULL. */
static inline struct ferry__call *
ferry__calltab_find(const struct ferry__calltab *t, uint64_t id)
{
    return map_get(&t->by_id, id);
}

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

/* Calls in the table. */
static inline size_t
ferry__calltab_count(const struct ferry__calltab *t)
{
    return t->by_id.n;
}

/* The call with the earliest deadline, or NULL when empty. */
static inline struct ferry__call *
ferry__calltab_first(const struct ferry__calltab *t)
{
    struct heap_node *x = heap_first(&t->by_deadline);

    return x != NULL ? container_of(x, struct ferry__call, deadline) : NULL;
}

/* When the call fails locally, in monotonic ms. */
static inline uint64_t
ferry__calltab_deadline(const struct ferry__call *call)
{
    return call->deadline.key;
}

#endif
