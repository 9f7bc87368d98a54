/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the engine of ferry bench: a closed-loop load generator that
 * speaks ferry frames directly over non-blocking sockets in one epoll(7)
 * loop, so that it costs little next to the server it measures.
 *
 * Each connection says HELLO as a caller, then keeps `depth` requests in
 * flight: every reply (or error) sends the next request at once. Each
 * request's payload is derived from its id, so every reply is checked
 * byte for byte against what was sent (the services measured echo).
 * With a queue, producers keep `depth` PUSHes in flight and consumers
 * `depth` RESERVEs, acking (or releasing, burying) each job they get.
 * With a subject, publishers keep `depth` PUBLISHes in flight and
 * subscribers one POLL each, counting what they receive and what ferryd
 * tells them it dropped.
 * At the end it sends nothing more and waits, bounded, for the requests
 * still outstanding, so that every request it sent can be accounted for.
 */
#ifndef FERRY_CLI_BENCH_H
#define FERRY_CLI_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/addr.h"

struct bench_config {
    struct addr addr;      /* where to connect */
    const char *service;   /* borrowed: the service to call */
    uint32_t connections;  /* sockets, each with its own in-flight window */
    uint32_t depth;        /* requests in flight per connection */
    uint32_t payload;      /* bytes of each request's payload */
    uint32_t seconds;      /* length of the measurement window */
    uint32_t warmup_s;     /* load before the window, not measured */
    uint32_t timeout_ms;   /* deadline sent with each request; 0 = default */
    const char *token;     /* borrowed: access token for HELLO, or NULL */
    bool idempotent;       /* set FERRY_IDEMPOTENT on every request */
    const uint8_t *key;    /* borrowed: routing key of every request */
    uint32_t key_len;      /* bytes of key; 0 = no key */
    const uint8_t *fixed;  /* borrowed: the payload of every request, or
                              NULL for one derived from each id (echo) */
    const uint8_t *expect; /* borrowed: with fixed, the reply every request
                              must get, or NULL to accept any REPLY */
    uint32_t expect_len;   /* bytes of expect */
    /* The queue workload (bench_queue.c), when queue is not NULL: the
     * first producers connections push to it, the other consumers
     * reserve from it; key is its name, fixed unused. */
    const char *queue;   /* borrowed: the queue's name, or NULL */
    uint32_t producers;  /* of connections, those that push */
    uint32_t wait_ms;    /* each RESERVE's wait */
    uint32_t backlog;    /* pushed and not acked at most; 0: no limit */
    uint8_t churn[3];    /* percent of jobs acked, released, buried */
    uint32_t release_ms; /* a release's delay */
    uint32_t redrive_ms; /* with buries: REDRIVE the dead this often */
    uint64_t cycles;     /* end the window after this many jobs
                            acked, released or buried; 0: no limit */
    uint64_t progress;   /* print a line every this many of those */
    /* The fan-out workload (bench_pubsub.c), when subject is not NULL:
     * the first producers connections publish to it, the others
     * subscribe to it and poll (each POLL waiting wait_ms). */
    const char *subject;  /* borrowed: the subject, or NULL */
    uint32_t max_pending; /* each subscription's buffer */
};

/*
 * Runs the benchmark: the echo workload, with cfg->queue the queue
 * workload, or with cfg->subject the fan-out workload (their output is
 * in cmd_bench_usage() and docs/benchmarks.md).
 * For echo it prints one line on stdout,
 * "rps=N p50_us=X p99_us=X p999_us=X", and details on stderr, ending
 * with the accounting of every request sent:
 *
 *   ferry bench: end sent=N replied=N errors=N bad=N outstanding=N
 *                stray=N max_latency_us=N [NAME=N ...]
 *
 * (one line) where sent = replied + errors + bad + outstanding: replied
 * got their correct reply, errors an ERROR frame (by name after the
 * counts), bad a reply with wrong bytes, outstanding no answer at all (in
 * flight when the drain ended, or on a connection that failed). stray
 * counts answers for no outstanding request; max_latency_us is the
 * longest time from send to answer of any answered request, all phases.
 * Returns CLI_EXIT_OK when every request got its correct reply,
 * CLI_EXIT_CONN when it could not connect, CLI_EXIT_FERRY otherwise.
 */
int bench_run(const struct bench_config *cfg);

#endif
