/* SPDX-License-Identifier: MIT */
/*
 * broker.c - routing a caller's request to a service and its backend,
 * the request records, deadlines, the circuit breaker, disabling, stats,
 * shutdown, and the in-daemon answer API of backend.h. The worker pool
 * (picking, forwarding, the queue, retries, a worker's answers) is
 * workers.c.
 *
 * A request record lives in the table from arrival until its caller has
 * its one answer; the record then goes back to the pool at once. When a
 * deadline passes while the request is at a worker, the caller gets
 * DEADLINE, the worker gets CANCEL, and the worker's credit slot is freed
 * at once (a late answer is dropped and counted), so a worker that ignores
 * cancelled work cannot starve its service.
 *
 * Retries (workers.c): an idempotent request keeps its key and payload (inline
 * in the record when small) after forwarding. When its worker is lost, or
 * answers WORKER_ERROR, OVERLOADED or SHUTTING_DOWN, the record goes back to
 * REQ_RETRY_WAIT with its own timer set to a jittered backoff; when that
 * fires it is forwarded to another worker with free credit, or queued like
 * a new request, keeping its deadline. Retries stop at retry_max, at the
 * deadline and at the service's retry budget, so that they cannot
 * multiply an outage; the caller then gets the worker's error.
 */
#include "broker/broker.h"
#include "broker/broker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/builtin.h"
#include "broker/sink.h"
#include "broker/icall.h"
#include "broker/session.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/rand.h"

static void broker_forget_cb(struct timer *t);
static void broker_grace_cb(struct timer *t);

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
    b->workers.ops = &workers_backend_ops;
    b->workers.b = b;
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
    free(b->scratch);
    b->scratch = NULL;
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
    svc = service_new(b->loop, name, &b->workers);
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
ferry_err
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
void
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
bool
broker_req_may_retry(const struct broker *b, const struct req *r)
{
    return (r->flags & FERRY_IDEMPOTENT) != 0 && b->cfg->retry_max > 0;
}

/*
 * Takes the record out of every structure (table, caller map, queue or
 * worker list, timer), gives back the worker's credit and the record.
 */
