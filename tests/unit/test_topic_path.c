/* SPDX-License-Identifier: MIT */
/*
 * test_topic_path.c - the routes under /v1/topics (http/topic_path.c):
 * the publish and the stream route and their methods, 404 for paths that
 * are no route and 405 with the right Allow, subjects and patterns
 * percent-decoded and checked by the trie's rules, every query parameter
 * of the stream at and past its bounds, parameters unknown or given
 * twice, and that what is accepted is what ferry.topic's own decoder
 * accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/topic_path.h"
#include "topic/topic_codec.h"

static uint8_t scratch[8192];
static struct topic_path tp;
static const char *allow;
static char err[TOPIC_PATH_ERR_SIZE];

static struct slice
s_of(const char *s)
{
    return (struct slice){(const uint8_t *)s, s != NULL ? strlen(s) : 0};
}

static int
parse(const char *method, const char *path)
{
    allow = NULL;
    err[0] = '\0';
    memset(&tp, 0xa5, sizeof(tp));
    return topic_path_parse(s_of(method), s_of(path), scratch, &tp, &allow,
                            err);
}

static void
assert_name(const char *name)
{
    assert_int_equal(tp.name.len, strlen(name));
    assert_memory_equal(tp.name.p, name, strlen(name));
}

/* What was accepted is a request ferry.topic's decoder takes, the same:
 * a SUBSCRIBE for a stream, a PUBLISH of body for a publish. */
static void
assert_round_trip(const char *body)
{
    uint8_t buf[4096];
    struct topic_req r, d;
    char derr[TOPIC_CODEC_ERR_SIZE];
    size_t n;

    memset(&r, 0, sizeof(r));
    if (tp.route == TOPIC_PATH_PUBLISH) {
        r.op = TOPIC_OP_PUBLISH;
        r.message = s_of(body);
    } else {
        r.op = TOPIC_OP_SUBSCRIBE;
        r.group = tp.group;
        r.max_pending = tp.max_pending;
        r.policy = tp.policy;
    }
    n = topic_codec_write_request(NULL, &r);
    assert_true(n <= sizeof(buf));
    assert_int_equal(topic_codec_write_request(buf, &r), n);
    assert_int_equal(
        topic_codec_decode(tp.name, (struct slice){buf, n}, &d, derr),
        FERRY_OK);
    assert_int_equal(d.op, r.op);
    if (r.op == TOPIC_OP_SUBSCRIBE) {
        assert_int_equal(d.pattern.len, tp.name.len);
        assert_int_equal(d.group.len, tp.group.len);
        assert_int_equal(d.max_pending, tp.max_pending);
        assert_int_equal(d.policy, tp.policy);
    } else {
        assert_int_equal(d.subject.len, tp.name.len);
        assert_int_equal(d.message.len, r.message.len);
    }
}

static void
test_publish(void **state)
{
    assert_int_equal(parse("POST", "/v1/topics/orders.eu.created"), 0);
    assert_int_equal(tp.route, TOPIC_PATH_PUBLISH);
    assert_name("orders.eu.created");
    assert_round_trip("a message");
    assert_int_equal(parse("POST", "/v1/topics/stream"), 0);
    assert_name("stream");
    /* Percent-decoded: a '/' of a subject comes as %2F. */
    assert_int_equal(parse("POST", "/v1/topics/a%2Fb.c%25d"), 0);
    assert_name("a/b.c%d");
    assert_round_trip("");
    /* An empty query is no parameter. */
    assert_int_equal(parse("POST", "/v1/topics/a?"), 0);
    assert_name("a");
    assert_int_equal(parse("POST", "/v1/topics/a?x=1"), 400);
    assert_non_null(strstr(err, "no parameters"));
    /* ferryd's own subjects pass here; the service refuses them. */
    assert_int_equal(parse("POST", "/v1/topics/ferry.queue.q.pushed"), 0);
}

static void
test_bad_subjects(void **state)
{
    static const char *const bad[] = {
        "/v1/topics/a*",     "/v1/topics/a.*",   "/v1/topics/%3E",
        "/v1/topics/a..b",   "/v1/topics/.a",    "/v1/topics/a.",
        "/v1/topics/a%20b",  "/v1/topics/a%00b", "/v1/topics/a+b%0a",
        "/v1/topics/%C3%A9", "/v1/topics/%2E",
    };
    char path[400];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse("POST", bad[i]), 400);
        assert_non_null(strstr(err, "subject"));
    }
    /* 255 bytes at most. */
    memcpy(path, "/v1/topics/", 11);
    memset(path + 11, 'x', 255);
    path[11 + 255] = '\0';
    assert_int_equal(parse("POST", path), 0);
    path[11 + 255] = 'x';
    path[11 + 256] = '\0';
    assert_int_equal(parse("POST", path), 400);
}

