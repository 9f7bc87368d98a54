/* SPDX-License-Identifier: MIT */
/*
 * queue.c - ferry.queue's job path (queue/queue.h): push, reserve and
 * the held reserves, ack, release, touch, bury, dead-lettering, the timed
 * heap (delays and reservation deadlines), and the backend's call().
 *
 * Every change is a store batch; memory follows only from the batch's
 * callback, after the commit (queue_impl.h). A job with a write in
 * flight is QJ_BUSY and in no heap, so no second change can race it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/backend.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "queue/queue_impl.h"
#include "store/store.h"
#include "topic/topic.h"

static struct queue_engine *
queue_of(struct backend *be)
{
    return container_of(be, struct queue_engine, be);
}

uint64_t
queue_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint8_t *
queue_out(struct queue_engine *qe, size_t n)
{
    if (n > qe->out_cap) {
        size_t cap = qe->out_cap < 256 ? 256 : qe->out_cap;
        uint8_t *p;
        while (cap < n) {
            cap *= 2;
        }
        p = realloc(qe->out, cap);
        if (p == NULL) {
            return NULL;
        }
        qe->out = p;
        qe->out_cap = cap;
    }
    return qe->out;
}

/* The event ferry.queue.<q>.<what> of a committed change of job id
 * (topic/topic.h), its id in decimal the payload; nothing is formatted
 * while no subscription may see it. */
static void
queue_emit(struct queue_engine *qe, const struct queue *q, const char *what,
           uint64_t id)
{
    topic_emit_event(qe->loop->topics, TOPIC_EV_QUEUE,
                     (struct slice){(const uint8_t *)q->name, q->name_len},
                     what, "%llu", (unsigned long long)id);
}

/* ---- queues ---- */

void
queue_settings_default(const struct queue *q, struct queue_settings *set)
{
    static const char dead[] = ".dead";
    size_t dl = sizeof(dead) - 1;

    memset(set, 0, sizeof(*set));
    set->visibility_ms = QUEUE_DEFAULT_VISIBILITY_MS;
    set->dedup_window_ms = QUEUE_DEFAULT_DEDUP_WINDOW_MS;
    /* A dead-letter queue has none of its own; the name must fit. */
    if (!(q->name_len >= dl &&
          memcmp(q->name + q->name_len - dl, dead, dl) == 0) &&
        q->name_len + dl <= QUEUE_NAME_MAX) {
        memcpy(set->dead_letter, q->name, q->name_len);
        memcpy(set->dead_letter + q->name_len, dead, dl + 1);
    }
}

