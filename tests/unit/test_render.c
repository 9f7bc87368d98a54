/* SPDX-License-Identifier: MIT */
/*
 * test_render.c - the big documents in slices (src/http/render.c) on a
 * broker with a thousand services of long names: the slices put together
 * are the whole document, each slice stays near RENDER_SLICE bytes, every
 * service comes once and in name order, and a service created or removed
 * between two slices is either in the document whole or not at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/service.h"
#include "broker/session.h"
#include "core/conn.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/loop.h"
#include "http/render.h"

#define N_SERVICES 1000
/* echo, ferry.services, ferry.admin and ferry.cluster. */
#define BUILTINS 4

/* A slice ends after the unit of work that passed RENDER_SLICE: at most
 * 256 lines, 16 histograms or 32 objects of a 255-byte name. */
#define SLICE_MAX (RENDER_SLICE + 160 * 1024)

struct fixture {
    struct config cfg;
    struct loop loop;
    struct broker broker;
};

static void
name_of(unsigned i, char *out)
{
    int n = snprintf(out, FRAME_MAX_NAME + 1, "svc%05u-", i);

    memset(out + n, 'x', FRAME_MAX_NAME - (size_t)n);
    out[FRAME_MAX_NAME] = '\0';
}

static struct service *
add(struct fixture *fx, unsigned i)
{
    char name[FRAME_MAX_NAME + 1];
    ferry_err err = FERRY_OK;
    struct service *svc;

    name_of(i, name);
    svc = broker_service(&fx->broker, slice_str(name), true, &err);
    assert_non_null(svc);
    return svc;
}

static void
drop(struct fixture *fx, unsigned i)
{
    char name[FRAME_MAX_NAME + 1];
    struct service *svc;

    name_of(i, name);
    svc = smap_get(&fx->broker.services, name, strlen(name));
    assert_non_null(svc);
    /* Never had a worker, nothing waits: the broker frees it at once. */
    broker_maybe_free_service(&fx->broker, svc);
    assert_null(smap_get(&fx->broker.services, name, strlen(name)));
}

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    assert_int_equal(config_init(&fx->cfg), FERRY_OK);
    fx->cfg.max_services = 2 * N_SERVICES;
    assert_int_equal(loop_init(&fx->loop, &fx->cfg), FERRY_OK);
    assert_int_equal(broker_init(&fx->broker, &fx->loop), FERRY_OK);
    /* Created in reverse, so the table's order is not the names'. */
    for (unsigned i = N_SERVICES; i-- > 0;) {
        service_count_request(add(fx, i));
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;

    broker_release(&fx->broker);
    loop_release(&fx->loop);
    config_release(&fx->cfg);
    free(fx);
    return 0;
}

/* Renders doc a step at a time into out; checks each step's size and
 * returns the number of steps. between(i) runs after step i. */
static size_t
steps(struct fixture *fx, enum render_doc doc, struct buf *out,
      void (*between)(struct fixture *fx, size_t i))
{
    struct render r;
    bool done = false;
    size_t n = 0;

    render_init(&r, &fx->broker, doc);
    while (!done) {
        size_t before = buf_len(out);
        assert_int_equal(render_step(&r, out, &done), FERRY_OK);
        assert_true(buf_len(out) - before <= SLICE_MAX);
        if (between != NULL) {
            between(fx, n);
        }
        n++;
    }
    render_release(&r);
    return n;
}

static void
assert_same_as_whole(struct fixture *fx, enum render_doc doc)
{
    struct buf sliced, whole;
    size_t n;

    buf_init(&sliced);
    buf_init(&whole);
    n = steps(fx, doc, &sliced, NULL);
    assert_int_equal(render_all(&fx->broker, doc, &whole), FERRY_OK);
    /* Uptime, CPU and RSS move between the two; compare up to them. */
    if (doc == RENDER_SERVICES) {
        assert_int_equal(buf_len(&sliced), buf_len(&whole));
        assert_memory_equal(buf_head(&sliced), buf_head(&whole),
                            buf_len(&whole));
    }
    assert_true(n > 2);
    buf_release(&sliced);
    buf_release(&whole);
}

static void
test_slices_make_the_whole(void **state)
{
    assert_same_as_whole(*state, RENDER_SERVICES);
    assert_same_as_whole(*state, RENDER_STATS);
    assert_same_as_whole(*state, RENDER_METRICS);
}

/* The names of the "services" array of a JSON document, in order. */
static json_t *
names_of(const struct buf *b)
{
    json_error_t jerr;
    json_t *doc =
        json_loadb((const char *)buf_head(b), buf_len(b), 0, &jerr);
    json_t *arr, *names = json_array();
    size_t i;
    json_t *v;

    if (doc == NULL) {
        fail_msg("not JSON: %s at %d", jerr.text, jerr.position);
    }
    arr = json_object_get(doc, "services");
    json_array_foreach(arr, i, v) {
        json_array_append(names, json_object_get(v, "name"));
    }
    json_decref(doc);
    return names;
}

