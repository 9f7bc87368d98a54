/* SPDX-License-Identifier: MIT */
/*
 * cmd_cluster.h - "ferry cluster": this node's view of its cluster (the
 * members, their vbuckets and links), from the built-in ferry.cluster.
 */
#ifndef FERRY_CLI_CMD_CLUSTER_H
#define FERRY_CLI_CMD_CLUSTER_H

#include <stdio.h>

#include "cli/cli.h"

/* argv[0] is "cluster". Returns a CLI_EXIT_* code. */
int cmd_cluster(const struct cli_ctx *ctx, int argc, char **argv);

void cmd_cluster_usage(FILE *out);

#endif
