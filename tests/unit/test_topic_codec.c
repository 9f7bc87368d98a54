/* SPDX-License-Identifier: MIT */
/*
 * test_topic_codec.c - ferry.topic's payload codec: every op decoded from
 * bytes written by hand (the tables of docs/topics.md), each malformed
 * form refused with a message naming what is wrong, reserved subjects
 * and bad patterns and groups, requests encoded back to the same bytes,
 * POLL entries, the reply decoder on good and torn replies, and every
 * ferry.topic entry of tests/vectors/client_payloads.json (the clients'
 * vectors) read by the daemon's decoder back to its arguments and results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "topic/topic_codec.h"

static struct slice
sl(const void *p, size_t n)
{
    return (struct slice){p, n};
}

static ferry_err
dec(const char *key, const void *p, size_t n, struct topic_req *r, char *err)
{
    return topic_codec_decode(sl(key, strlen(key)), sl(p, n), r, err);
}

static void
test_decode_ops(void **state)
{
    struct topic_req r;
    char err[TOPIC_CODEC_ERR_SIZE];
    static const uint8_t pub[] = {1, 'h', 'i'};
    static const uint8_t sub[] = {2, 2, 'w', 'k', 0, 0, 1, 0, 1};
    static const uint8_t poll[] = {3, 0, 0, 0,    0, 0, 0, 1, 2,
                                   0, 0, 3, 0xe8, 0, 0, 0, 10};
    static const uint8_t uns[] = {4, 0, 0, 0, 0, 0, 0, 0, 9};
    static const uint8_t st0[] = {5};
    static const uint8_t st1[] = {5, 0, 0, 0, 0, 0, 0, 0, 9};

    assert_int_equal(dec("a.b", pub, sizeof(pub), &r, err), FERRY_OK);
    assert_int_equal(r.op, TOPIC_OP_PUBLISH);
    assert_int_equal(r.subject.len, 3);
    assert_int_equal(r.message.len, 2);
    assert_memory_equal(r.message.p, "hi", 2);
    /* An empty message is a message. */
    assert_int_equal(dec("a", pub, 1, &r, err), FERRY_OK);
    assert_int_equal(r.message.len, 0);

    assert_int_equal(dec("a.*.>", sub, sizeof(sub), &r, err), FERRY_OK);
    assert_int_equal(r.op, TOPIC_OP_SUBSCRIBE);
    assert_int_equal(r.pattern.len, 5);
    assert_int_equal(r.group.len, 2);
    assert_memory_equal(r.group.p, "wk", 2);
    assert_int_equal(r.max_pending, 256);
    assert_int_equal(r.policy, TOPIC_POLICY_CLOSE);

    assert_int_equal(dec("", poll, sizeof(poll), &r, err), FERRY_OK);
    assert_int_equal(r.sub_id, 258);
    assert_int_equal(r.wait_ms, 1000);
    assert_int_equal(r.max_msgs, 10);

    assert_int_equal(dec("", uns, sizeof(uns), &r, err), FERRY_OK);
    assert_int_equal(r.op, TOPIC_OP_UNSUBSCRIBE);
    assert_int_equal(r.sub_id, 9);

    assert_int_equal(dec("", st0, sizeof(st0), &r, err), FERRY_OK);
    assert_false(r.one);
    assert_int_equal(dec("", st1, sizeof(st1), &r, err), FERRY_OK);
    assert_true(r.one);
    assert_int_equal(r.sub_id, 9);
}

/* Refused, with a message holding want. */
static void
refused(const char *key, const void *p, size_t n, const char *want)
{
    struct topic_req r;
    char err[TOPIC_CODEC_ERR_SIZE];

    assert_int_equal(dec(key, p, n, &r, err), FERRY_EINVALID_ARGUMENT);
    if (strstr(err, want) == NULL) {
        fail_msg("'%s' does not say '%s'", err, want);
    }
}

