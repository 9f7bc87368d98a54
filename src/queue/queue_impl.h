/* SPDX-License-Identifier: MIT */
/*
 * queue_impl.h - what the parts of ferry.queue share: queue.c (jobs,
 * delivery, acks, moves, timers), queue_admin.c (peek, stats, redrive,
 * purge, pause, configure, delete, metrics) and queue_load.c (open,
 * start-up scan, close). Not for the rest of ferryd: queue/queue.h.
 *
 * The store is the truth; memory holds an index of it. Every job has a
 * struct qjob on the loop (a few dozen bytes; its payload stays in the
 * store) in exactly one place: its queue's ready heap (priority, then
 * push order), the engine's timed heap (a delayed job's ready time, a
 * reserved job's deadline), or nowhere while a write about it is in
 * flight (QJ_BUSY: nothing else may touch it until that write's
 * callback). A change is applied to memory only once its batch has
 * committed, so nothing is delivered, or answered, before it is on disk.
 */
#ifndef FERRY_QUEUE_QUEUE_IMPL_H
#define FERRY_QUEUE_QUEUE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/heap.h"
#include "core/list.h"
#include "core/map.h"
#include "core/pool.h"
#include "core/timer.h"
#include "broker/backend.h"
#include "queue/queue.h"
#include "queue/queue_codec.h"
#include "store/store.h"

struct bcall;
struct broker;
struct loop;
struct store;
struct store_batch;

/* In-memory job states: the store's three, and one for a write in
 * flight. */
enum qjob_state {
    QJ_READY = QUEUE_READY,
    QJ_DELAYED = QUEUE_DELAYED,
    QJ_RESERVED = QUEUE_RESERVED,
    QJ_BUSY = 3,
};

struct queue;

struct qjob {
    struct heap_node hn;     /* in q->ready or qe->timed, by state */
    uint64_t id;             /* unique across queues, never reused */
    uint64_t token;          /* QJ_RESERVED: its reservation, else 0 */
    uint64_t due;            /* loop ms: DELAYED ready / RESERVED deadline */
    struct queue *q;         /* borrowed: the queue it is in */
    uint64_t pushed_ms;      /* unix ms of its push */
    uint32_t attempts;       /* deliveries so far */
    uint32_t vis_ms;         /* its own visibility timeout, 0: queue's */
    uint32_t origin;         /* dead-lettered: the queue id it came from */
    uint16_t max_deliveries; /* its own, 0: the queue's */
    int16_t prio;            /* higher first */
    uint8_t state;           /* enum qjob_state */
    uint8_t was;             /* QJ_BUSY: the state to go back to */
};

/* A queue's settings, persisted as JSON in its name record. */
struct queue_settings {
    uint32_t visibility_ms;   /* a reservation's default time */
    uint16_t max_deliveries;  /* 0: unlimited */
    uint32_t dedup_window_ms; /* how long a dedup id is remembered */
    char dead_letter[QUEUE_NAME_MAX + 1];   /* "" : none */
    uint32_t backoff_ms[QUEUE_BACKOFF_MAX]; /* RELEASE by the list */
    uint8_t n_backoff;
    bool paused; /* delivers nothing while set */
};

/* Per-queue counters. */
struct queue_counts {
    uint64_t pushes, dedup_hits, reserves, empty_reserves, acks, releases,
        touches, buries, expired, dead_lettered, redriven, purged;
};

struct queue {
    char name[QUEUE_NAME_MAX + 1]; /* NUL-terminated */
    size_t name_len;
    uint32_t qid;           /* its id in the store's keys */
    bool persisted;         /* its name record is on disk */
    bool deleting;          /* a DELETE of its name record is in flight:
                               a write for it meanwhile puts it back */
    struct heap ready;      /* QJ_READY jobs */
    uint64_t n_delayed;     /* QJ_DELAYED jobs (in qe->timed) */
    uint64_t n_reserved;    /* QJ_RESERVED jobs (in qe->timed) */
    uint64_t n_busy;        /* QJ_BUSY jobs */
    struct list waiters;    /* held RESERVEs, oldest first */
    struct list dedup_fifo; /* struct qdedup, oldest first */
    struct queue_settings set;
    struct queue_counts n;
    uint32_t pending;                /* batches in flight that name it */
    uint32_t n_waiters;              /* entries of waiters */
    uint64_t rate_pushes, rate_acks; /* counts at the last tick */
    double push_rate, ack_rate;      /* per second, over the last tick */
};

/* A held RESERVE waiting for a job. */
struct qwaiter {
    struct list node;        /* in q->waiters */
    struct queue_engine *qe; /* borrowed */
    struct queue *q;         /* borrowed */
    struct timer tm;         /* its wait */
    uint64_t handle;         /* bcall_hold's */
    uint32_t vis_ms;         /* asked visibility, 0: the job's/queue's */
};

/* A remembered dedup id. */
struct qdedup {
    struct list node;                 /* in q->dedup_fifo */
    uint64_t expires;                 /* unix ms */
    uint64_t id;                      /* the first push's job */
    bool pending;                     /* that push is not yet committed */
    bool failed;                      /* that push failed */
    bool gone;                        /* out of the map and the list: freed
                                         once no waiter holds it */
    uint32_t waiters;                 /* pushes of the same id waiting for
                                         that push's batch */
    uint16_t klen;                    /* bytes of key */
    uint8_t key[4 + QUEUE_DEDUP_MAX]; /* qid, dedup id: the smap key */
};

