/* SPDX-License-Identifier: MIT */
/*
 * cache.c - the cache's items, table, CLOCK eviction and accounting.
 *
 * Each item is one malloc'd chunk: a 62-byte header, the key, the value.
 * Items sit in a chained hash table (the chain pointer is in the item)
 * that grows by doubling, moving a few buckets per call (Redis-style
 * incremental rehash), so no call ever walks the whole table. They also
 * sit on one circular list, the CLOCK ring: a hit only sets the item's
 * reference count (REF_MAX = 1: a reference bit; 2 or 3 kept stale hot
 * items longer after a shift and measured worse, docs/benchmarks.md); the
 * hand, when room is needed, lowers counts as it passes and evicts the
 * first item found at 0 (or dead). New items go just behind the hand, so
 * they are the last it looks at.
 *
 * Accounting: an item is charged malloc_usable_size + 8 (glibc's chunk
 * header), which is what glibc's arena really gives up for it; the tables
 * and the struct itself are charged the same way. Room is made before the
 * allocation, for an upper estimate of the chunk, so the cap holds even
 * at the instant of the malloc.
 */
#include "cache/cache.h"

#include <assert.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_OVERHEAD 8 /* glibc's size field before each chunk */
#define TABLE_MIN 64     /* buckets of a new table */
#define REHASH_STEP 4    /* buckets moved per operation while growing */
#define REF_MAX 1        /* CLOCK: one reference bit (see docs) */

struct item {
    struct item *hnext; /* hash chain; borrowed (the table owns items) */
    struct item *prev;  /* CLOCK ring */
    struct item *next;  /* CLOCK ring */
    uint64_t version;   /* cas unique */
    int64_t expires;    /* absolute ms, 0 = never */
    uint32_t hash;      /* low 32 bits of the key's hash */
    uint32_t flags;     /* client flags */
    uint32_t vlen;      /* bytes of value */
    uint8_t klen;       /* bytes of key, 1..250 */
    uint8_t ref;        /* CLOCK count, 0..REF_MAX */
    uint8_t data[];     /* key, then value */
};

struct table {
    struct item **b; /* owned, mask + 1 buckets */
    size_t mask;     /* buckets - 1 */
    size_t charge;   /* bytes charged for b */
};

struct cache {
    struct table t[2];      /* t[0] in use; t[1] the bigger one while
                               growing, NULL otherwise */
    size_t rehash_pos;      /* next bucket of t[0] to move */
    struct item *hand;      /* CLOCK hand; borrowed, NULL when empty */
    struct item *cursor;    /* cache_reclaim's place on the ring */
    struct item *pinned;    /* an item the hand must not evict now */
    size_t max_bytes;       /* the cap */
    size_t item_max;        /* largest key + value */
    size_t self_charge;     /* bytes charged for this struct */
    uint64_t seed[2];       /* SipHash key */
    uint64_t next_version;  /* last version handed out */
    uint64_t flush_version; /* items with version <= this are dead */
    int64_t flush_at;       /* a pending flush's time */
    bool flush_pending;     /* flush_at is in force */
    struct cache_alloc alloc;
    struct cache_stats st;
};

/* SipHash-1-3: keys come from outside, so chains must not be floodable. */
#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = ROTL(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = ROTL(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = ROTL(v2, 32);                                                     \
    } while (0)

