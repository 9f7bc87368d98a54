/* SPDX-License-Identifier: MIT */
/*
 * test_cache_service.c - ferry.cache's backend (src/servants/
 * cache_service.c) against a stand-in broker: the bcall answers of
 * broker/backend.h and the loop's timer are replaced here, so each call
 * is checked byte for byte (a GET hit's reply comes through
 * bcall_reply_prepare + commit, in one piece), time is the test's, and
 * the reclaim timer is fired by hand.
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

#include "broker/backend.h"
#include "core/config.h"
#include "core/loop.h"
#include "servants/cache_codec.h"
#include "servants/cache_service.h"

/* What the stand-in broker saw of the last call. */
static struct {
    struct backend *be;   /* registered */
    char name[64];        /* its service name */
    uint8_t out[1 << 16]; /* the last reply */
    size_t out_len;       /* its bytes */
    bool prepared;        /* it came through prepare + commit */
    ferry_err err;        /* the last error, FERRY_OK if none */
    char msg[256];        /* its message */
    struct timer *tick;   /* the armed timer */
    uint64_t tick_when;   /* when it was armed for */
} fake;

ferry_err
broker_add_backend(struct broker *b, const char *name, struct backend *be)
{
    fake.be = be;
    snprintf(fake.name, sizeof(fake.name), "%s", name);
    return FERRY_OK;
}

void
bcall_reply(struct bcall *c, const void *data, size_t len)
{
    assert_false(c->answered);
    c->answered = true;
    assert_true(len <= sizeof(fake.out));
    memcpy(fake.out, data, len);
    fake.out_len = len;
    fake.prepared = false;
    fake.err = FERRY_OK;
}

uint8_t *
bcall_reply_prepare(struct bcall *c, size_t len)
{
    assert_false(c->answered);
    assert_true(len <= sizeof(fake.out));
    fake.out_len = len;
    return fake.out;
}

void
bcall_reply_commit(struct bcall *c)
{
    c->answered = true;
    fake.prepared = true;
    fake.err = FERRY_OK;
}

void
bcall_error(struct bcall *c, ferry_err code, const char *msg)
{
    assert_false(c->answered);
    c->answered = true;
    fake.err = code;
    snprintf(fake.msg, sizeof(fake.msg), "%s", msg != NULL ? msg : "");
    fake.out_len = 0;
}

ferry_err
loop_timer_start(struct loop *l, struct timer *t, uint64_t when)
{
    fake.tick = t;
    fake.tick_when = when;
    return FERRY_OK;
}

void
loop_timer_stop(struct loop *l, struct timer *t)
{
    if (fake.tick == t) {
        fake.tick = NULL;
    }
}

struct env {
    struct loop loop;
    struct config cfg;
    struct cache_service *cs;
};

static void
set_now(struct env *e, uint64_t ms)
{
    e->loop.uv.time = ms;
}

static int
setup_with(void **state, uint64_t max_bytes, uint32_t item_max)
{
    struct env *e = calloc(1, sizeof(*e));

    memset(&fake, 0, sizeof(fake));
    config_init(&e->cfg);
    e->cfg.cache_max_bytes = max_bytes;
    e->cfg.cache_item_max = item_max;
    e->loop.cfg = &e->cfg;
    set_now(e, 1000000);
    assert_int_equal(cache_service_open(&e->cs, NULL, &e->loop, &e->cfg),
                     FERRY_OK);
    assert_string_equal(fake.name, "ferry.cache");
    assert_non_null(fake.tick);
    *state = e;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, 64u << 20, 1u << 20);
}

static int
setup_small(void **state)
{
    return setup_with(state, 1u << 20, 4096);
}

static int
teardown(void **state)
{
    struct env *e = *state;

    cache_service_close(e->cs);
    assert_null(fake.tick);
    config_release(&e->cfg);
    free(e);
    return 0;
}

/* One call of ferry.cache with key and the request r. */
static void
call(const char *key, const struct cache_req *r)
{
    uint8_t payload[8192];
    struct bcall c = {0};
    size_t n = cache_codec_write_request(NULL, r);

    assert_true(n <= sizeof(payload));
    cache_codec_write_request(payload, r);
    c.key = (struct slice){(const uint8_t *)key, strlen(key)};
    c.payload = (struct slice){payload, n};
    fake.be->ops->call(fake.be, &c);
    assert_true(c.answered);
}

