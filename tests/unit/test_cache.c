/* SPDX-License-Identifier: MIT */
/*
 * test_cache.c - the in-memory cache (src/cache/): every operation and
 * status, TTL and flush under a clock the test holds, cas conflicts,
 * incr/decr edges, the memory cap against the cache's own count and
 * against every byte its allocator handed out, CLOCK keeping a hot key
 * through a scan of cold ones, the reclaim budget, and lookups while the
 * table grows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#include "cache/cache.h"

/* A counting allocator: what the cache holds, as malloc reports it. */
struct counter {
    size_t live;       /* usable + 8 of every live block */
    size_t peak;       /* the most live ever was */
    size_t fail_after; /* mallocs left before one fails; SIZE_MAX = never */
};

static void *
cnt_malloc(void *arg, size_t n)
{
    struct counter *k = arg;
    void *p;

    if (k->fail_after == 0) {
        return NULL;
    }
    if (k->fail_after != SIZE_MAX) {
        k->fail_after--;
    }
    p = malloc(n);
    if (p != NULL) {
        k->live += malloc_usable_size(p) + 8;
        if (k->live > k->peak) {
            k->peak = k->live;
        }
    }
    return p;
}

static void
cnt_free(void *arg, void *p)
{
    struct counter *k = arg;

    if (p != NULL) {
        k->live -= malloc_usable_size(p) + 8;
        free(p);
    }
}

static size_t
cnt_usable(void *arg, void *p)
{
    return malloc_usable_size(p);
}

static struct counter cnt;
static struct cache_alloc cnt_alloc = {cnt_malloc, cnt_free, cnt_usable, &cnt};

static struct cache *
new_cache(size_t max, size_t item_max)
{
    struct cache_config cfg = {
        .max_bytes = max,
        .item_max = item_max,
        .seed = {1, 2},
        .alloc = &cnt_alloc,
    };
    struct cache *c;

    memset(&cnt, 0, sizeof(cnt));
    cnt.fail_after = SIZE_MAX;
    c = cache_new(&cfg);
    assert_non_null(c);
    return c;
}

static void
free_cache(struct cache *c)
{
    cache_free(c);
    assert_int_equal(cnt.live, 0);
}

/* The cache's count is exactly what its allocator holds, and under cap. */
static void
check_accounting(struct cache *c)
{
    struct cache_stats st;

    cache_stats_get(c, &st);
    assert_int_equal(st.bytes, cnt.live);
    assert_int_equal(st.bytes, st.item_bytes + st.table_bytes);
    assert_true(st.bytes <= cache_max_bytes(c));
    assert_true(cnt.peak <= cache_max_bytes(c));
}

#define K(s) (s), strlen(s)

static void
want_value(struct cache *c, const char *key, const char *val, int64_t now)
{
    struct cache_view v;

    assert_int_equal(cache_get(c, K(key), now, &v), CACHE_OK);
    assert_int_equal(v.len, strlen(val));
    assert_memory_equal(v.val, val, v.len);
}

static void
want_missing(struct cache *c, const char *key, int64_t now)
{
    struct cache_view v;

    assert_int_equal(cache_get(c, K(key), now, &v), CACHE_NOT_FOUND);
}

static void
test_set_get_delete(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_view v;
    struct cache_stats st;
    uint64_t v1, v2;
    uint8_t bin[5] = {0, 255, 0, 10, 13};

    want_missing(c, "a", 0);
    assert_int_equal(cache_set(c, K("a"), K("one"), 7, 0, 0, &v1),
                     CACHE_STORED);
    assert_int_equal(cache_get(c, K("a"), 0, &v), CACHE_OK);
    assert_int_equal(v.flags, 7);
    assert_int_equal(v.version, v1);
    assert_int_equal(v.expires, 0);
    assert_int_equal(cache_set(c, K("a"), K("two!"), 8, 0, 0, &v2),
                     CACHE_STORED);
    assert_true(v2 > v1);
    want_value(c, "a", "two!", 0);
    /* Binary keys and values, an empty value. */
    assert_int_equal(cache_set(c, bin, 5, bin, 5, 0, 0, 0, NULL), CACHE_STORED);
    assert_int_equal(cache_get(c, bin, 5, 0, &v), CACHE_OK);
    assert_memory_equal(v.val, bin, 5);
    assert_int_equal(cache_get(c, bin, 4, 0, &v), CACHE_NOT_FOUND);
    assert_int_equal(cache_set(c, K("empty"), "", 0, 0, 0, 0, NULL),
                     CACHE_STORED);
    want_value(c, "empty", "", 0);
    assert_int_equal(cache_delete(c, K("a"), 0), CACHE_OK);
    assert_int_equal(cache_delete(c, K("a"), 0), CACHE_NOT_FOUND);
    want_missing(c, "a", 0);
    cache_stats_get(c, &st);
    assert_int_equal(st.items, 2);
    assert_int_equal(st.delete_hits, 1);
    assert_int_equal(st.delete_misses, 1);
    assert_int_equal(st.get_hits, 4);
    assert_int_equal(st.get_misses, 3);
    assert_int_equal(st.cmd_set, 4);
    check_accounting(c);
    free_cache(c);
}

