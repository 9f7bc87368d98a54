/* SPDX-License-Identifier: MIT */
/*
 * test_map.c - the open-addressing maps shared by ferryd and libferry:
 * 64-bit keys (0 and the largest included) against a plain array under
 * random churn, so backward-shift deletion is checked on long runs;
 * replacing, iterating, clearing; and byte-string keys (struct smap).
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

#include "core/map.h"

#define KEYS 2000

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
test_put_get_del(void **state)
{
    struct map m;
    int a, b, c;

    map_init(&m);
    assert_null(map_get(&m, 0));
    assert_null(map_del(&m, 0));
    assert_int_equal(map_put(&m, 0, &a), FERRY_OK);
    assert_int_equal(map_put(&m, UINT64_MAX, &b), FERRY_OK);
    assert_int_equal(map_put(&m, 42, &c), FERRY_OK);
    assert_int_equal(m.n, 3);
    assert_ptr_equal(map_get(&m, 0), &a);
    assert_ptr_equal(map_get(&m, UINT64_MAX), &b);
    assert_ptr_equal(map_get(&m, 42), &c);
    assert_null(map_get(&m, 43));
    /* Replacing keeps one entry. */
    assert_int_equal(map_put(&m, 42, &a), FERRY_OK);
    assert_int_equal(m.n, 3);
    assert_ptr_equal(map_get(&m, 42), &a);
    assert_ptr_equal(map_del(&m, 0), &a);
    assert_null(map_del(&m, 0));
    assert_null(map_get(&m, 0));
    assert_int_equal(m.n, 2);
    map_release(&m);
    assert_int_equal(m.n, 0);
    assert_null(map_get(&m, 42));
}

/* Random puts and deletes over a small key range, checked after every
 * step against an array of what should be there. */
static void
test_churn_matches_model(void **state)
{
    static int vals[KEYS];
    static bool in[KEYS];
    struct map m;
    uint64_t s = 88172645463325252ull;
    size_t n = 0;

    memset(in, 0, sizeof(in));
    map_init(&m);
    for (int step = 0; step < 50000; step++) {
        uint64_t r = next_rand(&s);
        size_t k = (size_t)(r % KEYS);
        /* Keys far apart in value: ids of many connections and epochs. */
        uint64_t key = (uint64_t)k * UINT64_C(0x100000001);

        if ((r >> 32) % 3 != 0) {
            assert_int_equal(map_put(&m, key, &vals[k]), FERRY_OK);
            n += !in[k];
            in[k] = true;
        } else {
            void *v = map_del(&m, key);
            assert_ptr_equal(v, in[k] ? &vals[k] : NULL);
            n -= in[k];
            in[k] = false;
        }
        assert_int_equal(m.n, n);
        if (step % 5000 == 0) {
            for (size_t i = 0; i < KEYS; i++) {
                uint64_t ki = (uint64_t)i * UINT64_C(0x100000001);
                assert_ptr_equal(map_get(&m, ki), in[i] ? &vals[i] : NULL);
            }
        }
    }
    for (size_t i = 0; i < KEYS; i++) {
        uint64_t ki = (uint64_t)i * UINT64_C(0x100000001);
        assert_ptr_equal(map_get(&m, ki), in[i] ? &vals[i] : NULL);
    }
    assert_true(m.n * 4 <= m.cap * 3);
    map_release(&m);
}

static void
test_next_and_clear(void **state)
{
    static int vals[300];
    bool seen[300] = {false};
    struct map m;
    size_t pos = 0, count = 0, cap;
    uint64_t key;
    void *val;

    map_init(&m);
    assert_false(map_next(&m, &pos, &key, &val));
    for (size_t i = 0; i < 300; i++) {
        assert_int_equal(map_put(&m, i * 7, &vals[i]), FERRY_OK);
    }
    pos = 0;
    while (map_next(&m, &pos, &key, &val)) {
        size_t i = (size_t)(key / 7);
        assert_int_equal(key % 7, 0);
        assert_true(i < 300);
        assert_ptr_equal(val, &vals[i]);
        assert_false(seen[i]);
        seen[i] = true;
        count++;
    }
    assert_int_equal(count, 300);
    /* Clearing empties the map and keeps its table. */
    cap = m.cap;
    map_clear(&m);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.cap, cap);
    assert_null(map_get(&m, 7));
    pos = 0;
    assert_false(map_next(&m, &pos, &key, &val));
    assert_int_equal(map_put(&m, 7, &vals[1]), FERRY_OK);
    assert_ptr_equal(map_get(&m, 7), &vals[1]);
    map_release(&m);
    /* Clearing a map that never had a table is harmless. */
    map_clear(&m);
    assert_null(map_get(&m, 7));
}

