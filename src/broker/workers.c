/* SPDX-License-Identifier: MIT */
/*
 * workers.c - the worker-pool side of the request path: the outside
 * workers registered for a service (b->workers, the backend of every
 * service that is not in-daemon, by backend.h's record hooks). Picking a
 * worker (fewest outstanding, two random choices), forwarding a REQUEST
 * into its output buffer, the service's FIFO queue and its dispatch when
 * credit comes back, the worker's REPLY and ERROR, CANCEL to it, retries
 * of idempotent requests to another worker with a jittered backoff, and a
 * lost worker's requests. Everything that reaches a worker's session or
 * conn from the request path is here; broker.c keeps the records, their
 * deadlines, the circuit, disabling, stats and the sinks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/broker_impl.h"
#include "broker/builtin.h"
#include "broker/session.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/rand.h"

#include <xxhash.h>

/* Sends CANCEL for r to the worker holding it, when it is still there. */
static void
workers_cancel(struct backend *be, struct req *r)
{
    struct conn *w;

    if (r->state != REQ_AT_WORKER) {
        return;
    }
    w = loop_conn(be->b->loop, r->worker_conn);
    if (w != NULL) {
        conn_send_empty(w, FRAME_CANCEL, r->id);
    }
}

/* Writes r to the worker of reg. FERRY_ENOMEM when the worker's output
 * cannot take it. */
static ferry_err
broker_forward(struct broker *b, struct req *r, struct wreg *reg,
               struct slice key, struct slice payload)
{
    struct conn *w = reg->worker->conn;
    struct slice name = {(const uint8_t *)r->svc->name, r->svc->name_len};
    uint64_t now = loop_now(b->loop);
    uint64_t left = r->deadline > now ? r->deadline - now : 1;
    size_t size = frame_request_size(name.len, key.len, payload.len);
    uint8_t *p = conn_out_prepare(w, size);

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    conn_out_commit(w, frame_write_request(p, r->id, r->flags, (uint32_t)left,
                                           name, key, payload));
    r->state = REQ_AT_WORKER;
    r->reg = reg;
    r->worker_conn = w->id;
    r->sent_at = now;
    r->svc->in_flight++;
    reg->in_flight++;
    reg->worker->held_count++;
    r->worker_probe = service_worker_sent(reg);
    list_push_back(&reg->worker->held, &r->node);
    return FERRY_OK;
}

/*
 * The worker for the next request of svc, or NULL when none may take it
 * now: every worker busy, or service_max_in_flight reached. avoid: the
 * worker conn a retry failed at, taken only when no other fits; 0: none.
 */
static struct wreg *
broker_pick(struct broker *b, struct service *svc, uint64_t avoid, size_t body,
            struct slice key)
{
    uint32_t max = b->cfg->service_max_in_flight;

    if (max != 0 && svc->in_flight >= max) {
        return NULL;
    }
    if (svc->pick_by_key && key.len > 0) {
        return service_pick_keyed(svc, XXH64(key.p, key.len, 0), body);
    }
    if (avoid != 0) {
        return service_pick_avoid(svc, &b->rng, avoid, body);
    }
    return service_pick(svc, &b->rng, body);
}

/* Bytes of the REQUEST body that forwards r to a worker. */
static size_t
broker_req_body(const struct req *r)
{
    return frame_request_size(r->svc->name_len, r->key_len, r->payload_len) -
           FRAME_HEADER_SIZE;
}

/* Ends r, which no worker of its service takes (their max_frame), with
 * TOO_BIG. */
static void
broker_req_too_big(struct broker *b, struct req *r, size_t body)
{
    char msg[112];

    snprintf(msg, sizeof(msg),
             "request of %zu bytes is above the max_frame of every worker "
             "of '%.40s'",
             body, r->svc->name);
    broker_req_fail(b, r, FERRY_ETOO_BIG, slice_str(msg));
}

/* Puts r, which holds its copy, at the tail of its service's queue; its
 * timer waits for the deadline, or for a worker when the service has
 * none. */
