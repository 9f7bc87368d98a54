/* SPDX-License-Identifier: MIT */
/*
 * hist.h - log-linear latency histograms with percentile queries: one per
 * service in ferryd, fed on every reply and read by `ferry services`, the
 * stats endpoints and /metrics; one in `ferry bench`, fed on every reply
 * of the measurement window.
 *
 * The shape is chosen at init. Values below 2^sub_bits have a bucket each;
 * above, every power of two is split into 2^sub_bits equal buckets, so a
 * percentile is within 1/2^sub_bits of the true value. Values are capped
 * at 2^max_bits - 1. Services use 1/16 up to 2^40 - 1 µs (about twelve
 * days); ferry bench 1/128 over all of uint64_t (ns). The buckets are
 * allocated once, at init; recording is a few instructions and never
 * allocates.
 */
#ifndef FERRY_CORE_HIST_H
#define FERRY_CORE_HIST_H

#include <stdint.h>

#include "ferry.h"

/* The shape of the per-service histograms (stats.c reads their buckets). */
#define HIST_SUB_BITS 4
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40

/* Buckets of a histogram of the given shape. */
#define HIST_BUCKETS(sub_bits, max_bits)                                       \
    (((max_bits) - (sub_bits) + 1u) << (sub_bits))

/* Embedded in its owner, which calls hist_init and hist_release. */
struct hist {
    uint64_t count;     /* values recorded */
    uint64_t sum;       /* their sum, for the mean */
    uint64_t min;       /* smallest value, 0 when empty */
    uint64_t max;       /* largest value */
    uint64_t cap;       /* larger values are recorded as this */
    unsigned sub_bits;  /* each power of two has 2^sub_bits buckets */
    unsigned n_buckets; /* entries in buckets */
    uint64_t *buckets;  /* owned: counts per bucket */
};

/*
 * An empty histogram with 2^sub_bits buckets per power of two, for values
 * up to 2^max_bits - 1 (1 <= max_bits <= 64, sub_bits <= max_bits,
 * sub_bits <= 16). FERRY_ENOMEM when its buckets cannot be allocated.
 */
ferry_err hist_init(struct hist *h, unsigned sub_bits, unsigned max_bits);
void hist_release(struct hist *h);

void hist_record(struct hist *h, uint64_t value);

/* Adds every value of src to dst, which has the same shape. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value below which a fraction q (0..1) of the recorded values fall,
 * as the middle of its bucket, kept within [min, max]; 0 when empty.
 */
double hist_percentile(const struct hist *h, double q);

/* The bucket of a value, and the smallest value in a bucket and its width,
 * with 2^sub_bits buckets per power of two. */
unsigned hist_bucket(unsigned sub_bits, uint64_t value);
uint64_t hist_bucket_low(unsigned sub_bits, unsigned bucket);
uint64_t hist_bucket_width(unsigned sub_bits, unsigned bucket);

#endif