void
broker_req_free(struct broker *b, struct req *r)
{
    r->sink.ops->untrack(b, &r->sink);
    map_del(&b->reqs, r->id);
    loop_timer_stop(b->loop, &r->tm);
    list_remove(&r->node);
    if (r->state == REQ_QUEUED) {
        r->svc->queued--;
    } else if (r->state == REQ_HELD) {
        r->svc->in_flight--;
    } else if (r->state == REQ_AT_WORKER) {
        r->be->ops->release(r->be, r);
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
void
broker_req_fail(struct broker *b, struct req *r, ferry_err code,
                struct slice msg)
{
    struct sink k = r->sink;

    service_count_error(r->svc, code);
    /* Free first: an in-daemon caller's callback may start new calls. */
    broker_req_free(b, r);
    k.ops->error(b, &k, code, msg);
}

/* r ends without its backend's answer: a record backend tells whoever
 * holds r now; an in-daemon backend holding r is to be told once the
 * record is freed, with broker_held_cancelled() on what this returns. */
static struct backend *
broker_req_cancel(struct req *r)
{
    if (r->state == REQ_HELD) {
        return r->be;
    }
    r->be->ops->cancel(r->be, r);
    return NULL;
}

/* Tells the backend that held request h ended without its answer. */
void
broker_held_cancelled(struct backend *be, uint64_t h)
{
    if (be != NULL && be->ops->cancelled != NULL) {
        be->ops->cancelled(be, h);
    }
}

void
broker_req_fail_code(struct broker *b, struct req *r, ferry_err code)
{
    broker_req_fail(b, r, code, slice_str(ferry_strerror(code)));
}

/* Answers a request of disabled svc: its fallback, or SERVICE_DISABLED. */
static void
broker_disabled(struct broker *b, struct sink *k, struct service *svc,
                uint64_t start_ns)
{
    ferry_err err;

    if (svc->fallback == NULL) {
        service_count_error(svc, FERRY_ESERVICE_DISABLED);
        sink_error_code(b, k, FERRY_ESERVICE_DISABLED,
                        "service disabled by an operator");
        return;
    }
    err = k->ops->reply(b, k, svc->fallback, svc->fallback_len);
    if (err != FERRY_OK) {
        service_count_error(svc, err);
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
void
broker_outcome(struct broker *b, struct req *r, bool ok, bool breaker_only)
{
    const struct config *cfg = b->cfg;
    struct service_eject ej = {cfg->eject_failures, cfg->eject_base_ms,
                               cfg->eject_max_ms, cfg->eject_max_percent};
    struct service_breaker br;
    bool all_out = false;

    if (r->state == REQ_HELD) {
        broker_breaker(cfg, &br);
        service_circuit_outcome(r->svc, &br, ok, r->probe);
        r->probe = 0;
        return;
    }
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

/* Reusing an id is a connection error (as stream-id reuse in HTTP/2):
 * ERROR with id 0, and the close ends every request. Out of line: the
 * message buffer stays off the request path's stack. */
static void __attribute__((noinline, cold))
broker_duplicate_id(struct conn *caller, uint64_t id)
{
    char msg[80];

    snprintf(msg, sizeof(msg), "request id %llu is already in flight",
             (unsigned long long)id);
    conn_fail(caller, FERRY_EDUPLICATE_ID, msg);
}

/* A request's whole deadline: its own or the default, within the cap. */
static uint32_t
broker_deadline_ms(const struct config *cfg, uint32_t asked)
{
    uint32_t d = asked != 0 ? asked : cfg->default_deadline_ms;

    return d > cfg->max_deadline_ms ? cfg->max_deadline_ms : d;
}

static inline __attribute__((always_inline)) void
broker_call(struct broker *b, struct sink *k, struct service *svc,
            uint8_t flags, const struct frame_request *q, uint64_t now,
            uint64_t start_ns);

/* broker_submit(), expanded into both doors (broker_request, the icall's
 * broker_submit) so that a binary caller's request makes one call less. */
static inline __attribute__((always_inline)) void
broker_submit_inline(struct broker *b, struct sink *k, uint8_t flags,
                     const struct frame_request *q, bool again)
{
    const struct config *cfg = b->cfg;
    struct service *svc;
    struct backend *be;
    void *where = NULL;
    struct req *r;
    struct service_breaker br;
    uint32_t probe = 0;
    ferry_err err = FERRY_OK;
    uint64_t now = loop_now(b->loop);
    uint64_t start_ns = loop_hrtime(b->loop);
    uint32_t d;

    if (b->shutting_down) {
        sink_error_code(b, k, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    if (mem_is_tight(b->loop, q->key.len + q->payload.len)) {
        sink_error_code(b, k, FERRY_EOVERLOADED,
                        "memory budget (max_memory) reached");
        return;
    }
    svc = broker_service(b, q->service, !service_name_is_reserved(q->service),
                         &err);
    if (svc == NULL) {
        sink_error_code(b, k, err,
                        err == FERRY_EUNKNOWN_SERVICE    ? "unknown service"
                        : err == FERRY_EINVALID_ARGUMENT ? BROKER_BAD_NAME
                                                         : NULL);
        return;
    }
    if (again) {
        service_count_retry(svc); /* counted as a request already */
    } else {
        service_count_request(svc);
    }
    if (svc->disabled) {
        broker_disabled(b, k, svc, start_ns);
        return;
    }
    be = svc->backend;
    if (b->route != NULL) {
        /* A cluster: this node, another, or answered already. */
        int to = b->route(b, k, svc, flags, q, &be, &where);
        if (to < 0) {
            return;
        }
        flags &= (uint8_t)~BROKER_FORWARDED;
        if (to > 0) {
            goto record;
        }
    }
    if (be->ops->call != NULL) {
        broker_call(b, k, svc, flags, q, now, start_ns);
        return;
    }
    /* An open circuit fails fast, without queueing. */
    broker_breaker(cfg, &br);
    if (!service_circuit_admit(svc, &br, &probe)) {
        service_count_error(svc, FERRY_ECIRCUIT_OPEN);
        sink_error_code(b, k, FERRY_ECIRCUIT_OPEN, NULL);
        return;
    }
    if (!be->ops->admit(be, k, svc, q, probe, &where)) {
        return;
    }
record:
    r = pool_get(&b->req_pool);
    if (r == NULL) {
        goto out_nomem;
    }
    memset(r, 0, offsetof(struct req, inline_data));
    r->probe = probe;
    r->id = b->next_req_id++;
    r->b = b;
    r->sink = *k;
    r->sink.c = NULL;
    r->svc = svc;
    r->be = be;
    r->start_ns = start_ns;
    r->flags = flags;
    d = broker_deadline_ms(cfg, q->deadline_ms);
    r->deadline = now + d;
    r->budget_ms = d;
    timer_init(&r->tm, broker_req_timer_cb);
    list_init(&r->node);
    if (map_put(&b->reqs, r->id, r) != FERRY_OK) {
        goto out_put;
    }
    if (k->ops->track(b, k, r) != FERRY_OK) {
        goto out_del;
    }
    b->live++;
    svc->reqs++;
    be->ops->start(be, r, where, q);
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
    sink_error_code(b, k, FERRY_ENOMEM, NULL);
    broker_maybe_free_service(b, svc);
}

void
broker_submit(struct broker *b, struct sink *k, uint8_t flags,
              const struct frame_request *q)
{
    broker_submit_inline(b, k, flags, q, false);
}

void
broker_request(struct broker *b, struct conn *caller, uint64_t id,
               uint8_t flags, const struct frame_request *q)
{
    struct session *s = caller->data;
    struct sink k;

    /* First: any answer with this id would be taken for the request in
     * flight's. */
    if (map_get(&s->inflight, id) != NULL) {
        broker_duplicate_id(caller, id);
        return;
    }
    k = sink_conn(caller, caller->id, id, s->internals, s->admin);
    /* The hop mark is a peer's to give; every request of a peer has it. */
    flags = s->role == FRAME_ROLE_PEER ? (uint8_t)(flags | BROKER_FORWARDED)
                                       : (uint8_t)(flags & ~BROKER_FORWARDED);
    broker_submit_inline(b, &k, flags, q, false);
}

void
broker_resubmit(struct broker *b, struct req *r)
{
    uint8_t data[REQ_INLINE];
    char name[FRAME_MAX_NAME];
    struct frame_request q;
    struct sink k = r->sink;
    uint8_t flags = r->flags;
    uint64_t now = loop_now(b->loop);
    size_t n = (size_t)r->key_len + r->payload_len;

    if (r->data == NULL || n > sizeof(data) ||
        r->svc->name_len > sizeof(name)) {
        broker_req_fail_code(b, r, FERRY_ESYS); /* not a copy it can take */
        return;
    }
    /* Out of the record first: freeing it may free its service. */
    memcpy(data, r->data, n);
    memcpy(name, r->svc->name, r->svc->name_len);
    q.service = (struct slice){(const uint8_t *)name, r->svc->name_len};
    q.key = (struct slice){data, r->key_len};
    q.payload = (struct slice){data + r->key_len, r->payload_len};
    q.deadline_ms = r->deadline > now ? (uint32_t)(r->deadline - now) : 1;
    broker_req_free(b, r);
    broker_submit_inline(b, &k, flags, &q, true);
}

/* Whether a worker's error code is its own fault or transient, so that
 * another worker may well succeed. */
bool
broker_is_retryable(ferry_err code)
{
    return code == FERRY_EWORKER_LOST || code == FERRY_EWORKER_ERROR ||
           code == FERRY_EOVERLOADED || code == FERRY_ESHUTTING_DOWN;
}

/* A request's deadline, or its wait for a worker, has come. */
void
broker_req_timer_cb(struct timer *t)
{
    struct req *r = container_of(t, struct req, tm);
    struct broker *b = r->b;
    uint64_t now = loop_now(b->loop);

    if (r->state == REQ_HELD) {
        struct backend *be = r->be;
        uint64_t h = r->id;
        broker_outcome(b, r, false, false);
        broker_req_fail_code(b, r, FERRY_EDEADLINE);
        broker_held_cancelled(be, h);
        return;
    }
    r->be->ops->timer(r->be, r, now);
}

void
broker_cancel(struct broker *b, struct conn *caller, uint64_t id)
{
    struct session *s = caller->data;
    struct req *r = map_get(&s->inflight, id);
    struct service *svc;
    struct backend *be;
    uint64_t h;

    if (r == NULL) {
        /* Already answered: the reply is on its way. */
        return;
    }
    svc = r->svc;
    h = r->id;
    be = broker_req_cancel(r);
    broker_req_fail(b, r, FERRY_ECANCELLED, slice_str("request cancelled"));
    broker_held_cancelled(be, h);
    broker_dispatch(b, svc);
    broker_maybe_free_service(b, svc);
}

/*
 * Ends r whose caller no longer wants it: CANCEL to a worker that holds
 * it, then the record is freed and its service may take the next one.
 */
static void
broker_abandon(struct broker *b, struct req *r)
{
    struct service *svc = r->svc;
    uint64_t h = r->id;
    struct backend *be = broker_req_cancel(r);

    broker_req_free(b, r);
    broker_held_cancelled(be, h);
    broker_dispatch(b, svc);
    broker_maybe_free_service(b, svc);
}

void
broker_drop(struct broker *b, uint64_t req_id, uint64_t icall_id)
{
    struct req *r = map_get(&b->reqs, req_id);

    if (r == NULL || r->sink.ops != &sink_icall_ops || r->sink.id != icall_id) {
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
            struct req *r = val;
            struct backend *be = broker_req_cancel(r);
            broker_req_fail_code(b, r, FERRY_ESHUTTING_DOWN);
            broker_held_cancelled(be, id);
            pos = 0;
        }
        return;
    }
    for (size_t i = 0; i < k; i++) {
        struct req *r = map_get(&b->reqs, ids[i]);
        if (r != NULL) {
            struct backend *be = broker_req_cancel(r);
            broker_req_fail_code(b, r, FERRY_ESHUTTING_DOWN);
            broker_held_cancelled(be, ids[i]);
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

/* ---- in-daemon backends (backend.h) ---- */

/* The broker's part of a struct bcall (its priv), on the stack of
 * broker_call() for the call() only. */
struct bcall_ctx {
    struct sink *k;     /* the caller's sink */
    struct backend *be; /* the service's backend */
    uint64_t start_ns;  /* arrival, for latency */
    uint64_t now;       /* loop ms at arrival */
    ferry_err err;      /* the answer given at once: FERRY_OK for a
                           REPLY, else the ERROR's code */
    bool held;          /* bcall_hold() made it a record */
    uint32_t probe;     /* the circuit's half-open round it probes */
};

ferry_err
broker_add_backend(struct broker *b, const char *name, struct backend *be)
{
    struct slice n = slice_str(name);
    struct service *svc;

    if (!service_name_is_builtin(n) || !service_name_is_valid(n) ||
        smap_get(&b->services, n.p, n.len) != NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    svc = service_new(b->loop, n, be);
    if (svc == NULL) {
        return FERRY_ENOMEM;
    }
    if (smap_put(&b->services, svc->name, svc->name_len, svc) != FERRY_OK) {
        service_free(svc);
        return FERRY_ENOMEM;
    }
    timer_init(&svc->forget, broker_forget_cb);
    be->b = b;
    return FERRY_OK;
}

/* Counts the answer x->err that c got at once, in its service's stats
 * and circuit; after call() has returned, in the broker's frame. */
static inline void
broker_call_count(struct bcall *c, struct bcall_ctx *x)
{
    struct service_breaker br;

    if (x->err == FERRY_OK) {
        /* Answered within this turn: the turn's cached clock would say 0,
         * so read the clock (tens of ns) and round up. */
        service_count_reply(c->svc, (uv_hrtime() - x->start_ns + 999) / 1000);
        if (service_circuit_fast_ok(c->svc, x->now)) {
            return;
        }
    } else {
        service_count_error(c->svc, x->err);
    }
    broker_breaker(c->b->cfg, &br);
    service_circuit_outcome(c->svc, &br,
                            x->err == FERRY_OK || !broker_is_retryable(x->err),
                            x->probe);
}

/* Whether c may still be answered; a second answer is the backend's bug. */
static bool
broker_call_open(struct bcall *c)
{
    if (c->answered) {
        log_error("service '%s': backend answered a request twice",
                  c->svc->name);
        return false;
    }
    return true;
}

void
bcall_reply(struct bcall *c, const void *data, size_t len)
{
    struct bcall_ctx *x = c->priv;

    if (broker_call_open(c)) {
        c->answered = true;
        x->err = x->k->ops->reply(c->b, x->k, data, len);
    }
}

uint8_t *
bcall_reply_prepare(struct bcall *c, size_t len)
{
    struct bcall_ctx *x = c->priv;
    ferry_err err;
    uint8_t *p;

    if (!broker_call_open(c)) {
        return NULL;
    }
    if (len > UINT32_MAX) {
        bcall_error(c, FERRY_ETOO_BIG, NULL);
        return NULL;
    }
    p = x->k->ops->prepare(c->b, x->k, (uint32_t)len, &err);
    if (p == NULL) {
        c->answered = true;
        x->err = err;
    }
    return p;
}

void
bcall_reply_commit(struct bcall *c)
{
    struct bcall_ctx *x = c->priv;

    if (broker_call_open(c)) {
        x->k->ops->commit(c->b, x->k);
        c->answered = true;
        x->err = FERRY_OK;
    }
}

void
bcall_error(struct bcall *c, ferry_err code, const char *msg)
{
    struct bcall_ctx *x = c->priv;

    if (broker_call_open(c)) {
        if (code == FERRY_OK || (unsigned)code >= FERRY__ERR_COUNT) {
            code = FERRY_EWORKER_ERROR;
        }
        sink_error_code(c->b, x->k, code, msg);
        c->answered = true;
        x->err = code;
    }
}

void
bcall_who(struct bcall *c, char *buf, size_t size)
{
    struct bcall_ctx *x = c->priv;

    x->k->ops->who(c->b, x->k, buf, size);
}

uint64_t
bcall_hold(struct bcall *c)
{
    struct bcall_ctx *x = c->priv;
    struct broker *b = c->b;
    struct req *r;

    if (!broker_call_open(c)) {
        return 0;
    }
    r = pool_get(&b->req_pool);
    if (r == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return 0;
    }
    memset(r, 0, offsetof(struct req, inline_data));
    r->id = b->next_req_id++;
    r->b = b;
    r->sink = *x->k;
    r->sink.c = NULL;
    r->be = x->be;
    r->svc = c->svc;
    r->start_ns = x->start_ns;
    r->flags = c->flags;
    r->deadline = c->deadline;
    r->budget_ms = c->deadline_ms;
    r->sent_at = loop_now(b->loop);
    timer_init(&r->tm, broker_req_timer_cb);
    list_init(&r->node);
    if (map_put(&b->reqs, r->id, r) != FERRY_OK) {
        pool_put(&b->req_pool, r);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return 0;
    }
    if (x->k->ops->track(b, x->k, r) != FERRY_OK) {
        map_del(&b->reqs, r->id);
        pool_put(&b->req_pool, r);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return 0;
    }
    r->state = REQ_HELD;
    r->probe = x->probe;
    x->probe = 0;
    x->held = true;
    b->live++;
    c->svc->reqs++;
    c->svc->in_flight++;
    c->answered = true;
    if (loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
        /* Without a deadline timer it could wait for ever. */
        uint64_t h = r->id;
        broker_req_fail_code(b, r, FERRY_ENOMEM);
        broker_held_cancelled(x->be, h);
        return 0;
    }
    return r->id;
}

/* The record of held request handle, or NULL when it has ended. */
static struct req *
broker_held_req(struct broker *b, uint64_t handle)
{
    struct req *r = map_get(&b->reqs, handle);

    return r != NULL && r->state == REQ_HELD ? r : NULL;
}

bool
broker_is_waiting(struct broker *b, uint64_t handle)
{
    return broker_held_req(b, handle) != NULL;
}

void
broker_answer(struct broker *b, uint64_t handle, ferry_err err,
              const void *data, size_t len)
{
    struct req *r = broker_held_req(b, handle);
    struct sink k;

    if (r == NULL) {
        return;
    }
    if (err != FERRY_OK) {
        broker_answer_error(b, handle, err, NULL);
        return;
    }
    broker_outcome(b, r, true, false);
    service_count_reply(r->svc, (loop_hrtime(b->loop) - r->start_ns) / 1000);
    k = r->sink;
    broker_req_free(b, r);
    (void)k.ops->reply(b, &k, data, len);
}

void
broker_answer_error(struct broker *b, uint64_t handle, ferry_err err,
                    const char *msg)
{
    struct req *r = broker_held_req(b, handle);

    if (r == NULL) {
        return;
    }
    if (err == FERRY_OK || (unsigned)err >= FERRY__ERR_COUNT) {
        err = FERRY_EWORKER_ERROR;
    }
    broker_outcome(b, r, !broker_is_retryable(err), false);
    broker_req_fail(b, r, err,
                    slice_str(msg != NULL ? msg : ferry_strerror(err)));
}

/* Hands a request of svc to its in-daemon backend, by its circuit. */
static inline __attribute__((always_inline)) void
broker_call(struct broker *b, struct sink *k, struct service *svc,
            uint8_t flags, const struct frame_request *q, uint64_t now,
            uint64_t start_ns)
{
    struct bcall_ctx x = {k, svc->backend, start_ns, now, FERRY_OK, false, 0};
    struct service_breaker br;
    struct bcall c;

    /* A closed circuit admits without a probe: the common case, inline. */
    if (svc->circuit != CIRCUIT_CLOSED) {
        broker_breaker(b->cfg, &br);
        if (!service_circuit_admit(svc, &br, &x.probe)) {
            service_count_error(svc, FERRY_ECIRCUIT_OPEN);
            sink_error_code(b, k, FERRY_ECIRCUIT_OPEN, NULL);
            return;
        }
    }
    c.b = b;
    c.svc = svc;
    c.key = q->key;
    c.payload = q->payload;
    c.flags = flags;
    c.deadline_ms = broker_deadline_ms(b->cfg, q->deadline_ms);
    c.deadline = now + c.deadline_ms;
    c.internals = k->internals;
    c.admin = k->admin;
    c.answered = false;
    c.priv = &x;
    x.be->ops->call(x.be, &c);
    if (!c.answered) {
        log_error("service '%s': backend '%s' left a request unanswered",
                  svc->name, x.be->ops->kind);
        bcall_error(&c, FERRY_EWORKER_ERROR, "the backend gave no answer");
    }
    if (!x.held) {
        broker_call_count(&c, &x);
    }
}