/* A set of the same size overwrites the item in place; a smaller or a
 * bigger one too, or a new chunk: either way the value, version and count
 * are right. A value taken from the item itself can be stored back. */
static void
test_overwrite(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_view v;
    struct cache_stats st;
    uint64_t ver = 0, prev = 0;
    const char *vals[] = {"aaaa", "bbbb", "cc", "dddddddddddddddddddddddd",
                          "e",    "ffff"};

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        assert_int_equal(
            cache_set(c, K("k"), K(vals[i]), (uint32_t)i, 0, 0, &ver),
            CACHE_STORED);
        assert_true(ver > prev);
        prev = ver;
        want_value(c, "k", vals[i], 0);
        assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
        assert_int_equal(v.flags, i);
        check_accounting(c);
    }
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    assert_int_equal(cache_set(c, K("k"), v.val + 1, 2, 0, 0, 0, NULL),
                     CACHE_STORED);
    want_value(c, "k", "ff", 0);
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    assert_int_equal(cache_append(c, K("k"), v.val, v.len, 0, NULL),
                     CACHE_STORED);
    want_value(c, "k", "ffff", 0);
    cache_stats_get(c, &st);
    assert_int_equal(st.items, 1);
    check_accounting(c);
    free_cache(c);
}

static void
test_key_limits(void **state)
{
    struct cache *c = new_cache(1 << 20, 1000);
    char key[CACHE_KEY_MAX + 1];
    char val[1000];
    struct cache_view v;

    memset(key, 'k', sizeof(key));
    memset(val, 'v', sizeof(val));
    assert_int_equal(cache_set(c, key, 0, K("x"), 0, 0, 0, NULL),
                     CACHE_BAD_KEY);
    assert_int_equal(
        cache_set(c, key, CACHE_KEY_MAX + 1, K("x"), 0, 0, 0, NULL),
        CACHE_BAD_KEY);
    assert_int_equal(cache_get(c, key, CACHE_KEY_MAX + 1, 0, &v),
                     CACHE_BAD_KEY);
    assert_int_equal(cache_set(c, key, CACHE_KEY_MAX, K("x"), 0, 0, 0, NULL),
                     CACHE_STORED);
    /* item_max counts key + value. */
    assert_int_equal(cache_set(c, K("k"), val, 999, 0, 0, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(cache_set(c, K("k"), val, 1000, 0, 0, 0, NULL),
                     CACHE_TOO_LARGE);
    /* The failed set left the old value (memcached drops it on a failed
     * set; ours refuses before touching anything). */
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    assert_int_equal(v.len, 999);
    check_accounting(c);
    free_cache(c);
}

static void
test_add_replace(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);

    assert_int_equal(cache_replace(c, K("k"), K("r"), 0, 0, 0, NULL),
                     CACHE_NOT_STORED);
    assert_int_equal(cache_add(c, K("k"), K("a"), 0, 0, 0, NULL), CACHE_STORED);
    assert_int_equal(cache_add(c, K("k"), K("b"), 0, 0, 0, NULL),
                     CACHE_NOT_STORED);
    want_value(c, "k", "a", 0);
    assert_int_equal(cache_replace(c, K("k"), K("r"), 3, 0, 0, NULL),
                     CACHE_STORED);
    want_value(c, "k", "r", 0);
    /* add on an expired key stores. */
    assert_int_equal(cache_set(c, K("e"), K("old"), 0, 10, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(cache_add(c, K("e"), K("new"), 0, 0, 10, NULL),
                     CACHE_STORED);
    want_value(c, "e", "new", 11);
    check_accounting(c);
    free_cache(c);
}

static void
test_append_prepend(void **state)
{
    struct cache *c = new_cache(1 << 20, 8);
    struct cache_view v;
    uint64_t v1, v2;

    assert_int_equal(cache_append(c, K("k"), K("x"), 0, NULL),
                     CACHE_NOT_STORED);
    assert_int_equal(cache_prepend(c, K("k"), K("x"), 0, NULL),
                     CACHE_NOT_STORED);
    assert_int_equal(cache_set(c, K("k"), K("mid"), 42, 1000, 0, &v1),
                     CACHE_STORED);
    assert_int_equal(cache_append(c, K("k"), K("Z"), 0, &v2), CACHE_STORED);
    assert_true(v2 > v1);
    assert_int_equal(cache_prepend(c, K("k"), K("A"), 0, NULL), CACHE_STORED);
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.val, "AmidZ", 5);
    assert_int_equal(v.flags, 42);     /* kept */
    assert_int_equal(v.expires, 1000); /* kept */
    /* Growing past item_max (key 1 + value 7 = 8 is the limit). */
    assert_int_equal(cache_append(c, K("k"), K("12"), 0, NULL), CACHE_STORED);
    assert_int_equal(cache_append(c, K("k"), K("3"), 0, NULL), CACHE_TOO_LARGE);
    want_value(c, "k", "AmidZ12", 0);
    check_accounting(c);
    free_cache(c);
}

static void
test_cas(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_view v;
    struct cache_stats st;
    uint64_t ver, ver2;

    assert_int_equal(cache_cas(c, K("k"), K("x"), 0, 0, 1, 0, NULL),
                     CACHE_NOT_FOUND);
    assert_int_equal(cache_set(c, K("k"), K("a"), 0, 0, 0, NULL), CACHE_STORED);
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    ver = v.version;
    /* Another writer changes it first: our cas must fail. */
    assert_int_equal(cache_set(c, K("k"), K("b"), 0, 0, 0, NULL), CACHE_STORED);
    assert_int_equal(cache_cas(c, K("k"), K("mine"), 0, 0, ver, 0, NULL),
                     CACHE_EXISTS);
    want_value(c, "k", "b", 0);
    assert_int_equal(cache_get(c, K("k"), 0, &v), CACHE_OK);
    assert_int_equal(cache_cas(c, K("k"), K("mine"), 5, 0, v.version, 0, &ver2),
                     CACHE_STORED);
    assert_true(ver2 > v.version);
    /* The same version again: stale now. */
    assert_int_equal(cache_cas(c, K("k"), K("again"), 0, 0, v.version, 0, NULL),
                     CACHE_EXISTS);
    want_value(c, "k", "mine", 0);
    /* Every change bumps the version: incr, append, touch does not. */
    assert_int_equal(cache_set(c, K("n"), K("1"), 0, 0, 0, &ver), CACHE_STORED);
    assert_int_equal(cache_incr(c, K("n"), 1, 0, NULL), CACHE_OK);
    assert_int_equal(cache_get(c, K("n"), 0, &v), CACHE_OK);
    assert_true(v.version > ver);
    ver = v.version;
    assert_int_equal(cache_touch(c, K("n"), 500, 0), CACHE_OK);
    assert_int_equal(cache_get(c, K("n"), 0, &v), CACHE_OK);
    assert_int_equal(v.version, ver);
    assert_int_equal(v.expires, 500);
    cache_stats_get(c, &st);
    assert_int_equal(st.cas_misses, 1);
    assert_int_equal(st.cas_badval, 2);
    assert_int_equal(st.cas_hits, 1);
    free_cache(c);
}

static void
want_incr(struct cache *c, bool incr, const char *key, uint64_t delta,
          enum cache_status want, uint64_t want_val)
{
    uint64_t r = 12345;
    enum cache_status st = incr ? cache_incr(c, K(key), delta, 0, &r)
                                : cache_decr(c, K(key), delta, 0, &r);

    assert_int_equal(st, want);
    if (want == CACHE_OK) {
        char buf[32];

        assert_true(r == want_val);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want_val);
        want_value(c, key, buf, 0);
    }
}

static void
test_incr_decr(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_view v;

    want_incr(c, true, "n", 1, CACHE_NOT_FOUND, 0);
    want_incr(c, false, "n", 1, CACHE_NOT_FOUND, 0);
    cache_set(c, K("n"), K("9"), 3, 77, 0, NULL);
    want_incr(c, true, "n", 1, CACHE_OK, 10);   /* grows a digit */
    want_incr(c, false, "n", 3, CACHE_OK, 7);   /* shrinks */
    want_incr(c, false, "n", 100, CACHE_OK, 0); /* floor */
    assert_int_equal(cache_get(c, K("n"), 0, &v), CACHE_OK);
    assert_int_equal(v.flags, 3);
    assert_int_equal(v.expires, 77);
    /* 20 digits: the largest value, and its wrap. */
    cache_set(c, K("m"), K("18446744073709551615"), 0, 0, 0, NULL);
    want_incr(c, false, "m", 0, CACHE_OK, UINT64_MAX);
    want_incr(c, true, "m", 1, CACHE_OK, 0);
    cache_set(c, K("m"), K("18446744073709551610"), 0, 0, 0, NULL);
    want_incr(c, true, "m", 10, CACHE_OK, 4);
    want_incr(c, true, "m", UINT64_MAX, CACHE_OK, 3);
    /* Over 2^64-1, 21 digits, signs, letters, empty: not numbers. */
    cache_set(c, K("x"), K("18446744073709551616"), 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_NOT_NUMBER, 0);
    cache_set(c, K("x"), K("000000000000000000001"), 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_OK, 2); /* 21 digits, value fits */
    cache_set(c, K("x"), K("-1"), 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_NOT_NUMBER, 0);
    cache_set(c, K("x"), K("12a"), 0, 0, 0, NULL);
    want_incr(c, false, "x", 1, CACHE_NOT_NUMBER, 0);
    cache_set(c, K("x"), "", 0, 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_NOT_NUMBER, 0);
    cache_set(c, K("x"), K(" 5"), 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_NOT_NUMBER, 0);
    /* memcached's own decr leaves trailing spaces: accepted. */
    cache_set(c, K("x"), K("5  "), 0, 0, 0, NULL);
    want_incr(c, true, "x", 1, CACHE_OK, 6);
    check_accounting(c);
    free_cache(c);
}

static void
test_ttl(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_view v;
    struct cache_stats st;

    cache_set(c, K("t"), K("v"), 0, 1000, 0, NULL);
    cache_set(c, K("forever"), K("v"), 0, 0, 0, NULL);
    want_value(c, "t", "v", 999);
    want_missing(c, "t", 1000); /* expires at, not after */
    want_value(c, "forever", "v", INT64_MAX / 2);
    cache_stats_get(c, &st);
    assert_int_equal(st.expired_lazy, 1);
    assert_int_equal(st.items, 1);
    /* Expired keys are absent for every operation. */
    cache_set(c, K("t"), K("1"), 0, 2000, 1500, NULL);
    assert_int_equal(cache_replace(c, K("t"), K("x"), 0, 0, 2000, NULL),
                     CACHE_NOT_STORED);
    cache_set(c, K("t"), K("1"), 0, 2000, 1500, NULL);
    assert_int_equal(cache_incr(c, K("t"), 1, 2001, NULL), CACHE_NOT_FOUND);
    cache_set(c, K("t"), K("1"), 0, 2000, 1500, NULL);
    assert_int_equal(cache_delete(c, K("t"), 2000), CACHE_NOT_FOUND);
    /* touch and gat move the expiry. */
    cache_set(c, K("t"), K("1"), 0, 2000, 1500, NULL);
    assert_int_equal(cache_touch(c, K("t"), 3000, 1600), CACHE_OK);
    want_value(c, "t", "1", 2500);
    assert_int_equal(cache_gat(c, K("t"), 4000, 2600, &v), CACHE_OK);
    assert_int_equal(v.expires, 4000);
    want_value(c, "t", "1", 3500);
    assert_int_equal(cache_gat(c, K("t"), 0, 3600, &v), CACHE_OK);
    want_value(c, "t", "1", 100000);
    assert_int_equal(cache_touch(c, K("nope"), 1, 0), CACHE_NOT_FOUND);
    assert_int_equal(cache_gat(c, K("nope"), 1, 0, &v), CACHE_NOT_FOUND);
    check_accounting(c);
    free_cache(c);
}

static void
test_flush(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_stats st;

    cache_set(c, K("a"), K("1"), 0, 0, 0, NULL);
    cache_set(c, K("b"), K("1"), 0, 0, 0, NULL);
    cache_flush(c, 0, 0); /* now, even at time 0 */
    want_missing(c, "a", 0);
    assert_int_equal(cache_add(c, K("b"), K("2"), 0, 0, 0, NULL), CACHE_STORED);
    want_value(c, "b", "2", 0);
    /* A delayed flush: items stored before its time go at its time. */
    cache_set(c, K("c"), K("1"), 0, 0, 10, NULL);
    cache_flush(c, 100, 10);
    cache_set(c, K("d"), K("1"), 0, 0, 50, NULL);
    want_value(c, "b", "2", 99);
    want_value(c, "c", "1", 99);
    want_missing(c, "c", 100);
    want_missing(c, "d", 100);
    want_missing(c, "b", 100);
    cache_set(c, K("e"), K("1"), 0, 0, 100, NULL);
    want_value(c, "e", "1", 200);
    cache_stats_get(c, &st);
    assert_int_equal(st.flushed, 5);
    assert_int_equal(st.items, 1);
    assert_int_equal(st.cmd_flush, 2);
    check_accounting(c);
    free_cache(c);
}

struct many {
    int hits, misses;
    size_t last;
};

static void
many_cb(void *arg, size_t i, enum cache_status st,
        const struct cache_view *view)
{
    struct many *m = arg;

    assert_int_equal(i, m->last);
    m->last++;
    if (st == CACHE_OK) {
        assert_non_null(view);
        assert_int_equal(view->len, 1);
        assert_int_equal(view->val[0], 'v');
        m->hits++;
    } else {
        assert_null(view);
        assert_int_equal(st, i == 3 ? CACHE_BAD_KEY : CACHE_NOT_FOUND);
        m->misses++;
    }
}

static void
test_get_many(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    const void *keys[4] = {"a", "b", "c", "d"};
    size_t lens[4] = {1, 1, 1, 0};
    struct many m = {0};

    cache_set(c, K("a"), K("v"), 0, 0, 0, NULL);
    cache_set(c, K("c"), K("v"), 0, 0, 0, NULL);
    cache_get_many(c, 4, keys, lens, 0, many_cb, &m);
    assert_int_equal(m.hits, 2);
    assert_int_equal(m.misses, 2);
    free_cache(c);
}

/* Fills far past the cap with several value sizes; after every store the
 * cache's count matches its allocator's and neither passed the cap. */
static void
test_cap_never_exceeded(void **state)
{
    size_t max = 256 * 1024;
    struct cache *c = new_cache(max, 64 * 1024);
    struct cache_stats st;
    uint8_t *val = calloc(1, 64 * 1024);
    uint64_t rnd = 88172645463325252ull;
    char key[32];

    assert_non_null(val);
    for (int i = 0; i < 20000; i++) {
        size_t n;

        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        n = i < 8000 ? 100 : i < 12000 ? 10240 : i < 12100 ? 60000 : rnd % 3000;
        snprintf(key, sizeof(key), "key:%llu",
                 (unsigned long long)(rnd % 5000));
        assert_int_equal(cache_set(c, key, strlen(key), val, n, 0, 0, i, NULL),
                         CACHE_STORED);
        if (i % 7 == 0) {
            cache_append(c, key, strlen(key), val, 50, i, NULL);
        }
        assert_true(cnt.live <= max);
        if (i % 97 == 0) {
            check_accounting(c);
        }
    }
    check_accounting(c);
    cache_stats_get(c, &st);
    assert_true(st.evictions > 0);
    /* Full, but not wasteful: at least 85% of the cap holds items. */
    assert_true(st.bytes > max * 85 / 100);
    /* A value bigger than the cap: too large, nothing evicted for it. */
    free_cache(c);
    c = new_cache(8192, 1 << 20);
    assert_int_equal(cache_set(c, K("a"), val, 100, 0, 0, 0, NULL),
                     CACHE_STORED);
    assert_int_equal(cache_set(c, K("big"), val, 9000, 0, 0, 0, NULL),
                     CACHE_TOO_LARGE);
    {
        struct cache_view v;

        assert_int_equal(cache_get(c, K("a"), 0, &v), CACHE_OK);
        assert_int_equal(v.len, 100);
    }
    free(val);
    free_cache(c);
}

static void
test_no_memory(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_stats st;

    cache_set(c, K("a"), K("1"), 0, 0, 0, NULL);
    cnt.fail_after = 0;
    assert_int_equal(cache_set(c, K("b"), K("1"), 0, 0, 0, NULL),
                     CACHE_NO_MEMORY);
    assert_int_equal(cache_append(c, K("a"), K("2"), 0, NULL), CACHE_NO_MEMORY);
    cnt.fail_after = SIZE_MAX;
    want_value(c, "a", "1", 0); /* append's failure kept the item */
    want_missing(c, "b", 0);
    cache_stats_get(c, &st);
    assert_int_equal(st.store_no_memory, 2);
    check_accounting(c);
    free_cache(c);
}

/* A key read between every few cold inserts survives a scan of cold keys
 * many times the cache's size; the cold ones go in insertion order. */
static void
test_hot_key_survives_scan(void **state)
{
    struct cache *c = new_cache(64 * 1024, 0);
    struct cache_stats st;
    char key[32];
    char val[100];

    memset(val, 'v', sizeof(val));
    cache_set(c, K("hot"), K("H"), 0, 0, 0, NULL);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "cold:%d", i);
        assert_int_equal(
            cache_set(c, key, strlen(key), val, sizeof(val), 0, 0, 0, NULL),
            CACHE_STORED);
        if (i % 50 == 0) {
            want_value(c, "hot", "H", 0);
        }
    }
    want_value(c, "hot", "H", 0);
    cache_stats_get(c, &st);
    assert_true(st.evictions > 4000);
    /* Each evicted item was charged at least its header, key and value. */
    assert_true(st.evicted_bytes >= st.evictions * (62 + 6 + 100));
    /* The newest cold keys are in, the oldest gone. */
    want_missing(c, "cold:0", 0);
    want_missing(c, "cold:100", 0);
    {
        struct cache_view v;

        assert_int_equal(cache_get(c, K("cold:4999"), 0, &v), CACHE_OK);
    }
    free_cache(c);
}

