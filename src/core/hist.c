/*
 * hist.c - log-linear histograms (see hist.h).
 */
#include "core/hist.h"

#include <string.h>

#define HIST_CAP ((UINT64_C(1) << HIST_MAX_BITS) - 1)

void
hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned
hist_bucket(uint64_t value)
{
    unsigned e;

    if (value > HIST_CAP) {
        value = HIST_CAP;
    }
    if (value < HIST_SUB) {
        return (unsigned)value;
    }
    e = 63u - (unsigned)__builtin_clzll(value);
    return (e - HIST_SUB_BITS + 1) * HIST_SUB +
           (unsigned)((value >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

uint64_t
hist_bucket_low(unsigned bucket)
{
    unsigned group, e;

    if (bucket < HIST_SUB) {
        return bucket;
    }
    group = bucket / HIST_SUB;
    e = group + HIST_SUB_BITS - 1;
    return (uint64_t)(HIST_SUB + bucket % HIST_SUB) << (e - HIST_SUB_BITS);
}

static uint64_t
hist_bucket_width(unsigned bucket)
{
    if (bucket < HIST_SUB) {
        return 1;
    }
    return UINT64_C(1) << (bucket / HIST_SUB - 1);
}

void
hist_record(struct hist *h, uint64_t value)
{
    if (value > HIST_CAP) {
        value = HIST_CAP;
    }
    if (h->count == 0 || value < h->min) {
        h->min = value;
    }
    if (value > h->max) {
        h->max = value;
    }
    h->count++;
    h->sum += value;
    h->buckets[hist_bucket(value)]++;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0) {
        return;
    }
    if (dst->count == 0 || src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
}

double
hist_percentile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0) {
        return 0.0;
    }
    if (q <= 0.0) {
        return (double)h->min;
    }
    if (q >= 1.0) {
        return (double)h->max;
    }
    rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            double low = (double)hist_bucket_low(i);
            double mid = low + (double)(hist_bucket_width(i) - 1) / 2.0;
            if (mid > (double)h->max) {
                mid = (double)h->max;
            }
            if (mid < (double)h->min) {
                mid = (double)h->min;
            }
            return mid;
        }
    }
    return (double)h->max;
}
