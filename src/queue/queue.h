/* SPDX-License-Identifier: MIT */
/*
 * queue.h - the service ferry.queue: durable work queues on the store
 * (src/store/), served as an in-daemon backend (broker/backend.h) with
 * the payloads of docs/queues.md (queue/queue_codec.h).
 *
 * A push, and every change of a job's state (reserve, ack, release,
 * touch, bury, redrive), is one store batch; its answer is sent from the
 * batch's callback, so a reply means the change is on disk (store_sync =
 * always) and a crash loses nothing that was answered. After a crash,
 * jobs that were reserved and not acked are ready again, their attempt
 * counts kept.
 *
 * Consumers take jobs with RESERVE: at once when one is ready, else held
 * (a long poll) until one is or the wait passes. A consumer keeping N
 * RESERVEs in flight has a credit of N: ferryd hands it a job whenever
 * one is ready and it has credit, highest priority first, FIFO within
 * one priority.
 */
#ifndef FERRY_QUEUE_QUEUE_H
#define FERRY_QUEUE_QUEUE_H

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>

#include "ferry.h"

struct broker;
struct loop;
struct queue_engine;
struct store;

#define QUEUE_SERVICE_NAME "ferry.queue"
/* The store tables ferry.queue uses (servants.c opens them). */
#define QUEUE_JOBS_TABLE "queue"        /* qid, job id -> job */
#define QUEUE_NAMES_TABLE "queue.names" /* name -> qid, settings */
#define QUEUE_DEDUP_TABLE "queue.dedup" /* qid, dedup id -> id, expiry */
#define QUEUE_META_TABLE "meta"         /* queue/next_id, queue/next_qid */

/* Defaults of a new queue's settings. */
#define QUEUE_DEFAULT_VISIBILITY_MS 30000
#define QUEUE_DEFAULT_DEDUP_WINDOW_MS 300000
/* A RESERVE's wait is capped here (the caller's deadline caps it too). */
#define QUEUE_MAX_WAIT_MS 600000
/* Jobs one REDRIVE or PURGE moves at most; call again for the rest. */
#define QUEUE_BATCH_JOBS 10000

/* Totals over every queue, for /v1/stats and /metrics. */
struct queue_stats {
    uint64_t queues; /* queues known */
    uint64_t jobs;   /* jobs held (every state) */
    uint64_t ready, delayed, reserved;
    uint64_t pushes, dedup_hits, reserves, empty_reserves, acks, releases,
        touches, buries, expired, dead_lettered, redriven, purged;
    uint64_t stale;        /* acks, releases ... refused: stale token */
    uint64_t bad;          /* requests refused as malformed */
    uint64_t write_errors; /* batches the store failed (NO_SPACE ...) */
    uint64_t waiters;      /* RESERVEs held now */
};

/*
 * Registers ferry.queue with b on the store and loads every queue and
 * job from it. FERRY_EINVALID_ARGUMENT when the store lacks the tables;
 * *out is set only on success.
 */
ferry_err queue_engine_open(struct queue_engine **out, struct broker *b,
                            struct loop *l, struct store *st);

/* Answers every held RESERVE (empty) and frees the engine once its
 * pending batches are decided: call before store_close, which runs their
 * callbacks. NULL is a no-op. */
void queue_engine_close(struct queue_engine *qe);

const struct queue_stats *queue_engine_stats(struct queue_engine *qe);

/* The "queue" object of /v1/stats' "servants": totals and one object per
 * queue; NULL when out of memory. */
json_t *queue_engine_stats_json(struct queue_engine *qe);

/* One queue's object (counts, rates, settings), or every queue's in
 * {"queues": [...]} when name is empty; NULL when unknown or out of
 * memory. */
json_t *queue_engine_queue_json(struct queue_engine *qe, struct slice name);

/* The ferry_queue_* families of /metrics, each with HELP and TYPE. */
void queue_engine_metrics(struct queue_engine *qe, FILE *f);

#endif
