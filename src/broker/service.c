/* SPDX-License-Identifier: MIT */
/*
 * service.c - a service's workers, its dispatch choice and its counters.
 */
#include "broker/service.h"

#include "broker/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/session.h"
#include "cluster/vbmap.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/rand.h"
#include "topic/topic.h"

struct service *
service_new(struct loop *l, struct slice name, struct backend *backend)
{
    struct service *svc;

    if (name.len == 0 || name.len > FRAME_MAX_NAME) {
        return NULL;
    }
    svc = calloc(1, sizeof(*svc));
    if (svc == NULL) {
        return NULL;
    }
    memcpy(svc->name, name.p, name.len);
    svc->name[name.len] = '\0';
    svc->name_len = name.len;
    svc->loop = l;
    svc->backend = backend;
    list_init(&svc->queue);
    timer_init(&svc->forget, NULL); /* the broker gives it its callback */
    svc->last_active = loop_now(l);
    if (hist_init(&svc->latency, HIST_SUB_BITS, HIST_MAX_BITS) != FERRY_OK) {
        free(svc);
        return NULL;
    }
    stats_init(&svc->stats);
    return svc;
}

void
service_free(struct service *svc)
{
    if (svc == NULL) {
        return;
    }
    hist_release(&svc->latency);
    free(svc->regs);
    free(svc->fallback);
    free(svc);
}

ferry_err
service_disable(struct service *svc, const void *fallback, size_t len)
{
    uint8_t *copy = NULL;

    if (fallback != NULL) {
        /* One byte more, so an empty fallback is still a pointer. */
        copy = malloc(len + 1);
        if (copy == NULL) {
            return FERRY_ENOMEM;
        }
        memcpy(copy, fallback, len);
    }
    free(svc->fallback);
    svc->fallback = copy;
    svc->fallback_len = (uint32_t)len;
    svc->disabled = true;
    return FERRY_OK;
}

void
service_enable(struct service *svc)
{
    free(svc->fallback);
    svc->fallback = NULL;
    svc->fallback_len = 0;
    svc->disabled = false;
    service_touch(svc);
}

bool
service_is_idle(const struct service *svc)
{
    return svc->backend->ops->transient && svc->n_regs == 0 && svc->reqs == 0 &&
           svc->queued == 0 && !svc->disabled;
}

bool
service_is_forgettable(const struct service *svc, uint32_t forget_ms)
{
    return service_is_idle(svc) &&
           loop_now(svc->loop) >= svc->last_active + forget_ms;
}

void
service_touch(struct service *svc)
{
    svc->last_active = loop_now(svc->loop);
}

ferry_err
service_add_reg(struct service *svc, struct wreg *reg)
{
    if (svc->n_regs == svc->cap_regs) {
        size_t cap = svc->cap_regs ? svc->cap_regs * 2 : 4;
        struct wreg **v = realloc(svc->regs, cap * sizeof(*v));
        if (v == NULL) {
            return FERRY_ENOMEM;
        }
        svc->regs = v;
        svc->cap_regs = cap;
    }
    reg->slot = svc->n_regs;
    svc->regs[svc->n_regs++] = reg;
    if (reg->worker->max_frame != 0) {
        svc->n_limited++;
    }
    svc->had_workers = true;
    service_touch(svc);
    return FERRY_OK;
}

void
service_remove_reg(struct service *svc, struct wreg *reg)
{
    size_t i = reg->slot;

    if (i >= svc->n_regs || svc->regs[i] != reg) {
        return;
    }
    if (reg->worker->max_frame != 0) {
        svc->n_limited--;
    }
    svc->regs[i] = svc->regs[--svc->n_regs];
    svc->regs[i]->slot = i;
    service_touch(svc);
}

size_t
service_active_workers(const struct service *svc)
{
    size_t n = 0;

    for (size_t i = 0; i < svc->n_regs; i++) {
        if (!svc->regs[i]->worker->draining) {
            n++;
        }
    }
    return n;
}

/* Whether worker w may get a request at loop time now: not ejected, and
 * not probing with its probe out. Turns an expired ejection into a probe. */
static bool
service_worker_eligible(struct session *w, uint64_t now)
{
    if (w->ejected_until != 0) {
        if (now < w->ejected_until) {
            return false;
        }
        w->ejected_until = 0;
        w->probing = true;
        w->probe_sent = false;
    }
    return !(w->probing && w->probe_sent);
}

static bool
service_reg_free(struct service *svc, struct wreg *r, size_t body)
{
    return r->in_flight < r->credit && session_can_take(r->worker) &&
           session_takes(r->worker, body) &&
           service_worker_eligible(r->worker, loop_now(svc->loop));
}