struct queue *
queue_get(struct queue_engine *qe, struct slice name, bool create)
{
    struct queue *q = smap_get(&qe->by_name, name.p, name.len);

    if (q != NULL || !create || !queue_name_is_valid(name)) {
        return q;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    memcpy(q->name, name.p, name.len);
    q->name_len = name.len;
    q->qid = qe->next_qid++;
    heap_init(&q->ready);
    list_init(&q->waiters);
    list_init(&q->dedup_fifo);
    queue_settings_default(q, &q->set);
    if (smap_put(&qe->by_name, q->name, q->name_len, q) != FERRY_OK) {
        free(q);
        return NULL;
    }
    if (map_put(&qe->by_qid, q->qid, q) != FERRY_OK) {
        smap_del(&qe->by_name, q->name, q->name_len);
        free(q);
        return NULL;
    }
    qe->stats.queues++;
    return q;
}

struct queue *
queue_dead_letter_of(struct queue_engine *qe, struct queue *q, bool create)
{
    if (q->set.dead_letter[0] == '\0') {
        return NULL;
    }
    return queue_get(qe, slice_str(q->set.dead_letter), create);
}

ferry_err
queue_batch_name(struct queue_engine *qe, struct store_batch *b,
                 struct queue *q, const struct queue_settings *set,
                 struct qop *o)
{
    uint8_t qid[8];
    size_t len;
    uint8_t *v = queue_settings_encode(q->qid, set, &len);
    ferry_err err;

    if (v == NULL) {
        return FERRY_ENOMEM;
    }
    err = store_batch_put(b, qe->t_names, q->name, q->name_len, v, len);
    free(v);
    if (err == FERRY_OK && !q->persisted) {
        /* The qid counter goes with the first name record of a queue. */
        be_put_u64(qid, qe->next_qid);
        err = store_batch_put(b, qe->t_meta, QUEUE_NEXT_QID_KEY,
                              sizeof(QUEUE_NEXT_QID_KEY) - 1, qid, 8);
    }
    if (err == FERRY_OK) {
        o->named = true;
    }
    return err;
}

void
queue_name_committed(struct queue_engine *qe, struct qop *o, bool committed)
{
    (void)qe;
    if (o->named && committed) {
        (o->to != NULL ? o->to : o->q)->persisted = true;
    }
}

/* Adds the name record of q to b when it is not on disk yet, or is being
 * deleted (a batch behind the DELETE puts it back, so a job it writes
 * never outlives its queue's record). */
static ferry_err
queue_batch_name_if_new(struct queue_engine *qe, struct store_batch *b,
                        struct queue *q, struct qop *o)
{
    if (q->persisted && !q->deleting) {
        return FERRY_OK;
    }
    return queue_batch_name(qe, b, q, &q->set, o);
}

/* ---- batches ---- */

struct qop *
queue_op_new(struct queue_engine *qe, uint8_t op, struct queue *q)
{
    struct qop *o = calloc(1, sizeof(*o));

    if (o != NULL) {
        o->qe = qe;
        o->op = op;
        o->q = q;
    }
    return o;
}

void
queue_op_free(struct qop *o)
{
    if (o != NULL) {
        free(o->jobs);
        free(o);
    }
}

static void queue_maybe_free(struct queue_engine *qe);

/* Queues b with o for cb; the engine counts it until its callback. */
void
queue_submit_op(struct queue_engine *qe, struct store_batch *b, struct qop *o,
                store_done_cb cb)
{
    qe->pending++;
    if (o->q != NULL) {
        o->q->pending++;
    }
    if (o->to != NULL) {
        o->to->pending++;
    }
    store_submit(qe->st, b, cb, o);
}

/* The end of every batch callback. */
void
queue_op_done(struct qop *o)
{
    struct queue_engine *qe = o->qe;

    qe->pending--;
    if (o->q != NULL) {
        o->q->pending--;
    }
    if (o->to != NULL) {
        o->to->pending--;
    }
    queue_op_free(o);
    queue_maybe_free(qe);
}

/* A job's head rewritten in the writer: state, attempts, time, token
 * from the op; everything else (reason, payload) kept. */
static enum store_hook_act
queue_head_hook(void *arg, const struct store_val *old, uint64_t rev,
                struct store_hook_ctx *ctx)
{
    struct qop *o = arg;
    struct queue_rec r, n;
    uint8_t *p;

    if (old == NULL || !queue_codec_read_rec(old->data, old->len, &r)) {
        return STORE_HOOK_REFUSE;
    }
    n = r;
    n.state = o->rec.state;
    n.attempts = o->rec.attempts;
    n.at_ms = o->rec.at_ms;
    n.token = o->rec.token;
    p = store_hook_value(ctx, old->len);
    if (p != NULL) {
        queue_codec_write_rec_head(p, &n);
        memcpy(p + QUEUE_REC_HEAD, (const uint8_t *)old->data + QUEUE_REC_HEAD,
               old->len - QUEUE_REC_HEAD);
    }
    return STORE_HOOK_PUT;
}

/* A batch rewriting j's head with o->rec; NULL when out of memory. */
static struct store_batch *
queue_head_batch(struct queue_engine *qe, struct qjob *j, struct qop *o)
{
    struct store_batch *b = store_batch_new();
    uint8_t key[QUEUE_KEY_LEN];

    if (b == NULL) {
        return NULL;
    }
    queue_codec_key(key, j->q->qid, j->id);
    if (store_batch_hook(b, qe->t_jobs, key, sizeof(key), queue_head_hook, o) !=
        FERRY_OK) {
        store_batch_free(b);
        return NULL;
    }
    return b;
}

static void
queue_answer_status(struct queue_engine *qe, uint64_t handle, uint8_t st)
{
    if (handle != 0) {
        broker_answer(qe->b, handle, FERRY_OK, &st, 1);
    }
}

static void
queue_answer_err(struct queue_engine *qe, uint64_t handle, ferry_err err,
                 const char *msg)
{
    if (handle != 0) {
        broker_answer_error(qe->b, handle, err, msg);
    }
}

/* ---- jobs in memory ---- */

/* Ready order: priority (higher first), then push order. */
static uint64_t
queue_ready_key(const struct qjob *j)
{
    return (uint64_t)(32767 - (int32_t)j->prio) << 48 |
           (j->id & UINT64_C(0xffffffffffff));
}

void
queue_timed_arm(struct queue_engine *qe)
{
    struct heap_node *first = heap_first(&qe->timed);

    if (first == NULL || qe->closing) {
        loop_timer_stop(qe->loop, &qe->timed_tm);
        return;
    }
    if (!timer_is_armed(&qe->timed_tm) ||
        timer_when(&qe->timed_tm) != first->key) {
        (void)loop_timer_start(qe->loop, &qe->timed_tm, first->key);
    }
}

void
queue_job_ready(struct queue_engine *qe, struct qjob *j)
{
    j->state = QJ_READY;
    j->token = 0;
    if (heap_push(&j->q->ready, &j->hn, queue_ready_key(j)) != FERRY_OK) {
        /* Kept in the store: it is ready again after a restart. */
        log_error("ferry.queue '%s': out of memory, job %llu set aside",
                  j->q->name, (unsigned long long)j->id);
        j->state = QJ_BUSY;
        j->was = QJ_READY;
        j->q->n_busy++;
    }
}

/* j waits in the timed heap until due (loop ms), as state. */
void
queue_job_timed(struct queue_engine *qe, struct qjob *j, uint8_t state,
                uint64_t due)
{
    j->state = state;
    j->due = due;
    if (heap_push(&qe->timed, &j->hn, due) != FERRY_OK) {
        log_error("ferry.queue '%s': out of memory, job %llu set aside",
                  j->q->name, (unsigned long long)j->id);
        j->state = QJ_BUSY;
        j->was = state;
        j->q->n_busy++;
        return;
    }
    if (state == QJ_DELAYED) {
        j->q->n_delayed++;
    } else {
        j->q->n_reserved++;
    }
    queue_timed_arm(qe);
}

void
queue_job_busy(struct queue_engine *qe, struct qjob *j)
{
    switch (j->state) {
    case QJ_READY:
        heap_remove(&j->q->ready, &j->hn);
        break;
    case QJ_DELAYED:
        heap_remove(&qe->timed, &j->hn);
        j->q->n_delayed--;
        break;
    case QJ_RESERVED:
        heap_remove(&qe->timed, &j->hn);
        j->q->n_reserved--;
        break;
    case QJ_BUSY:
        return;
    }
    j->was = j->state;
    j->state = QJ_BUSY;
    j->q->n_busy++;
}

void
queue_job_unbusy(struct queue_engine *qe, struct qjob *j)
{
    if (j->state != QJ_BUSY) {
        return;
    }
    j->q->n_busy--;
    if (j->was == QJ_READY) {
        queue_job_ready(qe, j);
    } else {
        queue_job_timed(qe, j, j->was, j->due);
    }
}

void
queue_job_free(struct queue_engine *qe, struct qjob *j)
{
    map_del(&qe->jobs, j->id);
    pool_put(&qe->job_pool, j);
}

/* The most deliveries j may have. */
static uint16_t
queue_max_deliveries(const struct qjob *j)
{
    return j->max_deliveries != 0 ? j->max_deliveries
                                  : j->q->set.max_deliveries;
}

/* ---- moves: dead-lettering and bury ---- */

static void
queue_move_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct qjob *j = o->job;

    queue_name_committed(qe, o, res->status == STORE_COMMITTED);
    if (res->status == STORE_COMMITTED) {
        j->q->n_busy--;
        if (o->op == QUEUE_OP_BURY) {
            j->q->n.buries++;
            qe->stats.buries++;
        } else {
            j->q->n.dead_lettered++;
            qe->stats.dead_lettered++;
        }
        queue_emit(qe, j->q, "dead", j->id);
        j->origin = j->q->qid;
        j->q = o->to;
        j->attempts = o->attempts;
        queue_job_ready(qe, j);
        queue_answer_status(qe, o->handle, QUEUE_ST_OK);
        queue_feed(qe, o->to);
    } else {
        qe->stats.write_errors++;
        queue_job_unbusy(qe, j);
        queue_answer_err(
            qe, o->handle, res->status == STORE_FAILED ? res->err : FERRY_ESYS,
            res->status == STORE_FAILED ? NULL : "the job vanished");
    }
    queue_op_done(o);
}

