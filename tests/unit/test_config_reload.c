/* SPDX-License-Identifier: MIT */
/*
 * test_config_reload.c - config_apply(), the heart of hot reload: changed
 * keys move into the running config and are named, restart-only keys keep
 * their running value and are named apart, strings and routes change
 * owner without leaking (ASan checks), and an unchanged config changes
 * nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"

static void
set(struct config *cfg, const char *key, const char *value,
    enum config_source src)
{
    char err[CONFIG_ERR_SIZE];

    if (config_set(cfg, key, value, src, err, sizeof(err)) != FERRY_OK) {
        fail_msg("config_set %s=%s: %s", key, value, err);
    }
}

static bool
named(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void
test_unchanged_changes_nothing(void **state)
{
    struct config live, next;
    struct config_changes ch;

    config_init(&live);
    config_init(&next);
    set(&live, "route", "GET /a/{x} a", CONFIG_SRC_FILE);
    set(&next, "route", "GET /a/{x} a", CONFIG_SRC_FILE);
    set(&live, "caller_token", "t", CONFIG_SRC_FILE);
    set(&next, "caller_token", "t", CONFIG_SRC_FILE);
    config_apply(&live, &next, &ch);
    assert_int_equal(ch.n_applied, 0);
    assert_int_equal(ch.n_kept, 0);
    config_release(&next);
    config_release(&live);
}

static void
test_numbers_level_and_strings_move(void **state)
{
    struct config live, next;
    struct config_changes ch;

    config_init(&live);
    config_init(&next);
    set(&next, "queue_limit", "7", CONFIG_SRC_FILE);
    set(&next, "queue_bytes", "8g", CONFIG_SRC_FILE);
    set(&next, "log_level", "debug", CONFIG_SRC_FILE);
    set(&next, "admin_token", "new-admin", CONFIG_SRC_FILE);
    set(&live, "caller_token", "old-caller", CONFIG_SRC_FILE);
    set(&next, "breaker_probes", "9", CONFIG_SRC_FLAG);
    config_apply(&live, &next, &ch);
    assert_int_equal(live.queue_limit, 7);
    assert_true(live.queue_bytes == UINT64_C(8) << 30);
    assert_int_equal(live.log_level, LOG_LVL_DEBUG);
    assert_string_equal(live.admin_token, "new-admin");
    /* A token unset in the new file is unset in the running config. */
    assert_null(live.caller_token);
    assert_int_equal(live.breaker_probes, 9);
    assert_int_equal(ch.n_applied, 6);
    assert_int_equal(ch.n_kept, 0);
    assert_true(named(ch.applied, ch.n_applied, "queue_limit"));
    assert_true(named(ch.applied, ch.n_applied, "queue_bytes"));
    assert_true(named(ch.applied, ch.n_applied, "log_level"));
    assert_true(named(ch.applied, ch.n_applied, "admin_token"));
    assert_true(named(ch.applied, ch.n_applied, "caller_token"));
    assert_true(named(ch.applied, ch.n_applied, "breaker_probes"));
    /* The old strings went to next, freed with it. */
    assert_string_equal(next.caller_token, "old-caller");
    config_release(&next);
    config_release(&live);
}