static void
test_decode_refuses(void **state)
{
    static const uint8_t sub[] = {2, 0, 0, 0, 0, 0, 0};
    static const uint8_t sub_pol[] = {2, 0, 0, 0, 0, 0, 2};
    static const uint8_t sub_grp[] = {2, 2, 'a', ' ', 0, 0, 0, 0, 0};
    static const uint8_t sub_len[] = {2, 3, 'a', 0, 0, 0, 0, 0};
    static const uint8_t poll[] = {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    static const uint8_t op9[] = {9};
    static const uint8_t op0[] = {0};
    static const uint8_t st[] = {5, 1, 2};

    refused("a", NULL, 0, "empty payload");
    refused("a", op9, 1, "unknown op 9");
    refused("a", op0, 1, "unknown op 0");
    /* Subjects: no wildcards, no empty tokens, not ferryd's. */
    refused("a.*", "\x01", 1, "must be a subject");
    refused("a..b", "\x01", 1, "must be a subject");
    refused("", "\x01", 1, "must be a subject");
    refused("ferry", "\x01", 1, "only ferryd publishes");
    refused("ferry.queue.q.pushed", "\x01", 1, "only ferryd publishes");
    refused("ferry.x", "\x01", 1, "only ferryd publishes");
    refused("a.>.b", sub, sizeof(sub), "must be a pattern");
    refused("a b", sub, sizeof(sub), "must be a pattern");
    refused("a", sub, 3, "at least 6 bytes");
    refused("a", sub_pol, sizeof(sub_pol), "policy 2");
    refused("a", sub_grp, sizeof(sub_grp), "group name");
    refused("a", sub_len, sizeof(sub_len), "group of 3 bytes");
    refused("", poll, sizeof(poll), "poll takes 16 bytes");
    refused("", poll, 9, "poll takes 16 bytes");
    refused("", "\x04\x00", 2, "unsubscribe takes 8 bytes");
    refused("", st, sizeof(st), "stats takes 0 or 8 bytes");
}

static void
test_reserved_and_groups(void **state)
{
    assert_true(topic_subject_is_reserved(sl("ferry", 5)));
    assert_true(topic_subject_is_reserved(sl("ferry.a", 7)));
    assert_false(topic_subject_is_reserved(sl("ferryx", 6)));
    assert_false(topic_subject_is_reserved(sl("ferryx.a", 8)));
    assert_false(topic_subject_is_reserved(sl("a.ferry", 7)));
    assert_false(topic_subject_is_reserved(sl("ferr", 4)));
    assert_true(topic_group_is_valid(sl("w-1.x", 5)));
    assert_false(topic_group_is_valid(sl("", 0)));
    assert_false(topic_group_is_valid(sl("a b", 3)));
    assert_false(topic_group_is_valid(sl("a\x7f", 2)));
}

static void
test_encode_round_trip(void **state)
{
    struct topic_req r, r2;
    char err[TOPIC_CODEC_ERR_SIZE];
    uint8_t buf[64];
    static const uint8_t sub[] = {2, 2, 'w', 'k', 0, 0, 1, 0, 1};
    size_t n;

    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_SUBSCRIBE;
    r.group = sl("wk", 2);
    r.max_pending = 256;
    r.policy = TOPIC_POLICY_CLOSE;
    n = topic_codec_write_request(buf, &r);
    assert_int_equal(n, sizeof(sub));
    assert_int_equal(topic_codec_write_request(NULL, &r), n);
    assert_memory_equal(buf, sub, n);

    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_POLL;
    r.sub_id = UINT64_C(0x0102030405060708);
    r.wait_ms = 25000;
    r.max_msgs = 7;
    n = topic_codec_write_request(buf, &r);
    assert_int_equal(n, 17);
    assert_int_equal(dec("", buf, n, &r2, err), FERRY_OK);
    assert_int_equal(r2.sub_id, r.sub_id);
    assert_int_equal(r2.wait_ms, 25000);
    assert_int_equal(r2.max_msgs, 7);

    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_PUBLISH;
    r.message = sl("payload", 7);
    n = topic_codec_write_request(buf, &r);
    assert_int_equal(n, 8);
    assert_int_equal(dec("x.y", buf, n, &r2, err), FERRY_OK);
    assert_memory_equal(r2.message.p, "payload", 7);

    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_STATS;
    assert_int_equal(topic_codec_write_request(buf, &r), 1);
    r.one = true;
    r.sub_id = 5;
    assert_int_equal(topic_codec_write_request(buf, &r), 9);
    r.op = TOPIC_OP_UNSUBSCRIBE;
    assert_int_equal(topic_codec_write_request(buf, &r), 9);
}

static void
test_replies(void **state)
{
    struct topic_reply rep;
    struct topic_msg_entry e;
    struct slice rest;
    uint8_t b[128];
    size_t n;
    static const uint8_t pub[] = {0, 0, 0, 3, 0xe8};
    static const uint8_t subr[] = {0, 0, 0, 0, 0, 0, 0, 0, 42};
    static const uint8_t empty[] = {1, 0, 0, 0, 0, 0, 0, 0, 5};
    static const uint8_t nf[] = {3};
    static const uint8_t stats[] = {0, '{', '}'};

    assert_int_equal(
        topic_codec_decode_reply(TOPIC_OP_PUBLISH, sl(pub, sizeof(pub)), &rep),
        FERRY_OK);
    assert_int_equal(rep.receivers, 1000);
    assert_int_equal(
        topic_codec_decode_reply(TOPIC_OP_PUBLISH, sl(pub, 4), &rep),
        FERRY_EPROTO);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_SUBSCRIBE,
                                              sl(subr, sizeof(subr)), &rep),
                     FERRY_OK);
    assert_int_equal(rep.sub_id, 42);
    assert_int_equal(
        topic_codec_decode_reply(TOPIC_OP_POLL, sl(empty, sizeof(empty)), &rep),
        FERRY_OK);
    assert_int_equal(rep.status, TOPIC_ST_EMPTY);
    assert_int_equal(rep.dropped, 5);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_POLL, sl(nf, 1), &rep),
                     FERRY_OK);
    assert_int_equal(rep.status, TOPIC_ST_NOT_FOUND);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_STATS,
                                              sl(stats, sizeof(stats)), &rep),
                     FERRY_OK);
    assert_int_equal(rep.json.len, 2);
    assert_int_equal(
        topic_codec_decode_reply(TOPIC_OP_UNSUBSCRIBE, sl(nf, 1), &rep),
        FERRY_OK);

    /* A POLL answer of two entries, then every torn length of it. */
    b[0] = TOPIC_ST_OK;
    be_put_u64(b + 1, 3);
    be_put_u32(b + 9, 2);
    n = TOPIC_POLL_HEAD;
    n += topic_codec_write_msg(b + n, 7, sl("a.b", 3), sl("one", 3));
    n += topic_codec_write_msg(b + n, 8, sl("c", 1), sl("", 0));
    assert_int_equal(n, TOPIC_POLL_HEAD + 14 + 6 + 14 + 1);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_POLL, sl(b, n), &rep),
                     FERRY_OK);
    assert_int_equal(rep.dropped, 3);
    assert_int_equal(rep.n, 2);
    rest = rep.messages;
    assert_true(topic_codec_next_msg(&rest, &e));
    assert_int_equal(e.seq, 7);
    assert_memory_equal(e.subject.p, "a.b", 3);
    assert_memory_equal(e.payload.p, "one", 3);
    assert_true(topic_codec_next_msg(&rest, &e));
    assert_int_equal(e.seq, 8);
    assert_int_equal(e.payload.len, 0);
    assert_false(topic_codec_next_msg(&rest, &e));
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(
            topic_codec_decode_reply(TOPIC_OP_POLL, sl(b, k), &rep),
            FERRY_EPROTO);
    }
    /* A count that promises more than there is. */
    be_put_u32(b + 9, 3);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_POLL, sl(b, n), &rep),
                     FERRY_EPROTO);
    /* Trailing bytes. */
    be_put_u32(b + 9, 1);
    assert_int_equal(topic_codec_decode_reply(TOPIC_OP_POLL, sl(b, n), &rep),
                     FERRY_EPROTO);
}

