/* SPDX-License-Identifier: MIT */
/*
 * test_service.c - a service's defences, driven directly with a loop clock
 * the test sets: outlier ejection of workers (failures in a row, growing
 * and capped ejections, the share of workers that may be out, the sole
 * worker, the one probe after an ejection), the circuit breaker (error
 * rate over a window of outcomes, fail fast while open, half-open probes)
 * the retry budget (a share of the requests of the last ten seconds,
 * with a per-second floor), and when a service is idle and may be
 * forgotten (no worker, no request, not disabled, for long enough).
 *
 * The clock: service.c reads loop_now(), which is uv_now() of the loop's
 * uv_loop_t, itself the loop's cached time field. A zeroed struct loop
 * whose uv.time the test writes is a clock that moves only when told, with
 * no libuv loop running. Workers are zeroed sessions on zeroed
 * connections in state CONN_READY, which session_can_take() accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/backend.h"
#include "broker/service.h"
#include "broker/session.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"

/* A loop clock that does not start at 0, like uv_now(); a whole second. */
#define T0 UINT64_C(7654321000)
#define MAX_WORKERS 8
#define CREDIT 4

/* One service of up to MAX_WORKERS workers on a loop with a set clock. */
struct fx {
    struct config cfg;                /* high_water for conn_is_writable */
    struct loop loop;                 /* only its clock and cfg are used */
    struct conn conn[MAX_WORKERS];    /* the workers' connections */
    char name[MAX_WORKERS][24];       /* their names (conn->name) */
    struct session sess[MAX_WORKERS]; /* the workers */
    struct wreg reg[MAX_WORKERS];     /* their registrations of svc */
    struct service *svc;              /* owned */
    uint64_t rng;                     /* state of service_pick */
};

/* Fixtures not yet freed: a failed assertion leaves its test early, and
 * the teardown frees what it left. */
static struct fx *live[4];

/* Three failures eject, for 1 s times the ejections, at most 2.5 s. */
static const struct service_eject ej3 = {3, 1000, 2500, 50};

/* 50 % of at least 10 outcomes over 1 s open for 0.5 s; 3 probes. */
static const struct service_breaker br = {50, 10, 1000, 500, 3};

/* What the broker gives a service of workers: a transient backend. */
static const struct backend_ops pool_ops = {.kind = "workers",
                                            .transient = true};
static struct backend pool = {&pool_ops, NULL};

static struct fx *
fx_new(size_t workers)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_true(workers <= MAX_WORKERS);
    f->cfg.high_water = 1 << 20;
    f->loop.cfg = &f->cfg;
    f->loop.uv.time = T0;
    f->rng = UINT64_C(88172645463325252);
    f->svc = service_new(&f->loop, slice_str("svc"), &pool);
    assert_non_null(f->svc);
    for (size_t i = 0; i < workers; i++) {
        f->conn[i].loop = &f->loop;
        f->conn[i].id = i + 1;
        f->conn[i].state = CONN_READY;
        snprintf(f->name[i], sizeof(f->name[i]), "w%zu", i);
        f->conn[i].name = f->name[i];
        f->sess[i].conn = &f->conn[i];
        f->reg[i].worker = &f->sess[i];
        f->reg[i].svc = f->svc;
        f->reg[i].credit = CREDIT;
        assert_int_equal(service_add_reg(f->svc, &f->reg[i]), FERRY_OK);
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] == NULL) {
            live[i] = f;
            return f;
        }
    }
    fail_msg("more than %zu fixtures at once", sizeof(live) / sizeof(live[0]));
    return NULL;
}

static void
fx_free(struct fx *f)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] == f) {
            live[i] = NULL;
        }
    }
    service_free(f->svc);
    free(f);
}

static int
fx_teardown(void **state)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i] != NULL) {
            fx_free(live[i]);
        }
    }
    return 0;
}

/* Sets the loop clock to T0 + ms. */
static void
at(struct fx *f, uint64_t ms)
{
    f->loop.uv.time = T0 + ms;
}

static uint64_t
now(const struct fx *f)
{
    return loop_now(&f->loop);
}

/* n outcomes of worker i; returns the last one's answer. While the
 * worker probes and its probe is out, the (first) outcome is the probe's. */
