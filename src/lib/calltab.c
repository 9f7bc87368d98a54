/* SPDX-License-Identifier: MIT */
/*
 * calltab.c - calls in flight by id (core/map.h) and by deadline
 * (core/heap.h), with pooled records.
 */
#include "lib/calltab.h"

#include <assert.h>
#include <string.h>

#define CALLTAB_SLAB 64 /* records allocated at once */

/* take_all hands over the heap's array of node pointers as the array of
 * call pointers, rewriting it in place. */
_Static_assert(sizeof(struct heap_node *) == sizeof(struct ferry__call *),
               "node and call pointers differ in size");

void
ferry__calltab_init(struct ferry__calltab *t)
{
    map_init(&t->by_id);
    heap_init(&t->by_deadline);
    pool_init(&t->records, sizeof(struct ferry__call), CALLTAB_SLAB);
}

void
ferry__calltab_release(struct ferry__calltab *t)
{
    map_release(&t->by_id);
    heap_release(&t->by_deadline);
    pool_release(&t->records);
    ferry__calltab_init(t);
}

struct ferry__call *
ferry__calltab_get(struct ferry__calltab *t)
{
    struct ferry__call *call = pool_get(&t->records);

    if (call == NULL) {
        return NULL;
    }
    memset(call, 0, sizeof(*call));
    heap_node_init(&call->deadline);
    return call;
}

void
ferry__calltab_put(struct ferry__calltab *t, struct ferry__call *call)
{
    assert(!heap_node_is_queued(&call->deadline));
    pool_put(&t->records, call);
}

ferry_err
ferry__calltab_insert(struct ferry__calltab *t, struct ferry__call *call,
                      uint64_t deadline_at)
{
    if (map_put(&t->by_id, call->id, call) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    if (heap_push(&t->by_deadline, &call->deadline, deadline_at) != FERRY_OK) {
        (void)map_del(&t->by_id, call->id);
        return FERRY_ENOMEM;
    }
    return FERRY_OK;
}

void
ferry__calltab_remove(struct ferry__calltab *t, struct ferry__call *call)
{
    void *was = map_del(&t->by_id, call->id);

    assert(was == call);
    (void)was;
    heap_remove(&t->by_deadline, &call->deadline);
}

struct ferry__call **
ferry__calltab_take_all(struct ferry__calltab *t, size_t *n)
{
    struct heap_node **nodes = heap_take_all(&t->by_deadline, n);
    struct ferry__call **calls = (struct ferry__call **)(void *)nodes;

    if (nodes == NULL) {
        return NULL;
    }
    map_clear(&t->by_id);
    /* The heap's array becomes the array of calls, slot by slot. */
    for (size_t i = 0; i < *n; i++) {
        calls[i] = container_of(nodes[i], struct ferry__call, deadline);
    }
    return calls;
}
