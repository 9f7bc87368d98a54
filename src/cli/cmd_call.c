/* SPDX-License-Identifier: MIT */
/*
 * cmd_call.c - "ferry call SERVICE [PAYLOAD | -]": one synchronous call
 * through libferry. The reply goes to stdout as is (plus a newline when it
 * lacks one); a failure goes to stderr as "NAME: message".
 */
#include "cli/cmd_call.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"

void
cmd_call_usage(FILE *out)
{
    fprintf(out,
            "usage: ferry call SERVICE [PAYLOAD | -] [--timeout MS] "
            "[--key KEY]\n"
            "                  [--idempotent] [--addr ADDR] [--token TOKEN]"
            "\n\n"
            "Calls SERVICE with PAYLOAD (- reads all of stdin, none sends "
            "an empty\n"
            "payload) and prints the reply on stdout.\n\n"
            "  --timeout MS    deadline of the call (default: the daemon's)\n"
            "  --key KEY       routing key\n"
            "  --idempotent    mark the request safe to run twice\n"
            "  --token TOKEN   access token (default $FERRY_TOKEN)\n\n"
            "Exit status: 0 success, 1 error from ferryd or the worker "
            "(NAME: message\n"
            "on stderr), 2 usage error, 3 connection error.\n");
}

/* Writes the reply and a final newline when it lacks one. */
static int
call_print_reply(const uint8_t *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len) {
        goto out_err;
    }
    if ((len == 0 || data[len - 1] != '\n') && fputc('\n', stdout) == EOF) {
        goto out_err;
    }
    if (fflush(stdout) != 0) {
        goto out_err;
    }
    return CLI_EXIT_OK;

out_err:
    fprintf(stderr, "ferry call: writing the reply: %s\n", strerror(errno));
    return CLI_EXIT_FERRY;
}

int
cmd_call(const struct cli_ctx *ctx, int argc, char **argv)
{
    struct ferry_request req = {0};
    struct ferry_reply reply = {0};
    const char *positional[2] = {NULL, NULL};
    const char *v, *key = NULL;
    uint8_t *stdin_data = NULL;
    size_t n_pos = 0, max_payload;
    int i, m, rc;
    bool options_done = false;

    for (i = 1; i < argc; i++) {
        if (!options_done && argv[i][0] == '-' && argv[i][1] != '\0') {
            if (strcmp(argv[i], "--") == 0) {
                options_done = true;
                continue;
            }
            if (cli_is_help(argv[i])) {
                cmd_call_usage(stdout);
                return CLI_EXIT_OK;
            }
            if ((m = cli_opt(argc, argv, &i, "--timeout", &v)) != 0) {
                if (m < 0 || !cli_parse_u32("call", "--timeout", v, 1,
                                            UINT32_MAX, &req.deadline_ms)) {
                    return CLI_EXIT_USAGE;
                }
            } else if ((m = cli_opt(argc, argv, &i, "--key", &v)) != 0) {
                if (m < 0) {
                    return CLI_EXIT_USAGE;
                }
                key = v;
            } else if (cli_opt(argc, argv, &i, "--idempotent", NULL) == 1) {
                req.flags |= FERRY_IDEMPOTENT;
            } else {
                return cli_usage_error("call", "unknown option '%s'", argv[i]);
            }
            continue;
        }
        if (n_pos == 2) {
            return cli_usage_error("call", "unexpected argument '%s'", argv[i]);
        }
        positional[n_pos++] = argv[i];
    }
    if (n_pos == 0) {
        cmd_call_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    req.service = positional[0];
    if (strlen(req.service) == 0 || strlen(req.service) > FRAME_MAX_NAME) {
        return cli_usage_error("call", "SERVICE must be 1 to %d bytes",
                               FRAME_MAX_NAME);
    }
    if (key != NULL) {
        req.key = key;
        req.key_len = strlen(key);
        if (req.key_len > FRAME_MAX_KEY) {
            return cli_usage_error("call", "--key must be at most %d bytes",
                                   FRAME_MAX_KEY);
        }
    }
    max_payload = FRAME_DEFAULT_MAX_BODY -
                  (frame_request_size(strlen(req.service), req.key_len, 0) -
                   FRAME_HEADER_SIZE);
    if (positional[1] != NULL && strcmp(positional[1], "-") == 0) {
        rc = cli_read_stdin("call", max_payload, &stdin_data, &req.payload_len);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        req.payload = stdin_data;
    } else if (positional[1] != NULL) {
        req.payload = positional[1];
        req.payload_len = strlen(positional[1]);
        if (req.payload_len > max_payload) {
            return cli_usage_error("call", "PAYLOAD is larger than %zu bytes",
                                   max_payload);
        }
    }

    rc = cli_call_once(ctx, "call", &req, &reply);
    free(stdin_data);
    if (rc == CLI_EXIT_OK) {
        rc = call_print_reply(reply.data, reply.len);
        ferry_reply_release(&reply);
    }
    return rc;
}
