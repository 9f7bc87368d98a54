/*
 * service.c - a service's workers, its dispatch choice and its counters.
 */
#include "broker/service.h"

#include <stdlib.h>
#include <string.h>

#include "broker/session.h"
#include "core/loop.h"

struct service *
service_new(struct loop *l, struct slice name, service_builtin_cb builtin)
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
    svc->builtin = builtin;
    list_init(&svc->queue);
    hist_init(&svc->latency);
    stats_init(&svc->stats);
    return svc;
}

void
service_free(struct service *svc)
{
    if (svc == NULL) {
        return;
    }
    free(svc->regs);
    free(svc);
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
    svc->had_workers = true;
    return FERRY_OK;
}

void
service_remove_reg(struct service *svc, struct wreg *reg)
{
    size_t i = reg->slot;

    if (i >= svc->n_regs || svc->regs[i] != reg) {
        return;
    }
    svc->regs[i] = svc->regs[--svc->n_regs];
    svc->regs[i]->slot = i;
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

static bool
service_reg_free(const struct wreg *r)
{
    return r->in_flight < r->credit && session_can_take(r->worker);
}

static uint64_t
service_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

struct wreg *
service_pick(struct service *svc, uint64_t *rng)
{
    struct wreg *best = NULL;

    if (svc->n_regs > 4) {
        uint64_t r = service_rand(rng);
        struct wreg *a = svc->regs[(r & 0xffffffffu) % svc->n_regs];
        struct wreg *c = svc->regs[(r >> 32) % svc->n_regs];
        bool fa = service_reg_free(a), fc = service_reg_free(c);
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
        if (service_reg_free(r) &&
            (best == NULL ||
             r->worker->held_count < best->worker->held_count)) {
            best = r;
        }
    }
    return best;
}

struct wreg *
service_pick_avoid(struct service *svc, uint64_t *rng, uint64_t avoid)
{
    struct wreg *best = service_pick(svc, rng), *only = NULL;

    if (best == NULL || avoid == 0 || best->worker->conn->id != avoid) {
        return best;
    }
    best = NULL;
    for (size_t i = 0; i < svc->n_regs; i++) {
        struct wreg *r = svc->regs[i];
        if (r->worker->conn->id == avoid) {
            only = r;
        } else if (service_reg_free(r) &&
                   (best == NULL ||
                    r->worker->held_count < best->worker->held_count)) {
            best = r;
        }
    }
    if (best == NULL && service_active_workers(svc) == 1) {
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
service_name_is_reserved(struct slice name)
{
    return name.len >= 6 && memcmp(name.p, "ferry.", 6) == 0;
}
