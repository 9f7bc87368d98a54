/* SPDX-License-Identifier: MIT */
/* cmd_topic.h - "ferry pub" and "ferry sub": publish/subscribe on
 * ferry.topic. */
#ifndef FERRY_CLI_CMD_TOPIC_H
#define FERRY_CLI_CMD_TOPIC_H

#include <stdio.h>

#include "cli/cli.h"

int cmd_topic(const struct cli_ctx *ctx, int argc, char **argv);
void cmd_topic_usage(FILE *out);

#endif
