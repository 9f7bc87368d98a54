/* SPDX-License-Identifier: MIT */
/*
 * cmd_cache.h - "ferry cache": the operations of the service ferry.cache.
 */
#ifndef FERRY_CLI_CMD_CACHE_H
#define FERRY_CLI_CMD_CACHE_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "cache". Returns a CLI_EXIT_* code. */
int cmd_cache(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_cache_usage(FILE *out);

#endif
