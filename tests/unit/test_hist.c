/* SPDX-License-Identifier: MIT */
/*
 * test_hist.c - log-linear histograms in both shapes in use: the services'
 * (1/16, values up to 2^40 - 1 µs) and ferry bench's (1/128, any uint64_t
 * ns). Bucket boundaries, percentile accuracy within one bucket, merging,
 * zero, the largest values and the empty histogram.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/hist.h"

/* ferry bench's shape (src/cli/bench.c). */
#define BENCH_SUB_BITS 7
#define BENCH_MAX_BITS 64

static void
hist_setup(struct hist *h, unsigned sub_bits, unsigned max_bits)
{
    assert_int_equal(hist_init(h, sub_bits, max_bits), FERRY_OK);
    assert_non_null(h->buckets);
}

/* Every value lies in its bucket, buckets grow in order and are at most
 * 1/2^sub_bits of their values wide, powers of two start a bucket. */
static void
check_bucket_bounds(unsigned sub_bits, unsigned n_buckets)
{
    uint64_t sub = UINT64_C(1) << sub_bits;
    unsigned last = 0;

    for (uint64_t v = 0; v < 100000; v++) {
        unsigned b = hist_bucket(sub_bits, v);
        uint64_t low = hist_bucket_low(sub_bits, b);
        uint64_t width = hist_bucket_width(sub_bits, b);
        assert_true(b >= last);
        assert_true(b < n_buckets);
        assert_true(low <= v);
        assert_true(v < low + width);
        assert_true(hist_bucket_low(sub_bits, b + 1) > v);
        if (v >= sub) {
            assert_true(width * sub <= low);
        } else {
            /* Small values are exact. */
            assert_int_equal(b, v);
            assert_int_equal(width, 1);
        }
        last = b;
    }
    for (unsigned shift = sub_bits; shift < 64; shift++) {
        uint64_t v = UINT64_C(1) << shift;
        unsigned b = hist_bucket(sub_bits, v);
        assert_int_equal(hist_bucket_low(sub_bits, b), v);
        b = hist_bucket(sub_bits, v - 1);
        assert_true(
            hist_bucket_low(sub_bits, b) + hist_bucket_width(sub_bits, b) == v);
    }
}

static void
test_bucket_bounds(void **state)
{
    struct hist svc, bench;

    hist_setup(&svc, HIST_SUB_BITS, HIST_MAX_BITS);
    hist_setup(&bench, BENCH_SUB_BITS, BENCH_MAX_BITS);
    /* The services' shape keeps its size: 37 powers of two of 16. */
    assert_int_equal(svc.n_buckets, 592);
    assert_int_equal(bench.n_buckets, 58 * 128);
    check_bucket_bounds(HIST_SUB_BITS, svc.n_buckets);
    check_bucket_bounds(BENCH_SUB_BITS, bench.n_buckets);
    assert_int_equal(hist_bucket(HIST_SUB_BITS, 7), 7);
    assert_int_equal(hist_bucket(BENCH_SUB_BITS, 100), 100);
    /* The largest value of each shape is in its last bucket. */
    assert_int_equal(hist_bucket(HIST_SUB_BITS, svc.cap), svc.n_buckets - 1);
    assert_int_equal(hist_bucket(BENCH_SUB_BITS, UINT64_MAX),
                     bench.n_buckets - 1);
    hist_release(&svc);
    hist_release(&bench);
}

