/* SPDX-License-Identifier: MIT */
/*
 * bufpool.h - a loop's free list of I/O buffer blocks, so that a
 * connection holds buffer memory only while it has bytes pending.
 *
 * A conn takes a block when it queues output or must keep part of a read,
 * and puts it back once the bytes are gone (written, or decoded). The last
 * block put back is the first taken again, so busy connections share a few
 * blocks that stay hot in the cache, and an idle connection holds none.
 * The free list is bounded; a block put back beyond the bound, or a buffer
 * that grew past one block (a large frame), is freed instead. Taking and
 * putting a block costs a few pointer moves and no system call: the
 * request path can afford it.
 */
#ifndef FERRY_CORE_BUFPOOL_H
#define FERRY_CORE_BUFPOOL_H

#include <stddef.h>

#include "core/buf.h"
#include "ferry.h"

#define BUFPOOL_BLOCK (64 * 1024) /* bytes of each block */
#define BUFPOOL_MAX_FREE 64       /* default bound of the free list */

/* Embedded in its owner (the loop). */
struct bufpool {
    void *free;      /* owned: free blocks, linked through their first bytes */
    size_t n_free;   /* blocks on the free list */
    size_t max_free; /* blocks kept at most; more are freed */
    size_t n_held;   /* buffers given a block and not yet put back */
};

void bufpool_init(struct bufpool *p, size_t max_free);

/* Frees the free blocks; buffers still held must be put back first. */
void bufpool_release(struct bufpool *p);

/*
 * Gives b, which holds no memory, an empty block of BUFPOOL_BLOCK bytes:
 * the last one put back, or a new one. b may then grow past it as any
 * buffer does. FERRY_ENOMEM (b unchanged) when none can be allocated.
 */
ferry_err bufpool_get(struct bufpool *p, struct buf *b);

/*
 * Takes b's memory back, dropping whatever bytes it still holds: a block
 * goes on the free list while it is below its bound, anything else is
 * freed. b then holds no memory; harmless when it held none.
 */
void bufpool_put(struct bufpool *p, struct buf *b);

#endif
