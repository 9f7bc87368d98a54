/* SPDX-License-Identifier: MIT */
/*
 * queue_admin.c - ferry.queue's ops beside the job path: settings (their
 * JSON, CONFIGURE, PAUSE, RESUME), PEEK, STATS, REDRIVE, PURGE, DELETE,
 * the once-a-second tick (rates, expired dedup ids), and the counters of
 * /v1/stats and /metrics.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "queue/queue_impl.h"

/* ---- settings ---- */

uint8_t *
queue_settings_encode(uint32_t qid, const struct queue_settings *s, size_t *len)
{
    json_t *o = json_object(), *bo = json_array();
    char *text = NULL;
    uint8_t *v = NULL;
    int bad = o == NULL || bo == NULL;
    size_t n;

    for (uint8_t i = 0; i < s->n_backoff && !bad; i++) {
        bad |= json_array_append_new(bo, json_integer(s->backoff_ms[i]));
    }
    bad = bad ||
          json_object_set_new(o, "visibility_ms",
                              json_integer(s->visibility_ms)) != 0 ||
          json_object_set_new(o, "max_deliveries",
                              json_integer(s->max_deliveries)) != 0 ||
          json_object_set_new(o, "dedup_window_ms",
                              json_integer(s->dedup_window_ms)) != 0 ||
          json_object_set_new(o, "dead_letter", json_string(s->dead_letter)) !=
              0 ||
          json_object_set_new(o, "paused", json_boolean(s->paused)) != 0;
    if (!bad && json_object_set_new(o, "backoff_ms", bo) == 0) {
        bo = NULL;
        text = json_dumps(o, JSON_COMPACT);
    }
    if (text != NULL) {
        n = strlen(text);
        v = malloc(4 + n);
        if (v != NULL) {
            be_put_u32(v, qid);
            memcpy(v + 4, text, n);
            *len = 4 + n;
        }
    }
    free(text);
    json_decref(bo);
    json_decref(o);
    return v;
}

static bool
queue_set_u32(json_t *doc, const char *key, uint32_t max, uint32_t *out,
              char *err, size_t err_size)
{
    json_t *v = json_object_get(doc, key);

    if (v == NULL) {
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)max) {
        snprintf(err, err_size, "%s must be an integer from 0 to %" PRIu32, key,
                 max);
        return false;
    }
    *out = (uint32_t)json_integer_value(v);
    return true;
}

/* Applies the keys present in doc on top of *s; the rest stay. */
static bool
queue_settings_apply_doc(json_t *doc, struct queue_settings *s, char *err,
                         size_t err_size)
{
    static const char *const known[] = {"visibility_ms",   "max_deliveries",
                                        "dedup_window_ms", "dead_letter",
                                        "backoff_ms",      "paused"};
    struct queue_settings n = *s;
    uint32_t md = n.max_deliveries;
    const char *key;
    json_t *v;

    if (!json_is_object(doc)) {
        snprintf(err, err_size, "settings must be a JSON object");
        return false;
    }
    json_object_foreach(doc, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            ok |= strcmp(key, known[i]) == 0;
        }
        if (!ok) {
            snprintf(err, err_size, "unknown setting '%.40s'", key);
            return false;
        }
    }
    if (!queue_set_u32(doc, "visibility_ms", 86400000, &n.visibility_ms, err,
                       err_size) ||
        !queue_set_u32(doc, "max_deliveries", 65535, &md, err, err_size) ||
        !queue_set_u32(doc, "dedup_window_ms", 86400000, &n.dedup_window_ms,
                       err, err_size)) {
        return false;
    }
    if (n.visibility_ms == 0) {
        snprintf(err, err_size, "visibility_ms must be at least 1");
        return false;
    }
    n.max_deliveries = (uint16_t)md;
    v = json_object_get(doc, "dead_letter");
    if (v != NULL) {
        const char *dl = json_string_value(v);
        size_t len = dl != NULL ? strlen(dl) : 0;
        if (dl == NULL || (len > 0 && !queue_name_is_valid((struct slice){
                                          (const uint8_t *)dl, len}))) {
            snprintf(err, err_size,
                     "dead_letter must be a queue name, or \"\" for none");
            return false;
        }
        memcpy(n.dead_letter, dl, len + 1);
    }
    v = json_object_get(doc, "backoff_ms");
    if (v != NULL) {
        size_t i;
        json_t *e;
        if (!json_is_array(v) || json_array_size(v) > QUEUE_BACKOFF_MAX) {
            snprintf(err, err_size,
                     "backoff_ms must be a list of at most %d delays",
                     QUEUE_BACKOFF_MAX);
            return false;
        }
        n.n_backoff = 0;
        json_array_foreach(v, i, e)
        {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > 86400000) {
                snprintf(err, err_size,
                         "backoff_ms entries are delays of 0 to 86400000 ms");
                return false;
            }
            n.backoff_ms[n.n_backoff++] = (uint32_t)json_integer_value(e);
        }
    }
    v = json_object_get(doc, "paused");
    if (v != NULL) {
        if (!json_is_boolean(v)) {
            snprintf(err, err_size, "paused must be true or false");
            return false;
        }
        n.paused = json_is_true(v);
    }
    *s = n;
    return true;
}

