/* SPDX-License-Identifier: MIT */
/*
 * broker.c - routing a caller's request to a service, forwarding it to a
 * worker, matching the answer back to the caller, and deadlines.
 *
 * A request record lives in the table from arrival until its caller has
 * its one answer; the record then goes back to the pool at once. When a
 * deadline passes while the request is at a worker, the caller gets
 * DEADLINE, the worker gets CANCEL, and the worker's credit slot is freed
 * at once (a late answer is dropped and counted), so a worker that ignores
 * cancelled work cannot starve its service.
 *
 * Retries: an idempotent request keeps its key and payload (inline in the
 * record when small) after forwarding. When its worker is lost, or answers
 * WORKER_ERROR, OVERLOADED or SHUTTING_DOWN, the record goes back to
 * REQ_RETRY_WAIT with its own timer set to a jittered backoff; when that
 * fires it is forwarded to another worker with free credit, or queued like
 * a new request, keeping its deadline. Retries stop at retry_max, at the
 * deadline and at the service's retry budget, so that they cannot
 * multiply an outage; the caller then gets the worker's error.
 */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/builtin.h"
#include "broker/icall.h"
#include "broker/session.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/rand.h"

static void broker_req_timer_cb(struct timer *t);
static void broker_forget_cb(struct timer *t);
static void broker_enqueue(struct broker *b, struct req *r);
static void broker_grace_cb(struct timer *t);
static void broker_send_error(struct broker *b, struct conn *c, uint64_t id,
                              ferry_err code, const char *msg);

ferry_err
broker_init(struct broker *b, struct loop *l)
{
    memset(b, 0, sizeof(*b));
    b->loop = l;
    b->cfg = l->cfg;
    smap_init(&b->services);
    map_init(&b->reqs);
    map_init(&b->icalls);
    b->next_icall_id = 1;
    pool_init(&b->req_pool, sizeof(struct req), 256);
    b->next_req_id = 1;
    rand_init(&b->rng, UINT64_C(0x9e3779b97f4a7c15) ^ uv_hrtime());
    timer_init(&b->grace, broker_grace_cb);
    l->broker = b;
    l->accept_ops = &session_handshake_ops;
    return builtin_register_all(b);
}

void
broker_release(struct broker *b)
{
    size_t pos = 0;
    void *val;
    uint64_t id;

    while (map_next(&b->reqs, &pos, &id, &val)) {
        struct req *r = val;
        if (r->data != r->inline_data) {
            free(r->data);
        }
    }
    map_release(&b->reqs);
    map_release(&b->icalls);
    pos = 0;
    while (smap_next(&b->services, &pos, &val)) {
        struct service *svc = val;
        loop_timer_stop(b->loop, &svc->forget);
        service_free(svc);
    }
    smap_release(&b->services);
    pool_release(&b->req_pool);
    loop_timer_stop(b->loop, &b->grace);
}

struct service *
broker_service(struct broker *b, struct slice name, bool create, ferry_err *err)
{
    struct service *svc = smap_get(&b->services, name.p, name.len);

    if (svc != NULL || !create) {
        if (svc == NULL) {
            *err = FERRY_EUNKNOWN_SERVICE;
        }
        return svc;
    }
    /* Checked once, here: a service that exists has a valid name. */
    if (!service_name_is_valid(name)) {
        *err = FERRY_EINVALID_ARGUMENT;
        return NULL;
    }
    if (b->services.n >= b->cfg->max_services) {
        *err = FERRY_EUNKNOWN_SERVICE;
        return NULL;
    }
    svc = service_new(b->loop, name, NULL);
    if (svc == NULL) {
        *err = FERRY_ENOMEM;
        return NULL;
    }
    if (smap_put(&b->services, svc->name, svc->name_len, svc) != FERRY_OK) {
        service_free(svc);
        *err = FERRY_ENOMEM;
        return NULL;
    }
    /* Armed from the start, so that a service no path ever calls idle
     * (an error before any record) is forgotten all the same. */
    timer_init(&svc->forget, broker_forget_cb);
    broker_service_settle(b, svc);
    return svc;
}

/* Takes svc out of the table and frees it; nothing may point to it. */
static void
broker_forget(struct broker *b, struct service *svc)
{
    loop_timer_stop(b->loop, &svc->forget);
    smap_del(&b->services, svc->name, svc->name_len);
    service_free(svc);
}

