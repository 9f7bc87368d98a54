/* SPDX-License-Identifier: MIT */
/*
 * queue_handover.c - ferry.queue's part of a vbucket handover
 * (queue/queue.h, servants/vbdata.h): what only the engine's memory knows
 * for an export (queue names by id, counters), the import of a chunk's
 * queues, jobs and dedup ids (checked against this engine, written under
 * this store's queue ids, then loaded into memory once committed) and
 * the unload of a dropped vbucket.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "cluster/vbmap.h"
#include "core/log.h"
#include "core/loop.h"
#include "queue/queue_impl.h"

/* One imported queue record. */
struct qi_queue {
    struct slice name;            /* borrowed */
    struct slice settings;        /* borrowed: JSON */
    uint64_t counts[QUEUE_N_COUNTS];
    struct queue_settings set;    /* parsed by prepare */
};

/* One imported job or dedup id. */
struct qi_item {
    struct slice name;   /* borrowed: its queue */
    struct slice origin; /* borrowed: JOB, the queue it died in */
    struct slice extra;  /* borrowed: JOB the stored job, DEDUP the id */
    uint64_t id;         /* the job id */
    uint64_t expires;    /* DEDUP: unix ms */
    struct queue *q;     /* prepare: its queue here */
    struct queue *oq;    /* prepare: its origin here, or NULL */
};

/* A queue this import touches. */
struct qi_touch {
    struct queue *q;         /* borrowed */
    bool created;            /* made by prepare */
    bool named;              /* the batch writes its name record */
    struct qi_queue *rec;    /* its QUEUE record, or NULL */
};

struct queue_import {
    struct queue_engine *qe; /* borrowed */
    struct qop *op;          /* owned: counts the batch in the engine */
    struct qi_queue *queues; /* owned */
    size_t n_queues, cap_queues;
    struct qi_item *jobs; /* owned */
    size_t n_jobs, cap_jobs;
    struct qi_item *dedups; /* owned */
    size_t n_dedups, cap_dedups;
    struct qi_touch *touched; /* owned */
    size_t n_touched, cap_touched;
    bool prepared; /* prepare succeeded: the batch goes */
};

/* Room for one more entry of size sz in *arr. */
static ferry_err
qi_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    size_t c;
    void *p;

    if (n < *cap) {
        return FERRY_OK;
    }
    c = *cap ? *cap * 2 : 16;
    p = realloc(*arr, c * sz);
    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    *arr = p;
    *cap = c;
    return FERRY_OK;
}

bool
queue_engine_qname(struct queue_engine *qe, uint32_t qid, struct slice *name)
{
    struct queue *q = map_get(&qe->by_qid, qid);

    if (q == NULL) {
        return false;
    }
    *name = (struct slice){(const uint8_t *)q->name, q->name_len};
    return true;
}

void
queue_engine_counts(struct queue_engine *qe, struct slice name,
                    uint64_t out[QUEUE_N_COUNTS])
{
    struct queue *q = queue_get(qe, name, false);
    const struct queue_counts *c = q != NULL ? &q->n : NULL;
    uint64_t v[QUEUE_N_COUNTS] = {0};

    if (c != NULL) {
        uint64_t all[QUEUE_N_COUNTS] = {
            c->pushes,  c->dedup_hits, c->reserves, c->empty_reserves,
            c->acks,    c->releases,   c->touches,  c->buries,
            c->expired, c->dead_lettered, c->redriven, c->purged};
        memcpy(v, all, sizeof(v));
    }
    memcpy(out, v, sizeof(v));
}

uint64_t
queue_engine_next_id(const struct queue_engine *qe)
{
    return qe->next_id;
}

/* ---- import ---- */

struct queue_import *
queue_import_new(struct queue_engine *qe, uint64_t next_id)
{
    struct queue_import *qi = calloc(1, sizeof(*qi));

    if (qi == NULL) {
        return NULL;
    }
    qi->qe = qe;
    /* The source's counter matters only in our own id space. */
    if (next_id > qe->next_id &&
        (next_id >> QUEUE_ID_SPACE_BITS) ==
            (qe->next_id >> QUEUE_ID_SPACE_BITS)) {
        qe->next_id = next_id;
    }
    return qi;
}