static void
broker_enqueue(struct broker *b, struct req *r)
{
    struct service *svc = r->svc;
    uint64_t now = loop_now(b->loop), when = r->deadline;

    r->state = REQ_QUEUED;
    r->reg = NULL;
    r->worker_conn = 0;
    list_push_back(&svc->queue, &r->node);
    svc->queued++;
    if (service_active_workers(svc) == 0 &&
        now + b->cfg->worker_wait_ms < when) {
        when = now + b->cfg->worker_wait_ms;
    }
    if (loop_timer_start(b->loop, &r->tm, when) != FERRY_OK) {
        broker_req_fail_code(b, r, FERRY_ENOMEM);
    }
}

/*
 * r, at a worker, failed there with code. When r is idempotent and its
 * retries, deadline and service budget allow, takes it off the worker,
 * arms its timer for a jittered backoff in REQ_RETRY_WAIT and returns
 * true; else returns false and leaves r as it was.
 */
static bool
broker_req_retry(struct broker *b, struct req *r, ferry_err code)
{
    const struct config *cfg = b->cfg;
    uint64_t now = loop_now(b->loop), ceiling, delay = 0;
    unsigned shift = r->attempts < 20 ? r->attempts : 20;

    /* Only the pool's own records: one a peer node holds (the cluster's
     * forwarding backend) is answered with its error as it is. */
    if (r->be != &b->workers || r->state != REQ_AT_WORKER || r->data == NULL ||
        !broker_req_may_retry(b, r) || r->attempts >= cfg->retry_max ||
        b->shutting_down || !broker_is_retryable(code)) {
        return false;
    }
    /* Full jitter: uniform in [0, min(base * 2^attempts, max)]. */
    ceiling = (uint64_t)cfg->retry_backoff_ms << shift;
    if (ceiling > cfg->retry_backoff_max_ms) {
        ceiling = cfg->retry_backoff_max_ms;
    }
    if (ceiling > 0) {
        delay = rand_next(&b->rng) % (ceiling + 1);
    }
    if (now + delay >= r->deadline ||
        !service_retry_allowed(r->svc, cfg->retry_budget_percent,
                               cfg->retry_budget_min_per_s) ||
        loop_timer_start(b->loop, &r->tm, now + delay) != FERRY_OK) {
        return false;
    }
    list_remove(&r->node);
    if (r->reg != NULL) {
        r->svc->in_flight--;
        r->reg->in_flight--;
        r->reg->worker->held_count--;
    }
    r->reg = NULL;
    r->failed_conn = r->worker_conn;
    r->worker_conn = 0;
    r->state = REQ_RETRY_WAIT;
    r->attempts++;
    service_count_retry(r->svc);
    log_debug("service '%s': request %llu failed with %s, retry %u in %llu ms",
              r->svc->name, (unsigned long long)r->id, ferry_errname(code),
              (unsigned)r->attempts, (unsigned long long)delay);
    return true;
}

/* r's backoff is over: forward it to a worker other than the one it failed
 * at, or queue it. */
static void
broker_req_resend(struct broker *b, struct req *r)
{
    struct service *svc = r->svc;
    struct wreg *reg = NULL;
    struct slice key = {r->data, r->key_len};
    struct slice payload = {r->data + r->key_len, r->payload_len};

    if (loop_now(b->loop) >= r->deadline) {
        broker_req_fail_code(b, r, FERRY_EDEADLINE);
        return;
    }
    if (!service_takes(svc, broker_req_body(r))) {
        broker_req_too_big(b, r, broker_req_body(r));
        return;
    }
    if (svc->queued == 0) {
        reg = broker_pick(b, svc, r->failed_conn, broker_req_body(r), key);
    }
    if (reg == NULL) {
        broker_enqueue(b, r);
        return;
    }
    if (broker_forward(b, r, reg, key, payload) != FERRY_OK ||
        loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
        broker_req_fail_code(b, r, FERRY_ENOMEM);
    }
}

