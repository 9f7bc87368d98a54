/* SPDX-License-Identifier: MIT */
/*
 * cmd_id.h - "ferry id": ids from the service ferry.id, and decoding one.
 */
#ifndef FERRY_CLI_CMD_ID_H
#define FERRY_CLI_CMD_ID_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "id". Returns a CLI_EXIT_* code. */
int cmd_id(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_id_usage(FILE *out);

#endif
