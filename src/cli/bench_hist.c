/*
 * bench_hist.c - log-linear latency histogram (see bench_hist.h).
 *
 * Bucket idx = e * BENCH_HIST_SUB + m. e = 0 holds the values
 * 0..BENCH_HIST_SUB-1 exactly. For a value whose highest set bit is k >=
 * BENCH_HIST_SUB_BITS, e = k - BENCH_HIST_SUB_BITS + 1 and m is the
 * BENCH_HIST_SUB_BITS bits below the highest one, so the bucket is 2^(e-1)
 * wide.
 */
#include "cli/bench_hist.h"

#include <math.h>
#include <string.h>

void
bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned
bench_hist_bucket(uint64_t v)
{
    unsigned k, e;

    if (v < BENCH_HIST_SUB) {
        return (unsigned)v;
    }
    k = 63u - (unsigned)__builtin_clzll(v);
    e = k - BENCH_HIST_SUB_BITS + 1;
    return e * BENCH_HIST_SUB + (unsigned)((v >> (e - 1)) - BENCH_HIST_SUB);
}

uint64_t
bench_hist_bucket_low(unsigned idx)
{
    unsigned e = idx / BENCH_HIST_SUB, m = idx % BENCH_HIST_SUB;

    if (e == 0) {
        return m;
    }
    return (uint64_t)(BENCH_HIST_SUB + m) << (e - 1);
}

uint64_t
bench_hist_bucket_width(unsigned idx)
{
    unsigned e = idx / BENCH_HIST_SUB;

    return e == 0 ? 1 : (uint64_t)1 << (e - 1);
}

void
bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->buckets[bench_hist_bucket(v)]++;
    h->count++;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void
bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    unsigned i;

    if (src->count == 0) {
        return;
    }
    for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
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
bench_hist_quantile(const struct bench_hist *h, double q)
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
    for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            break;
        }
    }
    if (i == BENCH_HIST_BUCKETS) {
        return (double)h->max;
    }
    if (bench_hist_bucket_width(i) == 1) {
        mid = (double)bench_hist_bucket_low(i);
    } else {
        mid = (double)bench_hist_bucket_low(i) +
              (double)(bench_hist_bucket_width(i) - 1) / 2.0;
    }
    if (mid < (double)h->min) {
        mid = (double)h->min;
    }
    if (mid > (double)h->max) {
        mid = (double)h->max;
    }
    return mid;
}
