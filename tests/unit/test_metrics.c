/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c - the Prometheus exposition and the /v1/stats document
 * of a broker with services fed through the request path's counters:
 * every family declared, label values escaped and valid UTF-8, cumulative
 * histogram buckets ending at +Inf equal to _count, and the JSON figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/broker.h"
#include "broker/service.h"
#include "core/config.h"
#include "core/loop.h"
#include "http/metrics.h"

struct fixture {
    struct config cfg;
    struct loop loop;
    struct broker broker;
};

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    assert_int_equal(config_init(&fx->cfg), FERRY_OK);
    assert_int_equal(loop_init(&fx->loop, &fx->cfg), FERRY_OK);
    assert_int_equal(broker_init(&fx->broker, &fx->loop), FERRY_OK);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;

    broker_release(&fx->broker);
    loop_release(&fx->loop);
    config_release(&fx->cfg);
    free(fx);
    return 0;
}

static struct service *
service(struct fixture *fx, const char *name)
{
    ferry_err err = FERRY_OK;
    struct service *svc =
        broker_service(&fx->broker, slice_str(name), true, &err);

    assert_non_null(svc);
    return svc;
}

/* Feeds svc: n requests, n - errs replies of lat_us, errs DEADLINE. */
static void
feed(struct service *svc, unsigned n, unsigned errs, uint64_t lat_us)
{
    for (unsigned i = 0; i < n; i++) {
        service_count_request(svc);
        if (i < errs) {
            service_count_error(svc, FERRY_EDEADLINE);
        } else {
            service_count_reply(svc, lat_us);
        }
    }
}

static char *
render(struct fixture *fx)
{
    char *text = NULL;
    size_t len = 0;
    const char *dump = getenv("FERRY_METRICS_DUMP");

    assert_int_equal(metrics_render(&fx->broker, &text, &len), FERRY_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    if (dump != NULL) {
        FILE *f = fopen(dump, "w");
        if (f != NULL) {
            fwrite(text, 1, len, f);
            fclose(f);
        }
    }
    return text;
}

static void
test_families_declared(void **state)
{
    static const char *const families[] = {
        "ferry_requests_total counter",
        "ferry_replies_total counter",
        "ferry_errors_total counter",
        "ferry_in_flight gauge",
        "ferry_queued gauge",
        "ferry_workers gauge",
        "ferry_request_duration_seconds histogram",
        "ferry_connections gauge",
        "ferry_uptime_seconds gauge",
        "process_resident_memory_bytes gauge",
        "process_cpu_seconds_total counter",
    };
    struct fixture *fx = *state;
    char *text = render(fx), line[128];

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        snprintf(line, sizeof(line), "\n# TYPE %s\n", families[i]);
        assert_non_null(strstr(text, line));
        snprintf(line, sizeof(line), "# HELP %.*s ",
                 (int)strcspn(families[i], " "), families[i]);
        assert_non_null(strstr(text, line));
    }
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_null(strchr(text, '\r'));
    free(text);
}

