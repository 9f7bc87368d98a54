/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the Prometheus text exposition of ferryd (see metrics.h).
 *
 * Rendered on each scrape from the counters the request path keeps
 * (struct service and its struct stats) and the process figures; nothing
 * is kept between scrapes. Every family has its HELP and TYPE lines, then
 * its samples together; label values are valid UTF-8 with \\, \" and \n
 * escaped, so a strict parser accepts the output whatever the service
 * names. The parts are written here, one family head or one service at a
 * time; render.c puts them in order, a slice per loop turn.
 */
#include "http/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/service.h"
#include "broker/session.h"
#include "cluster/cluster.h"
#include "core/conn.h"
#include "core/loop.h"
#include "core/procstat.h"
#include "http/render.h"
#include "http/server.h"
#include "servants/cache_service.h"
#include "servants/id.h"
#include "servants/kv.h"
#include "queue/queue.h"
#include "servants/servants.h"
#include "servants/memcache.h"
#include "servants/store_stats.h"
#include "topic/topic.h"

/* The le labels of the duration histogram, in seconds, one per bound of
 * stats_heat_bounds_us. */
static const char *const metrics_le[STATS_HEAT_BOUNDS] = {
    "5e-05", "0.0001", "0.0002", "0.0005", "0.001", "0.002", "0.005",
    "0.01",  "0.02",   "0.05",   "0.1",    "0.2",   "0.5",   "1",
};

void
metrics_count_conns(const struct loop *l, struct metrics_conns *out)
{
    size_t pos = 0;
    uint64_t id;
    void *val;

    memset(out, 0, sizeof(*out));
    while (map_next(&l->conns, &pos, &id, &val)) {
        const struct conn *c = val;
        if (c->state == CONN_CLOSING || c->ops == NULL) {
            continue;
        }
        if (c->ops->bytes != NULL) {
            continue; /* the memcached face's: ferry_memcache_* */
        }
        if (c->ops == &session_handshake_ops) {
            out->handshake++;
        } else if (strcmp(c->ops->role, "worker") == 0) {
            out->workers++;
        } else {
            out->callers++;
        }
    }
}

/* Bytes of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t
metrics_utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80) {
        return 1;
    } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return len;
}

/* Writes s as a label value: valid UTF-8 (U+FFFD for bad bytes), with
 * backslash, double quote and line feed escaped. Runs of bytes that need
 * nothing go out in one fwrite (a scrape of thousands of long names is
 * mostly this). */
static void
metrics_label(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;
    size_t n = strlen(s);

    while (n > 0) {
        size_t len = *p >= 0x80 ? metrics_utf8_len(p, n) : 1;
        const char *esc = NULL;
        if (len == 0) {
            esc = "\xef\xbf\xbd";
            len = 1;
        } else if (*p == '\\') {
            esc = "\\\\";
        } else if (*p == '"') {
            esc = "\\\"";
        } else if (*p == '\n') {
            esc = "\\n";
        }
        if (esc != NULL) {
            fwrite(run, 1, (size_t)(p - run), f);
            fputs(esc, f);
            run = p + len;
        }
        p += len;
        n -= len;
    }
    fwrite(run, 1, (size_t)(p - run), f);
}

static void
metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample name{service="..."} value. */
static void
metrics_svc_u64(FILE *f, const char *name, const struct service *svc,
                uint64_t value)
{
    fprintf(f, "%s{service=\"", name);
    metrics_label(f, svc->name);
    fprintf(f, "\"} %llu\n", (unsigned long long)value);
}

static void
metrics_histogram(FILE *f, const struct service *svc)
{
    const struct stats *st = &svc->stats;
    uint64_t cum = 0;

    for (unsigned i = 0; i < STATS_HEAT_BUCKETS; i++) {
        cum += st->total_heat[i];
        fputs("ferry_request_duration_seconds_bucket{service=\"", f);
        metrics_label(f, svc->name);
        fprintf(f, "\",le=\"%s\"} %llu\n",
                i < STATS_HEAT_BOUNDS ? metrics_le[i] : "+Inf",
                (unsigned long long)cum);
    }
    fputs("ferry_request_duration_seconds_sum{service=\"", f);
    metrics_label(f, svc->name);
    fprintf(f, "\"} %llu.%06llu\n",
            (unsigned long long)(st->total_sum_us / 1000000),
            (unsigned long long)(st->total_sum_us % 1000000));
    metrics_svc_u64(f, "ferry_request_duration_seconds_count", svc,
                    st->total_count);
}