/* One batch in flight and what to do with its result. */
struct qop {
    struct queue_engine *qe; /* borrowed */
    uint8_t op;              /* enum queue_op, or QOP_* below */
    uint64_t handle;         /* the held call, 0: none */
    struct queue *q;         /* the queue */
    struct queue *to;        /* moves: the target queue */
    struct qjob *job;        /* the job, when one */
    struct qjob **jobs;      /* redrive, purge: owned array */
    size_t n_jobs;
    struct queue_rec rec;      /* a head rewrite's new fields */
    struct qdedup *dd;         /* push: its dedup entry, or NULL */
    uint64_t id;               /* push: the new job's id */
    int16_t prio;              /* push */
    uint32_t attempts;         /* push (0), moves (kept or reset) */
    uint32_t vis_ms;           /* push, reserve */
    uint16_t max_deliveries;   /* push */
    uint64_t pushed_ms;        /* push */
    uint64_t due;              /* loop ms, when delayed or reserved */
    uint64_t old_due;          /* the due to go back to on a failure */
    bool named;                /* the batch writes q's (or to's) name */
    struct queue_settings set; /* configure, pause: the new settings */
};

/* Internal moves and writes that are no request op. */
enum {
    QOP_EXPIRE_DEAD = 100, /* a reservation ran out, the last allowed */
    QOP_DEDUP_SWEEP = 101,
};

struct queue_engine {
    struct backend be;                         /* registered as ferry.queue */
    struct broker *b;                          /* borrowed */
    struct loop *loop;                         /* borrowed */
    struct store *st;                          /* borrowed */
    unsigned t_jobs, t_names, t_dedup, t_meta; /* store tables */
    struct smap by_name;                       /* name -> struct queue, owned */
    struct map by_qid;  /* qid -> struct queue, borrowed */
    struct map jobs;    /* job id -> struct qjob, owned (pool) */
    struct map waiting; /* handle -> struct qwaiter, owned */
    struct smap dedup;  /* qid+dedup -> struct qdedup, owned */
    struct pool job_pool;
    struct heap timed;     /* DELAYED and RESERVED jobs by due */
    struct timer timed_tm; /* fires at timed's first due */
    struct timer tick;     /* rates and the dedup sweep, each second */
    uint64_t next_id;      /* job ids start at 1 */
    uint64_t id_space;     /* 0 (a single node), or the first id of this
                              node's space in a cluster (queue.h) */
    uint32_t next_qid;     /* queue ids start at 1 */
    uint64_t rng;          /* reservation tokens */
    uint64_t pending;      /* batches in flight */
    bool closing;
    uint8_t *out; /* owned: reply scratch */
    size_t out_cap;
    struct queue_stats stats; /* the totals */
};

/* The counters of the meta table (as u64, big-endian). */
#define QUEUE_NEXT_ID_KEY "queue/next_id"
#define QUEUE_NEXT_QID_KEY "queue/next_qid"

/* queue.c */
uint64_t queue_unix_ms(void);
struct queue *queue_get(struct queue_engine *qe, struct slice name,
                        bool create);
uint8_t *queue_out(struct queue_engine *qe, size_t n);
struct qop *queue_op_new(struct queue_engine *qe, uint8_t op, struct queue *q);
void queue_op_free(struct qop *o);
/* Adds q's name record to b when it is not on disk yet (o->named set). */
ferry_err queue_batch_name(struct queue_engine *qe, struct store_batch *b,
                           struct queue *q, const struct queue_settings *set,
                           struct qop *o);
void queue_name_committed(struct queue_engine *qe, struct qop *o,
                          bool committed);
void queue_job_ready(struct queue_engine *qe, struct qjob *j);
void queue_job_busy(struct queue_engine *qe, struct qjob *j);
void queue_job_unbusy(struct queue_engine *qe, struct qjob *j);
void queue_job_free(struct queue_engine *qe, struct qjob *j);
/* j waits in the timed heap until due (loop ms) as state (QJ_DELAYED or
 * QJ_RESERVED), counted in its queue. */
void queue_job_timed(struct queue_engine *qe, struct qjob *j, uint8_t state,
                     uint64_t due);
void queue_feed(struct queue_engine *qe, struct queue *q);
void queue_timed_arm(struct queue_engine *qe);
struct queue *queue_dead_letter_of(struct queue_engine *qe, struct queue *q,
                                   bool create);
void queue_settings_default(const struct queue *q, struct queue_settings *set);
/* The name record's value (qid + settings JSON); NULL when out of
 * memory. *len its bytes; free() it. */
uint8_t *queue_settings_encode(uint32_t qid, const struct queue_settings *s,
                               size_t *len);
bool queue_settings_decode(const void *data, size_t len, uint32_t *qid,
                           struct queue_settings *s, char *err,
                           size_t err_size);
/* Applies a CONFIGURE document on top of *s; false with err. */
bool queue_settings_apply(struct slice json, struct queue_settings *s,
                          char *err, size_t err_size);

extern const struct backend_ops queue_backend_ops;
void queue_timed_init(struct queue_engine *qe);
/* Submits b for o with cb, counting it in the engine and in o's queues
 * until queue_op_done(o) (which frees o) at the end of cb. */
void queue_submit_op(struct queue_engine *qe, struct store_batch *b,
                     struct qop *o, store_done_cb cb);
void queue_op_done(struct qop *o);
void queue_waiter_free(struct qwaiter *w);

/* queue_load.c: frees everything, once closing and nothing pending. */
void queue_engine_free(struct queue_engine *qe);

/* queue_admin.c: the ops that are not on a job's path. */
void queue_admin_call(struct queue_engine *qe, struct bcall *c,
                      const struct queue_req *r, struct queue *q);
void queue_tick_cb(struct timer *t);
/* Frees q, which holds no job, no pending batch, no waiter. */
void queue_forget(struct queue_engine *qe, struct queue *q);

#endif