/*
 * Moves j (a committed job) into queue to, as ready, with reason kept:
 * dead-lettering (op 0) or a bury (QUEUE_OP_BURY). handle, when not 0,
 * gets the answer once it is on disk. false when it could not start (out
 * of memory, or the store cannot read j): j is then as it was and handle
 * has been answered.
 */
static bool
queue_move(struct queue_engine *qe, struct qjob *j, struct queue *to,
           struct slice reason, uint8_t op, uint64_t handle)
{
    uint8_t okey[QUEUE_KEY_LEN], nkey[QUEUE_KEY_LEN];
    struct store_val v;
    struct queue_rec r;
    bool found = false;
    struct store_batch *b = NULL;
    struct qop *o = NULL;
    uint8_t *buf;
    size_t len;

    queue_codec_key(okey, j->q->qid, j->id);
    queue_codec_key(nkey, to->qid, j->id);
    if (reason.len > QUEUE_REASON_MAX) {
        reason.len = QUEUE_REASON_MAX;
    }
    if (store_get(qe->st, qe->t_jobs, okey, sizeof(okey), &v, &found) !=
            FERRY_OK ||
        !found || !queue_codec_read_rec(v.data, v.len, &r)) {
        log_error("ferry.queue '%s': job %llu cannot be read to move it",
                  j->q->name, (unsigned long long)j->id);
        queue_answer_err(qe, handle, FERRY_ESYS, "the job cannot be read");
        return false;
    }
    r.state = QUEUE_READY;
    r.at_ms = 0;
    r.token = 0;
    r.origin = j->q->qid;
    r.reason = reason;
    len = QUEUE_REC_HEAD + reason.len + r.payload.len;
    o = queue_op_new(qe, op, j->q);
    b = store_batch_new();
    buf = queue_out(qe, len);
    if (o == NULL || b == NULL || buf == NULL) {
        goto out_nomem;
    }
    o->to = to;
    o->job = j;
    o->handle = handle;
    o->attempts = j->attempts;
    queue_codec_write_rec(buf, &r);
    if (store_batch_del(b, qe->t_jobs, okey, sizeof(okey)) != FERRY_OK ||
        store_batch_put(b, qe->t_jobs, nkey, sizeof(nkey), buf, len) !=
            FERRY_OK ||
        queue_batch_name_if_new(qe, b, to, o) != FERRY_OK) {
        goto out_nomem;
    }
    queue_job_busy(qe, j);
    queue_submit_op(qe, b, o, queue_move_done);
    return true;

out_nomem:
    store_batch_free(b);
    queue_op_free(o);
    queue_answer_err(qe, handle, FERRY_ENOMEM, NULL);
    return false;
}

/* Dead-letters j when it has had its deliveries (and q has a dead-letter
 * queue): true when it is on its way there. */
