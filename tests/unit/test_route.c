/* SPDX-License-Identifier: MIT */
/*
 * test_route.c - the gateway's REST routes: parsing route specs (and
 * refusing bad ones), matching paths segment by segment (trailing slash,
 * empty parameters, other methods), and the JSON payload built from the
 * path parameters (numbers, strings, percent-decoding, escaping).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/respond.h"
#include "http/route.h"

static void
test_parse(void **state)
{
    struct route r;
    char err[256];

    assert_int_equal(route_parse("GET /fib/{n} fib", &r, err, sizeof(err)),
                     FERRY_OK);
    assert_string_equal(r.method, "GET");
    assert_int_equal(r.service_len, 3);
    assert_memory_equal(r.service, "fib", 3);
    assert_int_equal(r.n_segs, 2);
    assert_int_equal(r.n_params, 1);
    assert_false(r.segs[0].param);
    assert_int_equal(r.segs[0].len, 3);
    assert_true(r.segs[1].param);
    assert_int_equal(r.segs[1].len, 1);
    assert_memory_equal(r.segs[1].text, "n", 1);
    route_release(&r);

    assert_int_equal(
        route_parse("  POST\t/a/{x}/b/{y_2}   svc.v1 ", &r, err, sizeof(err)),
        FERRY_OK);
    assert_int_equal(r.n_segs, 4);
    assert_int_equal(r.n_params, 2);
    route_release(&r);
}

static void
test_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "GET /fib/{n}",
        "GET /fib/{n} fib extra",
        "get /fib/{n} fib",
        "GET fib/{n} fib",
        "GET /fib/{} fib",
        "GET /fib/{n-m} fib",
        "GET /fib/x{n} fib",
        "GET /a/{n}/{n} fib",
        "GET /fib/{n} bad/name",
        "VERYLONGMETHODNAME /x s",
    };
    struct route r;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(route_parse(bad[i], &r, err, sizeof(err)),
                         FERRY_EINVALID_ARGUMENT);
        assert_non_null(strstr(err, "route '"));
    }
}

static void
test_match(void **state)
{
    struct route r;
    struct slice p[ROUTE_MAX_SEGS];
    char err[256];

    assert_int_equal(route_parse("GET /fib/{n} fib", &r, err, sizeof(err)),
                     FERRY_OK);
    assert_true(route_match(&r, "/fib/25", 7, p));
    assert_int_equal(p[0].len, 2);
    assert_memory_equal(p[0].p, "25", 2);
    assert_true(route_match(&r, "/fib/abc", 8, p));
    assert_false(route_match(&r, "/fib/1/", 7, p));
    assert_false(route_match(&r, "/fib/", 5, p));
    assert_false(route_match(&r, "/fib", 4, p));
    assert_false(route_match(&r, "/fibs/1", 7, p));
    assert_false(route_match(&r, "/fib/1/2", 8, p));
    assert_false(route_match(&r, "fib/1", 5, p));
    assert_false(route_match(&r, "", 0, p));
    route_release(&r);

    assert_int_equal(
        route_parse("GET /u/{id}/posts/{post} s", &r, err, sizeof(err)),
        FERRY_OK);
    assert_true(route_match(&r, "/u/7/posts/x", 12, p));
    assert_memory_equal(p[0].p, "7", 1);
    assert_memory_equal(p[1].p, "x", 1);
    assert_false(route_match(&r, "/u/7/post/x", 11, p));
    route_release(&r);

    assert_int_equal(route_parse("GET / root", &r, err, sizeof(err)), FERRY_OK);
    assert_true(route_match(&r, "/", 1, p));
    assert_false(route_match(&r, "/x", 2, p));
    route_release(&r);
}

static void
test_find(void **state)
{
    static char *const specs[] = {"GET /fib/{n} fib", "POST /fib/{n} fibw",
                                  "GET /x s"};
    struct route_table t;
    struct slice p[ROUTE_MAX_SEGS];
    const struct route *r;
    bool known;
    char err[256];

    assert_int_equal(route_table_init(&t, specs, 3, NULL, err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(t.n, 3);
    r = route_find(&t, "GET", 3, "/fib/3", 6, p, &known);
    assert_non_null(r);
    assert_memory_equal(r->service, "fib", 3);
    r = route_find(&t, "POST", 4, "/fib/3", 6, p, &known);
    assert_non_null(r);
    assert_memory_equal(r->service, "fibw", 4);
    r = route_find(&t, "PUT", 3, "/fib/3", 6, p, &known);
    assert_null(r);
    assert_true(known);
    r = route_find(&t, "GET", 3, "/nope", 5, p, &known);
    assert_null(r);
    assert_false(known);
    route_table_release(&t);

    {
        static char *const bad[] = {"GET /a a", "nonsense"};
        size_t at = 99;
        assert_int_equal(route_table_init(&t, bad, 2, &at, err, sizeof(err)),
                         FERRY_EINVALID_ARGUMENT);
        assert_int_equal(at, 1);
        assert_int_equal(t.n, 0);
        assert_null(t.v);
    }
}

static void
test_json_number(void **state)
{
    static const char *const yes[] = {"0",   "-1",   "25",   "1.5",
                                      "1e3", "-0.5", "2E+2", "1.25e-7"};
    static const char *const no[] = {"",   "-",   "01", "1.",  ".5",  "1e",
                                     "+1", "abc", "1a", "0x1", "NaN", "1 "};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_true(route_is_json_number(yes[i], strlen(yes[i])));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        assert_false(route_is_json_number(no[i], strlen(no[i])));
    }
}

/* The payload for path under spec, as a NUL-terminated string. */
static char *
payload_of(const char *spec, const char *path)
{
    struct route r;
    struct slice p[ROUTE_MAX_SEGS];
    char err[256];
    size_t max, n;
    char *out, *scratch;

    assert_int_equal(route_parse(spec, &r, err, sizeof(err)), FERRY_OK);
    assert_true(route_match(&r, path, strlen(path), p));
    max = route_payload_max(&r, strlen(path));
    out = malloc(max + 1);
    scratch = malloc(strlen(path) + 1);
    assert_non_null(out);
    assert_non_null(scratch);
    n = route_payload(&r, p, out, scratch);
    assert_true(n <= max);
    out[n] = '\0';
    free(scratch);
    route_release(&r);
    return out;
}