/* The per-service families that are one number each. */
enum metrics_field {
    MF_REQUESTS,
    MF_REPLIES,
    MF_RETRIES,
    MF_RETRIES_DENIED,
    MF_EJECTIONS,
    MF_CIRCUIT,
    MF_CIRCUIT_OPENS,
    MF_DISABLED,
    MF_FALLBACKS,
    MF_IN_FLIGHT,
    MF_QUEUED,
    MF_WORKERS
};

static const struct {
    const char *name;         /* family name */
    const char *type;         /* counter or gauge */
    const char *help;         /* its HELP line */
    enum metrics_field field; /* what it counts */
} metrics_fields[] = {
    {"ferry_requests_total", "counter", "Requests accepted for a service.",
     MF_REQUESTS},
    {"ferry_replies_total", "counter", "Requests answered with a reply.",
     MF_REPLIES},
    {"ferry_retries_total", "counter",
     "Idempotent requests sent again after a worker failed.", MF_RETRIES},
    {"ferry_retries_denied_total", "counter",
     "Retries refused by the service's retry budget.", MF_RETRIES_DENIED},
    {"ferry_ejections_total", "counter",
     "Workers ejected after failures in a row.", MF_EJECTIONS},
    {"ferry_circuit_state", "gauge",
     "Circuit breaker: 0 closed, 1 open, 2 half open.", MF_CIRCUIT},
    {"ferry_circuit_opens_total", "counter",
     "Times the service's circuit opened.", MF_CIRCUIT_OPENS},
    {"ferry_service_disabled", "gauge",
     "1 while an operator has disabled the service.", MF_DISABLED},
    {"ferry_fallbacks_total", "counter",
     "Requests of a disabled service answered by its fallback.", MF_FALLBACKS},
    {"ferry_in_flight", "gauge", "Requests of a service at its workers now.",
     MF_IN_FLIGHT},
    {"ferry_queued", "gauge", "Requests waiting in a service's queue.",
     MF_QUEUED},
    {"ferry_workers", "gauge", "Workers registered for a service.", MF_WORKERS},
};

static uint64_t
metrics_field_value(const struct service *svc, enum metrics_field field)
{
    switch (field) {
    case MF_REQUESTS:
        return svc->requests;
    case MF_REPLIES:
        return svc->replies;
    case MF_RETRIES:
        return svc->retries;
    case MF_RETRIES_DENIED:
        return svc->retries_denied;
    case MF_EJECTIONS:
        return svc->ejections;
    case MF_CIRCUIT:
        return (uint64_t)svc->circuit;
    case MF_CIRCUIT_OPENS:
        return svc->circuit_opens;
    case MF_DISABLED:
        return svc->disabled ? 1 : 0;
    case MF_FALLBACKS:
        return svc->fallbacks;
    case MF_IN_FLIGHT:
        return svc->in_flight;
    case MF_QUEUED:
        return svc->queued;
    case MF_WORKERS:
        return svc->n_regs;
    }
    return 0;
}

/* The memory bounds: the budget, its last sample, refusals, and the
 * connections closed by each bound. */
static void
metrics_mem(FILE *f, const struct loop *l)
{
    const struct mem *m = &l->mem;

    metrics_family(f, "ferry_memory_budget_bytes", "gauge",
                   "max_memory: the daemon's memory budget (0 = off).");
    fprintf(f, "ferry_memory_budget_bytes %llu\n",
            (unsigned long long)l->cfg->max_memory);
    metrics_family(f, "ferry_memory_used_bytes", "gauge",
                   "The allocator's live bytes at the last sample.");
    fprintf(f, "ferry_memory_used_bytes %llu\n", (unsigned long long)m->used);
    metrics_family(f, "ferry_memory_peak_bytes", "gauge",
                   "The highest sample of the allocator's live bytes.");
    fprintf(f, "ferry_memory_peak_bytes %llu\n", (unsigned long long)m->peak);
    metrics_family(f, "ferry_memory_refused_total", "counter",
                   "Requests refused with OVERLOADED near max_memory.");
    fprintf(f, "ferry_memory_refused_total %llu\n",
            (unsigned long long)m->refused);
    metrics_family(f, "ferry_connections_closed_total", "counter",
                   "Connections closed by a memory bound, by reason.");
    fprintf(f, "ferry_connections_closed_total{reason=\"output_limit\"} %llu\n",
            (unsigned long long)m->closed_output);
    fprintf(f,
            "ferry_connections_closed_total{reason=\"output_soft_limit\"} "
            "%llu\n",
            (unsigned long long)m->closed_soft);
    fprintf(f,
            "ferry_connections_closed_total{reason=\"http_conn_body_limit\"} "
            "%llu\n",
            (unsigned long long)m->closed_body);
    fprintf(f, "ferry_connections_closed_total{reason=\"max_memory\"} %llu\n",
            (unsigned long long)m->closed_budget);
}