static bool
queue_maybe_dead(struct queue_engine *qe, struct qjob *j, const char *why,
                 uint64_t handle)
{
    uint16_t md = queue_max_deliveries(j);
    struct queue *dlq;
    char reason[160];

    if (md == 0 || j->attempts < md) {
        return false;
    }
    dlq = queue_dead_letter_of(qe, j->q, true);
    if (dlq == NULL || dlq == j->q) {
        return false;
    }
    snprintf(reason, sizeof(reason),
             "%s after %u deliveries (max_deliveries %u)", why,
             (unsigned)j->attempts, (unsigned)md);
    return queue_move(qe, j, dlq, slice_str(reason), 0, handle);
}

/* ---- delivery ---- */

static void
queue_reserve_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct qjob *j = o->job;
    struct queue *q = j->q;

    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        queue_job_unbusy(qe, j);
        queue_answer_err(
            qe, o->handle, res->status == STORE_FAILED ? res->err : FERRY_ESYS,
            res->status == STORE_FAILED ? NULL : "the job vanished");
        queue_feed(qe, q);
        queue_op_done(o);
        return;
    }
    if (!broker_is_waiting(qe->b, o->handle)) {
        /* The consumer left while the reservation was written: the job
         * is ready again; the store's reservation is simply stale. */
        j->was = QJ_READY;
        queue_job_unbusy(qe, j);
        queue_feed(qe, q);
        queue_op_done(o);
        return;
    }
    q->n_busy--;
    j->attempts = o->rec.attempts;
    queue_job_timed(qe, j, QJ_RESERVED, o->due);
    j->token = o->rec.token;
    q->n.reserves++;
    qe->stats.reserves++;
    {
        uint8_t key[QUEUE_KEY_LEN];
        struct store_val v;
        struct queue_rec r;
        bool found = false;
        uint8_t *p;

        queue_codec_key(key, q->qid, j->id);
        if (store_get(qe->st, qe->t_jobs, key, sizeof(key), &v, &found) !=
                FERRY_OK ||
            !found || !queue_codec_read_rec(v.data, v.len, &r)) {
            broker_answer_error(qe->b, o->handle, FERRY_ESYS,
                                "the job cannot be read");
        } else if ((p = queue_out(qe, QUEUE_RESERVE_HEAD + r.payload.len)) ==
                   NULL) {
            broker_answer_error(qe->b, o->handle, FERRY_ENOMEM, NULL);
        } else {
            p[0] = QUEUE_ST_OK;
            be_put_u64(p + 1, j->id);
            be_put_u64(p + 9, j->token);
            be_put_u32(p + 17, j->attempts);
            be_put_u16(p + 21, (uint16_t)j->prio);
            if (r.payload.len > 0) {
                memcpy(p + QUEUE_RESERVE_HEAD, r.payload.p, r.payload.len);
            }
            broker_answer(qe->b, o->handle, FERRY_OK, p,
                          QUEUE_RESERVE_HEAD + r.payload.len);
        }
    }
    queue_op_done(o);
}

/* Writes j's reservation for the held call handle (j is QJ_BUSY). */
static void
queue_deliver(struct queue_engine *qe, struct qjob *j, uint64_t handle,
              uint32_t vis_ms)
{
    struct qop *o = queue_op_new(qe, QUEUE_OP_RESERVE, j->q);
    uint32_t vis = vis_ms != 0      ? vis_ms
                   : j->vis_ms != 0 ? j->vis_ms
                                    : j->q->set.visibility_ms;
    struct store_batch *b;
    uint64_t token;

    if (o == NULL) {
        goto out_nomem;
    }
    do {
        token = rand_next(&qe->rng);
    } while (token == 0);
    o->job = j;
    o->handle = handle;
    o->due = loop_now(qe->loop) + vis;
    o->rec.state = QUEUE_RESERVED;
    o->rec.attempts = j->attempts + 1;
    o->rec.at_ms = queue_unix_ms() + vis;
    o->rec.token = token;
    b = queue_head_batch(qe, j, o);
    if (b == NULL) {
        goto out_nomem;
    }
    queue_submit_op(qe, b, o, queue_reserve_done);
    return;

out_nomem:
    queue_op_free(o);
    queue_job_unbusy(qe, j);
    broker_answer_error(qe->b, handle, FERRY_ENOMEM, NULL);
}

/* The next job of q to deliver, made QJ_BUSY; jobs past their deliveries
 * are dead-lettered on the way. NULL when none is ready. */
static struct qjob *
queue_take(struct queue_engine *qe, struct queue *q)
{
    struct heap_node *hn;

    while ((hn = heap_first(&q->ready)) != NULL) {
        struct qjob *j = container_of(hn, struct qjob, hn);
        if (queue_maybe_dead(qe, j, "not acked", 0)) {
            continue;
        }
        queue_job_busy(qe, j);
        return j;
    }
    return NULL;
}

void
queue_waiter_free(struct qwaiter *w)
{
    struct queue_engine *qe = w->qe;

    list_remove(&w->node);
    loop_timer_stop(qe->loop, &w->tm);
    map_del(&qe->waiting, w->handle);
    qe->stats.waiters--;
    w->q->n_waiters--;
    free(w);
}