static bool
outcomes(struct fx *f, size_t i, bool ok, int n, const struct service_eject *ej)
{
    bool last = false;

    for (int k = 0; k < n; k++) {
        bool probe = f->sess[i].probing && f->sess[i].probe_sent;
        last = service_worker_outcome(f->svc, &f->reg[i], ok, probe, ej);
    }
    return last;
}

static bool
ejected(const struct fx *f, size_t i)
{
    return service_reg_is_ejected(f->svc, &f->reg[i]);
}

/* Whether a request would go to worker i when every other worker is
 * busy: what service_pick thinks of i alone. */
static bool
pickable(struct fx *f, size_t i)
{
    uint32_t saved[MAX_WORKERS];
    struct wreg *r;

    for (size_t k = 0; k < f->svc->n_regs; k++) {
        saved[k] = f->reg[k].in_flight;
        if (k != i) {
            f->reg[k].in_flight = f->reg[k].credit;
        }
    }
    r = service_pick(f->svc, &f->rng, 0);
    for (size_t k = 0; k < f->svc->n_regs; k++) {
        f->reg[k].in_flight = saved[k];
    }
    assert_true(r == NULL || r == &f->reg[i]);
    return r == &f->reg[i];
}

/* Ejects worker i at the current time with ej3 (3 failures in a row). */
static void
eject(struct fx *f, size_t i)
{
    outcomes(f, i, false, 3, &ej3);
    assert_true(ejected(f, i));
}

/* Outlier ejection */

static void
test_eject_after_failures_in_a_row(void **state)
{
    struct fx *f = fx_new(2);

    assert_false(outcomes(f, 0, false, 2, &ej3));
    assert_int_equal(f->sess[0].fails, 2);
    assert_false(ejected(f, 0));
    assert_true(pickable(f, 0));
    /* A success forgets the failures so far. */
    assert_false(outcomes(f, 0, true, 1, &ej3));
    assert_int_equal(f->sess[0].fails, 0);
    outcomes(f, 0, false, 2, &ej3);
    assert_false(ejected(f, 0));
    assert_int_equal(f->svc->ejections, 0);
    /* The third in a row ejects, for base_ms at the first ejection. */
    assert_false(outcomes(f, 0, false, 1, &ej3));
    assert_true(ejected(f, 0));
    assert_true(f->sess[0].ejected_until == now(f) + 1000);
    assert_int_equal(f->sess[0].ejections, 1);
    assert_int_equal(f->sess[0].fails, 0);
    assert_int_equal(f->svc->ejections, 1);
    assert_false(pickable(f, 0));
    /* The other worker is untouched and takes the requests. */
    assert_false(ejected(f, 1));
    assert_true(pickable(f, 1));
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[1]);
    fx_free(f);
}

static void
test_eject_off(void **state)
{
    struct service_eject off = ej3;
    struct fx *f = fx_new(2);

    off.failures = 0;
    assert_false(outcomes(f, 0, false, 50, &off));
    assert_false(ejected(f, 0));
    assert_int_equal(f->svc->ejections, 0);
    assert_true(pickable(f, 0));
    fx_free(f);
}

/* base x ejections so far, at most max: 1000, 2000, then 2500 (not
 * 3000), 2500. Each time the probe after the ejection fails. */
static void
test_eject_length_grows_and_caps(void **state)
{
    static const uint64_t lengths[] = {2000, 2500, 2500};
    struct fx *f = fx_new(2);
    uint64_t t = 0;

    eject(f, 0);
    assert_true(f->sess[0].ejected_until == T0 + 1000);
    t = 1000;
    for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
        at(f, t);
        assert_true(pickable(f, 0));
        service_worker_sent(&f->reg[0]);
        assert_false(outcomes(f, 0, false, 1, &ej3));
        assert_true(ejected(f, 0));
        assert_true(f->sess[0].ejected_until == T0 + t + lengths[k]);
        assert_int_equal(f->sess[0].ejections, k + 2);
        /* Still out one millisecond before the end. */
        at(f, t + lengths[k] - 1);
        assert_true(ejected(f, 0));
        assert_false(pickable(f, 0));
        t += lengths[k];
    }
    assert_int_equal(f->svc->ejections, 4);
    fx_free(f);
}

