/* SPDX-License-Identifier: MIT */
/*
 * test_topic_ring.c - ferry.topic's message store and rings: a message
 * stored once and counted once however many rings hold it, freed with its
 * last reference; the store's bytes and its oldest-first order; rings in
 * order across wrap-around and growth, bounded by max, giving memory back
 * when drained; a failed growth leaving ring and message as they were
 * (malloc wrapped, -Wl,--wrap); and a random run of pushes and pops over
 * several rings checked against a model of who holds what.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic/ring.h"

/* Allocations left before one fails; SIZE_MAX = never. */
static size_t fail_after = SIZE_MAX;

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

void *
__wrap_malloc(size_t n)
{
    if (fail_after == 0) {
        return NULL;
    }
    if (fail_after != SIZE_MAX) {
        fail_after--;
    }
    return __real_malloc(n);
}

static struct slice
str(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static void
test_store_once(void **state)
{
    struct topic_store st;
    struct topic_ring r[3];
    struct topic_msg *m, *m2;
    struct topic_slot sl;

    topic_store_init(&st);
    m = topic_store_add(&st, str("a.b"), str("hello"));
    assert_non_null(m);
    assert_int_equal(m->refs, 0);
    assert_int_equal(st.n, 1);
    assert_int_equal(st.bytes, sizeof(*m) + 3 + 5);
    assert_int_equal(topic_msg_size(m), sizeof(*m) + 8);
    assert_memory_equal(topic_msg_subject(m).p, "a.b", 3);
    assert_memory_equal(topic_msg_payload(m).p, "hello", 5);
    for (int i = 0; i < 3; i++) {
        topic_ring_init(&r[i], 4);
        assert_int_equal(topic_ring_push(&r[i], m, 10 + i), FERRY_OK);
    }
    /* One message, three references, still one in the store. */
    assert_int_equal(m->refs, 3);
    assert_int_equal(st.n, 1);
    m2 = topic_store_add(&st, str("c"), str(""));
    assert_non_null(m2);
    assert_ptr_equal(topic_store_oldest(&st), m);
    assert_true(topic_ring_pop(&r[0], &sl));
    assert_ptr_equal(sl.msg, m);
    assert_int_equal(sl.seq, 10);
    topic_msg_unref(&st, sl.msg);
    assert_int_equal(m->refs, 2);
    topic_ring_release(&r[1], &st);
    assert_int_equal(st.n, 2);
    topic_ring_release(&r[2], &st);
    /* The last reference freed it; the newer one is the oldest now. */
    assert_int_equal(st.n, 1);
    assert_ptr_equal(topic_store_oldest(&st), m2);
    assert_int_equal(st.bytes, sizeof(*m2) + 1);
    /* One never referenced is freed directly. */
    topic_store_free(&st, m2);
    assert_int_equal(st.n, 0);
    assert_int_equal(st.bytes, 0);
    assert_null(topic_store_oldest(&st));
    topic_ring_release(&r[0], &st);
    topic_store_release(&st);
}

static void
test_ring_order_and_bounds(void **state)
{
    struct topic_store st;
    struct topic_ring r;
    struct topic_msg *m[40];
    struct topic_slot sl;
    uint64_t next = 1, want = 1;
    int in = 0, out = 0;

    topic_store_init(&st);
    for (int i = 0; i < 40; i++) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        m[i] = topic_store_add(&st, str("s"), str(p));
        assert_non_null(m[i]);
        /* The test's own reference: the rings reuse them. */
        topic_msg_ref(m[i]);
    }
    topic_ring_init(&r, 13);
    assert_null(topic_ring_head(&r));
    assert_false(topic_ring_pop(&r, &sl));
    /* Fill to max through growth (8, 16 slots). */
    while (!topic_ring_is_full(&r)) {
        assert_int_equal(topic_ring_push(&r, m[in++], next++), FERRY_OK);
    }
    assert_int_equal(r.n, 13);
    assert_int_equal(r.cap, 16);
    /* Pops and pushes around the wrap: always in order. */
    for (int k = 0; k < 200; k++) {
        if (k % 3 != 2 && r.n > 0) {
            assert_ptr_equal(topic_ring_head(&r)->msg, m[out % 40]);
            assert_true(topic_ring_pop(&r, &sl));
            assert_ptr_equal(sl.msg, m[out % 40]);
            assert_int_equal(sl.seq, want++);
            topic_msg_unref(&st, sl.msg);
            out++;
        } else if (!topic_ring_is_full(&r) && in - out < 40) {
            assert_int_equal(topic_ring_push(&r, m[in % 40], next++), FERRY_OK);
            in++;
        }
        assert_true(r.n <= r.max);
        assert_int_equal(r.n, in - out);
    }
    /* Drained: a ring that grew gives its slots back. */
    while (topic_ring_pop(&r, &sl)) {
        assert_int_equal(sl.seq, want++);
        topic_msg_unref(&st, sl.msg);
    }
    assert_true(r.cap <= 8);
    /* A max of 0 means 1. */
    topic_ring_release(&r, &st);
    topic_ring_init(&r, 0);
    assert_int_equal(r.max, 1);
    assert_int_equal(topic_ring_push(&r, m[0], 1), FERRY_OK);
    assert_true(topic_ring_is_full(&r));
    topic_ring_release(&r, &st);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(m[i]->refs, 1);
        topic_msg_unref(&st, m[i]);
    }
    assert_int_equal(st.n, 0);
    topic_store_release(&st);
}