static void
test_reclaim_budget(void **state)
{
    struct cache *c = new_cache(1 << 20, 0);
    struct cache_stats st;
    char key[32];
    size_t freed = 0, n;

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        /* Every other item expires at 100. */
        cache_set(c, key, strlen(key), K("v"), 0, i % 2 ? 100 : 0, 0, NULL);
    }
    for (int round = 0; round < 100; round++) {
        n = cache_reclaim(c, 200, 10);
        assert_true(n <= 10);
        freed += n;
    }
    assert_int_equal(freed, 500);
    /* Nothing left to free, however many times it runs. */
    assert_int_equal(cache_reclaim(c, 200, 1000), 0);
    cache_stats_get(c, &st);
    assert_int_equal(st.items, 500);
    assert_int_equal(st.expired_reclaimed, 500);
    assert_int_equal(st.expired_lazy, 0);
    /* Budget 0 does nothing; a budget of 3 frees at most 3. */
    cache_flush(c, 0, 300);
    assert_int_equal(cache_reclaim(c, 300, 0), 0);
    assert_int_equal(cache_reclaim(c, 300, 3), 3);
    check_accounting(c);
    free_cache(c);
}

/* 50,000 items: the table doubles many times; every item inserted so far
 * is found on every step of the growth, and the growth ends. */