bool
queue_settings_apply(struct slice text, struct queue_settings *s, char *err,
                     size_t err_size)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)text.p, text.len, 0, &je);
    bool ok;

    if (doc == NULL) {
        snprintf(err, err_size, "settings are not JSON: %s", je.text);
        return false;
    }
    ok = queue_settings_apply_doc(doc, s, err, err_size);
    json_decref(doc);
    return ok;
}

bool
queue_settings_decode(const void *data, size_t len, uint32_t *qid,
                      struct queue_settings *s, char *err, size_t err_size)
{
    if (len < 4) {
        snprintf(err, err_size, "name record of %zu bytes", len);
        return false;
    }
    *qid = be_get_u32(data);
    return queue_settings_apply(
        (struct slice){(const uint8_t *)data + 4, len - 4}, s, err, err_size);
}

static json_t *
queue_settings_json(const struct queue_settings *s)
{
    size_t len;
    uint8_t *v = queue_settings_encode(0, s, &len);
    json_t *o;

    if (v == NULL) {
        return NULL;
    }
    o = json_loadb((const char *)v + 4, len - 4, 0, NULL);
    free(v);
    return o;
}

/* ---- JSON of queues ---- */

static uint64_t
queue_oldest_ready_ms(const struct queue *q, uint64_t now)
{
    uint64_t oldest = now;

    for (size_t i = 0; i < q->ready.n; i++) {
        const struct qjob *j = container_of(q->ready.v[i], struct qjob, hn);
        if (j->pushed_ms < oldest) {
            oldest = j->pushed_ms;
        }
    }
    return q->ready.n > 0 ? now - oldest : 0;
}

