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
 * ferry_request_duration_seconds by service. The /v1/stats JSON is built
 * here too, from the same figures.
 */
#ifndef FERRY_HTTP_METRICS_H
#define FERRY_HTTP_METRICS_H

#include <jansson.h>
#include <stddef.h>
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
 * The services of b sorted by name, in *out (owned by the caller: free();
 * the services are borrowed), their number in *n. FERRY_ENOMEM when the
 * array cannot be allocated.
 */
ferry_err metrics_services(struct broker *b, struct service ***out, size_t *n);

/*
 * The /v1/stats document (process figures, connections, per-service
 * counters, rates, window and total percentiles, last second's heatmap);
 * NULL when out of memory. The caller owns it (json_decref).
 */
json_t *metrics_stats_json(struct broker *b);

/*
 * Renders the exposition of b into *out (NUL-terminated, owned by the
 * caller: free()), its length in *len. FERRY_ENOMEM when it cannot.
 */
ferry_err metrics_render(struct broker *b, char **out, size_t *len);

#endif
