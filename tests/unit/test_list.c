/* SPDX-License-Identifier: MIT */
/*
 * test_list.c - the intrusive doubly linked list of core/list.h: pushes
 * keep order, a node removes itself from whichever list holds it (and
 * twice is harmless), and list_splice moves a whole list to another's
 * tail in order, leaving the first empty, with either side empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/list.h"

struct item {
    int v;
    struct list node;
};

/* Checks that l holds exactly want[0..n) in order, both ways round. */
static void
check_list(const struct list *l, const int *want, size_t n)
{
    const struct list *x = l->next;
    size_t i = 0;

    for (; x != l; x = x->next, i++) {
        assert_true(i < n);
        assert_int_equal(container_of(x, struct item, node)->v, want[i]);
        assert_ptr_equal(x->next->prev, x);
    }
    assert_int_equal(i, n);
    for (x = l->prev; x != l; x = x->prev) {
        assert_int_equal(container_of(x, struct item, node)->v, want[--i]);
    }
    assert_int_equal(list_is_empty(l), n == 0);
}

static void
fill(struct list *l, struct item *it, int from, int n)
{
    for (int i = 0; i < n; i++) {
        it[i].v = from + i;
        list_push_back(l, &it[i].node);
    }
}

static void
test_push_and_remove(void **state)
{
    struct list l;
    struct item it[4];

    (void)state;
    list_init(&l);
    check_list(&l, NULL, 0);
    fill(&l, it, 1, 4);
    check_list(&l, (const int[]){1, 2, 3, 4}, 4);
    list_remove(&it[1].node);
    check_list(&l, (const int[]){1, 3, 4}, 3);
    list_remove(&it[1].node); /* on no list now: harmless */
    list_remove(&it[3].node);
    list_remove(&it[0].node);
    check_list(&l, (const int[]){3}, 1);
    list_remove(&it[2].node);
    check_list(&l, NULL, 0);
}

static void
test_splice(void **state)
{
    struct list a, b;
    struct item x[3], y[2];

    (void)state;
    list_init(&a);
    list_init(&b);
    fill(&a, x, 1, 3);
    fill(&b, y, 10, 2);
    list_splice(&b, &a);
    check_list(&a, NULL, 0);
    check_list(&b, (const int[]){10, 11, 1, 2, 3}, 5);
    /* Nodes moved keep removing themselves from their new list. */
    list_remove(&x[0].node);
    check_list(&b, (const int[]){10, 11, 2, 3}, 4);
    /* An empty list moved: nothing changes. */
    list_splice(&b, &a);
    check_list(&b, (const int[]){10, 11, 2, 3}, 4);
    /* Into an empty list: all of it, in order. */
    list_splice(&a, &b);
    check_list(&b, NULL, 0);
    check_list(&a, (const int[]){10, 11, 2, 3}, 4);
    /* The emptied head takes pushes again. */
    list_push_back(&b, &x[0].node);
    check_list(&b, (const int[]){1}, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_and_remove),
        cmocka_unit_test(test_splice),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