/* ---- tests/vectors/client_payloads.json: the "topic" entries ---- */

static json_t *vectors;

static size_t
unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;

    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static const char *
str_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    assert_non_null(v);
    return json_string_value(v);
}

static uint64_t
dec_of(json_t *o, const char *k)
{
    return strtoull(str_of(o, k), NULL, 10);
}

static unsigned
op_of(const char *name)
{
    for (unsigned op = 1; op <= TOPIC_OP_MAX; op++) {
        if (strcmp(topic_codec_op_name(op), name) == 0) {
            return op;
        }
    }
    fail_msg("unknown op '%s'", name);
    return 0;
}

static const char *
status_name(uint8_t st)
{
    return st == TOPIC_ST_OK      ? "OK"
           : st == TOPIC_ST_EMPTY ? "EMPTY"
                                  : "NOT_FOUND";
}

static void
test_vectors_requests(void **state)
{
    json_t *list = json_object_get(vectors, "requests"), *v;
    size_t i;

    size_t seen = 0;

    json_array_foreach(list, i, v)
    {
        json_t *a = json_object_get(v, "args");
        uint8_t key[512], pl[1024], again[1024], msg[512];
        size_t kl = unhex(str_of(v, "key_hex"), key, sizeof(key));
        size_t pn = unhex(str_of(v, "payload_hex"), pl, sizeof(pl));
        struct topic_req r;
        char err[TOPIC_CODEC_ERR_SIZE];
        unsigned op;

        if (strcmp(str_of(v, "service"), "topic") != 0) {
            continue;
        }
        seen++;
        op = op_of(str_of(v, "op"));
        if (topic_codec_decode(sl(key, kl), sl(pl, pn), &r, err) != FERRY_OK) {
            fail_msg("request %zu (%s): %s", i, str_of(v, "op"), err);
        }
        assert_int_equal(r.op, op);
        switch (op) {
        case TOPIC_OP_PUBLISH: {
            const char *subj = str_of(a, "subject");
            size_t ml = unhex(str_of(a, "message_hex"), msg, sizeof(msg));
            assert_int_equal(r.subject.len, strlen(subj));
            assert_memory_equal(r.subject.p, subj, r.subject.len);
            assert_int_equal(r.message.len, ml);
            if (ml > 0) {
                assert_memory_equal(r.message.p, msg, ml);
            }
            break;
        }
        case TOPIC_OP_SUBSCRIBE: {
            const char *pat = str_of(a, "pattern"), *g = str_of(a, "group");
            assert_int_equal(r.pattern.len, strlen(pat));
            assert_memory_equal(r.pattern.p, pat, r.pattern.len);
            assert_int_equal(r.group.len, strlen(g));
            if (r.group.len > 0) {
                assert_memory_equal(r.group.p, g, r.group.len);
            }
            assert_int_equal(r.max_pending, json_integer_value(json_object_get(
                                                a, "max_pending")));
            assert_int_equal(r.policy, strcmp(str_of(a, "policy"), "close") == 0
                                           ? TOPIC_POLICY_CLOSE
                                           : TOPIC_POLICY_DROP_OLDEST);
            break;
        }
        case TOPIC_OP_POLL:
            assert_true(r.sub_id == dec_of(a, "sub_id"));
            assert_int_equal(r.wait_ms,
                             json_integer_value(json_object_get(a, "wait_ms")));
            assert_int_equal(
                r.max_msgs, json_integer_value(json_object_get(a, "max_msgs")));
            break;
        case TOPIC_OP_UNSUBSCRIBE:
            assert_true(r.sub_id == dec_of(a, "sub_id"));
            break;
        case TOPIC_OP_STATS:
            assert_int_equal(r.one, json_object_get(a, "sub_id") != NULL);
            if (r.one) {
                assert_true(r.sub_id == dec_of(a, "sub_id"));
            }
            break;
        }
        assert_int_equal(topic_codec_write_request(again, &r), pn);
        assert_memory_equal(again, pl, pn);
    }
    assert_true(seen >= 10);
}

