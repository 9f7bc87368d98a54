/* SPDX-License-Identifier: MIT */
/*
 * test_vbmap.c - the cluster's vbucket map: the recorded vectors of
 * tests/vectors/vbuckets.json (keys to vbuckets, a five-member map's
 * owners), the same map for any order of members, balance, a leave moving
 * only the leaver's vbuckets and a join only the joiner's, refused member
 * lists, the map without members, hrw_pick against a brute force, and the
 * simulation of 100 and 1000 members joining and leaving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster/vbmap.h"
#include "core/rand.h"

#define NAMES_MAX 1001

static char name_buf[NAMES_MAX][32];
static const char *names[NAMES_MAX];

/* names[0..n) = "<prefix>-<i>". */
static void
make_names(const char *prefix, size_t n)
{
    assert_true(n <= NAMES_MAX);
    for (size_t i = 0; i < n; i++) {
        snprintf(name_buf[i], sizeof(name_buf[i]), "%s-%zu", prefix, i);
        names[i] = name_buf[i];
    }
}

static const char *
vectors_path(void)
{
    const char *p = getenv("FERRY_VBUCKET_VECTORS");

    return p != NULL ? p : "tests/vectors/vbuckets.json";
}

static void
test_vectors(void **state)
{
    json_error_t jerr;
    json_t *root = json_load_file(vectors_path(), 0, &jerr);
    json_t *v, *w, *owners, *members;
    const char *mem[8];
    struct vbmap m;
    size_t i, n;

    if (root == NULL) {
        fail_msg("cannot load %s: %s", vectors_path(), jerr.text);
    }
    assert_int_equal(json_integer_value(json_object_get(root, "vb_count")),
                     VB_COUNT);
    json_array_foreach(json_object_get(root, "keys"), i, v)
    {
        const char *k = json_string_value(json_object_get(v, "key"));

        assert_int_equal(vb_of_key(k, strlen(k)),
                         json_integer_value(json_object_get(v, "vbucket")));
    }
    members = json_object_get(root, "members");
    n = json_array_size(members);
    assert_true(n > 0 && n <= 8);
    /* Given backwards: the order must not matter. */
    for (i = 0; i < n; i++) {
        mem[n - 1 - i] = json_string_value(json_array_get(members, i));
        assert_non_null(json_object_get(json_object_get(root, "name_hashes"),
                                        mem[n - 1 - i]));
    }
    assert_int_equal(vbmap_init(&m, mem, n, 7), FERRY_OK);
    for (i = 0; i < n; i++) {
        char buf[32];
        const char *nm = m.members[i].name;

        snprintf(buf, sizeof(buf), "%llu",
                 (unsigned long long)vbmap_name_hash(nm, strlen(nm)));
        assert_string_equal(buf,
                            json_string_value(json_object_get(
                                json_object_get(root, "name_hashes"), nm)));
        assert_int_equal(vbmap_owned(&m, (uint16_t)i),
                         json_integer_value(json_object_get(
                             json_object_get(root, "owned"), nm)));
    }
    owners = json_object_get(root, "owners");
    assert_true(json_array_size(owners) > 0);
    json_array_foreach(owners, i, v)
    {
        unsigned vb =
            (unsigned)json_integer_value(json_object_get(v, "vbucket"));
        const char *nm;

        assert_string_equal(vbmap_owner(&m, vb),
                            json_string_value(json_object_get(v, "owner")));
        json_object_foreach(json_object_get(v, "weights"), nm, w)
        {
            char buf[32];

            snprintf(buf, sizeof(buf), "%llu",
                     (unsigned long long)vbmap_weight(
                         vbmap_name_hash(nm, strlen(nm)), (uint16_t)vb));
            assert_string_equal(buf, json_string_value(w));
        }
    }
    vbmap_release(&m);
    json_decref(root);
}

/* The weight written out from docs/cluster.md, apart from the code. */
static uint64_t
doc_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
test_weight_formula(void **state)
{
    uint64_t s;

    rand_init(&s, 12345);
    for (int i = 0; i < 1000; i++) {
        uint64_t k = rand_next(&s), id = rand_next(&s) % 64;

        assert_true(hrw_weight(k, id) ==
                    doc_mix(k ^ doc_mix(id + 0x9e3779b97f4a7c15ull)));
        assert_true(vbmap_weight(k, (uint16_t)(id * 16)) ==
                    hrw_weight(k, id * 16));
    }
    for (int vb = 0; vb < VB_COUNT; vb++) {
        char k[16];
        int len = snprintf(k, sizeof(k), "k%d", vb);

        assert_true(vb_of_key(k, (size_t)len) < VB_COUNT);
    }
}

/* The owner of each vbucket found by brute force over names[0..n). */
static void
check_brute_force(const struct vbmap *m, size_t n)
{
    for (unsigned vb = 0; vb < VB_COUNT; vb++) {
        const char *best = NULL;
        uint64_t best_w = 0;

        for (size_t i = 0; i < n; i++) {
            uint64_t w = vbmap_weight(
                vbmap_name_hash(names[i], strlen(names[i])), (uint16_t)vb);

            if (best == NULL || w > best_w ||
                (w == best_w && strcmp(names[i], best) < 0)) {
                best = names[i];
                best_w = w;
            }
        }
        assert_string_equal(vbmap_owner(m, vb), best);
    }
}

