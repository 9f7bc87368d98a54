/* SPDX-License-Identifier: MIT */
/*
 * ctcompare.h - comparison of a secret (an access token) with what a peer
 * sent, in time that does not depend on where they differ.
 *
 * Used by the HELLO handshake and the HTTP side; nothing else.
 */
#ifndef FERRY_CORE_CTCOMPARE_H
#define FERRY_CORE_CTCOMPARE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether given (what the peer sent) equals secret. Every byte of given is
 * read whatever the outcome, so the time taken depends on given_len alone
 * (which the peer knows anyway), never on the first differing byte nor on
 * secret_len. An empty secret equals only an empty given.
 */
bool ctcompare_equal(const void *given, size_t given_len, const void *secret,
                     size_t secret_len);

#endif
