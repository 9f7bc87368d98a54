/* SPDX-License-Identifier: MIT */
/*
 * cmd_services.h - "ferry services": the services, their workers and
 * their statistics, from the built-in service ferry.services.
 */
#ifndef FERRY_CLI_CMD_SERVICES_H
#define FERRY_CLI_CMD_SERVICES_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "services". Returns a CLI_EXIT_* code. */
int cmd_services(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_services_usage(FILE *out);

#endif
