/* SPDX-License-Identifier: MIT */
/*
 * test_cache_codec.c - ferry.cache's payloads (src/servants/cache_codec.c):
 * each op decoded from bytes written by hand (the table of
 * docs/services.md), every short or long payload refused with a message
 * naming the field, key bounds, GET_MANY's key list, the encoders
 * round-tripping, and the reply writers against the reply decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "servants/cache_codec.h"

static struct slice
sl(const void *p, size_t n)
{
    return (struct slice){p, n};
}

static ferry_err
dec(const char *key, const void *p, size_t n, struct cache_req *r, char *err)
{
    return cache_codec_decode(sl(key, strlen(key)), sl(p, n), r, err);
}

static void
test_each_op_decodes(void **state)
{
    struct cache_req r;
    char err[CACHE_CODEC_ERR_SIZE];
    static const uint8_t get[] = {1};
    static const uint8_t set[] = {3, 0, 0, 0, 7, 0, 0, 3, 0xe8, 'h', 'i'};
    static const uint8_t cas[] = {8, 0, 0, 0, 1, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 1, 2, 'v'};
    static const uint8_t app[] = {6, 'x', 'y'};
    static const uint8_t incr[] = {10, 0, 0, 0, 0, 0, 0, 1, 0};
    static const uint8_t touch[] = {12, 0, 0, 0, 50};
    static const uint8_t flush[] = {14, 0, 0, 1, 0};

    (void)state;
    assert_int_equal(dec("k", get, sizeof(get), &r, err), FERRY_OK);
    assert_int_equal(r.op, CACHE_OP_GET);
    assert_int_equal(r.key.len, 1);
    assert_int_equal(dec("k", set, sizeof(set), &r, err), FERRY_OK);
    assert_int_equal(r.flags, 7);
    assert_int_equal(r.ttl_ms, 1000);
    assert_int_equal(r.value.len, 2);
    assert_memory_equal(r.value.p, "hi", 2);
    assert_int_equal(dec("k", cas, sizeof(cas), &r, err), FERRY_OK);
    assert_int_equal(r.flags, 1);
    assert_int_equal(r.ttl_ms, 0);
    assert_true(r.cas == 0x102);
    assert_int_equal(r.value.len, 1);
    assert_int_equal(dec("k", app, sizeof(app), &r, err), FERRY_OK);
    assert_int_equal(r.value.len, 2);
    assert_int_equal(dec("k", incr, sizeof(incr), &r, err), FERRY_OK);
    assert_true(r.delta == 256);
    assert_int_equal(dec("k", touch, sizeof(touch), &r, err), FERRY_OK);
    assert_int_equal(r.ttl_ms, 50);
    /* FLUSH takes an empty key. */
    assert_int_equal(dec("", flush, sizeof(flush), &r, err), FERRY_OK);
    assert_int_equal(r.delay_ms, 256);
}

