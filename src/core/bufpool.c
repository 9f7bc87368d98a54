/* SPDX-License-Identifier: MIT */
/*
 * bufpool.c - the bounded LIFO free list of buffer blocks (see bufpool.h).
 */
#include "core/bufpool.h"

#include <assert.h>
#include <stdlib.h>

void
bufpool_init(struct bufpool *p, size_t max_free)
{
    p->free = NULL;
    p->n_free = 0;
    p->max_free = max_free;
    p->n_held = 0;
}

void
bufpool_release(struct bufpool *p)
{
    assert(p->n_held == 0);
    while (p->free != NULL) {
        void *next = *(void **)p->free;
        free(p->free);
        p->free = next;
    }
    p->n_free = 0;
}

ferry_err
bufpool_get(struct bufpool *p, struct buf *b)
{
    uint8_t *block;

    assert(b->data == NULL);
    if (p->free != NULL) {
        block = p->free;
        p->free = *(void **)block;
        p->n_free--;
    } else {
        block = malloc(BUFPOOL_BLOCK);
        if (block == NULL) {
            return FERRY_ENOMEM;
        }
    }
    b->data = block;
    b->cap = BUFPOOL_BLOCK;
    b->rpos = 0;
    b->wpos = 0;
    p->n_held++;
    return FERRY_OK;
}

void
bufpool_put(struct bufpool *p, struct buf *b)
{
    if (b->data == NULL) {
        return;
    }
    assert(p->n_held > 0);
    p->n_held--;
    if (b->cap == BUFPOOL_BLOCK && p->n_free < p->max_free) {
        *(void **)b->data = p->free;
        p->free = b->data;
        p->n_free++;
    } else {
        free(b->data);
    }
    buf_init(b);
}