static json_t *
queue_json(struct queue_engine *qe, struct queue *q)
{
    json_t *o = json_object();
    struct queue *dlq = queue_dead_letter_of(qe, q, false);
    int bad = o == NULL;

#define QJ_SET(k, v) bad = bad || json_object_set_new(o, k, v) != 0
#define QJ_INT(k, v) QJ_SET(k, json_integer((json_int_t)(v)))
    QJ_SET("name", json_string(q->name));
    QJ_INT("ready", q->ready.n);
    QJ_INT("delayed", q->n_delayed);
    QJ_INT("reserved", q->n_reserved + q->n_busy);
    QJ_INT("dead",
           dlq != NULL && dlq != q ? dlq->ready.n + dlq->n_reserved : 0);
    QJ_INT("waiters", q->n_waiters);
    QJ_SET("paused", json_boolean(q->set.paused));
    QJ_INT("oldest_ready_age_ms", queue_oldest_ready_ms(q, queue_unix_ms()));
    QJ_INT("pushes", q->n.pushes);
    QJ_INT("dedup_hits", q->n.dedup_hits);
    QJ_INT("reserves", q->n.reserves);
    QJ_INT("empty_reserves", q->n.empty_reserves);
    QJ_INT("acks", q->n.acks);
    QJ_INT("releases", q->n.releases);
    QJ_INT("touches", q->n.touches);
    QJ_INT("buries", q->n.buries);
    QJ_INT("expired", q->n.expired);
    QJ_INT("dead_lettered", q->n.dead_lettered);
    QJ_INT("redriven", q->n.redriven);
    QJ_INT("purged", q->n.purged);
    QJ_SET("push_rate", json_real(q->push_rate));
    QJ_SET("ack_rate", json_real(q->ack_rate));
    QJ_SET("settings", queue_settings_json(&q->set));
#undef QJ_INT
#undef QJ_SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *
queue_engine_queue_json(struct queue_engine *qe, struct slice name)
{
    json_t *arr, *doc;
    size_t pos = 0;
    void *val;

    if (name.len > 0) {
        struct queue *q = queue_get(qe, name, false);
        return q != NULL ? queue_json(qe, q) : NULL;
    }
    arr = json_array();
    doc = json_object();
    if (arr == NULL || doc == NULL) {
        goto out_free;
    }
    while (smap_next(&qe->by_name, &pos, &val)) {
        if (json_array_append_new(arr, queue_json(qe, val)) != 0) {
            goto out_free;
        }
    }
    if (json_object_set_new(doc, "queues", arr) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;

out_free:
    json_decref(arr);
    json_decref(doc);
    return NULL;
}

/* ---- PEEK ---- */

/* Whether heap node a comes out before b. */
static bool
queue_before(const struct heap_node *a, const struct heap_node *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

/*
 * The first (up to) limit nodes of heap h in order, into out: a walk of
 * the heap's tree with a small frontier heap of slots, O(limit log
 * limit), without touching h.
 */
static size_t
queue_heap_first_n(const struct heap *h, size_t limit,
                   const struct heap_node **out, size_t *frontier)
{
    size_t nf = 0, n = 0;

    if (h->n == 0) {
        return 0;
    }
    frontier[nf++] = 0;
    while (nf > 0 && n < limit) {
        size_t top = frontier[0], i = 0;
        /* Pop the frontier's smallest. */
        frontier[0] = frontier[--nf];
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < nf && queue_before(h->v[frontier[l]], h->v[frontier[m]])) {
                m = l;
            }
            if (r < nf && queue_before(h->v[frontier[r]], h->v[frontier[m]])) {
                m = r;
            }
            if (m == i) {
                break;
            }
            size_t t = frontier[i];
            frontier[i] = frontier[m];
            frontier[m] = t;
            i = m;
        }
        out[n++] = h->v[top];
        /* Its children join the frontier. */
        for (size_t c = 2 * top + 1; c <= 2 * top + 2 && c < h->n; c++) {
            size_t k = nf++;
            frontier[k] = c;
            while (k > 0 && queue_before(h->v[frontier[k]],
                                         h->v[frontier[(k - 1) / 2]])) {
                size_t t = frontier[k];
                frontier[k] = frontier[(k - 1) / 2];
                frontier[(k - 1) / 2] = t;
                k = (k - 1) / 2;
            }
        }
    }
    return n;
}

static int
queue_due_cmp(const void *a, const void *b)
{
    const struct qjob *x = *(const struct qjob *const *)a;
    const struct qjob *y = *(const struct qjob *const *)b;

    return x->due < y->due ? -1 : x->due > y->due;
}

static void
queue_peek(struct queue_engine *qe, struct bcall *c, const struct queue_req *r,
           struct queue *q)
{
    const struct heap_node **nodes = NULL;
    struct qjob **jobs = NULL;
    size_t *frontier = NULL, n = 0, size = 3;
    uint64_t now = queue_unix_ms();
    struct queue *src = q;
    uint8_t *p;

    if (q == NULL) {
        uint8_t st = QUEUE_ST_NOT_FOUND;
        bcall_reply(c, &st, 1);
        return;
    }
    if (r->which == QUEUE_PEEK_DEAD) {
        src = queue_dead_letter_of(qe, q, false);
    }
    jobs = calloc(r->limit, sizeof(*jobs));
    nodes = calloc(r->limit, sizeof(*nodes));
    frontier = calloc(2 * (size_t)r->limit + 2, sizeof(*frontier));
    if (jobs == NULL || nodes == NULL || frontier == NULL) {
        goto out_nomem;
    }
    if (src == NULL) {
        n = 0;
    } else if (r->which == QUEUE_PEEK_READY || r->which == QUEUE_PEEK_DEAD) {
        n = queue_heap_first_n(&src->ready, r->limit, nodes, frontier);
        for (size_t i = 0; i < n; i++) {
            jobs[i] = container_of(nodes[i], struct qjob, hn);
        }
    } else {
        /* Delayed and reserved jobs share the engine's timed heap: walk
         * it for q's, keeping the soonest limit. */
        uint8_t want =
            r->which == QUEUE_PEEK_DELAYED ? QJ_DELAYED : QJ_RESERVED;
        for (size_t i = 0; i < qe->timed.n; i++) {
            struct qjob *j = container_of(qe->timed.v[i], struct qjob, hn);
            if (j->q != q || j->state != want) {
                continue;
            }
            if (n < r->limit) {
                jobs[n++] = j;
                qsort(jobs, n, sizeof(*jobs), queue_due_cmp);
            } else if (j->due < jobs[n - 1]->due) {
                jobs[n - 1] = j;
                qsort(jobs, n, sizeof(*jobs), queue_due_cmp);
            }
        }
    }
    /* Two passes over the store: sizes, then the entries. */
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 3;
        p = NULL;
        if (pass == 1) {
            p = queue_out(qe, size);
            if (p == NULL) {
                goto out_nomem;
            }
            p[0] = QUEUE_ST_OK;
            be_put_u16(p + 1, (uint16_t)n);
        }
        for (size_t i = 0; i < n; i++) {
            struct qjob *j = jobs[i];
            uint8_t key[QUEUE_KEY_LEN];
            struct store_val v;
            struct queue_rec rec;
            struct queue_peek_entry e;
            bool found = false;

            queue_codec_key(key, j->q->qid, j->id);
            if (store_get(qe->st, qe->t_jobs, key, sizeof(key), &v, &found) !=
                    FERRY_OK ||
                !found || !queue_codec_read_rec(v.data, v.len, &rec)) {
                bcall_error(c, FERRY_ESYS, "a job cannot be read");
                goto out_free;
            }
            e.id = j->id;
            e.attempts = j->attempts;
            e.priority = j->prio;
            e.state = j->state == QJ_BUSY ? j->was : j->state;
            e.age_ms = now > j->pushed_ms ? now - j->pushed_ms : 0;
            e.reason = rec.reason;
            e.payload = rec.payload;
            if (pass == 0) {
                size += QUEUE_PEEK_ENTRY_HEAD + e.reason.len + e.payload.len;
            } else {
                off += queue_codec_write_peek_entry(p + off, &e);
            }
        }
    }
    bcall_reply(c, qe->out, size);
    goto out_free;

out_nomem:
    bcall_error(c, FERRY_ENOMEM, NULL);
out_free:
    free(jobs);
    free(nodes);
    free(frontier);
}

