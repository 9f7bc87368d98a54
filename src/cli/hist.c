/*
 * hist.c - log-linear latency histogram (see hist.h).
 *
 * Bucket idx = e * HIST_SUB + m. e = 0 holds the values 0..HIST_SUB-1
 * exactly. For a value whose highest set bit is k >= HIST_SUB_BITS,
 * e = k - HIST_SUB_BITS + 1 and m is the HIST_SUB_BITS bits below the
 * highest one, so the bucket is 2^(e-1) wide.
 */
#include "cli/hist.h"

#include <math.h>
#include <string.h>

void
hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned
hist_bucket(uint64_t v)
{
    unsigned k, e;

    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    k = 63u - (unsigned)__builtin_clzll(v);
    e = k - HIST_SUB_BITS + 1;
    return e * HIST_SUB + (unsigned)((v >> (e - 1)) - HIST_SUB);
}

uint64_t
hist_bucket_low(unsigned idx)
{
    unsigned e = idx / HIST_SUB, m = idx % HIST_SUB;

    if (e == 0) {
        return m;
    }
    return (uint64_t)(HIST_SUB + m) << (e - 1);
}

uint64_t
hist_bucket_width(unsigned idx)
{
    unsigned e = idx / HIST_SUB;

    return e == 0 ? 1 : (uint64_t)1 << (e - 1);
}

void
hist_record(struct hist *h, uint64_t v)
{
    h->buckets[hist_bucket(v)]++;
    h->count++;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
    unsigned i;

    if (src->count == 0) {
        return;
    }
    for (i = 0; i < HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    if (src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}

double
hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;
    double mid;
    unsigned i;

    if (h->count == 0) {
        return 0.0;
    }
    if (q <= 0.0) {
        return (double)h->min;
    }
    if (q >= 1.0) {
        return (double)h->max;
    }
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0) {
        rank = 1;
    }
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            break;
        }
    }
    if (i == HIST_BUCKETS) {
        return (double)h->max;
    }
    if (hist_bucket_width(i) == 1) {
        mid = (double)hist_bucket_low(i);
    } else {
        mid = (double)hist_bucket_low(i) +
              (double)(hist_bucket_width(i) - 1) / 2.0;
    }
    if (mid < (double)h->min) {
        mid = (double)h->min;
    }
    if (mid > (double)h->max) {
        mid = (double)h->max;
    }
    return mid;
}