static void
test_growth_failure(void **state)
{
    struct topic_store st;
    struct topic_ring r;
    struct topic_msg *m;
    struct topic_slot sl;

    topic_store_init(&st);
    m = topic_store_add(&st, str("x"), str("y"));
    assert_non_null(m);
    topic_ring_init(&r, 100);
    /* The first slots. */
    fail_after = 0;
    assert_int_equal(topic_ring_push(&r, m, 1), FERRY_ENOMEM);
    fail_after = SIZE_MAX;
    assert_int_equal(r.n, 0);
    assert_int_equal(m->refs, 0);
    for (uint64_t i = 1; i <= 8; i++) {
        assert_int_equal(topic_ring_push(&r, m, i), FERRY_OK);
    }
    /* A doubling: the ring keeps its 8 and the reference count. */
    fail_after = 0;
    assert_int_equal(topic_ring_push(&r, m, 9), FERRY_ENOMEM);
    fail_after = SIZE_MAX;
    assert_int_equal(r.n, 8);
    assert_int_equal(m->refs, 8);
    assert_int_equal(topic_ring_push(&r, m, 9), FERRY_OK);
    for (uint64_t i = 1; i <= 9; i++) {
        assert_true(topic_ring_pop(&r, &sl));
        assert_int_equal(sl.seq, i);
        topic_msg_unref(&st, sl.msg);
    }
    /* The ninth unref freed it. */
    assert_int_equal(st.n, 0);
    /* A message that cannot be stored leaves the store alone. */
    fail_after = 0;
    assert_null(topic_store_add(&st, str("x"), str("y")));
    fail_after = SIZE_MAX;
    assert_int_equal(st.n, 0);
    assert_int_equal(st.bytes, 0);
    topic_ring_release(&r, &st);
    topic_store_release(&st);
}

#define RINGS 7
#define MSGS 64

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
test_random_model(void **state)
{
    struct topic_store st;
    struct topic_ring r[RINGS];
    /* The model: which message (index into live) each ring holds. */
    struct topic_msg *held[RINGS][64];
    size_t n_held[RINGS] = {0};
    uint64_t seq[RINGS] = {0}, popped[RINGS] = {0};
    uint64_t rng = 0x1234567;

    topic_store_init(&st);
    for (int i = 0; i < RINGS; i++) {
        topic_ring_init(&r[i], 1 + (uint32_t)(i * 9));
    }
    for (int round = 0; round < 20000; round++) {
        uint64_t x = next_rand(&rng);
        int i = (int)(x % RINGS);

        if ((x >> 8) % 3 == 0) {
            /* Publish: one message into a random set of rings. */
            struct topic_msg *m = topic_store_add(&st, str("t"), str("p"));
            uint64_t mask = x >> 16;

            assert_non_null(m);
            for (int k = 0; k < RINGS; k++) {
                if ((mask >> k & 1) && !topic_ring_is_full(&r[k])) {
                    assert_int_equal(topic_ring_push(&r[k], m, ++seq[k]),
                                     FERRY_OK);
                    held[k][n_held[k]++] = m;
                }
            }
            if (m->refs == 0) {
                topic_store_free(&st, m);
            }
        } else if (n_held[i] > 0) {
            struct topic_slot sl;

            assert_true(topic_ring_pop(&r[i], &sl));
            assert_ptr_equal(sl.msg, held[i][0]);
            assert_int_equal(sl.seq, ++popped[i]);
            memmove(held[i], held[i] + 1, (n_held[i] - 1) * sizeof(held[i][0]));
            n_held[i]--;
            topic_msg_unref(&st, sl.msg);
        }
        if (round % 1000 == 0) {
            /* Each live message is held exactly refs times, and the
             * store holds exactly the messages some ring holds. */
            uint64_t n = 0;
            for (struct list *l = st.fifo.next; l != &st.fifo; l = l->next) {
                struct topic_msg *m = container_of(l, struct topic_msg, node);
                uint32_t refs = 0;
                for (int k = 0; k < RINGS; k++) {
                    for (size_t j = 0; j < n_held[k]; j++) {
                        refs += held[k][j] == m;
                    }
                }
                assert_int_equal(refs, m->refs);
                assert_true(refs > 0);
                n++;
            }
            assert_int_equal(n, st.n);
        }
    }
    for (int i = 0; i < RINGS; i++) {
        topic_ring_release(&r[i], &st);
    }
    assert_int_equal(st.n, 0);
    assert_int_equal(st.bytes, 0);
    topic_store_release(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_once),
        cmocka_unit_test(test_ring_order_and_bounds),
        cmocka_unit_test(test_growth_failure),
        cmocka_unit_test(test_random_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