static void
test_growth_while_reading(void **state)
{
    struct cache *c = new_cache(64u << 20, 0);
    struct cache_stats st;
    char key[32];
    char val[32];

    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "g%d", i);
        assert_int_equal(
            cache_set(c, key, strlen(key), key, strlen(key), 0, 0, 0, NULL),
            CACHE_STORED);
        /* Read back a spread of earlier keys during the migration. */
        for (int j = i; j >= 0; j -= 1 + j / 4) {
            snprintf(val, sizeof(val), "g%d", j);
            want_value(c, val, val, 0);
            if (j == 0) {
                break;
            }
        }
        if (i % 5000 == 0) {
            check_accounting(c);
        }
    }
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "g%d", i);
        want_value(c, key, key, 0);
    }
    cache_stats_get(c, &st);
    assert_int_equal(st.items, 50000);
    assert_int_equal(st.evictions, 0);
    assert_true(st.rehash_steps >= 65536 - 64);
    /* The table is at least one bucket per item. */
    assert_true(st.table_bytes >= 50000 * sizeof(void *));
    check_accounting(c);
    free_cache(c);
}

/* After most items go, cache_reclaim shrinks the table step by step; the
 * rest are found at every step and the bytes go back. */
static void
test_shrink_while_reading(void **state)
{
    struct cache *c = new_cache(64u << 20, 0);
    struct cache_stats st, st2;
    char key[32];
    int steps = 0;

    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        cache_set(c, key, strlen(key), key, strlen(key), 0, 0, 0, NULL);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        if (i % 100 != 0) {
            assert_int_equal(cache_delete(c, key, strlen(key), 0), CACHE_OK);
        }
    }
    cache_stats_get(c, &st);
    assert_true(st.table_bytes > 32768 * sizeof(void *));
    for (steps = 0; steps < 2000; steps++) {
        (void)cache_reclaim(c, 0, 64); /* starts or moves the shrink */
        for (int i = 0; i < 20000; i += 100) {
            snprintf(key, sizeof(key), "s%d", i);
            want_value(c, key, key, 0);
        }
        check_accounting(c);
        cache_stats_get(c, &st2);
        if (st2.table_bytes < 8192) {
            break;
        }
    }
    /* 32768 buckets, 64 moved per call and 4 per get: tens of calls, not
     * one. */
    assert_true(steps > 5 && steps < 2000);
    cache_stats_get(c, &st);
    assert_int_equal(st.items, 200);
    /* 32768 buckets shrunk to 512 (pow2 >= 2 x 200): 4 KiB and change. */
    assert_true(st.table_bytes < 8192);
    free_cache(c);
}