static void
test_restart_keys_are_kept(void **state)
{
    struct config live, next;
    struct config_changes ch;

    config_init(&live);
    config_init(&next);
    set(&live, "listen", "127.0.0.1:7700", CONFIG_SRC_FLAG);
    set(&next, "listen", "127.0.0.1:7800", CONFIG_SRC_FLAG);
    set(&next, "http", "off", CONFIG_SRC_FILE);
    set(&next, "name", "other", CONFIG_SRC_FILE);
    set(&next, "data_dir", "/tmp/elsewhere", CONFIG_SRC_FILE);
    set(&next, "max_frame", "1m", CONFIG_SRC_FILE);
    set(&next, "http_header_timeout_ms", "5", CONFIG_SRC_FILE);
    set(&next, "http_idle_timeout_ms", "6", CONFIG_SRC_FILE);
    set(&next, "store_sync", "100", CONFIG_SRC_FILE);
    set(&next, "store_max_bytes", "2g", CONFIG_SRC_FILE);
    set(&next, "grace_ms", "1", CONFIG_SRC_FILE);
    config_apply(&live, &next, &ch);
    assert_int_equal(ch.n_kept, 9);
    assert_int_equal(ch.n_applied, 1);
    assert_string_equal(ch.applied[0], "grace_ms");
    assert_true(named(ch.kept, ch.n_kept, "listen"));
    assert_true(named(ch.kept, ch.n_kept, "http"));
    assert_true(named(ch.kept, ch.n_kept, "max_frame"));
    assert_true(named(ch.kept, ch.n_kept, "store_sync"));
    assert_true(named(ch.kept, ch.n_kept, "store_max_bytes"));
    assert_int_equal(live.store_sync_ms, 0);
    assert_string_equal(live.listen[0], "127.0.0.1:7700");
    assert_string_equal(live.http, CONFIG_HTTP_DEFAULT);
    assert_string_equal(live.name, "ferryd");
    assert_int_equal(live.max_frame, 16777216);
    assert_int_equal(live.http_header_timeout_ms, 10000);
    assert_int_equal(live.grace_ms, 1);
    config_release(&next);
    config_release(&live);
}

static void
test_routes_change_owner_with_lines(void **state)
{
    struct config live, next;
    struct config_changes ch;
    char err[CONFIG_ERR_SIZE];
    FILE *f;
    static const char text[] = "[ferryd]\n"
                               "; a comment\n"
                               "route = GET /x/{a} x\n"
                               "route = POST /y y\n"
                               "route = GET /z z\n";

    config_init(&live);
    config_init(&next);
    f = fmemopen((void *)text, sizeof(text) - 1, "r");
    assert_non_null(f);
    assert_int_equal(config_load_stream(&next, f, "mem", err, sizeof(err)),
                     FERRY_OK);
    fclose(f);
    assert_int_equal(next.route_lines[0], 3);
    assert_int_equal(next.route_lines[2], 5);
    config_apply(&live, &next, &ch);
    assert_int_equal(ch.n_applied, 1);
    assert_string_equal(ch.applied[0], "route");
    assert_int_equal(live.n_routes, 3);
    assert_string_equal(live.routes[1], "POST /y y");
    assert_int_equal(live.route_lines[1], 4);
    /* The default route went to next; both release without leaks. */
    assert_int_equal(next.n_routes, 1);
    assert_string_equal(next.routes[0], CONFIG_ROUTE_DEFAULT);
    assert_int_equal(next.route_lines[0], 0);
    config_release(&next);
    /* And back to fewer routes: the extra ones leave with next. */
    config_init(&next);
    config_apply(&live, &next, &ch);
    assert_int_equal(live.n_routes, 1);
    assert_string_equal(live.routes[0], CONFIG_ROUTE_DEFAULT);
    assert_int_equal(next.n_routes, 3);
    config_release(&next);
    config_release(&live);
}

/* The cache is made with its cap and item limit: a reload keeps both. */
static void
test_cache_keys_need_a_restart(void **state)
{
    struct config live, next;
    struct config_changes ch;

    (void)state;
    config_init(&live);
    config_init(&next);
    set(&next, "cache_max_bytes", "2m", CONFIG_SRC_FILE);
    set(&next, "cache_item_max", "4k", CONFIG_SRC_FILE);
    config_apply(&live, &next, &ch);
    assert_int_equal(ch.n_kept, 2);
    assert_int_equal(ch.n_applied, 0);
    assert_true(named(ch.kept, ch.n_kept, "cache_max_bytes"));
    assert_true(named(ch.kept, ch.n_kept, "cache_item_max"));
    assert_true(live.cache_max_bytes == UINT64_C(64) << 20);
    config_release(&live);
    config_release(&next);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_changes_nothing),
        cmocka_unit_test(test_numbers_level_and_strings_move),
        cmocka_unit_test(test_restart_keys_are_kept),
        cmocka_unit_test(test_cache_keys_need_a_restart),
        cmocka_unit_test(test_routes_change_owner_with_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