void
queue_feed(struct queue_engine *qe, struct queue *q)
{
    while (!q->set.paused && !qe->closing && !list_is_empty(&q->waiters) &&
           q->ready.n > 0) {
        struct qwaiter *w = container_of(q->waiters.next, struct qwaiter, node);
        uint64_t handle = w->handle;
        uint32_t vis = w->vis_ms;
        struct qjob *j;

        if (!broker_is_waiting(qe->b, handle)) {
            queue_waiter_free(w);
            continue;
        }
        j = queue_take(qe, q);
        if (j == NULL) {
            return;
        }
        queue_waiter_free(w);
        queue_deliver(qe, j, handle, vis);
    }
}

static void
queue_waiter_timeout(struct timer *t)
{
    struct qwaiter *w = container_of(t, struct qwaiter, tm);
    struct queue_engine *qe = w->qe;
    uint64_t handle = w->handle;

    w->q->n.empty_reserves++;
    qe->stats.empty_reserves++;
    queue_waiter_free(w);
    queue_answer_status(qe, handle, QUEUE_ST_EMPTY);
}

static void
queue_reserve(struct queue_engine *qe, struct bcall *c,
              const struct queue_req *r, struct queue *q)
{
    struct qwaiter *w;
    uint64_t handle;
    uint8_t st = QUEUE_ST_EMPTY;
    uint32_t wait =
        r->wait_ms < QUEUE_MAX_WAIT_MS ? r->wait_ms : QUEUE_MAX_WAIT_MS;

    if (!q->set.paused) {
        struct qjob *j = queue_take(qe, q);
        if (j != NULL) {
            handle = bcall_hold(c);
            if (handle == 0) {
                j->was = QJ_READY;
                queue_job_unbusy(qe, j);
                return;
            }
            queue_deliver(qe, j, handle, r->visibility_ms);
            return;
        }
    }
    if (wait == 0) {
        q->n.empty_reserves++;
        qe->stats.empty_reserves++;
        bcall_reply(c, &st, 1);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    handle = bcall_hold(c);
    if (handle == 0) {
        free(w);
        return;
    }
    w->qe = qe;
    w->q = q;
    w->handle = handle;
    w->vis_ms = r->visibility_ms;
    timer_init(&w->tm, queue_waiter_timeout);
    if (map_put(&qe->waiting, handle, w) != FERRY_OK ||
        loop_timer_start(qe->loop, &w->tm, loop_now(qe->loop) + wait) !=
            FERRY_OK) {
        map_del(&qe->waiting, handle);
        free(w);
        broker_answer_error(qe->b, handle, FERRY_ENOMEM, NULL);
        return;
    }
    list_push_back(&q->waiters, &w->node);
    qe->stats.waiters++;
    q->n_waiters++;
}

/* ---- push ---- */

/* Forgets dd; pushes waiting for its first push keep it until they
 * are answered. */
static void
queue_dedup_free(struct queue_engine *qe, struct qdedup *dd)
{
    if (!dd->gone) {
        smap_del(&qe->dedup, dd->key, dd->klen);
        list_remove(&dd->node);
        dd->gone = true;
    }
    if (dd->waiters == 0) {
        free(dd);
    }
}

static void
queue_push_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct queue *q = o->q;
    struct qjob *j;
    uint8_t rep[QUEUE_PUSH_REPLY];

    queue_name_committed(qe, o, res->status == STORE_COMMITTED);
    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        if (o->dd != NULL) {
            o->dd->pending = false;
            o->dd->failed = true;
            queue_dedup_free(qe, o->dd);
        }
        queue_answer_err(qe, o->handle,
                         res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                         NULL);
        queue_op_done(o);
        return;
    }
    if (o->dd != NULL) {
        o->dd->pending = false;
    }
    q->n.pushes++;
    qe->stats.pushes++;
    queue_emit(qe, q, "pushed", o->id);
    j = pool_get(&qe->job_pool);
    if (j == NULL || map_put(&qe->jobs, o->id, j) != FERRY_OK) {
        /* On disk all the same: it is delivered after a restart. */
        log_error("ferry.queue '%s': out of memory, job %llu set aside",
                  q->name, (unsigned long long)o->id);
        pool_put(&qe->job_pool, j);
    } else {
        memset(j, 0, sizeof(*j));
        heap_node_init(&j->hn);
        j->id = o->id;
        j->q = q;
        j->prio = o->prio;
        j->vis_ms = o->vis_ms;
        j->max_deliveries = o->max_deliveries;
        j->pushed_ms = o->pushed_ms;
        if (o->due != 0) {
            queue_job_timed(qe, j, QJ_DELAYED, o->due);
        } else {
            queue_job_ready(qe, j);
        }
    }
    rep[0] = QUEUE_ST_OK;
    be_put_u64(rep + 1, o->id);
    rep[9] = 0;
    broker_answer(qe->b, o->handle, FERRY_OK, rep, sizeof(rep));
    queue_feed(qe, q);
    queue_op_done(o);
}

/* A push whose dedup id belongs to a push not yet committed: answered
 * once that one is decided (batches are decided in order), from the
 * entry it holds. */
static void
queue_dedup_wait_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct qdedup *dd = o->dd;
    uint8_t rep[QUEUE_PUSH_REPLY];

    (void)res;
    if (!dd->failed) {
        rep[0] = QUEUE_ST_OK;
        be_put_u64(rep + 1, dd->id);
        rep[9] = 1;
        broker_answer(qe->b, o->handle, FERRY_OK, rep, sizeof(rep));
    } else {
        broker_answer_error(qe->b, o->handle, FERRY_EOVERLOADED,
                            "the first push with this dedup id failed: push "
                            "again");
    }
    o->dd = NULL;
    dd->waiters--;
    if (dd->gone) {
        queue_dedup_free(qe, dd);
    }
    queue_op_done(o);
}

