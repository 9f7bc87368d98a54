/*
 * hist.h - log-linear latency histograms with percentile queries, one per
 * service, fed on every reply and read by `ferry services` and the stats
 * endpoints.
 *
 * Values below 16 have a bucket each; above, every power of two is split
 * into 16 equal buckets, so a percentile is within 1/16 (6.25%) of the true
 * value. Values are capped at 2^40 - 1 (about twelve days in
 * microseconds). Recording is a few instructions and never allocates.
 */
#ifndef FERRY_CORE_HIST_H
#define FERRY_CORE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

/* Embedded in its owner. */
struct hist {
    uint64_t count;                 /* values recorded */
    uint64_t sum;                   /* their sum, for the mean */
    uint64_t min;                   /* smallest value, 0 when empty */
    uint64_t max;                   /* largest value */
    uint64_t buckets[HIST_BUCKETS]; /* counts per bucket */
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);

/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value below which a fraction q (0..1) of the recorded values fall,
 * as the middle of its bucket and never above the largest value recorded;
 * 0 when empty.
 */
double hist_percentile(const struct hist *h, double q);

/* The bucket of a value and the smallest value in a bucket. */
unsigned hist_bucket(uint64_t value);
uint64_t hist_bucket_low(unsigned bucket);

#endif
