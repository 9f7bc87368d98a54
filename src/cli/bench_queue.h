/* SPDX-License-Identifier: MIT */
/*
 * bench_queue.h - the queue workload of ferry bench (ferry bench --queue):
 * producers and consumers of one queue of ferry.queue, run by bench.c's
 * engine.
 */
#ifndef FERRY_CLI_BENCH_QUEUE_H
#define FERRY_CLI_BENCH_QUEUE_H

#include "cli/bench_impl.h"

/* The workload bench_run() picks when its config names a queue. */
extern const struct bench_workload bench_queue_workload;

#endif