static void
test_vectors_replies(void **state)
{
    json_t *list = json_object_get(vectors, "replies"), *v;
    size_t i;

    size_t seen = 0;

    json_array_foreach(list, i, v)
    {
        uint8_t b[1024];
        size_t n;
        unsigned op;
        json_t *res = json_object_get(v, "result");
        struct topic_reply rep;
        ferry_err e;
        struct topic_msg_entry en;
        struct slice rest;
        json_t *msgs;

        if (strcmp(str_of(v, "service"), "topic") != 0) {
            continue;
        }
        seen++;
        n = unhex(str_of(v, "reply_hex"), b, sizeof(b));
        op = op_of(str_of(v, "op"));
        e = topic_codec_decode_reply(op, sl(b, n), &rep);
        if (res == NULL) {
            if (e != FERRY_EPROTO) {
                fail_msg("reply %zu (%s) is malformed but decodes", i,
                         str_of(v, "op"));
            }
            continue;
        }
        if (e != FERRY_OK) {
            fail_msg("reply %zu (%s) does not decode", i, str_of(v, "op"));
        }
        assert_string_equal(status_name(rep.status), str_of(res, "status"));
        if (json_object_get(res, "receivers") != NULL) {
            assert_int_equal(rep.receivers, json_integer_value(json_object_get(
                                                res, "receivers")));
        }
        if (json_object_get(res, "sub_id") != NULL) {
            assert_true(rep.sub_id == dec_of(res, "sub_id"));
        }
        if (json_object_get(res, "dropped") != NULL) {
            assert_true(rep.dropped == dec_of(res, "dropped"));
        }
        if (json_object_get(res, "stats") != NULL) {
            json_t *doc =
                json_loadb((const char *)rep.json.p, rep.json.len, 0, NULL);
            assert_non_null(doc);
            assert_true(json_equal(doc, json_object_get(res, "stats")));
            json_decref(doc);
        }
        msgs = json_object_get(res, "messages");
        assert_int_equal(rep.n, msgs ? json_array_size(msgs) : 0);
        rest = rep.messages;
        for (size_t k = 0; k < rep.n; k++) {
            json_t *m = json_array_get(msgs, k);
            uint8_t want[256];
            size_t wl = unhex(str_of(m, "payload_hex"), want, sizeof(want));
            const char *subj = str_of(m, "subject");

            assert_true(topic_codec_next_msg(&rest, &en));
            assert_true(en.seq == dec_of(m, "seq"));
            assert_int_equal(en.subject.len, strlen(subj));
            assert_memory_equal(en.subject.p, subj, en.subject.len);
            assert_int_equal(en.payload.len, wl);
            if (wl > 0) {
                assert_memory_equal(en.payload.p, want, wl);
            }
        }
    }
    assert_true(seen >= 20);
}

int
main(void)
{
    const char *path = getenv("FERRY_SERVANT_VECTORS");
    json_error_t jerr;
    int rc;

    vectors = json_load_file(path ? path : "tests/vectors/client_payloads.json",
                             0, &jerr);
    if (vectors == NULL) {
        fprintf(stderr, "test_topic_codec: %s: %s\n", jerr.source, jerr.text);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ops),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_reserved_and_groups),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_vectors_requests),
        cmocka_unit_test(test_vectors_replies),
    };

    rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(vectors);
    return rc;
}
