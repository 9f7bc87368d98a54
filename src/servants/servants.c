/* SPDX-License-Identifier: MIT */
/*
 * servants.c - opens the store and the servants on it, and closes them in
 * the reverse order at shutdown.
 *
 * Every table any servant keeps is named once, in servants_tables below:
 * the store is opened with all of them (a table's id is its index there,
 * so a servant looks its own up with store_table()). A servant adds its
 * table names there and one line each to servants_open/servants_close.
 */
#include "servants/servants.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "core/config.h"
#include "core/log.h"
#include "servants/cache_service.h"
#include "servants/kv.h"
#include "servants/id.h"
#include "queue/queue.h"
#include "store/store.h"
#include "topic/topic.h"

/* The union of every servant's tables (at most STORE_MAX_TABLES). Append
 * only: an existing environment keeps its tables by name, not index, but
 * keep the order stable all the same. */
static const char *const servants_tables[] = {
    "meta",           /* ferryd's own: the store's format, for later upgrades */
    "kv",             /* ferry.kv: key -> create_rev, mod_rev, version, value */
    "id",             /* ferry.id: its high-water mark */
    QUEUE_JOBS_TABLE, /* ferry.queue: queue id, job id -> job */
    QUEUE_NAMES_TABLE, /* ferry.queue: name -> queue id, settings */
    QUEUE_DEDUP_TABLE, /* ferry.queue: queue id, dedup id -> job id */
};

ferry_err
servants_open(struct servants *sv, struct broker *b)
{
    const struct config *cfg = b->cfg;
    char dir[4096];
    struct store_opts o;
    ferry_err err;
    int n;

    memset(sv, 0, sizeof(*sv));
    sv->b = b;
    n = snprintf(dir, sizeof(dir), "%s/store", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        log_error("store: data_dir '%s' is too long", cfg->data_dir);
        return FERRY_EINVALID_ARGUMENT;
    }
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.tables = servants_tables;
    o.n_tables = sizeof(servants_tables) / sizeof(servants_tables[0]);
    o.max_bytes = cfg->store_max_bytes;
    o.sync_ms = cfg->store_sync_ms;
    o.journal_max_bytes = cfg->store_journal_max_bytes;
    err = store_open(&sv->store, &b->loop->uv, &o);
    if (err != FERRY_OK) {
        log_error("store '%s' cannot open: %s", dir, ferry_strerror(err));
        sv->store = NULL;
        return err;
    }
    b->loop->servants = sv;
    /* Each servant's open goes here, in order; on an error, close what
     * opened (servants_close) and return it. ferry.topic first: the
     * others publish their events through it (topic_emit), and it closes
     * last. */
    err = topic_engine_open(&sv->topic, b, b->loop, cfg);
    if (err != FERRY_OK) {
        log_error("'%s' cannot start: %s", TOPIC_SERVICE_NAME,
                  ferry_strerror(err));
        servants_close(sv);
        return err;
    }
    err = cache_service_open(&sv->cache, b, b->loop, cfg);
    if (err != FERRY_OK) {
        log_error("'%s' cannot start: %s", CACHE_SERVICE_NAME,
                  ferry_strerror(err));
        servants_close(sv);
        return err;
    }
    err = kv_service_open(&sv->kv, b, b->loop, sv->store);
    if (err != FERRY_OK) {
        log_error("'%s' cannot start: %s", KV_SERVICE_NAME,
                  ferry_strerror(err));
        servants_close(sv);
        return err;
    }
    err = id_service_open(&sv->id, b, b->loop, cfg, sv->store);
    if (err != FERRY_OK) {
        log_error("'%s' cannot start: %s", ID_SERVICE_NAME,
                  ferry_strerror(err));
        servants_close(sv);
        return err;
    }
    err = queue_engine_open(&sv->queue, b, b->loop, sv->store);
    if (err != FERRY_OK) {
        log_error("'%s' cannot start: %s", QUEUE_SERVICE_NAME,
                  ferry_strerror(err));
        servants_close(sv);
        return err;
    }
    return FERRY_OK;
}

void
servants_close(struct servants *sv)
{
    /* Each servant's close goes here, in the reverse order of open. */
    queue_engine_close(sv->queue);
    sv->queue = NULL;
    id_service_close(sv->id);
    sv->id = NULL;
    kv_service_close(sv->kv);
    sv->kv = NULL;
    cache_service_close(sv->cache);
    sv->cache = NULL;
    /* Before the store closes: the commits it still reports emit no
     * events once ferry.topic is gone (loop->topics is NULL then). */
    topic_engine_close(sv->topic);
    sv->topic = NULL;
    if (sv->store != NULL) {
        store_close(sv->store);
        sv->store = NULL;
    }
    if (sv->b != NULL && sv->b->loop->servants == sv) {
        sv->b->loop->servants = NULL;
    }
}