bool
service_takes(const struct service *svc, size_t body)
{
    if (svc->n_limited == 0 || svc->n_regs == 0) {
        return true;
    }
    for (size_t i = 0; i < svc->n_regs; i++) {
        if (session_takes(svc->regs[i]->worker, body)) {
            return true;
        }
    }
    return false;
}

bool
service_reg_is_ejected(const struct service *svc, const struct wreg *reg)
{
    return reg->worker->ejected_until > loop_now(svc->loop);
}

/* Ejects worker w for its ejection length. */
static void
service_eject(struct service *svc, struct session *w,
              const struct service_eject *ej)
{
    uint64_t ms = (uint64_t)ej->base_ms * (w->ejections + 1);

    if (ms > ej->max_ms) {
        ms = ej->max_ms;
    }
    w->ejections++;
    w->ejected_until = loop_now(svc->loop) + (ms > 0 ? ms : 1);
    w->probing = false;
    w->probe_sent = false;
    w->fails = 0;
    svc->ejections++;
    log_warn("worker '%s': ejected for %llu ms (ejection %u, service '%s')",
             w->conn->name, (unsigned long long)ms, (unsigned)w->ejections,
             svc->name);
}

/* Whether every worker of svc is ejected. */
static bool
service_all_ejected(const struct service *svc)
{
    for (size_t i = 0; i < svc->n_regs; i++) {
        if (!service_reg_is_ejected(svc, svc->regs[i])) {
            return false;
        }
    }
    return svc->n_regs > 0;
}

bool
service_worker_outcome(struct service *svc, struct wreg *reg, bool ok,
                       bool probe, const struct service_eject *ej)
{
    struct session *w = reg->worker;
    size_t ejected = 0, limit;

    if (w->probing && !probe) {
        return false;
    }
    if (ok) {
        w->fails = 0;
        if (w->probing) {
            w->probing = false;
            w->probe_sent = false;
            log_info("worker '%s': probe succeeded, back in service",
                     w->conn->name);
        }
        return false;
    }
    if (w->probing) {
        if (ej->failures == 0 || svc->n_regs < 2) {
            /* Ejection is off, or the worker is alone now: a sole worker
             * is never ejected, its failures go to the callers. */
            w->probing = false;
            w->probe_sent = false;
            return false;
        }
        service_eject(svc, w, ej);
        return service_all_ejected(svc);
    }
    w->fails++;
    if (ej->failures == 0 || w->fails < ej->failures || w->ejected_until != 0 ||
        svc->n_regs < 2) {
        return false;
    }
    /* Only on the way to an ejection: a scan of svc's workers. */
    for (size_t i = 0; i < svc->n_regs; i++) {
        struct session *o = svc->regs[i]->worker;
        if (o != w && (o->ejected_until != 0 || o->probing)) {
            ejected++;
        }
    }
    limit = svc->n_regs * ej->max_percent / 100;
    if (limit < 1) {
        limit = 1;
    }
    if (ejected < limit) {
        service_eject(svc, w, ej);
        return service_all_ejected(svc);
    }
    return false;
}

/* ferry.circuit.<svc>.<state> for subscribers (topic/topic.h): the
 * state's name the last token, why the payload. */
static void
service_circuit_emit(const struct service *svc, const char *why)
{
    topic_emit_event(svc->loop->topics, TOPIC_EV_CIRCUIT,
                     (struct slice){(const uint8_t *)svc->name, svc->name_len},
                     service_circuit_name(svc->circuit), "%s", why);
}

