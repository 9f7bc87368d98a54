/* SPDX-License-Identifier: MIT */
/*
 * session.h - what the broker keeps for each connection past HELLO, and
 * the struct conn_ops of every role: the handshake, callers and workers.
 *
 * The session is the conn's data (owned through conn->data, freed when the
 * conn closes). As a caller it maps the caller's request ids to the
 * requests in flight, to catch duplicates and to clean up when the caller
 * goes; as a worker it holds its registrations and the requests it holds.
 */
#ifndef FERRY_BROKER_SESSION_H
#define FERRY_BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/list.h"
#include "core/map.h"

struct broker;
struct wreg;

/* Owned by its conn (conn->data). Largest fields first, so no holes: one
 * of these per connection. */
struct session {
    struct conn *conn;      /* borrowed: the connection it belongs to */
    struct broker *b;       /* borrowed */
    struct map inflight;    /* caller's id -> struct req, borrowed */
    struct wreg **regs;     /* owned array of owned registrations */
    struct list held;       /* struct req forwarded to this worker */
    uint64_t ejected_until; /* loop ms its ejection ends, 0 = none */
    uint32_t n_regs;        /* registrations in regs */
    uint32_t cap_regs;      /* slots in regs */
    uint32_t held_count;    /* requests in held */
    uint32_t fails;         /* failures in a row at this worker */
    uint32_t ejections;     /* times ejected so far */
    uint32_t max_frame;     /* largest body the client takes (HELLO
                               version 2), 0 = no limit of its own */
    uint8_t role;           /* enum frame_role from HELLO */
    bool draining;          /* sent DRAIN (or drained by an operator):
                               no new requests */
    bool admin;             /* may run admin commands (ferry.admin) */
    bool internals;         /* may see internals (ferry.services) */
    bool probing;           /* ejection over: one probe request decides */
    bool probe_sent;        /* the probe is at the worker */
};

/* The ops of a connection that has not sent HELLO yet. */
extern const struct conn_ops session_handshake_ops;

/*
 * Peer links (docs/cluster.md): ferryd dials a peer with conn_connect()
 * and these ops, sends session_peer_hello() once connected, and the
 * peer's HELLO_OK makes the conn a peer session (b->on_peer_up). The
 * accepting side gets there from HELLO with role PEER. A peer session
 * forwards requests to this node like a caller (its window:
 * cluster_peer_credit) and answers the ones forwarded to it like a
 * worker; b->on_peer_down is called when it closes.
 */
extern const struct conn_ops session_peer_dial_ops;
ferry_err session_peer_hello(struct conn *c, const char *self);
/* The heartbeat both ends of a peer link keep: cluster_lease_ms / 6 (at
 * least 100 ms), so a silent node is taken for dead after 3 of them, half
 * its lease, before etcd drops it. */
struct config;
uint32_t session_peer_heartbeat_ms(const struct config *cfg);

/*
 * Stops giving worker conn c new requests; it finishes those it holds.
 * Its own DRAIN or an operator's drain-worker. why is for the log.
 */
void session_drain(struct conn *c, const char *why);

/* Whether this worker may take one more request right now. */
bool session_can_take(const struct session *s);

/*
 * Whether a frame body of body bytes may go to the client of session s:
 * ferryd never sends a body above the max_frame it announced in HELLO
 * (0: no limit of its own). One compare on the request path.
 */
static inline bool
session_takes(const struct session *s, size_t body)
{
    return s == NULL || s->max_frame == 0 || body <= s->max_frame;
}

/*
 * Sends ERROR TOO_BIG for request id to conn c instead of a reply of len
 * bytes that c's max_frame does not take; the connection stays.
 */
void session_send_too_big(struct conn *c, uint64_t id, size_t len);

#endif