static void
test_eject_max_percent(void **state)
{
    struct service_eject none = ej3;
    struct fx *f = fx_new(4);

    /* 50 % of 4: two may be out at once. */
    eject(f, 0);
    at(f, 500);
    eject(f, 1);
    assert_false(outcomes(f, 2, false, 5, &ej3));
    assert_false(ejected(f, 2));
    assert_true(pickable(f, 2));
    assert_int_equal(f->svc->ejections, 2);
    /* Worker 0 comes back (its probe succeeds): room for worker 2, whose
     * next failure ejects it. */
    at(f, 1000);
    assert_true(pickable(f, 0));
    service_worker_sent(&f->reg[0]);
    outcomes(f, 0, true, 1, &ej3);
    assert_false(ejected(f, 0));
    assert_false(outcomes(f, 2, false, 1, &ej3));
    assert_true(ejected(f, 2));
    assert_int_equal(f->svc->ejections, 3);
    fx_free(f);

    /* 50 % of 3 rounds down to one. */
    f = fx_new(3);
    eject(f, 0);
    outcomes(f, 1, false, 3, &ej3);
    assert_false(ejected(f, 1));
    fx_free(f);

    /* 0 % still lets one worker out. */
    none.max_percent = 0;
    f = fx_new(4);
    outcomes(f, 0, false, 3, &none);
    assert_true(ejected(f, 0));
    outcomes(f, 1, false, 3, &none);
    assert_false(ejected(f, 1));
    fx_free(f);
}

static void
test_sole_worker_never_ejected(void **state)
{
    struct service_eject all = ej3;
    struct fx *f = fx_new(1);

    all.max_percent = 100;
    assert_false(outcomes(f, 0, false, 20, &all));
    assert_false(ejected(f, 0));
    assert_int_equal(f->sess[0].ejections, 0);
    assert_true(pickable(f, 0));
    fx_free(f);

    /* Alone again after the other worker left. */
    f = fx_new(2);
    service_remove_reg(f->svc, &f->reg[1]);
    assert_false(outcomes(f, 0, false, 20, &all));
    assert_false(ejected(f, 0));
    fx_free(f);
}

/* A worker ejected while it had company and alone when its probe fails
 * is a sole worker too: its failures go to the callers, it is not
 * ejected again (and service_worker_outcome must not report every worker
 * ejected, which would open the circuit). */
static void
test_sole_worker_probe_not_reejected(void **state)
{
    struct fx *f = fx_new(2);

    eject(f, 0);
    service_remove_reg(f->svc, &f->reg[1]);
    at(f, 1000);
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    service_worker_sent(&f->reg[0]);
    assert_false(outcomes(f, 0, false, 1, &ej3));
    assert_false(ejected(f, 0));
    assert_int_equal(f->sess[0].ejections, 1);
    fx_free(f);
}

/* The answer is true only when the ejection leaves no worker in. */
static void
test_eject_last_worker_reports_all_out(void **state)
{
    struct service_eject all = ej3;
    struct fx *f = fx_new(2);

    all.max_percent = 100;
    assert_false(outcomes(f, 0, false, 3, &all));
    assert_true(ejected(f, 0));
    assert_false(outcomes(f, 1, false, 2, &all));
    assert_true(outcomes(f, 1, false, 1, &all));
    assert_true(ejected(f, 1));
    assert_null(service_pick(f->svc, &f->rng, 0));
    fx_free(f);
}

