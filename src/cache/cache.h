/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the in-memory cache behind the ferry.cache service and the
 * memcached face: items with any-bytes keys and values, a TTL, client
 * flags and a 64-bit version (memcached's cas unique), under a memory cap
 * that counts what malloc really hands out, evicted by CLOCK.
 *
 * Pure C, no libuv, no clock of its own: every call that can see time
 * takes `now` (milliseconds, any epoch the caller keeps monotonic; item
 * expiry times are in the same unit and epoch). Not thread safe: one loop
 * owns a cache. The face converts memcached's relative/absolute seconds.
 *
 * Values returned through struct cache_view are borrowed from the cache
 * and valid until the next call that changes it (any call but the getters'
 * own hit/miss bookkeeping; a get may free an expired item, never the one
 * it returns).
 */
#ifndef FERRY_CACHE_CACHE_H
#define FERRY_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_MAX 250                   /* memcached's key limit */
#define CACHE_DEFAULT_MAX_BYTES (64u << 20) /* ferryd's default cap */
#define CACHE_DEFAULT_ITEM_MAX (1u << 20)   /* memcached's -I default */

enum cache_status {
    CACHE_OK,         /* get/touch/delete/incr done */
    CACHE_STORED,     /* set/add/replace/append/prepend/cas stored */
    CACHE_NOT_STORED, /* add: key exists; replace/append/prepend: absent */
    CACHE_EXISTS,     /* cas: the version changed since it was read */
    CACHE_NOT_FOUND,  /* no such live key */
    CACHE_TOO_LARGE,  /* the item exceeds item_max (or the whole cap) */
    CACHE_NO_MEMORY,  /* malloc failed, or eviction could not make room */
    CACHE_NOT_NUMBER, /* incr/decr on a value that is not a decimal u64 */
    CACHE_BAD_KEY,    /* key length 0 or over CACHE_KEY_MAX */
};

/* A short lowercase name for a status ("stored", "not_found" ...). */
const char *cache_status_name(enum cache_status s);

/* Where the cache's memory comes from; NULL in cache_config means libc.
 * Tests pass a counting one to check the cache's own count. */
struct cache_alloc {
    void *(*malloc_fn)(void *arg, size_t n);
    void (*free_fn)(void *arg, void *p);
    size_t (*usable_fn)(void *arg, void *p); /* malloc_usable_size */
    void *arg;                               /* borrowed */
};

struct cache_config {
    size_t max_bytes; /* the cap; 0 = CACHE_DEFAULT_MAX_BYTES */
    size_t item_max;  /* largest key + value; 0 = CACHE_DEFAULT_ITEM_MAX */
    uint64_t seed[2]; /* hash key (SipHash); random in the daemon */
    const struct cache_alloc *alloc; /* borrowed; NULL = libc malloc */
};

/* Per-operation and global counters; all monotonic except items/bytes. */
struct cache_stats {
    uint64_t items;             /* items in the table (dead ones included
                                   until reclaimed, see cache_flush) */
    uint64_t bytes;             /* everything counted against the cap */
    uint64_t item_bytes;        /* of which items (malloc'd chunks) */
    uint64_t table_bytes;       /* of which the hash tables */
    uint64_t get_hits;          /* get, gat, get_many keys found */
    uint64_t get_misses;        /* ... not found or expired */
    uint64_t evictions;         /* live items dropped to make room */
    uint64_t evicted_bytes;     /* their charge: a caller may malloc_trim
                                   after many (see docs/internals.md) */
    uint64_t expired_lazy;      /* found dead on access */
    uint64_t expired_reclaimed; /* found dead by cache_reclaim/eviction */
    uint64_t flushed;           /* dropped because of a flush */
    uint64_t cmd_get, cmd_set, cmd_add, cmd_replace, cmd_append, cmd_prepend,
        cmd_cas, cmd_delete, cmd_incr, cmd_decr, cmd_touch,
        cmd_flush; /* calls of each operation */
    uint64_t cas_hits, cas_badval, cas_misses;
    uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t delete_hits, delete_misses, touch_hits, touch_misses;
    uint64_t store_too_large, store_no_memory;
    uint64_t rehash_steps; /* buckets moved by incremental growth */
};

/* What a get returns; val is borrowed (see the file comment). */
struct cache_view {
    const uint8_t *val; /* borrowed */
    size_t len;         /* bytes of val */
    uint32_t flags;     /* client flags */
    uint64_t version;   /* cas unique; never 0 */
    int64_t expires;    /* absolute ms, 0 = never */
};

struct cache;

/* A new empty cache, or NULL when out of memory or the cap is too small
 * to hold its own table. cfg may be NULL for the defaults. */
struct cache *cache_new(const struct cache_config *cfg);
void cache_free(struct cache *c);

/* Lookups. CACHE_OK with *out filled, or CACHE_NOT_FOUND (or BAD_KEY). */
enum cache_status cache_get(struct cache *c, const void *key, size_t klen,
                            int64_t now, struct cache_view *out);
/* Get and set the expiry time in one step (memcached gat). */
enum cache_status cache_gat(struct cache *c, const void *key, size_t klen,
                            int64_t expires, int64_t now,
                            struct cache_view *out);

/* Called once per key of a get_many, hit or miss; view is NULL on a miss. */
typedef void (*cache_each_cb)(void *arg, size_t i, enum cache_status st,
                              const struct cache_view *view);
/* Looks up n keys in order, calling cb for each before the next lookup. */
void cache_get_many(struct cache *c, size_t n, const void *const *keys,
                    const size_t *klens, int64_t now, cache_each_cb cb,
                    void *arg);

/*
 * Stores. set always stores; add only when absent; replace only when
 * present; cas only when present with version == `version` (EXISTS when it
 * differs, NOT_FOUND when absent). On CACHE_STORED, *version_out (may be
 * NULL) is the item's new version. append/prepend keep the item's flags
 * and expiry (theirs are ignored, as memcached does). CACHE_TOO_LARGE
 * leaves the cache unchanged; after CACHE_NO_MEMORY (malloc failed) a set,
 * add, replace or cas may have dropped the old item, as memcached's set
 * does, while append, prepend, incr and decr keep it. val may point into
 * the cache (a view of the same key, say).
 */
enum cache_status cache_set(struct cache *c, const void *key, size_t klen,
                            const void *val, size_t vlen, uint32_t flags,
                            int64_t expires, int64_t now,
                            uint64_t *version_out);
enum cache_status cache_add(struct cache *c, const void *key, size_t klen,
                            const void *val, size_t vlen, uint32_t flags,
                            int64_t expires, int64_t now,
                            uint64_t *version_out);
enum cache_status cache_replace(struct cache *c, const void *key, size_t klen,
                                const void *val, size_t vlen, uint32_t flags,
                                int64_t expires, int64_t now,
                                uint64_t *version_out);
enum cache_status cache_cas(struct cache *c, const void *key, size_t klen,
                            const void *val, size_t vlen, uint32_t flags,
                            int64_t expires, uint64_t version, int64_t now,
                            uint64_t *version_out);
enum cache_status cache_append(struct cache *c, const void *key, size_t klen,
                               const void *val, size_t vlen, int64_t now,
                               uint64_t *version_out);
enum cache_status cache_prepend(struct cache *c, const void *key, size_t klen,
                                const void *val, size_t vlen, int64_t now,
                                uint64_t *version_out);

/* CACHE_OK or CACHE_NOT_FOUND. */
enum cache_status cache_delete(struct cache *c, const void *key, size_t klen,
                               int64_t now);

/*
 * incr/decr by delta on a value of decimal ASCII digits (up to 20, the
 * value at most 2^64-1; trailing spaces allowed, as memcached's own decr
 * leaves them). incr wraps modulo 2^64, decr stops at 0. CACHE_OK with
 * *result, CACHE_NOT_FOUND, or CACHE_NOT_NUMBER. The value is rewritten
 * without padding, the flags and expiry kept, the version bumped.
 */
enum cache_status cache_incr(struct cache *c, const void *key, size_t klen,
                             uint64_t delta, int64_t now, uint64_t *result);
enum cache_status cache_decr(struct cache *c, const void *key, size_t klen,
                             uint64_t delta, int64_t now, uint64_t *result);

/* Sets the expiry time. It does not change the version (memcached's touch
 * keeps the cas unique too): the value did not change. */
enum cache_status cache_touch(struct cache *c, const void *key, size_t klen,
                              int64_t expires, int64_t now);

/*
 * Invalidates every item stored before `at` (absolute ms; at <= now means
 * now) once now reaches `at`. O(1): dead items are freed lazily, by the
 * CLOCK hand first and by cache_reclaim, so items/bytes fall as they go.
 */
void cache_flush(struct cache *c, int64_t at, int64_t now);

/*
 * The background step: examines at most `budget` items for expiry or a
 * flush, frees the dead ones, moves at most `budget` buckets of an
 * incremental table growth or shrink, and starts a shrink when the table
 * has more than eight buckets per item. Returns the number of items freed.
 */
size_t cache_reclaim(struct cache *c, int64_t now, size_t budget);

/* The counters, copied. */
void cache_stats_get(const struct cache *c, struct cache_stats *out);

/* The cap in force, and the bytes one item of klen + vlen is charged. */
size_t cache_max_bytes(const struct cache *c);
size_t cache_item_charge(size_t klen, size_t vlen);

#endif