void
broker_service_settle(struct broker *b, struct service *svc)
{
    if (service_is_idle(svc)) {
        /* Without memory for the heap it stays until it is idle again. */
        (void)loop_timer_start(b->loop, &svc->forget,
                               svc->last_active +
                                   b->cfg->service_idle_forget_ms);
    }
}

/* An idle service's time is up, unless something happened since: then
 * later. A service that is busy again is left alone; it is armed again
 * when it next turns idle. */
static void
broker_forget_cb(struct timer *t)
{
    struct service *svc = container_of(t, struct service, forget);
    struct broker *b = svc->loop->broker;
    uint32_t ms = b->cfg->service_idle_forget_ms;

    if (!service_is_idle(svc)) {
        return;
    }
    if (!service_is_forgettable(svc, ms)) {
        broker_service_settle(b, svc);
        return;
    }
    log_info("service '%s': forgotten, idle for %u ms", svc->name,
             (unsigned)ms);
    broker_forget(b, svc);
}

void
broker_maybe_free_service(struct broker *b, struct service *svc)
{
    if (!service_is_idle(svc)) {
        return;
    }
    if (svc->had_workers) {
        broker_service_settle(b, svc);
        return;
    }
    broker_forget(b, svc);
}

/*
 * Keeps a copy of key and payload in r: inline when small, else malloc'd.
 * The bytes count in queued_bytes until broker_req_drop_copy().
 */
static ferry_err
broker_req_copy(struct broker *b, struct req *r, struct slice key,
                struct slice payload)
{
    size_t n = key.len + payload.len;

    r->key_len = (uint16_t)key.len;
    r->payload_len = (uint32_t)payload.len;
    if (n <= REQ_INLINE) {
        r->data = r->inline_data;
    } else {
        r->data = malloc(n);
        if (r->data == NULL) {
            return FERRY_ENOMEM;
        }
    }
    if (key.len > 0) {
        memcpy(r->data, key.p, key.len);
    }
    if (payload.len > 0) {
        memcpy(r->data + key.len, payload.p, payload.len);
    }
    b->queued_bytes += n;
    return FERRY_OK;
}

/* Frees r's copy of key and payload, if it holds one. */
static void
broker_req_drop_copy(struct broker *b, struct req *r)
{
    if (r->data == NULL) {
        return;
    }
    b->queued_bytes -= (uint64_t)r->key_len + r->payload_len;
    if (r->data != r->inline_data) {
        free(r->data);
    }
    r->data = NULL;
}

/* Whether r keeps its copy while at a worker, to be retried. */
static bool
broker_req_may_retry(const struct broker *b, const struct req *r)
{
    return (r->flags & FERRY_IDEMPOTENT) != 0 && b->cfg->retry_max > 0;
}

/* The caller's session while it is open, else NULL. */
static struct session *
broker_caller(struct broker *b, uint64_t conn_id)
{
    struct conn *c = loop_conn(b->loop, conn_id);

    return c != NULL ? c->data : NULL;
}

/*
 * Takes the record out of every structure (table, caller map, queue or
 * worker list, timer), gives back the worker's credit and the record.
 */
static void
broker_req_free(struct broker *b, struct req *r)
{
    struct session *caller = broker_caller(b, r->caller_conn);

    if (caller != NULL) {
        map_del(&caller->inflight, r->caller_id);
        if (caller->conn->paused) {
            conn_wake(caller->conn);
        }
    }
    map_del(&b->reqs, r->id);
    loop_timer_stop(b->loop, &r->tm);
    list_remove(&r->node);
    if (r->state == REQ_QUEUED) {
        r->svc->queued--;
    } else if (r->state == REQ_AT_WORKER && r->reg != NULL) {
        r->svc->in_flight--;
        r->reg->in_flight--;
        r->reg->worker->held_count--;
        if (r->worker_probe) {
            service_worker_unsent(r->reg);
        }
    }
    if (r->probe != 0) {
        service_circuit_unprobe(r->svc, r->probe);
    }
    broker_req_drop_copy(b, r);
    b->live--;
    if (--r->svc->reqs == 0) {
        service_touch(r->svc);
        broker_service_settle(b, r->svc);
    }
    pool_put(&b->req_pool, r);
    if (b->shutting_down && b->live == 0 && !b->stopped) {
        /* Finish from the timer phase, outside this call chain. */
        loop_timer_start(b->loop, &b->grace, loop_now(b->loop));
    }
}

