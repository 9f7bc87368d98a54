/* SPDX-License-Identifier: MIT */
/*
 * buf.h - a growable byte buffer with a read position, used for every
 * connection's input and output in ferryd, libferry and the ferry command.
 *
 * Bytes are appended at the end and consumed from the front; consumed space
 * is reclaimed by sliding the rest down only when more room is needed, so a
 * busy connection reuses one allocation instead of making one per frame.
 */
#ifndef FERRY_CORE_BUF_H
#define FERRY_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

/* Owned by whoever embeds it. data[rpos..wpos) holds the unread bytes. */
struct buf {
    uint8_t *data; /* owned, cap bytes */
    size_t cap;    /* allocated bytes */
    size_t rpos;   /* first unread byte */
    size_t wpos;   /* end of written bytes */
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);

/* Unread bytes. */
static inline size_t
buf_len(const struct buf *b)
{
    return b->wpos - b->rpos;
}

static inline uint8_t *
buf_head(const struct buf *b)
{
    return b->data + b->rpos;
}

static inline uint8_t *
buf_tail(const struct buf *b)
{
    return b->data + b->wpos;
}

/* Free space after the written bytes. */
static inline size_t
buf_room(const struct buf *b)
{
    return b->cap - b->wpos;
}

/*
 * Makes room for at least n more bytes after the written ones, sliding
 * unread bytes to the front or growing (doubling) as needed. Returns
 * FERRY_ENOMEM and leaves the buffer unchanged when it cannot.
 */
ferry_err buf_reserve(struct buf *b, size_t n);

/* Reserves n bytes and returns where to write them; NULL when out of
 * memory. Call buf_commit() with the bytes actually written. */
uint8_t *buf_prepare(struct buf *b, size_t n);

/* Marks n bytes after the written ones as written. */
void buf_commit(struct buf *b, size_t n);

/* Appends a copy of n bytes. */
ferry_err buf_append(struct buf *b, const void *p, size_t n);

/* Drops n bytes from the front; empty resets to the start. */
void buf_consume(struct buf *b, size_t n);

/* Drops all bytes; keeps the allocation. */
void buf_clear(struct buf *b);

/*
 * Gives back memory of a buffer that grew past keep bytes once it is empty,
 * so one large frame does not pin a large allocation for good.
 */
void buf_shrink(struct buf *b, size_t keep);

#endif
