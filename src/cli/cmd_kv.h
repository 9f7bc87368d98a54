/* SPDX-License-Identifier: MIT */
/* cmd_kv.h - "ferry kv": get, put, del, ls, count, watch on ferry.kv. */
#ifndef FERRY_CLI_CMD_KV_H
#define FERRY_CLI_CMD_KV_H

#include <stdio.h>

#include "cli/cli.h"

int cmd_kv(const struct cli_ctx *ctx, int argc, char **argv);
void cmd_kv_usage(FILE *out);

#endif