static uint64_t
siphash13(const uint64_t k[2], const uint8_t *p, size_t len)
{
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
    uint64_t b = (uint64_t)len << 56;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;

        for (int j = 0; j < 8; j++) {
            m |= (uint64_t)p[i + j] << (8 * j);
        }
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (int j = 0; i < len; i++, j++) {
        b |= (uint64_t)p[i] << (8 * j);
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static void *
libc_malloc(void *arg, size_t n)
{
    return malloc(n);
}

static void
libc_free(void *arg, void *p)
{
    free(p);
}

static size_t
libc_usable(void *arg, void *p)
{
    return malloc_usable_size(p);
}

static const struct cache_alloc libc_alloc = {
    libc_malloc,
    libc_free,
    libc_usable,
    NULL,
};

const char *
cache_status_name(enum cache_status s)
{
    switch (s) {
    case CACHE_OK:
        return "ok";
    case CACHE_STORED:
        return "stored";
    case CACHE_NOT_STORED:
        return "not_stored";
    case CACHE_EXISTS:
        return "exists";
    case CACHE_NOT_FOUND:
        return "not_found";
    case CACHE_TOO_LARGE:
        return "too_large";
    case CACHE_NO_MEMORY:
        return "no_memory";
    case CACHE_NOT_NUMBER:
        return "not_a_number";
    case CACHE_BAD_KEY:
        return "bad_key";
    }
    return "unknown";
}

/*
 * An upper bound of what glibc charges for a request of n bytes: chunks
 * are n + 8 rounded up to 16 (32 at least); large ones may be mmap'd,
 * n + 16 rounded up to a page. Room is made for this before the malloc.
 */
static size_t
chunk_estimate(size_t n)
{
    size_t c = (n + CHUNK_OVERHEAD + 15) & ~(size_t)15;

    if (c < 32) {
        c = 32;
    }
    if (n >= 64 * 1024) {
        size_t m = (n + 16 + 4095) & ~(size_t)4095;

        if (m > c) {
            c = m;
        }
    }
    return c;
}

static size_t
real_charge(const struct cache *c, void *p)
{
    return c->alloc.usable_fn(c->alloc.arg, p) + CHUNK_OVERHEAD;
}

size_t
cache_item_charge(size_t klen, size_t vlen)
{
    return chunk_estimate(sizeof(struct item) + klen + vlen);
}

size_t
cache_max_bytes(const struct cache *c)
{
    return c->max_bytes;
}

static void
charge(struct cache *c, size_t n)
{
    c->st.bytes += n;
}

static void
uncharge(struct cache *c, size_t n)
{
    assert(c->st.bytes >= n);
    c->st.bytes -= n;
}

static size_t
item_charge(const struct cache *c, struct item *it)
{
    return real_charge(c, it);
}

static bool
item_is_dead(const struct cache *c, const struct item *it, int64_t now)
{
    return (it->expires != 0 && it->expires <= now) ||
           it->version <= c->flush_version;
}

/* Makes a pending flush take effect once its time has come. */
static void
flush_tick(struct cache *c, int64_t now)
{
    if (c->flush_pending && now >= c->flush_at) {
        c->flush_version = c->next_version;
        c->flush_pending = false;
    }
}

static void
ring_link(struct cache *c, struct item *it)
{
    if (c->hand == NULL) {
        it->prev = it->next = it;
        c->hand = it;
        return;
    }
    /* Just behind the hand: the last item it will look at. */
    it->next = c->hand;
    it->prev = c->hand->prev;
    it->prev->next = it;
    c->hand->prev = it;
}

static void
ring_unlink(struct cache *c, struct item *it)
{
    if (it->next == it) {
        c->hand = NULL;
        c->cursor = NULL;
        return;
    }
    if (c->hand == it) {
        c->hand = it->next;
    }
    if (c->cursor == it) {
        c->cursor = it->next;
    }
    it->prev->next = it->next;
    it->next->prev = it->prev;
}

/* The bucket that holds hash h now (growth moves buckets of t[0] below
 * rehash_pos into t[1]). */
static struct item **
bucket_of(struct cache *c, uint32_t h)
{
    size_t i = h & c->t[0].mask;

    if (c->t[1].b != NULL && i < c->rehash_pos) {
        return &c->t[1].b[h & c->t[1].mask];
    }
    return &c->t[0].b[i];
}

static void
table_unlink(struct cache *c, struct item *it)
{
    struct item **pp = bucket_of(c, it->hash);

    while (*pp != it) {
        assert(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = it->hnext;
}

static void
table_link(struct cache *c, struct item *it)
{
    struct item **pp = bucket_of(c, it->hash);

    it->hnext = *pp;
    *pp = it;
}

/* Unlinks and frees an item, uncharging it. */
static void
item_drop(struct cache *c, struct item *it)
{
    table_unlink(c, it);
    ring_unlink(c, it);
    uncharge(c, item_charge(c, it));
    c->st.item_bytes -= item_charge(c, it);
    c->st.items--;
    c->alloc.free_fn(c->alloc.arg, it);
}

/* Frees a dead item, counting why it died. */
static void
item_drop_dead(struct cache *c, struct item *it, uint64_t *counter)
{
    if (it->version <= c->flush_version) {
        c->st.flushed++;
    } else {
        (*counter)++;
    }
    item_drop(c, it);
}

/* Moves up to n buckets of a growth; frees the old table when done. */
static void
rehash_step(struct cache *c, size_t n)
{
    if (c->t[1].b == NULL) {
        return;
    }
    while (n-- > 0 && c->rehash_pos <= c->t[0].mask) {
        struct item *it = c->t[0].b[c->rehash_pos];

        c->t[0].b[c->rehash_pos] = NULL;
        while (it != NULL) {
            struct item *nx = it->hnext;
            struct item **pp = &c->t[1].b[it->hash & c->t[1].mask];

            it->hnext = *pp;
            *pp = it;
            it = nx;
        }
        c->rehash_pos++;
        c->st.rehash_steps++;
    }
    if (c->rehash_pos > c->t[0].mask) {
        c->alloc.free_fn(c->alloc.arg, c->t[0].b);
        uncharge(c, c->t[0].charge);
        c->st.table_bytes -= c->t[0].charge;
        c->t[0] = c->t[1];
        memset(&c->t[1], 0, sizeof(c->t[1]));
        c->rehash_pos = 0;
    }
}

static bool make_room(struct cache *c, size_t need, int64_t now);

/* Starts moving the table to one of nb buckets (bigger or smaller: the
 * buckets of t[0] below rehash_pos are in t[1] either way), if the new
 * table fits under the cap, evicting for it when it must (never more
 * than an eighth of the cap). False when it did not start. */
static bool
table_start_resize(struct cache *c, size_t nb, int64_t now)
{
    size_t bytes = nb * sizeof(struct item *);
    size_t est = chunk_estimate(bytes);
    struct item **b;

    if (est > c->max_bytes / 8 || !make_room(c, est, now)) {
        return false;
    }
    b = c->alloc.malloc_fn(c->alloc.arg, bytes);
    if (b == NULL) {
        return false;
    }
    memset(b, 0, bytes);
    c->t[1].b = b;
    c->t[1].mask = nb - 1;
    c->t[1].charge = real_charge(c, b);
    charge(c, c->t[1].charge);
    c->st.table_bytes += c->t[1].charge;
    c->rehash_pos = 0;
    return true;
}

/* Doubles the table when it holds more than one item per bucket (when it
 * cannot, chains just get longer). */
static void
table_maybe_grow(struct cache *c, int64_t now)
{
    if (c->t[1].b == NULL && c->st.items > c->t[0].mask + 1) {
        table_start_resize(c, (c->t[0].mask + 1) * 2, now);
    }
}

/* Shrinks the table to about two buckets per item once it holds fewer
 * than one item per eight buckets (after a shift to big values, say), so
 * the bytes go back to items. Called from cache_reclaim only. */
static void
table_maybe_shrink(struct cache *c, int64_t now)
{
    size_t nb = TABLE_MIN;

    if (c->t[1].b != NULL || c->t[0].mask + 1 <= TABLE_MIN ||
        c->st.items * 8 >= c->t[0].mask + 1) {
        return;
    }
    while (nb < c->st.items * 2) {
        nb *= 2;
    }
    table_start_resize(c, nb, now);
}

/*
 * Evicts until `need` more bytes fit under the cap. The hand frees dead
 * items at once, lowers a live item's count or evicts it at 0; it never
 * takes c->pinned. Each hit raises a count by at most 1 and each step
 * lowers one, so the work is O(1) amortised per operation. False when
 * the ring ran out (or only the pinned item is left).
 */
static bool
make_room(struct cache *c, size_t need, int64_t now)
{
    size_t spins = 0;

    while (c->st.bytes + need > c->max_bytes) {
        struct item *it = c->hand;

        if (it == NULL || (it == c->pinned && it->next == it)) {
            return false;
        }
        if (it == c->pinned) {
            c->hand = it->next;
            if (++spins > REF_MAX + 2) {
                return false;
            }
            continue;
        }
        if (item_is_dead(c, it, now)) {
            item_drop_dead(c, it, &c->st.expired_reclaimed);
        } else if (it->ref > 0) {
            it->ref--;
            c->hand = it->next;
        } else {
            c->st.evictions++;
            c->st.evicted_bytes += item_charge(c, it);
            item_drop(c, it);
        }
    }
    return true;
}

struct cache *
cache_new(const struct cache_config *cfg)
{
    static const struct cache_config defaults;
    const struct cache_alloc *a;
    struct cache *c;
    size_t bytes = TABLE_MIN * sizeof(struct item *);

    if (cfg == NULL) {
        cfg = &defaults;
    }
    a = cfg->alloc != NULL ? cfg->alloc : &libc_alloc;
    c = a->malloc_fn(a->arg, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    memset(c, 0, sizeof(*c));
    c->alloc = *a;
    c->max_bytes = cfg->max_bytes ? cfg->max_bytes : CACHE_DEFAULT_MAX_BYTES;
    c->item_max = cfg->item_max ? cfg->item_max : CACHE_DEFAULT_ITEM_MAX;
    if (c->item_max > UINT32_MAX) {
        c->item_max = UINT32_MAX;
    }
    c->seed[0] = cfg->seed[0];
    c->seed[1] = cfg->seed[1];
    c->self_charge = real_charge(c, c);
    c->t[0].b = a->malloc_fn(a->arg, bytes);
    if (c->t[0].b == NULL) {
        a->free_fn(a->arg, c);
        return NULL;
    }
    memset(c->t[0].b, 0, bytes);
    c->t[0].mask = TABLE_MIN - 1;
    c->t[0].charge = real_charge(c, c->t[0].b);
    c->st.table_bytes = c->self_charge + c->t[0].charge;
    c->st.bytes = c->st.table_bytes;
    if (c->st.bytes > c->max_bytes) {
        cache_free(c);
        return NULL;
    }
    return c;
}

void
cache_free(struct cache *c)
{
    if (c == NULL) {
        return;
    }
    while (c->hand != NULL) {
        struct item *it = c->hand;

        ring_unlink(c, it);
        c->alloc.free_fn(c->alloc.arg, it);
    }
    c->alloc.free_fn(c->alloc.arg, c->t[0].b);
    c->alloc.free_fn(c->alloc.arg, c->t[1].b);
    c->alloc.free_fn(c->alloc.arg, c);
}

static bool
key_ok(size_t klen)
{
    return klen >= 1 && klen <= CACHE_KEY_MAX;
}

/* The live item for key, or NULL; a dead one found is freed. */
static struct item *
lookup(struct cache *c, const void *key, size_t klen, uint32_t h, int64_t now)
{
    struct item *it = *bucket_of(c, h);

    for (; it != NULL; it = it->hnext) {
        if (it->hash == h && it->klen == klen &&
            memcmp(it->data, key, klen) == 0) {
            break;
        }
    }
    if (it != NULL && item_is_dead(c, it, now)) {
        item_drop_dead(c, it, &c->st.expired_lazy);
        return NULL;
    }
    return it;
}

/* The common start of each call: a pending flush, a bit of growth. */
static void
op_begin(struct cache *c, int64_t now)
{
    flush_tick(c, now);
    rehash_step(c, REHASH_STEP);
}

static uint32_t
key_hash(const struct cache *c, const void *key, size_t klen)
{
    return (uint32_t)siphash13(c->seed, key, klen);
}

static void
view_of(const struct item *it, struct cache_view *out)
{
    out->val = it->data + it->klen;
    out->len = it->vlen;
    out->flags = it->flags;
    out->version = it->version;
    out->expires = it->expires;
}

static enum cache_status
get_one(struct cache *c, const void *key, size_t klen, bool touch,
        int64_t expires, int64_t now, struct cache_view *out)
{
    struct item *it;

    if (!key_ok(klen)) {
        return CACHE_BAD_KEY;
    }
    it = lookup(c, key, klen, key_hash(c, key, klen), now);
    if (it == NULL) {
        c->st.get_misses++;
        if (touch) {
            c->st.touch_misses++;
        }
        return CACHE_NOT_FOUND;
    }
    c->st.get_hits++;
    if (it->ref < REF_MAX) {
        it->ref++;
    }
    if (touch) {
        c->st.touch_hits++;
        it->expires = expires;
    }
    view_of(it, out);
    return CACHE_OK;
}

enum cache_status
cache_get(struct cache *c, const void *key, size_t klen, int64_t now,
          struct cache_view *out)
{
    op_begin(c, now);
    c->st.cmd_get++;
    return get_one(c, key, klen, false, 0, now, out);
}

enum cache_status
cache_gat(struct cache *c, const void *key, size_t klen, int64_t expires,
          int64_t now, struct cache_view *out)
{
    op_begin(c, now);
    c->st.cmd_get++;
    c->st.cmd_touch++;
    return get_one(c, key, klen, true, expires, now, out);
}

void
cache_get_many(struct cache *c, size_t n, const void *const *keys,
               const size_t *klens, int64_t now, cache_each_cb cb, void *arg)
{
    op_begin(c, now);
    for (size_t i = 0; i < n; i++) {
        struct cache_view v;
        enum cache_status st;

        c->st.cmd_get++;
        st = get_one(c, keys[i], klens[i], false, 0, now, &v);
        cb(arg, i, st, st == CACHE_OK ? &v : NULL);
    }
}

/* Whether n > 0 bytes at p lie in the item's key or value (then it must stay
 * alive until they are copied). Compared as integers: p may be anything. */
static bool
points_into(const struct item *it, const void *p, size_t n)
{
    uintptr_t x = (uintptr_t)p;
    uintptr_t lo = (uintptr_t)it->data;

    return n > 0 && x >= lo && x < lo + it->klen + it->vlen;
}

enum store_mode { M_SET, M_ADD, M_REPLACE, M_CAS, M_APPEND, M_PREPEND };

/*
 * Builds the new item for key with value a + b (either may be empty) and
 * puts it in place of old (NULL when absent). Room is made first, with
 * old pinned when its bytes are still needed (a or b point into it).
 */
static enum cache_status
store_item(struct cache *c, const void *key, size_t klen, uint32_t h,
           struct item *old, const void *a, size_t alen, const void *b,
           size_t blen, uint32_t flags, int64_t expires, int64_t now,
           uint64_t *version_out)
{
    size_t vlen = alen + blen;
    size_t req = sizeof(struct item) + klen + vlen;
    size_t est = chunk_estimate(req);
    bool keep_old =
        old != NULL && (points_into(old, a, alen) || points_into(old, b, blen));
    uint8_t ref = old != NULL ? old->ref : 0;
    struct item *it;
    size_t got;

    if (klen + vlen > c->item_max || vlen > UINT32_MAX ||
        est + c->st.table_bytes > c->max_bytes) {
        c->st.store_too_large++;
        return CACHE_TOO_LARGE;
    }
    /* Same size class (the old chunk holds the new item and costs no more
     * than a new one would): overwrite in place, no malloc, no free. */
    if (old != NULL && !keep_old &&
        c->alloc.usable_fn(c->alloc.arg, old) >= req &&
        item_charge(c, old) <= est) {
        old->version = ++c->next_version;
        old->expires = expires;
        old->flags = flags;
        old->vlen = (uint32_t)vlen;
        if (alen) {
            memcpy(old->data + klen, a, alen);
        }
        if (blen) {
            memcpy(old->data + klen + alen, b, blen);
        }
        if (version_out != NULL) {
            *version_out = old->version;
        }
        return CACHE_STORED;
    }
    if (old != NULL && !keep_old) {
        item_drop(c, old);
        old = NULL;
    }
    c->pinned = old;
    if (!make_room(c, est, now)) {
        goto no_memory;
    }
    it = c->alloc.malloc_fn(c->alloc.arg, req);
    if (it == NULL) {
        goto no_memory;
    }
    got = real_charge(c, it);
    if (got > est && !make_room(c, got, now)) {
        c->alloc.free_fn(c->alloc.arg, it);
        goto no_memory;
    }
    c->pinned = NULL;
    it->version = ++c->next_version;
    it->expires = expires;
    it->hash = h;
    it->flags = flags;
    it->vlen = (uint32_t)vlen;
    it->klen = (uint8_t)klen;
    it->ref = ref;
    memcpy(it->data, key, klen);
    if (alen) {
        memcpy(it->data + klen, a, alen);
    }
    if (blen) {
        memcpy(it->data + klen + alen, b, blen);
    }
    if (old != NULL) {
        item_drop(c, old);
    }
    table_link(c, it);
    ring_link(c, it);
    charge(c, got);
    c->st.item_bytes += got;
    c->st.items++;
    if (version_out != NULL) {
        *version_out = it->version;
    }
    table_maybe_grow(c, now);
    return CACHE_STORED;

no_memory:
    c->pinned = NULL;
    c->st.store_no_memory++;
    return CACHE_NO_MEMORY;
}

static enum cache_status
store(struct cache *c, enum store_mode mode, const void *key, size_t klen,
      const void *val, size_t vlen, uint32_t flags, int64_t expires,
      uint64_t version, int64_t now, uint64_t *version_out)
{
    struct item *old;
    uint32_t h;

    if (!key_ok(klen)) {
        return CACHE_BAD_KEY;
    }
    op_begin(c, now);
    h = key_hash(c, key, klen);
    old = lookup(c, key, klen, h, now);
    switch (mode) {
    case M_SET:
        break;
    case M_ADD:
        if (old != NULL) {
            /* memcached's add bumps the existing item in the LRU. */
            if (old->ref < REF_MAX) {
                old->ref++;
            }
            return CACHE_NOT_STORED;
        }
        break;
    case M_REPLACE:
    case M_APPEND:
    case M_PREPEND:
        if (old == NULL) {
            return CACHE_NOT_STORED;
        }
        break;
    case M_CAS:
        if (old == NULL) {
            c->st.cas_misses++;
            return CACHE_NOT_FOUND;
        }
        if (old->version != version) {
            c->st.cas_badval++;
            return CACHE_EXISTS;
        }
        c->st.cas_hits++;
        break;
    }
    if (mode == M_APPEND || mode == M_PREPEND) {
        const uint8_t *ov = old->data + old->klen;

        if (mode == M_APPEND) {
            return store_item(c, key, klen, h, old, ov, old->vlen, val, vlen,
                              old->flags, old->expires, now, version_out);
        }
        return store_item(c, key, klen, h, old, val, vlen, ov, old->vlen,
                          old->flags, old->expires, now, version_out);
    }
    return store_item(c, key, klen, h, old, val, vlen, NULL, 0, flags, expires,
                      now, version_out);
}

enum cache_status
cache_set(struct cache *c, const void *key, size_t klen, const void *val,
          size_t vlen, uint32_t flags, int64_t expires, int64_t now,
          uint64_t *version_out)
{
    c->st.cmd_set++;
    return store(c, M_SET, key, klen, val, vlen, flags, expires, 0, now,
                 version_out);
}

enum cache_status
cache_add(struct cache *c, const void *key, size_t klen, const void *val,
          size_t vlen, uint32_t flags, int64_t expires, int64_t now,
          uint64_t *version_out)
{
    c->st.cmd_add++;
    return store(c, M_ADD, key, klen, val, vlen, flags, expires, 0, now,
                 version_out);
}

enum cache_status
cache_replace(struct cache *c, const void *key, size_t klen, const void *val,
              size_t vlen, uint32_t flags, int64_t expires, int64_t now,
              uint64_t *version_out)
{
    c->st.cmd_replace++;
    return store(c, M_REPLACE, key, klen, val, vlen, flags, expires, 0, now,
                 version_out);
}

enum cache_status
cache_cas(struct cache *c, const void *key, size_t klen, const void *val,
          size_t vlen, uint32_t flags, int64_t expires, uint64_t version,
          int64_t now, uint64_t *version_out)
{
    c->st.cmd_cas++;
    return store(c, M_CAS, key, klen, val, vlen, flags, expires, version, now,
                 version_out);
}

enum cache_status
cache_append(struct cache *c, const void *key, size_t klen, const void *val,
             size_t vlen, int64_t now, uint64_t *version_out)
{
    c->st.cmd_append++;
    return store(c, M_APPEND, key, klen, val, vlen, 0, 0, 0, now, version_out);
}

enum cache_status
cache_prepend(struct cache *c, const void *key, size_t klen, const void *val,
              size_t vlen, int64_t now, uint64_t *version_out)
{
    c->st.cmd_prepend++;
    return store(c, M_PREPEND, key, klen, val, vlen, 0, 0, 0, now, version_out);
}

enum cache_status
cache_delete(struct cache *c, const void *key, size_t klen, int64_t now)
{
    struct item *it;

    c->st.cmd_delete++;
    if (!key_ok(klen)) {
        return CACHE_BAD_KEY;
    }
    op_begin(c, now);
    it = lookup(c, key, klen, key_hash(c, key, klen), now);
    if (it == NULL) {
        c->st.delete_misses++;
        return CACHE_NOT_FOUND;
    }
    c->st.delete_hits++;
    item_drop(c, it);
    return CACHE_OK;
}

/* Parses memcached's counter value: 1..20 digits, then only spaces, at
 * most 2^64-1. */
static bool
parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');

        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (i == 0) {
        return false;
    }
    for (; i < n; i++) {
        if (p[i] != ' ') {
            return false;
        }
    }
    *out = v;
    return true;
}

static enum cache_status
arith(struct cache *c, bool incr, const void *key, size_t klen, uint64_t delta,
      int64_t now, uint64_t *result)
{
    struct item *it;
    uint32_t h;
    uint64_t v;
    char buf[24];
    size_t n;
    enum cache_status st;

    if (!key_ok(klen)) {
        return CACHE_BAD_KEY;
    }
    op_begin(c, now);
    h = key_hash(c, key, klen);
    it = lookup(c, key, klen, h, now);
    if (it == NULL) {
        (*(incr ? &c->st.incr_misses : &c->st.decr_misses))++;
        return CACHE_NOT_FOUND;
    }
    if (!parse_u64(it->data + it->klen, it->vlen, &v)) {
        return CACHE_NOT_NUMBER;
    }
    (*(incr ? &c->st.incr_hits : &c->st.decr_hits))++;
    if (incr) {
        v += delta; /* wraps modulo 2^64, as memcached's does */
    } else {
        v = v > delta ? v - delta : 0;
    }
    /* Digits written backwards, then used from where they start. */
    n = 0;
    do {
        buf[sizeof(buf) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (n == it->vlen) {
        /* Same length: in place, as memcached does. */
        memcpy(it->data + it->klen, buf + sizeof(buf) - n, n);
        it->version = ++c->next_version;
        st = CACHE_STORED;
    } else {
        st = store_item(c, key, klen, h, it, buf + sizeof(buf) - n, n, NULL, 0,
                        it->flags, it->expires, now, NULL);
    }
    if (st != CACHE_STORED) {
        return st;
    }
    if (result != NULL) {
        *result = 0;
        parse_u64((const uint8_t *)buf + sizeof(buf) - n, n, result);
    }
    return CACHE_OK;
}

enum cache_status
cache_incr(struct cache *c, const void *key, size_t klen, uint64_t delta,
           int64_t now, uint64_t *result)
{
    c->st.cmd_incr++;
    return arith(c, true, key, klen, delta, now, result);
}

enum cache_status
cache_decr(struct cache *c, const void *key, size_t klen, uint64_t delta,
           int64_t now, uint64_t *result)
{
    c->st.cmd_decr++;
    return arith(c, false, key, klen, delta, now, result);
}

enum cache_status
cache_touch(struct cache *c, const void *key, size_t klen, int64_t expires,
            int64_t now)
{
    struct item *it;

    c->st.cmd_touch++;
    if (!key_ok(klen)) {
        return CACHE_BAD_KEY;
    }
    op_begin(c, now);
    it = lookup(c, key, klen, key_hash(c, key, klen), now);
    if (it == NULL) {
        c->st.touch_misses++;
        return CACHE_NOT_FOUND;
    }
    c->st.touch_hits++;
    it->expires = expires;
    if (it->ref < REF_MAX) {
        it->ref++;
    }
    return CACHE_OK;
}

void
cache_flush(struct cache *c, int64_t at, int64_t now)
{
    c->st.cmd_flush++;
    c->flush_at = at <= now ? now : at;
    c->flush_pending = true;
    flush_tick(c, now);
}

size_t
cache_reclaim(struct cache *c, int64_t now, size_t budget)
{
    size_t freed = 0;

    flush_tick(c, now);
    rehash_step(c, budget);
    table_maybe_shrink(c, now);
    if (c->cursor == NULL) {
        c->cursor = c->hand;
    }
    for (size_t i = 0; i < budget && c->cursor != NULL; i++) {
        struct item *it = c->cursor;

        c->cursor = it->next;
        if (item_is_dead(c, it, now)) {
            /* ring_unlink moves the cursor on if it points here. */
            item_drop_dead(c, it, &c->st.expired_reclaimed);
            freed++;
        }
    }
    return freed;
}

void
cache_stats_get(const struct cache *c, struct cache_stats *out)
{
    *out = c->st;
}
