/* SPDX-License-Identifier: MIT */
/*
 * pool.c - slab-backed free-list pools (see pool.h).
 */
#include "core/pool.h"

#include <stdalign.h>
#include <stdlib.h>

struct pool_slab {
    struct pool_slab *next; /* owned: the slab allocated before */
    alignas(max_align_t) unsigned char mem[]; /* the objects */
};

void
pool_init(struct pool *p, size_t size, size_t per_slab)
{
    size_t align = alignof(max_align_t);

    if (size < sizeof(void *)) {
        size = sizeof(void *);
    }
    p->size = (size + align - 1) / align * align;
    p->per_slab = per_slab > 0 ? per_slab : 64;
    p->free = NULL;
    p->slabs = NULL;
    p->in_use = 0;
}

void
pool_release(struct pool *p)
{
    struct pool_slab *s = p->slabs;

    while (s != NULL) {
        struct pool_slab *next = s->next;
        free(s);
        s = next;
    }
    p->slabs = NULL;
    p->free = NULL;
    p->in_use = 0;
}

static int
pool_grow(struct pool *p)
{
    struct pool_slab *s = malloc(sizeof(*s) + p->size * p->per_slab);

    if (s == NULL) {
        return -1;
    }
    s->next = p->slabs;
    p->slabs = s;
    for (size_t i = p->per_slab; i > 0; i--) {
        void *obj = s->mem + (i - 1) * p->size;
        *(void **)obj = p->free;
        p->free = obj;
    }
    return 0;
}

void *
pool_get(struct pool *p)
{
    void *obj;

    if (p->free == NULL && pool_grow(p) != 0) {
        return NULL;
    }
    obj = p->free;
    p->free = *(void **)obj;
    p->in_use++;
    return obj;
}

void
pool_put(struct pool *p, void *obj)
{
    if (obj == NULL) {
        return;
    }
    *(void **)obj = p->free;
    p->free = obj;
    p->in_use--;
}
