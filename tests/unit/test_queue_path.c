/* SPDX-License-Identifier: MIT */
/*
 * test_queue_path.c - the routes under /v1/queues (http/queue_path.c):
 * each route's method and op, the list route, 404 for paths that are no
 * route and 405 with the right Allow, queue names and job ids, every
 * query parameter at and past its bounds, parameters unknown to a route
 * or given twice, the token and the dedup id from the query or a header,
 * the bodies, and that what is accepted is what ferry.queue's own
 * decoder accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/queue_path.h"

static uint8_t scratch[8192];
static struct queue_path qp;
static const char *allow;
static char err[QUEUE_PATH_ERR_SIZE];

static struct slice
s_of(const char *s)
{
    return (struct slice){(const uint8_t *)s, s != NULL ? strlen(s) : 0};
}

/* Parses a request with optional headers (NULL: absent) and body. */
static int
parse_full(const char *method, const char *path, const char *body,
           const char *token, const char *dedup)
{
    struct queue_path_in in;

    in.method = s_of(method);
    in.path = s_of(path);
    in.body = s_of(body);
    in.token = s_of(token);
    in.dedup = s_of(dedup);
    allow = NULL;
    err[0] = '\0';
    memset(&qp, 0xa5, sizeof(qp));
    return queue_path_parse(&in, scratch, &qp, &allow, err);
}

static int
parse(const char *method, const char *path)
{
    return parse_full(method, path, NULL, NULL, NULL);
}

static void
assert_queue(const char *name)
{
    assert_int_equal(qp.r.queue.len, strlen(name));
    assert_memory_equal(qp.r.queue.p, name, strlen(name));
}

/* The request accepted is one ferry.queue's decoder takes, the same. */
static void
assert_round_trip(void)
{
    uint8_t buf[4096];
    struct queue_req d;
    char derr[QUEUE_CODEC_ERR_SIZE];
    size_t n = queue_codec_write_request(NULL, &qp.r);

    assert_true(n <= sizeof(buf));
    assert_int_equal(queue_codec_write_request(buf, &qp.r), n);
    assert_int_equal(
        queue_codec_decode(qp.r.queue, (struct slice){buf, n}, &d, derr),
        FERRY_OK);
    assert_int_equal(d.op, qp.r.op);
    assert_int_equal(d.id, qp.r.id);
    assert_int_equal(d.token, qp.r.token);
    assert_int_equal(d.priority, qp.r.priority);
    assert_int_equal(d.delay_ms, qp.r.delay_ms);
    assert_int_equal(d.visibility_ms, qp.r.visibility_ms);
    assert_int_equal(d.wait_ms, qp.r.wait_ms);
    assert_int_equal(d.dedup.len, qp.r.dedup.len);
}

static void
test_routes(void **state)
{
    static const struct {
        const char *method, *path;
        uint8_t op;
    } ok[] = {
        {"GET", "/v1/queues/q", QUEUE_OP_STATS},
        {"HEAD", "/v1/queues/q", QUEUE_OP_STATS},
        {"DELETE", "/v1/queues/q", QUEUE_OP_DELETE},
        {"POST", "/v1/queues/q/jobs", QUEUE_OP_PUSH},
        {"POST", "/v1/queues/q/reserve", QUEUE_OP_RESERVE},
        {"GET", "/v1/queues/q/peek", QUEUE_OP_PEEK},
        {"POST", "/v1/queues/q/pause", QUEUE_OP_PAUSE},
        {"POST", "/v1/queues/q/resume", QUEUE_OP_RESUME},
        {"POST", "/v1/queues/q/purge", QUEUE_OP_PURGE},
        {"POST", "/v1/queues/q/redrive", QUEUE_OP_REDRIVE},
        {"GET", "/v1/queues/q/settings", QUEUE_OP_STATS},
        {"POST", "/v1/queues/q/jobs/7/ack?token=9", QUEUE_OP_ACK},
        {"POST", "/v1/queues/q/jobs/7/release?token=9", QUEUE_OP_RELEASE},
        {"POST", "/v1/queues/q/jobs/7/touch?token=9", QUEUE_OP_TOUCH},
        {"POST", "/v1/queues/q/jobs/7/bury?token=9", QUEUE_OP_BURY},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(ok[i].method, ok[i].path), 0);
        assert_int_equal(qp.r.op, ok[i].op);
        assert_queue("q");
        assert_int_equal(qp.head, strcmp(ok[i].method, "HEAD") == 0);
        assert_int_equal(qp.settings, strstr(ok[i].path, "settings") != NULL);
        assert_false(qp.json);
        if (strstr(ok[i].path, "/jobs/") != NULL) {
            assert_int_equal(qp.r.id, 7);
            assert_int_equal(qp.r.token, 9);
        }
        assert_round_trip();
    }
    assert_int_equal(parse_full("PUT", "/v1/queues/q/settings",
                                "{\"paused\":true}", NULL, NULL),
                     0);
    assert_int_equal(qp.r.op, QUEUE_OP_CONFIGURE);
    assert_int_equal(qp.r.settings.len, 15);
    assert_round_trip();
}

