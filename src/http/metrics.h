/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - ferryd's figures in the Prometheus text exposition format
 * 0.0.4, served on GET /metrics, and the helpers the admin endpoints share
 * with it: the services in name order and the connections by role.
 *
 * Families: ferry_requests_total, ferry_replies_total, ferry_errors_total
 * (counters by service, errors also by code), ferry_in_flight,
 * ferry_queued, ferry_workers (gauges by service), ferry_connections (by
 * role), ferry_uptime_seconds, process_resident_memory_bytes,
 * process_cpu_seconds_total, and the histogram
 * ferry_request_duration_seconds by service, and the HTTP side's
 * ferry_http_stalled_closed_total and ferry_http_sse_dropped_events_total;
 * in a cluster, the ferry_cluster_* families (docs/cluster.md). The
 * /v1/stats JSON is built here too, from the same figures.
 */
#ifndef FERRY_HTTP_METRICS_H
#define FERRY_HTTP_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "ferry.h"

struct broker;
struct loop;
struct service;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Open connections of the binary protocol by role. */
struct metrics_conns {
    uint64_t callers;   /* past HELLO as callers */
    uint64_t workers;   /* past HELLO as workers */
    uint64_t handshake; /* accepted, no HELLO yet */
};

void metrics_count_conns(const struct loop *l, struct metrics_conns *out);

/*
 * The /v1/stats document (process figures, connections, per-service
 * counters, rates, window and total percentiles, last second's heatmap);
 * NULL when out of memory. The caller owns it (json_decref). Rendered
 * whole: the HTTP side renders it in slices (render.h).
 */
json_t *metrics_stats_json(struct broker *b);

/* One service's object of the /v1/stats document; NULL when out of
 * memory. The caller owns it. */
json_t *metrics_service_json(struct broker *b, const struct service *svc);

/* The /v1/stats document's fields besides "services", with requests the
 * sum over its services; NULL when out of memory. The caller owns it. */
json_t *metrics_stats_root(struct broker *b, uint64_t requests);

/* The exposition's families with a sample per service, in their order:
 * the one-number ones, ferry_errors_total, the duration histogram. */
unsigned metrics_n_families(void);

/* Writes family's HELP and TYPE lines (svc NULL), or svc's samples of it. */
void metrics_write_part(FILE *f, unsigned family, const struct service *svc);

/* Writes the daemon-wide families, which end the exposition. */
void metrics_write_tail(FILE *f, struct broker *b);

/*
 * Renders the exposition of b into *out (NUL-terminated, owned by the
 * caller: free()), its length in *len, whole. FERRY_ENOMEM when it
 * cannot.
 */
ferry_err metrics_render(struct broker *b, char **out, size_t *len);

#endif