#define METRICS_N_FIELDS (sizeof(metrics_fields) / sizeof(metrics_fields[0]))

unsigned
metrics_n_families(void)
{
    /* The one-number families, then errors, then the histogram. */
    return (unsigned)METRICS_N_FIELDS + 2;
}

void
metrics_write_part(FILE *f, unsigned family, const struct service *svc)
{
    if (family < METRICS_N_FIELDS) {
        if (svc == NULL) {
            metrics_family(f, metrics_fields[family].name,
                           metrics_fields[family].type,
                           metrics_fields[family].help);
        } else {
            metrics_svc_u64(
                f, metrics_fields[family].name, svc,
                metrics_field_value(svc, metrics_fields[family].field));
        }
    } else if (family == METRICS_N_FIELDS) {
        if (svc == NULL) {
            metrics_family(f, "ferry_errors_total", "counter",
                           "Requests ended by an error, by error code.");
            return;
        }
        for (unsigned code = 1; code < FERRY__ERR_COUNT; code++) {
            if (svc->errors[code] == 0) {
                continue;
            }
            fputs("ferry_errors_total{service=\"", f);
            metrics_label(f, svc->name);
            fprintf(f, "\",code=\"%s\"} %llu\n", ferry_errname((ferry_err)code),
                    (unsigned long long)svc->errors[code]);
        }
    } else if (svc == NULL) {
        metrics_family(f, "ferry_request_duration_seconds", "histogram",
                       "Time from a request's arrival to its reply.");
    } else {
        metrics_histogram(f, svc);
    }
}

/* The vbuckets of the member that is this node ("link": "self") in a
 * cluster_describe document. */
static json_int_t
metrics_cluster_owned(json_t *doc)
{
    json_t *ms = json_object_get(doc, "members"), *m;
    size_t i;

    json_array_foreach(ms, i, m)
    {
        const char *link = json_string_value(json_object_get(m, "link"));
        if (link != NULL && strcmp(link, "self") == 0) {
            return json_integer_value(json_object_get(m, "vbuckets"));
        }
    }
    return 0;
}

/* The ferry_cluster_* counters: the name, the counters' field, the help. */
static const struct {
    const char *name;
    const char *field;
    const char *help;
} metrics_cluster_counters[] = {
    {"ferry_cluster_forwarded_total", "forwarded",
     "Requests this node forwarded to another over a peer link."},
    {"ferry_cluster_received_total", "received",
     "Requests other nodes forwarded to this one."},
    {"ferry_cluster_not_my_vbucket_total", "not_my_vbucket",
     "Keyed requests answered NOT_MY_VBUCKET."},
    {"ferry_cluster_remapped_total", "remapped",
     "Keyed requests a peer answered NOT_MY_VBUCKET, routed once more."},
    {"ferry_cluster_fenced_total", "fenced",
     "Keyed requests answered FENCED while this node was fenced."},
    {"ferry_cluster_unavailable_total", "unavailable",
     "Requests answered UNAVAILABLE: no node could take them."},
};

/* ferry_cluster_peer_up (up) or ferry_cluster_peer_forwarded_total: a
 * sample per member but this node, of the members ms. */