static void
queue_push(struct queue_engine *qe, struct bcall *c, const struct queue_req *r,
           struct queue *q)
{
    uint8_t key[QUEUE_KEY_LEN], idv[8], ddv[16];
    uint64_t now = queue_unix_ms();
    struct qdedup *dd = NULL;
    struct store_batch *b = NULL;
    struct qop *o = NULL;
    struct queue_rec rec;
    size_t len = QUEUE_REC_HEAD + r->payload.len;
    uint8_t *buf;

    if (store_space_low(qe->st)) {
        /* The room left is for reserves and acks, which free it. */
        qe->stats.write_errors++;
        bcall_error(c, FERRY_ENO_SPACE,
                    "the store is nearly full: pushes wait until acks free "
                    "room");
        return;
    }
    if (r->dedup.len > 0) {
        uint8_t dk[4 + QUEUE_DEDUP_MAX];
        be_put_u32(dk, q->qid);
        memcpy(dk + 4, r->dedup.p, r->dedup.len);
        dd = smap_get(&qe->dedup, dk, 4 + r->dedup.len);
        /* One whose push is still being written is live whatever its
         * window (0 ms, or shorter than the commit): that push's batch
         * holds it, and frees it if it fails. */
        if (dd != NULL && (dd->pending || dd->expires > now)) {
            uint8_t rep[QUEUE_PUSH_REPLY];
            q->n.dedup_hits++;
            qe->stats.dedup_hits++;
            if (!dd->pending) {
                rep[0] = QUEUE_ST_OK;
                be_put_u64(rep + 1, dd->id);
                rep[9] = 1;
                bcall_reply(c, rep, sizeof(rep));
                return;
            }
            /* Wait for the first push's batch: a no-op batch behind it. */
            o = queue_op_new(qe, QUEUE_OP_PUSH, q);
            b = store_batch_new();
            if (o == NULL || b == NULL ||
                store_batch_del(b, qe->t_meta, "queue/none", 10) != FERRY_OK) {
                queue_op_free(o);
                store_batch_free(b);
                bcall_error(c, FERRY_ENOMEM, NULL);
                return;
            }
            o->handle = bcall_hold(c);
            if (o->handle == 0) {
                queue_op_free(o);
                store_batch_free(b);
                return;
            }
            o->dd = dd;
            dd->waiters++;
            queue_submit_op(qe, b, o, queue_dedup_wait_done);
            return;
        }
        if (dd != NULL) {
            queue_dedup_free(qe, dd); /* expired */
        }
        dd = calloc(1, sizeof(*dd));
        if (dd == NULL) {
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        memcpy(dd->key, dk, 4 + r->dedup.len);
        dd->klen = (uint16_t)(4 + r->dedup.len);
        if (smap_put(&qe->dedup, dd->key, dd->klen, dd) != FERRY_OK) {
            free(dd);
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        dd->pending = true;
        dd->expires = now + q->set.dedup_window_ms;
        list_push_back(&q->dedup_fifo, &dd->node);
    }
    o = queue_op_new(qe, QUEUE_OP_PUSH, q);
    b = store_batch_new();
    buf = queue_out(qe, len);
    if (o == NULL || b == NULL || buf == NULL) {
        goto out_nomem;
    }
    o->id = qe->next_id++;
    o->dd = dd;
    o->prio = r->priority;
    o->vis_ms = r->visibility_ms;
    o->max_deliveries = r->max_deliveries;
    o->pushed_ms = now;
    o->due = r->delay_ms > 0 ? loop_now(qe->loop) + r->delay_ms : 0;
    memset(&rec, 0, sizeof(rec));
    rec.state = r->delay_ms > 0 ? QUEUE_DELAYED : QUEUE_READY;
    rec.priority = r->priority;
    rec.max_deliveries = r->max_deliveries;
    rec.visibility_ms = r->visibility_ms;
    rec.at_ms = r->delay_ms > 0 ? now + r->delay_ms : 0;
    rec.pushed_ms = now;
    rec.payload = r->payload;
    queue_codec_write_rec(buf, &rec);
    queue_codec_key(key, q->qid, o->id);
    be_put_u64(idv, qe->next_id);
    if (store_batch_put(b, qe->t_jobs, key, sizeof(key), buf, len) !=
            FERRY_OK ||
        store_batch_put(b, qe->t_meta, QUEUE_NEXT_ID_KEY,
                        sizeof(QUEUE_NEXT_ID_KEY) - 1, idv, 8) != FERRY_OK ||
        queue_batch_name_if_new(qe, b, q, o) != FERRY_OK) {
        goto out_nomem;
    }
    if (dd != NULL) {
        dd->id = o->id;
        be_put_u64(be_put_u64(ddv, o->id), dd->expires);
        if (store_batch_put(b, qe->t_dedup, dd->key, dd->klen, ddv, 16) !=
            FERRY_OK) {
            goto out_nomem;
        }
    }
    o->handle = bcall_hold(c);
    if (o->handle == 0) {
        dd = NULL; /* o->dd is freed below */
        goto out_free;
    }
    queue_submit_op(qe, b, o, queue_push_done);
    return;

out_nomem:
    bcall_error(c, FERRY_ENOMEM, NULL);
out_free:
    if (o != NULL && o->dd != NULL) {
        queue_dedup_free(qe, o->dd);
    } else if (dd != NULL) {
        queue_dedup_free(qe, dd);
    }
    store_batch_free(b);
    queue_op_free(o);
}

/* ---- ack, release, touch, bury ---- */

static void
queue_ack_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct qjob *j = o->job;

    if (res->status == STORE_COMMITTED) {
        j->q->n_busy--;
        j->q->n.acks++;
        qe->stats.acks++;
        queue_emit(qe, j->q, "acked", j->id);
        queue_job_free(qe, j);
        queue_answer_status(qe, o->handle, QUEUE_ST_OK);
    } else {
        qe->stats.write_errors++;
        queue_job_unbusy(qe, j);
        queue_answer_err(qe, o->handle,
                         res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                         NULL);
    }
    queue_op_done(o);
}

static void
queue_change_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct qjob *j = o->job;
    struct queue *q = j->q;

    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        queue_job_unbusy(qe, j);
        queue_answer_err(qe, o->handle,
                         res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                         NULL);
        queue_op_done(o);
        return;
    }
    q->n_busy--;
    if (o->op == QUEUE_OP_TOUCH) {
        uint8_t rep[5];
        queue_job_timed(qe, j, QJ_RESERVED, o->due);
        q->n.touches++;
        qe->stats.touches++;
        rep[0] = QUEUE_ST_OK;
        be_put_u32(rep + 1, o->vis_ms);
        if (o->handle != 0) {
            broker_answer(qe->b, o->handle, FERRY_OK, rep, sizeof(rep));
        }
    } else {
        /* RELEASE */
        if (o->due != 0) {
            queue_job_timed(qe, j, QJ_DELAYED, o->due);
        } else {
            queue_job_ready(qe, j);
        }
        q->n.releases++;
        qe->stats.releases++;
        queue_answer_status(qe, o->handle, QUEUE_ST_OK);
        queue_feed(qe, q);
    }
    queue_op_done(o);
}