static void
test_json_in_name_order_once(void **state)
{
    struct fixture *fx = *state;
    struct buf out;
    json_t *names, *doc;
    const char *prev = "";
    size_t i;
    json_t *v;

    buf_init(&out);
    steps(fx, RENDER_STATS, &out, NULL);
    names = names_of(&out);
    /* The four built-ins and the thousand. */
    assert_int_equal(json_array_size(names), N_SERVICES + BUILTINS);
    json_array_foreach(names, i, v) {
        assert_true(strcmp(prev, json_string_value(v)) < 0);
        prev = json_string_value(v);
    }
    doc = json_loadb((const char *)buf_head(&out), buf_len(&out), 0, NULL);
    /* requests is the sum over the services listed. */
    assert_int_equal(json_integer_value(json_object_get(doc, "requests")),
                     N_SERVICES);
    assert_non_null(json_object_get(doc, "uptime_s"));
    json_decref(doc);
    json_decref(names);
    buf_release(&out);
}

/* After the first slice: services 0 (already out) and 999 (still to
 * come) go away, 1000 (after the cursor) and "a" (before it) come. */
static void
churn(struct fixture *fx, size_t i)
{
    if (i != 0) {
        return;
    }
    drop(fx, 0);
    drop(fx, N_SERVICES - 1);
    add(fx, N_SERVICES);
    assert_non_null(broker_service(&fx->broker, slice_str("a"), true,
                                   &(ferry_err){FERRY_OK}));
}

static void
test_table_changes_between_slices(void **state)
{
    struct fixture *fx = *state;
    char first[FRAME_MAX_NAME + 1], last[FRAME_MAX_NAME + 1],
        added[FRAME_MAX_NAME + 1];
    struct buf out;
    json_t *names;
    size_t i, n_first = 0, n_last = 0, n_added = 0, n_a = 0;
    json_t *v;

    name_of(0, first);
    name_of(N_SERVICES - 1, last);
    name_of(N_SERVICES, added);
    buf_init(&out);
    steps(fx, RENDER_SERVICES, &out, churn);
    names = names_of(&out);
    json_array_foreach(names, i, v) {
        const char *s = json_string_value(v);
        n_first += strcmp(s, first) == 0;
        n_last += strcmp(s, last) == 0;
        n_added += strcmp(s, added) == 0;
        n_a += strcmp(s, "a") == 0;
    }
    /* Rendered before it went; gone before its turn; after the cursor;
     * before the cursor. */
    assert_int_equal(n_first, 1);
    assert_int_equal(n_last, 0);
    assert_int_equal(n_added, 1);
    assert_int_equal(n_a, 0);
    assert_int_equal(json_array_size(names), N_SERVICES + BUILTINS);
    json_decref(names);
    buf_release(&out);
}

#define N_BUSY 40      /* services with many workers */
#define N_WORKERS 2000 /* workers of each */

/* Fake registrations: the services document lists a service's workers,
 * so 32 services of 2,000 workers are megabytes of one unit of work. */
struct fake_workers {
    struct conn conn;
    struct session worker;
    struct wreg regs[N_WORKERS];
    struct wreg *ptrs[N_WORKERS];
};

static struct service *busy[N_BUSY]; /* with fake regs until teardown */
static struct fake_workers *fw;      /* ... */

/* The broker must not free the fake registrations. */
static int
teardown_busy(void **state)
{
    for (unsigned i = 0; i < N_BUSY; i++) {
        if (busy[i] != NULL) {
            busy[i]->regs = NULL;
            busy[i]->n_regs = 0;
            busy[i] = NULL;
        }
    }
    free(fw);
    fw = NULL;
    return teardown(state);
}

static void
test_slices_bounded_with_many_workers(void **state)
{
    struct fixture *fx = *state;
    struct buf out;
    struct render r;
    bool done = false;
    size_t biggest = 0, steps_n = 0;
    json_t *names;

    fw = calloc(1, sizeof(*fw));
    assert_non_null(fw);
    fw->conn.name = "w";
    fw->conn.peer = "127.0.0.1:1";
    fw->worker.conn = &fw->conn;
    for (size_t i = 0; i < N_WORKERS; i++) {
        fw->regs[i].worker = &fw->worker;
        fw->regs[i].credit = 1;
        fw->ptrs[i] = &fw->regs[i];
    }
    for (unsigned i = 0; i < N_BUSY; i++) {
        busy[i] = add(fx, i);
        assert_int_equal(busy[i]->n_regs, 0);
        for (size_t j = 0; j < N_WORKERS; j++) {
            fw->regs[j].svc = busy[i];
        }
        busy[i]->regs = fw->ptrs;
        busy[i]->n_regs = N_WORKERS;
    }
    /* One busy service's object, for the bound. */
    {
        json_t *o = builtin_service_json(&fx->broker, busy[0]);
        char *text = json_dumps(o, JSON_COMPACT);
        biggest = strlen(text);
        free(text);
        json_decref(o);
    }
    assert_true(biggest > 100 * 1024);
    buf_init(&out);
    render_init(&r, &fx->broker, RENDER_SERVICES);
    while (!done) {
        size_t before = buf_len(&out);
        assert_int_equal(render_step(&r, &out, &done), FERRY_OK);
        /* A slice ends after the object that passed RENDER_SLICE. */
        assert_true(buf_len(&out) - before <= RENDER_SLICE + biggest + 1);
        steps_n++;
    }
    render_release(&r);
    names = names_of(&out);
    assert_int_equal(json_array_size(names), N_SERVICES + BUILTINS);
    assert_true(steps_n > N_BUSY / 2);
    json_decref(names);
    buf_release(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slices_make_the_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_in_name_order_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slices_bounded_with_many_workers,
                                        setup, teardown_busy),
        cmocka_unit_test_setup_teardown(test_table_changes_between_slices,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
