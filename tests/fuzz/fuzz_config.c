/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target for ferryd's settings: the INI file
 * reader (inih feeding config_set) and the command-line flag parser, the
 * code that turns an operator's text into the struct config every part of
 * ferryd trusts.
 *
 * FUZZ_SRC: src/core/config.c src/core/addr.c src/core/log.c
 * FUZZ_SRC: src/core/paths.c
 * FUZZ_LIBS: -linih -Wl,--wrap=getaddrinfo
 *
 * An input starting with '@' is a command line: the rest, split on NUL and
 * newline bytes, is argv after "ferryd" (arguments starting with --config
 * are dropped, so no file is ever opened). Any other input is an INI file
 * read with config_load_stream() through fmemopen(), then config_check().
 * A refused file must name a line of the input, and when the message
 * quotes the key or value it refused, that line must hold it. Whatever is
 * accepted must be within the documented limits, and is then reloaded
 * onto a default config with config_apply(), as SIGHUP does.
 *
 * getaddrinfo() is wrapped to resolve numeric hosts and "localhost" only,
 * so no input sends a DNS query: the fuzzer must not depend on the network.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/config.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);

int
__wrap_getaddrinfo(const char *node, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo h;

    memset(&h, 0, sizeof(h));
    if (hints != NULL) {
        h = *hints;
    }
    if (node != NULL && strcmp(node, "localhost") != 0) {
        h.ai_flags |= AI_NUMERICHOST;
    }
    return __real_getaddrinfo(node, service, &h, res);
}

static void
check(int cond)
{
    if (!cond) {
        abort();
    }
}

/* Lines of an input as fgets() counts them: a last line without '\n'
 * counts too. */
static size_t
count_lines(const uint8_t *data, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n') {
            n++;
        }
    }
    return n + (size > 0 && data[size - 1] != '\n');
}

/* Line n (from 1) of the input, without its '\n'. */
static void
find_line(const uint8_t *data, size_t size, size_t n, const uint8_t **line,
          size_t *len)
{
    size_t start = 0, i;

    for (i = 0; i < size && n > 1; i++) {
        if (data[i] == '\n') {
            n--;
            start = i + 1;
        }
    }
    for (i = start; i < size && data[i] != '\n'; i++) {
    }
    *line = data + start;
    *len = i - start;
}

/*
 * The text a message quotes ("unknown key 'K'", "K: bad value 'V'
 * (expected ...)", "listen: bad address 'A' (expected ...)"); false when
 * there is none or the message was cut short.
 */
static bool
quoted(const char *msg, const char **q, size_t *len)
{
    const char *open = strchr(msg, '\'');
    const char *close = strstr(msg, "' (expected ");
    const char *end;

    if (open == NULL) {
        return false;
    }
    if (close == NULL) {
        end = msg + strlen(msg);
        if (end - open < 2 || end[-1] != '\'') {
            return false;
        }
        close = end - 1;
    } else {
        /* A quoted value may hold "' (expected " itself: take the last. */
        for (const char *p = close; p != NULL;
             p = strstr(p + 1, "' (expected ")) {
            close = p;
        }
    }
    if (close <= open) {
        return false;
    }
    *q = open + 1;
    *len = (size_t)(close - open - 1);
    return true;
}

/* Everything a loaded and checked config must hold. */
static void
check_config(const struct config *cfg)
{
    check(cfg->n_listen <= CONFIG_MAX_LISTEN);
    for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++) {
        check((cfg->listen[i] != NULL) == (i < cfg->n_listen));
        if (i < cfg->n_listen) {
            size_t n = strlen(cfg->listen[i]);
            check(n >= 1 && n < ADDR_MAX_TEXT);
        }
    }
    check(cfg->n_routes <= CONFIG_MAX_ROUTES);
    for (size_t i = 0; i < CONFIG_MAX_ROUTES; i++) {
        check((cfg->routes[i] != NULL) == (i < cfg->n_routes));
    }
    check(cfg->http == NULL || strcmp(cfg->http, "off") != 0);
    check(cfg->name != NULL && strlen(cfg->name) >= 1 &&
          strlen(cfg->name) <= 255);
    check(cfg->data_dir != NULL && strlen(cfg->data_dir) >= 1 &&
          strlen(cfg->data_dir) <= 4000);
    check(cfg->caller_token == NULL || strlen(cfg->caller_token) <= 255);
    check(cfg->worker_token == NULL || strlen(cfg->worker_token) <= 255);
    check(cfg->admin_token == NULL || strlen(cfg->admin_token) <= 255);
    check(cfg->log_level <= LOG_LVL_ERROR);
    check(cfg->heartbeat_ms <= 3600000);
    check(cfg->max_frame >= 1024 && cfg->max_frame <= 1073741824);
    check(cfg->default_deadline_ms >= 1);
    check(cfg->default_deadline_ms <= cfg->max_deadline_ms);
    check(cfg->max_deadline_ms <= 86400000);
    check(cfg->queue_bytes <= UINT64_C(1) << 40);
    check(cfg->high_water >= 4096 && cfg->high_water <= UINT64_C(1) << 40);
    check(cfg->low_water <= cfg->high_water);
    check(cfg->max_connections >= 1 && cfg->max_in_flight >= 1);
    check(cfg->http_max_body <= 1073741824);
    check(cfg->retry_max <= 100 && cfg->retry_budget_percent <= 1000);
    check(cfg->eject_base_ms >= 1 && cfg->eject_max_ms >= 1);
    check(cfg->eject_max_percent <= 100);
    check(cfg->breaker_error_percent <= 100);
    check(cfg->breaker_min_requests >= 1);
    check(cfg->breaker_window_ms >= 10);
    check(cfg->breaker_probes >= 1 && cfg->breaker_probes <= 1000);
    check(cfg->store_sync_ms <= 60000);
    check(cfg->store_max_bytes >= 1048576 &&
          cfg->store_max_bytes <= UINT64_C(1) << 44);
}