static void
test_stream(void **state)
{
    assert_int_equal(parse("GET", "/v1/topics/orders.*/stream"), 0);
    assert_int_equal(tp.route, TOPIC_PATH_STREAM);
    assert_name("orders.*");
    assert_int_equal(tp.group.len, 0);
    assert_int_equal(tp.max_pending, TOPIC_PENDING_DEFAULT);
    assert_int_equal(tp.policy, TOPIC_POLICY_DROP_OLDEST);
    assert_false(tp.base64);
    assert_int_equal(tp.keepalive_ms, TOPIC_PATH_KEEPALIVE_DEFAULT);
    assert_round_trip(NULL);
    assert_int_equal(parse("GET", "/v1/topics/%3E/stream"), 0);
    assert_name(">");
    assert_int_equal(parse("GET", "/v1/topics/>/stream"), 0);
    assert_name(">");
    assert_int_equal(parse("GET", "/v1/topics/a.*.%3E/stream"), 0);
    assert_name("a.*.>");
    assert_int_equal(parse("GET", "/v1/topics/ferry.%3E/stream"), 0);
    assert_round_trip(NULL);
    assert_int_equal(
        parse("GET", "/v1/topics/a.b/stream?group=workers&max_pending=65536"
                     "&policy=close&encoding=base64&keepalive_ms=1000"),
        0);
    assert_name("a.b");
    assert_int_equal(tp.group.len, 7);
    assert_memory_equal(tp.group.p, "workers", 7);
    assert_int_equal(tp.max_pending, 65536);
    assert_int_equal(tp.policy, TOPIC_POLICY_CLOSE);
    assert_true(tp.base64);
    assert_int_equal(tp.keepalive_ms, 1000);
    assert_round_trip(NULL);
    assert_int_equal(parse("GET", "/v1/topics/a/stream?policy=drop_oldest"
                                  "&encoding=text&&max_pending=1&"),
                     0);
    assert_int_equal(tp.policy, TOPIC_POLICY_DROP_OLDEST);
    assert_false(tp.base64);
    assert_int_equal(tp.max_pending, 1);
    /* The group percent-decoded, after the name in the scratch. */
    assert_int_equal(parse("GET", "/v1/topics/%2A.b/stream?group=g%2F1"), 0);
    assert_name("*.b");
    assert_int_equal(tp.group.len, 3);
    assert_memory_equal(tp.group.p, "g/1", 3);
    assert_int_equal(parse("GET", "/v1/topics/a/stream?keepalive_ms=300000"),
                     0);
    assert_int_equal(tp.keepalive_ms, 300000);
}

static void
test_stream_bad_query(void **state)
{
    static const struct {
        const char *path, *word;
    } bad[] = {
        {"/v1/topics/a/stream?max_pending=0", "max_pending"},
        {"/v1/topics/a/stream?max_pending=65537", "max_pending"},
        {"/v1/topics/a/stream?max_pending=-1", "max_pending"},
        {"/v1/topics/a/stream?max_pending=1x", "max_pending"},
        {"/v1/topics/a/stream?max_pending=99999999999999999999", "max_pending"},
        {"/v1/topics/a/stream?max_pending=", "max_pending"},
        {"/v1/topics/a/stream?policy=drop", "policy"},
        {"/v1/topics/a/stream?policy=Close", "policy"},
        {"/v1/topics/a/stream?encoding=hex", "encoding"},
        {"/v1/topics/a/stream?keepalive_ms=999", "keepalive_ms"},
        {"/v1/topics/a/stream?keepalive_ms=300001", "keepalive_ms"},
        {"/v1/topics/a/stream?group=", "group"},
        {"/v1/topics/a/stream?group=a+b", "group"},
        {"/v1/topics/a/stream?group=a%09b", "group"},
        {"/v1/topics/a/stream?group", "needs a value"},
        {"/v1/topics/a/stream?group=a&group=b", "twice"},
        {"/v1/topics/a/stream?wait_ms=1", "not 'wait_ms'"},
        {"/v1/topics/a/stream?=1", "not ''"},
        {"/v1/topics/a..b/stream", "pattern"},
        {"/v1/topics/a.>.b/stream", "pattern"},
        {"/v1/topics/a*/stream", "pattern"},
        {"/v1/topics/%20/stream", "pattern"},
    };
    char path[600];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse("GET", bad[i].path), 400);
        if (strstr(err, bad[i].word) == NULL) {
            fail_msg("%s: '%s' not in '%s'", bad[i].path, bad[i].word, err);
        }
    }
    /* A group of 256 bytes. */
    snprintf(path, sizeof(path), "/v1/topics/a/stream?group=");
    memset(path + strlen(path), 'g', 256);
    path[26 + 256] = '\0';
    assert_int_equal(parse("GET", path), 400);
    path[26 + 255] = '\0';
    assert_int_equal(parse("GET", path), 0);
    assert_int_equal(tp.group.len, 255);
}

static void
test_not_found_and_methods(void **state)
{
    static const char *const none[] = {
        "/v1/topics",           "/v1/topics/",
        "/v1/topicsx",          "/v1/topics//stream",
        "/v1/topics/a/streams", "/v1/topics/a/b/stream",
        "/v1/topics/a/stream/", "/v1/topics/a/",
        "/v1/topics?x=1",       "/v1/other",
    };

    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(parse("GET", none[i]), 404);
        assert_int_equal(parse("POST", none[i]), 404);
        assert_null(allow);
    }
    assert_int_equal(parse("GET", "/v1/topics/a"), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(parse("PUT", "/v1/topics/a?bad=1"), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(parse("POST", "/v1/topics/a/stream"), 405);
    assert_string_equal(allow, "GET");
    assert_int_equal(parse("HEAD", "/v1/topics/a/stream"), 405);
    assert_string_equal(allow, "GET");
    /* The method first: a bad name on the wrong method is 405. */
    assert_int_equal(parse("DELETE", "/v1/topics/a..b"), 405);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_bad_subjects),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_bad_query),
        cmocka_unit_test(test_not_found_and_methods),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