static void
metrics_cluster_peers(FILE *f, json_t *ms, bool up)
{
    const char *family = up ? "ferry_cluster_peer_up"
                            : "ferry_cluster_peer_forwarded_total";
    json_t *m;
    size_t i;

    metrics_family(f, family, up ? "gauge" : "counter",
                   up ? "1 while the peer link to that member is up, else 0."
                      : "Requests this node forwarded to that member.");
    json_array_foreach(ms, i, m)
    {
        const char *link = json_string_value(json_object_get(m, "link"));
        if (link == NULL || strcmp(link, "self") == 0) {
            continue;
        }
        fprintf(f, "%s{peer=\"", family);
        metrics_label(f, json_string_value(json_object_get(m, "name")));
        fprintf(f, "\"} %lld\n",
                up ? (long long)(strcmp(link, "up") == 0)
                   : (long long)json_integer_value(
                         json_object_get(m, "forwarded")));
    }
}

/* The ferry_cluster_* families, from cluster_describe (doc); nothing
 * without a cluster. A scrape is rare: building the document is cheap
 * beside it, and keeps one description of the cluster. */
static void
metrics_cluster(FILE *f, json_t *doc)
{
    json_t *ms = json_object_get(doc, "members");
    json_t *counters = json_object_get(doc, "counters");
    size_t i;

    metrics_family(f, "ferry_cluster_members", "gauge",
                   "Members of the cluster this node sees, itself included.");
    fprintf(f, "ferry_cluster_members %zu\n", json_array_size(ms));
    metrics_family(f, "ferry_cluster_fenced", "gauge",
                   "1 while this node is fenced (its lease not renewed in "
                   "time), else 0.");
    fprintf(f, "ferry_cluster_fenced %d\n",
            json_is_true(json_object_get(doc, "fenced")) ? 1 : 0);
    metrics_family(f, "ferry_cluster_epoch", "gauge",
                   "Epoch of this node's vbucket map (an etcd revision).");
    fprintf(f, "ferry_cluster_epoch %lld\n",
            (long long)json_integer_value(json_object_get(doc, "epoch")));
    metrics_family(f, "ferry_cluster_vbuckets_owned", "gauge",
                   "Vbuckets this node owns in its map.");
    fprintf(f, "ferry_cluster_vbuckets_owned %lld\n",
            (long long)metrics_cluster_owned(doc));
    for (i = 0; i < sizeof(metrics_cluster_counters) /
                        sizeof(metrics_cluster_counters[0]);
         i++) {
        metrics_family(f, metrics_cluster_counters[i].name, "counter",
                       metrics_cluster_counters[i].help);
        fprintf(f, "%s %lld\n", metrics_cluster_counters[i].name,
                (long long)json_integer_value(json_object_get(
                    counters, metrics_cluster_counters[i].field)));
    }
    metrics_cluster_peers(f, ms, true);
    metrics_cluster_peers(f, ms, false);
}

