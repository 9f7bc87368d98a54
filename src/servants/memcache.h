/* SPDX-License-Identifier: MIT */
/*
 * memcache.h - the memcached face of ferry.cache: a listener on
 * memcache_listen whose connections speak memcached's text protocol (the
 * classic commands and the meta commands) on the same cache as
 * ferry.cache. Its connections are core/conn.c conns with a byte-stream
 * role (conn_ops.bytes), so they share the loop's buffers, the memory
 * budget, output limits and back-pressure with every other connection.
 */
#ifndef FERRY_SERVANTS_MEMCACHE_H
#define FERRY_SERVANTS_MEMCACHE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry.h"
#include "servants/memcache_parse.h"

struct cache_service;
struct loop;

struct memcache_face {
    struct loop *loop;              /* borrowed */
    struct cache_service *cs;       /* borrowed */
    struct cache *cache;            /* borrowed, cs's */
    size_t item_max;                /* largest data block */
    int64_t started_unix;           /* for stats uptime */
    uint64_t conns_total;           /* accepted */
    uint64_t conns_open;            /* open now */
    uint64_t cmds[MC_KIND_COUNT];   /* commands of each kind */
    uint64_t errors;                /* ERROR / CLIENT_ERROR / SERVER_ERROR */
    uint64_t closed_garbage;        /* closed for lines beyond the limits */
};

/* Listens on addr (host:port or unix:PATH) for memcached clients of cs's
 * cache. *out set only on success. */
ferry_err memcache_open(struct memcache_face **out, struct loop *l,
                        struct cache_service *cs, size_t item_max,
                        const char *addr);

/* Frees the face; its listener is closed with the loop's others. */
void memcache_close(struct memcache_face *f);

/* The face running in this process, or NULL (memcache_listen off). */
const struct memcache_face *memcache_current(void);

/* The "memcache" object of /v1/stats' "servants"; NULL out of memory. */
json_t *memcache_stats_json(const struct memcache_face *f);

/* The ferry_memcache_* families of /metrics. */
void memcache_metrics(const struct memcache_face *f, FILE *out);

#endif
