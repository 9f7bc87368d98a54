/* SPDX-License-Identifier: MIT */
/*
 * cache_service_stub.c - TEMPORARY, branch "memcache" only: the accessors
 * of servants/cache_service.h over a private cache, so that the memcached
 * face builds and runs before helper "cache"'s cache_service.c is on main.
 * Delete this file when rebasing onto it.
 */
#include "servants/cache_service.h"

#include <stdlib.h>
#include <sys/time.h>

#include "cache/cache.h"
#include "core/loop.h"

struct cache_service {
    struct loop *loop;
    struct cache *cache;
    int64_t wall_offset_ms;
};

ferry_err
cache_service_open(struct cache_service **out, struct broker *b,
                   struct loop *l, const struct config *cfg)
{
    struct cache_service *cs = calloc(1, sizeof(*cs));
    struct cache_config cc = {0};
    struct timeval tv;

    if (cs == NULL) {
        return FERRY_ENOMEM;
    }
    cc.seed[0] = (uint64_t)random() << 32 | (uint64_t)random();
    cc.seed[1] = (uint64_t)random() << 32 | (uint64_t)random();
    cs->cache = cache_new(&cc);
    if (cs->cache == NULL) {
        free(cs);
        return FERRY_ENOMEM;
    }
    cs->loop = l;
    gettimeofday(&tv, NULL);
    cs->wall_offset_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 -
                         (int64_t)loop_now(l);
    *out = cs;
    return FERRY_OK;
}

void
cache_service_close(struct cache_service *cs)
{
    if (cs != NULL) {
        cache_free(cs->cache);
        free(cs);
    }
}

struct cache *
cache_service_cache(struct cache_service *cs)
{
    return cs->cache;
}

int64_t
cache_service_now_ms(const struct cache_service *cs)
{
    return (int64_t)loop_now(cs->loop);
}

int64_t
cache_service_unix_to_ms(const struct cache_service *cs, int64_t unix_s)
{
    return unix_s * 1000 - cs->wall_offset_ms;
}

void
cache_service_after_write(struct cache_service *cs)
{
}

json_t *
cache_service_stats_json(const struct cache_service *cs)
{
    return json_object();
}

void
cache_service_metrics(const struct cache_service *cs, FILE *f)
{
}