void
metrics_write_tail(FILE *f, struct broker *b)
{
    struct metrics_conns mc;
    struct procstat ps;

    metrics_count_conns(b->loop, &mc);
    metrics_family(f, "ferry_connections", "gauge",
                   "Open connections by role (binary protocol, and http).");
    fprintf(f, "ferry_connections{role=\"caller\"} %llu\n",
            (unsigned long long)mc.callers);
    fprintf(f, "ferry_connections{role=\"worker\"} %llu\n",
            (unsigned long long)mc.workers);
    fprintf(f, "ferry_connections{role=\"handshake\"} %llu\n",
            (unsigned long long)mc.handshake);
    if (b->loop->http != NULL) {
        fprintf(f, "ferry_connections{role=\"http\"} %llu\n",
                (unsigned long long)http_server_n_conns(b->loop->http));
    }
    metrics_family(f, "ferry_connections_refused_total", "counter",
                   "Connections closed at accept: max_connections, or "
                   "http_max_connections.");
    fprintf(f, "ferry_connections_refused_total{listener=\"binary\"} %llu\n",
            (unsigned long long)b->loop->conns_refused);
    if (b->loop->http != NULL) {
        fprintf(f, "ferry_connections_refused_total{listener=\"http\"} %llu\n",
                (unsigned long long)http_server_n_refused(b->loop->http));
        metrics_family(f, "ferry_http_stalled_closed_total", "counter",
                       "HTTP connections closed because their client took "
                       "nothing of a stream or big answer for "
                       "http_stall_timeout_ms.");
        fprintf(f, "ferry_http_stalled_closed_total %llu\n",
                (unsigned long long)http_server_n_stalled(b->loop->http));
        metrics_family(f, "ferry_http_sse_dropped_events_total", "counter",
                       "Events of /v1/stats/stream a client too slow for "
                       "one a second skipped.");
        fprintf(f, "ferry_http_sse_dropped_events_total %llu\n",
                (unsigned long long)http_server_n_sse_dropped(b->loop->http));
    }
    metrics_family(f, "ferry_late_replies_total", "counter",
                   "Worker answers for requests already ended (deadline, "
                   "cancel): dropped.");
    fprintf(f, "ferry_late_replies_total %llu\n",
            (unsigned long long)b->late_replies);
    metrics_family(f, "ferry_auth_failures_total", "counter",
                   "Handshakes refused for a missing or wrong token.");
    fprintf(f, "ferry_auth_failures_total %llu\n",
            (unsigned long long)b->loop->auth_failures);
    if (b->loop->servants != NULL && b->loop->servants->cache != NULL) {
        cache_service_metrics(b->loop->servants->cache, f);
    }
    if (b->loop->servants != NULL && b->loop->servants->id != NULL) {
        id_service_metrics(b->loop->servants->id, f);
    }
    if (memcache_current() != NULL) {
        memcache_metrics(memcache_current(), f);
    }
    if (b->loop->servants != NULL && b->loop->servants->queue != NULL) {
        queue_engine_metrics(b->loop->servants->queue, f);
    }
    if (b->loop->servants != NULL && b->loop->servants->kv != NULL) {
        kv_service_metrics(b->loop->servants->kv, f);
    }
    if (b->loop->servants != NULL && b->loop->servants->topic != NULL) {
        topic_engine_metrics(b->loop->servants->topic, f);
    }
    if (b->loop->servants != NULL && b->loop->servants->store != NULL) {
        store_stats_metrics(b->loop->servants->store, f);
    }
    if (b->cluster != NULL) {
        json_t *doc = cluster_describe(b->cluster);
        if (doc != NULL) {
            metrics_cluster(f, doc);
            json_decref(doc);
        }
    }
    metrics_mem(f, b->loop);
    procstat_read(&ps);
    metrics_family(f, "ferry_uptime_seconds", "gauge",
                   "Seconds since ferryd started.");
    fprintf(f, "ferry_uptime_seconds %.3f\n", ps.uptime_s);
    metrics_family(f, "process_resident_memory_bytes", "gauge",
                   "Resident memory size in bytes.");
    fprintf(f, "process_resident_memory_bytes %llu\n",
            (unsigned long long)ps.rss_bytes);
    metrics_family(f, "process_cpu_seconds_total", "counter",
                   "User and system CPU time spent in seconds.");
    fprintf(f, "process_cpu_seconds_total %.6f\n",
            ps.cpu_user_s + ps.cpu_sys_s);
}

ferry_err
metrics_render(struct broker *b, char **out, size_t *len)
{
    struct buf text;
    ferry_err err;

    buf_init(&text);
    err = render_all(b, RENDER_METRICS, &text);
    if (err == FERRY_OK) {
        err = buf_append(&text, "", 1);
    }
    if (err != FERRY_OK) {
        buf_release(&text);
        return err;
    }
    *len = buf_len(&text) - 1;
    *out = (char *)text.data;
    return FERRY_OK;
}

/* x rounded to a multiple of unit (0.001 for milliseconds), so the JSON
 * does not show float noise. */
static json_t *
metrics_real(double x, double unit)
{
    return json_real(round(x / unit) * unit);
}

static int
metrics_set(json_t *obj, const char *key, json_t *val)
{
    return val == NULL ? -1 : json_object_set_new(obj, key, val);
}