void
broker_dispatch(struct broker *b, struct service *svc)
{
    while (!list_is_empty(&svc->queue)) {
        struct req *r = container_of(svc->queue.next, struct req, node);
        struct wreg *reg = NULL;
        struct slice key, payload;
        size_t body = broker_req_body(r);

        /* The head no worker left can take must not hold up the rest. */
        if (!service_takes(svc, body)) {
            broker_req_too_big(b, r, body);
            continue;
        }
        struct slice rkey = {r->data, r->key_len};
        /* A retry prefers a worker other than the one it failed at. */
        if (r->failed_conn != 0) {
            reg = broker_pick(b, svc, r->failed_conn, body, rkey);
        }
        if (reg == NULL) {
            reg = broker_pick(b, svc, 0, body, rkey);
        }
        if (reg == NULL) {
            return;
        }
        list_remove(&r->node);
        svc->queued--;
        key.p = r->data;
        key.len = r->key_len;
        payload.p = r->data + r->key_len;
        payload.len = r->payload_len;
        r->state = REQ_AT_WORKER;
        r->reg = NULL;
        if (broker_forward(b, r, reg, key, payload) != FERRY_OK ||
            loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
            broker_req_fail_code(b, r, FERRY_ENOMEM);
            continue;
        }
        /* Only a request that may be retried keeps its copy. */
        if (!broker_req_may_retry(b, r)) {
            broker_req_drop_copy(b, r);
        }
    }
}

void
broker_rearm_queue(struct broker *b, struct service *svc)
{
    uint64_t until = loop_now(b->loop) + b->cfg->worker_wait_ms;
    struct list *n;

    for (n = svc->queue.next; n != &svc->queue; n = n->next) {
        struct req *r = container_of(n, struct req, node);
        uint64_t when = r->deadline < until ? r->deadline : until;
        if (!timer_is_armed(&r->tm) || when < timer_when(&r->tm)) {
            loop_timer_start(b->loop, &r->tm, when);
        }
    }
}

/* The record worker conn w holds under broker id, or NULL (counted). */
static struct req *
broker_held(struct broker *b, struct conn *w, uint64_t id)
{
    struct req *r = map_get(&b->reqs, id);

    if (r == NULL || r->state != REQ_AT_WORKER || r->worker_conn != w->id) {
        b->late_replies++;
        log_debug("worker '%s': answer for unknown request %llu dropped",
                  w->name, (unsigned long long)id);
        return NULL;
    }
    return r;
}

void
broker_worker_reply(struct broker *b, struct conn *worker, uint64_t id,
                    struct slice payload)
{
    struct req *r = broker_held(b, worker, id);
    struct service *svc;
    struct sink k;

    if (r == NULL) {
        return;
    }
    if (r->be != &b->workers && b->on_peer_answer != NULL) {
        b->on_peer_answer(b, worker, r->svc, FERRY_OK); /* a peer's answer */
    }
    svc = r->svc;
    broker_outcome(b, r, true, false);
    service_count_reply(svc, (loop_hrtime(b->loop) - r->start_ns) / 1000);
    /* Free first: an in-daemon caller's callback may start new calls. A
     * reply above the caller's max_frame: the worker answered well, the
     * caller gets TOO_BIG for that id and keeps its connection. */
    k = r->sink;
    broker_req_free(b, r);
    (void)k.ops->reply(b, &k, payload.p, payload.len);
    broker_dispatch(b, svc);
}

void
broker_worker_error(struct broker *b, struct conn *worker, uint64_t id,
                    const struct frame_error *e)
{
    struct req *r = broker_held(b, worker, id);
    struct service *svc;
    ferry_err code = (ferry_err)e->code;

    if (r == NULL) {
        return;
    }
    if (e->code == 0 || e->code >= FERRY__ERR_COUNT) {
        code = FERRY_EWORKER_ERROR;
    }
    if (r->be != &b->workers && b->on_peer_answer != NULL) {
        b->on_peer_answer(b, worker, r->svc, code);
    }
    svc = r->svc;
    if (r->be != &b->workers && b->peer_retry != NULL &&
        b->peer_retry(b, r, code)) {
        return;
    }
    /* INVALID_ARGUMENT and the like are the caller's fault: the worker
     * answered well. */
    broker_outcome(b, r, !broker_is_retryable(code), false);
    if (!broker_req_retry(b, r, code)) {
        broker_req_fail(b, r, code, e->msg);
    }
    broker_dispatch(b, svc);
}

