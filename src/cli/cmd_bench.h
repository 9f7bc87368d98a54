/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.h - "ferry bench": the closed-loop load generator.
 */
#ifndef FERRY_CLI_CMD_BENCH_H
#define FERRY_CLI_CMD_BENCH_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "bench". Returns a CLI_EXIT_* code. */
int cmd_bench(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_bench_usage(FILE *out);

#endif