static void
test_payload(void **state)
{
    static const struct {
        const char *spec;
        const char *path;
        const char *json;
    } cases[] = {
        {"GET /fib/{n} fib", "/fib/25", "{\"n\":25}"},
        {"GET /fib/{n} fib", "/fib/-1", "{\"n\":-1}"},
        {"GET /fib/{n} fib", "/fib/1.5", "{\"n\":1.5}"},
        {"GET /fib/{n} fib", "/fib/1e3", "{\"n\":1e3}"},
        {"GET /fib/{n} fib", "/fib/abc", "{\"n\":\"abc\"}"},
        {"GET /fib/{n} fib", "/fib/01", "{\"n\":\"01\"}"},
        {"GET /fib/{n} fib", "/fib/%32%35", "{\"n\":25}"},
        {"GET /fib/{n} fib", "/fib/a%20b", "{\"n\":\"a b\"}"},
        {"GET /fib/{n} fib", "/fib/%22q%22", "{\"n\":\"\\\"q\\\"\"}"},
        {"GET /fib/{n} fib", "/fib/back%5Cslash", "{\"n\":\"back\\\\slash\"}"},
        {"GET /fib/{n} fib", "/fib/%0A", "{\"n\":\"\\n\"}"},
        {"GET /fib/{n} fib", "/fib/%01", "{\"n\":\"\\u0001\"}"},
        {"GET /fib/{n} fib", "/fib/%zz", "{\"n\":\"%zz\"}"},
        {"GET /fib/{n} fib", "/fib/%", "{\"n\":\"%\"}"},
        {"GET /fib/{n} fib", "/fib/%FF", "{\"n\":\"\\ufffd\"}"},
        {"GET /fib/{n} fib", "/fib/%C3%A9", "{\"n\":\"\xc3\xa9\"}"},
        {"GET /a/{x}/b/{y} s", "/a/1/b/two", "{\"x\":1,\"y\":\"two\"}"},
        {"GET /static s", "/static", "{}"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = payload_of(cases[i].spec, cases[i].path);
        if (strcmp(got, cases[i].json) != 0) {
            print_error("%s: got %s, want %s\n", cases[i].path, got,
                        cases[i].json);
        }
        assert_string_equal(got, cases[i].json);
        free(got);
    }
}

static void
test_status_of(void **state)
{
    assert_int_equal(http_status_of(FERRY_OK), 200);
    assert_int_equal(http_status_of(FERRY_EINVALID_ARGUMENT), 400);
    assert_int_equal(http_status_of(FERRY_EUNKNOWN_SERVICE), 404);
    assert_int_equal(http_status_of(FERRY_ETOO_BIG), 413);
    assert_int_equal(http_status_of(FERRY_EOVERLOADED), 503);
    assert_int_equal(http_status_of(FERRY_ENO_WORKER), 503);
    assert_int_equal(http_status_of(FERRY_ESHUTTING_DOWN), 503);
    assert_int_equal(http_status_of(FERRY_ECIRCUIT_OPEN), 503);
    assert_int_equal(http_status_of(FERRY_ESERVICE_DISABLED), 503);
    assert_int_equal(http_status_of(FERRY_EWORKER_LOST), 502);
    assert_int_equal(http_status_of(FERRY_EWORKER_ERROR), 502);
    assert_int_equal(http_status_of(FERRY_EDEADLINE), 504);
    assert_int_equal(http_status_of(FERRY_ENOMEM), 500);
    assert_int_equal(http_status_of(FERRY_ECANCELLED), 500);
}

static void
test_json_escape(void **state)
{
    char out[HTTP_JSON_ESCAPED_MAX(8)];
    size_t n;

    n = http_json_escape(out, "a\"\\\t\x7f", 5);
    assert_int_equal(n, 10);
    assert_memory_equal(out, "\"a\\\"\\\\\\t\x7f\"", 10);
    /* A cut UTF-8 sequence is replaced, not passed on. */
    n = http_json_escape(out, "\xc3", 1);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "\"\\ufffd\"", 8);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_match),       cmocka_unit_test(test_find),
        cmocka_unit_test(test_json_number), cmocka_unit_test(test_payload),
        cmocka_unit_test(test_status_of),   cmocka_unit_test(test_json_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
