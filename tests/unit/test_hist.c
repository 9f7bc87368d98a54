/*
 * test_hist.c - log-linear histograms: bucket boundaries, percentile
 * accuracy within one bucket, merging, and the empty histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/hist.h"

static void
test_buckets_are_monotonic(void **state)
{
    unsigned last = 0;

    for (uint64_t v = 0; v < 100000; v++) {
        unsigned b = hist_bucket(v);
        assert_true(b >= last);
        assert_true(b < HIST_BUCKETS);
        assert_true(hist_bucket_low(b) <= v);
        if (b + 1 < HIST_BUCKETS) {
            assert_true(hist_bucket_low(b + 1) > v);
        }
        last = b;
    }
    /* Small values are exact; huge values land in the last bucket. */
    assert_int_equal(hist_bucket(7), 7);
    assert_int_equal(hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
}

static void
test_percentiles_within_a_bucket(void **state)
{
    struct hist *h = malloc(sizeof(*h));

    assert_non_null(h);
    hist_init(h);
    for (uint64_t v = 1; v <= 10000; v++) {
        hist_record(h, v);
    }
    assert_int_equal(h->count, 10000);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 10000);
    assert_true(hist_percentile(h, 0.5) > 5000 * 0.93);
    assert_true(hist_percentile(h, 0.5) < 5000 * 1.07);
    assert_true(hist_percentile(h, 0.99) > 9900 * 0.93);
    assert_true(hist_percentile(h, 0.99) <= 10000);
    assert_true(hist_percentile(h, 0.999) <= 10000);
    assert_true(hist_percentile(h, 1.0) == 10000.0);
    assert_true(hist_percentile(h, 0.0) == 1.0);
    free(h);
}

static void
test_single_value_and_empty(void **state)
{
    struct hist *h = malloc(sizeof(*h));

    assert_non_null(h);
    hist_init(h);
    assert_true(hist_percentile(h, 0.5) == 0.0);
    hist_record(h, 40);
    /* One value: every percentile is that value, never past max. */
    assert_true(hist_percentile(h, 0.5) == 40.0);
    assert_true(hist_percentile(h, 0.999) == 40.0);
    free(h);
}

static void
test_merge(void **state)
{
    struct hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

    assert_non_null(a);
    assert_non_null(b);
    hist_init(a);
    hist_init(b);
    for (int i = 0; i < 100; i++) {
        hist_record(a, 10);
        hist_record(b, 1000);
    }
    hist_merge(a, b);
    assert_int_equal(a->count, 200);
    assert_int_equal(a->min, 10);
    assert_int_equal(a->max, 1000);
    assert_true(hist_percentile(a, 0.25) == 10.0);
    assert_true(hist_percentile(a, 0.9) > 930.0);
    free(a);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_are_monotonic),
        cmocka_unit_test(test_percentiles_within_a_bucket),
        cmocka_unit_test(test_single_value_and_empty),
        cmocka_unit_test(test_merge),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
