/* SPDX-License-Identifier: MIT */
/*
 * control.h - the operator's commands: drain a worker, disable a service
 * (callers get SERVICE_DISABLED or a fixed fallback reply), enable it
 * again, and reload the configuration.
 *
 * One entry point takes a command as a JSON object, {"op": "disable",
 * "service": "fib", "fallback": "..."}, and answers a JSON object. Two
 * doors lead here: the built-in service ferry.admin (binary callers with
 * the admin token, or on the unix socket when no admin token is set), and
 * POST /v1/admin/{op} on the HTTP port (admin token required). The
 * commands are in docs/admin.md.
 */
#ifndef FERRY_BROKER_CONTROL_H
#define FERRY_BROKER_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#include "ferry.h"

struct broker;

#define CONTROL_MAX_FALLBACK (1024 * 1024) /* bytes of a fallback reply */

/*
 * Runs cmd (borrowed; a JSON object) for who (the operator's connection, for
 * the log). On success *reply is a new JSON object the caller owns. On failure
 * msg says why (INVALID_ARGUMENT for a bad command, an unknown worker or a
 * configuration refused by reload; UNKNOWN_SERVICE; NOMEM).
 */
ferry_err control_run(struct broker *b, json_t *cmd, const char *who,
                      json_t **reply, char *msg, size_t msg_size);

/*
 * Parses text as a command object into *cmd (owned by the caller);
 * INVALID_ARGUMENT with msg naming where it is not JSON or not an object.
 */
ferry_err control_parse(const void *text, size_t len, json_t **cmd, char *msg,
                        size_t msg_size);

/*
 * Like control_run, with the command as JSON text (a REQUEST payload);
 * *reply_text is compact JSON the caller frees.
 */
ferry_err control_run_text(struct broker *b, const void *text, size_t len,
                           const char *who, char **reply_text, char *msg,
                           size_t msg_size);

#endif
