/* SPDX-License-Identifier: MIT */
/*
 * test_broker.c - the broker against a test backend (backend.h): answers
 * at once and later, a held request's deadline, its caller leaving, the
 * shutdown grace, a disabled service's fallback, the circuit opening on a
 * backend's failures, and the stats of each. The caller is an icall (the
 * HTTP gateway's sink), on a real loop with real timers.
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
#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/icall.h"
#include "broker/service.h"
#include "core/config.h"
#include "core/loop.h"

enum tb_mode {
    TB_REPLY,   /* bcall_reply(payload) */
    TB_PREPARE, /* bcall_reply_prepare + commit: "<" payload ">" */
    TB_ERROR,   /* bcall_error(tb->err) */
    TB_HOLD,    /* bcall_hold(), answered by the test */
    TB_NOTHING  /* neither: a backend bug */
};

/* The test backend. */
struct tb {
    struct backend be;
    enum tb_mode mode;
    ferry_err err;
    int calls;
    int cancelled;
    uint64_t last_cancelled;
    uint64_t handle;      /* of the last TB_HOLD */
    uint8_t flags;        /* of the last call */
    uint32_t deadline_ms; /* of the last call */
    char key[32];         /* of the last call */
};

static void
tb_call(struct backend *be, struct bcall *c)
{
    struct tb *tb = container_of(be, struct tb, be);
    uint8_t *p;

    tb->calls++;
    tb->flags = c->flags;
    tb->deadline_ms = c->deadline_ms;
    snprintf(tb->key, sizeof(tb->key), "%.*s", (int)c->key.len,
             (const char *)c->key.p);
    switch (tb->mode) {
    case TB_REPLY:
        bcall_reply(c, c->payload.p, c->payload.len);
        return;
    case TB_PREPARE:
        p = bcall_reply_prepare(c, c->payload.len + 2);
        assert_non_null(p);
        p[0] = '<';
        memcpy(p + 1, c->payload.p, c->payload.len);
        p[c->payload.len + 1] = '>';
        bcall_reply_commit(c);
        return;
    case TB_ERROR:
        bcall_error(c, tb->err, "test backend failed");
        return;
    case TB_HOLD:
        tb->handle = bcall_hold(c);
        assert_true(tb->handle != 0);
        return;
    case TB_NOTHING:
        return;
    }
}

static void
tb_cancelled(struct backend *be, uint64_t handle)
{
    struct tb *tb = container_of(be, struct tb, be);

    tb->cancelled++;
    tb->last_cancelled = handle;
    /* Answering a request that has ended is a no-op, even from here. */
    broker_answer(be->b, handle, FERRY_OK, "late", 4);
}

static int
tb_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    return json_object_set_new(obj, "test_field", json_integer(42));
}

static const struct backend_ops tb_ops = {
    .kind = "test",
    .call = tb_call,
    .cancelled = tb_cancelled,
    .describe = tb_describe,
};

/* One in-daemon call and its answer. */
struct ans {
    struct icall ic;
    int n;
    ferry_err err;
    char data[256];
    size_t len;
};

static void
ans_cb(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct ans *a = container_of(ic, struct ans, ic);

    a->n++;
    a->err = err;
    a->len = len < sizeof(a->data) ? len : sizeof(a->data) - 1;
    memcpy(a->data, data, a->len);
    a->data[a->len] = '\0';
}

struct fx {
    struct config cfg;
    struct loop loop;
    struct broker b;
    struct tb tb;
    struct service *svc;
    int stopped;
};

static void
fx_on_stopped(struct broker *b)
{
    struct fx *f = container_of(b, struct fx, b);

    f->stopped++;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(config_init(&f->cfg), FERRY_OK);
    f->cfg.breaker_error_percent = 50;
    f->cfg.breaker_min_requests = 10;
    f->cfg.breaker_window_ms = 10000;
    f->cfg.breaker_open_ms = 60000;
    f->cfg.grace_ms = 50;
    assert_int_equal(loop_init(&f->loop, &f->cfg), FERRY_OK);
    assert_int_equal(broker_init(&f->b, &f->loop), FERRY_OK);
    f->b.on_stopped = fx_on_stopped;
    f->tb.be.ops = &tb_ops;
    assert_int_equal(broker_add_backend(&f->b, "ferry.test", &f->tb.be),
                     FERRY_OK);
    assert_ptr_equal(f->tb.be.b, &f->b);
    f->svc = smap_get(&f->b.services, "ferry.test", strlen("ferry.test"));
    assert_non_null(f->svc);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    broker_release(&f->b);
    loop_release(&f->loop);
    config_release(&f->cfg);
    free(f);
    return 0;
}

