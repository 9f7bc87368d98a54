/* SPDX-License-Identifier: MIT */
/* The memcached text protocol parser: whole and cut commands, bounds,
 * and the error answers memcached gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "servants/memcache_parse.h"

#define ITEM_MAX (1024 * 1024)

static enum mc_result
parse(const char *s, struct mc_cmd *m)
{
    return memcache_parse((const uint8_t *)s, strlen(s), ITEM_MAX, m);
}

static void
test_set_whole_and_cut(void **state)
{
    const char *s = "set key 5 100 3 noreply\r\nabc\r\nget key\r\n";
    struct mc_cmd m;
    size_t whole = strlen("set key 5 100 3 noreply\r\nabc\r\n");

    assert_int_equal(parse(s, &m), MC_CMD);
    assert_int_equal(m.kind, MC_SET);
    assert_int_equal(m.used, whole);
    assert_int_equal(m.klen, 3);
    assert_memory_equal(m.key, "key", 3);
    assert_int_equal(m.flags, 5);
    assert_int_equal(m.exptime, 100);
    assert_true(m.noreply);
    assert_int_equal(m.dlen, 3);
    assert_memory_equal(m.data, "abc", 3);
    /* Every cut before the end needs more bytes, never errs. */
    for (size_t n = 0; n < whole; n++) {
        assert_int_equal(memcache_parse((const uint8_t *)s, n, ITEM_MAX, &m),
                         MC_NEED);
    }
    /* A cut inside the data says how much the command needs. */
    assert_int_equal(memcache_parse((const uint8_t *)s, 27, ITEM_MAX, &m),
                     MC_NEED);
    assert_int_equal(m.need, whole);
}

static void
test_get_keys(void **state)
{
    struct mc_cmd m;

    assert_int_equal(parse("gets a bb  ccc\r\n", &m), MC_CMD);
    assert_int_equal(m.kind, MC_GETS);
    assert_int_equal(m.keys_len, strlen("a bb  ccc"));
    assert_int_equal(parse("gat 10 a\n", &m), MC_CMD);
    assert_int_equal(m.kind, MC_GAT);
    assert_int_equal(m.exptime, 10);
    assert_int_equal(parse("get\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "ERROR\r\n");
}

static void
test_errors(void **state)
{
    struct mc_cmd m;
    char key[300];

    assert_int_equal(parse("\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "ERROR\r\n");
    assert_int_equal(parse("SET k 0 0 1\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "ERROR\r\n");
    assert_int_equal(parse("set k 0 0 -1\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "CLIENT_ERROR bad command line format\r\n");
    assert_int_equal(parse("set k 0 0 2\r\nabcd\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "CLIENT_ERROR bad data chunk\r\n");
    assert_int_equal(m.used, strlen("set k 0 0 2\r\nabcd"));
    assert_int_equal(parse("incr k x\r\n", &m), MC_ERR);
    assert_string_equal(m.err,
                        "CLIENT_ERROR invalid numeric delta argument\r\n");
    assert_int_equal(parse("incr k 18446744073709551616\r\n", &m), MC_ERR);
    assert_int_equal(parse("touch k x\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "CLIENT_ERROR invalid exptime argument\r\n");
    assert_int_equal(parse("delete k 5\r\n", &m), MC_ERR);
    memset(key, 'k', sizeof(key));
    memcpy(key, "get ", 4);
    memcpy(key + 4 + 251, "\r\n", 3);
    assert_int_equal(parse(key, &m), MC_ERR);
    assert_string_equal(m.err, "CLIENT_ERROR bad command line format\r\n");
}

static void
test_too_large_swallows(void **state)
{
    struct mc_cmd m;

    assert_int_equal(parse("set k 0 0 2000000\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "SERVER_ERROR object too large for cache\r\n");
    assert_int_equal(m.used, strlen("set k 0 0 2000000\r\n"));
    assert_int_equal(m.swallow, 2000002);
}

static void
test_line_limits(void **state)
{
    static uint8_t buf[MC_GET_LINE_MAX + 10];
    struct mc_cmd m;

    memset(buf, 'x', sizeof(buf));
    assert_int_equal(memcache_parse(buf, MC_LINE_MAX - 1, ITEM_MAX, &m),
                     MC_NEED);
    assert_int_equal(memcache_parse(buf, MC_LINE_MAX, ITEM_MAX, &m),
                     MC_CLOSE);
    memcpy(buf, "get ", 4);
    assert_int_equal(memcache_parse(buf, MC_LINE_MAX + 100, ITEM_MAX, &m),
                     MC_NEED);
    assert_int_equal(memcache_parse(buf, sizeof(buf), ITEM_MAX, &m),
                     MC_CLOSE);
}

static void
test_meta(void **state)
{
    struct mc_cmd m;

    assert_int_equal(parse("mg key v t c Oabc T30\r\n", &m), MC_CMD);
    assert_int_equal(m.kind, MC_MG);
    assert_int_equal(m.n_flags, 5);
    assert_int_equal(m.flag[3].c, 'O');
    assert_int_equal(m.flag[3].len, 3);
    assert_memory_equal(m.flag[3].tok, "abc", 3);
    assert_int_equal(parse("ms key 2 F5 MA\r\nhi\r\n", &m), MC_CMD);
    assert_int_equal(m.kind, MC_MS);
    assert_int_equal(m.dlen, 2);
    assert_int_equal(m.n_flags, 2);
    assert_int_equal(parse("ms key\r\n", &m), MC_ERR);
    assert_int_equal(parse("mg\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "ERROR\r\n");
    assert_int_equal(parse("mn\r\n", &m), MC_CMD);
    assert_int_equal(m.kind, MC_MN);
}

static void
test_base64_key(void **state)
{
    struct mc_cmd m;

    assert_int_equal(parse("mg Zm9vYg== b v\r\n", &m), MC_CMD);
    assert_true(m.b64);
    assert_int_equal(m.klen, 4);
    assert_memory_equal(m.key, "foob", 4);
    assert_int_equal(m.rklen, 8);
    assert_int_equal(parse("mg Zm9 b v\r\n", &m), MC_ERR);
    assert_string_equal(m.err, "CLIENT_ERROR error decoding key\r\n");
    assert_int_equal(parse("mg Zm=v b\r\n", &m), MC_ERR);
    /* ms with a bad key still takes its data block */
    assert_int_equal(parse("ms !!!! 2 b\r\nhi\r\n", &m), MC_ERR);
    assert_int_equal(m.used, strlen("ms !!!! 2 b\r\nhi\r\n"));
}

static void
test_numbers(void **state)
{
    uint64_t v;
    int64_t s;

    assert_true(memcache_u64((const uint8_t *)"18446744073709551615", 20, &v));
    assert_true(v == UINT64_MAX);
    assert_false(memcache_u64((const uint8_t *)"18446744073709551616", 20,
                              &v));
    assert_false(memcache_u64((const uint8_t *)"", 0, &v));
    assert_false(memcache_u64((const uint8_t *)"1a", 2, &v));
    assert_true(memcache_i64((const uint8_t *)"-5", 2, &s));
    assert_int_equal(s, -5);
    assert_false(memcache_i64((const uint8_t *)"-", 1, &s));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_whole_and_cut),
        cmocka_unit_test(test_get_keys),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_large_swallows),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_base64_key),
        cmocka_unit_test(test_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