static void
test_list(void **state)
{
    const char *const paths[] = {"/v1/queues", "/v1/queues/", "/v1/queues?"};

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse("GET", paths[i]), 0);
        assert_int_equal(qp.r.op, QUEUE_OP_STATS);
        assert_int_equal(qp.r.queue.len, 0);
        assert_round_trip();
    }
    assert_int_equal(parse("HEAD", "/v1/queues"), 0);
    assert_true(qp.head);
    assert_int_equal(parse("POST", "/v1/queues"), 405);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(parse("GET", "/v1/queues?limit=1"), 400);
}

static void
test_not_found(void **state)
{
    static const char *const paths[] = {
        "/v1/queuesx",
        "/v1/queue",
        "/v1/queues//jobs",
        "/v1/queues/q/",
        "/v1/queues/q/nope",
        "/v1/queues/q/jobs/",
        "/v1/queues/q/jobs/1",
        "/v1/queues/q/jobs/1/nope",
        "/v1/queues/q/reserve/1/ack",
        "/v1/queues/q/jobs/1/ack/more",
        "/v1/queues/q/x/1/ack",
        "/v1/queues/q/jobs//ack",
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(parse("POST", paths[i]), 404);
        assert_true(err[0] != '\0');
    }
}

static void
test_method(void **state)
{
    assert_int_equal(parse("GET", "/v1/queues/q/jobs"), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(parse("PUT", "/v1/queues/q"), 405);
    assert_string_equal(allow, "GET, HEAD, DELETE");
    assert_int_equal(parse("POST", "/v1/queues/q/settings"), 405);
    assert_string_equal(allow, "GET, HEAD, PUT");
    assert_int_equal(parse("GET", "/v1/queues/q/jobs/1/ack"), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(parse("POST", "/v1/queues/q/peek"), 405);
    assert_string_equal(allow, "GET, HEAD");
    /* A method is compared whole. */
    assert_int_equal(parse("POSTX", "/v1/queues/q/jobs"), 405);
    assert_int_equal(parse("", "/v1/queues/q/jobs"), 405);
}

static void
test_names(void **state)
{
    char path[512];

    assert_int_equal(parse("GET", "/v1/queues/a.b:c-d_E9"), 0);
    assert_queue("a.b:c-d_E9");
    assert_int_equal(parse("GET", "/v1/queues/%41b%3ac"), 0);
    assert_queue("Ab:c");
    assert_int_equal(parse("GET", "/v1/queues/a%20b"), 400);
    assert_int_equal(parse("GET", "/v1/queues/a+b"), 400);
    assert_int_equal(parse("GET", "/v1/queues/a%2Fb"), 400);
    assert_int_equal(parse("GET", "/v1/queues/%zz"), 400);
    assert_int_equal(parse("GET", "/v1/queues/%"), 400);
    snprintf(path, sizeof(path), "/v1/queues/%0200d", 0);
    assert_int_equal(parse("GET", path), 0);
    assert_int_equal(qp.r.queue.len, 200);
    snprintf(path, sizeof(path), "/v1/queues/%0201d", 0);
    assert_int_equal(parse("GET", path), 400);
    assert_non_null(strstr(err, "queue name"));
}

static void
test_ids_and_tokens(void **state)
{
    assert_int_equal(parse("POST",
                           "/v1/queues/q/jobs/18446744073709551615/ack?token="
                           "18446744073709551615"),
                     0);
    assert_true(qp.r.id == UINT64_MAX);
    assert_true(qp.r.token == UINT64_MAX);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/18446744073709551616/"
                                   "ack?token=1"),
                     400);
    assert_non_null(strstr(err, "job id"));
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/12a/ack?token=1"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/-1/ack?token=1"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/+1/ack?token=1"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/ack?token=x"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/ack?token="), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/ack"), 400);
    assert_non_null(strstr(err, "token"));
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/ack?token=18446744073709551616"),
        400);
    /* The header, alone or agreeing with the query. */
    assert_int_equal(
        parse_full("POST", "/v1/queues/q/jobs/1/ack", NULL, "42", NULL), 0);
    assert_int_equal(qp.r.token, 42);
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs/1/ack?token=42",
                                NULL, "42", NULL),
                     0);
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs/1/ack?token=41",
                                NULL, "42", NULL),
                     400);
    assert_int_equal(
        parse_full("POST", "/v1/queues/q/jobs/1/ack", NULL, "4 2", NULL), 400);
    assert_int_equal(
        parse_full("POST", "/v1/queues/q/jobs/1/ack", NULL, "", NULL), 400);
}