void
broker_worker_gone(struct broker *b, struct list *held)
{
    while (!list_is_empty(held)) {
        struct req *r = container_of(held->next, struct req, node);
        if (r->be != &b->workers && b->peer_retry != NULL &&
            b->peer_retry(b, r, FERRY_EWORKER_LOST)) {
            continue; /* off this list: sent to another node */
        }
        broker_outcome(b, r, false, true);
        if (broker_req_retry(b, r, FERRY_EWORKER_LOST)) {
            continue;
        }
        broker_req_fail(b, r, FERRY_EWORKER_LOST,
                        slice_str("worker lost while holding the request"));
    }
}

static void
workers_release(struct backend *be, struct req *r)
{
    (void)be;
    if (r->reg == NULL) {
        return;
    }
    r->svc->in_flight--;
    r->reg->in_flight--;
    r->reg->worker->held_count--;
    if (r->worker_probe) {
        service_worker_unsent(r->reg);
    }
}

static bool
workers_admit(struct backend *be, struct sink *k, struct service *svc,
              const struct frame_request *q, uint32_t probe, void **out)
{
    struct broker *b = be->b;
    const struct config *cfg = b->cfg;
    struct wreg *reg = NULL;
    size_t body;

    body = frame_request_size(svc->name_len, q->key.len, q->payload.len) -
           FRAME_HEADER_SIZE;
    if (svc->queued == 0) {
        reg = broker_pick(b, svc, 0, body, q->key);
    }
    if (reg == NULL && !service_takes(svc, body)) {
        char msg[112];
        if (probe != 0) {
            service_circuit_unprobe(svc, probe);
        }
        snprintf(msg, sizeof(msg),
                 "request of %zu bytes is above the max_frame of every "
                 "worker of '%.40s'",
                 body, svc->name);
        service_count_error(svc, FERRY_ETOO_BIG);
        sink_error_code(b, k, FERRY_ETOO_BIG, msg);
        return false;
    }
    if (reg == NULL && svc->queued >= cfg->queue_limit) {
        if (probe != 0) {
            service_circuit_unprobe(svc, probe);
        }
        service_count_error(svc, FERRY_EOVERLOADED);
        sink_error_code(b, k, FERRY_EOVERLOADED, "service queue is full");
        return false;
    }
    /* Queued requests hold copies: bound their bytes, not just their count,
     * so a stalled service cannot grow memory with large payloads. */
    if (reg == NULL && q->key.len + q->payload.len > REQ_INLINE &&
        b->queued_bytes + q->key.len + q->payload.len > cfg->queue_bytes) {
        if (probe != 0) {
            service_circuit_unprobe(svc, probe);
        }
        service_count_error(svc, FERRY_EOVERLOADED);
        sink_error_code(b, k, FERRY_EOVERLOADED,
                        "queued request bytes limit reached");
        return false;
    }
    *out = reg;
    return true;
}

static void
workers_start(struct backend *be, struct req *r, void *where,
              const struct frame_request *q)
{
    struct broker *b = be->b;
    struct wreg *reg = where;
    const struct config *cfg = b->cfg;

    r->state = REQ_AT_WORKER; /* on no list yet */
    if (reg != NULL) {
        /* A copy for retries, within the bytes queued requests may hold;
         * without one the request is simply not retried. */
        size_t n = q->key.len + q->payload.len;
        if (broker_req_may_retry(b, r) &&
            (n <= REQ_INLINE || b->queued_bytes + n <= cfg->queue_bytes)) {
            (void)broker_req_copy(b, r, q->key, q->payload);
        }
        if (broker_forward(b, r, reg, q->key, q->payload) != FERRY_OK ||
            loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
            broker_req_fail_code(b, r, FERRY_ENOMEM);
        }
        return;
    }
    /* Wait in the queue: keep a copy of what the frame's slices hold. */
    if (broker_req_copy(b, r, q->key, q->payload) != FERRY_OK) {
        broker_req_fail_code(b, r, FERRY_ENOMEM);
        return;
    }
    broker_enqueue(b, r);
}