/* Past the cap, values are recorded as the cap; without one, as they are. */
static void
test_largest_values(void **state)
{
    struct hist svc, bench;

    hist_setup(&svc, HIST_SUB_BITS, HIST_MAX_BITS);
    hist_setup(&bench, BENCH_SUB_BITS, BENCH_MAX_BITS);
    assert_true(svc.cap == (UINT64_C(1) << 40) - 1);
    assert_true(bench.cap == UINT64_MAX);
    hist_record(&svc, UINT64_MAX);
    hist_record(&svc, UINT64_C(1) << 50);
    assert_int_equal(svc.count, 2);
    assert_true(svc.max == svc.cap);
    assert_true(svc.min == svc.cap);
    assert_int_equal(svc.buckets[svc.n_buckets - 1], 2);
    assert_true(hist_percentile(&svc, 0.5) == (double)svc.cap);
    hist_record(&bench, UINT64_MAX);
    assert_true(bench.max == UINT64_MAX);
    assert_int_equal(bench.buckets[bench.n_buckets - 1], 1);
    assert_true(hist_percentile(&bench, 0.5) == (double)UINT64_MAX);
    hist_release(&svc);
    hist_release(&bench);
}

static void
test_percentiles_within_a_bucket(void **state)
{
    struct hist h;

    hist_setup(&h, HIST_SUB_BITS, HIST_MAX_BITS);
    for (uint64_t v = 1; v <= 10000; v++) {
        hist_record(&h, v);
    }
    assert_int_equal(h.count, 10000);
    assert_int_equal(h.sum, 50005000);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 10000);
    assert_true(hist_percentile(&h, 0.5) > 5000 * 0.93);
    assert_true(hist_percentile(&h, 0.5) < 5000 * 1.07);
    assert_true(hist_percentile(&h, 0.99) > 9900 * 0.93);
    assert_true(hist_percentile(&h, 0.99) <= 10000);
    assert_true(hist_percentile(&h, 0.999) <= 10000);
    assert_true(hist_percentile(&h, 1.0) == 10000.0);
    assert_true(hist_percentile(&h, 0.0) == 1.0);
    hist_release(&h);
}

/* Exact below 128 with ferry bench's shape. */
static void
test_small_values_exact(void **state)
{
    struct hist h;

    hist_setup(&h, BENCH_SUB_BITS, BENCH_MAX_BITS);
    for (uint64_t v = 1; v <= 100; v++) {
        hist_record(&h, v);
    }
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    assert_true(hist_percentile(&h, 0.50) == 50.0);
    assert_true(hist_percentile(&h, 0.99) == 99.0);
    assert_true(hist_percentile(&h, 1.0) == 100.0);
    assert_true(hist_percentile(&h, 0.0) == 1.0);
    hist_release(&h);
}

/* Percentiles of a uniform spread, 1 µs .. 1 s in ns: within 1% with
 * ferry bench's shape, within 1/16 with the services'. */
static void
test_percentile_precision(void **state)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    struct hist bench, svc;
    uint64_t n = 1000000;

    hist_setup(&bench, BENCH_SUB_BITS, BENCH_MAX_BITS);
    hist_setup(&svc, HIST_SUB_BITS, HIST_MAX_BITS);
    for (uint64_t i = 1; i <= n; i++) {
        hist_record(&bench, i * 1000);
        hist_record(&svc, i * 1000);
    }
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double want = qs[k] * (double)n * 1000.0;
        assert_true(fabs(hist_percentile(&bench, qs[k]) - want) / want < 0.01);
        assert_true(fabs(hist_percentile(&svc, qs[k]) - want) / want < 0.0625);
    }
    hist_release(&bench);
    hist_release(&svc);
}

/* One value: every percentile is that value, never past max. */
static void
check_single_value_and_empty(unsigned sub_bits, unsigned max_bits)
{
    struct hist h;

    hist_setup(&h, sub_bits, max_bits);
    assert_true(hist_percentile(&h, 0.5) == 0.0);
    assert_true(hist_percentile(&h, 1.0) == 0.0);
    assert_int_equal(h.min, 0);
    hist_record(&h, 40);
    assert_true(hist_percentile(&h, 0.5) == 40.0);
    assert_true(hist_percentile(&h, 0.999) == 40.0);
    hist_release(&h);
    hist_setup(&h, sub_bits, max_bits);
    hist_record(&h, 1000001);
    assert_true(hist_percentile(&h, 0.5) == 1000001.0);
    hist_release(&h);
}

