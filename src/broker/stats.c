/* SPDX-License-Identifier: MIT */
/*
 * stats.c - rolling per-second service statistics (see stats.h).
 */
#include "broker/stats.h"

#include <string.h>

#define STATS_LAT_CAP ((UINT64_C(1) << STATS_LAT_BITS) - 1)

const uint32_t stats_heat_bounds_us[STATS_HEAT_BOUNDS] = {
    50,    100,   200,   500,    1000,   2000,   5000,
    10000, 20000, 50000, 100000, 200000, 500000, 1000000,
};

void
stats_init(struct stats *st)
{
    memset(st, 0, sizeof(*st));
}

static uint64_t
stats_second(uint64_t now_ms)
{
    return now_ms / 1000 + 1;
}

/* The slot of the current second, cleared if it held an older one. */
static struct stats_slot *
stats_slot(struct stats *st, uint64_t now_ms)
{
    uint64_t sec = stats_second(now_ms);
    struct stats_slot *s = &st->slots[sec % STATS_SLOTS];

    if (s->second != sec) {
        memset(s, 0, sizeof(*s));
        s->second = sec;
    }
    if (st->first_second == 0) {
        st->first_second = sec;
    }
    return s;
}

unsigned
stats_heat_bucket(uint64_t lat_us)
{
    unsigned lo = 0, hi = STATS_HEAT_BOUNDS;

    /* The first bound >= lat_us, by bisection. */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (lat_us <= stats_heat_bounds_us[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

void
stats_record_request(struct stats *st, uint64_t now_ms)
{
    stats_slot(st, now_ms)->requests++;
}

void
stats_record_reply(struct stats *st, uint64_t now_ms, uint64_t lat_us)
{
    struct stats_slot *s = stats_slot(st, now_ms);
    unsigned heat = stats_heat_bucket(lat_us);
    uint64_t capped = lat_us > STATS_LAT_CAP ? STATS_LAT_CAP : lat_us;

    s->replies++;
    s->heat[heat]++;
    s->lat[hist_bucket(HIST_SUB_BITS, capped) / 4]++;
    if (capped > s->max_us) {
        s->max_us = (uint32_t)capped;
    }
    st->total_count++;
    st->total_sum_us += lat_us;
    st->total_heat[heat]++;
}

void
stats_record_error(struct stats *st, uint64_t now_ms)
{
    stats_slot(st, now_ms)->errors++;
}

/* The slot holding second sec, or NULL when the ring has moved past it. */
static const struct stats_slot *
stats_find(const struct stats *st, uint64_t sec)
{
    const struct stats_slot *s = &st->slots[sec % STATS_SLOTS];

    return sec != 0 && s->second == sec ? s : NULL;
}

/* The value below which a fraction q of the n latencies in lat fall, as
 * the middle of its bucket, at most max_us; 0 when n is 0. */
static double
stats_percentile(const uint64_t *lat, uint64_t n, uint64_t max_us, double q)
{
    uint64_t rank, seen = 0;

    if (n == 0) {
        return 0.0;
    }
    rank = (uint64_t)(q * (double)n);
    if ((double)rank < q * (double)n) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
        seen += lat[i];
        if (seen >= rank) {
            double low = (double)hist_bucket_low(HIST_SUB_BITS, i * 4);
            double next = (double)hist_bucket_low(HIST_SUB_BITS, i * 4 + 4);
            double mid = low + (next - 1.0 - low) / 2.0;
            return mid > (double)max_us ? (double)max_us : mid;
        }
    }
    return (double)max_us;
}

void
stats_read(const struct stats *st, uint64_t now_ms, struct stats_view *v)
{
    uint64_t now = stats_second(now_ms);
    uint64_t lat[STATS_LAT_BUCKETS];
    uint64_t n = 0, max_us = 0, done = 0, span;
    const struct stats_slot *s;

    memset(v, 0, sizeof(*v));
    memset(lat, 0, sizeof(lat));
    s = stats_find(st, now - 1);
    if (s != NULL) {
        v->rps = (double)s->replies + (double)s->errors;
        v->errors_per_s = (double)s->errors;
        for (unsigned i = 0; i < STATS_HEAT_BUCKETS; i++) {
            v->heat[i] = s->heat[i];
        }
    }
    /* Rates over complete seconds; percentiles include the current one. */
    for (uint64_t k = 0; k <= STATS_WINDOW_S; k++) {
        if (k > now) {
            break;
        }
        s = stats_find(st, now - k);
        if (s == NULL) {
            continue;
        }
        if (k >= 1) {
            done += (uint64_t)s->replies + s->errors;
        }
        if (k < STATS_WINDOW_S) {
            for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
                lat[i] += s->lat[i];
            }
            n += s->replies;
            if (s->max_us > max_us) {
                max_us = s->max_us;
            }
        }
    }
    /* A service younger than a minute: average over the seconds it had. */
    span = STATS_WINDOW_S;
    if (st->first_second != 0 && now - st->first_second < span) {
        span = now - st->first_second;
    }
    v->rps_60s = span > 0 ? (double)done / (double)span : 0.0;
    v->p50 = stats_percentile(lat, n, max_us, 0.50);
    v->p90 = stats_percentile(lat, n, max_us, 0.90);
    v->p99 = stats_percentile(lat, n, max_us, 0.99);
    v->p999 = stats_percentile(lat, n, max_us, 0.999);
}
