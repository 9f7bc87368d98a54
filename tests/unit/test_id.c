/* SPDX-License-Identifier: MIT */
/*
 * test_id.c - ferry.id's core (id_gen in src/servants/id.c) on a fake
 * clock, and its payload codec (src/servants/id_codec.c): ids strictly
 * increasing, the sequence rolling over into the next ms, a clock that
 * steps back refused with how far, the mark never passed and renewed
 * ahead, a restart that issues above the mark whatever the clock says,
 * and the payloads' bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "servants/id.h"
#include "servants/id_codec.h"

static uint8_t out[8 * ID_COUNT_MAX];

/* Takes count ids at now; asserts the core allowed it. */
static void
take(struct id_gen *g, uint64_t now, uint32_t count)
{
    uint64_t behind = 0;

    assert_int_equal(id_gen_check(g, now, count, &behind), ID_GEN_OK);
    id_gen_fill(g, now, count, out);
}

static void
test_increasing(void **state)
{
    struct id_gen g;
    struct id_parts p;
    uint64_t last = 0, now = 1000;
    int i;
    uint32_t k;

    id_gen_init(&g, 7, 0, now);
    id_gen_set_mark(&g, 1000000);
    for (i = 0; i < 2000; i++) {
        now += (uint64_t)(i % 3 == 0); /* the clock moves now and then */
        take(&g, now, 1 + (uint32_t)(i % 5));
        for (k = 0; k < 1 + (uint32_t)(i % 5); k++) {
            assert_true(id_get(out, k) > last);
            last = id_get(out, k);
        }
    }
    assert_true(id_split(last, &p));
    assert_int_equal(p.node, 7);
    assert_int_equal(p.unix_ms, now + (uint64_t)ID_EPOCH_UNIX_MS);
}

static void
test_rollover_takes_next_ms(void **state)
{
    struct id_gen g;
    struct id_parts p;
    uint64_t behind;

    id_gen_init(&g, 1, 0, 50);
    id_gen_set_mark(&g, 60);
    take(&g, 50, ID_SEQ_MAX + 1); /* fills ms 50 */
    id_split(id_get(out, ID_SEQ_MAX), &p);
    assert_int_equal(p.seq, ID_SEQ_MAX);
    assert_int_equal(p.unix_ms - ID_EPOCH_UNIX_MS, 50);
    take(&g, 50, 2); /* same clock: the next ms */
    id_split(id_get(out, 0), &p);
    assert_int_equal(p.unix_ms - ID_EPOCH_UNIX_MS, 51);
    assert_int_equal(p.seq, 0);
    id_split(id_get(out, 1), &p);
    assert_int_equal(p.seq, 1);
    /* a batch of 10,000 spans three ms */
    take(&g, 50, ID_COUNT_MAX);
    id_split(id_get(out, ID_COUNT_MAX - 1), &p);
    assert_int_equal(p.unix_ms - ID_EPOCH_UNIX_MS, 53);
    assert_true(id_get(out, 0) < id_get(out, ID_COUNT_MAX - 1));
    /* running ahead of the clock is no clock back */
    assert_int_equal(id_gen_check(&g, 51, 1, &behind), ID_GEN_OK);
}

static void
test_clock_back(void **state)
{
    struct id_gen g;
    uint64_t behind = 0, last;

    id_gen_init(&g, 0, 0, 5000);
    id_gen_set_mark(&g, 100000);
    take(&g, 5000, 3);
    last = id_get(out, 2);
    assert_int_equal(id_gen_check(&g, 4200, 1, &behind), ID_GEN_BACK);
    assert_int_equal(behind, 800);
    /* nothing changed: the clock catching up issues above the last id */
    take(&g, 5000, 1);
    assert_true(id_get(out, 0) > last);
    take(&g, 5001, 1);
}

