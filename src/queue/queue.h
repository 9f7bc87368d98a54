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

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry.h"
#include "proto/frame.h"

struct broker;
struct loop;
struct queue_engine;
struct store;
struct store_batch;

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

/*
 * The queue side of a vbucket handover (queue_handover.c), driven by
 * servants/vbdata.h, which reads and deletes the store's records itself
 * and asks the engine what only its memory knows. A queue's vbucket is
 * its name's; a job's is its queue's, but a dead job's (origin set) is
 * the queue's it died in: it goes with that queue, whose PEEK dead,
 * STATS dead and REDRIVE reach it.
 */
#define QUEUE_N_COUNTS 12 /* pushes ... purged, as in queue_counts */

/* The name of the queue whose store id is qid; false when none. */
bool queue_engine_qname(struct queue_engine *qe, uint32_t qid,
                        struct slice *name);
/* The in-memory counters of queue name (zeros when unknown), in the
 * order of struct queue_counts. */
void queue_engine_counts(struct queue_engine *qe, struct slice name,
                         uint64_t out[QUEUE_N_COUNTS]);
/* The next job id this engine gives. */
uint64_t queue_engine_next_id(const struct queue_engine *qe);

/*
 * Job ids of a cluster node: tag (1 + its node id leased in etcd, which
 * no two live nodes share) times 2^40, plus a count. So a job handed over
 * from another node never has the id of a job here, and a JavaScript
 * number still holds every id (below 2^51). Ids of other spaces (jobs
 * imported, or this node's own of an earlier node id) stay as they are.
 * tag 0: one space from 1, as on a single node.
 */
#define QUEUE_ID_SPACE_BITS 40
void queue_engine_set_id_space(struct queue_engine *qe, uint32_t tag);

/* One chunk's queue records being imported; see queue_import_new. */
struct queue_import;

/*
 * Starts the queue part of an import: first raises the engine's next job
 * id to next_id (so that no push from now on takes an id the chunk may
 * hold). The records' slices are borrowed until queue_import_finish.
 * NULL when out of memory.
 */
struct queue_import *queue_import_new(struct queue_engine *qe,
                                      uint64_t next_id);
/* Adds a record (FERRY_ENOMEM only). */
ferry_err queue_import_queue(struct queue_import *qi, struct slice name,
                             struct slice settings,
                             const uint64_t counts[QUEUE_N_COUNTS]);
ferry_err queue_import_job(struct queue_import *qi, struct slice name,
                           struct slice origin, uint64_t id,
                           struct slice stored);
ferry_err queue_import_dedup(struct queue_import *qi, struct slice name,
                             struct slice dedup, uint64_t id,
                             uint64_t expires);
/*
 * Checks the records against this engine (settings that parse, job ids
 * not held here already nor twice in the chunk: FERRY_EPROTO or
 * FERRY_EINVALID_ARGUMENT with err) and adds their writes to b: name
 * records (a queue that exists here is merged: its id and jobs kept, the
 * imported settings taken), jobs and dedup ids under this store's queue
 * ids, the id counters. Call once the batches submitted before
 * queue_import_new are decided, so that every job of this engine is in
 * memory. Queues it names are made in memory now; queue_import_finish
 * undoes that when the batch did not commit.
 */
ferry_err queue_import_prepare(struct queue_import *qi, struct store_batch *b,
                               char *err, size_t err_size);
/* After the batch: committed, the jobs are loaded (reservations with
 * their tokens and deadlines, delays armed), the dedup ids and counters
 * taken; else what prepare made is undone. Frees qi (NULL: no-op). */
void queue_import_finish(struct queue_import *qi, bool committed);

/* FERRY_EOVERLOADED with err when a job of vb has a write in flight
 * (drop again later); FERRY_OK otherwise. */
ferry_err queue_engine_drop_check(struct queue_engine *qe, uint16_t vb,
                                  char *err, size_t err_size);
/* Whether queue name holds jobs of a vbucket other than vb (dead jobs of
 * other queues): its name record must stay when vb is dropped. */
bool queue_engine_holds_other(struct queue_engine *qe, struct slice name,
                              uint16_t vb);
/* Forgets every job of vb, the dedup ids of vb's queues, and those of
 * vb's queues left with nothing (their held RESERVEs answered
 * NOT_MY_VBUCKET), once their records are deleted from the store. */
void queue_engine_unload_vb(struct queue_engine *qe, uint16_t vb);

#endif
