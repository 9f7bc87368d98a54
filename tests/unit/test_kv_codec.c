/* SPDX-License-Identifier: MIT */
/*
 * test_kv_codec.c - ferry.kv's payload codec: every op decoded from bytes
 * written by hand (the table of docs/services.md), the defaults and
 * bounds of limit and max_events, each malformed form refused with a
 * message naming the field, keys of bad length, request encoding back to
 * the same bytes, the reply decoder on good and torn replies, the stored
 * value's layout and the range test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "servants/kv_codec.h"

static struct slice
sl(const void *p, size_t n)
{
    return (struct slice){p, n};
}

static ferry_err
dec(const char *key, const void *p, size_t n, struct kv_req *r, char *err)
{
    err[0] = '\0';
    return kv_codec_decode(sl(key, strlen(key)), sl(p, n), r, err);
}

static void
test_decode_ops(void **state)
{
    struct kv_req r;
    char err[KV_CODEC_ERR_SIZE];
    static const uint8_t get[] = {1};
    static const uint8_t put[] = {2, 2, 0, 0, 0, 0, 0, 0, 1, 2, 'h', 'i'};
    static const uint8_t del[] = {3, 2, 0, 0, 0, 0, 0, 0, 0, 7};
    static const uint8_t range[] = {4, 1, 0, 2, 'z', 'z', 0, 0, 0, 0, 1};
    static const uint8_t count[] = {5, 0, 0, 0};
    static const uint8_t watch[] = {6, 1, 0, 0, 0, 0, 0, 0, 0,
                                    9, 0, 0, 1, 0, 0, 0, 0, 5};

    assert_int_equal(dec("k", get, sizeof(get), &r, err), FERRY_OK);
    assert_int_equal(r.op, KV_OP_GET);
    assert_int_equal(r.key.len, 1);

    assert_int_equal(dec("k", put, sizeof(put), &r, err), FERRY_OK);
    assert_int_equal(r.cond, KV_COND_REV);
    assert_int_equal(r.rev, 258);
    assert_int_equal(r.value.len, 2);
    assert_memory_equal(r.value.p, "hi", 2);

    assert_int_equal(dec("k", del, sizeof(del), &r, err), FERRY_OK);
    assert_int_equal(r.op, KV_OP_DELETE);
    assert_int_equal(r.rev, 7);

    assert_int_equal(dec("a", range, sizeof(range), &r, err), FERRY_OK);
    assert_int_equal(r.mode, KV_MODE_RANGE);
    assert_int_equal(r.end.len, 2);
    assert_int_equal(r.limit, KV_LIMIT_DEFAULT);
    assert_true(r.keys_only);

    /* An empty key: every key. */
    assert_int_equal(dec("", count, sizeof(count), &r, err), FERRY_OK);
    assert_int_equal(r.op, KV_OP_COUNT);
    assert_int_equal(r.mode, KV_MODE_PREFIX);

    assert_int_equal(dec("p/", watch, sizeof(watch), &r, err), FERRY_OK);
    assert_true(r.prefix);
    assert_int_equal(r.from_rev, 9);
    assert_int_equal(r.wait_ms, 256);
    assert_int_equal(r.max_events, 5);
}

