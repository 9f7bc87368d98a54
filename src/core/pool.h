/* SPDX-License-Identifier: MIT */
/*
 * pool.h - fixed-size object pools, so the request path allocates nothing
 * per request: ferryd's request records and HTTP connections, libferry's
 * call records and jobs come from here and go back here.
 *
 * Objects are carved from slabs that stay until the pool is released; a
 * freed object goes on a free list and is handed out again first. No
 * libuv: libferry links it too.
 */
#ifndef FERRY_CORE_POOL_H
#define FERRY_CORE_POOL_H

#include <stddef.h>

struct pool_slab;

/* Embedded in its owner (the broker, a call table, a worker). */
struct pool {
    size_t size;             /* bytes per object, rounded for alignment */
    size_t per_slab;         /* objects carved from each slab */
    void *free;              /* borrowed: free list through the objects */
    struct pool_slab *slabs; /* owned: every slab */
    size_t in_use;           /* objects handed out */
};

void pool_init(struct pool *p, size_t size, size_t per_slab);

/* Frees every slab; objects still in use become invalid. */
void pool_release(struct pool *p);

/* An object of the pool's size, uninitialised; NULL when out of memory. */
void *pool_get(struct pool *p);

/* Gives obj back; NULL is allowed. */
void pool_put(struct pool *p, void *obj);

#endif