/* ---- REDRIVE, PURGE: many jobs in one batch ---- */

static void
queue_many_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    uint8_t rep[9];

    queue_name_committed(qe, o, res->status == STORE_COMMITTED);
    for (size_t i = 0; i < o->n_jobs; i++) {
        struct qjob *j = o->jobs[i];
        if (res->status != STORE_COMMITTED) {
            queue_job_unbusy(qe, j);
        } else if (o->op == QUEUE_OP_PURGE) {
            j->q->n_busy--;
            queue_job_free(qe, j);
        } else {
            j->q->n_busy--;
            j->q = o->to;
            j->attempts = 0;
            j->origin = 0;
            queue_job_ready(qe, j);
        }
    }
    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        broker_answer_error(qe->b, o->handle,
                            res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                            NULL);
    } else {
        if (o->op == QUEUE_OP_PURGE) {
            o->q->n.purged += o->n_jobs;
            qe->stats.purged += o->n_jobs;
        } else {
            o->to->n.redriven += o->n_jobs;
            qe->stats.redriven += o->n_jobs;
            queue_feed(qe, o->to);
        }
        rep[0] = QUEUE_ST_OK;
        be_put_u64(rep + 1, o->n_jobs);
        broker_answer(qe->b, o->handle, FERRY_OK, rep, sizeof(rep));
    }
    queue_op_done(o);
}

/* Adds j's move back into to (ready, attempts 0, no reason) to b. */
static ferry_err
queue_batch_redrive(struct queue_engine *qe, struct store_batch *b,
                    struct qjob *j, struct queue *to)
{
    uint8_t okey[QUEUE_KEY_LEN], nkey[QUEUE_KEY_LEN];
    struct store_val v;
    struct queue_rec rec;
    bool found = false;
    uint8_t *buf;
    size_t len;

    queue_codec_key(okey, j->q->qid, j->id);
    queue_codec_key(nkey, to->qid, j->id);
    if (store_get(qe->st, qe->t_jobs, okey, sizeof(okey), &v, &found) !=
            FERRY_OK ||
        !found || !queue_codec_read_rec(v.data, v.len, &rec)) {
        return FERRY_ESYS;
    }
    rec.state = QUEUE_READY;
    rec.attempts = 0;
    rec.at_ms = 0;
    rec.token = 0;
    rec.origin = 0;
    rec.reason.len = 0;
    len = QUEUE_REC_HEAD + rec.payload.len;
    buf = queue_out(qe, len);
    if (buf == NULL) {
        return FERRY_ENOMEM;
    }
    queue_codec_write_rec(buf, &rec);
    if (store_batch_del(b, qe->t_jobs, okey, sizeof(okey)) != FERRY_OK ||
        store_batch_put(b, qe->t_jobs, nkey, sizeof(nkey), buf, len) !=
            FERRY_OK) {
        return FERRY_ENOMEM;
    }
    return FERRY_OK;
}

