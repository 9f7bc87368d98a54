/* SPDX-License-Identifier: MIT */
/*
 * cluster.h - several ferryd on etcd (docs/cluster.md): what main(), the
 * HTTP side and the ferry.cluster service see of it.
 *
 * With cluster_etcd set, ferryd is one node of a cluster: it holds an
 * etcd lease and a key with its addresses and its services' workers
 * (members.h), keeps one peer link to every other node (peers.c), and
 * routes requests (route.c): keyed ones (ferry.cache, ferry.kv,
 * ferry.queue, keyed_service) to the owner of their key's vbucket
 * (vbmap.h), the rest to a node with free workers when this one has
 * none. Without it none of this exists and the broker's hooks are NULL.
 */
#ifndef FERRY_CLUSTER_CLUSTER_H
#define FERRY_CLUSTER_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>

#include "ferry.h"

struct broker;
struct cluster;
struct servants;

/* Starts this node's membership and routing on b (cfg->cluster_etcd
 * set), handing sv's durable data over when vbuckets move (sv may be
 * NULL: nothing to hand over); *out stays NULL and FERRY_OK when no
 * cluster is configured. */
ferry_err cluster_start(struct broker *b, struct servants *sv,
                        struct cluster **out);

/* Leaves the cluster on purpose (SIGTERM): hands every vbucket this node
 * is the home of over to its next owner (for 30 s at most), then deletes
 * this node's key and lease, then done(arg). At once when c is NULL. */
void cluster_leave(struct cluster *c, void (*done)(void *arg), void *arg);

/* Ends every etcd call and timer (the daemon is closing: nothing of the
 * cluster may keep the loop alive); cluster_stop still frees. */
void cluster_quiesce(struct cluster *c);

/* Stops and frees; no hook is called after it. NULL is a no-op. */
void cluster_stop(struct cluster *c);

/* The cluster's view for /v1/cluster and ferry.cluster: this node,
 * fencing, the epoch, the members with their vbuckets and peer links.
 * NULL when out of memory. With c NULL: {"enabled": false}. */
json_t *cluster_describe(const struct cluster *c);

/* Every vbucket's owner (the map: where cache-like keys go) and home
 * (where its durable data lives), as indexes into "nodes"; for
 * /v1/cluster/vbuckets. With c NULL: {"enabled": false}. */
json_t *cluster_describe_vbuckets(const struct cluster *c);

#endif