/* Random operations on 300 keys against a plain model (no eviction: the
 * cap is large), with time moving, TTLs, flushes, reclaim, the table
 * growing and shrinking as items come and go. */
struct model {
    bool live;
    uint8_t val[80];
    size_t len;
    uint32_t flags;
    int64_t expires;
};

static void
test_against_model(void **state)
{
    enum { NK = 300 };
    static struct model m[NK];
    struct cache *c = new_cache(64u << 20, 0);
    uint64_t rnd = 0x1234567;
    int64_t now = 1;
    char key[16];
    int incr_ok = 0;

    memset(m, 0, sizeof(m));
    for (int step = 0; step < 60000; step++) {
        int k, op;
        struct model *e;
        uint8_t val[40];
        size_t vlen;
        struct cache_view v;
        enum cache_status st;
        int64_t exp;

        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        k = (int)(rnd % NK);
        op = (int)((rnd >> 16) % 12);
        vlen = (rnd >> 24) % 20;
        exp = (rnd >> 32) % 4 == 0 ? now + (int64_t)((rnd >> 40) % 50) : 0;
        for (size_t i = 0; i < vlen; i++) {
            /* A third of the values are digits, for incr. */
            val[i] = (rnd >> 45) % 3 == 0
                         ? (uint8_t)('0' + (rnd >> (i % 50)) % 10)
                         : (uint8_t)('a' + (rnd >> (i % 50)) % 26);
        }
        snprintf(key, sizeof(key), "m%d", k);
        e = &m[k];
        if (e->live && e->expires != 0 && e->expires <= now) {
            e->live = false;
        }
        /* Phases: grow, then mostly delete (so the table shrinks). */
        if (step > 30000 && step < 40000 && op < 6) {
            op = 6;
        }
        switch (op) {
        case 0:
        case 1:
            st = cache_set(c, key, strlen(key), val, vlen, (uint32_t)k, exp,
                           now, NULL);
            assert_int_equal(st, CACHE_STORED);
            e->live = true;
            memcpy(e->val, val, vlen);
            e->len = vlen;
            e->flags = (uint32_t)k;
            e->expires = exp;
            break;
        case 2:
            st = cache_add(c, key, strlen(key), val, vlen, 1, exp, now, NULL);
            assert_int_equal(st, e->live ? CACHE_NOT_STORED : CACHE_STORED);
            if (!e->live) {
                e->live = true;
                memcpy(e->val, val, vlen);
                e->len = vlen;
                e->flags = 1;
                e->expires = exp;
            }
            break;
        case 3:
            st = cache_replace(c, key, strlen(key), val, vlen, 2, exp, now,
                               NULL);
            assert_int_equal(st, e->live ? CACHE_STORED : CACHE_NOT_STORED);
            if (e->live) {
                memcpy(e->val, val, vlen);
                e->len = vlen;
                e->flags = 2;
                e->expires = exp;
            }
            break;
        case 4:
            if (e->len + vlen > sizeof(e->val)) {
                vlen = 0;
            }
            if (rnd & 1) {
                st = cache_append(c, key, strlen(key), val, vlen, now, NULL);
                if (e->live) {
                    memcpy(e->val + e->len, val, vlen);
                }
            } else {
                st = cache_prepend(c, key, strlen(key), val, vlen, now, NULL);
                if (e->live) {
                    memmove(e->val + vlen, e->val, e->len);
                    memcpy(e->val, val, vlen);
                }
            }
            assert_int_equal(st, e->live ? CACHE_STORED : CACHE_NOT_STORED);
            if (e->live) {
                e->len += vlen;
            }
            break;
        case 5:
            st = cache_touch(c, key, strlen(key), exp, now);
            assert_int_equal(st, e->live ? CACHE_OK : CACHE_NOT_FOUND);
            if (e->live) {
                e->expires = exp;
            }
            break;
        case 6:
        case 7:
            st = cache_delete(c, key, strlen(key), now);
            assert_int_equal(st, e->live ? CACHE_OK : CACHE_NOT_FOUND);
            e->live = false;
            break;
        case 8: {
            uint64_t r;

            st = cache_incr(c, key, strlen(key), 7, now, &r);
            if (!e->live) {
                assert_int_equal(st, CACHE_NOT_FOUND);
            } else {
                size_t d = 0;

                while (d < e->len && e->val[d] >= '0' && e->val[d] <= '9') {
                    d++;
                }
                /* Up to 19 digits always fit in 64 bits; 20 may not. */
                if (e->len > 0 && d == e->len && d < 20) {
                    assert_int_equal(st, CACHE_OK);
                    incr_ok++;
                } else if (d == 0 || d < e->len) {
                    assert_int_equal(st, CACHE_NOT_NUMBER);
                }
            }
            if (st == CACHE_OK) {
                e->len = (size_t)snprintf((char *)e->val, sizeof(e->val),
                                          "%llu", (unsigned long long)r);
            }
            break;
        }
        case 9: {
            uint64_t ver = 0;

            if (cache_get(c, key, strlen(key), now, &v) == CACHE_OK) {
                ver = v.version;
            }
            st = cache_cas(c, key, strlen(key), val, vlen, 3, exp,
                           ver + (rnd & 1), now, NULL);
            assert_int_equal(st, !e->live    ? CACHE_NOT_FOUND
                                 : (rnd & 1) ? CACHE_EXISTS
                                             : CACHE_STORED);
            if (st == CACHE_STORED) {
                memcpy(e->val, val, vlen);
                e->len = vlen;
                e->flags = 3;
                e->expires = exp;
            }
            break;
        }
        case 10:
            if (step % 50 == 0) {
                cache_reclaim(c, now, (rnd >> 8) % 40);
            }
            if (step % 10007 == 0) {
                cache_flush(c, now, now);
                memset(m, 0, sizeof(m));
            }
            break;
        default:
            break;
        }
        /* Check this key, and now and then all. */
        for (int j = step % 1000 == 0 ? 0 : k;
             j < (step % 1000 == 0 ? NK : k + 1); j++) {
            struct model *f = &m[j];

            if (f->live && f->expires != 0 && f->expires <= now) {
                f->live = false;
            }
            snprintf(key, sizeof(key), "m%d", j);
            st = cache_get(c, key, strlen(key), now, &v);
            if (!f->live) {
                assert_int_equal(st, CACHE_NOT_FOUND);
                continue;
            }
            assert_int_equal(st, CACHE_OK);
            assert_int_equal(v.len, f->len);
            assert_memory_equal(v.val, f->val, f->len);
            assert_int_equal(v.flags, f->flags);
            assert_int_equal(v.expires, f->expires);
        }
        if (step % 3 == 0) {
            now++;
        }
        if (step % 5000 == 0) {
            check_accounting(c);
        }
    }
    assert_true(incr_ok > 100);
    check_accounting(c);
    free_cache(c);
}

static void
test_status_names(void **state)
{
    assert_string_equal(cache_status_name(CACHE_STORED), "stored");
    assert_string_equal(cache_status_name(CACHE_NOT_NUMBER), "not_a_number");
    assert_string_equal(cache_status_name(CACHE_EXISTS), "exists");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_delete),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_add_replace),
        cmocka_unit_test(test_append_prepend),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_incr_decr),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_get_many),
        cmocka_unit_test(test_cap_never_exceeded),
        cmocka_unit_test(test_no_memory),
        cmocka_unit_test(test_hot_key_survives_scan),
        cmocka_unit_test(test_reclaim_budget),
        cmocka_unit_test(test_growth_while_reading),
        cmocka_unit_test(test_shrink_while_reading),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_status_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
