/* SPDX-License-Identifier: MIT */
/*
 * store_stats.c - the store's counters for /v1/stats and /metrics.
 */
#include "servants/store_stats.h"

#include "core/hist.h"
#include "store/store.h"

static int
store_stats_set(json_t *o, const char *k, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, k, v);
}

json_t *
store_stats_json(struct store *s)
{
    const struct store_stats *st = store_stats(s);
    json_t *o = json_object(), *lat = json_object();
    int rc = o == NULL || lat == NULL;

#define SS_J(name)                                                             \
    rc |= store_stats_set(o, #name, json_integer((json_int_t)st->name))
    SS_J(commits);
    SS_J(batches);
    SS_J(batches_refused);
    SS_J(batches_failed);
    SS_J(ops);
    SS_J(max_group);
    SS_J(grows);
    SS_J(syncs);
    SS_J(stale_readers);
    SS_J(journal_bytes);
    SS_J(journal_replayed);
    SS_J(used_bytes);
    SS_J(map_bytes);
    SS_J(max_bytes);
    SS_J(queued);
#undef SS_J
    if (lat != NULL) {
        rc |= store_stats_set(lat, "p50",
                              json_real(hist_percentile(&st->commit_us, 0.50)));
        rc |= store_stats_set(lat, "p99",
                              json_real(hist_percentile(&st->commit_us, 0.99)));
        rc |= store_stats_set(lat, "max",
                              json_integer((json_int_t)st->commit_us.max));
    }
    if (rc != 0 || json_object_set_new(o, "commit_us", lat) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void
store_stats_one(FILE *f, const char *name, const char *type, const char *help,
                unsigned long long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
            name, v);
}

void
store_stats_metrics(struct store *s, FILE *f)
{
    static const uint64_t le_us[] = {100,   250,    500,    1000,
                                     2500,  5000,   10000,  25000,
                                     50000, 100000, 250000, 1000000};
    const struct store_stats *st = store_stats(s);
    const struct hist *h = &st->commit_us;

    store_stats_one(f, "ferry_store_commits_total", "counter",
                    "Write transactions committed.", st->commits);
    fprintf(f,
            "# HELP ferry_store_batches_total Write batches decided, by "
            "outcome.\n# TYPE ferry_store_batches_total counter\n"
            "ferry_store_batches_total{status=\"committed\"} %llu\n"
            "ferry_store_batches_total{status=\"refused\"} %llu\n"
            "ferry_store_batches_total{status=\"failed\"} %llu\n",
            (unsigned long long)(st->batches - st->batches_refused -
                                 st->batches_failed),
            (unsigned long long)st->batches_refused,
            (unsigned long long)st->batches_failed);
    store_stats_one(f, "ferry_store_ops_total", "counter",
                    "Operations committed.", st->ops);
    store_stats_one(f, "ferry_store_map_grows_total", "counter",
                    "Times the map was grown.", st->grows);
    store_stats_one(f, "ferry_store_used_bytes", "gauge",
                    "Pages in use in the map, in bytes.", st->used_bytes);
    store_stats_one(f, "ferry_store_map_bytes", "gauge",
                    "The map's size now, in bytes.", st->map_bytes);
    store_stats_one(f, "ferry_store_max_bytes", "gauge", "store_max_bytes.",
                    st->max_bytes);
    store_stats_one(f, "ferry_store_queued", "gauge",
                    "Batches waiting for or in a commit.", st->queued);
    store_stats_one(f, "ferry_store_syncs_total", "counter",
                    "Syncs of the LMDB file (store_sync = N) or journal "
                    "checkpoints (always).",
                    st->syncs);
    store_stats_one(f, "ferry_store_journal_bytes_total", "counter",
                    "Bytes appended to the journal (store_sync = always).",
                    st->journal_bytes);
    fprintf(f, "# HELP ferry_store_commit_seconds Commit latency (txn begin "
               "to commit return, fsync included).\n"
               "# TYPE ferry_store_commit_seconds histogram\n");
    for (size_t i = 0; i < sizeof(le_us) / sizeof(le_us[0]); i++) {
        uint64_t n = 0;
        for (unsigned b = 0; b < h->n_buckets; b++) {
            uint64_t hi = hist_bucket_low(h->sub_bits, b) +
                          hist_bucket_width(h->sub_bits, b) - 1;
            if (hi <= le_us[i]) {
                n += h->buckets[b];
            }
        }
        fprintf(f, "ferry_store_commit_seconds_bucket{le=\"%g\"} %llu\n",
                (double)le_us[i] / 1e6, (unsigned long long)n);
    }
    fprintf(f,
            "ferry_store_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
            "ferry_store_commit_seconds_sum %.6f\n"
            "ferry_store_commit_seconds_count %llu\n",
            (unsigned long long)h->count, (double)h->sum / 1e6,
            (unsigned long long)h->count);
}