static void
queue_many(struct queue_engine *qe, struct bcall *c, const struct queue_req *r,
           struct queue *q)
{
    struct queue *from = q;
    struct qop *o = NULL;
    struct store_batch *b = NULL;
    size_t limit = QUEUE_BATCH_JOBS;
    uint8_t rep[9];
    ferry_err err = FERRY_ENOMEM;

    if (r->op == QUEUE_OP_REDRIVE) {
        from = queue_dead_letter_of(qe, q, false);
        if (r->limit != 0 && r->limit < limit) {
            limit = r->limit;
        }
    }
    if (r->op == QUEUE_OP_REDRIVE && from == q) {
        from = NULL;
    }
    if (from == NULL || (from->ready.n == 0 &&
                         (r->op == QUEUE_OP_REDRIVE || from->n_delayed == 0))) {
        rep[0] = QUEUE_ST_OK;
        be_put_u64(rep + 1, 0);
        bcall_reply(c, rep, sizeof(rep));
        return;
    }
    o = queue_op_new(qe, r->op, q);
    b = store_batch_new();
    if (o == NULL || b == NULL) {
        goto out_err;
    }
    o->to = r->op == QUEUE_OP_REDRIVE ? q : NULL;
    o->jobs = calloc(limit, sizeof(*o->jobs));
    if (o->jobs == NULL) {
        goto out_err;
    }
    if (o->to != NULL && queue_batch_name(qe, b, q, &q->set, o) != FERRY_OK) {
        goto out_err;
    }
    /* Ready jobs (a redrive takes those that died in q, or were pushed
     * to the dead-letter queue itself, which other queues may share),
     * then (PURGE) delayed ones. A job made busy leaves the heap: slot i
     * holds another one then. */
    for (size_t i = 0; o->n_jobs < limit && i < from->ready.n;) {
        struct qjob *j = container_of(from->ready.v[i], struct qjob, hn);
        uint8_t key[QUEUE_KEY_LEN];
        if (r->op == QUEUE_OP_REDRIVE) {
            if (j->origin != q->qid && j->origin != 0) {
                i++;
                continue;
            }
            err = queue_batch_redrive(qe, b, j, q);
        } else {
            queue_codec_key(key, from->qid, j->id);
            err = store_batch_del(b, qe->t_jobs, key, sizeof(key));
        }
        if (err != FERRY_OK) {
            goto out_undo;
        }
        queue_job_busy(qe, j);
        o->jobs[o->n_jobs++] = j;
    }
    for (size_t i = 0;
         r->op == QUEUE_OP_PURGE && i < qe->timed.n && o->n_jobs < limit;) {
        struct qjob *j = container_of(qe->timed.v[i], struct qjob, hn);
        uint8_t key[QUEUE_KEY_LEN];
        if (j->q != from || j->state != QJ_DELAYED) {
            i++;
            continue;
        }
        queue_codec_key(key, from->qid, j->id);
        err = store_batch_del(b, qe->t_jobs, key, sizeof(key));
        if (err != FERRY_OK) {
            goto out_undo;
        }
        queue_job_busy(qe, j); /* leaves the heap: slot i is another now */
        o->jobs[o->n_jobs++] = j;
    }
    o->handle = bcall_hold(c);
    if (o->handle == 0) {
        err = FERRY_OK; /* answered by bcall_hold */
        goto out_undo;
    }
    queue_submit_op(qe, b, o, queue_many_done);
    return;

out_undo:
    for (size_t i = 0; i < o->n_jobs; i++) {
        queue_job_unbusy(qe, o->jobs[i]);
    }
out_err:
    store_batch_free(b);
    queue_op_free(o);
    if (err != FERRY_OK) {
        bcall_error(c, err, err == FERRY_ESYS ? "a job cannot be read" : NULL);
    }
}

/* ---- settings changes: CONFIGURE, PAUSE, RESUME ---- */

static void
queue_settings_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct queue *q = o->q;

    queue_name_committed(qe, o, res->status == STORE_COMMITTED);
    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        broker_answer_error(qe->b, o->handle,
                            res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                            NULL);
        queue_op_done(o);
        return;
    }
    q->set = o->set;
    if (o->op == QUEUE_OP_CONFIGURE) {
        json_t *j = queue_settings_json(&q->set);
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        size_t n = text != NULL ? strlen(text) : 0;
        uint8_t *p = text != NULL ? queue_out(qe, 1 + n) : NULL;
        if (p == NULL) {
            broker_answer_error(qe->b, o->handle, FERRY_ENOMEM, NULL);
        } else {
            p[0] = QUEUE_ST_OK;
            memcpy(p + 1, text, n);
            broker_answer(qe->b, o->handle, FERRY_OK, p, 1 + n);
        }
        free(text);
        json_decref(j);
    } else {
        uint8_t st = QUEUE_ST_OK;
        broker_answer(qe->b, o->handle, FERRY_OK, &st, 1);
    }
    queue_feed(qe, q);
    queue_op_done(o);
}

