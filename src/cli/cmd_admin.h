/* SPDX-License-Identifier: MIT */
/*
 * cmd_admin.h - "ferry admin": drain a worker, disable or enable a
 * service, reload ferryd's configuration (the built-in ferry.admin).
 */
#ifndef FERRY_CLI_CMD_ADMIN_H
#define FERRY_CLI_CMD_ADMIN_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "admin". Returns a CLI_EXIT_* code. */
int cmd_admin(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_admin_usage(FILE *out);

#endif