static void
test_any_order(void **state)
{
    struct vbmap a, b;
    uint64_t s;

    make_names("node", 40);
    assert_int_equal(vbmap_init(&a, names, 40, 3), FERRY_OK);
    assert_int_equal(a.epoch, 3);
    assert_int_equal(a.n, 40);
    for (size_t i = 1; i < a.n; i++) {
        assert_true(strcmp(a.members[i - 1].name, a.members[i].name) < 0);
    }
    check_brute_force(&a, 40);
    rand_init(&s, 99);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 39; i > 0; i--) {
            size_t j = (size_t)(rand_next(&s) % (i + 1));
            const char *t = names[i];

            names[i] = names[j];
            names[j] = t;
        }
        assert_int_equal(vbmap_init(&b, names, 40, 3), FERRY_OK);
        assert_int_equal(vbmap_moved(&a, &b), 0);
        assert_memory_equal(a.owner, b.owner, sizeof(a.owner));
        vbmap_release(&b);
    }
    vbmap_release(&a);
}

/* Each member's share is within 5 standard deviations of a binomial
 * (1024, 1/N) around 1024/N: a mix that ignored the name or the vbucket
 * gives one member everything and fails. */
static void
test_balance(void **state)
{
    static const size_t ns[] = {3, 5, 10, 100};

    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        size_t n = ns[t];
        double mean = (double)VB_COUNT / (double)n;
        double tol = 5 * sqrt(VB_COUNT * (1.0 / n) * (1 - 1.0 / n));
        unsigned sum = 0;
        struct vbmap m;

        make_names("ferry", n);
        assert_int_equal(vbmap_init(&m, names, n, 1), FERRY_OK);
        for (size_t i = 0; i < n; i++) {
            unsigned k = vbmap_owned(&m, (uint16_t)i);

            if (fabs(k - mean) > tol) {
                fail_msg("N=%zu: %s owns %u, not within %.1f of %.1f", n,
                         m.members[i].name, k, tol, mean);
            }
            sum += k;
        }
        assert_int_equal(sum, VB_COUNT);
        vbmap_release(&m);
    }
}

/* Removing names[gone] from names[0..n) moves exactly the vbuckets it
 * owned, to members that were there; adding it back moves them back. */
static void
check_leave_join(size_t n, size_t gone)
{
    struct vbmap all, less;
    const char *rest[NAMES_MAX];
    uint16_t gi;
    size_t k = 0;
    unsigned owned;

    for (size_t i = 0; i < n; i++) {
        if (i != gone) {
            rest[k++] = names[i];
        }
    }
    assert_int_equal(vbmap_init(&all, names, n, 1), FERRY_OK);
    assert_int_equal(vbmap_init(&less, rest, n - 1, 2), FERRY_OK);
    gi = vbmap_index(&all, names[gone], strlen(names[gone]));
    assert_int_not_equal(gi, VB_NONE);
    assert_int_equal(vbmap_index(&less, names[gone], strlen(names[gone])),
                     VB_NONE);
    owned = vbmap_owned(&all, gi);
    assert_int_equal(vbmap_moved(&all, &less), owned);
    assert_int_equal(vbmap_moved(&less, &all), owned);
    for (unsigned vb = 0; vb < VB_COUNT; vb++) {
        if (all.owner[vb] == gi) {
            assert_string_not_equal(vbmap_owner(&less, vb), names[gone]);
        } else {
            assert_string_equal(vbmap_owner(&less, vb), vbmap_owner(&all, vb));
        }
    }
    vbmap_release(&less);
    vbmap_release(&all);
}

static void
test_leave_and_join(void **state)
{
    make_names("m", 10);
    for (size_t g = 0; g < 10; g++) {
        check_leave_join(10, g);
    }
    make_names("m", 3);
    check_leave_join(3, 1);
    /* A second member joining the first takes about half. */
    make_names("m", 2);
    check_leave_join(2, 1);
}

static void
test_refused(void **state)
{
    const char *dup[] = {"a", "b", "a"};
    const char *empty[] = {"a", ""};
    char longname[VBMAP_NAME_MAX + 2];
    const char *lng[] = {longname};
    struct vbmap m;

    memset(&m, 0x5a, sizeof(m));
    assert_int_equal(vbmap_init(&m, dup, 3, 1), FERRY_EINVALID_ARGUMENT);
    assert_int_equal(vbmap_init(&m, empty, 2, 1), FERRY_EINVALID_ARGUMENT);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(vbmap_init(&m, lng, 1, 1), FERRY_EINVALID_ARGUMENT);
    /* Nothing written on a refusal. */
    assert_int_equal(m.n, (size_t)0x5a5a5a5a5a5a5a5aull);
    longname[VBMAP_NAME_MAX] = '\0';
    assert_int_equal(vbmap_init(&m, lng, 1, 1), FERRY_OK);
    assert_int_equal(vbmap_owned(&m, 0), VB_COUNT);
    assert_int_equal(vbmap_owned(&m, 1), 0);
    assert_string_equal(vbmap_owner(&m, 0), longname);
    assert_null(vbmap_owner(&m, VB_COUNT));
    vbmap_release(&m);
}