static json_t *
metrics_percentiles(double p50, double p90, double p99, double p999)
{
    json_t *o = json_object();
    int rc = 0;

    if (o == NULL) {
        return NULL;
    }
    rc |= metrics_set(o, "p50", metrics_real(p50, 0.1));
    rc |= metrics_set(o, "p90", metrics_real(p90, 0.1));
    rc |= metrics_set(o, "p99", metrics_real(p99, 0.1));
    rc |= metrics_set(o, "p999", metrics_real(p999, 0.1));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *
metrics_heatmap(const struct stats_view *sv)
{
    json_t *o = json_object(), *bounds = json_array(), *counts = json_array();
    int rc = 0;

    if (o == NULL || bounds == NULL || counts == NULL) {
        goto out_free;
    }
    for (unsigned i = 0; i < STATS_HEAT_BOUNDS; i++) {
        rc |= json_array_append_new(bounds,
                                    json_integer(stats_heat_bounds_us[i]));
    }
    for (unsigned i = 0; i < STATS_HEAT_BUCKETS; i++) {
        rc |= json_array_append_new(counts,
                                    json_integer((json_int_t)sv->heat[i]));
    }
    if (rc != 0) {
        goto out_free;
    }
    json_object_set_new(o, "bounds_us", bounds);
    json_object_set_new(o, "counts", counts);
    return o;

out_free:
    json_decref(o);
    json_decref(bounds);
    json_decref(counts);
    return NULL;
}

json_t *
metrics_service_json(struct broker *b, const struct service *svc)
{
    json_t *o = json_object(), *errors = json_object(), *lat = json_object();
    uint64_t errors_total = 0;
    struct stats_view sv;
    int rc = 0;

    if (o == NULL || errors == NULL || lat == NULL) {
        json_decref(o);
        json_decref(errors);
        json_decref(lat);
        return NULL;
    }
    for (unsigned code = 1; code < FERRY__ERR_COUNT; code++) {
        if (svc->errors[code] > 0) {
            errors_total += svc->errors[code];
            rc |= metrics_set(errors, ferry_errname((ferry_err)code),
                              json_integer((json_int_t)svc->errors[code]));
        }
    }
    stats_read(&svc->stats, loop_now(b->loop), &sv);
    rc |= json_object_set_new(
        lat, "window_60s",
        metrics_percentiles(sv.p50, sv.p90, sv.p99, sv.p999));
    rc |=
        metrics_set(lat, "total",
                    metrics_percentiles(hist_percentile(&svc->latency, 0.50),
                                        hist_percentile(&svc->latency, 0.90),
                                        hist_percentile(&svc->latency, 0.99),
                                        hist_percentile(&svc->latency, 0.999)));
    rc |= metrics_set(o, "name", builtin_json_name(svc->name));
    rc |= metrics_set(o, "requests", json_integer((json_int_t)svc->requests));
    rc |= metrics_set(o, "replies", json_integer((json_int_t)svc->replies));
    rc |= metrics_set(o, "retries", json_integer((json_int_t)svc->retries));
    rc |= metrics_set(o, "retries_denied",
                      json_integer((json_int_t)svc->retries_denied));
    rc |= metrics_set(o, "ejections", json_integer((json_int_t)svc->ejections));
    rc |= metrics_set(o, "circuit",
                      json_string(service_circuit_name(svc->circuit)));
    rc |= metrics_set(o, "circuit_opens",
                      json_integer((json_int_t)svc->circuit_opens));
    rc |= metrics_set(o, "disabled", json_boolean(svc->disabled));
    rc |= metrics_set(o, "fallbacks", json_integer((json_int_t)svc->fallbacks));
    rc |= json_object_set_new(o, "errors", errors);
    rc |=
        metrics_set(o, "errors_total", json_integer((json_int_t)errors_total));
    rc |= metrics_set(o, "in_flight", json_integer(svc->in_flight));
    rc |= metrics_set(o, "queued", json_integer(svc->queued));
    rc |= metrics_set(o, "workers", json_integer((json_int_t)svc->n_regs));
    rc |= metrics_set(o, "rps", metrics_real(sv.rps, 0.001));
    rc |= metrics_set(o, "rps_60s", metrics_real(sv.rps_60s, 0.001));
    rc |= metrics_set(o, "errors_per_s", metrics_real(sv.errors_per_s, 0.001));
    rc |= json_object_set_new(o, "latency_us", lat);
    rc |= metrics_set(o, "heatmap", metrics_heatmap(&sv));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The "servants" object of /v1/stats: one member per servant running. */
static int
metrics_servants(json_t *root, const struct servants *sv)
{
    json_t *obj = json_object_get(root, "servants");
    int rc = 0;

    if (obj == NULL) {
        obj = json_object();
        if (obj == NULL || json_object_set_new(root, "servants", obj) != 0) {
            return -1;
        }
    }
    if (sv->cache != NULL) {
        rc |= metrics_set(obj, "cache", cache_service_stats_json(sv->cache));
    }
    if (sv->queue != NULL) {
        rc |= metrics_set(obj, "queue", queue_engine_stats_json(sv->queue));
    }
    if (sv->kv != NULL) {
        rc |= metrics_set(obj, "kv", kv_service_stats_json(sv->kv));
    }
    if (sv->topic != NULL) {
        rc |= metrics_set(obj, "topic", topic_engine_stats_json(sv->topic));
    }
    if (sv->store != NULL) {
        rc |= metrics_set(obj, "store", store_stats_json(sv->store));
    }
    if (sv->id != NULL) {
        rc |= metrics_set(obj, "id", id_service_stats_json(sv->id));
    }
    return rc;
}

/* The "cluster" object of /v1/stats: the figures of /metrics' cluster
 * families (the whole document is /v1/cluster). */
static json_t *
metrics_cluster_json(struct broker *b)
{
    json_t *doc = cluster_describe(b->cluster), *o;

    if (doc == NULL) {
        return NULL;
    }
    o = json_pack("{s:O?, s:O?, s:O?, s:I, s:I, s:O?}", "node",
                  json_object_get(doc, "node"), "epoch",
                  json_object_get(doc, "epoch"), "fenced",
                  json_object_get(doc, "fenced"), "members",
                  (json_int_t)json_array_size(json_object_get(doc, "members")),
                  "vbuckets_owned", metrics_cluster_owned(doc), "counters",
                  json_object_get(doc, "counters"));
    json_decref(doc);
    return o;
}

json_t *
metrics_stats_root(struct broker *b, uint64_t requests)
{
    json_t *root = json_object(), *conns = json_object();
    struct metrics_conns mc;
    struct procstat ps;
    int rc = 0;

    if (root == NULL || conns == NULL) {
        json_decref(root);
        json_decref(conns);
        return NULL;
    }
    procstat_read(&ps);
    metrics_count_conns(b->loop, &mc);
    rc |= metrics_set(conns, "callers", json_integer((json_int_t)mc.callers));
    rc |= metrics_set(conns, "workers", json_integer((json_int_t)mc.workers));
    if (b->loop->http != NULL) {
        rc |= metrics_set(
            conns, "http",
            json_integer((json_int_t)http_server_n_conns(b->loop->http)));
    }
    rc |= metrics_set(root, "uptime_s", metrics_real(ps.uptime_s, 0.01));
    rc |=
        metrics_set(root, "rss_bytes", json_integer((json_int_t)ps.rss_bytes));
    rc |= metrics_set(root, "cpu_user_s", metrics_real(ps.cpu_user_s, 0.001));
    rc |= metrics_set(root, "cpu_sys_s", metrics_real(ps.cpu_sys_s, 0.001));
    rc |= metrics_set(conns, "refused",
                      json_integer((json_int_t)b->loop->conns_refused));
    rc |= json_object_set_new(root, "connections", conns);
    rc |= metrics_set(root, "late_replies",
                      json_integer((json_int_t)b->late_replies));
    rc |= metrics_set(root, "requests", json_integer((json_int_t)requests));
    if (b->loop->servants != NULL) {
        rc |= metrics_servants(root, b->loop->servants);
    }
    if (b->cluster != NULL) {
        rc |= metrics_set(root, "cluster", metrics_cluster_json(b));
    }
    if (memcache_current() != NULL) {
        json_t *sv = json_object_get(root, "servants");
        if (sv == NULL) {
            sv = json_object();
            rc |= metrics_set(root, "servants", sv);
        }
        rc |= metrics_set(sv, "memcache",
                          memcache_stats_json(memcache_current()));
    }
    if (rc != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *
metrics_stats_json(struct broker *b)
{
    struct buf text;
    json_t *doc = NULL;

    buf_init(&text);
    if (render_all(b, RENDER_STATS, &text) == FERRY_OK) {
        doc =
            json_loadb((const char *)buf_head(&text), buf_len(&text), 0, NULL);
    }
    buf_release(&text);
    return doc;
}
