/* SPDX-License-Identifier: MIT */
/*
 * ctcompare.c - constant-time comparison of access tokens.
 *
 * A plain memcmp() stops at the first differing byte, so how long a
 * refused HELLO took would tell a guesser how many leading bytes were
 * right. Here the loop runs over the peer's bytes, all of them, folding
 * every difference into one accumulator; the secret is indexed modulo its
 * length so its length does not change the number of steps either.
 */
#include "core/ctcompare.h"

#include <stdint.h>

bool
ctcompare_equal(const void *given, size_t given_len, const void *secret,
                size_t secret_len)
{
    const volatile uint8_t *g = given;
    const volatile uint8_t *s = secret;
    volatile uint8_t diff = 0;
    size_t j = 0;

    /* A length mismatch fails the comparison, after the same work. */
    diff |= (uint8_t)(given_len != secret_len);
    if (secret_len == 0) {
        /* Nothing to compare against: read the input all the same. */
        for (size_t i = 0; i < given_len; i++) {
            diff |= (uint8_t)(g[i] | 1);
        }
        return given_len == 0;
    }
    for (size_t i = 0; i < given_len; i++) {
        diff |= (uint8_t)(g[i] ^ s[j]);
        j = j + 1 == secret_len ? 0 : j + 1;
    }
    return diff == 0;
}