static void
test_counters_and_histogram(void **state)
{
    struct fixture *fx = *state;
    struct service *svc = service(fx, "fib");
    char *text;

    feed(svc, 100, 3, 700);
    feed(svc, 10, 0, 2000000);
    text = render(fx);
    assert_non_null(strstr(text, "\nferry_requests_total{service=\"fib\"} "
                                 "110\n"));
    assert_non_null(strstr(text, "\nferry_replies_total{service=\"fib\"} "
                                 "107\n"));
    assert_non_null(strstr(text, "\nferry_errors_total{service=\"fib\","
                                 "code=\"DEADLINE\"} 3\n"));
    assert_non_null(strstr(text, "\nferry_workers{service=\"fib\"} 0\n"));
    /* 97 at 700 µs: in le=0.001 and above, not in le=0.0005. */
    assert_non_null(strstr(text, "ferry_request_duration_seconds_bucket{"
                                 "service=\"fib\",le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(text, "ferry_request_duration_seconds_bucket{"
                                 "service=\"fib\",le=\"0.001\"} 97\n"));
    assert_non_null(strstr(text, "ferry_request_duration_seconds_bucket{"
                                 "service=\"fib\",le=\"1\"} 97\n"));
    assert_non_null(strstr(text, "ferry_request_duration_seconds_bucket{"
                                 "service=\"fib\",le=\"+Inf\"} 107\n"));
    assert_non_null(strstr(text, "ferry_request_duration_seconds_count{"
                                 "service=\"fib\"} 107\n"));
    /* 97 * 700 µs + 10 * 2 s = 20.0679 s. */
    assert_non_null(strstr(text, "ferry_request_duration_seconds_sum{"
                                 "service=\"fib\"} 20.067900\n"));
    /* The built-in echo is listed, before fib (name order). */
    assert_true(strstr(text, "ferry_requests_total{service=\"echo\"}") <
                strstr(text, "ferry_requests_total{service=\"fib\"}"));
    free(text);
}

static void
test_label_escaping(void **state)
{
    struct fixture *fx = *state;
    ferry_err err = FERRY_OK;
    char *text;

    feed(service(fx, "a\"b\\c"), 1, 0, 10);
    feed(service(fx, "bad\xff\xc3utf8"), 1, 0, 10);
    feed(service(fx, "caf\xc3\xa9"), 1, 0, 10);
    /* A line break cannot even name a service (nor reach a label). */
    assert_null(broker_service(&fx->broker, slice_str("a\nd"), true, &err));
    assert_int_equal(err, FERRY_EINVALID_ARGUMENT);
    text = render(fx);
    assert_non_null(strstr(text, "ferry_requests_total{service="
                                 "\"a\\\"b\\\\c\"} 1\n"));
    assert_non_null(strstr(text, "ferry_requests_total{service="
                                 "\"bad\xef\xbf\xbd\xef\xbf\xbdutf8\"} 1\n"));
    assert_non_null(strstr(text, "ferry_requests_total{service="
                                 "\"caf\xc3\xa9\"} 1\n"));
    free(text);
}

static void
test_stats_json(void **state)
{
    struct fixture *fx = *state;
    struct service *svc = service(fx, "fib");
    json_t *doc, *arr, *s = NULL, *lat, *heat;
    size_t i;

    feed(svc, 50, 5, 300);
    doc = metrics_stats_json(&fx->broker);
    assert_non_null(doc);
    assert_true(json_is_real(json_object_get(doc, "uptime_s")));
    assert_true(json_integer_value(json_object_get(doc, "rss_bytes")) > 0);
    assert_true(json_is_real(json_object_get(doc, "cpu_user_s")));
    assert_true(json_is_real(json_object_get(doc, "cpu_sys_s")));
    assert_true(json_is_object(json_object_get(doc, "connections")));
    assert_int_equal(json_integer_value(json_object_get(doc, "requests")), 50);
    arr = json_object_get(doc, "services");
    assert_true(json_is_array(arr));
    json_array_foreach(arr, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), "fib") == 0) {
            break;
        }
    }
    assert_non_null(s);
    assert_int_equal(json_integer_value(json_object_get(s, "requests")), 50);
    assert_int_equal(json_integer_value(json_object_get(s, "replies")), 45);
    assert_int_equal(json_integer_value(json_object_get(s, "errors_total")), 5);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(s, "errors"), "DEADLINE")),
                     5);
    assert_int_equal(json_integer_value(json_object_get(s, "workers")), 0);
    assert_true(json_is_number(json_object_get(s, "rps")));
    assert_true(json_is_number(json_object_get(s, "rps_60s")));
    assert_true(json_is_number(json_object_get(s, "errors_per_s")));
    lat = json_object_get(s, "latency_us");
    /* The current second counts in the window percentiles. */
    assert_true(json_real_value(json_object_get(
                    json_object_get(lat, "window_60s"), "p50")) > 250);
    assert_true(json_real_value(json_object_get(json_object_get(lat, "total"),
                                                "p99")) > 250);
    heat = json_object_get(s, "heatmap");
    assert_int_equal(json_array_size(json_object_get(heat, "bounds_us")),
                     STATS_HEAT_BOUNDS);
    assert_int_equal(json_array_size(json_object_get(heat, "counts")),
                     STATS_HEAT_BUCKETS);
    json_decref(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_families_declared, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_counters_and_histogram, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_json, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