static void
call_raw(const char *key, const void *p, size_t n)
{
    struct bcall c = {0};

    c.key = (struct slice){(const uint8_t *)key, strlen(key)};
    c.payload = (struct slice){p, n};
    fake.be->ops->call(fake.be, &c);
    assert_true(c.answered);
}

static struct cache_reply
reply(uint8_t op)
{
    struct cache_reply rep;

    assert_int_equal(fake.err, FERRY_OK);
    assert_int_equal(cache_codec_decode_reply(
                         op, (struct slice){fake.out, fake.out_len}, &rep),
                     FERRY_OK);
    return rep;
}

static uint64_t
set(const char *key, const char *val, uint32_t flags, uint32_t ttl_ms)
{
    struct cache_req r = {.op = CACHE_OP_SET, .flags = flags, .ttl_ms = ttl_ms};
    struct cache_reply rep;

    r.value = (struct slice){(const uint8_t *)val, strlen(val)};
    call(key, &r);
    rep = reply(CACHE_OP_SET);
    assert_int_equal(rep.status, CACHE_ST_OK);
    return rep.cas;
}

static void
test_get_hit_is_written_in_place(void **state)
{
    struct cache_req get = {.op = CACHE_OP_GET};
    struct cache_reply rep;
    uint64_t v;

    (void)state;
    call("k", &get);
    assert_int_equal(reply(CACHE_OP_GET).status, CACHE_ST_NOT_FOUND);
    v = set("k", "value", 7, 0);
    call("k", &get);
    assert_true(fake.prepared);
    rep = reply(CACHE_OP_GET);
    assert_int_equal(rep.status, CACHE_ST_OK);
    assert_int_equal(rep.flags, 7);
    assert_true(rep.cas == v);
    assert_int_equal(rep.value.len, 5);
    assert_memory_equal(rep.value.p, "value", 5);
    assert_int_equal(fake.out_len, CACHE_CODEC_HIT_HEAD + 5);
}

static void
test_ttl_on_the_loop_clock(void **state)
{
    struct env *e = *state;
    struct cache_req get = {.op = CACHE_OP_GET};
    struct cache_req touch = {.op = CACHE_OP_TOUCH, .ttl_ms = 5000};

    set("t", "v", 0, 100);
    set_now(e, 1000099);
    call("t", &get);
    assert_int_equal(reply(CACHE_OP_GET).status, CACHE_ST_OK);
    call("t", &touch);
    assert_int_equal(reply(CACHE_OP_TOUCH).status, CACHE_ST_OK);
    set_now(e, 1004000);
    call("t", &get);
    assert_int_equal(reply(CACHE_OP_GET).status, CACHE_ST_OK);
    set_now(e, 1005100);
    call("t", &get);
    assert_int_equal(reply(CACHE_OP_GET).status, CACHE_ST_NOT_FOUND);
    assert_true(cache_service_now_ms(e->cs) == 1005100);
    /* Unix seconds map onto the loop clock with a fixed offset. */
    assert_true(cache_service_unix_to_ms(e->cs, 2000) -
                    cache_service_unix_to_ms(e->cs, 1000) ==
                1000000);
}

static void
test_statuses_and_errors(void **state)
{
    struct cache_req r = {.op = CACHE_OP_ADD};
    static const uint8_t short_set[] = {3, 0, 0};
    uint64_t v;

    (void)state;
    v = set("k", "12", 0, 0);
    r.value = (struct slice){(const uint8_t *)"x", 1};
    call("k", &r);
    assert_int_equal(reply(CACHE_OP_ADD).status, CACHE_ST_NOT_STORED);
    r.op = CACHE_OP_CAS;
    r.cas = v + 100;
    call("k", &r);
    assert_int_equal(reply(CACHE_OP_CAS).status, CACHE_ST_EXISTS);
    r.op = CACHE_OP_INCR;
    r.delta = 30;
    call("k", &r);
    assert_true(reply(CACHE_OP_INCR).number == 42);
    set("s", "text", 0, 0);
    call("s", &r);
    assert_int_equal(fake.err, FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(fake.msg, "not a decimal number"));
    call_raw("k", short_set, sizeof(short_set));
    assert_int_equal(fake.err, FERRY_EINVALID_ARGUMENT);
    assert_string_equal(fake.msg, "ferry.cache: payload of op 3 needs 8 "
                                  "bytes after op, got 2");
    r.op = CACHE_OP_DELETE;
    call("k", &r);
    assert_int_equal(reply(CACHE_OP_DELETE).status, CACHE_ST_OK);
    call("k", &r);
    assert_int_equal(reply(CACHE_OP_DELETE).status, CACHE_ST_NOT_FOUND);
}