static void
call(struct fx *f, struct ans *a, const char *payload, uint32_t deadline_ms,
     uint8_t flags)
{
    memset(a, 0, sizeof(*a));
    icall_submit(&f->b, &a->ic, slice_str("ferry.test"), slice_str("k1"),
                 slice_str(payload), deadline_ms, flags, ans_cb);
}

/* Runs the loop until a has its answer, or cond, at most ms. */
static void
run_until(struct fx *f, const int *n, int want, uint32_t ms)
{
    uint64_t end = uv_now(&f->loop.uv) + ms;

    while (*n < want && uv_now(&f->loop.uv) < end) {
        uv_run(&f->loop.uv, UV_RUN_ONCE);
        uv_update_time(&f->loop.uv);
    }
}

static void
test_names_refused(void **state)
{
    struct fx *f = *state;
    struct tb other = {.be = {&tb_ops, NULL}};

    /* Only reserved names, each once. */
    assert_int_equal(broker_add_backend(&f->b, "plain", &other.be),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(broker_add_backend(&f->b, "ferry.test", &other.be),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(broker_add_backend(&f->b, "echo", &other.be),
                     FERRY_EINVALID_ARGUMENT);
}

static void
test_immediate_answer(void **state)
{
    struct fx *f = *state;
    struct ans a;
    size_t recs = f->b.reqs.n;

    call(f, &a, "hello", 0, FERRY_IDEMPOTENT);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_OK);
    assert_string_equal(a.data, "hello");
    /* The backend saw key, flags and the default deadline. */
    assert_string_equal(f->tb.key, "k1");
    assert_int_equal(f->tb.flags, FERRY_IDEMPOTENT);
    assert_int_equal(f->tb.deadline_ms, f->cfg.default_deadline_ms);
    /* No record was made. */
    assert_int_equal(f->b.reqs.n, recs);
    assert_int_equal(f->b.live, 0);
    /* Assembled in place. */
    f->tb.mode = TB_PREPARE;
    call(f, &a, "mid", 0, 0);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.data, "<mid>");
    /* An error, with its message. */
    f->tb.mode = TB_ERROR;
    f->tb.err = FERRY_EINVALID_ARGUMENT;
    call(f, &a, "x", 0, 0);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_EINVALID_ARGUMENT);
    assert_string_equal(a.data, "test backend failed");
    /* Neither: the caller is answered all the same. */
    f->tb.mode = TB_NOTHING;
    call(f, &a, "x", 0, 0);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_EWORKER_ERROR);
    /* Stats: every request, replies and errors by code. */
    assert_int_equal(f->svc->requests, 4);
    assert_int_equal(f->svc->replies, 2);
    assert_int_equal(f->svc->errors[FERRY_EINVALID_ARGUMENT], 1);
    assert_int_equal(f->svc->errors[FERRY_EWORKER_ERROR], 1);
    assert_int_equal(f->svc->latency.count, 2);
}

static void
test_held_answer(void **state)
{
    struct fx *f = *state;
    struct ans a;
    uint64_t h;

    f->tb.mode = TB_HOLD;
    call(f, &a, "later", 5000, 0);
    h = f->tb.handle;
    assert_int_equal(a.n, 0);
    assert_true(broker_is_waiting(&f->b, h));
    /* A record like a worker's request: counted in flight and live. */
    assert_int_equal(f->b.live, 1);
    assert_int_equal(f->svc->in_flight, 1);
    assert_int_equal(f->svc->reqs, 1);
    broker_answer(&f->b, h, FERRY_OK, "done", 4);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_OK);
    assert_string_equal(a.data, "done");
    assert_false(broker_is_waiting(&f->b, h));
    assert_int_equal(f->b.live, 0);
    assert_int_equal(f->svc->in_flight, 0);
    assert_int_equal(f->svc->replies, 1);
    /* A second answer is a no-op. */
    broker_answer(&f->b, h, FERRY_OK, "again", 5);
    assert_int_equal(a.n, 1);
    assert_int_equal(f->tb.cancelled, 0);
    /* A later error. */
    call(f, &a, "later", 5000, 0);
    broker_answer_error(&f->b, f->tb.handle, FERRY_ENO_SPACE, "disk full");
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_ENO_SPACE);
    assert_string_equal(a.data, "disk full");
    assert_int_equal(f->svc->errors[FERRY_ENO_SPACE], 1);
    /* Handles are never 0 and never reused. */
    assert_true(f->tb.handle != h);
}

