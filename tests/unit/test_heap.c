/* SPDX-License-Identifier: MIT */
/*
 * test_heap.c - the intrusive min-heap shared by ferryd's timers and
 * libferry's call table: order under random pushes and removals from any
 * slot, moving a node by pushing it again, ties in push order, handing
 * over every node at once, and nodes left idle on release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/heap.h"

#define N 500

/* Checks the heap property and that every node knows its slot. */
static void
check_heap(const struct heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct heap_node *x = h->v[i], *p;
        assert_int_equal(x->slot, i);
        if (i == 0) {
            continue;
        }
        p = h->v[(i - 1) / 2];
        assert_true(p->key < x->key || (p->key == x->key && p->seq < x->seq));
    }
}

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
test_pops_in_key_order(void **state)
{
    struct heap h;
    struct heap_node nodes[N], *x;
    uint64_t s = 12345, last = 0;
    size_t popped = 0;

    heap_init(&h);
    assert_null(heap_first(&h));
    for (size_t i = 0; i < N; i++) {
        heap_node_init(&nodes[i]);
        assert_false(heap_node_is_queued(&nodes[i]));
        assert_int_equal(heap_push(&h, &nodes[i], next_rand(&s) % 1000),
                         FERRY_OK);
        assert_true(heap_node_is_queued(&nodes[i]));
    }
    assert_int_equal(h.n, N);
    check_heap(&h);
    while ((x = heap_first(&h)) != NULL) {
        assert_true(x->key >= last);
        last = x->key;
        heap_remove(&h, x);
        assert_false(heap_node_is_queued(x));
        popped++;
    }
    assert_int_equal(popped, N);
    assert_int_equal(h.n, 0);
    heap_release(&h);
}

static void
test_remove_from_any_slot(void **state)
{
    struct heap h;
    struct heap_node nodes[N];
    uint64_t s = 777;
    size_t left = N;

    heap_init(&h);
    for (size_t i = 0; i < N; i++) {
        heap_node_init(&nodes[i]);
        assert_int_equal(heap_push(&h, &nodes[i], next_rand(&s) % 100),
                         FERRY_OK);
    }
    /* Every other node, wherever it sits, checking the order each time. */
    for (size_t i = 0; i < N; i += 2) {
        heap_remove(&h, &nodes[i]);
        left--;
        assert_false(heap_node_is_queued(&nodes[i]));
        assert_int_equal(h.n, left);
        check_heap(&h);
    }
    /* Removing an idle node again changes nothing. */
    heap_remove(&h, &nodes[0]);
    assert_int_equal(h.n, left);
    for (size_t i = 1; i < N; i += 2) {
        assert_true(heap_node_is_queued(&nodes[i]));
        assert_ptr_equal(h.v[nodes[i].slot], &nodes[i]);
    }
    heap_release(&h);
}

static void
test_push_again_moves(void **state)
{
    struct heap h;
    struct heap_node nodes[50];

    heap_init(&h);
    for (size_t i = 0; i < 50; i++) {
        heap_node_init(&nodes[i]);
        assert_int_equal(heap_push(&h, &nodes[i], 100 + i), FERRY_OK);
    }
    assert_ptr_equal(heap_first(&h), &nodes[0]);
    /* Later than all: no longer first, still there once. */
    assert_int_equal(heap_push(&h, &nodes[0], 1000), FERRY_OK);
    assert_int_equal(h.n, 50);
    assert_int_equal(nodes[0].key, 1000);
    assert_ptr_equal(heap_first(&h), &nodes[1]);
    check_heap(&h);
    /* Earlier than all: first. */
    assert_int_equal(heap_push(&h, &nodes[30], 5), FERRY_OK);
    assert_int_equal(h.n, 50);
    assert_ptr_equal(heap_first(&h), &nodes[30]);
    check_heap(&h);
    /* The same key again counts as pushed now: behind its equals. */
    assert_int_equal(heap_push(&h, &nodes[40], 5), FERRY_OK);
    assert_int_equal(heap_push(&h, &nodes[30], 5), FERRY_OK);
    assert_ptr_equal(heap_first(&h), &nodes[40]);
    heap_remove(&h, &nodes[40]);
    assert_ptr_equal(heap_first(&h), &nodes[30]);
    check_heap(&h);
    heap_release(&h);
}

static void
test_ties_in_push_order(void **state)
{
    struct heap h;
    struct heap_node nodes[20];

    heap_init(&h);
    for (size_t i = 0; i < 20; i++) {
        heap_node_init(&nodes[i]);
        assert_int_equal(heap_push(&h, &nodes[i], i % 2 ? 7 : 3), FERRY_OK);
    }
    /* The even ones (key 3) in order, then the odd ones (key 7). */
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = k; i < 20; i += 2) {
            assert_ptr_equal(heap_first(&h), &nodes[i]);
            heap_remove(&h, &nodes[i]);
        }
    }
    assert_null(heap_first(&h));
    heap_release(&h);
}

static void
test_take_all_and_release(void **state)
{
    struct heap h;
    struct heap_node nodes[100], **all;
    bool seen[100] = {false};
    size_t n;

    heap_init(&h);
    assert_null(heap_take_all(&h, &n));
    assert_int_equal(n, 0);
    for (size_t i = 0; i < 100; i++) {
        heap_node_init(&nodes[i]);
        assert_int_equal(heap_push(&h, &nodes[i], 100 - i), FERRY_OK);
    }
    all = heap_take_all(&h, &n);
    assert_non_null(all);
    assert_int_equal(n, 100);
    assert_int_equal(h.n, 0);
    assert_null(heap_first(&h));
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(all[i] - nodes);
        assert_true(k < 100);
        assert_false(seen[k]);
        seen[k] = true;
        assert_false(heap_node_is_queued(all[i]));
    }
    free(all);
    /* Still usable; release leaves what was in it idle. */
    assert_int_equal(heap_push(&h, &nodes[3], 9), FERRY_OK);
    assert_int_equal(heap_push(&h, &nodes[4], 8), FERRY_OK);
    assert_ptr_equal(heap_first(&h), &nodes[4]);
    heap_release(&h);
    assert_false(heap_node_is_queued(&nodes[3]));
    assert_false(heap_node_is_queued(&nodes[4]));
    assert_null(heap_first(&h));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_in_key_order),
        cmocka_unit_test(test_remove_from_any_slot),
        cmocka_unit_test(test_push_again_moves),
        cmocka_unit_test(test_ties_in_push_order),
        cmocka_unit_test(test_take_all_and_release),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