static void
test_mark_respected(void **state)
{
    struct id_gen g;
    uint64_t behind, mark;

    id_gen_init(&g, 0, 0, 100);
    /* no mark persisted yet: nothing may be issued */
    assert_int_equal(id_gen_check(&g, 100, 1, &behind), ID_GEN_MARK);
    assert_true(id_gen_wants_mark(&g, 100, &mark));
    assert_int_equal(mark, 100 + ID_MARK_AHEAD_MS);
    id_gen_set_mark(&g, mark);
    take(&g, 100, 1);
    /* not renewed while more than RENEW_MS ahead */
    assert_false(id_gen_wants_mark(
        &g, 100 + ID_MARK_AHEAD_MS - ID_MARK_RENEW_MS - 1, &mark));
    assert_true(id_gen_wants_mark(&g, 100 + ID_MARK_AHEAD_MS - ID_MARK_RENEW_MS,
                                  &mark));
    /* the mark's own ms is allowed, the next one is not */
    take(&g, 1100, 1);
    assert_int_equal(id_gen_check(&g, 1101, 1, &behind), ID_GEN_MARK);
    /* nor a batch whose last id would roll over past it */
    assert_int_equal(id_gen_check(&g, 1100, ID_SEQ_MAX + 1, &behind),
                     ID_GEN_MARK);
    assert_int_equal(id_gen_check(&g, 1100, ID_SEQ_MAX, &behind), ID_GEN_OK);
    /* a smaller mark never moves it back */
    id_gen_set_mark(&g, 10);
    assert_int_equal(g.mark, 1100);
}

static void
test_restart_above_mark(void **state)
{
    struct id_gen g;
    struct id_parts p;
    uint64_t behind;

    /* the clock set back 10 minutes below a persisted mark */
    id_gen_init(&g, 3, 900000, 900000 - 600000);
    assert_int_equal(id_gen_check(&g, 300000, 1, &behind), ID_GEN_MARK);
    id_gen_set_mark(&g, 901000);
    take(&g, 300000, 5);
    id_split(id_get(out, 0), &p);
    assert_true(p.unix_ms - ID_EPOCH_UNIX_MS > 900000);
    assert_true(id_get(out, 0) > id_make(900000, 1023, ID_SEQ_MAX));
}

static void
test_codec(void **state)
{
    struct id_req r;
    char err[ID_CODEC_ERR_SIZE];
    uint8_t b[16], rep[ID_DECODE_REPLY_LEN];
    struct id_parts p = {ID_EPOCH_UNIX_MS + 12345, 1023, 4095}, q;
    const uint8_t *ids;
    uint32_t n;
    uint64_t id = id_make(12345, 1023, 4095);

    assert_int_equal(
        id_decode_request(b, id_encode_next(b, 10000), &r, err, sizeof(err)),
        FERRY_OK);
    assert_int_equal(r.count, 10000);
    assert_int_equal(
        id_decode_request(b, id_encode_next(b, 10001), &r, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "ferry.id: count 10001 out of range 1..10000");
    assert_int_equal(id_decode_request(b, 4, &r, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_string_equal(
        err, "ferry.id: payload of op 1 needs 4 bytes after op, got 3");
    assert_int_equal(id_decode_request(b, 0, &r, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    b[0] = 77;
    assert_int_equal(id_decode_request(b, 1, &r, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "unknown op 77");
    assert_int_equal(
        id_decode_request(b, id_encode_decode(b, id), &r, err, sizeof(err)),
        FERRY_OK);
    assert_int_equal(r.id, id);
    assert_true(id_split(id, &q));
    assert_memory_equal(&p, &q, sizeof(p));
    assert_false(id_split(UINT64_C(1) << 63, &q));
    id_encode_decode(b, UINT64_C(1) << 63);
    assert_int_equal(id_decode_request(b, 9, &r, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    id_encode_decode_reply(rep, &p);
    assert_int_equal(
        id_decode_decode_reply(rep, sizeof(rep), &q, err, sizeof(err)),
        FERRY_OK);
    assert_memory_equal(&p, &q, sizeof(p));
    assert_int_equal(id_decode_decode_reply(rep, 12, &q, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    id_encode_next_head(b, 1);
    id_put_u64(b + 5, id);
    assert_int_equal(id_decode_next_reply(b, 13, &n, &ids, err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(n, 1);
    assert_int_equal(id_get(ids, 0), id);
    assert_int_equal(id_decode_next_reply(b, 12, &n, &ids, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_increasing),
        cmocka_unit_test(test_rollover_takes_next_ms),
        cmocka_unit_test(test_clock_back),
        cmocka_unit_test(test_mark_respected),
        cmocka_unit_test(test_restart_above_mark),
        cmocka_unit_test(test_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
