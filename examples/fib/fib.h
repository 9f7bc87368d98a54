/* SPDX-License-Identifier: MIT */
/*
 * fib.h - a growing table of Fibonacci numbers for the fib worker: exact
 * values (GMP) and their decimal text, computed once and extended on
 * demand, so a request for the first N numbers costs a copy, not a
 * computation, once a request at least as large has been served.
 *
 * The decimal text of all computed numbers is kept as one space-separated
 * string, "0 1 1 2 3 5 ...": the answer for any N is a prefix of it.
 */
#ifndef FERRY_EXAMPLES_FIB_H
#define FERRY_EXAMPLES_FIB_H

#include <gmp.h>
#include <stddef.h>

#include "ferry.h"

/* Owned by the worker that serves fib. */
struct fib_table {
    mpz_t *nums;     /* owned: F(0) .. F(count - 1) */
    size_t *ends;    /* owned: ends[k] is where F(k)'s text ends in text */
    size_t count;    /* numbers computed */
    size_t cap;      /* slots in nums and ends */
    char *text;      /* owned: the numbers in decimal, space-separated */
    size_t text_len; /* bytes of text in use */
    size_t text_cap; /* bytes allocated for text */
};

void fib_table_init(struct fib_table *t);
void fib_table_release(struct fib_table *t);

/* Makes sure F(0) .. F(n - 1) are computed. Returns FERRY_ENOMEM. */
ferry_err fib_table_extend(struct fib_table *t, size_t n);

/*
 * The first n numbers (n >= 1, already computed) as space-separated
 * decimal text: borrowed from the table, valid until the next extend.
 */
const char *fib_table_text(const struct fib_table *t, size_t n, size_t *len);

/* An upper bound of the bytes fib_format() writes for n. */
size_t fib_format_size(size_t n);

/*
 * Writes the reply for n, {"N": n, "result": "0 1 1 ..."}, into *buf
 * (grown as needed; owned by the caller) and its length into *len.
 * Extends the table first. Returns FERRY_ENOMEM.
 */
ferry_err fib_format(struct fib_table *t, size_t n, char **buf, size_t *cap,
                     size_t *len);

#endif
