/* SPDX-License-Identifier: MIT */
/*
 * cache_service.h - the service ferry.cache: the in-memory cache of
 * src/cache/ served as an in-daemon backend (broker/backend.h), with the
 * payload format of docs/services.md (servants/cache_codec.h decodes it).
 *
 * It owns the cache, the clock the cache runs on, and a reclaim timer
 * that frees expired items a budget at a time and hands memory back to
 * the system (malloc_trim) after heavy eviction. The other faces of the
 * same cache reach it through loop->servants->cache: the memcached face
 * (servants/memcache.c) with the accessors below, the HTTP routes
 * (/v1/cache/{key}) through the broker like any caller, /v1/stats and
 * /metrics with the stats functions.
 */
#ifndef FERRY_SERVANTS_CACHE_SERVICE_H
#define FERRY_SERVANTS_CACHE_SERVICE_H

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>

#include "ferry.h"

struct broker;
struct cache;
struct cache_service;
struct config;
struct loop;

/* The service name, registered with broker_add_backend(). */
#define CACHE_SERVICE_NAME "ferry.cache"
/* Items examined per reclaim step, and how often a step runs. */
#define CACHE_SERVICE_RECLAIM_BUDGET 1000
#define CACHE_SERVICE_RECLAIM_MS 100

/*
 * Creates the cache with cfg's cache_max_bytes / cache_item_max, starts
 * its reclaim timer on l and registers ferry.cache with b. *out is set
 * only on success. FERRY_ENOMEM, or broker_add_backend's error.
 */
ferry_err cache_service_open(struct cache_service **out, struct broker *b,
                             struct loop *l, const struct config *cfg);

/* Stops the timer and frees the cache; the broker must not call the
 * backend any more (it has stopped). NULL is a no-op. */
void cache_service_close(struct cache_service *cs);

/* The cache itself, for the memcached face (borrowed; lives until
 * cache_service_close). */
struct cache *cache_service_cache(struct cache_service *cs);

/* Now on the clock the cache's expiry times use: the loop's monotonic
 * milliseconds. */
int64_t cache_service_now_ms(const struct cache_service *cs);

/* A Unix time in seconds (memcached's absolute expiry) on that clock:
 * the wall-clock offset is taken once at open. */
int64_t cache_service_unix_to_ms(const struct cache_service *cs,
                                 int64_t unix_s);

/* Called by a face after each write it made to the cache directly: runs
 * the eviction accounting that decides when to malloc_trim. Cheap. */
void cache_service_after_write(struct cache_service *cs);

/* The "cache" object of /v1/stats' "servants": counters, items, bytes,
 * the cap, hit ratio. NULL when out of memory. */
json_t *cache_service_stats_json(const struct cache_service *cs);

/* The ferry_cache_* families of /metrics, each with HELP and TYPE. */
void cache_service_metrics(const struct cache_service *cs, FILE *f);

#endif
