/* SPDX-License-Identifier: MIT */
/*
 * client.h - the inside of struct ferry_client, libferry's caller (the
 * public functions are declared in include/ferry.h). Kept here so unit tests
 * can look at a client's state.
 */
#ifndef FERRY_LIB_CLIENT_H
#define FERRY_LIB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "ferry.h"
#include "lib/calltab.h"
#include "lib/conn.h"

/* Extra time a call waits past its deadline for ferryd's own answer. */
#define FERRY__CALL_SLACK_MS 250
/* The deadline assumed for a request sent with deadline_ms 0. */
#define FERRY__DEFAULT_DEADLINE_MS 5000

/* Owned by the program that made it with ferry_client_new(). */
struct ferry_client {
    struct ferry__conn conn;     /* the link to ferryd */
    struct ferry__calltab calls; /* calls in flight */
    uint64_t next_id;            /* id of the next request */
    bool closing;                /* in ferry_client_free(): take no calls */
};

#endif