/* map_keys: every key once, and the map can change under the copy. */
static void
test_keys(void **state)
{
    struct map m;
    int v;
    size_t n = 99;
    uint64_t *keys;
    bool seen[1000] = {false};

    map_init(&m);
    assert_null(map_keys(&m, &n));
    assert_int_equal(n, 0);
    for (uint64_t k = 0; k < 1000; k++) {
        assert_int_equal(map_put(&m, k * 7919, &v), FERRY_OK);
    }
    keys = map_keys(&m, &n);
    assert_non_null(keys);
    assert_int_equal(n, 1000);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(keys[i] % 7919, 0);
        assert_false(seen[keys[i] / 7919]);
        seen[keys[i] / 7919] = true;
        /* Deleting while walking the copy is what it is for. */
        assert_ptr_equal(map_del(&m, keys[i]), &v);
    }
    assert_int_equal(m.n, 0);
    free(keys);
    map_release(&m);
}

static void
test_smap(void **state)
{
    static char names[500][16];
    static int vals[500];
    struct smap m;
    size_t pos = 0, count = 0;
    void *val;
    int empty;

    smap_init(&m);
    assert_null(smap_get(&m, "a", 1));
    for (size_t i = 0; i < 500; i++) {
        snprintf(names[i], sizeof(names[i]), "svc.%zu", i);
        assert_int_equal(smap_put(&m, names[i], strlen(names[i]), &vals[i]),
                         FERRY_OK);
    }
    assert_int_equal(smap_put(&m, "", 0, &empty), FERRY_OK);
    assert_int_equal(m.n, 501);
    for (size_t i = 0; i < 500; i++) {
        assert_ptr_equal(smap_get(&m, names[i], strlen(names[i])), &vals[i]);
    }
    assert_ptr_equal(smap_get(&m, "", 0), &empty);
    /* A prefix, or the same bytes and more, is another key. */
    assert_null(smap_get(&m, "svc.1", 4));
    assert_null(smap_get(&m, "svc.1000", 8));
    for (size_t i = 0; i < 500; i += 2) {
        assert_ptr_equal(smap_del(&m, names[i], strlen(names[i])), &vals[i]);
    }
    assert_null(smap_del(&m, names[0], strlen(names[0])));
    for (size_t i = 0; i < 500; i++) {
        assert_ptr_equal(smap_get(&m, names[i], strlen(names[i])),
                         i % 2 ? &vals[i] : NULL);
    }
    while (smap_next(&m, &pos, &val)) {
        assert_true(val == &empty || ((int *)val - vals) % 2 == 1);
        count++;
    }
    assert_int_equal(count, 251);
    smap_release(&m);
    assert_null(smap_get(&m, "", 0));
}

static void
test_hashes(void **state)
{
    /* Sequential ids land all over the table, not in one run. */
    size_t low = 0;

    for (uint64_t i = 0; i < 64; i++) {
        low += (map_hash_u64(i) & 63) < 32;
    }
    assert_true(low > 16 && low < 48);
    assert_int_equal(map_hash_bytes("abc", 3), map_hash_bytes("abc", 3));
    assert_true(map_hash_bytes("abc", 3) != map_hash_bytes("abd", 3));
    assert_true(map_hash_bytes("", 0) != map_hash_bytes("\0", 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_churn_matches_model),
        cmocka_unit_test(test_next_and_clear),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_smap),
        cmocka_unit_test(test_hashes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