static void
queue_settings_change(struct queue_engine *qe, struct bcall *c,
                      const struct queue_req *r, struct queue *q)
{
    struct qop *o;
    struct store_batch *b;
    char err[160];

    if (q == NULL) {
        uint8_t st = QUEUE_ST_NOT_FOUND;
        bcall_reply(c, &st, 1);
        return;
    }
    o = queue_op_new(qe, r->op, q);
    if (o == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    o->set = q->set;
    if (r->op == QUEUE_OP_CONFIGURE &&
        !queue_settings_apply(r->settings, &o->set, err, sizeof(err))) {
        queue_op_free(o);
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    if (r->op == QUEUE_OP_PAUSE || r->op == QUEUE_OP_RESUME) {
        o->set.paused = r->op == QUEUE_OP_PAUSE;
    }
    b = store_batch_new();
    if (b == NULL || queue_batch_name(qe, b, q, &o->set, o) != FERRY_OK) {
        store_batch_free(b);
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
    queue_submit_op(qe, b, o, queue_settings_done);
}

/* ---- DELETE ---- */

/* Frees q, which holds no job, no pending batch, no waiter. */
void
queue_forget(struct queue_engine *qe, struct queue *q)
{
    while (!list_is_empty(&q->dedup_fifo)) {
        struct qdedup *dd =
            container_of(q->dedup_fifo.next, struct qdedup, node);
        smap_del(&qe->dedup, dd->key, dd->klen);
        list_remove(&dd->node);
        free(dd);
    }
    smap_del(&qe->by_name, q->name, q->name_len);
    map_del(&qe->by_qid, q->qid);
    heap_release(&q->ready);
    qe->stats.queues--;
    free(q);
}

static void
queue_delete_done(void *arg, const struct store_result *res)
{
    struct qop *o = arg;
    struct queue_engine *qe = o->qe;
    struct queue *q = o->q;
    uint8_t st = QUEUE_ST_OK;

    if (res->status != STORE_COMMITTED) {
        qe->stats.write_errors++;
        q->deleting = false;
        broker_answer_error(qe->b, o->handle,
                            res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                            NULL);
        queue_op_done(o);
        return;
    }
    q->pending--;
    q->deleting = false;
    o->q = NULL;
    while (!list_is_empty(&q->waiters)) {
        struct qwaiter *w = container_of(q->waiters.next, struct qwaiter, node);
        uint64_t h = w->handle;
        queue_waiter_free(w);
        broker_answer(qe->b, h, FERRY_OK, &(uint8_t){QUEUE_ST_EMPTY}, 1);
    }
    if (q->ready.n + q->n_delayed + q->n_reserved + q->n_busy == 0 &&
        q->pending == 0) {
        queue_forget(qe, q);
    } else {
        q->persisted = false; /* jobs came meanwhile: it lives on */
    }
    broker_answer(qe->b, o->handle, FERRY_OK, &st, 1);
    queue_op_done(o);
}

static void
queue_delete(struct queue_engine *qe, struct bcall *c, struct queue *q)
{
    uint64_t jobs;
    struct qop *o;
    struct store_batch *b;
    char msg[256];

    if (q == NULL) {
        uint8_t st = QUEUE_ST_NOT_FOUND;
        bcall_reply(c, &st, 1);
        return;
    }
    jobs = q->ready.n + q->n_delayed + q->n_reserved + q->n_busy;
    if (jobs > 0 || q->pending > 0) {
        snprintf(msg, sizeof(msg),
                 "queue '%.100s' still holds %llu jobs: purge it first, "
                 "and let reserved jobs be acked or time out",
                 q->name, (unsigned long long)jobs);
        bcall_error(c, FERRY_EINVALID_ARGUMENT, msg);
        return;
    }
    o = queue_op_new(qe, QUEUE_OP_DELETE, q);
    b = store_batch_new();
    if (o == NULL || b == NULL ||
        store_batch_del(b, qe->t_names, q->name, q->name_len) != FERRY_OK) {
        goto out_nomem;
    }
    for (struct list *n = q->dedup_fifo.next; n != &q->dedup_fifo;
         n = n->next) {
        struct qdedup *dd = container_of(n, struct qdedup, node);
        if (store_batch_del(b, qe->t_dedup, dd->key, dd->klen) != FERRY_OK) {
            goto out_nomem;
        }
    }
    o->handle = bcall_hold(c);
    if (o->handle == 0) {
        store_batch_free(b);
        queue_op_free(o);
        return;
    }
    q->deleting = true;
    queue_submit_op(qe, b, o, queue_delete_done);
    return;

out_nomem:
    store_batch_free(b);
    queue_op_free(o);
    bcall_error(c, FERRY_ENOMEM, NULL);
}

/* ---- STATS ---- */

static void
queue_stats_op(struct queue_engine *qe, struct bcall *c,
               const struct queue_req *r)
{
    json_t *doc = queue_engine_queue_json(qe, r->queue);
    char *text;
    size_t n;
    uint8_t *p;

    if (doc == NULL) {
        uint8_t st = QUEUE_ST_NOT_FOUND;
        if (r->queue.len == 0) {
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        bcall_reply(c, &st, 1);
        return;
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    n = text != NULL ? strlen(text) : 0;
    p = text != NULL ? queue_out(qe, 1 + n) : NULL;
    if (p == NULL) {
        free(text);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    p[0] = QUEUE_ST_OK;
    memcpy(p + 1, text, n);
    free(text);
    bcall_reply(c, p, 1 + n);
}

void
queue_admin_call(struct queue_engine *qe, struct bcall *c,
                 const struct queue_req *r, struct queue *q)
{
    switch (r->op) {
    case QUEUE_OP_PEEK:
        queue_peek(qe, c, r, q);
        return;
    case QUEUE_OP_STATS:
        queue_stats_op(qe, c, r);
        return;
    case QUEUE_OP_REDRIVE:
    case QUEUE_OP_PURGE:
        if (q == NULL) {
            uint8_t st = QUEUE_ST_NOT_FOUND;
            bcall_reply(c, &st, 1);
            return;
        }
        queue_many(qe, c, r, q);
        return;
    case QUEUE_OP_PAUSE:
    case QUEUE_OP_RESUME:
    case QUEUE_OP_CONFIGURE:
        queue_settings_change(qe, c, r, q);
        return;
    case QUEUE_OP_DELETE:
        queue_delete(qe, c, q);
        return;
    }
    bcall_error(c, FERRY_EINVALID_ARGUMENT, "ferry.queue: unknown op");
}

/* ---- the tick: rates, and dedup ids past their window ---- */

static void
queue_sweep_done(void *arg, const struct store_result *res)
{
    (void)res; /* a failed sweep is redone at start-up (expired skipped) */
    queue_op_done(arg);
}

void
queue_tick_cb(struct timer *t)
{
    struct queue_engine *qe = container_of(t, struct queue_engine, tick);
    uint64_t now = queue_unix_ms();
    struct store_batch *b = NULL;
    size_t pos = 0, swept = 0;
    void *val;

    while (smap_next(&qe->by_name, &pos, &val)) {
        struct queue *q = val;
        q->push_rate = (double)(q->n.pushes - q->rate_pushes);
        q->ack_rate = (double)(q->n.acks - q->rate_acks);
        q->rate_pushes = q->n.pushes;
        q->rate_acks = q->n.acks;
        while (!list_is_empty(&q->dedup_fifo) && swept < QUEUE_BATCH_JOBS) {
            struct qdedup *dd =
                container_of(q->dedup_fifo.next, struct qdedup, node);
            if (dd->pending || dd->waiters > 0 || dd->expires > now) {
                break;
            }
            if (b == NULL) {
                b = store_batch_new();
            }
            if (b != NULL) {
                (void)store_batch_del(b, qe->t_dedup, dd->key, dd->klen);
            }
            smap_del(&qe->dedup, dd->key, dd->klen);
            list_remove(&dd->node);
            free(dd);
            swept++;
        }
    }
    if (b != NULL) {
        struct qop *o = queue_op_new(qe, QOP_DEDUP_SWEEP, NULL);
        if (o == NULL) {
            store_batch_free(b);
        } else {
            queue_submit_op(qe, b, o, queue_sweep_done);
        }
    }
    if (!qe->closing) {
        (void)loop_timer_start(qe->loop, &qe->tick, loop_now(qe->loop) + 1000);
    }
}

/* ---- /v1/stats and /metrics ---- */

const struct queue_stats *
queue_engine_stats(struct queue_engine *qe)
{
    size_t pos = 0;
    void *val;

    qe->stats.ready = qe->stats.delayed = qe->stats.reserved = 0;
    while (smap_next(&qe->by_name, &pos, &val)) {
        struct queue *q = val;
        qe->stats.ready += q->ready.n;
        qe->stats.delayed += q->n_delayed;
        qe->stats.reserved += q->n_reserved + q->n_busy;
    }
    qe->stats.jobs = qe->jobs.n;
    return &qe->stats;
}

json_t *
queue_engine_stats_json(struct queue_engine *qe)
{
    const struct queue_stats *s = queue_engine_stats(qe);
    json_t *obj = json_object();
    json_t *qs = queue_engine_queue_json(qe, (struct slice){NULL, 0});
    int bad = obj == NULL || qs == NULL;

#define QS_J(name)                                                             \
    bad = bad ||                                                               \
          json_object_set_new(obj, #name, json_integer((json_int_t)s->name))
    QS_J(queues);
    QS_J(jobs);
    QS_J(ready);
    QS_J(delayed);
    QS_J(reserved);
    QS_J(pushes);
    QS_J(dedup_hits);
    QS_J(reserves);
    QS_J(empty_reserves);
    QS_J(acks);
    QS_J(releases);
    QS_J(touches);
    QS_J(buries);
    QS_J(expired);
    QS_J(dead_lettered);
    QS_J(redriven);
    QS_J(purged);
    QS_J(stale);
    QS_J(bad);
    QS_J(write_errors);
    QS_J(waiters);
#undef QS_J
    if (bad ||
        json_object_set_new(obj, "queues",
                            json_incref(json_object_get(qs, "queues"))) != 0) {
        json_decref(qs);
        json_decref(obj);
        return NULL;
    }
    json_decref(qs);
    return obj;
}

void
queue_engine_metrics(struct queue_engine *qe, FILE *f)
{
    const struct queue_stats *s = queue_engine_stats(qe);
    size_t pos = 0;
    void *val;

    fprintf(f, "# HELP ferry_queue_jobs Jobs held, by queue and state.\n"
               "# TYPE ferry_queue_jobs gauge\n");
    while (smap_next(&qe->by_name, &pos, &val)) {
        struct queue *q = val;
        fprintf(f,
                "ferry_queue_jobs{queue=\"%s\",state=\"ready\"} %zu\n"
                "ferry_queue_jobs{queue=\"%s\",state=\"delayed\"} %llu\n"
                "ferry_queue_jobs{queue=\"%s\",state=\"reserved\"} %llu\n",
                q->name, q->ready.n, q->name, (unsigned long long)q->n_delayed,
                q->name, (unsigned long long)(q->n_reserved + q->n_busy));
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } per[] = {
        {"pushes_total", "Pushes committed.",
         offsetof(struct queue_counts, pushes)},
        {"acks_total", "Acks committed.", offsetof(struct queue_counts, acks)},
        {"reserves_total", "Jobs delivered.",
         offsetof(struct queue_counts, reserves)},
        {"releases_total", "Releases committed.",
         offsetof(struct queue_counts, releases)},
        {"expired_total", "Reservations that ran out.",
         offsetof(struct queue_counts, expired)},
        {"dead_lettered_total", "Jobs moved to the dead-letter queue.",
         offsetof(struct queue_counts, dead_lettered)},
    };
    for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
        fprintf(f, "# HELP ferry_queue_%s %s\n# TYPE ferry_queue_%s counter\n",
                per[k].name, per[k].help, per[k].name);
        pos = 0;
        while (smap_next(&qe->by_name, &pos, &val)) {
            struct queue *q = val;
            uint64_t v;
            memcpy(&v, (const char *)&q->n + per[k].off, sizeof(v));
            fprintf(f, "ferry_queue_%s{queue=\"%s\"} %llu\n", per[k].name,
                    q->name, (unsigned long long)v);
        }
    }
    fprintf(f,
            "# HELP ferry_queue_waiters RESERVEs held now, waiting for a "
            "job.\n# TYPE ferry_queue_waiters gauge\nferry_queue_waiters %llu\n"
            "# HELP ferry_queue_stale_total Acks, releases, touches and buries "
            "refused for a stale token.\n# TYPE ferry_queue_stale_total "
            "counter\nferry_queue_stale_total %llu\n"
            "# HELP ferry_queue_write_errors_total Queue writes the store "
            "failed (NO_SPACE, SYS).\n# TYPE ferry_queue_write_errors_total "
            "counter\nferry_queue_write_errors_total %llu\n",
            (unsigned long long)s->waiters, (unsigned long long)s->stale,
            (unsigned long long)s->write_errors);
}