/* Ends r with ERROR code to its caller and frees it. */
static void
broker_req_fail(struct broker *b, struct req *r, ferry_err code,
                struct slice msg)
{
    struct conn *c = loop_conn(b->loop, r->caller_conn);

    service_count_error(r->svc, code);
    if (r->caller_conn == 0) {
        /* Free first: the callback may start new calls. */
        uint64_t ic = r->caller_id;
        broker_req_free(b, r);
        icall_complete(b, ic, code, msg.p, msg.len);
        return;
    }
    if (c != NULL) {
        uint8_t *p = conn_out_prepare(c, frame_error_size(msg.len));
        if (p != NULL) {
            conn_out_commit(
                c, frame_write_error(p, r->caller_id, (uint16_t)code, msg));
        }
    }
    broker_req_free(b, r);
}

static void
broker_req_fail_code(struct broker *b, struct req *r, ferry_err code)
{
    broker_req_fail(b, r, code, slice_str(ferry_strerror(code)));
}

/* Sends CANCEL for r to the worker holding it, when it is still there. */
static void
broker_cancel_at_worker(struct broker *b, struct req *r)
{
    struct conn *w = loop_conn(b->loop, r->worker_conn);

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
broker_pick(struct broker *b, struct service *svc, uint64_t avoid,
            size_t body)
{
    uint32_t max = b->cfg->service_max_in_flight;

    if (max != 0 && svc->in_flight >= max) {
        return NULL;
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

/* Answers a request of disabled svc: its fallback, or SERVICE_DISABLED. */
static void
broker_disabled(struct broker *b, struct conn *caller, uint64_t id,
                struct service *svc, uint64_t start_ns)
{
    if (svc->fallback == NULL) {
        service_count_error(svc, FERRY_ESERVICE_DISABLED);
        broker_send_error(b, caller, id, FERRY_ESERVICE_DISABLED,
                          "service disabled by an operator");
        return;
    }
    if (builtin_reply(b, caller, id, svc->fallback, svc->fallback_len) !=
        FERRY_OK) {
        service_count_error(svc, FERRY_ENOMEM);
        broker_send_error(b, caller, id, FERRY_ENOMEM, NULL);
        return;
    }
    svc->fallbacks++;
    service_count_reply(svc, (uv_hrtime() - start_ns + 999) / 1000);
}

static void
broker_breaker(const struct config *cfg, struct service_breaker *br)
{
    br->error_percent = cfg->breaker_error_percent;
    br->min_requests = cfg->breaker_min_requests;
    br->window_ms = cfg->breaker_window_ms;
    br->open_ms = cfg->breaker_open_ms;
    br->probes = cfg->breaker_probes;
}

/* r, at a worker, ended there: ok false when it failed by the worker's
 * fault. Feeds the worker's outlier ejection and the service's circuit
 * breaker; with every worker ejected the circuit opens. breaker_only: the
 * worker is gone, or not to blame, so only the breaker counts it. */
static void
broker_outcome(struct broker *b, struct req *r, bool ok, bool breaker_only)
{
    const struct config *cfg = b->cfg;
    struct service_eject ej = {cfg->eject_failures, cfg->eject_base_ms,
                               cfg->eject_max_ms, cfg->eject_max_percent};
    struct service_breaker br;
    bool all_out = false;

    if (r->state != REQ_AT_WORKER || r->reg == NULL) {
        return;
    }
    broker_breaker(cfg, &br);
    if (!breaker_only) {
        all_out =
            service_worker_outcome(r->svc, r->reg, ok, r->worker_probe, &ej);
    }
    service_circuit_outcome(r->svc, &br, ok, r->probe);
    r->probe = 0;
    r->worker_probe = false;
    if (all_out && br.error_percent > 0 && r->svc->circuit == CIRCUIT_CLOSED) {
        service_circuit_open(r->svc, &br, "every worker ejected");
    }
}

/* Answers a request that got no record: an error frame to conn c, or the
 * icall's callback when c is NULL. */
static void
broker_send_error(struct broker *b, struct conn *c, uint64_t id, ferry_err code,
                  const char *msg)
{
    if (c == NULL) {
        if (msg == NULL) {
            msg = ferry_strerror(code);
        }
        icall_complete(b, id, code, msg, strlen(msg));
        return;
    }
    conn_send_error(c, id, code, msg);
}

void
broker_request(struct broker *b, struct conn *caller, uint64_t id,
               uint8_t flags, const struct frame_request *q)
{
    broker_submit(b, caller, NULL, id, flags, q);
}

void
broker_submit(struct broker *b, struct conn *caller, struct icall *ic,
              uint64_t id, uint8_t flags, const struct frame_request *q)
{
    struct session *s = caller != NULL ? caller->data : NULL;
    const struct config *cfg = b->cfg;
    struct service *svc;
    struct wreg *reg = NULL;
    struct req *r;
    struct service_breaker br;
    uint32_t probe = 0;
    ferry_err err = FERRY_OK;
    uint64_t now = loop_now(b->loop);
    uint64_t start_ns = loop_hrtime(b->loop);
    size_t body;
    uint32_t d;

    /* First: any answer with this id would be taken for the request in
     * flight's. Reusing an id is a connection error (as stream-id reuse
     * in HTTP/2): ERROR with id 0, and the close ends every request. */
    if (s != NULL && map_get(&s->inflight, id) != NULL) {
        char msg[80];
        snprintf(msg, sizeof(msg), "request id %llu is already in flight",
                 (unsigned long long)id);
        conn_fail(caller, FERRY_EDUPLICATE_ID, msg);
        return;
    }
    if (b->shutting_down) {
        broker_send_error(b, caller, id, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    if (mem_is_tight(b->loop, q->key.len + q->payload.len)) {
        broker_send_error(b, caller, id, FERRY_EOVERLOADED,
                          "memory budget (max_memory) reached");
        return;
    }
    svc = broker_service(b, q->service, !service_name_is_reserved(q->service),
                         &err);
    if (svc == NULL) {
        broker_send_error(b, caller, id, err,
                          err == FERRY_EUNKNOWN_SERVICE    ? "unknown service"
                          : err == FERRY_EINVALID_ARGUMENT ? BROKER_BAD_NAME
                                                           : NULL);
        return;
    }
    service_count_request(svc);
    if (svc->disabled) {
        broker_disabled(b, caller, id, svc, start_ns);
        return;
    }
    if (svc->builtin != NULL && svc->n_regs == 0) {
        char msg[CONFIG_ERR_SIZE];
        msg[0] = '\0'; /* not = "": that zeroes all of it per request */
        err = svc->builtin(b, caller, id, q->payload, msg, sizeof(msg));
        if (err == FERRY_OK) {
            /* Answered within this turn: the turn's cached clock would
             * say 0, so read the clock (tens of ns) and round up. */
            service_count_reply(svc, (uv_hrtime() - start_ns + 999) / 1000);
        } else {
            service_count_error(svc, err);
            broker_send_error(b, caller, id, err, msg[0] ? msg : NULL);
        }
        return;
    }
    /* An open circuit fails fast, without queueing. */
    broker_breaker(cfg, &br);
    if (!service_circuit_admit(svc, &br, &probe)) {
        service_count_error(svc, FERRY_ECIRCUIT_OPEN);
        broker_send_error(b, caller, id, FERRY_ECIRCUIT_OPEN, NULL);
        return;
    }
    body = frame_request_size(svc->name_len, q->key.len, q->payload.len) -
           FRAME_HEADER_SIZE;
    if (svc->queued == 0) {
        reg = broker_pick(b, svc, 0, body);
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
        broker_send_error(b, caller, id, FERRY_ETOO_BIG, msg);
        return;
    }
    if (reg == NULL && svc->queued >= cfg->queue_limit) {
        if (probe != 0) {
            service_circuit_unprobe(svc, probe);
        }
        service_count_error(svc, FERRY_EOVERLOADED);
        broker_send_error(b, caller, id, FERRY_EOVERLOADED,
                          "service queue is full");
        return;
    }
    /* Queued requests hold copies: bound their bytes, not just their count,
     * so a stalled service cannot grow memory with large payloads. */
    if (reg == NULL && q->key.len + q->payload.len > REQ_INLINE &&
        b->queued_bytes + q->key.len + q->payload.len > cfg->queue_bytes) {
        if (probe != 0) {
            service_circuit_unprobe(svc, probe);
        }
        service_count_error(svc, FERRY_EOVERLOADED);
        broker_send_error(b, caller, id, FERRY_EOVERLOADED,
                          "queued request bytes limit reached");
        return;
    }
    r = pool_get(&b->req_pool);
    if (r == NULL) {
        goto out_nomem;
    }
    memset(r, 0, offsetof(struct req, inline_data));
    r->probe = probe;
    r->id = b->next_req_id++;
    r->b = b;
    r->caller_conn = caller != NULL ? caller->id : 0;
    r->caller_id = id;
    r->svc = svc;
    r->start_ns = start_ns;
    r->flags = flags;
    d = q->deadline_ms != 0 ? q->deadline_ms : cfg->default_deadline_ms;
    if (d > cfg->max_deadline_ms) {
        d = cfg->max_deadline_ms;
    }
    r->deadline = now + d;
    r->budget_ms = d;
    timer_init(&r->tm, broker_req_timer_cb);
    list_init(&r->node);
    if (map_put(&b->reqs, r->id, r) != FERRY_OK) {
        goto out_put;
    }
    if (s != NULL && map_put(&s->inflight, id, r) != FERRY_OK) {
        goto out_del;
    }
    if (ic != NULL) {
        ic->req_id = r->id;
    }
    b->live++;
    svc->reqs++;
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
    return;

out_del:
    map_del(&b->reqs, r->id);
out_put:
    pool_put(&b->req_pool, r);
out_nomem:
    if (probe != 0) {
        service_circuit_unprobe(svc, probe);
    }
    service_count_error(svc, FERRY_ENOMEM);
    broker_send_error(b, caller, id, FERRY_ENOMEM, NULL);
    broker_maybe_free_service(b, svc);
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

/* Whether a worker's error code is its own fault or transient, so that
 * another worker may well succeed. */
static bool
broker_is_retryable(ferry_err code)
{
    return code == FERRY_EWORKER_LOST || code == FERRY_EWORKER_ERROR ||
           code == FERRY_EOVERLOADED || code == FERRY_ESHUTTING_DOWN;
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

    if (r->state != REQ_AT_WORKER || r->data == NULL ||
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
        reg = broker_pick(b, svc, r->failed_conn, broker_req_body(r));
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
        /* A retry prefers a worker other than the one it failed at. */
        if (r->failed_conn != 0) {
            reg = broker_pick(b, svc, r->failed_conn, body);
        }
        if (reg == NULL) {
            reg = broker_pick(b, svc, 0, body);
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

/* A request's deadline, or its wait for a worker, has come. */
static void
broker_req_timer_cb(struct timer *t)
{
    struct req *r = container_of(t, struct req, tm);
    struct broker *b = r->b;
    struct service *svc = r->svc;
    uint64_t now = loop_now(b->loop);

    if (r->state == REQ_AT_WORKER) {
        /* A worker is blamed for a deadline only when it held the request
         * for at least half of it: one that spent its time in the queue
         * (overload) says nothing about the worker, and must not eject
         * healthy workers. The breaker counts it either way. */
        bool blame = (now - r->sent_at) * 2 >= r->budget_ms;
        broker_outcome(b, r, false, !blame);
        broker_cancel_at_worker(b, r);
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

void
broker_cancel(struct broker *b, struct conn *caller, uint64_t id)
{
    struct session *s = caller->data;
    struct req *r = map_get(&s->inflight, id);
    struct service *svc;

    if (r == NULL) {
        /* Already answered: the reply is on its way. */
        return;
    }
    svc = r->svc;
    if (r->state == REQ_AT_WORKER) {
        broker_cancel_at_worker(b, r);
    }
    broker_req_fail(b, r, FERRY_ECANCELLED, slice_str("request cancelled"));
    broker_dispatch(b, svc);
    broker_maybe_free_service(b, svc);
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
    struct conn *c;

    if (r == NULL) {
        return;
    }
    svc = r->svc;
    broker_outcome(b, r, true, false);
    service_count_reply(svc, (loop_hrtime(b->loop) - r->start_ns) / 1000);
    if (r->caller_conn == 0) {
        uint64_t ic = r->caller_id;
        broker_req_free(b, r);
        icall_complete(b, ic, FERRY_OK, payload.p, payload.len);
        broker_dispatch(b, svc);
        return;
    }
    c = loop_conn(b->loop, r->caller_conn);
    if (c != NULL && !session_takes(c->data, payload.len)) {
        /* Above the caller's max_frame: the worker answered well, the
         * caller gets TOO_BIG for that id and keeps its connection. */
        session_send_too_big(c, r->caller_id, payload.len);
        broker_req_free(b, r);
        broker_dispatch(b, svc);
        return;
    }
    if (c != NULL) {
        uint8_t *p = conn_out_prepare(c, FRAME_HEADER_SIZE + payload.len);
        if (p != NULL) {
            frame_write_reply_header(p, r->caller_id, (uint32_t)payload.len);
            if (payload.len > 0) {
                memcpy(p + FRAME_HEADER_SIZE, payload.p, payload.len);
            }
            conn_out_commit(c, FRAME_HEADER_SIZE + payload.len);
        }
    }
    broker_req_free(b, r);
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
    svc = r->svc;
    /* INVALID_ARGUMENT and the like are the caller's fault: the worker
     * answered well. */
    broker_outcome(b, r, !broker_is_retryable(code), false);
    if (!broker_req_retry(b, r, code)) {
        broker_req_fail(b, r, code, e->msg);
    }
    broker_dispatch(b, svc);
}

/*
 * Ends r whose caller no longer wants it: CANCEL to a worker that holds
 * it, then the record is freed and its service may take the next one.
 */
static void
broker_abandon(struct broker *b, struct req *r)
{
    struct service *svc = r->svc;

    if (r->state == REQ_AT_WORKER) {
        broker_cancel_at_worker(b, r);
    }
    broker_req_free(b, r);
    broker_dispatch(b, svc);
    broker_maybe_free_service(b, svc);
}

void
broker_drop(struct broker *b, uint64_t req_id, uint64_t icall_id)
{
    struct req *r = map_get(&b->reqs, req_id);

    if (r == NULL || r->caller_conn != 0 || r->caller_id != icall_id) {
        return;
    }
    broker_abandon(b, r);
}

void
broker_caller_gone(struct broker *b, struct map *inflight)
{
    size_t pos = 0;
    uint64_t id;
    void *val;

    /* The caller has left the conn map already, so freeing a record
     * does not touch this map while it is walked. */
    while (map_next(inflight, &pos, &id, &val)) {
        broker_abandon(b, val);
    }
}

void
broker_worker_gone(struct broker *b, struct list *held)
{
    while (!list_is_empty(held)) {
        struct req *r = container_of(held->next, struct req, node);
        broker_outcome(b, r, false, true);
        if (broker_req_retry(b, r, FERRY_EWORKER_LOST)) {
            continue;
        }
        broker_req_fail(b, r, FERRY_EWORKER_LOST,
                        slice_str("worker lost while holding the request"));
    }
}

/* Ends every request still unanswered with SHUTTING_DOWN. */
static void
broker_fail_all(struct broker *b)
{
    size_t k, pos = 0;
    uint64_t id, *ids = map_keys(&b->reqs, &k);
    void *val;

    if (ids == NULL) {
        /* Out of memory: fail them one lookup at a time. */
        while (map_next(&b->reqs, &pos, &id, &val)) {
            broker_req_fail_code(b, val, FERRY_ESHUTTING_DOWN);
            pos = 0;
        }
        return;
    }
    for (size_t i = 0; i < k; i++) {
        struct req *r = map_get(&b->reqs, ids[i]);
        if (r != NULL) {
            if (r->state == REQ_AT_WORKER) {
                broker_cancel_at_worker(b, r);
            }
            broker_req_fail_code(b, r, FERRY_ESHUTTING_DOWN);
        }
    }
    free(ids);
}

static void
broker_grace_cb(struct timer *t)
{
    struct broker *b = container_of(t, struct broker, grace);

    if (b->stopped) {
        return;
    }
    if (b->live > 0) {
        log_warn("grace period over, %zu requests get SHUTTING_DOWN", b->live);
    }
    b->stopped = true;
    broker_fail_all(b);
    if (b->on_stopped != NULL) {
        b->on_stopped(b);
    }
}

void
broker_shutdown(struct broker *b)
{
    if (b->shutting_down) {
        return;
    }
    b->shutting_down = true;
    loop_close_listeners(b->loop);
    log_info("shutting down, %zu requests in flight", b->live);
    loop_timer_start(b->loop, &b->grace,
                     loop_now(b->loop) + (b->live == 0 ? 0 : b->cfg->grace_ms));
}