const char *
service_circuit_name(enum service_circuit c)
{
    switch (c) {
    case CIRCUIT_OPEN:
        return "open";
    case CIRCUIT_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}

void
service_circuit_open(struct service *svc, const struct service_breaker *br,
                     const char *why)
{
    svc->circuit = CIRCUIT_OPEN;
    svc->circuit_until = loop_now(svc->loop) + br->open_ms;
    svc->probes_sent = 0;
    svc->probes_ok = 0;
    svc->circuit_opens++;
    log_warn("service '%s': circuit open (%s)", svc->name, why);
    service_circuit_emit(svc, why);
}

bool
service_circuit_admit(struct service *svc, const struct service_breaker *br,
                      uint32_t *probe)
{
    *probe = 0;
    if (svc->circuit == CIRCUIT_CLOSED) {
        return true;
    }
    if (svc->circuit == CIRCUIT_OPEN) {
        if (loop_now(svc->loop) < svc->circuit_until) {
            return false;
        }
        svc->circuit = CIRCUIT_HALF_OPEN;
        svc->probes_sent = 0;
        svc->probes_ok = 0;
        if (++svc->circuit_round == 0) {
            svc->circuit_round = 1; /* 0 means "not a probe" */
        }
        log_info("service '%s': circuit half open, %u probes", svc->name,
                 (unsigned)br->probes);
        if (topic_wants(svc->loop->topics, TOPIC_EV_CIRCUIT)) {
            char why[32];
            snprintf(why, sizeof(why), "%u probes", (unsigned)br->probes);
            service_circuit_emit(svc, why);
        }
    }
    if (svc->probes_sent >= br->probes) {
        return false;
    }
    svc->probes_sent++;
    *probe = svc->circuit_round;
    return true;
}

void
service_circuit_unprobe(struct service *svc, uint32_t probe)
{
    if (svc->circuit == CIRCUIT_HALF_OPEN && probe == svc->circuit_round &&
        svc->probes_sent > 0) {
        svc->probes_sent--;
    }
}

void
service_circuit_outcome(struct service *svc, const struct service_breaker *br,
                        bool ok, uint32_t probe)
{
    struct service_window *wi = &svc->window;
    uint32_t width = br->window_ms / SERVICE_WINDOW_SLOTS;
    uint64_t cur, total = 0, failed = 0;
    size_t i;
    char why[64];

    if (svc->circuit == CIRCUIT_HALF_OPEN) {
        if (probe != svc->circuit_round) {
            return;
        }
        if (!ok) {
            service_circuit_open(svc, br, "a probe failed");
            return;
        }
        if (++svc->probes_ok >= br->probes) {
            svc->circuit = CIRCUIT_CLOSED;
            memset(wi, 0, sizeof(*wi));
            svc->window_until = 0;
            log_info("service '%s': circuit closed, %u probes succeeded",
                     svc->name, (unsigned)svc->probes_ok);
            if (topic_wants(svc->loop->topics, TOPIC_EV_CIRCUIT)) {
                char ok_why[48];
                snprintf(ok_why, sizeof(ok_why), "%u probes succeeded",
                         (unsigned)svc->probes_ok);
                service_circuit_emit(svc, ok_why);
            }
        }
        return;
    }
    if (svc->circuit != CIRCUIT_CLOSED || br->error_percent == 0) {
        return;
    }
    cur = loop_now(svc->loop) / (width > 0 ? width : 1) + 1;
    i = (size_t)(cur % SERVICE_WINDOW_SLOTS);
    if (wi->slot[i] != cur) {
        wi->slot[i] = cur;
        wi->total[i] = 0;
        wi->failed[i] = 0;
    }
    svc->window_at = (uint32_t)i;
    svc->window_until = width > 0 ? cur * width : 0;
    wi->total[i]++;
    if (ok) {
        return;
    }
    wi->failed[i]++;
    for (i = 0; i < SERVICE_WINDOW_SLOTS; i++) {
        if (wi->slot[i] + SERVICE_WINDOW_SLOTS > cur) {
            total += wi->total[i];
            failed += wi->failed[i];
        }
    }
    if (total >= br->min_requests &&
        failed * 100 >= (uint64_t)br->error_percent * total) {
        snprintf(why, sizeof(why), "error rate %llu%% over %u ms",
                 (unsigned long long)(failed * 100 / total),
                 (unsigned)br->window_ms);
        service_circuit_open(svc, br, why);
    }
}

bool
service_worker_sent(struct wreg *reg)
{
    if (reg->worker->probing && !reg->worker->probe_sent) {
        reg->worker->probe_sent = true;
        return true;
    }
    return false;
}

void
service_worker_unsent(struct wreg *reg)
{
    if (reg->worker->probing) {
        reg->worker->probe_sent = false;
    }
}

struct wreg *
service_pick(struct service *svc, uint64_t *rng, size_t body)
{
    struct wreg *best = NULL;

    if (svc->n_regs > 4) {
        uint64_t r = rand_next(rng);
        struct wreg *a = svc->regs[(r & 0xffffffffu) % svc->n_regs];
        struct wreg *c = svc->regs[(r >> 32) % svc->n_regs];
        bool fa = service_reg_free(svc, a, body);
        bool fc = service_reg_free(svc, c, body);
        if (fa && fc) {
            return a->worker->held_count <= c->worker->held_count ? a : c;
        }
        if (fa || fc) {
            return fa ? a : c;
        }
        /* Both busy: fall back to a full scan before queueing. */
    }
    for (size_t i = 0; i < svc->n_regs; i++) {
        struct wreg *r = svc->regs[i];
        if (service_reg_free(svc, r, body) &&
            (best == NULL ||
             r->worker->held_count < best->worker->held_count)) {
            best = r;
        }
    }
    return best;
}

struct wreg *
service_pick_keyed(struct service *svc, uint64_t key_hash, size_t body)
{
    struct wreg *best = NULL;
    uint64_t best_w = 0;

    for (size_t i = 0; i < svc->n_regs; i++) {
        struct wreg *r = svc->regs[i];
        uint64_t id = r->worker->conn->id;
        uint64_t w = hrw_weight(key_hash, id);
        if (!service_reg_free(svc, r, body)) {
            continue;
        }
        if (best == NULL || w > best_w ||
            (w == best_w && id < best->worker->conn->id)) {
            best = r;
            best_w = w;
        }
    }
    return best;
}

struct wreg *
service_pick_avoid(struct service *svc, uint64_t *rng, uint64_t avoid,
                   size_t body)
{
    struct wreg *best = service_pick(svc, rng, body), *only = NULL;
    bool others = false;

    if (best == NULL || avoid == 0 || best->worker->conn->id != avoid) {
        return best;
    }
    best = NULL;
    for (size_t i = 0; i < svc->n_regs; i++) {
        struct wreg *r = svc->regs[i];
        if (r->worker->conn->id == avoid) {
            only = r;
            continue;
        }
        /* Another worker that may take it later: not draining, not
         * ejected. */
        if (!r->worker->draining && !service_reg_is_ejected(svc, r)) {
            others = true;
        }
        if (service_reg_free(svc, r, body) &&
            (best == NULL ||
             r->worker->held_count < best->worker->held_count)) {
            best = r;
        }
    }
    if (best == NULL && !others) {
        return only;
    }
    return best;
}

/* The budget slot of loop time now_ms, cleared when it held an older
 * second. */
static size_t
service_budget_slot(struct service_budget *bu, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000 + 1;
    size_t i = (size_t)(sec % SERVICE_BUDGET_S);

    if (bu->second[i] != sec) {
        bu->second[i] = sec;
        bu->requests[i] = 0;
        bu->retries[i] = 0;
    }
    return i;
}

bool
service_retry_allowed(struct service *svc, uint32_t percent, uint32_t min_per_s)
{
    struct service_budget *bu = &svc->budget;
    uint64_t sec = loop_now(svc->loop) / 1000 + 1;
    uint64_t requests = 0, retries = 0, limit;

    for (size_t i = 0; i < SERVICE_BUDGET_S; i++) {
        if (bu->second[i] + SERVICE_BUDGET_S > sec) {
            requests += bu->requests[i];
            retries += bu->retries[i];
        }
    }
    limit = requests * percent / 100;
    if (limit < (uint64_t)min_per_s * SERVICE_BUDGET_S) {
        limit = (uint64_t)min_per_s * SERVICE_BUDGET_S;
    }
    if (retries >= limit) {
        svc->retries_denied++;
        return false;
    }
    return true;
}

void
service_count_retry(struct service *svc)
{
    size_t i = service_budget_slot(&svc->budget, loop_now(svc->loop));

    svc->retries++;
    svc->budget.retries[i]++;
}

void
service_count_request(struct service *svc)
{
    size_t i = service_budget_slot(&svc->budget, loop_now(svc->loop));

    svc->budget.requests[i]++;
    svc->requests++;
    service_touch(svc);
    stats_record_request(&svc->stats, loop_now(svc->loop));
}

void
service_count_reply(struct service *svc, uint64_t lat_us)
{
    svc->replies++;
    hist_record(&svc->latency, lat_us);
    stats_record_reply(&svc->stats, loop_now(svc->loop), lat_us);
}

void
service_count_error(struct service *svc, ferry_err code)
{
    if ((unsigned)code < FERRY__ERR_COUNT) {
        svc->errors[code]++;
    }
    stats_record_error(&svc->stats, loop_now(svc->loop));
}

bool
service_name_is_valid(struct slice name)
{
    if (name.len == 0 || name.len > FRAME_MAX_NAME) {
        return false;
    }
    for (size_t i = 0; i < name.len; i++) {
        if (name.p[i] < 0x20 || name.p[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

bool
service_name_is_reserved(struct slice name)
{
    return name.len >= 6 && memcmp(name.p, "ferry.", 6) == 0;
}

bool
service_name_is_builtin(struct slice name)
{
    return service_name_is_reserved(name) || slice_eq(name, slice_str("echo"));
}
