/* SPDX-License-Identifier: MIT */
/*
 * rand.h - the one cheap random generator of ferryd and libferry: xorshift64
 * on a 64-bit state that its owner embeds (the broker's two random choices
 * and retry jitter, a libferry connection's reconnect jitter).
 *
 * Not for secrets: it only spreads load and time. Header-only so the
 * library and the daemon share it without a link-time piece.
 */
#ifndef FERRY_CORE_RAND_H
#define FERRY_CORE_RAND_H

#include <stdint.h>

/* Seeds *s from any mix of changing values (time, pid, an address); a zero
 * mix, which xorshift could never leave, is replaced by a fixed one. */
static inline void
rand_init(uint64_t *s, uint64_t mix)
{
    *s = mix != 0 ? mix : UINT64_C(0x9e3779b97f4a7c15);
}

/* The next value of the sequence; never 0. */
static inline uint64_t
rand_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

#endif