/* The job of an ACK, RELEASE, TOUCH or BURY, or NULL with c answered. */
static struct qjob *
queue_held_job(struct queue_engine *qe, struct bcall *c,
               const struct queue_req *r, struct queue *q)
{
    struct qjob *j = map_get(&qe->jobs, r->id);
    uint8_t st;

    if (j == NULL || q == NULL || j->q != q) {
        st = QUEUE_ST_NOT_FOUND;
        bcall_reply(c, &st, 1);
        return NULL;
    }
    if (j->state == QJ_BUSY && j->was == QJ_RESERVED && j->token != 0 &&
        j->token == r->token) {
        /* The holder's previous change (a touch) is being written: one
         * change of a job at a time. Not STALE: the token is good. */
        bcall_error(c, FERRY_EOVERLOADED,
                    "a change of this job is still being written: send it "
                    "again once that one is answered");
        return NULL;
    }
    if (j->state != QJ_RESERVED || j->token != r->token) {
        qe->stats.stale++;
        st = QUEUE_ST_STALE;
        bcall_reply(c, &st, 1);
        return NULL;
    }
    return j;
}

static void
queue_job_op(struct queue_engine *qe, struct bcall *c,
             const struct queue_req *r, struct queue *q)
{
    struct qjob *j = queue_held_job(qe, c, r, q);
    struct store_batch *b = NULL;
    struct qop *o;
    uint64_t now;

    if (j == NULL) {
        return;
    }
    if (r->op == QUEUE_OP_BURY || r->op == QUEUE_OP_RELEASE) {
        uint16_t md = queue_max_deliveries(j);
        bool bury = r->op == QUEUE_OP_BURY;
        /* The dead-letter queue is made only when the job goes there: a
         * plain release is no use of it. */
        struct queue *dlq = bury || (md != 0 && j->attempts >= md)
                                ? queue_dead_letter_of(qe, q, true)
                                : NULL;
        if (bury && dlq == NULL) {
            bcall_error(c, FERRY_EINVALID_ARGUMENT,
                        "this queue has no dead-letter queue to bury into");
            return;
        }
        if (bury || (md != 0 && j->attempts >= md && dlq != NULL)) {
            char why[160];
            struct slice reason = r->reason;
            uint64_t h = bcall_hold(c);
            if (h == 0) {
                return;
            }
            if (!bury) {
                snprintf(why, sizeof(why),
                         "released after %u deliveries (max_deliveries %u)",
                         (unsigned)j->attempts, (unsigned)md);
                reason = slice_str(why);
            } else if (reason.len == 0) {
                reason = slice_str("buried");
            }
            (void)queue_move(qe, j, dlq, reason, bury ? QUEUE_OP_BURY : 0, h);
            return;
        }
    }
    o = queue_op_new(qe, r->op, q);
    if (o == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    o->job = j;
    now = loop_now(qe->loop);
    if (r->op == QUEUE_OP_ACK) {
        uint8_t key[QUEUE_KEY_LEN];
        queue_codec_key(key, q->qid, j->id);
        b = store_batch_new();
        if (b != NULL &&
            store_batch_del(b, qe->t_jobs, key, sizeof(key)) != FERRY_OK) {
            store_batch_free(b);
            b = NULL;
        }
    } else if (r->op == QUEUE_OP_RELEASE) {
        uint32_t delay = r->delay_ms;
        if (delay == QUEUE_RELEASE_BACKOFF) {
            uint8_t n = q->set.n_backoff;
            uint32_t i = j->attempts > 0 ? j->attempts - 1 : 0;
            delay = n == 0 ? 0 : q->set.backoff_ms[i < n ? i : n - 1u];
        }
        o->due = delay > 0 ? now + delay : 0;
        o->rec.state = delay > 0 ? QUEUE_DELAYED : QUEUE_READY;
        o->rec.attempts = j->attempts;
        o->rec.at_ms = delay > 0 ? queue_unix_ms() + delay : 0;
        b = queue_head_batch(qe, j, o);
    } else { /* TOUCH */
        uint32_t vis = r->visibility_ms != 0 ? r->visibility_ms
                       : j->vis_ms != 0      ? j->vis_ms
                                             : q->set.visibility_ms;
        o->vis_ms = vis;
        o->due = now + vis;
        o->rec.state = QUEUE_RESERVED;
        o->rec.attempts = j->attempts;
        o->rec.at_ms = queue_unix_ms() + vis;
        o->rec.token = j->token;
        b = queue_head_batch(qe, j, o);
    }
    if (b == NULL) {
        queue_op_free(o);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    o->handle = bcall_hold(c);
    if (o->handle == 0) {
        store_batch_free(b);
        queue_op_free(o);
        return;
    }
    queue_job_busy(qe, j);
    if (r->op == QUEUE_OP_RELEASE) {
        /* Its reservation ends now, whatever the write's fate. */
        j->token = 0;
        j->was = QJ_RESERVED;
    }
    queue_submit_op(qe, b, o,
                    r->op == QUEUE_OP_ACK ? queue_ack_done : queue_change_done);
}

/* ---- the timed heap ---- */

static void
queue_timed_cb(struct timer *t)
{
    struct queue_engine *qe = container_of(t, struct queue_engine, timed_tm);
    uint64_t now = loop_now(qe->loop);
    struct heap_node *hn;

    while ((hn = heap_first(&qe->timed)) != NULL && hn->key <= now) {
        struct qjob *j = container_of(hn, struct qjob, hn);
        struct queue *q = j->q;

        heap_remove(&qe->timed, hn);
        if (j->state == QJ_DELAYED) {
            q->n_delayed--;
            queue_job_ready(qe, j);
        } else {
            /* A reservation ran out: ready again, attempt count kept. On
             * disk it stays reserved with a stale token until its next
             * change; a restart makes it ready too. */
            q->n_reserved--;
            q->n.expired++;
            qe->stats.expired++;
            queue_job_ready(qe, j);
            if (queue_maybe_dead(qe, j, "visibility timeout passed", 0)) {
                continue;
            }
        }
        queue_feed(qe, q);
    }
    queue_timed_arm(qe);
}

/* ---- the backend ---- */

static void
queue_call(struct backend *be, struct bcall *c)
{
    struct queue_engine *qe = queue_of(be);
    struct queue_req r;
    struct queue *q;
    char err[QUEUE_CODEC_ERR_SIZE];

    if (queue_codec_decode(c->key, c->payload, &r, err) != FERRY_OK) {
        qe->stats.bad++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    if (qe->closing) {
        bcall_error(c, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    q = r.queue.len > 0
            ? queue_get(qe, r.queue,
                        r.op == QUEUE_OP_PUSH || r.op == QUEUE_OP_RESERVE ||
                            r.op == QUEUE_OP_CONFIGURE ||
                            r.op == QUEUE_OP_PAUSE)
            : NULL;
    switch (r.op) {
    case QUEUE_OP_PUSH:
    case QUEUE_OP_RESERVE:
        if (q == NULL) {
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        if (r.op == QUEUE_OP_PUSH) {
            queue_push(qe, c, &r, q);
        } else {
            queue_reserve(qe, c, &r, q);
        }
        return;
    case QUEUE_OP_ACK:
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_TOUCH:
    case QUEUE_OP_BURY:
        queue_job_op(qe, c, &r, q);
        return;
    default:
        queue_admin_call(qe, c, &r, q);
        return;
    }
}

/* A held call ended first: a waiting RESERVE goes; a write still commits
 * (its answer is then dropped by the broker). */
static void
queue_cancelled(struct backend *be, uint64_t handle)
{
    struct queue_engine *qe = queue_of(be);
    struct qwaiter *w = map_get(&qe->waiting, handle);

    if (w != NULL) {
        queue_waiter_free(w);
    }
}

static int
queue_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    struct queue_engine *qe = queue_of(be);

    return json_object_set_new(obj, "queues",
                               json_integer((json_int_t)qe->stats.queues)) != 0
               ? -1
               : 0;
}

const struct backend_ops queue_backend_ops = {
    .kind = "queue",
    .call = queue_call,
    .cancelled = queue_cancelled,
    .describe = queue_describe,
};

void
queue_timed_init(struct queue_engine *qe)
{
    timer_init(&qe->timed_tm, queue_timed_cb);
}

static void
queue_maybe_free(struct queue_engine *qe)
{
    if (qe->closing && qe->pending == 0) {
        queue_engine_free(qe);
    }
}
