/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - ferryd's settings: defaults, every kind of value, errors
 * that name the key (and the file and line), the INI file, flags over the
 * file, and how listen lists replace one another.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/paths.h"

static void
test_defaults(void **state)
{
    struct config cfg;
    char dir[PATHS_MAX + 1];

    assert_int_equal(config_init(&cfg), FERRY_OK);
    /* The folders come from core/paths.c (tested in test_paths.c). */
    assert_int_equal(paths_default_data_dir(dir, sizeof(dir)), FERRY_OK);
    assert_string_equal(cfg.data_dir, dir);
    assert_null(cfg.run_dir);
    assert_int_equal(cfg.n_listen, 0);
    assert_int_equal(cfg.heartbeat_ms, 2500);
    assert_int_equal(cfg.max_frame, 16777216);
    assert_int_equal(cfg.default_deadline_ms, 5000);
    assert_int_equal(cfg.max_deadline_ms, 60000);
    assert_int_equal(cfg.queue_limit, 1024);
    assert_int_equal(cfg.queue_bytes, 33554432);
    assert_int_equal(cfg.worker_wait_ms, 2000);
    assert_int_equal(cfg.high_water, 4194304);
    assert_int_equal(cfg.low_water, 1048576);
    assert_int_equal(cfg.grace_ms, 5000);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.handshake_timeout_ms, 5000);
    assert_int_equal(cfg.max_services, 4096);
    assert_int_equal(cfg.max_services_per_worker, 256);
    assert_int_equal(cfg.service_idle_forget_ms, 300000);
    assert_int_equal(cfg.log_level, LOG_LVL_INFO);
    config_release(&cfg);
}