static void
test_held_deadline(void **state)
{
    struct fx *f = *state;
    struct ans a;
    uint64_t h;

    f->tb.mode = TB_HOLD;
    call(f, &a, "slow", 20, 0);
    h = f->tb.handle;
    assert_int_equal(f->tb.deadline_ms, 20);
    run_until(f, &a.n, 1, 2000);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_EDEADLINE);
    /* cancelled() once, with the handle; its own late answer was a
     * no-op, and so is the test's. */
    assert_int_equal(f->tb.cancelled, 1);
    assert_int_equal(f->tb.last_cancelled, h);
    assert_false(broker_is_waiting(&f->b, h));
    broker_answer(&f->b, h, FERRY_OK, "late", 4);
    assert_int_equal(a.n, 1);
    assert_int_equal(f->b.live, 0);
    assert_int_equal(f->svc->in_flight, 0);
    assert_int_equal(f->svc->errors[FERRY_EDEADLINE], 1);
    assert_int_equal(f->svc->replies, 0);
}

static void
test_held_caller_gone(void **state)
{
    struct fx *f = *state;
    struct ans a;
    uint64_t h;

    f->tb.mode = TB_HOLD;
    call(f, &a, "orphan", 5000, 0);
    h = f->tb.handle;
    icall_cancel(&f->b, &a.ic);
    /* No answer to a caller that left; the backend is told. */
    assert_int_equal(a.n, 0);
    assert_int_equal(f->tb.cancelled, 1);
    assert_int_equal(f->tb.last_cancelled, h);
    assert_false(broker_is_waiting(&f->b, h));
    assert_int_equal(f->b.live, 0);
    broker_answer(&f->b, h, FERRY_OK, "late", 4);
    assert_int_equal(a.n, 0);
}

static void
test_held_shutdown_grace(void **state)
{
    struct fx *f = *state;
    struct ans a, b, c;

    f->tb.mode = TB_HOLD;
    call(f, &a, "one", 60000, 0);
    uint64_t ha = f->tb.handle;
    call(f, &b, "two", 60000, 0);
    broker_shutdown(&f->b);
    /* New requests are refused; held ones may still be answered. */
    call(f, &c, "three", 0, 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.err, FERRY_ESHUTTING_DOWN);
    broker_answer(&f->b, ha, FERRY_OK, "in time", 7);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_OK);
    assert_int_equal(f->stopped, 0);
    /* The grace period ends: the other gets SHUTTING_DOWN and the
     * backend is told once. */
    run_until(f, &f->stopped, 1, 2000);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.err, FERRY_ESHUTTING_DOWN);
    assert_int_equal(f->tb.cancelled, 1);
    assert_int_equal(f->b.live, 0);
}

static void
test_shutdown_stops_at_once_when_answered(void **state)
{
    struct fx *f = *state;
    struct ans a;

    f->cfg.grace_ms = 60000;
    f->tb.mode = TB_HOLD;
    call(f, &a, "one", 60000, 0);
    broker_shutdown(&f->b);
    broker_answer(&f->b, f->tb.handle, FERRY_OK, "ok", 2);
    /* The last answer ends the wait, long before grace_ms. */
    run_until(f, &f->stopped, 1, 2000);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->tb.cancelled, 0);
}

static void
test_disabled_with_fallback(void **state)
{
    struct fx *f = *state;
    struct ans a;

    assert_int_equal(service_disable(f->svc, NULL, 0), FERRY_OK);
    call(f, &a, "x", 0, 0);
    assert_int_equal(a.err, FERRY_ESERVICE_DISABLED);
    assert_int_equal(service_disable(f->svc, "fixed", 5), FERRY_OK);
    call(f, &a, "x", 0, 0);
    assert_int_equal(a.err, FERRY_OK);
    assert_string_equal(a.data, "fixed");
    /* The backend never saw them. */
    assert_int_equal(f->tb.calls, 0);
    assert_int_equal(f->svc->fallbacks, 1);
    assert_int_equal(f->svc->errors[FERRY_ESERVICE_DISABLED], 1);
    service_enable(f->svc);
    call(f, &a, "back", 0, 0);
    assert_string_equal(a.data, "back");
    assert_int_equal(f->tb.calls, 1);
}

static void
test_circuit_opens_on_backend_failures(void **state)
{
    struct fx *f = *state;
    struct ans a;
    int i;

    /* Successes first: they count in the window too. */
    for (i = 0; i < 5; i++) {
        call(f, &a, "ok", 0, 0);
        assert_int_equal(a.err, FERRY_OK);
    }
    /* A caller's fault does not open it. */
    f->tb.mode = TB_ERROR;
    f->tb.err = FERRY_EINVALID_ARGUMENT;
    for (i = 0; i < 20; i++) {
        call(f, &a, "bad", 0, 0);
    }
    assert_int_equal(f->svc->circuit, CIRCUIT_CLOSED);
    /* The backend's own failures do, past 50% of >= 10 outcomes. */
    f->tb.err = FERRY_EOVERLOADED;
    for (i = 0; i < 40 && f->svc->circuit == CIRCUIT_CLOSED; i++) {
        call(f, &a, "fail", 0, 0);
        assert_int_equal(a.err, FERRY_EOVERLOADED);
    }
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
    assert_int_equal(f->svc->circuit_opens, 1);
    /* Then requests fail fast, without reaching the backend. */
    int calls = f->tb.calls;
    call(f, &a, "x", 0, 0);
    assert_int_equal(a.err, FERRY_ECIRCUIT_OPEN);
    assert_int_equal(f->tb.calls, calls);
    assert_int_equal(f->svc->errors[FERRY_ECIRCUIT_OPEN], 1);
}