static void
test_probe_after_expiry(void **state)
{
    struct fx *f = fx_new(2);

    eject(f, 0);
    /* Worker 1 is busy throughout: what is picked is worker 0 or none. */
    f->reg[1].in_flight = CREDIT;
    at(f, 999);
    assert_true(ejected(f, 0));
    assert_null(service_pick(f->svc, &f->rng, 0));
    at(f, 1000);
    assert_false(ejected(f, 0));
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    assert_true(f->sess[0].probing);
    service_worker_sent(&f->reg[0]);
    /* Exactly one probe: nothing more while it is out. */
    assert_null(service_pick(f->svc, &f->rng, 0));
    at(f, 5000);
    assert_null(service_pick(f->svc, &f->rng, 0));
    assert_false(ejected(f, 0));
    /* A probe cancelled without an outcome: another may go. */
    service_worker_unsent(&f->reg[0]);
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    service_worker_sent(&f->reg[0]);
    assert_null(service_pick(f->svc, &f->rng, 0));
    /* Its success heals the worker: requests flow freely again. */
    assert_false(outcomes(f, 0, true, 1, &ej3));
    assert_false(f->sess[0].probing);
    for (int k = 0; k < CREDIT; k++) {
        assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
        service_worker_sent(&f->reg[0]);
        f->reg[0].in_flight++;
    }
    assert_null(service_pick(f->svc, &f->rng, 0));
    assert_int_equal(f->sess[0].ejections, 1);
    /* Healed means a fresh count: two failures do not eject it. */
    outcomes(f, 0, false, 2, &ej3);
    assert_false(ejected(f, 0));
    fx_free(f);
}

static void
test_probe_failure_reejects_longer(void **state)
{
    struct fx *f = fx_new(2);

    eject(f, 0);
    f->reg[1].in_flight = CREDIT;
    at(f, 1500);
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    service_worker_sent(&f->reg[0]);
    /* One failure is enough for a probe. */
    assert_false(outcomes(f, 0, false, 1, &ej3));
    assert_true(ejected(f, 0));
    assert_false(f->sess[0].probing);
    assert_true(f->sess[0].ejected_until == now(f) + 2000);
    assert_int_equal(f->sess[0].ejections, 2);
    assert_null(service_pick(f->svc, &f->rng, 0));
    at(f, 3499);
    assert_null(service_pick(f->svc, &f->rng, 0));
    at(f, 3500);
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    fx_free(f);
}

static void
test_pick_avoid(void **state)
{
    struct service_eject all = ej3;
    struct fx *f = fx_new(3);
    struct wreg *r;

    all.max_percent = 100;
    /* Equal load: plain pick takes worker 0; avoiding it, another. */
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    r = service_pick_avoid(f->svc, &f->rng, f->conn[0].id, 0);
    assert_true(r == &f->reg[1] || r == &f->reg[2]);
    assert_ptr_equal(service_pick_avoid(f->svc, &f->rng, 0, 0), &f->reg[0]);
    /* The others are busy but healthy: wait for them, not worker 0. */
    f->reg[1].in_flight = CREDIT;
    f->reg[2].in_flight = CREDIT;
    assert_null(service_pick_avoid(f->svc, &f->rng, f->conn[0].id, 0));
    /* The others are ejected (or draining): worker 0 after all. */
    f->reg[1].in_flight = 0;
    f->reg[2].in_flight = 0;
    outcomes(f, 1, false, 3, &all);
    outcomes(f, 2, false, 3, &all);
    assert_true(ejected(f, 1) && ejected(f, 2));
    assert_ptr_equal(service_pick_avoid(f->svc, &f->rng, f->conn[0].id, 0),
                     &f->reg[0]);
    at(f, 1000);
    f->sess[1].draining = true;
    f->reg[2].in_flight = CREDIT;
    f->sess[2].ejected_until = now(f) + 1;
    assert_ptr_equal(service_pick_avoid(f->svc, &f->rng, f->conn[0].id, 0),
                     &f->reg[0]);
    fx_free(f);
}

/* Circuit breaker */

static void
breaker_outcomes(struct fx *f, const struct service_breaker *b, bool ok,
                 bool probe, int n)
{
    for (int k = 0; k < n; k++) {
        service_circuit_outcome(f->svc, b, ok,
                                probe ? f->svc->circuit_round : 0);
    }
}

static bool
admit(struct fx *f, bool *probe)
{
    uint32_t round = 0;
    bool ok = service_circuit_admit(f->svc, &br, &round);

    *probe = round != 0;
    return ok;
}

/* Opens the circuit of f at the current time with min_requests failures. */
static void
open_circuit(struct fx *f)
{
    breaker_outcomes(f, &br, false, false, 10);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
}

static void
test_breaker_opens_after_min_requests(void **state)
{
    struct fx *f = fx_new(2);
    bool probe = true;

    breaker_outcomes(f, &br, false, false, 9);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    assert_true(admit(f, &probe));
    assert_false(probe);
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    assert_int_equal(f->svc->circuit_opens, 1);
    assert_true(f->svc->circuit_until == now(f) + 500);
    probe = true;
    assert_false(admit(f, &probe));
    assert_false(probe);
    fx_free(f);
}

