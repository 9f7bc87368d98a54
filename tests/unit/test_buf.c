/* SPDX-License-Identifier: MIT */
/*
 * test_buf.c - connection buffers: append and consume, sliding unread
 * bytes down instead of growing, prepare/commit, and shrinking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

static void
test_append_consume(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(buf_append(&b, "hello", 5), FERRY_OK);
    assert_int_equal(buf_append(&b, " world", 6), FERRY_OK);
    assert_int_equal(buf_len(&b), 11);
    assert_memory_equal(buf_head(&b), "hello world", 11);
    buf_consume(&b, 6);
    assert_int_equal(buf_len(&b), 5);
    assert_memory_equal(buf_head(&b), "world", 5);
    buf_consume(&b, 5);
    /* Empty resets to the start. */
    assert_int_equal(b.rpos, 0);
    assert_int_equal(b.wpos, 0);
    buf_release(&b);
    assert_null(b.data);
}

static void
test_slides_before_growing(void **state)
{
    struct buf b;
    uint8_t chunk[1000];
    size_t cap;

    memset(chunk, 'x', sizeof(chunk));
    buf_init(&b);
    assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), FERRY_OK);
    cap = b.cap;
    buf_consume(&b, 900);
    /* Room at the end is short, but the consumed front is enough. */
    assert_int_equal(buf_reserve(&b, cap - 200), FERRY_OK);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.rpos, 0);
    assert_int_equal(buf_len(&b), 100);
    /* More than fits: grows, keeping the unread bytes. */
    assert_int_equal(buf_reserve(&b, cap * 3), FERRY_OK);
    assert_true(b.cap >= cap * 3 + 100);
    assert_int_equal(buf_len(&b), 100);
    assert_int_equal(buf_head(&b)[99], 'x');
    buf_release(&b);
}

static void
test_prepare_commit(void **state)
{
    struct buf b;
    uint8_t *p;

    buf_init(&b);
    p = buf_prepare(&b, 64);
    assert_non_null(p);
    memcpy(p, "abc", 3);
    buf_commit(&b, 3);
    assert_int_equal(buf_len(&b), 3);
    assert_memory_equal(buf_head(&b), "abc", 3);
    assert_true(buf_room(&b) >= 61);
    buf_clear(&b);
    assert_int_equal(buf_len(&b), 0);
    assert_non_null(b.data);
    buf_release(&b);
}

static void
test_shrink(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_reserve(&b, 1 << 20), FERRY_OK);
    buf_commit(&b, 10);
    buf_shrink(&b, 4096);
    /* Not empty: kept. */
    assert_non_null(b.data);
    buf_consume(&b, 10);
    buf_shrink(&b, 4096);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_consume),
        cmocka_unit_test(test_slides_before_growing),
        cmocka_unit_test(test_prepare_commit),
        cmocka_unit_test(test_shrink),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
