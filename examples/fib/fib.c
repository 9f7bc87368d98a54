/* SPDX-License-Identifier: MIT */
/*
 * fib.c - the fib worker's table of Fibonacci numbers: exact big integers
 * from GMP, each added once from the two before it, and their decimal text
 * appended to one space-separated string.
 */
#include "fib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
fib_table_init(struct fib_table *t)
{
    memset(t, 0, sizeof(*t));
}

void
fib_table_release(struct fib_table *t)
{
    for (size_t i = 0; i < t->count; i++) {
        mpz_clear(t->nums[i]);
    }
    free(t->nums);
    free(t->ends);
    free(t->text);
    fib_table_init(t);
}

/* Grows a byte array to hold at least need bytes, doubling. */
static ferry_err
fib_grow_text(struct fib_table *t, size_t need)
{
    size_t cap = t->text_cap ? t->text_cap : 4096;
    char *p;

    if (need <= t->text_cap) {
        return FERRY_OK;
    }
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(t->text, cap);
    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    t->text = p;
    t->text_cap = cap;
    return FERRY_OK;
}

static ferry_err
fib_grow_slots(struct fib_table *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 64;
    mpz_t *nums;
    size_t *ends;

    if (n <= t->cap) {
        return FERRY_OK;
    }
    while (cap < n) {
        cap *= 2;
    }
    nums = realloc(t->nums, cap * sizeof(*nums));
    if (nums == NULL) {
        return FERRY_ENOMEM;
    }
    t->nums = nums;
    ends = realloc(t->ends, cap * sizeof(*ends));
    if (ends == NULL) {
        return FERRY_ENOMEM;
    }
    t->ends = ends;
    t->cap = cap;
    return FERRY_OK;
}

ferry_err
fib_table_extend(struct fib_table *t, size_t n)
{
    size_t k, digits;
    char *dst;

    if (n <= t->count) {
        return FERRY_OK;
    }
    if (fib_grow_slots(t, n) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    for (k = t->count; k < n; k++) {
        if (k < 2) {
            mpz_init_set_ui(t->nums[k], (unsigned long)k);
        } else {
            mpz_init(t->nums[k]);
            mpz_add(t->nums[k], t->nums[k - 1], t->nums[k - 2]);
        }
        /* mpz_sizeinbase may say one digit too many; the NUL needs one
         * more byte and the separating space another. */
        digits = mpz_sizeinbase(t->nums[k], 10);
        if (fib_grow_text(t, t->text_len + digits + 2) != FERRY_OK) {
            mpz_clear(t->nums[k]);
            return FERRY_ENOMEM;
        }
        dst = t->text + t->text_len;
        if (k > 0) {
            *dst++ = ' ';
        }
        mpz_get_str(dst, 10, t->nums[k]);
        t->text_len = (size_t)(dst - t->text) + strlen(dst);
        t->ends[k] = t->text_len;
        t->count = k + 1;
    }
    return FERRY_OK;
}

const char *
fib_table_text(const struct fib_table *t, size_t n, size_t *len)
{
    *len = t->ends[n - 1];
    return t->text;
}

size_t
fib_format_size(size_t n)
{
    /* F(k) has at most k * log10(phi) + 1 digits; one space after each. */
    double digits =
        0.20898764024997873 * (double)n * (double)n / 2.0 + 2.0 * (double)n;

    return (size_t)digits + 64;
}

ferry_err
fib_format(struct fib_table *t, size_t n, char **buf, size_t *cap, size_t *len)
{
    static const char tail[] = "\"}";
    const char *text;
    size_t text_len, need;
    char head[64];
    int head_len;
    char *p;

    if (fib_table_extend(t, n) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    text = fib_table_text(t, n, &text_len);
    head_len = snprintf(head, sizeof(head), "{\"N\": %zu, \"result\": \"", n);
    need = (size_t)head_len + text_len + sizeof(tail);
    if (need > *cap) {
        p = realloc(*buf, need);
        if (p == NULL) {
            return FERRY_ENOMEM;
        }
        *buf = p;
        *cap = need;
    }
    p = *buf;
    memcpy(p, head, (size_t)head_len);
    memcpy(p + head_len, text, text_len);
    memcpy(p + head_len + text_len, tail, sizeof(tail) - 1);
    *len = (size_t)head_len + text_len + sizeof(tail) - 1;
    return FERRY_OK;
}