static void
test_decode_refuses(void **state)
{
    struct kv_req r;
    char err[KV_CODEC_ERR_SIZE];
    char big[KV_KEY_MAX + 2];
    static const uint8_t get[] = {1};
    static const uint8_t get_extra[] = {1, 0};
    static const uint8_t put_short[] = {2, 0, 0};
    static const uint8_t put_cond[] = {2, 3, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t del_absent[] = {3, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t del_long[] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t range_limit[] = {4, 0, 0, 0, 0, 0, 0x27, 0x11, 0};
    static const uint8_t range_elen[] = {4, 1, 0, 9, 'z', 0, 0, 0, 0, 0};
    static const uint8_t range_pfx_end[] = {4, 0, 0, 1, 'z', 0, 0, 0, 0, 0};
    static const uint8_t range_ko[] = {4, 0, 0, 0, 0, 0, 0, 0, 2};
    static const uint8_t range_mode[] = {4, 2, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t count_big[] = {5, 1, 0x01, 0xc1};
    static const uint8_t watch_max[] = {6, 0, 0, 0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0, 0, 0, 0x27, 0x11};
    static const uint8_t watch_key[] = {6, 0, 0, 0, 0, 0, 0, 0, 0,
                                        0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t unknown[] = {7};
    static const uint8_t zero[] = {0};

    assert_int_equal(dec("k", get, 0, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "empty payload"));
    assert_int_equal(dec("k", unknown, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "unknown op 7");
    assert_int_equal(dec("k", zero, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "unknown op 0");
    assert_int_equal(dec("k", get_extra, 2, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_int_equal(dec("k", put_short, sizeof(put_short), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_string_equal(err, "ferry.kv: payload of op 2 needs 9 bytes after "
                             "op, got 2");
    assert_int_equal(dec("k", put_cond, sizeof(put_cond), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "cond 3"));
    assert_int_equal(dec("k", del_absent, sizeof(del_absent), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(dec("k", del_long, sizeof(del_long), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(dec("k", range_limit, sizeof(range_limit), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "limit 10001"));
    assert_int_equal(dec("k", range_elen, sizeof(range_elen), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "elen 9"));
    assert_int_equal(dec("k", range_pfx_end, sizeof(range_pfx_end), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(dec("k", range_ko, sizeof(range_ko), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "keys_only"));
    assert_int_equal(dec("k", range_mode, sizeof(range_mode), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "mode 2"));
    assert_int_equal(dec("k", count_big, sizeof(count_big), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "end of 449 bytes"));
    assert_int_equal(dec("k", watch_max, sizeof(watch_max), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "max_events 10001"));
    /* A key watch needs a key; a get too. */
    assert_int_equal(dec("", watch_key, sizeof(watch_key), &r, err),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "key of 0 bytes"));
    assert_int_equal(dec("", get, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    memset(big, 'k', sizeof(big));
    big[KV_KEY_MAX + 1] = '\0';
    assert_int_equal(dec(big, get, 1, &r, err), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "key of 449 bytes, needs 1 to 448"));
    big[KV_KEY_MAX] = '\0';
    assert_int_equal(dec(big, get, 1, &r, err), FERRY_OK);
}

static void
test_encode_round_trip(void **state)
{
    struct kv_req r = {0}, back;
    uint8_t buf[64];
    char err[KV_CODEC_ERR_SIZE];
    size_t n;

    r.op = KV_OP_RANGE;
    r.mode = KV_MODE_RANGE;
    r.end = sl("b", 1);
    r.limit = 50;
    n = kv_codec_write_request(buf, &r);
    assert_int_equal(n, kv_codec_write_request(NULL, &r));
    assert_int_equal(n, 1 + 8 + 1);
    assert_int_equal(kv_codec_decode(sl("a", 1), sl(buf, n), &back, err),
                     FERRY_OK);
    assert_int_equal(back.limit, 50);
    assert_int_equal(back.end.len, 1);

    memset(&r, 0, sizeof(r));
    r.op = KV_OP_PUT;
    r.cond = KV_COND_ABSENT;
    r.value = sl("val", 3);
    n = kv_codec_write_request(buf, &r);
    assert_int_equal(n, 13);
    assert_int_equal(kv_codec_decode(sl("a", 1), sl(buf, n), &back, err),
                     FERRY_OK);
    assert_int_equal(back.cond, KV_COND_ABSENT);
    assert_memory_equal(back.value.p, "val", 3);

    memset(&r, 0, sizeof(r));
    r.op = KV_OP_WATCH;
    r.from_rev = 12;
    r.wait_ms = 1000;
    r.max_events = 3;
    n = kv_codec_write_request(buf, &r);
    assert_int_equal(n, 18);
    assert_int_equal(kv_codec_decode(sl("a", 1), sl(buf, n), &back, err),
                     FERRY_OK);
    assert_false(back.prefix);
    assert_int_equal(back.from_rev, 12);
}

static void
test_replies(void **state)
{
    uint8_t buf[256], *p = buf;
    struct kv_reply rep;
    struct kv_meta m = {3, 7, 2}, m2;
    struct slice rest, k, v;
    uint8_t t;

    /* GET hit: status, rev, meta, value. */
    *p++ = KV_ST_OK;
    p = be_put_u64(p, 9);
    kv_codec_write_meta(p, &m);
    p += KV_META;
    memcpy(p, "xyz", 3);
    p += 3;
    assert_int_equal(kv_codec_decode_reply(KV_OP_GET, sl(buf, p - buf), &rep),
                     FERRY_OK);
    assert_int_equal(rep.rev, 9);
    assert_int_equal(rep.meta.create_rev, 3);
    assert_int_equal(rep.meta.mod_rev, 7);
    assert_int_equal(rep.meta.version, 2);
    assert_int_equal(rep.value.len, 3);
    /* Torn: shorter than the meta. */
    assert_int_equal(kv_codec_decode_reply(KV_OP_GET, sl(buf, 20), &rep),
                     FERRY_EPROTO);
    /* GET miss: status and rev only. */
    buf[0] = KV_ST_NOT_FOUND;
    assert_int_equal(kv_codec_decode_reply(KV_OP_GET, sl(buf, 9), &rep),
                     FERRY_OK);
    assert_int_equal(kv_codec_decode_reply(KV_OP_GET, sl(buf, 10), &rep),
                     FERRY_EPROTO);
    /* A status past EXISTS. */
    buf[0] = 4;
    assert_int_equal(kv_codec_decode_reply(KV_OP_PUT, sl(buf, 9), &rep),
                     FERRY_EPROTO);

    /* RANGE: rev, more, n, entries. */
    p = buf;
    *p++ = KV_ST_OK;
    p = be_put_u64(p, 11);
    *p++ = 1;
    p = be_put_u32(p, 2);
    p += kv_codec_write_entry(p, false, 0, sl("a", 1), &m, sl("1", 1));
    p += kv_codec_write_entry(p, false, 0, sl("bb", 2), &m, sl("", 0));
    assert_int_equal(kv_codec_decode_reply(KV_OP_RANGE, sl(buf, p - buf), &rep),
                     FERRY_OK);
    assert_true(rep.more);
    assert_int_equal(rep.n, 2);
    rest = rep.entries;
    assert_true(kv_codec_next_entry(&rest, false, &t, &k, &m2, &v));
    assert_memory_equal(k.p, "a", 1);
    assert_int_equal(m2.mod_rev, 7);
    assert_true(kv_codec_next_entry(&rest, false, &t, &k, &m2, &v));
    assert_int_equal(k.len, 2);
    assert_false(kv_codec_next_entry(&rest, false, &t, &k, &m2, &v));
    /* One byte short, or one entry claimed too many. */
    assert_int_equal(
        kv_codec_decode_reply(KV_OP_RANGE, sl(buf, p - buf - 1), &rep),
        FERRY_EPROTO);
    be_put_u32(buf + 10, 3);
    assert_int_equal(kv_codec_decode_reply(KV_OP_RANGE, sl(buf, p - buf), &rep),
                     FERRY_EPROTO);

    /* WATCH: rev, n, events (with their type). */
    p = buf;
    *p++ = KV_ST_OK;
    p = be_put_u64(p, 12);
    p = be_put_u32(p, 1);
    p += kv_codec_write_entry(p, true, 1, sl("a", 1), &m, sl("", 0));
    assert_int_equal(kv_codec_decode_reply(KV_OP_WATCH, sl(buf, p - buf), &rep),
                     FERRY_OK);
    rest = rep.entries;
    assert_true(kv_codec_next_entry(&rest, true, &t, &k, &m2, &v));
    assert_int_equal(t, 1);
    assert_int_equal(p - buf, 13 + KV_EVENT_HEAD + 1);
    buf[13] = 2; /* no such event type */
    assert_int_equal(kv_codec_decode_reply(KV_OP_WATCH, sl(buf, p - buf), &rep),
                     FERRY_EPROTO);

    /* COUNT. */
    p = buf;
    *p++ = KV_ST_OK;
    p = be_put_u64(p, 5);
    p = be_put_u64(p, 42);
    assert_int_equal(kv_codec_decode_reply(KV_OP_COUNT, sl(buf, 17), &rep),
                     FERRY_OK);
    assert_int_equal(rep.count, 42);
}

static void
test_stored_and_range(void **state)
{
    uint8_t buf[KV_META + 4];
    struct kv_meta m = {1, 2, 3}, back;
    struct slice v;
    struct kv_req r = {0};

    kv_codec_write_meta(buf, &m);
    memcpy(buf + KV_META, "abcd", 4);
    assert_true(kv_codec_read_stored(buf, sizeof(buf), &back, &v));
    assert_int_equal(back.version, 3);
    assert_int_equal(v.len, 4);
    assert_false(kv_codec_read_stored(buf, KV_META - 1, &back, &v));

    r.op = KV_OP_RANGE;
    r.mode = KV_MODE_PREFIX;
    r.key = sl("p/", 2);
    assert_true(kv_codec_in_range(&r, sl("p/a", 3)));
    assert_true(kv_codec_in_range(&r, sl("p/", 2)));
    assert_false(kv_codec_in_range(&r, sl("p", 1)));
    assert_false(kv_codec_in_range(&r, sl("q/a", 3)));
    r.mode = KV_MODE_RANGE;
    r.key = sl("b", 1);
    r.end = sl("d", 1);
    assert_false(kv_codec_in_range(&r, sl("a", 1)));
    assert_true(kv_codec_in_range(&r, sl("b", 1)));
    assert_true(kv_codec_in_range(&r, sl("c\xff", 2)));
    assert_false(kv_codec_in_range(&r, sl("d", 1)));
    r.end = sl("", 0);
    assert_true(kv_codec_in_range(&r, sl("zzz", 3)));
    r.op = KV_OP_WATCH;
    r.prefix = false;
    r.key = sl("k", 1);
    assert_true(kv_codec_in_range(&r, sl("k", 1)));
    assert_false(kv_codec_in_range(&r, sl("k2", 2)));
    r.prefix = true;
    assert_true(kv_codec_in_range(&r, sl("k2", 2)));
    assert_string_equal(kv_codec_op_name(KV_OP_WATCH), "watch");
    assert_string_equal(kv_codec_op_name(0), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ops),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_stored_and_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