static void
test_no_members(void **state)
{
    struct vbmap e, one;
    const char *a[] = {"a"};

    assert_int_equal(vbmap_init(&e, NULL, 0, 5), FERRY_OK);
    for (unsigned vb = 0; vb < VB_COUNT; vb++) {
        assert_int_equal(e.owner[vb], VB_NONE);
        assert_null(vbmap_owner(&e, vb));
    }
    assert_int_equal(vbmap_index(&e, "a", 1), VB_NONE);
    assert_int_equal(vbmap_owned(&e, 0), 0);
    assert_int_equal(vbmap_init(&one, a, 1, 6), FERRY_OK);
    assert_int_equal(vbmap_moved(&e, &one), VB_COUNT);
    assert_int_equal(vbmap_moved(&e, &e), 0);
    vbmap_release(&one);
    assert_int_equal(vbmap_moved(&e, &one), 0);
    vbmap_release(&e);
}

static void
test_hrw_pick(void **state)
{
    uint64_t ids[8] = {3, 1, 4, 15, 9, 2, 6, 5};
    uint64_t less[7];
    unsigned hits[8] = {0};
    uint64_t s;

    assert_int_equal(hrw_pick(1, ids, 0), SIZE_MAX);
    assert_int_equal(hrw_pick(1, ids, 1), 0);
    /* less = ids without 9 (index 4). */
    memcpy(less, ids, 4 * sizeof(*ids));
    memcpy(less + 4, ids + 5, 3 * sizeof(*ids));
    rand_init(&s, 7);
    for (int i = 0; i < 20000; i++) {
        uint64_t k = rand_next(&s);
        size_t p = hrw_pick(k, ids, 8), q, best = 0;

        for (size_t j = 1; j < 8; j++) {
            if (hrw_weight(k, ids[j]) > hrw_weight(k, ids[best])) {
                best = j;
            }
        }
        assert_int_equal(p, best);
        hits[p]++;
        q = hrw_pick(k, less, 7);
        if (p != 4) {
            assert_int_equal(less[q], ids[p]);
        }
    }
    /* 2500 each expected; sd about 47. */
    for (size_t j = 0; j < 8; j++) {
        assert_in_range(hits[j], 2250, 2750);
    }
    /* Same weight (the same id twice): the first of them. */
    ids[5] = ids[0];
    for (int i = 0; i < 100; i++) {
        size_t p = hrw_pick((uint64_t)i, ids, 8);

        assert_int_not_equal(p, 5);
    }
}

/* The simulation: for 100 and 1000 members, random leaves and
 * joins each move the leaver's or joiner's share only, about 1024/N. */
static void
simulate(size_t n, int rounds)
{
    struct vbmap base, other;
    const char *rest[NAMES_MAX];
    uint64_t s;
    double mean = (double)VB_COUNT / (double)n, sum = 0;
    unsigned max = 0;

    make_names("sim", n + 1);
    assert_int_equal(vbmap_init(&base, names, n, 1), FERRY_OK);
    rand_init(&s, n);
    for (int r = 0; r < rounds; r++) {
        unsigned moved;

        if (r % 2 == 0) {
            /* One leaves. */
            size_t g = (size_t)(rand_next(&s) % n), k = 0;

            for (size_t i = 0; i < n; i++) {
                if (i != g) {
                    rest[k++] = names[i];
                }
            }
            assert_int_equal(vbmap_init(&other, rest, n - 1, 2), FERRY_OK);
            moved = vbmap_moved(&base, &other);
            assert_int_equal(moved,
                             vbmap_owned(&base, vbmap_index(&base, names[g],
                                                            strlen(names[g]))));
        } else {
            /* A new name joins (a fresh one each round). */
            char fresh[32];

            snprintf(fresh, sizeof(fresh), "joiner-%d", r);
            memcpy(rest, names, n * sizeof(*names));
            rest[n] = fresh;
            assert_int_equal(vbmap_init(&other, rest, n + 1, 2), FERRY_OK);
            moved = vbmap_moved(&base, &other);
            assert_int_equal(
                moved,
                vbmap_owned(&other, vbmap_index(&other, fresh, strlen(fresh))));
        }
        sum += moved;
        max = moved > max ? moved : max;
        vbmap_release(&other);
    }
    sum /= rounds;
    /* The mean of many draws is close to 1024/N (within 25%), no single
     * one more than 5 times it. */
    if (fabs(sum - mean) > 0.25 * mean || max > 5 * mean + 5) {
        fail_msg("N=%zu: mean moved %.2f, max %u, 1024/N %.2f", n, sum, max,
                 mean);
    }
    vbmap_release(&base);
}

static void
test_simulation(void **state)
{
    simulate(100, 200);
    simulate(1000, 200);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_weight_formula),
        cmocka_unit_test(test_any_order),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_leave_and_join),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_no_members),
        cmocka_unit_test(test_hrw_pick),
        cmocka_unit_test(test_simulation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
