/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - the rolling per-second window: rates of the last
 * complete second and of the minute, lazy advance and expiry of slots,
 * window percentiles, heatmap buckets and the lifetime histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "broker/stats.h"

/* A loop clock that does not start at 0, like uv_now(). */
#define T0 UINT64_C(7654321000)

static struct stats *
new_stats(void)
{
    struct stats *st = malloc(sizeof(*st));

    assert_non_null(st);
    stats_init(st);
    return st;
}

static void
test_heat_buckets(void **state)
{
    assert_int_equal(stats_heat_bucket(0), 0);
    assert_int_equal(stats_heat_bucket(50), 0);
    assert_int_equal(stats_heat_bucket(51), 1);
    assert_int_equal(stats_heat_bucket(100), 1);
    assert_int_equal(stats_heat_bucket(499), 3);
    assert_int_equal(stats_heat_bucket(500), 3);
    assert_int_equal(stats_heat_bucket(1000000), 13);
    assert_int_equal(stats_heat_bucket(1000001), STATS_HEAT_BOUNDS);
    assert_int_equal(stats_heat_bucket(UINT64_MAX), STATS_HEAT_BOUNDS);
    for (unsigned i = 1; i < STATS_HEAT_BOUNDS; i++) {
        assert_true(stats_heat_bounds_us[i] > stats_heat_bounds_us[i - 1]);
    }
}

static void
test_empty(void **state)
{
    struct stats *st = new_stats();
    struct stats_view v;

    stats_read(st, T0, &v);
    assert_true(v.rps == 0.0);
    assert_true(v.rps_60s == 0.0);
    assert_true(v.errors_per_s == 0.0);
    assert_true(v.p50 == 0.0 && v.p999 == 0.0);
    for (unsigned i = 0; i < STATS_HEAT_BUCKETS; i++) {
        assert_int_equal(v.heat[i], 0);
    }
    free(st);
}

static void
test_last_complete_second(void **state)
{
    struct stats *st = new_stats();
    struct stats_view v;

    /* 100 requests in one second: 90 replies at 300 µs, 10 errors. */
    for (int i = 0; i < 100; i++) {
        stats_record_request(st, T0 + (uint64_t)i);
    }
    for (int i = 0; i < 90; i++) {
        stats_record_reply(st, T0 + 500, 300);
    }
    for (int i = 0; i < 10; i++) {
        stats_record_error(st, T0 + 900);
    }
    /* Still in that second: no complete second yet, but the window
     * percentiles already show it. */
    stats_read(st, T0 + 999, &v);
    assert_true(v.rps == 0.0);
    assert_true(v.p50 > 300 * 0.85 && v.p50 < 300 * 1.15);
    /* The next second: that one is complete. */
    stats_read(st, T0 + 1200, &v);
    assert_true(v.rps == 100.0);
    assert_true(v.errors_per_s == 10.0);
    assert_true(v.rps_60s == 100.0); /* one second of history */
    assert_int_equal(v.heat[stats_heat_bucket(300)], 90);
    assert_int_equal(v.heat[0], 0);
    /* Two seconds later, the last complete second is empty. */
    stats_read(st, T0 + 2500, &v);
    assert_true(v.rps == 0.0);
    assert_true(v.errors_per_s == 0.0);
    assert_int_equal(v.heat[stats_heat_bucket(300)], 0);
    assert_true(v.rps_60s == 50.0); /* 100 over two seconds */
    free(st);
}

static void
test_minute_window_and_expiry(void **state)
{
    struct stats *st = new_stats();
    struct stats_view v;

    /* 10 replies a second for 120 s, latency 1000 µs then 10000 µs. */
    for (uint64_t s = 0; s < 120; s++) {
        for (int i = 0; i < 10; i++) {
            stats_record_reply(st, T0 + s * 1000 + (uint64_t)i,
                               s < 60 ? 1000 : 10000);
        }
    }
    stats_read(st, T0 + 120 * 1000 + 10, &v);
    assert_true(v.rps == 10.0);
    assert_true(v.rps_60s == 10.0);
    /* The first minute has left the window: only 10000 µs remain. */
    assert_true(v.p50 > 10000 * 0.85 && v.p50 <= 10000);
    assert_true(v.p999 <= 10000);
    assert_int_equal(st->total_count, 1200);
    assert_int_equal(st->total_sum_us, 600 * 1000 + 600 * 10000);
    assert_int_equal(st->total_heat[stats_heat_bucket(1000)], 600);
    assert_int_equal(st->total_heat[stats_heat_bucket(10000)], 600);
    /* Idle for a long time: everything but the totals is gone. */
    stats_read(st, T0 + 3600 * 1000, &v);
    assert_true(v.rps == 0.0 && v.rps_60s == 0.0 && v.p50 == 0.0);
    /* A slot reused after a gap starts from zero. */
    stats_record_reply(st, T0 + 3600 * 1000, 70);
    stats_read(st, T0 + 3601 * 1000, &v);
    assert_true(v.rps == 1.0);
    assert_int_equal(v.heat[stats_heat_bucket(70)], 1);
    free(st);
}

static void
test_window_percentiles(void **state)
{
    struct stats *st = new_stats();
    struct stats_view v;

    /* 1..10000 µs spread over ten seconds. */
    for (uint64_t x = 1; x <= 10000; x++) {
        stats_record_reply(st, T0 + (x % 10) * 1000, x);
    }
    stats_read(st, T0 + 10 * 1000, &v);
    assert_true(v.p50 > 5000 * 0.85 && v.p50 < 5000 * 1.15);
    assert_true(v.p90 > 9000 * 0.85 && v.p90 < 9000 * 1.15);
    assert_true(v.p99 > 9900 * 0.85 && v.p99 <= 10000);
    assert_true(v.p999 <= 10000);
    assert_true(v.p50 <= v.p90 && v.p90 <= v.p99 && v.p99 <= v.p999);
    /* Huge values are capped, not lost. */
    stats_record_reply(st, T0 + 10 * 1000, UINT64_C(1) << 40);
    stats_read(st, T0 + 10 * 1000, &v);
    assert_true(v.p999 > 0);
    assert_int_equal(st->total_heat[STATS_HEAT_BOUNDS], 1);
    free(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heat_buckets),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_last_complete_second),
        cmocka_unit_test(test_minute_window_and_expiry),
        cmocka_unit_test(test_window_percentiles),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
