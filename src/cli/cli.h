/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the subcommands of the ferry command share: exit codes, the
 * option scanner and small helpers for numbers and error lines.
 *
 * main.c picks the subcommand; each cmd_*.c parses its own arguments with
 * cli_opt() and returns one of the exit codes below.
 */
#ifndef FERRY_CLI_CLI_H
#define FERRY_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

/* Exit codes, the same for every subcommand (listed in ferry --help). */
#define CLI_EXIT_OK 0    /* success */
#define CLI_EXIT_FERRY 1 /* an error from ferryd, a worker, or the bench */
#define CLI_EXIT_USAGE 2 /* bad arguments */
#define CLI_EXIT_CONN 3  /* could not connect, or the connection was lost */

/* What main() hands each subcommand. */
struct cli_ctx {
    const char *addr;  /* borrowed: ferryd's address, never NULL */
    const char *prog;  /* borrowed: "ferry" */
    const char *token; /* borrowed: access token for HELLO, or NULL */
    bool addr_set;     /* addr came from --addr or $FERRY_ADDR */
};

/*
 * Scans one argument at argv[*i] for the long option name ("--timeout").
 * Accepts "--name VALUE" and "--name=VALUE" when value is not NULL, and a
 * bare "--name" when value is NULL (a flag). Returns 1 when it matched
 * (advancing *i past a separate value), 0 when argv[*i] is another
 * argument, and -1 when the option lacks its value (message printed).
 */
int cli_opt(int argc, char **argv, int *i, const char *name,
            const char **value);

/* Whether arg asks for help ("--help" or "-h"). */
bool cli_is_help(const char *arg);

/*
 * Parses a decimal number in [min, max] into *out. On failure prints
 * "ferry CMD: OPTION must be ..." and returns false.
 */
bool cli_parse_u32(const char *cmd, const char *opt, const char *text,
                   uint32_t min, uint32_t max, uint32_t *out);

/* Prints "ferry CMD: message" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Prints a failed call as "NAME: message" on stderr (the message from
 * ferryd or the worker, else the code's own text; for connection errors
 * the address is added) and returns the matching exit code.
 */
int cli_report_error(const struct cli_ctx *ctx, ferry_err err, const void *msg,
                     size_t msg_len);

/*
 * Before a token goes to a unix socket: checks that the socket and its
 * folders are owned by us, root or the "ferry" user and that no one else
 * may write the folders (core/paths.h), so another user cannot have put
 * their socket in ferryd's place. CLI_EXIT_OK, or the message printed and
 * CLI_EXIT_CONN. Other addresses and calls without a token pass.
 */
int cli_check_socket(const struct cli_ctx *ctx, const char *cmd);

/* Writes "unix:" and the default socket of ferryd (core/paths.h). */
void cli_default_socket(char *buf, size_t size);

/*
 * One call on a new connection to ctx->addr with ctx->token, for commands
 * that make a single call. CLI_EXIT_OK with *reply filled (the caller
 * releases it); else the error is printed (as cmd's for a bad address) and
 * its exit code returned, with *reply released.
 */
int cli_call_once(const struct cli_ctx *ctx, const char *cmd,
                  const struct ferry_request *req, struct ferry_reply *reply);

/* rc, or CLI_EXIT_FERRY when stdout could not be written out. */
int cli_flush(int rc);

/* Reads all of stdin into a new buffer (the caller frees it) of at most
 * max bytes; CLI_EXIT_OK, or prints why and returns an exit code. */
int cli_read_stdin(const char *cmd, size_t max, uint8_t **out, size_t *len);

/* One call of an in-daemon service with a payload already encoded, the
 * key as its routing key: cli_call_once after checking that it fits in a
 * frame. */
int cli_call_servant(const struct cli_ctx *ctx, const char *cmd,
                     const char *service, struct slice key,
                     const uint8_t *payload, size_t len, uint32_t deadline_ms,
                     struct ferry_reply *reply);

/*
 * One call with no payload of a built-in that answers JSON (ferry.services,
 * ferry.cluster). With raw, prints the reply as it came and leaves *doc
 * NULL; else *doc is the parsed document (the caller json_decref()s it).
 * CLI_EXIT_OK, or prints why and returns an exit code.
 */
int cli_call_json(const struct cli_ctx *ctx, const char *cmd,
                  const char *service, bool raw, json_t **doc);

/* An integer field of obj formatted into buf, or "-" when it is absent or
 * not a number: a field an older or newer daemon lacks prints as "-". */
const char *cli_json_int(json_t *obj, const char *field, char *buf,
                         size_t size);

/* A string field of obj, or "-". */
const char *cli_json_str(json_t *obj, const char *field);

/* The exit code for an error: CLI_EXIT_CONN or CLI_EXIT_FERRY. */
int cli_exit_code(ferry_err err);

#endif