void
queue_engine_set_id_space(struct queue_engine *qe, uint32_t tag)
{
    uint64_t base = (uint64_t)tag << QUEUE_ID_SPACE_BITS;
    uint64_t next = base + 1;
    size_t pos = 0;
    uint64_t id;
    void *val;

    if (tag == 0 || qe->id_space == base) {
        return;
    }
    /* The persisted counter and the jobs loaded may be of other spaces:
     * only ours count. */
    if ((qe->next_id >> QUEUE_ID_SPACE_BITS) == tag && qe->next_id > next) {
        next = qe->next_id;
    }
    while (map_next(&qe->jobs, &pos, &id, &val)) {
        if ((id >> QUEUE_ID_SPACE_BITS) == tag && id >= next) {
            next = id + 1;
        }
    }
    qe->id_space = base;
    qe->next_id = next;
}

ferry_err
queue_import_queue(struct queue_import *qi, struct slice name,
                   struct slice settings, const uint64_t counts[QUEUE_N_COUNTS])
{
    struct qi_queue *r;

    if (qi_grow((void **)&qi->queues, &qi->cap_queues, qi->n_queues,
                sizeof(*r)) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    r = &qi->queues[qi->n_queues++];
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->settings = settings;
    memcpy(r->counts, counts, sizeof(r->counts));
    return FERRY_OK;
}

static ferry_err
qi_add_item(struct qi_item **arr, size_t *n, size_t *cap, struct slice name,
            struct slice origin, struct slice extra, uint64_t id,
            uint64_t expires)
{
    if (qi_grow((void **)arr, cap, *n, sizeof(**arr)) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    (*arr)[(*n)++] = (struct qi_item){name, origin, extra, id, expires, NULL,
                                      NULL};
    return FERRY_OK;
}

ferry_err
queue_import_job(struct queue_import *qi, struct slice name,
                 struct slice origin, uint64_t id, struct slice stored)
{
    return qi_add_item(&qi->jobs, &qi->n_jobs, &qi->cap_jobs, name, origin,
                       stored, id, 0);
}

ferry_err
queue_import_dedup(struct queue_import *qi, struct slice name,
                   struct slice dedup, uint64_t id, uint64_t expires)
{
    return qi_add_item(&qi->dedups, &qi->n_dedups, &qi->cap_dedups, name,
                       (struct slice){NULL, 0}, dedup, id, expires);
}

/* The queue name here, made in memory when missing, and touched. */
static struct qi_touch *
qi_touch(struct queue_import *qi, struct slice name)
{
    struct queue *q = queue_get(qi->qe, name, false);
    bool created = false;
    struct qi_touch *t;

    for (size_t i = 0; q != NULL && i < qi->n_touched; i++) {
        if (qi->touched[i].q == q) {
            return &qi->touched[i];
        }
    }
    if (qi_grow((void **)&qi->touched, &qi->cap_touched, qi->n_touched,
                sizeof(*t)) != FERRY_OK) {
        return NULL;
    }
    if (q == NULL) {
        q = queue_get(qi->qe, name, true);
        if (q == NULL) {
            return NULL;
        }
        created = true;
    }
    t = &qi->touched[qi->n_touched++];
    *t = (struct qi_touch){q, created, false, NULL};
    q->pending++;
    return t;
}

static ferry_err
qi_put_counter(struct queue_engine *qe, struct store_batch *b, const char *key,
               uint64_t v)
{
    uint8_t be[8];

    be_put_u64(be, v);
    return store_batch_put(b, qe->t_meta, key, strlen(key), be, 8);
}

/* The writes of the name records (and the qid counter) of touched
 * queues that are new here or come with a QUEUE record. */
static ferry_err
qi_batch_names(struct queue_import *qi, struct store_batch *b)
{
    struct queue_engine *qe = qi->qe;
    bool any_new = false;

    for (size_t i = 0; i < qi->n_touched; i++) {
        struct qi_touch *t = &qi->touched[i];
        const struct queue_settings *set =
            t->rec != NULL ? &t->rec->set : &t->q->set;
        uint8_t *v;
        size_t len;
        ferry_err err;

        if (t->rec == NULL && t->q->persisted && !t->q->deleting) {
            continue;
        }
        v = queue_settings_encode(t->q->qid, set, &len);
        if (v == NULL) {
            return FERRY_ENOMEM;
        }
        err = store_batch_put(b, qe->t_names, t->q->name, t->q->name_len, v,
                              len);
        free(v);
        if (err != FERRY_OK) {
            return err;
        }
        any_new |= !t->q->persisted;
        t->named = true;
    }
    return any_new ? qi_put_counter(qe, b, QUEUE_NEXT_QID_KEY, qe->next_qid)
                   : FERRY_OK;
}

/* The writes of the jobs, under this store's queue ids. */
static ferry_err
qi_batch_jobs(struct queue_import *qi, struct store_batch *b)
{
    struct queue_engine *qe = qi->qe;

    for (size_t i = 0; i < qi->n_jobs; i++) {
        struct qi_item *it = &qi->jobs[i];
        uint8_t key[QUEUE_KEY_LEN];
        struct queue_rec r;
        uint8_t *buf;

        if (!queue_codec_read_rec(it->extra.p, it->extra.len, &r) ||
            (buf = queue_out(qe, it->extra.len)) == NULL) {
            return FERRY_ENOMEM; /* read by the chunk check already */
        }
        r.origin = it->oq != NULL ? it->oq->qid : 0;
        queue_codec_write_rec(buf, &r);
        queue_codec_key(key, it->q->qid, it->id);
        if (store_batch_put(b, qe->t_jobs, key, sizeof(key), buf,
                            it->extra.len) != FERRY_OK) {
            return FERRY_ENOMEM;
        }
    }
    return FERRY_OK;
}

static ferry_err
qi_batch_dedups(struct queue_import *qi, struct store_batch *b)
{
    struct queue_engine *qe = qi->qe;

    for (size_t i = 0; i < qi->n_dedups; i++) {
        struct qi_item *it = &qi->dedups[i];
        uint8_t key[4 + QUEUE_DEDUP_MAX], v[16];

        be_put_u32(key, it->q->qid);
        memcpy(key + 4, it->extra.p, it->extra.len);
        be_put_u64(be_put_u64(v, it->id), it->expires);
        if (store_batch_put(b, qe->t_dedup, key, 4 + it->extra.len, v, 16) !=
            FERRY_OK) {
            return FERRY_ENOMEM;
        }
    }
    return FERRY_OK;
}

/* Settings that parse, job ids free here and once in the chunk. */
static ferry_err
qi_check(struct queue_import *qi, char *err, size_t err_size)
{
    struct queue_engine *qe = qi->qe;
    struct map seen;
    ferry_err rc = FERRY_OK;

    for (size_t i = 0; i < qi->n_queues; i++) {
        struct qi_queue *r = &qi->queues[i];
        struct queue tmp;
        char msg[128];

        memset(&tmp, 0, sizeof(tmp));
        memcpy(tmp.name, r->name.p, r->name.len);
        tmp.name_len = r->name.len;
        queue_settings_default(&tmp, &r->set);
        if (!queue_settings_apply(r->settings, &r->set, msg, sizeof(msg))) {
            snprintf(err, err_size, "handover: queue '%.*s': bad settings: %s",
                     (int)r->name.len, (const char *)r->name.p, msg);
            return FERRY_EPROTO;
        }
    }
    map_init(&seen);
    for (size_t i = 0; i < qi->n_jobs && rc == FERRY_OK; i++) {
        struct qi_item *it = &qi->jobs[i];
        struct qjob *j = map_get(&qe->jobs, it->id);

        if (j != NULL) {
            snprintf(err, err_size,
                     "handover: job %llu of queue '%.*s': this node holds a "
                     "job of that id (queue '%s')",
                     (unsigned long long)it->id, (int)it->name.len,
                     (const char *)it->name.p, j->q->name);
            rc = FERRY_EINVALID_ARGUMENT;
        } else if (map_get(&seen, it->id) != NULL) {
            snprintf(err, err_size, "handover: job %llu twice in the chunk",
                     (unsigned long long)it->id);
            rc = FERRY_EPROTO;
        } else if (map_put(&seen, it->id, it) != FERRY_OK) {
            rc = FERRY_ENOMEM;
        }
    }
    map_release(&seen);
    return rc;
}

ferry_err
queue_import_prepare(struct queue_import *qi, struct store_batch *b, char *err,
                     size_t err_size)
{
    struct queue_engine *qe = qi->qe;
    ferry_err rc;

    err[0] = '\0';
    if (qe->closing) {
        return FERRY_ESHUTTING_DOWN;
    }
    if ((rc = qi_check(qi, err, err_size)) != FERRY_OK) {
        return rc;
    }
    for (size_t i = 0; i < qi->n_queues; i++) {
        struct qi_touch *t = qi_touch(qi, qi->queues[i].name);
        if (t == NULL) {
            return FERRY_ENOMEM;
        }
        t->rec = &qi->queues[i];
    }
    for (size_t i = 0; i < qi->n_jobs + qi->n_dedups; i++) {
        struct qi_item *it = i < qi->n_jobs ? &qi->jobs[i]
                                            : &qi->dedups[i - qi->n_jobs];
        struct qi_touch *t = qi_touch(qi, it->name), *o = NULL;

        if (t == NULL ||
            (it->origin.len > 0 && (o = qi_touch(qi, it->origin)) == NULL)) {
            return FERRY_ENOMEM;
        }
        it->q = t->q;
        it->oq = o != NULL ? o->q : NULL;
    }
    qi->op = queue_op_new(qe, 0, NULL);
    if (qi->op == NULL || (rc = qi_batch_names(qi, b)) != FERRY_OK ||
        (rc = qi_batch_jobs(qi, b)) != FERRY_OK ||
        (rc = qi_batch_dedups(qi, b)) != FERRY_OK ||
        (qi->n_jobs > 0 &&
         (rc = qi_put_counter(qe, b, QUEUE_NEXT_ID_KEY, qe->next_id)) !=
             FERRY_OK)) {
        return rc != FERRY_OK ? rc : FERRY_ENOMEM;
    }
    qe->pending++;
    qi->prepared = true;
    return FERRY_OK;
}

/* Loads one committed job into memory, as queue_load does, but a
 * reservation keeps its token until its deadline. */
static void
qi_load_job(struct queue_engine *qe, const struct qi_item *it, uint64_t now,
            uint64_t now_unix)
{
    struct queue_rec r;
    struct qjob *j;

    if (!queue_codec_read_rec(it->extra.p, it->extra.len, &r) ||
        (j = pool_get(&qe->job_pool)) == NULL) {
        goto out_aside;
    }
    memset(j, 0, sizeof(*j));
    heap_node_init(&j->hn);
    j->id = it->id;
    j->q = it->q;
    j->prio = r.priority;
    j->attempts = r.attempts;
    j->vis_ms = r.visibility_ms;
    j->max_deliveries = r.max_deliveries;
    j->pushed_ms = r.pushed_ms;
    j->origin = it->oq != NULL ? it->oq->qid : 0;
    if (map_put(&qe->jobs, j->id, j) != FERRY_OK) {
        pool_put(&qe->job_pool, j);
        goto out_aside;
    }
    if (r.state != QUEUE_READY && r.at_ms > now_unix) {
        queue_job_timed(qe, j,
                        r.state == QUEUE_DELAYED ? QJ_DELAYED : QJ_RESERVED,
                        now + (r.at_ms - now_unix));
        if (j->state == QJ_RESERVED) {
            j->token = r.token;
        }
    } else {
        /* Ready, or its delay or reservation has passed meanwhile. */
        queue_job_ready(qe, j);
    }
    return;

out_aside:
    log_error("ferry.queue '%s': out of memory, imported job %llu set aside",
              it->q->name, (unsigned long long)it->id);
}

static void
qi_load_dedup(struct queue_engine *qe, const struct qi_item *it,
              uint64_t now_unix)
{
    uint8_t key[4 + QUEUE_DEDUP_MAX];
    size_t klen = 4 + it->extra.len;
    struct qdedup *dd;

    be_put_u32(key, it->q->qid);
    memcpy(key + 4, it->extra.p, it->extra.len);
    if (it->expires <= now_unix || smap_get(&qe->dedup, key, klen) != NULL) {
        return; /* swept with the others */
    }
    dd = calloc(1, sizeof(*dd));
    if (dd == NULL) {
        return;
    }
    memcpy(dd->key, key, klen);
    dd->klen = (uint16_t)klen;
    dd->id = it->id;
    dd->expires = it->expires;
    if (smap_put(&qe->dedup, dd->key, dd->klen, dd) != FERRY_OK) {
        free(dd);
        return;
    }
    list_push_back(&it->q->dedup_fifo, &dd->node);
}

static void
qi_add_counts(struct queue_counts *c, const uint64_t v[QUEUE_N_COUNTS])
{
    uint64_t *f[QUEUE_N_COUNTS] = {
        &c->pushes,  &c->dedup_hits, &c->reserves, &c->empty_reserves,
        &c->acks,    &c->releases,   &c->touches,  &c->buries,
        &c->expired, &c->dead_lettered, &c->redriven, &c->purged};

    for (int i = 0; i < QUEUE_N_COUNTS; i++) {
        *f[i] += v[i];
    }
}

void
queue_import_finish(struct queue_import *qi, bool committed)
{
    struct queue_engine *qe;
    uint64_t now, now_unix;

    if (qi == NULL) {
        return;
    }
    qe = qi->qe;
    now = loop_now(qe->loop);
    now_unix = queue_unix_ms();
    committed = committed && qi->prepared;
    for (size_t i = 0; committed && i < qi->n_touched; i++) {
        struct qi_touch *t = &qi->touched[i];
        if (t->rec != NULL) {
            t->q->set = t->rec->set;
            qi_add_counts(&t->q->n, t->rec->counts);
        }
        if (t->named) {
            t->q->persisted = true;
        }
    }
    for (size_t i = 0; committed && i < qi->n_jobs; i++) {
        qi_load_job(qe, &qi->jobs[i], now, now_unix);
    }
    for (size_t i = 0; committed && i < qi->n_dedups; i++) {
        qi_load_dedup(qe, &qi->dedups[i], now_unix);
    }
    for (size_t i = 0; i < qi->n_touched; i++) {
        struct qi_touch *t = &qi->touched[i];
        t->q->pending--;
        if (committed) {
            queue_feed(qe, t->q);
        } else if (t->created && t->q->pending == 0 && t->q->n_waiters == 0) {
            queue_forget(qe, t->q);
        }
    }
    queue_timed_arm(qe);
    free(qi->queues);
    free(qi->jobs);
    free(qi->dedups);
    free(qi->touched);
    if (qi->prepared) {
        queue_op_done(qi->op); /* the engine's count of the batch */
    } else {
        queue_op_free(qi->op);
    }
    free(qi);
}

/* ---- drop ---- */

/* The vbucket a job in memory goes with. */
static uint16_t
queue_job_vb(struct queue_engine *qe, const struct qjob *j)
{
    struct queue *o = j->origin != 0 ? map_get(&qe->by_qid, j->origin) : NULL;
    const struct queue *q = o != NULL ? o : j->q;

    return vb_of_key(q->name, q->name_len);
}

ferry_err
queue_engine_drop_check(struct queue_engine *qe, uint16_t vb, char *err,
                        size_t err_size)
{
    size_t pos = 0;
    uint64_t id;
    void *val;

    while (map_next(&qe->jobs, &pos, &id, &val)) {
        struct qjob *j = val;
        if (j->state == QJ_BUSY && queue_job_vb(qe, j) == vb) {
            snprintf(err, err_size,
                     "handover: job %llu of queue '%s' has a write in flight",
                     (unsigned long long)j->id, j->q->name);
            return FERRY_EOVERLOADED;
        }
    }
    return FERRY_OK;
}

bool
queue_engine_holds_other(struct queue_engine *qe, struct slice name,
                         uint16_t vb)
{
    struct queue *q = queue_get(qe, name, false);
    size_t pos = 0;
    uint64_t id;
    void *val;

    while (q != NULL && map_next(&qe->jobs, &pos, &id, &val)) {
        struct qjob *j = val;
        if (j->q == q && queue_job_vb(qe, j) != vb) {
            return true;
        }
    }
    return false;
}

void
queue_engine_unload_vb(struct queue_engine *qe, uint16_t vb)
{
    size_t n = 0;
    uint64_t *ids = map_keys(&qe->jobs, &n);

    for (size_t i = 0; i < n; i++) {
        struct qjob *j = map_get(&qe->jobs, ids[i]);
        if (j == NULL || j->state == QJ_BUSY || queue_job_vb(qe, j) != vb) {
            continue;
        }
        /* Out of its heap, as a write would take it, then gone. */
        queue_job_busy(qe, j);
        j->q->n_busy--;
        queue_job_free(qe, j);
    }
    free(ids);
    /* Queues of vb: their dedup ids go; those left empty go too. Freeing
     * one changes the map, so walk a copy of the qids. */
    ids = map_keys(&qe->by_qid, &n);
    for (size_t i = 0; i < n; i++) {
        struct queue *q = map_get(&qe->by_qid, ids[i]);
        if (q == NULL || vb_of_key(q->name, q->name_len) != vb) {
            continue;
        }
        while (!list_is_empty(&q->dedup_fifo)) {
            struct qdedup *dd =
                container_of(q->dedup_fifo.next, struct qdedup, node);
            smap_del(&qe->dedup, dd->key, dd->klen);
            list_remove(&dd->node);
            dd->gone = true;
            if (dd->waiters == 0) {
                free(dd);
            }
        }
        if (q->ready.n > 0 || q->n_delayed > 0 || q->n_reserved > 0 ||
            q->n_busy > 0 || q->pending > 0) {
            continue; /* it keeps dead jobs of other vbuckets */
        }
        while (!list_is_empty(&q->waiters)) {
            struct qwaiter *w =
                container_of(q->waiters.next, struct qwaiter, node);
            uint64_t h = w->handle;
            queue_waiter_free(w);
            broker_answer_error(qe->b, h, FERRY_ENOT_MY_VBUCKET,
                                "the queue moved to another node");
        }
        queue_forget(qe, q);
    }
    free(ids);
    queue_timed_arm(qe);
}
