/* SPDX-License-Identifier: MIT */
/*
 * stats.h - a service's rolling statistics: the last minute second by
 * second, and a coarse lifetime latency histogram for /metrics.
 *
 * Each service embeds a struct stats. The request path records arrivals,
 * replies (with their latency) and errors; the admin endpoints read rates,
 * window percentiles and a per-second latency heatmap from it. The window
 * is a ring of one-second slots tagged with the loop second they hold: a
 * slot is cleared when a record finds it holding an older second, so the
 * ring advances lazily with the loop clock, without any timer, and a
 * record is O(1) and never allocates.
 */
#ifndef FERRY_BROKER_STATS_H
#define FERRY_BROKER_STATS_H

#include <stdint.h>

#include "core/hist.h"

/* Sixty complete seconds and the one in progress. */
#define STATS_SLOTS 61
#define STATS_WINDOW_S 60

/* Upper bounds (µs) of the heatmap and /metrics histogram buckets; one more
 * bucket follows for everything above the last (+Inf). */
#define STATS_HEAT_BOUNDS 14
#define STATS_HEAT_BUCKETS (STATS_HEAT_BOUNDS + 1)
extern const uint32_t stats_heat_bounds_us[STATS_HEAT_BOUNDS];

/* A slot's latency histogram: hist.h's buckets four at a time (a quarter
 * of a power of two each, so percentiles are within about 12%), values
 * capped at 2^STATS_LAT_BITS - 1 µs (about 18 minutes). */
#define STATS_LAT_BITS 30
#define STATS_LAT_BUCKETS ((STATS_LAT_BITS - HIST_SUB_BITS + 1) * HIST_SUB / 4)

/* One second of one service; embedded in struct stats. */
struct stats_slot {
    uint64_t second;                   /* loop second held, or 0 */
    uint32_t requests;                 /* requests that arrived */
    uint32_t replies;                  /* requests answered with REPLY */
    uint32_t errors;                   /* requests ended by ERROR */
    uint32_t max_us;                   /* largest reply latency */
    uint32_t heat[STATS_HEAT_BUCKETS]; /* reply latencies by heat bucket */
    uint32_t lat[STATS_LAT_BUCKETS];   /* reply latencies, log buckets */
};

/* Embedded in struct service. Loop seconds are loop milliseconds / 1000,
 * plus one so that 0 means "never". */
struct stats {
    uint64_t first_second;                   /* second of the first record */
    uint64_t total_count;                    /* replies ever recorded */
    uint64_t total_sum_us;                   /* their latencies' sum */
    uint64_t total_heat[STATS_HEAT_BUCKETS]; /* their heat buckets */
    struct stats_slot slots[STATS_SLOTS];    /* ring, by second % STATS_SLOTS */
};

/* Rates and percentiles read at one moment. */
struct stats_view {
    double rps;                 /* requests completed (reply or error) in the
                                   last complete second */
    double rps_60s;             /* completed per second over the last 60
                                   complete seconds (or since the first) */
    double errors_per_s;        /* errors in the last complete second */
    double p50, p90, p99, p999; /* reply latency (µs), the last 60 s
                                   including the current second */
    uint64_t heat[STATS_HEAT_BUCKETS]; /* last complete second's replies */
};

void stats_init(struct stats *st);

/* Records at loop time now_ms; O(1), no allocation. */
void stats_record_request(struct stats *st, uint64_t now_ms);
void stats_record_reply(struct stats *st, uint64_t now_ms, uint64_t lat_us);
void stats_record_error(struct stats *st, uint64_t now_ms);

/* Fills v with the figures as seen at loop time now_ms. */
void stats_read(const struct stats *st, uint64_t now_ms, struct stats_view *v);

/* The heat bucket of a latency: the first bound it does not exceed, or
 * STATS_HEAT_BOUNDS (+Inf). */
unsigned stats_heat_bucket(uint64_t lat_us);

#endif