static void
workers_timer(struct backend *be, struct req *r, uint64_t now)
{
    struct broker *b = be->b;
    struct service *svc = r->svc;

    if (r->state == REQ_AT_WORKER) {
        /* A worker is blamed for a deadline only when it held the request
         * for at least half of it: one that spent its time in the queue
         * (overload) says nothing about the worker, and must not eject
         * healthy workers. The breaker counts it either way. */
        bool blame = (now - r->sent_at) * 2 >= r->budget_ms;
        broker_outcome(b, r, false, !blame);
        workers_cancel(be, r);
        broker_req_fail_code(b, r, FERRY_EDEADLINE);
        broker_dispatch(b, svc);
        return;
    }
    if (r->state == REQ_RETRY_WAIT) {
        broker_req_resend(b, r);
        return;
    }
    if (service_active_workers(svc) == 0) {
        broker_req_fail(
            b, r, svc->had_workers ? FERRY_ENO_WORKER : FERRY_EUNKNOWN_SERVICE,
            slice_str(svc->had_workers ? "no worker available for service"
                                       : "unknown service"));
        broker_maybe_free_service(b, svc);
        return;
    }
    if (now >= r->deadline) {
        broker_req_fail_code(b, r, FERRY_EDEADLINE);
        return;
    }
    loop_timer_start(b->loop, &r->tm, r->deadline);
}

/* ---- ferry.services: a service's workers ---- */

static int
workers_set(json_t *obj, const char *key, json_t *val)
{
    return val == NULL ? -1 : json_object_set_new(obj, key, val);
}

static json_t *
workers_json_one(struct broker *b, const struct wreg *reg)
{
    const struct conn *c = reg->worker->conn;
    uint64_t now = loop_now(b->loop);
    json_t *w = json_object();
    int rc = 0;

    if (w == NULL) {
        return NULL;
    }
    rc |= workers_set(w, "id", json_integer((json_int_t)c->id));
    rc |= workers_set(w, "name", builtin_json_name(c->name));
    rc |= workers_set(w, "addr", builtin_json_name(c->peer));
    rc |= workers_set(w, "credit", json_integer(reg->credit));
    rc |= workers_set(w, "in_flight", json_integer(reg->in_flight));
    rc |= workers_set(
        w, "last_seen_ms",
        json_integer((json_int_t)(now > c->last_rx ? now - c->last_rx : 0)));
    rc |= workers_set(w, "draining", json_boolean(reg->worker->draining));
    rc |= workers_set(w, "ejected",
                      json_boolean(service_reg_is_ejected(reg->svc, reg)));
    rc |= workers_set(w, "probing", json_boolean(reg->worker->probing));
    rc |= workers_set(w, "ejections", json_integer(reg->worker->ejections));
    if (rc != 0) {
        json_decref(w);
        return NULL;
    }
    return w;
}

/* The service's workers and their credit, in its ferry.services object. */
static int
workers_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    json_t *workers = json_array();
    uint64_t credit = 0;

    if (workers == NULL) {
        return -1;
    }
    for (size_t i = 0; i < svc->n_regs; i++) {
        const struct wreg *reg = svc->regs[i];
        credit += reg->credit;
        if (json_array_append_new(workers, workers_json_one(be->b, reg)) != 0) {
            json_decref(workers);
            return -1;
        }
    }
    if (json_object_set_new(obj, "workers", workers) != 0) {
        return -1;
    }
    if (be->b->describe_remote != NULL &&
        be->b->describe_remote(be->b, svc, obj) != 0) {
        return -1;
    }
    return workers_set(obj, "credit", json_integer((json_int_t)credit));
}

const struct backend_ops workers_backend_ops = {
    .kind = "workers",
    .describe = workers_describe,
    .transient = true,
    .admit = workers_admit,
    .start = workers_start,
    .timer = workers_timer,
    .cancel = workers_cancel,
    .release = workers_release,
};