/* Reads the input as a config file into cfg (config_init() done). */
static ferry_err
load(const uint8_t *data, size_t size, struct config *cfg, char *err,
     size_t err_size)
{
    char *copy;
    FILE *f;
    ferry_err e;

    /* An exact-size heap copy: any read past the end is caught. */
    copy = malloc(size > 0 ? size : 1);
    check(copy != NULL);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    f = fmemopen(copy, size, "r");
    check(f != NULL);
    err[0] = '\0';
    e = config_load_stream(cfg, f, "fuzz.ini", err, err_size);
    fclose(f);
    free(copy);
    return e;
}

/* A refused file: the message names a line of the input, and the line
 * holds what the message quotes. */
static void
check_refusal(const uint8_t *data, size_t size, ferry_err e, const char *err)
{
    static const char prefix[] = "config 'fuzz.ini' line ";
    const char *q;
    size_t line, qlen;
    char *end;

    check(e == FERRY_EINVALID_ARGUMENT || e == FERRY_ENOMEM);
    check(strncmp(err, prefix, sizeof(prefix) - 1) == 0);
    line = strtoul(err + sizeof(prefix) - 1, &end, 10);
    check(end[0] == ':' && end[1] == ' ' && end[2] != '\0');
    check(line >= 1);
    check(line <= count_lines(data, size));
    if (quoted(end + 2, &q, &qlen) && qlen > 0 &&
        !(qlen == 8 && memcmp(q, "<hidden>", 8) == 0)) {
        const uint8_t *l;
        size_t llen;

        find_line(data, size, line, &l, &llen);
        check(memmem(l, llen, q, qlen) != NULL);
    }
}

/*
 * A reload to the accepted file next: config_apply() moves what a reload
 * may change onto a running default config, which stays valid; a second
 * reload of the same file changes nothing and keeps the same keys.
 */
static void
fuzz_reload(const uint8_t *data, size_t size, struct config *next)
{
    struct config live, again;
    struct config_changes ch;
    char err[CONFIG_ERR_SIZE];
    size_t kept;

    check(config_init(&live) == FERRY_OK);
    config_apply(&live, next, &ch);
    check(ch.n_applied <= CONFIG_MAX_KEYS && ch.n_kept <= CONFIG_MAX_KEYS);
    check_config(&live);
    kept = ch.n_kept;
    check(config_init(&again) == FERRY_OK);
    check(load(data, size, &again, err, sizeof(err)) == FERRY_OK);
    config_apply(&live, &again, &ch);
    check(ch.n_applied == 0);
    check(ch.n_kept == kept);
    check_config(&live);
    config_release(&again);
    config_release(&live);
}

static void
fuzz_file(const uint8_t *data, size_t size)
{
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    ferry_err e;

    check(config_init(&cfg) == FERRY_OK);
    e = load(data, size, &cfg, err, sizeof(err));
    if (e != FERRY_OK) {
        check_refusal(data, size, e, err);
    } else {
        e = config_check(&cfg, err, sizeof(err));
        if (e != FERRY_OK) {
            check(e == FERRY_EINVALID_ARGUMENT);
            check(strstr(err, "low_water") != NULL ||
                  strstr(err, "output_limit") != NULL ||
                  strstr(err, "max_memory") != NULL ||
                  strstr(err, "default_deadline_ms") != NULL);
        } else {
            check_config(&cfg);
            check(cfg.n_listen == 0 || cfg.listen_src == CONFIG_SRC_FILE);
            fuzz_reload(data, size, &cfg);
        }
    }
    config_release(&cfg);
}

static void
fuzz_args(const uint8_t *data, size_t size)
{
    char *argv[FUZZ_MAX_ARGS + 2];
    int argc = 0;
    size_t start = 0;
    struct config cfg;
    char err[CONFIG_ERR_SIZE];
    enum config_action action;
    ferry_err e;

    argv[argc++] = strdup("ferryd");
    check(argv[0] != NULL);
    for (size_t i = 0; i <= size && argc <= FUZZ_MAX_ARGS; i++) {
        size_t n;
        if (i < size && data[i] != '\0' && data[i] != '\n') {
            continue;
        }
        n = i - start;
        if (i == size && n == 0 && size > 0) {
            /* A final separator ends the last argument, adds none. */
            break;
        }
        if (n < 8 || memcmp(data + start, "--config", 8) != 0) {
            /* Exact-size copies, so reading past an argument is caught. */
            char *arg = malloc(n + 1);
            check(arg != NULL);
            memcpy(arg, data + start, n);
            arg[n] = '\0';
            argv[argc++] = arg;
        }
        start = i + 1;
    }
    argv[argc] = NULL;
    check(config_init(&cfg) == FERRY_OK);
    err[0] = '\0';
    e = config_parse_args(&cfg, argc, argv, &action, err, sizeof(err));
    if (e != FERRY_OK) {
        check(e == FERRY_EINVALID_ARGUMENT || e == FERRY_ENOMEM);
        check(err[0] != '\0');
    } else if (action == CONFIG_RUN) {
        check(cfg.config_file == NULL);
        check_config(&cfg);
        check(cfg.n_listen == 0 || cfg.listen_src == CONFIG_SRC_FLAG);
    } else {
        check(action == CONFIG_HELP || action == CONFIG_VERSION);
    }
    config_release(&cfg);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == '@') {
        fuzz_args(data + 1, size - 1);
    } else {
        fuzz_file(data, size);
    }
    return 0;
}