static void
test_circuit_counts_held_deadlines(void **state)
{
    struct fx *f = *state;
    struct ans a[12];
    int i;

    f->tb.mode = TB_HOLD;
    for (i = 0; i < 12; i++) {
        call(f, &a[i], "slow", 10, 0);
    }
    run_until(f, &a[11].n, 1, 2000);
    for (i = 0; i < 12; i++) {
        assert_int_equal(a[i].n, 1);
        assert_int_equal(a[i].err, FERRY_EDEADLINE);
    }
    assert_int_equal(f->tb.cancelled, 12);
    assert_int_equal(f->svc->circuit, CIRCUIT_OPEN);
}

static void
test_services_json_names_backend(void **state)
{
    struct fx *f = *state;
    struct ans a;
    json_t *doc, *arr, *s;
    size_t i;
    bool seen = false;

    memset(&a, 0, sizeof(a));
    a.ic.internals = true;
    icall_submit(&f->b, &a.ic, slice_str("ferry.services"), slice_str(""),
                 slice_str(""), 0, 0, ans_cb);
    assert_int_equal(a.err, FERRY_OK);
    /* The answer is cut to the test's buffer: parse the document. */
    doc = builtin_services_json(&f->b);
    assert_non_null(doc);
    arr = json_object_get(doc, "services");
    json_array_foreach(arr, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *be = json_string_value(json_object_get(s, "backend"));
        if (strcmp(name, "ferry.test") == 0) {
            assert_string_equal(be, "test");
            assert_int_equal(
                json_integer_value(json_object_get(s, "test_field")), 42);
            seen = true;
        } else {
            assert_string_equal(be, "builtin");
        }
    }
    assert_true(seen);
    json_decref(doc);
}

/* The worker pool is a backend like any other: a service nobody serves
 * yet is created on the pool's backend, listed as such, waits for a
 * worker as a record, and is forgotten once its request ends. */
static void
test_worker_pool_is_a_backend(void **state)
{
    struct fx *f = *state;
    struct ans a, b2;
    struct service *svc;
    json_t *o;

    memset(&a, 0, sizeof(a));
    icall_submit(&f->b, &a.ic, slice_str("plain.svc"), slice_str(""),
                 slice_str("x"), 30, 0, ans_cb);
    assert_int_equal(a.n, 0);
    svc = smap_get(&f->b.services, "plain.svc", strlen("plain.svc"));
    assert_non_null(svc);
    assert_ptr_equal(svc->backend, &f->b.workers);
    assert_true(svc->backend->ops->transient);
    assert_null(svc->backend->ops->call);
    assert_int_equal(svc->queued, 1);
    assert_int_equal(f->b.live, 1);
    o = builtin_service_json(&f->b, svc);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "backend")),
                        "workers");
    assert_false(json_boolean_value(json_object_get(o, "builtin")));
    assert_int_equal(json_array_size(json_object_get(o, "workers")), 0);
    json_decref(o);

    /* A second call withdrawn by its caller leaves the queue at once. */
    memset(&b2, 0, sizeof(b2));
    icall_submit(&f->b, &b2.ic, slice_str("plain.svc"), slice_str(""),
                 slice_str("y"), 5000, 0, ans_cb);
    assert_int_equal(svc->queued, 2);
    icall_cancel(&f->b, &b2.ic);
    assert_int_equal(svc->queued, 1);
    assert_int_equal(b2.n, 0);

    /* No worker ever came: the record ends as an unknown service. */
    run_until(f, &a.n, 1, 2000);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.err, FERRY_EUNKNOWN_SERVICE);
    assert_int_equal(f->b.live, 0);
    assert_null(smap_get(&f->b.services, "plain.svc", strlen("plain.svc")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immediate_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_pool_is_a_backend, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_held_caller_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_shutdown_grace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_shutdown_stops_at_once_when_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_with_fallback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_circuit_opens_on_backend_failures,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_circuit_counts_held_deadlines,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_services_json_names_backend, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
