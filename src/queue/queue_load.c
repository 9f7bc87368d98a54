/* SPDX-License-Identifier: MIT */
/*
 * queue_load.c - ferry.queue's start and stop: the engine is opened on
 * the store and rebuilds its index from it (queues, then jobs, then dedup
 * ids), making every job that was reserved at the crash or stop ready
 * again; closing answers the held RESERVEs and frees everything once the
 * last batch is decided.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "queue/queue_impl.h"

/* Reads a u64 counter of the meta table into *out (kept when absent). */
static ferry_err
queue_load_counter(struct queue_engine *qe, const char *key, uint64_t *out)
{
    uint64_t v = 0;
    ferry_err err = store_get_counter(qe->st, qe->t_meta, key, strlen(key), &v);

    if (err == FERRY_OK && v > *out) {
        *out = v;
    }
    return err;
}

static ferry_err
queue_load_names(struct queue_engine *qe)
{
    struct store_cursor *cur;
    struct store_val k, v;
    bool found = false;
    ferry_err err = store_cursor_open(qe->st, qe->t_names, &cur);

    if (err != FERRY_OK) {
        return err;
    }
    err = store_seek(cur, NULL, 0, &k, &v, &found);
    while (err == FERRY_OK && found) {
        struct slice name = {k.data, k.len};
        struct queue *q;
        uint32_t qid;
        char msg[160];

        q = queue_get(qe, name, true);
        if (q == NULL) {
            err = FERRY_ENOMEM;
            break;
        }
        /* queue_get took a fresh qid: the record's own replaces it (a
         * record too short to hold one keeps the fresh one). */
        map_del(&qe->by_qid, q->qid);
        qid = q->qid;
        if (!queue_settings_decode(v.data, v.len, &qid, &q->set, msg,
                                   sizeof(msg))) {
            log_error("ferry.queue: queue '%s': bad record (%s), defaults used",
                      q->name, msg);
        }
        q->qid = qid;
        q->persisted = true;
        if (qid >= qe->next_qid) {
            qe->next_qid = qid + 1;
        }
        if (map_put(&qe->by_qid, qid, q) != FERRY_OK) {
            err = FERRY_ENOMEM;
            break;
        }
        err = store_next(cur, &k, &v, &found);
    }
    store_cursor_close(cur);
    return err;
}

static ferry_err
queue_load_jobs(struct queue_engine *qe)
{
    struct store_cursor *cur;
    struct store_val k, v;
    bool found = false;
    uint64_t now_unix = queue_unix_ms(), now = loop_now(qe->loop);
    uint64_t orphans = 0, bad = 0;
    ferry_err err = store_cursor_open(qe->st, qe->t_jobs, &cur);

    if (err != FERRY_OK) {
        return err;
    }
    err = store_seek(cur, NULL, 0, &k, &v, &found);
    while (err == FERRY_OK && found) {
        const uint8_t *kp = k.data;
        struct queue_rec r;
        struct queue *q;
        struct qjob *j;

        if (k.len != QUEUE_KEY_LEN ||
            !queue_codec_read_rec(v.data, v.len, &r)) {
            bad++;
            goto next;
        }
        q = map_get(&qe->by_qid, be_get_u32(kp));
        if (q == NULL) {
            orphans++;
            goto next;
        }
        j = pool_get(&qe->job_pool);
        if (j == NULL) {
            err = FERRY_ENOMEM;
            break;
        }
        memset(j, 0, sizeof(*j));
        heap_node_init(&j->hn);
        j->id = be_get_u64(kp + 4);
        j->q = q;
        j->prio = r.priority;
        j->attempts = r.attempts;
        j->vis_ms = r.visibility_ms;
        j->max_deliveries = r.max_deliveries;
        j->pushed_ms = r.pushed_ms;
        j->origin = r.origin;
        if (map_put(&qe->jobs, j->id, j) != FERRY_OK) {
            pool_put(&qe->job_pool, j);
            err = FERRY_ENOMEM;
            break;
        }
        if (j->id >= qe->next_id) {
            qe->next_id = j->id + 1;
        }
        /* A reservation does not outlive ferryd: ready again. */
        if (r.state == QUEUE_DELAYED && r.at_ms > now_unix) {
            j->state = QJ_DELAYED;
            j->due = now + (r.at_ms - now_unix);
            if (heap_push(&qe->timed, &j->hn, j->due) != FERRY_OK) {
                err = FERRY_ENOMEM;
                break;
            }
            q->n_delayed++;
        } else {
            queue_job_ready(qe, j);
        }
    next:
        err = store_next(cur, &k, &v, &found);
    }
    store_cursor_close(cur);
    if (orphans > 0 || bad > 0) {
        log_warn("ferry.queue: %llu jobs of unknown queues and %llu malformed "
                 "records skipped",
                 (unsigned long long)orphans, (unsigned long long)bad);
    }
    return err;
}

