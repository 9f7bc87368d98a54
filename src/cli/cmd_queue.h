/* SPDX-License-Identifier: MIT */
/* cmd_queue.h - "ferry push", "reserve", "ack", "release", "touch",
 * "bury", "queues" and "ferry queue OP QUEUE" on ferry.queue. */
#ifndef FERRY_CLI_CMD_QUEUE_H
#define FERRY_CLI_CMD_QUEUE_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is the command: push, reserve, ack, ... or queue. */
int cmd_queue(const struct cli_ctx *ctx, int argc, char **argv);
void cmd_queue_usage(FILE *out);

#endif
