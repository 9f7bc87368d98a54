/*
 * test_bench_hist.c - the latency histogram of ferry bench
 * (src/cli/bench_hist.c): bucket bounds, precision and percentiles.
 *
 * The ferry command's objects are not among those unit tests link, so the
 * module is compiled into this test directly.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cli/bench_hist.c"

/* Every value lies in its bucket, and buckets are at most 1/128 wide. */
static void
test_bucket_bounds(void **state)
{
    uint64_t v, low, width;
    unsigned idx, prev = 0;
    int shift;

    for (v = 0; v < 100000; v++) {
        idx = bench_hist_bucket(v);
        low = bench_hist_bucket_low(idx);
        width = bench_hist_bucket_width(idx);
        assert_true(low <= v);
        assert_true(v < low + width);
        assert_true(idx >= prev);
        prev = idx;
        if (v >= BENCH_HIST_SUB) {
            assert_true(width * BENCH_HIST_SUB <= low);
        }
    }
    for (shift = 7; shift < 64; shift++) {
        v = (uint64_t)1 << shift;
        idx = bench_hist_bucket(v);
        assert_int_equal(bench_hist_bucket_low(idx), v);
        idx = bench_hist_bucket(v - 1);
        assert_true(bench_hist_bucket_low(idx) + bench_hist_bucket_width(idx) ==
                    v);
    }
    assert_true(bench_hist_bucket(UINT64_MAX) < BENCH_HIST_BUCKETS);
}

/* Exact below 128. */
static void
test_small_values_exact(void **state)
{
    struct bench_hist h;
    uint64_t v;

    bench_hist_init(&h);
    for (v = 1; v <= 100; v++) {
        bench_hist_record(&h, v);
    }
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    assert_true(bench_hist_quantile(&h, 0.50) == 50.0);
    assert_true(bench_hist_quantile(&h, 0.99) == 99.0);
    assert_true(bench_hist_quantile(&h, 1.0) == 100.0);
    assert_true(bench_hist_quantile(&h, 0.0) == 1.0);
}

/* Percentiles of a uniform spread of large values within 1%. */
static void
test_quantile_precision(void **state)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    struct bench_hist *h = malloc(sizeof(*h));
    double want, got;
    uint64_t i, n = 1000000;
    size_t k;

    assert_non_null(h);
    bench_hist_init(h);
    for (i = 1; i <= n; i++) {
        bench_hist_record(h, i * 1000); /* 1 us .. 1 s in ns */
    }
    for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        want = qs[k] * (double)n * 1000.0;
        got = bench_hist_quantile(h, qs[k]);
        assert_true(fabs(got - want) / want < 0.01);
    }
    free(h);
}

/* Merging equals recording everything in one. */
static void
test_merge(void **state)
{
    struct bench_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    uint64_t i;

    assert_non_null(a);
    assert_non_null(b);
    bench_hist_init(a);
    bench_hist_init(b);
    assert_true(bench_hist_quantile(a, 0.5) == 0.0);
    for (i = 0; i < 1000; i++) {
        bench_hist_record(i % 2 ? a : b, 1000 + i);
    }
    bench_hist_merge(a, b);
    assert_int_equal(a->count, 1000);
    assert_int_equal(a->min, 1000);
    assert_int_equal(a->max, 1999);
    assert_true(fabs(bench_hist_quantile(a, 0.5) - 1499.5) < 15.0);
    free(a);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_quantile_precision),
        cmocka_unit_test(test_merge),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