static void
test_push(void **state)
{
    char path[512];

    assert_int_equal(parse_full("POST",
                                "/v1/queues/q/jobs?priority=-32768&delay_ms="
                                "4294967295&visibility_ms=1&max_deliveries="
                                "65535&dedup=a%2Bb+c",
                                "the job", NULL, NULL),
                     0);
    assert_int_equal(qp.r.priority, -32768);
    assert_true(qp.r.delay_ms == UINT32_MAX);
    assert_int_equal(qp.r.visibility_ms, 1);
    assert_int_equal(qp.r.max_deliveries, 65535);
    assert_int_equal(qp.r.dedup.len, 5);
    assert_memory_equal(qp.r.dedup.p, "a+b c", 5);
    assert_int_equal(qp.r.payload.len, 7);
    assert_queue("q");
    assert_round_trip();
    assert_int_equal(parse("POST", "/v1/queues/q/jobs?priority=32767"), 0);
    assert_int_equal(qp.r.priority, 32767);
    assert_int_equal(qp.r.payload.len, 0);

    static const char *const bad[] = {
        "priority=32768",
        "priority=-32769",
        "priority=",
        "priority=-",
        "priority=1.5",
        "priority=0x10",
        "priority= 1",
        "delay_ms=4294967296",
        "delay_ms=-1",
        "delay_ms=99999999999999999999999",
        "visibility_ms=4294967296",
        "max_deliveries=65536",
        "dedup=",
        "token=1",
        "wait_ms=1",
        "priority=1&priority=2",
        "priority",
        "bogus=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/v1/queues/q/jobs?%s", bad[i]);
        assert_int_equal(parse("POST", path), 400);
        assert_true(err[0] != '\0');
    }
    /* Empty pairs are skipped. */
    assert_int_equal(parse("POST", "/v1/queues/q/jobs?&priority=1&&"), 0);
    assert_int_equal(qp.r.priority, 1);
}

static void
test_dedup(void **state)
{
    char path[512], id[200];

    memset(id, 'd', 128);
    id[128] = '\0';
    snprintf(path, sizeof(path), "/v1/queues/q/jobs?dedup=%s", id);
    assert_int_equal(parse("POST", path), 0);
    assert_int_equal(qp.r.dedup.len, 128);
    assert_round_trip();
    snprintf(path, sizeof(path), "/v1/queues/q/jobs?dedup=%sd", id);
    assert_int_equal(parse("POST", path), 400);
    assert_non_null(strstr(err, "dedup"));
    assert_int_equal(
        parse_full("POST", "/v1/queues/q/jobs", "x", NULL, "order-1"), 0);
    assert_int_equal(qp.r.dedup.len, 7);
    assert_memory_equal(qp.r.dedup.p, "order-1", 7);
    assert_int_equal(
        parse_full("POST", "/v1/queues/q/jobs?dedup=a", "x", NULL, "a"), 400);
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs", "x", NULL, ""),
                     400);
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs", "x", NULL, id), 0);
    id[128] = 'd';
    id[129] = '\0';
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs", "x", NULL, id),
                     400);
}