/* Under the threshold it stays closed; at it (50 % exactly), it opens. */
static void
test_breaker_threshold(void **state)
{
    struct service_breaker off = br;
    struct fx *f = fx_new(2);

    breaker_outcomes(f, &br, true, false, 11);
    breaker_outcomes(f, &br, false, false, 9);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED); /* 9 of 20 */
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED); /* 10 of 21 */
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN); /* 11 of 22 */
    assert_int_equal(f->svc->circuit_opens, 1);
    fx_free(f);

    /* error_percent 0: never opens. */
    off.error_percent = 0;
    f = fx_new(2);
    breaker_outcomes(f, &off, false, false, 100);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    assert_int_equal(f->svc->circuit_opens, 0);
    fx_free(f);
}

static void
test_breaker_half_open_probes_close(void **state)
{
    struct fx *f = fx_new(2);
    bool probe;

    open_circuit(f);
    /* Fail fast for open_ms. */
    for (uint64_t t = 0; t < 500; t += 125) {
        at(f, t);
        assert_false(admit(f, &probe));
        assert_false(probe);
    }
    at(f, 499);
    assert_false(admit(f, &probe));
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    /* Then half open: exactly `probes` requests go through. */
    at(f, 500);
    for (int k = 0; k < 3; k++) {
        probe = false;
        assert_true(admit(f, &probe));
        assert_true(probe);
        assert_int_equal(f->svc->circuit, CIRCUIT_HALF_OPEN);
    }
    assert_false(admit(f, &probe));
    assert_false(probe);
    assert_false(admit(f, &probe));
    /* All three succeed: closed. */
    breaker_outcomes(f, &br, true, true, 2);
    assert_int_equal(f->svc->circuit, CIRCUIT_HALF_OPEN);
    breaker_outcomes(f, &br, true, true, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    assert_true(admit(f, &probe));
    assert_false(probe);
    /* The window starts afresh: the ten failures that opened it are gone,
     * so nine new ones do not reopen it and the tenth does. */
    breaker_outcomes(f, &br, false, false, 9);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    assert_int_equal(f->svc->circuit_opens, 2);
    fx_free(f);
}

static void
test_breaker_probe_failure_reopens(void **state)
{
    struct fx *f = fx_new(2);
    bool probe;

    open_circuit(f);
    at(f, 500);
    for (int k = 0; k < 3; k++) {
        assert_true(admit(f, &probe));
    }
    /* Outcomes of requests admitted before (not probes) change nothing. */
    breaker_outcomes(f, &br, false, false, 20);
    assert_int_equal(f->svc->circuit, CIRCUIT_HALF_OPEN);
    breaker_outcomes(f, &br, true, true, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_HALF_OPEN);
    at(f, 600);
    breaker_outcomes(f, &br, false, true, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    assert_int_equal(f->svc->circuit_opens, 2);
    assert_true(f->svc->circuit_until == now(f) + 500);
    assert_false(admit(f, &probe));
    /* The last probe's late success does not close an open circuit. */
    breaker_outcomes(f, &br, true, true, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    at(f, 1099);
    assert_false(admit(f, &probe));
    at(f, 1100);
    assert_true(admit(f, &probe));
    assert_true(probe);
    fx_free(f);
}

static void
test_breaker_unprobe(void **state)
{
    struct fx *f = fx_new(2);
    bool probe;

    /* Closed (and open): nothing to give back. */
    service_circuit_unprobe(f->svc, f->svc->circuit_round);
    assert_int_equal(f->svc->probes_sent, 0);
    open_circuit(f);
    service_circuit_unprobe(f->svc, f->svc->circuit_round);
    assert_int_equal(f->svc->probes_sent, 0);
    at(f, 500);
    for (int k = 0; k < 3; k++) {
        assert_true(admit(f, &probe));
    }
    assert_false(admit(f, &probe));
    /* A probe ended without an outcome: one more goes, not two. */
    service_circuit_unprobe(f->svc, f->svc->circuit_round);
    assert_true(admit(f, &probe));
    assert_true(probe);
    assert_false(admit(f, &probe));
    assert_int_equal(f->svc->probes_sent, 3);
    fx_free(f);
}

/* A probe of an earlier half-open round, still out when its round ended,
 * neither closes nor reopens the next round, nor frees its slots. */
static void
test_breaker_late_probe_of_old_round(void **state)
{
    struct fx *f = fx_new(2);
    uint32_t old[3], round;

    open_circuit(f);
    at(f, 500);
    for (int k = 0; k < 3; k++) {
        assert_true(service_circuit_admit(f->svc, &br, &old[k]));
        assert_int_not_equal(old[k], 0);
    }
    service_circuit_outcome(f->svc, &br, false, old[0]);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    at(f, 1000);
    assert_true(service_circuit_admit(f->svc, &br, &round));
    assert_int_not_equal(round, old[1]);
    /* The two old probes succeed late: the new round is not closed... */
    service_circuit_outcome(f->svc, &br, true, old[1]);
    service_circuit_outcome(f->svc, &br, true, old[2]);
    assert_int_equal(f->svc->circuit, CIRCUIT_HALF_OPEN);
    assert_int_equal(f->svc->probes_ok, 0);
    /* ...nor does an old one given back free a slot of the new round. */
    service_circuit_unprobe(f->svc, old[1]);
    assert_int_equal(f->svc->probes_sent, 1);
    /* The round's own probes decide. */
    service_circuit_outcome(f->svc, &br, true, round);
    for (int k = 0; k < 2; k++) {
        assert_true(service_circuit_admit(f->svc, &br, &round));
        service_circuit_outcome(f->svc, &br, true, round);
    }
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    fx_free(f);
}

/* While an ejected worker probes, only its probe decides: outcomes of
 * requests it held from before its ejection are ignored. */
static void
test_probing_worker_ignores_older_requests(void **state)
{
    struct fx *f = fx_new(2);

    eject(f, 0);
    f->reg[1].in_flight = CREDIT;
    at(f, 1000);
    assert_ptr_equal(service_pick(f->svc, &f->rng, 0), &f->reg[0]);
    assert_true(service_worker_sent(&f->reg[0]));
    /* A second request sent meanwhile is not a probe. */
    assert_false(service_worker_sent(&f->reg[0]));
    assert_false(
        service_worker_outcome(f->svc, &f->reg[0], false, false, &ej3));
    assert_true(f->sess[0].probing);
    assert_int_equal(f->sess[0].ejections, 1);
    assert_false(service_worker_outcome(f->svc, &f->reg[0], true, false, &ej3));
    assert_true(f->sess[0].probing);
    /* The probe's failure re-ejects it. */
    service_worker_outcome(f->svc, &f->reg[0], false, true, &ej3);
    assert_false(f->sess[0].probing);
    assert_int_equal(f->sess[0].ejections, 2);
    fx_free(f);
}

/* Outcomes older than window_ms are forgotten (the window moves by a
 * tenth of it). */
static void
test_breaker_window_forgets(void **state)
{
    struct fx *f = fx_new(2);

    breaker_outcomes(f, &br, false, false, 9);
    at(f, 900);
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    fx_free(f);

    f = fx_new(2);
    breaker_outcomes(f, &br, false, false, 9);
    at(f, 1000);
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    breaker_outcomes(f, &br, false, false, 8);
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    breaker_outcomes(f, &br, false, false, 1);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    fx_free(f);

    /* Successes age out too: 30 old ones do not dilute 10 new failures. */
    f = fx_new(2);
    breaker_outcomes(f, &br, true, false, 30);
    at(f, 5000);
    breaker_outcomes(f, &br, false, false, 10);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    fx_free(f);
}

static void
test_breaker_open_directly(void **state)
{
    struct fx *f = fx_new(2);
    bool probe;

    at(f, 123);
    service_circuit_open(f->svc, &br, "every worker ejected");
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    assert_int_equal(f->svc->circuit_opens, 1);
    assert_true(f->svc->circuit_until == T0 + 623);
    assert_false(admit(f, &probe));
    at(f, 623);
    assert_true(admit(f, &probe));
    assert_true(probe);
    assert_string_equal(service_circuit_name(f->svc->circuit), "half_open");
    assert_string_equal(service_circuit_name(CIRCUIT_OPEN), "open");
    assert_string_equal(service_circuit_name(CIRCUIT_CLOSED), "closed");
    fx_free(f);
}

/* Retry budget */

/* n retries, each first allowed by the budget; then the next is not. */
static void
retries_until_denied(struct fx *f, uint32_t percent, uint32_t min_per_s, int n)
{
    uint64_t denied = f->svc->retries_denied;

    for (int k = 0; k < n; k++) {
        assert_true(service_retry_allowed(f->svc, percent, min_per_s));
        service_count_retry(f->svc);
    }
    assert_int_equal(f->svc->retries_denied, denied);
    assert_false(service_retry_allowed(f->svc, percent, min_per_s));
    assert_int_equal(f->svc->retries_denied, denied + 1);
}

static void
requests(struct fx *f, int n)
{
    for (int k = 0; k < n; k++) {
        service_count_request(f->svc);
    }
}

/* Without requests, the floor: min_per_s x 10 s. */
static void
test_retry_budget_floor(void **state)
{
    struct fx *f = fx_new(2);

    retries_until_denied(f, 20, 3, 30);
    assert_int_equal(f->svc->retries, 30);
    /* Asking again is refused and counted again; nothing else changes. */
    assert_false(service_retry_allowed(f->svc, 20, 3));
    assert_int_equal(f->svc->retries_denied, 2);
    assert_int_equal(f->svc->retries, 30);
    fx_free(f);

    /* A share of the requests below the floor: the floor wins. */
    f = fx_new(2);
    requests(f, 100); /* 20 % = 20 < 30 */
    retries_until_denied(f, 20, 3, 30);
    fx_free(f);

    /* Both 0: no retries at all. */
    f = fx_new(2);
    requests(f, 1000);
    retries_until_denied(f, 0, 0, 0);
    fx_free(f);
}

/* Requests spread over ten seconds all count: 1000 x 20 % = 200. */
static void
test_retry_budget_percent(void **state)
{
    struct fx *f = fx_new(2);

    for (uint64_t s = 0; s < 10; s++) {
        at(f, s * 1000);
        requests(f, 100);
    }
    assert_int_equal(f->svc->requests, 1000);
    retries_until_denied(f, 20, 3, 200);
    /* Another 50 requests make room for 10 more. */
    requests(f, 50);
    retries_until_denied(f, 20, 3, 10);
    fx_free(f);
}

static void
test_retry_budget_forgets_old_seconds(void **state)
{
    struct fx *f = fx_new(2);

    retries_until_denied(f, 20, 3, 30);
    at(f, 9999);
    assert_false(service_retry_allowed(f->svc, 20, 3));
    /* Ten seconds on, the first second's retries are forgotten. */
    at(f, 10000);
    retries_until_denied(f, 20, 3, 30);
    fx_free(f);

    /* Old requests are forgotten too: back to the floor. */
    f = fx_new(2);
    requests(f, 1000);
    at(f, 5000);
    retries_until_denied(f, 20, 3, 200);
    at(f, 10000);
    /* Second 0's requests are gone; second 5's 200 retries still count,
     * above the floor of 30. */
    assert_false(service_retry_allowed(f->svc, 20, 3));
    at(f, 15000);
    retries_until_denied(f, 20, 3, 30);
    fx_free(f);
}

/* Forgetting idle services */

static void
builtin_nothing(struct backend *be, struct bcall *c)
{
}

static const struct backend_ops builtin_nothing_ops = {
    .kind = "builtin",
    .call = builtin_nothing,
};

static void
test_idle_only_without_worker_request_or_disable(void **state)
{
    struct fx *f = fx_new(2);
    struct service *b;

    /* Workers keep it. */
    assert_false(service_is_idle(f->svc));
    at(f, 100);
    service_remove_reg(f->svc, &f->reg[0]);
    assert_false(service_is_idle(f->svc));
    service_remove_reg(f->svc, &f->reg[1]);
    assert_true(service_is_idle(f->svc));
    /* So do its request records (queued, at a worker, retrying). */
    f->svc->reqs = 1;
    assert_false(service_is_idle(f->svc));
    assert_false(service_is_forgettable(f->svc, 0));
    f->svc->reqs = 0;
    f->svc->queued = 1;
    assert_false(service_is_idle(f->svc));
    f->svc->queued = 0;
    /* And a disable by an operator, however long. */
    assert_int_equal(service_disable(f->svc, NULL, 0), FERRY_OK);
    assert_false(service_is_idle(f->svc));
    at(f, 86400000);
    assert_false(service_is_forgettable(f->svc, 1000));
    service_enable(f->svc);
    assert_true(service_is_idle(f->svc));
    fx_free(f);

    /* A built-in service is never idle. */
    f = fx_new(0);
    struct backend nothing = {&builtin_nothing_ops, NULL};
    b = service_new(&f->loop, slice_str("ferry.b"), &nothing);
    assert_non_null(b);
    assert_false(service_is_idle(b));
    at(f, 86400000);
    assert_false(service_is_forgettable(b, 0));
    service_free(b);
    fx_free(f);
}

static void
test_forgettable_after_idle_time(void **state)
{
    struct fx *f = fx_new(1);

    /* Idle from the loss of its last worker, at 100. */
    at(f, 100);
    service_remove_reg(f->svc, &f->reg[0]);
    assert_int_equal(f->svc->last_active, now(f));
    at(f, 1099);
    assert_false(service_is_forgettable(f->svc, 1000));
    at(f, 1100);
    assert_true(service_is_forgettable(f->svc, 1000));
    /* Traffic (a request, even one refused at once) starts it again. */
    service_count_request(f->svc);
    at(f, 2099);
    assert_false(service_is_forgettable(f->svc, 1000));
    at(f, 2100);
    assert_true(service_is_forgettable(f->svc, 1000));
    /* So does an enable, after a disable. */
    assert_int_equal(service_disable(f->svc, "fb", 2), FERRY_OK);
    at(f, 5000);
    service_enable(f->svc);
    at(f, 5999);
    assert_false(service_is_forgettable(f->svc, 1000));
    at(f, 6000);
    assert_true(service_is_forgettable(f->svc, 1000));
    /* And a worker registering again. */
    assert_int_equal(service_add_reg(f->svc, &f->reg[0]), FERRY_OK);
    at(f, 9000);
    assert_false(service_is_forgettable(f->svc, 0));
    service_remove_reg(f->svc, &f->reg[0]);
    assert_false(service_is_forgettable(f->svc, 1));
    /* 0: forgettable as soon as it is idle. */
    assert_true(service_is_forgettable(f->svc, 0));
    fx_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_eject_after_failures_in_a_row,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_eject_off, fx_teardown),
        cmocka_unit_test_teardown(test_breaker_late_probe_of_old_round,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_probing_worker_ignores_older_requests,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_eject_length_grows_and_caps,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_eject_max_percent, fx_teardown),
        cmocka_unit_test_teardown(test_sole_worker_never_ejected, fx_teardown),
        cmocka_unit_test_teardown(test_sole_worker_probe_not_reejected,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_eject_last_worker_reports_all_out,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_probe_after_expiry, fx_teardown),
        cmocka_unit_test_teardown(test_probe_failure_reejects_longer,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_pick_avoid, fx_teardown),
        cmocka_unit_test_teardown(test_breaker_opens_after_min_requests,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_breaker_threshold, fx_teardown),
        cmocka_unit_test_teardown(test_breaker_half_open_probes_close,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_breaker_probe_failure_reopens,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_breaker_unprobe, fx_teardown),
        cmocka_unit_test_teardown(test_breaker_window_forgets, fx_teardown),
        cmocka_unit_test_teardown(test_breaker_open_directly, fx_teardown),
        cmocka_unit_test_teardown(test_retry_budget_floor, fx_teardown),
        cmocka_unit_test_teardown(test_retry_budget_percent, fx_teardown),
        cmocka_unit_test_teardown(
            test_idle_only_without_worker_request_or_disable, fx_teardown),
        cmocka_unit_test_teardown(test_forgettable_after_idle_time,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_retry_budget_forgets_old_seconds,
                                  fx_teardown),
    };

    /* Ejections and circuit changes log warnings; keep the output to
     * the results. */
    log_set_level(LOG_LVL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