static void
test_bad_payloads_name_the_field(void **state)
{
    struct cache_req r;
    char err[CACHE_CODEC_ERR_SIZE];
    static const uint8_t short_set[] = {3, 0, 0};
    static const uint8_t long_get[] = {1, 0};
    static const uint8_t unknown[] = {99};
    static const uint8_t zero[] = {0};
    static const uint8_t get[] = {1};
    char key[252];

    (void)state;
    assert_int_equal(dec("k", "", 0, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "empty payload"));
    assert_int_equal(dec("k", short_set, sizeof(short_set), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "ferry.cache: payload of op 3 needs 8 bytes "
                             "after op, got 2");
    assert_int_equal(dec("k", long_get, sizeof(long_get), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "op 1 takes 0 bytes after op, got 1"));
    assert_int_equal(dec("k", unknown, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "ferry.cache: unknown op 99");
    assert_int_equal(dec("k", zero, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "ferry.cache: unknown op 0");
    /* Keys: none, 250 (the most), 251. */
    assert_int_equal(dec("", get, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "key"));
    memset(key, 'a', 250);
    key[250] = '\0';
    assert_int_equal(dec(key, get, 1, &r, err), FERRY_OK);
    key[250] = 'a';
    key[251] = '\0';
    assert_int_equal(dec(key, get, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "got 251"));
}

static void
test_get_many_key_list(void **state)
{
    struct cache_req r;
    char err[CACHE_CODEC_ERR_SIZE];
    static const uint8_t ok[] = {2, 0, 2, 0, 1, 'a', 0, 2, 'b', 'c'};
    static const uint8_t none[] = {2, 0, 0};
    static const uint8_t short_key[] = {2, 0, 2, 0, 1, 'a', 0, 5, 'b'};
    static const uint8_t extra[] = {2, 0, 1, 0, 1, 'a', 'z'};
    static const uint8_t empty_key[] = {2, 0, 1, 0, 0};
    static uint8_t big[3 + 1001 * 3];
    struct slice rest, k;

    (void)state;
    assert_int_equal(dec("", ok, sizeof(ok), &r, err), FERRY_OK);
    assert_int_equal(r.n_keys, 2);
    rest = r.keys;
    assert_true(cache_codec_next_key(&rest, &k));
    assert_memory_equal(k.p, "a", 1);
    assert_true(cache_codec_next_key(&rest, &k));
    assert_int_equal(k.len, 2);
    assert_memory_equal(k.p, "bc", 2);
    assert_int_equal(rest.len, 0);
    assert_false(cache_codec_next_key(&rest, &k));
    assert_int_equal(dec("", none, sizeof(none), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "1 to 1000"));
    assert_int_equal(dec("", short_key, sizeof(short_key), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "key 2 needs 5 bytes"));
    assert_int_equal(dec("", extra, sizeof(extra), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "after the last key"));
    assert_int_equal(dec("", empty_key, sizeof(empty_key), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "key 1 has length 0"));
    /* 1001 keys: refused by the count before any key is read. */
    big[0] = 2;
    big[1] = 1001 >> 8;
    big[2] = 1001 & 0xff;
    for (size_t i = 0; i < 1001; i++) {
        big[3 + 3 * i] = 0;
        big[4 + 3 * i] = 1;
        big[5 + 3 * i] = 'k';
    }
    assert_int_equal(dec("", big, sizeof(big), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    big[2] = 1000 & 0xff;
    big[1] = 1000 >> 8;
    assert_int_equal(dec("", big, sizeof(big) - 3, &r, err), FERRY_OK);
    assert_int_equal(r.n_keys, 1000);
}

static void
test_requests_round_trip(void **state)
{
    static const uint8_t ops[] = {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    struct cache_req in, out;
    char err[CACHE_CODEC_ERR_SIZE];
    uint8_t buf[64];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(ops); i++) {
        memset(&in, 0, sizeof(in));
        in.op = ops[i];
        in.flags = 0xdeadbeef;
        in.ttl_ms = 12345;
        in.cas = UINT64_C(0x0102030405060708);
        in.delta = UINT64_MAX;
        in.delay_ms = 9;
        in.value = sl("value", 5);
        n = cache_codec_write_request(NULL, &in);
        assert_true(n <= sizeof(buf));
        assert_int_equal(cache_codec_write_request(buf, &in), n);
        assert_int_equal(dec("key", buf, n, &out, err), FERRY_OK);
        assert_int_equal(out.op, in.op);
        switch (in.op) {
        case CACHE_OP_SET:
        case CACHE_OP_CAS:
            assert_int_equal(out.flags, in.flags);
            assert_int_equal(out.ttl_ms, in.ttl_ms);
            assert_int_equal(out.value.len, 5);
            if (in.op == CACHE_OP_CAS) {
                assert_true(out.cas == in.cas);
            }
            break;
        case CACHE_OP_APPEND:
            assert_memory_equal(out.value.p, "value", 5);
            break;
        case CACHE_OP_DECR:
            assert_true(out.delta == UINT64_MAX);
            break;
        case CACHE_OP_FLUSH:
            assert_int_equal(out.delay_ms, 9);
            break;
        default:
            break;
        }
    }
}

static void
test_replies(void **state)
{
    uint8_t buf[64];
    struct cache_reply rep;
    struct slice rest, v;
    size_t n;
    bool hit;
    uint32_t flags;
    uint64_t cas;

    (void)state;
    n = cache_codec_write_hit(buf, 7, 99);
    assert_int_equal(n, CACHE_CODEC_HIT_HEAD);
    memcpy(buf + n, "abc", 3);
    assert_int_equal(
        cache_codec_decode_reply(CACHE_OP_GET, sl(buf, n + 3), &rep), FERRY_OK);
    assert_int_equal(rep.status, CACHE_ST_OK);
    assert_int_equal(rep.flags, 7);
    assert_true(rep.cas == 99);
    assert_int_equal(rep.value.len, 3);
    n = cache_codec_write_status(buf, CACHE_ST_NOT_FOUND);
    assert_int_equal(cache_codec_decode_reply(CACHE_OP_GET, sl(buf, n), &rep),
                     FERRY_OK);
    assert_int_equal(rep.status, CACHE_ST_NOT_FOUND);
    n = cache_codec_write_u64(buf, CACHE_ST_OK, 42);
    assert_int_equal(n, 9);
    assert_int_equal(cache_codec_decode_reply(CACHE_OP_INCR, sl(buf, n), &rep),
                     FERRY_OK);
    assert_true(rep.number == 42);
    /* A store's OK without its cas is malformed. */
    assert_int_equal(cache_codec_decode_reply(CACHE_OP_SET, sl(buf, 1), &rep),
                     FERRY_EPROTO);
    /* GET_MANY: one hit, one miss. */
    buf[0] = CACHE_ST_OK;
    buf[1] = 0;
    buf[2] = 2;
    n = 3 + cache_codec_write_many_entry(buf + 3, true, 1, 2, 2);
    memcpy(buf + n, "xy", 2);
    n += 2;
    n += cache_codec_write_many_entry(buf + n, false, 0, 0, 0);
    assert_int_equal(
        cache_codec_decode_reply(CACHE_OP_GET_MANY, sl(buf, n), &rep),
        FERRY_OK);
    assert_int_equal(rep.n, 2);
    rest = rep.value;
    assert_true(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_true(hit);
    assert_int_equal(flags, 1);
    assert_true(cas == 2);
    assert_memory_equal(v.p, "xy", 2);
    assert_true(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_false(hit);
    assert_int_equal(rest.len, 0);
    /* An entry whose vlen runs past the end. */
    buf[3 + 16] = 9;
    rest = sl(buf + 3, 17 + 2);
    assert_false(cache_codec_next_entry(&rest, &hit, &flags, &cas, &v));
    assert_string_equal(cache_codec_op_name(CACHE_OP_GET_MANY), "get_many");
    assert_string_equal(cache_codec_op_name(0), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_op_decodes),
        cmocka_unit_test(test_bad_payloads_name_the_field),
        cmocka_unit_test(test_get_many_key_list),
        cmocka_unit_test(test_requests_round_trip),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