static ferry_err
queue_load_dedup(struct queue_engine *qe)
{
    struct store_cursor *cur;
    struct store_val k, v;
    bool found = false;
    uint64_t now = queue_unix_ms();
    ferry_err err = store_cursor_open(qe->st, qe->t_dedup, &cur);

    if (err != FERRY_OK) {
        return err;
    }
    err = store_seek(cur, NULL, 0, &k, &v, &found);
    while (err == FERRY_OK && found) {
        struct queue *q;
        struct qdedup *dd;

        /* Expired ones are skipped here and swept from disk later. */
        if (k.len < 5 || k.len > 4 + QUEUE_DEDUP_MAX || v.len != 16 ||
            be_get_u64((const uint8_t *)v.data + 8) <= now ||
            (q = map_get(&qe->by_qid, be_get_u32(k.data))) == NULL) {
            goto next;
        }
        dd = calloc(1, sizeof(*dd));
        if (dd == NULL) {
            err = FERRY_ENOMEM;
            break;
        }
        memcpy(dd->key, k.data, k.len);
        dd->klen = (uint16_t)k.len;
        dd->id = be_get_u64(v.data);
        dd->expires = be_get_u64((const uint8_t *)v.data + 8);
        if (smap_put(&qe->dedup, dd->key, dd->klen, dd) != FERRY_OK) {
            free(dd);
            err = FERRY_ENOMEM;
            break;
        }
        /* Loaded in key order, not time order: the sweep stops at the
         * first live one, so an older one behind it waits its turn. */
        list_push_back(&q->dedup_fifo, &dd->node);
    next:
        err = store_next(cur, &k, &v, &found);
    }
    store_cursor_close(cur);
    return err;
}

ferry_err
queue_engine_open(struct queue_engine **out, struct broker *b, struct loop *l,
                  struct store *st)
{
    struct queue_engine *qe;
    int tj = store_table(st, QUEUE_JOBS_TABLE);
    int tn = store_table(st, QUEUE_NAMES_TABLE);
    int td = store_table(st, QUEUE_DEDUP_TABLE);
    int tm = store_table(st, QUEUE_META_TABLE);
    uint64_t next_qid = 1;
    ferry_err err;

    if (tj < 0 || tn < 0 || td < 0 || tm < 0) {
        log_error("ferry.queue: the store lacks one of its tables");
        return FERRY_EINVALID_ARGUMENT;
    }
    qe = calloc(1, sizeof(*qe));
    if (qe == NULL) {
        return FERRY_ENOMEM;
    }
    qe->be.ops = &queue_backend_ops;
    qe->b = b;
    qe->loop = l;
    qe->st = st;
    qe->t_jobs = (unsigned)tj;
    qe->t_names = (unsigned)tn;
    qe->t_dedup = (unsigned)td;
    qe->t_meta = (unsigned)tm;
    smap_init(&qe->by_name);
    map_init(&qe->by_qid);
    map_init(&qe->jobs);
    map_init(&qe->waiting);
    smap_init(&qe->dedup);
    pool_init(&qe->job_pool, sizeof(struct qjob), 1024);
    heap_init(&qe->timed);
    queue_timed_init(qe);
    timer_init(&qe->tick, queue_tick_cb);
    rand_init(&qe->rng, uv_hrtime() ^ (uint64_t)(uintptr_t)qe);
    qe->next_id = 1;
    qe->next_qid = 1;
    err = queue_load_counter(qe, "queue/next_id", &qe->next_id);
    if (err == FERRY_OK) {
        err = queue_load_counter(qe, "queue/next_qid", &next_qid);
        qe->next_qid = (uint32_t)next_qid;
    }
    if (err == FERRY_OK) {
        err = queue_load_names(qe);
    }
    if (err == FERRY_OK) {
        err = queue_load_jobs(qe);
    }
    if (err == FERRY_OK) {
        err = queue_load_dedup(qe);
    }
    if (err == FERRY_OK) {
        err = broker_add_backend(b, QUEUE_SERVICE_NAME, &qe->be);
    }
    if (err != FERRY_OK) {
        qe->closing = true;
        queue_engine_free(qe);
        return err;
    }
    queue_timed_arm(qe);
    (void)loop_timer_start(l, &qe->tick, loop_now(l) + 1000);
    log_info("ferry.queue: %zu queues, %zu jobs", qe->by_name.n, qe->jobs.n);
    *out = qe;
    return FERRY_OK;
}

void
queue_engine_free(struct queue_engine *qe)
{
    size_t pos = 0;
    void *val;

    loop_timer_stop(qe->loop, &qe->timed_tm);
    loop_timer_stop(qe->loop, &qe->tick);
    while (smap_next(&qe->dedup, &pos, &val)) {
        free(val);
    }
    pos = 0;
    while (smap_next(&qe->by_name, &pos, &val)) {
        struct queue *q = val;
        heap_release(&q->ready);
        free(q);
    }
    smap_release(&qe->dedup);
    smap_release(&qe->by_name);
    map_release(&qe->by_qid);
    map_release(&qe->jobs);
    map_release(&qe->waiting);
    heap_release(&qe->timed);
    pool_release(&qe->job_pool);
    free(qe->out);
    free(qe);
}

void
queue_engine_close(struct queue_engine *qe)
{
    size_t pos = 0;
    void *val;

    if (qe == NULL) {
        return;
    }
    qe->closing = true;
    loop_timer_stop(qe->loop, &qe->timed_tm);
    loop_timer_stop(qe->loop, &qe->tick);
    while (smap_next(&qe->by_name, &pos, &val)) {
        struct queue *q = val;
        while (!list_is_empty(&q->waiters)) {
            struct qwaiter *w =
                container_of(q->waiters.next, struct qwaiter, node);
            uint64_t h = w->handle;
            queue_waiter_free(w);
            broker_answer(qe->b, h, FERRY_OK, &(uint8_t){QUEUE_ST_EMPTY}, 1);
        }
    }
    if (qe->pending == 0) {
        queue_engine_free(qe);
    }
}
