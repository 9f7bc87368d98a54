/* SPDX-License-Identifier: MIT */
/*
 * cmd_call.h - "ferry call": one request to a service, its reply on stdout.
 */
#ifndef FERRY_CLI_CMD_CALL_H
#define FERRY_CLI_CMD_CALL_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "call". Returns a CLI_EXIT_* code. */
int cmd_call(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_call_usage(FILE *out);

#endif
