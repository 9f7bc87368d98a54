/* SPDX-License-Identifier: MIT */
/*
 * map.c - open-addressing hash maps (see map.h). Tables grow at 3/4 load
 * and never shrink while in use.
 */
#include "core/map.h"

#include <stdlib.h>
#include <string.h>

#define MAP_MIN_CAP 16

uint64_t
map_hash_u64(uint64_t x)
{
    /* The splitmix64 finaliser: sequential ids spread over the table. */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

uint64_t
map_hash_bytes(const void *p, size_t len)
{
    const uint8_t *s = p;
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return map_hash_u64(h);
}

void
map_init(struct map *m)
{
    m->e = NULL;
    m->cap = 0;
    m->n = 0;
}

void
map_release(struct map *m)
{
    free(m->e);
    map_init(m);
}

void
map_clear(struct map *m)
{
    if (m->cap > 0) {
        memset(m->e, 0, m->cap * sizeof(*m->e));
    }
    m->n = 0;
}

static size_t
map_find(const struct map *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)map_hash_u64(key) & mask;

    while (m->e[i].val != NULL && m->e[i].key != key) {
        i = (i + 1) & mask;
    }
    return i;
}

void *
map_get(const struct map *m, uint64_t key)
{
    if (m->n == 0) {
        return NULL;
    }
    return m->e[map_find(m, key)].val;
}

static ferry_err
map_grow(struct map *m)
{
    size_t cap = m->cap ? m->cap * 2 : MAP_MIN_CAP;
    struct map old = *m;

    m->e = calloc(cap, sizeof(*m->e));
    if (m->e == NULL) {
        *m = old;
        return FERRY_ENOMEM;
    }
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.e[i].val != NULL) {
            size_t j = map_find(m, old.e[i].key);
            m->e[j] = old.e[i];
            m->n++;
        }
    }
    free(old.e);
    return FERRY_OK;
}

ferry_err
map_put(struct map *m, uint64_t key, void *val)
{
    size_t i;

    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    i = map_find(m, key);
    if (m->e[i].val == NULL) {
        m->n++;
    }
    m->e[i].key = key;
    m->e[i].val = val;
    return FERRY_OK;
}

void *
map_del(struct map *m, uint64_t key)
{
    size_t mask, i, j;
    void *val;

    if (m->n == 0) {
        return NULL;
    }
    mask = m->cap - 1;
    i = map_find(m, key);
    val = m->e[i].val;
    if (val == NULL) {
        return NULL;
    }
    /* Backward shift: pull later entries of the run into the hole. */
    j = i;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (m->e[j].val == NULL) {
            break;
        }
        home = (size_t)map_hash_u64(m->e[j].key) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i].val = NULL;
    m->n--;
    return val;
}

bool
map_next(const struct map *m, size_t *pos, uint64_t *key, void **val)
{
    while (*pos < m->cap) {
        size_t i = (*pos)++;
        if (m->e[i].val != NULL) {
            *key = m->e[i].key;
            *val = m->e[i].val;
            return true;
        }
    }
    return false;
}

uint64_t *
map_keys(const struct map *m, size_t *n)
{
    size_t pos = 0, k = 0;
    uint64_t id, *ids;
    void *val;

    *n = 0;
    if (m->n == 0 || (ids = malloc(m->n * sizeof(*ids))) == NULL) {
        return NULL;
    }
    while (k < m->n && map_next(m, &pos, &id, &val)) {
        ids[k++] = id;
    }
    *n = k;
    return ids;
}

void
smap_init(struct smap *m)
{
    m->e = NULL;
    m->cap = 0;
    m->n = 0;
}

void
smap_release(struct smap *m)
{
    free(m->e);
    smap_init(m);
}

static size_t
smap_find(const struct smap *m, uint64_t hash, const void *key, size_t len)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)hash & mask;

    while (m->e[i].val != NULL &&
           (m->e[i].hash != hash || m->e[i].len != len ||
            (len > 0 && memcmp(m->e[i].key, key, len) != 0))) {
        i = (i + 1) & mask;
    }
    return i;
}

void *
smap_get(const struct smap *m, const void *key, size_t len)
{
    if (m->n == 0) {
        return NULL;
    }
    return m->e[smap_find(m, map_hash_bytes(key, len), key, len)].val;
}

static ferry_err
smap_grow(struct smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : MAP_MIN_CAP;
    struct smap old = *m;

    m->e = calloc(cap, sizeof(*m->e));
    if (m->e == NULL) {
        *m = old;
        return FERRY_ENOMEM;
    }
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.e[i].val != NULL) {
            size_t j = smap_find(m, old.e[i].hash, old.e[i].key, old.e[i].len);
            m->e[j] = old.e[i];
            m->n++;
        }
    }
    free(old.e);
    return FERRY_OK;
}

ferry_err
smap_put(struct smap *m, const void *key, size_t len, void *val)
{
    uint64_t hash = map_hash_bytes(key, len);
    size_t i;

    if ((m->n + 1) * 4 > m->cap * 3 && smap_grow(m) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    i = smap_find(m, hash, key, len);
    if (m->e[i].val == NULL) {
        m->n++;
    }
    m->e[i].hash = hash;
    m->e[i].key = key;
    m->e[i].len = len;
    m->e[i].val = val;
    return FERRY_OK;
}

void *
smap_del(struct smap *m, const void *key, size_t len)
{
    size_t mask, i, j;
    void *val;

    if (m->n == 0) {
        return NULL;
    }
    mask = m->cap - 1;
    i = smap_find(m, map_hash_bytes(key, len), key, len);
    val = m->e[i].val;
    if (val == NULL) {
        return NULL;
    }
    j = i;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (m->e[j].val == NULL) {
            break;
        }
        home = (size_t)m->e[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    m->e[i].val = NULL;
    m->n--;
    return val;
}

bool
smap_next(const struct smap *m, size_t *pos, void **val)
{
    while (*pos < m->cap) {
        size_t i = (*pos)++;
        if (m->e[i].val != NULL) {
            *val = m->e[i].val;
            return true;
        }
    }
    return false;
}
