/* SPDX-License-Identifier: MIT */
/*
 * store_stats.h - the store's counters (store/store.h, struct
 * store_stats) as the "store" object of /v1/stats' "servants" and the
 * ferry_store_* families of /metrics, for the HTTP side to call.
 */
#ifndef FERRY_SERVANTS_STORE_STATS_H
#define FERRY_SERVANTS_STORE_STATS_H

#include <jansson.h>
#include <stdio.h>

struct store;

/* {"commits", "batches", ..., "used_bytes", "map_bytes", "max_bytes",
 * "commit_us": {"p50", "p99", "max"}}; NULL when out of memory. */
json_t *store_stats_json(struct store *s);

/* ferry_store_commits_total, ..._batches_total{status}, ..._ops_total,
 * ..._used_bytes, ..._map_bytes, ..._max_bytes, ..._queued, and the
 * histogram ferry_store_commit_seconds, each with HELP and TYPE. */
void store_stats_metrics(struct store *s, FILE *f);

#endif
