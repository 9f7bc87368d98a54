/* SPDX-License-Identifier: MIT */
/*
 * map.h - open-addressing hash maps for the lookups on the request path:
 * in ferryd connections by id, requests by broker id, a caller's requests
 * by its own id (struct map, 64-bit keys), and services by name (struct
 * smap); in libferry a client's calls and a worker's jobs by request id.
 *
 * Linear probing with backward-shift deletion: no tombstones, so a table
 * that sees many inserts and deletes stays fast. Values are borrowed
 * non-NULL pointers; the maps never own what they point to. No libuv:
 * libferry links it too.
 */
#ifndef FERRY_CORE_MAP_H
#define FERRY_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

struct map_entry {
    uint64_t key; /* any value, 0 included */
    void *val;    /* borrowed; NULL marks a free slot */
};

/* Embedded in its owner. */
struct map {
    struct map_entry *e; /* owned, cap entries */
    size_t cap;          /* a power of two, or 0 */
    size_t n;            /* entries in use */
};

void map_init(struct map *m);
void map_release(struct map *m);

/* Removes every entry and keeps the table for the next ones. */
void map_clear(struct map *m);

/* The value for key, or NULL. */
void *map_get(const struct map *m, uint64_t key);

/* Inserts or replaces; val must not be NULL. FERRY_ENOMEM when the table
 * cannot grow (the map is then unchanged). */
ferry_err map_put(struct map *m, uint64_t key, void *val);

/* Removes key and returns its value, or NULL when absent. */
void *map_del(struct map *m, uint64_t key);

/*
 * Iterates: start with *pos = 0; each call returns the next entry and
 * false at the end. The map must not change during an iteration.
 */
bool map_next(const struct map *m, size_t *pos, uint64_t *key, void **val);

/*
 * A malloc'd copy of m's keys, *n of them, for walks that change m (close
 * each conn, fail each request): look each one up again as you go. NULL
 * when m is empty or memory ran out (*n is 0 then).
 */
uint64_t *map_keys(const struct map *m, size_t *n);

struct smap_entry {
    uint64_t hash;      /* hash of the key */
    const uint8_t *key; /* borrowed from the value */
    size_t len;         /* bytes of key */
    void *val;          /* borrowed; NULL marks a free slot */
};

/* A map from byte strings to values; keys are borrowed from the values
 * and must live as long as their entry. Embedded in its owner. */
struct smap {
    struct smap_entry *e; /* owned, cap entries */
    size_t cap;           /* a power of two, or 0 */
    size_t n;             /* entries in use */
};

void smap_init(struct smap *m);
void smap_release(struct smap *m);
void *smap_get(const struct smap *m, const void *key, size_t len);
ferry_err smap_put(struct smap *m, const void *key, size_t len, void *val);
void *smap_del(struct smap *m, const void *key, size_t len);
bool smap_next(const struct smap *m, size_t *pos, void **val);

/* The hashes the maps use. */
uint64_t map_hash_u64(uint64_t key);
uint64_t map_hash_bytes(const void *p, size_t len);

#endif