static void
test_get_many(void **state)
{
    static const uint8_t keys[] = {0, 1, 'a', 0, 1, 'z', 0, 1, 'b'};
    struct cache_req r = {.op = CACHE_OP_GET_MANY, .n_keys = 3};
    struct cache_reply rep;
    struct slice rest, v;
    uint32_t flags;
    uint64_t cas;
    bool hit;

    (void)state;
    set("a", "A", 1, 0);
    set("b", "BB", 2, 0);
    r.keys = (struct slice){keys, sizeof(keys)};
    call("", &r);
    rep = reply(CACHE_OP_GET_MANY);
    assert_int_equal(rep.n, 3);
    rest = rep.value;
    assert_true(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_true(hit);
    assert_memory_equal(v.p, "A", 1);
    assert_true(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_false(hit);
    assert_true(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_true(hit);
    assert_int_equal(flags, 2);
    assert_memory_equal(v.p, "BB", 2);
    assert_int_equal(rest.len, 0);
}

static void
test_too_big_and_eviction(void **state)
{
    struct env *e = *state;
    char big[5000], val[3001];
    struct cache_req r = {.op = CACHE_OP_SET};
    json_t *st;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r.value = (struct slice){(const uint8_t *)big, strlen(big)};
    call("big", &r);
    assert_int_equal(fake.err, FERRY_ETOO_BIG);
    assert_non_null(strstr(fake.msg, "cache_item_max (4096 bytes)"));
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        set(key, val, 0, 0);
    }
    st = cache_service_stats_json(e->cs);
    assert_non_null(st);
    assert_true(json_integer_value(json_object_get(st, "evictions")) > 500);
    assert_true(json_integer_value(json_object_get(st, "bytes")) <= 1 << 20);
    assert_int_equal(json_integer_value(json_object_get(st, "too_big")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "max_bytes")),
                     1 << 20);
    json_decref(st);
    /* The reclaim step re-arms itself 100 ms on. */
    set_now(e, 1000050);
    fake.tick->cb(fake.tick);
    assert_true(fake.tick_when == 1000050 + CACHE_SERVICE_RECLAIM_MS);
}

static void
test_reclaim_frees_expired_and_trims(void **state)
{
    struct env *e = *state;
    struct cache_req flush = {.op = CACHE_OP_FLUSH};
    char val[1001];
    json_t *st;
    FILE *f;
    char *text = NULL;
    size_t len = 0;

    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 20000; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        set(key, val, 0, i % 2 ? 50 : 0);
    }
    call("", &flush);
    assert_int_equal(reply(CACHE_OP_FLUSH).status, CACHE_ST_OK);
    /* Two seconds of ticks free everything (1000 items a tick) and trim
     * once the freed bytes pass 8 MiB, at most once a second. */
    for (int i = 1; i <= 30; i++) {
        set_now(e, 1000000 + (uint64_t)i * 100);
        fake.tick->cb(fake.tick);
    }
    st = cache_service_stats_json(e->cs);
    assert_int_equal(json_integer_value(json_object_get(st, "items")), 0);
    assert_true(json_integer_value(json_object_get(st, "trims")) >= 1);
    assert_true(json_integer_value(json_object_get(st, "trims")) <= 3);
    json_decref(st);
    f = open_memstream(&text, &len);
    cache_service_metrics(e->cs, f);
    fclose(f);
    assert_non_null(strstr(text, "\nferry_cache_items 0\n"));
    assert_non_null(strstr(text, "ferry_cache_ops_total{op=\"set\"} 20000\n"));
    assert_non_null(strstr(text, "# TYPE ferry_cache_hits_total counter\n"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_hit_is_written_in_place, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ttl_on_the_loop_clock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_statuses_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_and_eviction, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_frees_expired_and_trims,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
