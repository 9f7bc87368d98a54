/* SPDX-License-Identifier: MIT */
/*
 * buf.c - growable byte buffers for connection input and output.
 */
#include "core/buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 4096
/* Past this a buffer grows by this much at a time instead of doubling:
 * one growth of a 32 MiB output to 64 MiB is a jump the memory budget
 * (core/mem.c) cannot see coming, one of 4 MiB is within its slack.
 * Blocks that large are mmap'd, so growing one is a mremap, not a copy
 * (except under ASan, whose realloc copies). */
#define BUF_GROW_STEP (4 * 1024 * 1024)

void
buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
buf_release(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

ferry_err
buf_reserve(struct buf *b, size_t n)
{
    size_t len = buf_len(b);
    size_t cap;
    uint8_t *p;

    if (buf_room(b) >= n) {
        return FERRY_OK;
    }
    if (b->cap - len >= n && b->rpos > 0) {
        memmove(b->data, b->data + b->rpos, len);
        b->rpos = 0;
        b->wpos = len;
        return FERRY_OK;
    }
    if (n > SIZE_MAX / 2 - len) {
        return FERRY_ENOMEM;
    }
    cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < len + n && cap < BUF_GROW_STEP) {
        cap *= 2;
    }
    if (cap < len + n) {
        cap = (len + n + BUF_GROW_STEP - 1) / BUF_GROW_STEP * BUF_GROW_STEP;
    }
    if (b->rpos > 0 && len > 0) {
        memmove(b->data, b->data + b->rpos, len);
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        /* The slide above kept the contents valid; record it. */
        if (b->rpos > 0) {
            b->rpos = 0;
            b->wpos = len;
        }
        return FERRY_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    b->rpos = 0;
    b->wpos = len;
    return FERRY_OK;
}

uint8_t *
buf_prepare(struct buf *b, size_t n)
{
    if (buf_reserve(b, n) != FERRY_OK) {
        return NULL;
    }
    return buf_tail(b);
}

void
buf_commit(struct buf *b, size_t n)
{
    assert(n <= buf_room(b));
    b->wpos += n;
}

ferry_err
buf_append(struct buf *b, const void *p, size_t n)
{
    uint8_t *dst = buf_prepare(b, n);

    if (dst == NULL) {
        return FERRY_ENOMEM;
    }
    if (n > 0) {
        memcpy(dst, p, n);
    }
    buf_commit(b, n);
    return FERRY_OK;
}

void
buf_consume(struct buf *b, size_t n)
{
    assert(n <= buf_len(b));
    b->rpos += n;
    if (b->rpos == b->wpos) {
        b->rpos = 0;
        b->wpos = 0;
    }
}

void
buf_clear(struct buf *b)
{
    b->rpos = 0;
    b->wpos = 0;
}

void
buf_shrink(struct buf *b, size_t keep)
{
    if (buf_len(b) == 0 && b->cap > keep) {
        free(b->data);
        buf_init(b);
    }
}
