/* SPDX-License-Identifier: MIT */
/*
 * cli.c - helpers shared by the ferry command's subcommands: option
 * scanning, number parsing, and the one format of error lines
 * ("NAME: message") with its exit codes.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/paths.h"
#include "proto/frame.h"

int
cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);

    if (strncmp(arg, name, n) != 0) {
        return 0;
    }
    if (value == NULL) {
        return arg[n] == '\0' ? 1 : 0;
    }
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "ferry: option %s needs a value\n", name);
        return -1;
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

bool
cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool
cli_parse_u32(const char *cmd, const char *opt, const char *text, uint32_t min,
              uint32_t max, uint32_t *out)
{
    unsigned long long v;
    char *end;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 ||
        v < min || v > max) {
        fprintf(stderr,
                "ferry %s: %s must be a number from %u to %u, not '%s'\n", cmd,
                opt, min, max, text);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ferry %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_USAGE;
}

int
cli_exit_code(ferry_err err)
{
    if (err == FERRY_OK) {
        return CLI_EXIT_OK;
    }
    return err == FERRY_ECONNECTION ? CLI_EXIT_CONN : CLI_EXIT_FERRY;
}

int
cli_report_error(const struct cli_ctx *ctx, ferry_err err, const void *msg,
                 size_t msg_len)
{
    const char *text = msg;
    int len = (int)(msg_len > 4096 ? 4096 : msg_len);

    if (msg == NULL || msg_len == 0) {
        text = ferry_strerror(err);
        len = (int)strlen(text);
    }
    if (err == FERRY_ECONNECTION &&
        memmem(text, (size_t)len, ctx->addr, strlen(ctx->addr)) == NULL) {
        fprintf(stderr, "%s: %.*s (%s)\n", ferry_errname(err), len, text,
                ctx->addr);
    } else {
        fprintf(stderr, "%s: %.*s\n", ferry_errname(err), len, text);
    }
    return cli_exit_code(err);
}

int
cli_check_socket(const struct cli_ctx *ctx, const char *cmd)
{
    char err[PATHS_ERR_SIZE];

    if (ctx->token == NULL || strncmp(ctx->addr, "unix:", 5) != 0) {
        return CLI_EXIT_OK;
    }
    if (paths_check_socket(ctx->addr + 5, paths_service_uid(), err,
                           sizeof(err)) != FERRY_OK) {
        fprintf(stderr, "ferry %s: not sending the token to '%s': %s\n", cmd,
                ctx->addr, err);
        return CLI_EXIT_CONN;
    }
    return CLI_EXIT_OK;
}

void
cli_default_socket(char *buf, size_t size)
{
    char data[PATHS_MAX + 1], run[PATHS_MAX + 1];

    if (paths_default_data_dir(data, sizeof(data)) != FERRY_OK ||
        paths_default_run_dir(data, run, sizeof(run)) != FERRY_OK) {
        snprintf(run, sizeof(run), "/run/ferry");
    }
    snprintf(buf, size, "unix:%s/" PATHS_SOCKET, run);
}

int
cli_call_once(const struct cli_ctx *ctx, const char *cmd,
              const struct ferry_request *req, struct ferry_reply *reply)
{
    struct ferry_opts opts = {.token = ctx->token};
    struct ferry_client *client;
    ferry_err err;
    int rc = cli_check_socket(ctx, cmd);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    err = ferry_client_new(ctx->addr, &opts, &client);

    if (err == FERRY_EINVALID_ARGUMENT) {
        return cli_usage_error(cmd, "bad address '%s'", ctx->addr);
    }
    if (err != FERRY_OK) {
        return cli_report_error(ctx, err, NULL, 0);
    }
    err = ferry_call(client, req, reply);
    if (err != FERRY_OK) {
        rc = cli_report_error(ctx, err, reply->data, reply->len);
        ferry_reply_release(reply);
    }
    ferry_client_free(client);
    return rc;
}

int
cli_call_json(const struct cli_ctx *ctx, const char *cmd, const char *service,
              bool raw, json_t **doc)
{
    struct ferry_request req = {.service = service};
    struct ferry_reply reply = {0};
    json_error_t jerr;
    int rc = cli_call_once(ctx, cmd, &req, &reply);

    *doc = NULL;
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (raw) {
        fwrite(reply.data, 1, reply.len, stdout);
        if (reply.len == 0 || reply.data[reply.len - 1] != '\n') {
            fputc('\n', stdout);
        }
    } else {
        *doc = json_loadb((const char *)reply.data, reply.len, 0, &jerr);
        if (*doc == NULL) {
            fprintf(stderr, "PROTO: %s sent bad JSON: %s\n", service,
                    jerr.text);
            rc = CLI_EXIT_FERRY;
        }
    }
    ferry_reply_release(&reply);
    return rc;
}

const char *
cli_json_int(json_t *obj, const char *field, char *buf, size_t size)
{
    json_t *v = json_object_get(obj, field);

    if (json_is_integer(v)) {
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, size, "%.0f", json_real_value(v));
    } else {
        snprintf(buf, size, "-");
    }
    return buf;
}

const char *
cli_json_str(json_t *obj, const char *field)
{
    const char *s = json_string_value(json_object_get(obj, field));

    return s != NULL ? s : "-";
}

int
cli_flush(int rc)
{
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        return CLI_EXIT_FERRY;
    }
    return rc;
}

/*
 * Reads all of stdin into a new buffer (owned by the caller) of at most
 * max bytes. Returns CLI_EXIT_OK, or prints why and returns an exit code.
 */
int
cli_read_stdin(const char *cmd, size_t max, uint8_t **out, size_t *out_len)
{
    size_t cap = 65536, len = 0;
    uint8_t *data = malloc(cap), *p;
    ssize_t n;

    if (data == NULL) {
        goto out_nomem;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(data);
                return cli_usage_error(
                    cmd, "input on stdin is larger than %zu bytes", max);
            }
            cap *= 2;
            p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                goto out_nomem;
            }
            data = p;
        }
        n = read(STDIN_FILENO, data + len, cap - len);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "ferry %s: reading stdin: %s\n", cmd,
                    strerror(errno));
            free(data);
            return CLI_EXIT_USAGE;
        }
        len += (size_t)n;
    }
    if (len > max) {
        free(data);
        return cli_usage_error(cmd, "input on stdin is larger than %zu bytes",
                               max);
    }
    *out = data;
    *out_len = len;
    return CLI_EXIT_OK;

out_nomem:
    fprintf(stderr, "NOMEM: out of memory reading stdin\n");
    return CLI_EXIT_FERRY;
}

int
cli_call_servant(const struct cli_ctx *ctx, const char *cmd,
                 const char *service, struct slice key, const uint8_t *payload,
                 size_t len, uint32_t deadline_ms, struct ferry_reply *reply)
{
    struct ferry_request req = {.service = service};

    if (!frame_request_fits(strlen(service), key.len, len,
                            FRAME_DEFAULT_MAX_BODY)) {
        return cli_usage_error(cmd, "the request does not fit in a frame");
    }
    req.payload = payload;
    req.payload_len = len;
    req.key = key.p;
    req.key_len = key.len;
    req.deadline_ms = deadline_ms;
    return cli_call_once(ctx, cmd, &req, reply);
}
