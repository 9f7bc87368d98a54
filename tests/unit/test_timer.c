/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c - the loop's deadline heap: expiry order, stopping and
 * re-arming in any position, ties, and callbacks that re-arm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/list.h"
#include "core/timer.h"

struct item {
    struct timer t; /* the timer under test */
    int id;         /* which item */
    int *log;       /* borrowed: where fired ids go */
    size_t *n_log;  /* borrowed: entries in log */
};

static void
item_cb(struct timer *t)
{
    struct item *it = container_of(t, struct item, t);

    it->log[(*it->n_log)++] = it->id;
}

static void
test_fires_in_order(void **state)
{
    struct timer_heap h;
    struct item items[200];
    int log[200];
    size_t n_log = 0;
    uint64_t last = 0;

    timer_heap_init(&h);
    srand(7);
    for (int i = 0; i < 200; i++) {
        items[i].id = i;
        items[i].log = log;
        items[i].n_log = &n_log;
        timer_init(&items[i].t, item_cb);
        assert_int_equal(
            timer_start(&h, &items[i].t, (uint64_t)(rand() % 1000) + 1),
            FERRY_OK);
    }
    assert_int_equal(timer_heap_run(&h, 0), 0);
    assert_int_equal(timer_heap_run(&h, 1000), 200);
    assert_int_equal(n_log, 200);
    for (size_t i = 0; i < n_log; i++) {
        uint64_t when = timer_when(&items[log[i]].t);
        assert_true(when >= last);
        last = when;
        assert_false(timer_is_armed(&items[log[i]].t));
    }
    assert_int_equal(timer_heap_next(&h), UINT64_MAX);
    timer_heap_release(&h);
}

static void
test_stop_and_rearm(void **state)
{
    struct timer_heap h;
    struct item items[50];
    int log[50];
    size_t n_log = 0;

    timer_heap_init(&h);
    for (int i = 0; i < 50; i++) {
        items[i].id = i;
        items[i].log = log;
        items[i].n_log = &n_log;
        timer_init(&items[i].t, item_cb);
        timer_start(&h, &items[i].t, (uint64_t)(100 + (i * 37) % 50));
    }
    /* Stop every third, move every fifth far away. */
    for (int i = 0; i < 50; i += 3) {
        timer_stop(&h, &items[i].t);
        timer_stop(&h, &items[i].t); /* harmless twice */
    }
    for (int i = 1; i < 50; i += 5) {
        timer_start(&h, &items[i].t, 10000);
    }
    assert_int_equal(timer_heap_next(&h) >= 100, 1);
    timer_heap_run(&h, 1000);
    for (size_t k = 0; k < n_log; k++) {
        assert_int_not_equal(log[k] % 3, 0);
        assert_int_not_equal(log[k] % 5, 1);
    }
    assert_int_equal(timer_heap_next(&h), 10000);
    timer_heap_run(&h, 10000);
    for (int i = 0; i < 50; i++) {
        assert_false(timer_is_armed(&items[i].t));
    }
    timer_heap_release(&h);
}

static void
test_ties_fire_in_arming_order(void **state)
{
    struct timer_heap h;
    struct item items[10];
    int log[10];
    size_t n_log = 0;

    timer_heap_init(&h);
    for (int i = 0; i < 10; i++) {
        items[i].id = i;
        items[i].log = log;
        items[i].n_log = &n_log;
        timer_init(&items[i].t, item_cb);
        timer_start(&h, &items[i].t, 5);
    }
    timer_heap_run(&h, 5);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(log[i], i);
    }
    timer_heap_release(&h);
}

/* A periodic timer: re-arms itself three times from its callback. */
struct periodic {
    struct timer t;       /* the timer */
    struct timer_heap *h; /* borrowed */
    int fired;            /* times fired */
};

static void
periodic_cb(struct timer *t)
{
    struct periodic *p = container_of(t, struct periodic, t);

    if (++p->fired < 3) {
        timer_start(p->h, &p->t, timer_when(t) + 10);
    }
}

static void
test_callback_rearms(void **state)
{
    struct timer_heap h;
    struct periodic p = {.h = &h};

    timer_heap_init(&h);
    timer_init(&p.t, periodic_cb);
    timer_start(&h, &p.t, 10);
    assert_int_equal(timer_heap_run(&h, 15), 1);
    assert_int_equal(timer_heap_next(&h), 20);
    assert_int_equal(timer_heap_run(&h, 100), 2);
    assert_int_equal(p.fired, 3);
    assert_false(timer_is_armed(&p.t));
    timer_heap_release(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_order),
        cmocka_unit_test(test_stop_and_rearm),
        cmocka_unit_test(test_ties_fire_in_arming_order),
        cmocka_unit_test(test_callback_rearms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
