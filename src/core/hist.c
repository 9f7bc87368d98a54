/* SPDX-License-Identifier: MIT */
/*
 * hist.c - log-linear histograms (see hist.h).
 *
 * Bucket b = group * 2^sub_bits + m. Group 0 holds the values below
 * 2^sub_bits exactly. A value whose highest set bit is e >= sub_bits is in
 * group e - sub_bits + 1, and m is the sub_bits bits below its highest one,
 * so the buckets of group g are 2^(g-1) wide.
 */
#include "core/hist.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

ferry_err
hist_init(struct hist *h, unsigned sub_bits, unsigned max_bits)
{
    assert(max_bits >= 1 && max_bits <= 64);
    assert(sub_bits <= max_bits && sub_bits <= 16);
    memset(h, 0, sizeof(*h));
    h->cap = max_bits == 64 ? UINT64_MAX : (UINT64_C(1) << max_bits) - 1;
    h->sub_bits = sub_bits;
    h->n_buckets = HIST_BUCKETS(sub_bits, max_bits);
    h->buckets = calloc(h->n_buckets, sizeof(*h->buckets));
    return h->buckets == NULL ? FERRY_ENOMEM : FERRY_OK;
}

void
hist_release(struct hist *h)
{
    free(h->buckets);
    h->buckets = NULL;
}

unsigned
hist_bucket(unsigned sub_bits, uint64_t value)
{
    unsigned e;

    if (value < (UINT64_C(1) << sub_bits)) {
        return (unsigned)value;
    }
    e = 63u - (unsigned)__builtin_clzll(value);
    return ((e - sub_bits + 1) << sub_bits) +
           (unsigned)((value >> (e - sub_bits)) & ((1u << sub_bits) - 1));
}

uint64_t
hist_bucket_low(unsigned sub_bits, unsigned bucket)
{
    unsigned group = bucket >> sub_bits, m = bucket & ((1u << sub_bits) - 1);

    if (group == 0) {
        return m;
    }
    return ((UINT64_C(1) << sub_bits) + m) << (group - 1);
}

uint64_t
hist_bucket_width(unsigned sub_bits, unsigned bucket)
{
    unsigned group = bucket >> sub_bits;

    return group == 0 ? 1 : UINT64_C(1) << (group - 1);
}

void
hist_record(struct hist *h, uint64_t value)
{
    if (value > h->cap) {
        value = h->cap;
    }
    if (h->count == 0 || value < h->min) {
        h->min = value;
    }
    if (value > h->max) {
        h->max = value;
    }
    h->count++;
    h->sum += value;
    h->buckets[hist_bucket(h->sub_bits, value)]++;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
    assert(dst->sub_bits == src->sub_bits);
    assert(dst->n_buckets == src->n_buckets);
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
    for (unsigned i = 0; i < dst->n_buckets; i++) {
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
    for (unsigned i = 0; i < h->n_buckets; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            double low = (double)hist_bucket_low(h->sub_bits, i);
            double mid =
                low + (double)(hist_bucket_width(h->sub_bits, i) - 1) / 2.0;
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
