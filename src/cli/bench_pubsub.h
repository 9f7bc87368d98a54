/* SPDX-License-Identifier: MIT */
/*
 * bench_pubsub.h - the fan-out workload of ferry bench (ferry bench
 * --pubsub): publishers and subscribers of one subject of ferry.topic,
 * run by bench.c's engine.
 */
#ifndef FERRY_CLI_BENCH_PUBSUB_H
#define FERRY_CLI_BENCH_PUBSUB_H

#include "cli/bench_impl.h"

/* The workload bench_run() picks when its config names a subject. */
extern const struct bench_workload bench_pubsub_workload;

#endif