static void
test_single_value_and_empty(void **state)
{
    check_single_value_and_empty(HIST_SUB_BITS, HIST_MAX_BITS);
    check_single_value_and_empty(BENCH_SUB_BITS, BENCH_MAX_BITS);
}

/* Zero is a value like any other: bucket 0, and the minimum. */
static void
check_zero(unsigned sub_bits, unsigned max_bits)
{
    struct hist h;

    hist_setup(&h, sub_bits, max_bits);
    assert_int_equal(hist_bucket(sub_bits, 0), 0);
    for (int i = 0; i < 3; i++) {
        hist_record(&h, 0);
    }
    assert_int_equal(h.count, 3);
    assert_int_equal(h.buckets[0], 3);
    assert_true(hist_percentile(&h, 0.5) == 0.0);
    assert_true(hist_percentile(&h, 1.0) == 0.0);
    hist_record(&h, 1000);
    assert_int_equal(h.min, 0);
    assert_int_equal(h.max, 1000);
    assert_true(hist_percentile(&h, 0.75) == 0.0);
    assert_true(hist_percentile(&h, 0.0) == 0.0);
    assert_true(hist_percentile(&h, 0.9) > 900.0);
    hist_release(&h);
}

static void
test_zero(void **state)
{
    check_zero(HIST_SUB_BITS, HIST_MAX_BITS);
    check_zero(BENCH_SUB_BITS, BENCH_MAX_BITS);
}

static void
test_merge(void **state)
{
    struct hist a, b;

    hist_setup(&a, HIST_SUB_BITS, HIST_MAX_BITS);
    hist_setup(&b, HIST_SUB_BITS, HIST_MAX_BITS);
    for (int i = 0; i < 100; i++) {
        hist_record(&a, 10);
        hist_record(&b, 1000);
    }
    hist_merge(&a, &b);
    assert_int_equal(a.count, 200);
    assert_int_equal(a.sum, 101000);
    assert_int_equal(a.min, 10);
    assert_int_equal(a.max, 1000);
    assert_true(hist_percentile(&a, 0.25) == 10.0);
    assert_true(hist_percentile(&a, 0.9) > 930.0);
    hist_release(&a);
    hist_release(&b);
}

/* Merging equals recording everything in one; an empty side changes
 * nothing. */
static void
test_merge_bench_shape(void **state)
{
    struct hist a, b, all, empty;

    hist_setup(&a, BENCH_SUB_BITS, BENCH_MAX_BITS);
    hist_setup(&b, BENCH_SUB_BITS, BENCH_MAX_BITS);
    hist_setup(&all, BENCH_SUB_BITS, BENCH_MAX_BITS);
    hist_setup(&empty, BENCH_SUB_BITS, BENCH_MAX_BITS);
    assert_true(hist_percentile(&a, 0.5) == 0.0);
    for (uint64_t i = 0; i < 1000; i++) {
        hist_record(i % 2 ? &a : &b, 1000 + i);
        hist_record(&all, 1000 + i);
    }
    hist_merge(&a, &empty);
    hist_merge(&a, &b);
    assert_int_equal(a.count, 1000);
    assert_int_equal(a.min, 1000);
    assert_int_equal(a.max, 1999);
    assert_true(fabs(hist_percentile(&a, 0.5) - 1499.5) < 15.0);
    for (unsigned i = 0; i < a.n_buckets; i++) {
        assert_int_equal(a.buckets[i], all.buckets[i]);
    }
    hist_merge(&empty, &all);
    assert_int_equal(empty.min, 1000);
    assert_true(hist_percentile(&empty, 0.99) == hist_percentile(&all, 0.99));
    hist_release(&a);
    hist_release(&b);
    hist_release(&all);
    hist_release(&empty);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_largest_values),
        cmocka_unit_test(test_percentiles_within_a_bucket),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_percentile_precision),
        cmocka_unit_test(test_single_value_and_empty),
        cmocka_unit_test(test_zero),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_bench_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
