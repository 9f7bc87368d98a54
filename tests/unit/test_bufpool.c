/* SPDX-License-Identifier: MIT */
/*
 * test_bufpool.c - the loop's free list of buffer blocks: a block put back
 * is the next one handed out, the free list never holds more than its
 * bound, a buffer that grew past one block is freed rather than kept, and
 * every buffer given a block is counted until it is put back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/bufpool.h"

static void
test_get_put_reuses_block(void **state)
{
    struct bufpool p;
    struct buf a, b;
    uint8_t *first;

    bufpool_init(&p, 4);
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(bufpool_get(&p, &a), FERRY_OK);
    assert_non_null(a.data);
    assert_int_equal(a.cap, BUFPOOL_BLOCK);
    assert_int_equal(buf_len(&a), 0);
    assert_int_equal(p.n_held, 1);
    assert_int_equal(p.n_free, 0);
    assert_int_equal(buf_append(&a, "frame", 5), FERRY_OK);
    first = a.data;

    /* Put back with bytes still in it: they are dropped. */
    bufpool_put(&p, &a);
    assert_null(a.data);
    assert_int_equal(a.cap, 0);
    assert_int_equal(buf_len(&a), 0);
    assert_int_equal(p.n_held, 0);
    assert_int_equal(p.n_free, 1);

    /* The block put back last is the one handed out next. */
    assert_int_equal(bufpool_get(&p, &b), FERRY_OK);
    assert_ptr_equal(b.data, first);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(p.n_free, 0);
    bufpool_put(&p, &b);
    bufpool_release(&p);
    assert_int_equal(p.n_free, 0);
    assert_null(p.free);
}

static void
test_free_list_bounded(void **state)
{
    struct bufpool p;
    struct buf v[5];

    bufpool_init(&p, 2);
    for (size_t i = 0; i < 5; i++) {
        buf_init(&v[i]);
        assert_int_equal(bufpool_get(&p, &v[i]), FERRY_OK);
    }
    assert_int_equal(p.n_held, 5);
    for (size_t i = 0; i < 5; i++) {
        bufpool_put(&p, &v[i]);
        assert_null(v[i].data);
        assert_true(p.n_free <= 2);
    }
    assert_int_equal(p.n_free, 2);
    assert_int_equal(p.n_held, 0);
    bufpool_release(&p);
}

static void
test_grown_buffer_freed(void **state)
{
    struct bufpool p;
    struct buf b;

    bufpool_init(&p, 4);
    buf_init(&b);
    assert_int_equal(bufpool_get(&p, &b), FERRY_OK);
    /* A large frame makes it grow past the block. */
    assert_int_equal(buf_reserve(&b, BUFPOOL_BLOCK + 1), FERRY_OK);
    assert_true(b.cap > BUFPOOL_BLOCK);
    bufpool_put(&p, &b);
    assert_null(b.data);
    assert_int_equal(p.n_held, 0);
    assert_int_equal(p.n_free, 0);
    bufpool_release(&p);
}

static void
test_put_without_memory(void **state)
{
    struct bufpool p;
    struct buf b;

    bufpool_init(&p, 4);
    buf_init(&b);
    bufpool_put(&p, &b);
    assert_null(b.data);
    assert_int_equal(p.n_held, 0);
    assert_int_equal(p.n_free, 0);
    bufpool_release(&p);
}

static void
test_bound_zero_keeps_nothing(void **state)
{
    struct bufpool p;
    struct buf b;

    bufpool_init(&p, 0);
    buf_init(&b);
    assert_int_equal(bufpool_get(&p, &b), FERRY_OK);
    bufpool_put(&p, &b);
    assert_int_equal(p.n_free, 0);
    assert_null(p.free);
    bufpool_release(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_reuses_block),
        cmocka_unit_test(test_free_list_bounded),
        cmocka_unit_test(test_grown_buffer_freed),
        cmocka_unit_test(test_put_without_memory),
        cmocka_unit_test(test_bound_zero_keeps_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
