/*
 * bench_hist.h - a latency histogram with log-linear buckets, for the
 * percentiles ferry bench prints.
 *
 * Values below 128 get a bucket each; above, every power of two is split
 * into 128 equal buckets, so a bucket is at most 1/128 (0.8%) of its
 * values wide and a percentile read from it is within 0.4% of the truth.
 * Recording is an index computation and an increment: cheap enough for
 * every reply of a load generator. Owned by whoever embeds it.
 */
#ifndef FERRY_CLI_BENCH_HIST_H
#define FERRY_CLI_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
/* Enough buckets for any uint64_t value. */
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t count; /* values recorded */
    uint64_t min;   /* smallest value, UINT64_MAX if none */
    uint64_t max;   /* largest value */
    uint64_t buckets[BENCH_HIST_BUCKETS]; /* values per bucket */
};

void bench_hist_init(struct bench_hist *h);

void bench_hist_record(struct bench_hist *h, uint64_t v);

/* Adds all of src's values to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * The value at quantile q (0..1): the middle of the bucket holding the
 * ceil(q * count)-th smallest value, kept within [min, max]. 0 when empty.
 */
double bench_hist_quantile(const struct bench_hist *h, double q);

/* The bucket of a value, and the smallest value of a bucket (exposed for
 * the unit test). */
unsigned bench_hist_bucket(uint64_t v);
uint64_t bench_hist_bucket_low(unsigned idx);
uint64_t bench_hist_bucket_width(unsigned idx);

#endif
