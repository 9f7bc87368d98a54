/* SPDX-License-Identifier: MIT */
/*
 * icall.h - calls into the broker from inside ferryd (the HTTP gateway):
 * the same dispatch as a binary caller's REQUEST (service stats, queueing,
 * deadlines, worker choice, built-ins), answered through a callback
 * instead of a frame.
 *
 * The caller embeds a struct icall in its own per-request state. While the
 * call is in flight the broker holds it only by id, in a map it owns
 * (icall id -> struct icall), and its request record names caller conn 0
 * with the icall id; an answer looks the id up, so a call cancelled with
 * icall_cancel() leaves nothing dangling.
 */
#ifndef FERRY_BROKER_ICALL_H
#define FERRY_BROKER_ICALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

struct broker;
struct icall;

/*
 * The call's one answer: err FERRY_OK with the reply payload, or an error
 * with its message. data is borrowed, valid during the callback only. The
 * call is over when the callback runs; it may free the icall. It may run
 * inside icall_submit() (built-ins, errors found at once).
 */
typedef void (*icall_done_cb)(struct icall *ic, ferry_err err, const void *data,
                              size_t len);

/* Owned by the caller, embedded in its per-request state. */
struct icall {
    uint64_t id;      /* key in the broker's icall map; 0 when not in
                         flight */
    uint64_t req_id;  /* broker id of its request record, 0 if none */
    icall_done_cb cb; /* called once with the answer */
    bool internals;   /* may see internals (ferry.services), by the
                         rule of core/access.h; set by the caller before
                         icall_submit() */
};

/*
 * Submits a call of service with routing key and payload (borrowed: read
 * now, copied when the request must wait in a queue). deadline_ms 0 is the
 * default deadline; flags are REQUEST flags. cb gets the answer exactly
 * once, unless icall_cancel() comes first.
 */
void icall_submit(struct broker *b, struct icall *ic, struct slice service,
                  struct slice key, struct slice payload, uint32_t deadline_ms,
                  uint8_t flags, icall_done_cb cb);

/* icall_submit for the cluster's own traffic (a vbucket handover), which
 * no outside caller may send: its sink is marked so (sink.h). */
void icall_submit_cluster(struct broker *b, struct icall *ic,
                          struct slice service, struct slice key,
                          struct slice payload, uint32_t deadline_ms,
                          icall_done_cb cb);

/* icall_submit_cluster to one node, node (a struct peer of the cluster,
 * NULL: this node), hop-marked: it answers from its own state, as for a
 * request another node forwarded to it (cluster/gather.c). */
void icall_submit_node(struct broker *b, struct icall *ic, const void *node,
                       struct slice service, struct slice key,
                       struct slice payload, uint32_t deadline_ms,
                       icall_done_cb cb);

/* Withdraws a call in flight (its caller went away): cb will not run, a
 * worker holding the request gets CANCEL. A no-op once answered. */
void icall_cancel(struct broker *b, struct icall *ic);

/* For the broker: hands the answer to the call with this id, if it is
 * still in flight. */
void icall_complete(struct broker *b, uint64_t id, ferry_err err,
                    const void *data, size_t len);

#endif