static void
test_set_values(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "heartbeat-ms", "100", CONFIG_SRC_FLAG,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.heartbeat_ms, 100);
    assert_int_equal(
        config_set(&cfg, "high_water", "8m", CONFIG_SRC_FILE, err, sizeof(err)),
        FERRY_OK);
    assert_int_equal(cfg.high_water, 8 << 20);
    assert_int_equal(config_set(&cfg, "low_water", "64KiB", CONFIG_SRC_FILE,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.low_water, 64 << 10);
    /* A 64-bit setting keeps a value past 4 GiB whole. */
    cfg.queue_bytes = UINT64_MAX;
    assert_int_equal(config_set(&cfg, "queue_bytes", "8g", CONFIG_SRC_FILE, err,
                                sizeof(err)),
                     FERRY_OK);
    assert_true(cfg.queue_bytes == UINT64_C(8) << 30);
    assert_int_equal(config_set(&cfg, "log_level", "debug", CONFIG_SRC_FILE,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
    assert_int_equal(
        config_set(&cfg, "name", "node-a", CONFIG_SRC_FILE, err, sizeof(err)),
        FERRY_OK);
    assert_string_equal(cfg.name, "node-a");
    /* store_sync: "always" (the default) or milliseconds. */
    assert_int_equal(cfg.store_sync_ms, 0);
    assert_true(cfg.store_max_bytes == UINT64_C(1) << 30);
    assert_int_equal(config_set(&cfg, "store-sync", "50", CONFIG_SRC_FLAG, err,
                                sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.store_sync_ms, 50);
    assert_int_equal(config_set(&cfg, "store_sync", "always", CONFIG_SRC_FILE,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.store_sync_ms, 0);
    assert_int_equal(config_set(&cfg, "store_sync", "0", CONFIG_SRC_FILE, err,
                                sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "always or milliseconds"));
    assert_int_equal(config_set(&cfg, "store_max_bytes", "64m",
                                CONFIG_SRC_FILE, err, sizeof(err)),
                     FERRY_OK);
    assert_true(cfg.store_max_bytes == UINT64_C(64) << 20);
    config_release(&cfg);
}

/* Tokens: off by default, set by key or flag spelling, an empty one is
 * off, a too long one refused without echoing it. */
static void
test_tokens(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    char big[300];

    assert_int_equal(config_init(&cfg), FERRY_OK);
    assert_false(config_token_is_set(cfg.caller_token));
    assert_false(config_token_is_set(cfg.worker_token));
    assert_false(config_token_is_set(cfg.admin_token));
    assert_int_equal(config_set(&cfg, "caller-token", "c1", CONFIG_SRC_FLAG,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_string_equal(cfg.caller_token, "c1");
    assert_int_equal(config_set(&cfg, "worker_token", "w1", CONFIG_SRC_FILE,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_string_equal(cfg.worker_token, "w1");
    assert_int_equal(
        config_set(&cfg, "admin_token", "", CONFIG_SRC_FILE, err, sizeof(err)),
        FERRY_OK);
    assert_false(config_token_is_set(cfg.admin_token));
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(
        config_set(&cfg, "admin_token", big, CONFIG_SRC_FILE, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "admin_token"));
    assert_null(strstr(err, "qqqq"));
    config_release(&cfg);
}

static void
test_bad_values_name_the_key(void **state)
{
    static const char *const bad[][2] = {
        {"heartbeat_ms", "abc"},
        {"heartbeat_ms", "-1"},
        {"max_frame", "12"},
        {"queue_limit", "10k"},
        {"log_level", "loud"},
        {"listen", "nonsense"},
        {"grace_ms", ""},
        {"max_connections", "0"},
        {"handshake_timeout_ms", "99999999999999999999"},
    };
    struct config cfg;
    char err[CONFIG_ERR_SIZE];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(config_set(&cfg, bad[i][0], bad[i][1], CONFIG_SRC_FLAG,
                                    err, sizeof(err)),
                         FERRY_EINVALID_ARGUMENT);
        assert_non_null(strstr(err, bad[i][0]));
    }
    assert_int_equal(
        config_set(&cfg, "no_such_key", "1", CONFIG_SRC_FLAG, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "no_such_key"));
    config_release(&cfg);
}

static char *
write_file(const char *text)
{
    static char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/ferry-test-config-%d.ini",
             (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void
test_file_and_line_in_errors(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    char *path = write_file("; ferryd settings\n"
                            "[ferryd]\n"
                            "queue_limit = 10\n"
                            "\n"
                            "heartbeat_ms = soon\n");

    config_init(&cfg);
    assert_int_equal(config_load_file(&cfg, path, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 5"));
    assert_non_null(strstr(err, "heartbeat_ms"));
    assert_int_equal(cfg.queue_limit, 10);
    unlink(path);
    config_release(&cfg);
}

static void
test_flags_override_file(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    enum config_action action;
    char *path = write_file("[ferryd]\n"
                            "listen = 127.0.0.1:1, unix:/tmp/a.sock\n"
                            "listen = 127.0.0.1:2\n"
                            "queue_limit = 10\n"
                            "grace_ms = 100\n"
                            "[http]\n"
                            "whatever = 1\n");
    char *argv[] = {"ferryd",     "--config",    path,
                    "--grace-ms", "200",         "--listen=127.0.0.1:3",
                    "--listen",   "127.0.0.1:4", NULL};

    config_init(&cfg);
    assert_int_equal(
        config_parse_args(&cfg, 8, argv, &action, err, sizeof(err)), FERRY_OK);
    assert_int_equal(action, CONFIG_RUN);
    assert_int_equal(cfg.queue_limit, 10);
    assert_int_equal(cfg.grace_ms, 200);
    /* Flags replace the file's list; repeated flags add up. */
    assert_int_equal(cfg.n_listen, 2);
    assert_string_equal(cfg.listen[0], "127.0.0.1:3");
    assert_string_equal(cfg.listen[1], "127.0.0.1:4");
    config_release(&cfg);

    /* Without flags, the file's repeated and comma-separated keys add up. */
    {
        char *argv2[] = {"ferryd", "--config", path, NULL};
        config_init(&cfg);
        assert_int_equal(
            config_parse_args(&cfg, 3, argv2, &action, err, sizeof(err)),
            FERRY_OK);
        assert_int_equal(cfg.n_listen, 3);
        assert_string_equal(cfg.listen[1], "unix:/tmp/a.sock");
        config_release(&cfg);
    }
    unlink(path);
}

static void
test_args_errors_and_actions(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    enum config_action action;
    char *bad_flag[] = {"ferryd", "--bogus", "1", NULL};
    char *bad_value[] = {"ferryd", "--queue-limit", "many", NULL};
    char *missing[] = {"ferryd", "--queue-limit", NULL};
    char *water[] = {"ferryd", "--low-water", "8m", "--high-water", "4m", NULL};
    char *help[] = {"ferryd", "--grace-ms", "x", "--help", NULL};
    char *version[] = {"ferryd", "--version", NULL};
    char *no_file[] = {"ferryd", "--config", "/nonexistent/ferryd.ini", NULL};

    config_init(&cfg);
    assert_int_equal(
        config_parse_args(&cfg, 3, bad_flag, &action, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(
        config_parse_args(&cfg, 3, bad_value, &action, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "--queue-limit"));
    assert_int_equal(
        config_parse_args(&cfg, 2, missing, &action, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_int_equal(
        config_parse_args(&cfg, 5, water, &action, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "low_water"));
    assert_int_equal(
        config_parse_args(&cfg, 3, no_file, &action, err, sizeof(err)),
        FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "/nonexistent/ferryd.ini"));
    assert_int_equal(
        config_parse_args(&cfg, 4, help, &action, err, sizeof(err)), FERRY_OK);
    assert_int_equal(action, CONFIG_HELP);
    assert_int_equal(
        config_parse_args(&cfg, 2, version, &action, err, sizeof(err)),
        FERRY_OK);
    assert_int_equal(action, CONFIG_VERSION);
    config_release(&cfg);
}

/* Reads text as a config file, with config_load_stream(). */
static ferry_err
load_text(struct config *cfg, const char *text, char *err, size_t err_size)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    ferry_err e;

    assert_non_null(f);
    e = config_load_stream(cfg, f, "t.ini", err, err_size);
    fclose(f);
    return e;
}

/*
 * Found by fuzz_config: a line longer than inih's buffer (199 bytes with
 * Debian's libinih) was read in pieces, each taken as a line of its own.
 * A 255-byte token (the documented maximum) must be read whole or refused
 * naming its line, never cut short without a word (the piece after the
 * cut starting with '#' is a comment); and the lines after a long one
 * keep their numbers in errors.
 */
/* test_long_lines' config, released by its teardown when an assertion
 * ends the test early. */
static struct config long_cfg;

static int
long_lines_teardown(void **state)
{
    config_release(&long_cfg);
    return 0;
}

static void
test_long_lines(void **state)
{
    struct config *cfg = &long_cfg;
    char err[CONFIG_ERR_SIZE], text[1024], token[256], name[251];
    ferry_err e;

    memset(token, 't', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    token[184] = '#'; /* at byte 199 of its line */
    snprintf(text, sizeof(text), "[ferryd]\ncaller_token = %s\nname = x\n",
             token);
    assert_int_equal(config_init(cfg), FERRY_OK);
    err[0] = '\0';
    e = load_text(cfg, text, err, sizeof(err));
    if (e == FERRY_OK) {
        assert_string_equal(cfg->caller_token, token);
    } else {
        assert_non_null(strstr(err, "t.ini' line 2: "));
    }
    config_release(cfg);

    /* A long name (255 allowed) on line 2, a bad value on line 3. */
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text), "[ferryd]\nname = %s\nheartbeat_ms = soon\n",
             name);
    assert_int_equal(config_init(cfg), FERRY_OK);
    err[0] = '\0';
    assert_int_equal(load_text(cfg, text, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_true(strstr(err, "t.ini' line 2: ") != NULL ||
                strstr(err, "t.ini' line 3: heartbeat_ms") != NULL);
    config_release(cfg);
}

/* A key before any [section] is refused, naming it and its line. */
static void
test_key_outside_section(void **state)
{
    static const char text[] = "; comment\nqueue_limit = 5\n[ferryd]\n";
    char err[CONFIG_ERR_SIZE];
    struct config cfg;
    FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");

    assert_non_null(f);
    config_init(&cfg);
    assert_int_equal(config_load_stream(&cfg, f, "x.ini", err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    fclose(f);
    assert_string_equal(err, "config 'x.ini' line 2: 'queue_limit' is "
                             "outside any section (put it under [ferryd])");
    assert_int_equal(cfg.queue_limit, 1024);
    config_release(&cfg);
}

/* With a syntax error and a bad value, the first one is named. */
static void
test_first_error_named(void **state)
{
    static const char text[] = "[ferryd]\nno equals sign\nqueue_limit = x\n";
    static const char text2[] = "[ferryd]\nqueue_limit = x\nno equals\n";
    char err[CONFIG_ERR_SIZE];
    struct config cfg;
    FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");

    assert_non_null(f);
    config_init(&cfg);
    assert_int_equal(config_load_stream(&cfg, f, "a.ini", err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    fclose(f);
    assert_string_equal(err, "config 'a.ini' line 2: syntax error");
    f = fmemopen((void *)text2, sizeof(text2) - 1, "r");
    assert_non_null(f);
    assert_int_equal(config_load_stream(&cfg, f, "b.ini", err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    fclose(f);
    assert_non_null(strstr(err, "config 'b.ini' line 2: queue_limit: bad "));
    config_release(&cfg);
}

/* ferry.cache's keys: 64 MiB and 1 MiB by default, sizes with suffixes,
 * bounds named. */
static void
test_cache_keys(void **state)
{
    struct config cfg;
    char err[256];

    (void)state;
    config_init(&cfg);
    assert_true(cfg.cache_max_bytes == UINT64_C(64) << 20);
    assert_int_equal(cfg.cache_item_max, 1 << 20);
    assert_int_equal(config_set(&cfg, "cache_max_bytes", "2m", CONFIG_SRC_FILE,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_true(cfg.cache_max_bytes == UINT64_C(2) << 20);
    assert_int_equal(config_set(&cfg, "cache-item-max", "4k", CONFIG_SRC_FLAG,
                                err, sizeof(err)),
                     FERRY_OK);
    assert_int_equal(cfg.cache_item_max, 4096);
    assert_int_equal(config_set(&cfg, "cache_max_bytes", "1000",
                                CONFIG_SRC_FILE, err, sizeof(err)),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(err, "cache_max_bytes"));
    config_release(&cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_values),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_cache_keys),
        cmocka_unit_test(test_bad_values_name_the_key),
        cmocka_unit_test(test_file_and_line_in_errors),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_args_errors_and_actions),
        cmocka_unit_test(test_key_outside_section),
        cmocka_unit_test(test_first_error_named),
        cmocka_unit_test_teardown(test_long_lines, long_lines_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