static void
test_reserve(void **state)
{
    assert_int_equal(parse("POST", "/v1/queues/q/reserve?wait_ms=600000&"
                                   "visibility_ms=4294967295&format=json"),
                     0);
    assert_int_equal(qp.r.wait_ms, 600000);
    assert_true(qp.r.visibility_ms == UINT32_MAX);
    assert_true(qp.json);
    assert_round_trip();
    assert_int_equal(parse("POST", "/v1/queues/q/reserve?format=raw"), 0);
    assert_false(qp.json);
    assert_int_equal(qp.r.wait_ms, 0);
    assert_int_equal(parse("POST", "/v1/queues/q/reserve?wait_ms=600001"), 400);
    assert_non_null(strstr(err, "wait_ms"));
    assert_int_equal(parse("POST", "/v1/queues/q/reserve?format=xml"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/reserve?priority=1"), 400);
    assert_non_null(strstr(err, "wait_ms, format"));
}

static void
test_job_ops(void **state)
{
    char reason[1100];

    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/release?token=2&delay_ms=500"), 0);
    assert_int_equal(qp.r.delay_ms, 500);
    assert_round_trip();
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/release?token=2&backoff=1"), 0);
    assert_true(qp.r.delay_ms == QUEUE_RELEASE_BACKOFF);
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/release?token=2&backoff=false"), 0);
    assert_int_equal(qp.r.delay_ms, 0);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/release?token=2&"
                                   "backoff=1&delay_ms=5"),
                     400);
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/release?token=2&backoff=2"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/release?token=2&"
                                   "delay_ms=4294967295"),
                     400);
    assert_int_equal(parse("POST", "/v1/queues/q/jobs/1/release?token=2&"
                                   "delay_ms=4294967294"),
                     0);
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/touch?token=2&visibility_ms=9"), 0);
    assert_int_equal(qp.r.visibility_ms, 9);
    assert_round_trip();
    assert_int_equal(
        parse("POST", "/v1/queues/q/jobs/1/ack?token=2&delay_ms=1"), 400);
    memset(reason, 'r', 1024);
    reason[1024] = '\0';
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs/1/bury?token=2",
                                reason, NULL, NULL),
                     0);
    assert_int_equal(qp.r.reason.len, 1024);
    assert_round_trip();
    reason[1024] = 'r';
    reason[1025] = '\0';
    assert_int_equal(parse_full("POST", "/v1/queues/q/jobs/1/bury?token=2",
                                reason, NULL, NULL),
                     400);
}

static void
test_admin_ops(void **state)
{
    char big[QUEUE_SETTINGS_MAX + 2];

    assert_int_equal(parse("GET", "/v1/queues/q/peek?which=dead&limit=1000"),
                     0);
    assert_int_equal(qp.r.which, QUEUE_PEEK_DEAD);
    assert_int_equal(qp.r.limit, 1000);
    assert_round_trip();
    assert_int_equal(parse("GET", "/v1/queues/q/peek?which=reserved"), 0);
    assert_int_equal(qp.r.which, QUEUE_PEEK_RESERVED);
    assert_int_equal(parse("GET", "/v1/queues/q/peek?which=delayed"), 0);
    assert_int_equal(qp.r.which, QUEUE_PEEK_DELAYED);
    assert_int_equal(parse("GET", "/v1/queues/q/peek"), 0);
    assert_int_equal(qp.r.which, QUEUE_PEEK_READY);
    assert_int_equal(qp.r.limit, 0);
    assert_int_equal(parse("GET", "/v1/queues/q/peek?limit=1001"), 400);
    assert_int_equal(parse("GET", "/v1/queues/q/peek?which=all"), 400);
    assert_int_equal(parse("GET", "/v1/queues/q/peek?which=Ready"), 400);
    assert_int_equal(parse("POST", "/v1/queues/q/redrive?limit=4294967295"), 0);
    assert_true(qp.r.limit == UINT32_MAX);
    assert_round_trip();
    assert_int_equal(parse("POST", "/v1/queues/q/redrive?limit=4294967296"),
                     400);
    assert_int_equal(parse("POST", "/v1/queues/q/purge?limit=1"), 400);
    assert_non_null(strstr(err, "no parameters"));
    assert_int_equal(parse("PUT", "/v1/queues/q/settings"), 400);
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(
        parse_full("PUT", "/v1/queues/q/settings", big, NULL, NULL), 400);
    big[QUEUE_SETTINGS_MAX] = '\0';
    assert_int_equal(
        parse_full("PUT", "/v1/queues/q/settings", big, NULL, NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),    cmocka_unit_test(test_list),
        cmocka_unit_test(test_not_found), cmocka_unit_test(test_method),
        cmocka_unit_test(test_names),     cmocka_unit_test(test_ids_and_tokens),
        cmocka_unit_test(test_push),      cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_reserve),   cmocka_unit_test(test_job_ops),
        cmocka_unit_test(test_admin_ops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
