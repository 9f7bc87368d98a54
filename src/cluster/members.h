/* SPDX-License-Identifier: MIT */
/*
 * members.h - cluster membership on etcd (docs/cluster.md, "Membership on etcd").
 *
 * Each node holds one lease and, under it, two keys: its node key
 * /ferry/<cluster>/nodes/<name> (a JSON value: name, addr, http, node_id,
 * services, started) and its node id /ferry/<cluster>/ids/<n>, claimed
 * exclusively with a txn. It reads the nodes prefix once and watches it
 * from there, so every node keeps the same sorted list of live members.
 * While etcd is away the last list stays; a node that has not renewed its
 * lease for lease_ms minus a margin calls itself fenced, so it stops
 * serving before etcd can give its place to another. Everything runs on
 * the loop (cluster/etcd.h); the peer links and routing read the list.
 */
#ifndef FERRY_CLUSTER_MEMBERS_H
#define FERRY_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry.h"

struct loop;
struct members;

/* The highest node id (ferry.id's 10 bits). */
#define MEMBERS_NODE_ID_MAX 1023u

/* One live node, as read from etcd; owned by the members list. */
struct member {
    char *name;            /* owned; unique in the cluster */
    char *addr;            /* owned; binary "host:port" others dial */
    char *http;            /* owned; HTTP "host:port", or NULL */
    uint32_t node_id;      /* leased ferry.id node id, 0..1023 */
    json_t *services;      /* owned; {"svc":{"workers":N,"credit":C},...} */
    uint64_t mod_revision; /* etcd revision of its key */
    bool leaving;          /* it is handing its vbuckets over to leave */
};

/* Borrowed by members_start, which copies what it keeps. */
struct members_config {
    const char *endpoints; /* cluster_etcd */
    const char *cluster;   /* cluster_name: keys live under /ferry/<cluster>/ */
    const char *name, *addr, *http; /* this node */
    uint32_t lease_ms;              /* cluster_lease_ms, default 3000 */
    int preferred_node_id;          /* -1: any */
};

/* Called from the loop; never after members_stop. */
struct members_hooks {
    /* The list changed: membership true when a node joined or left, false
     * when only services changed. */
    void (*changed)(void *ud, bool membership);
    /* The self-fencing state changed. */
    void (*fenced)(void *ud, bool fenced);
    /* A node id was leased. */
    void (*node_id)(void *ud, uint32_t id);
};

/* Starts registering and watching; NULL on a bad config (logged) or out
 * of memory. Starts fenced. */
struct members *members_start(struct loop *l, const struct members_config *cfg,
                              const struct members_hooks *h, void *ud);

/* Live members sorted by name, self included once registered; valid until
 * the next loop turn. */
const struct member *members_list(const struct members *m, size_t *n);

/* etcd revision of the last join/leave applied. */
uint64_t members_epoch(const struct members *m);

bool members_fenced(const struct members *m);

/* This node's services (borrowed: copied); coalesced to at most ~4 puts/s,
 * and only when changed. */
void members_publish(struct members *m, json_t *services);

/* Publishes that this node is leaving (its key's "leaving"), so that no
 * node hands a vbucket to it meanwhile. */
void members_set_leaving(struct members *m);

/* Deletes the own key, revokes the lease, then done(ud); fenced from then
 * on. members_stop is still needed after. */
void members_leave(struct members *m, void (*done)(void *ud));

/* For /v1/cluster: self, lease id, ttl, last renewal age, fenced, epoch,
 * members with addr/http/node_id/services. A new reference, or NULL. */
json_t *members_describe(const struct members *m);

/* Frees; no callback after it. NULL is harmless. */
void members_stop(struct members *m);

#endif
