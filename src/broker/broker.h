/* SPDX-License-Identifier: MIT */
/*
 * broker.h - ferryd's request path: the router from a caller's REQUEST to
 * a service, the table of requests in flight, deadlines, and shutdown.
 *
 * A request that cannot be answered at once gets a record from a pool
 * (never a malloc per request) under a broker id of its own; the request
 * table maps that id back to the caller's conn id and request id, so a
 * reply finds its caller, or finds that it is gone, without any pointer
 * from one connection to another. Each record carries its deadline timer
 * in the loop's heap. Every accepted request ends with exactly one REPLY or
 * ERROR to its caller.
 *
 * An idempotent request keeps a copy of its key and payload while at a
 * worker, so that when the worker is lost or fails with a transient error
 * it can be sent again, to another worker, after a jittered backoff, while
 * its deadline, retry_max and its service's retry budget allow.
 */
#ifndef FERRY_BROKER_BROKER_H
#define FERRY_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/backend.h"
#include "broker/service.h"
#include "broker/sink.h"
#include "core/list.h"
#include "core/loop.h"
#include "core/map.h"
#include "core/pool.h"
#include "core/timer.h"
#include "proto/frame.h"

struct config_changes;

/* The REQUEST flag of a request a peer ferryd forwarded (the hop mark,
 * docs/cluster.md): served on this node, never forwarded again. Only a
 * peer link's requests carry it. */
#define BROKER_FORWARDED 0x80u

#define REQ_INLINE 200
#define BROKER_BAD_NAME                                                        \
    "a service name must not hold control bytes" /* key+payload bytes a queued \
                                                    record holds inline */

enum req_state {
    REQ_QUEUED = 0,     /* in its service's queue */
    REQ_AT_WORKER = 1,  /* forwarded, waiting for the worker's answer */
    REQ_RETRY_WAIT = 2, /* failed at a worker, backing off before a retry */
    REQ_HELD = 3        /* held by an in-daemon backend (bcall_hold) */
};

/* A request in flight; pooled, owned by the broker's request table. */
struct req {
    uint64_t id;          /* broker id, the key in the table */
    struct broker *b;     /* borrowed: the broker it belongs to */
    struct sink sink;     /* where its answer goes (c NULL: by id) */
    struct backend *be;   /* borrowed: its service's backend */
    uint64_t worker_conn; /* conn id of the worker, 0 while queued */
    uint64_t failed_conn; /* conn id of the worker it last failed at */
    struct service *svc;  /* borrowed: outlives its queued requests */
    struct wreg *reg;     /* borrowed while at a worker */
    uint64_t deadline;    /* loop ms after which the caller gets DEADLINE */
    uint64_t sent_at;     /* loop ms it last reached a worker */
    uint32_t budget_ms;   /* its whole deadline, from arrival */
    uint32_t probe;       /* the circuit's half-open round it probes, with
                             no outcome yet; 0: not a probe */
    uint64_t start_ns;    /* uv_hrtime() at arrival, for latency */
    struct timer tm;      /* deadline, no-worker wait or retry backoff */
    struct list node;     /* in svc->queue or the worker's held list */
    enum req_state state; /* where it is */
    uint8_t flags;        /* REQUEST flags, passed on */
    uint8_t attempts;     /* retries made so far */
    bool worker_probe;    /* the probe of an ejected worker */
    uint16_t key_len;     /* bytes of key in data while queued */
    uint32_t payload_len; /* bytes of payload after the key */
    uint8_t *data;        /* key+payload while queued, and kept at a
                             worker for retries when idempotent: inline or
                             owned, counted in queued_bytes */
    uint8_t inline_data[REQ_INLINE]; /* storage for small requests */
};

/* Owned by main(); reached from the loop as loop->broker. */
struct broker {
    struct loop *loop;          /* borrowed */
    const struct config *cfg;   /* borrowed */
    struct smap services;       /* name -> struct service, owned */
    struct map reqs;            /* broker id -> struct req, owned */
    struct pool req_pool;       /* request records */
    uint64_t next_req_id;       /* broker ids start at 1 */
    size_t live;                /* requests not yet answered */
    uint64_t rng;               /* xorshift state for two choices */
    uint64_t queued_bytes;      /* key+payload bytes held by records */
    uint64_t late_replies;      /* worker answers for unknown ids */
    struct map icalls;          /* icall id -> struct icall, borrowed */
    uint8_t *scratch;           /* owned: an icall's reply assembled by
                                   bcall_reply_prepare(), reused */
    size_t scratch_cap;         /* bytes at scratch */
    uint64_t next_icall_id;     /* icall ids start at 1 */
    struct backend workers;     /* the worker pool: every service that is
                                   not in-daemon (workers.c) */
    struct backend builtins[4]; /* echo, ferry.services, ferry.cluster,
                                   ferry.admin */
    bool shutting_down;         /* SIGTERM seen: refuse new requests */
    bool stopped;               /* shutdown finished its work */
    struct timer grace;         /* ends the shutdown grace period */
    void (*on_stopped)(struct broker *b); /* set by main() */
    /* Set by the cluster (NULL: a single node, and HELLOs with role
     * peer are refused): a peer link's session is up, or closing. */
    void (*on_peer_up)(struct broker *b, struct conn *c);
    void (*on_peer_down)(struct broker *b, struct conn *c);
    /*
     * Set by the cluster: where a request of svc goes. 0: here, as
     * without a cluster; 1: to *be (a peer link's backend) with *where
     * for its start(); -1: answered already (FENCED, NOT_MY_VBUCKET,
     * UNAVAILABLE). flags carry the hop mark of a request a peer
     * forwarded (served here, never forwarded again).
     */
    int (*route)(struct broker *b, struct sink *k, struct service *svc,
                 uint8_t flags, const struct frame_request *q,
                 struct backend **be, void **where);
    /* Set by the cluster: adds the other nodes' workers of svc to its
     * object in ferry.services. */
    int (*describe_remote)(struct broker *b, const struct service *svc,
                           json_t *obj);
    /* Set by the cluster: the services other nodes have workers of that
     * this node has no record of (never named here), as an object of
     * name -> the "nodes" array describe_remote gives; a new reference,
     * or NULL when out of memory. */
    json_t *(*describe_remote_only)(struct broker *b);
    /* The cluster's view (cluster_describe), for ferry.cluster; NULL on a
     * single node. A new reference, or NULL when out of memory. */
    json_t *(*describe_cluster)(struct broker *b);
    /* Set by the cluster: a peer link answered one of the requests this
     * node forwarded to it for svc (code FERRY_OK for a REPLY); for its
     * failure counts and ejection. */
    void (*on_peer_answer)(struct broker *b, struct conn *link,
                           const struct service *svc, ferry_err code);
    /* Set by the cluster: r, held by a peer node, failed there with code
     * (or its link went): true when the cluster sent it elsewhere (an
     * idempotent request, once), false to fail it. */
    bool (*peer_retry)(struct broker *b, struct req *r, ferry_err code);
    void *cluster; /* borrowed: the cluster's state, for these hooks */
    /* Set by main() when clustered: leaves the cluster (handing the
     * node's vbuckets over), then stops, as SIGTERM does. */
    void (*on_leave)(struct broker *b, const char *who);
    /* Set by main(): re-reads the configuration and applies what changed
     * (ch), or keeps the running one and says why in err. */
    ferry_err (*on_reload)(struct broker *b, struct config_changes *ch,
                           char *err, size_t err_size);
};

/* Sets up the broker on l, with the built-in services. */
ferry_err broker_init(struct broker *b, struct loop *l);
void broker_release(struct broker *b);

/* Finds or creates a service; NULL with *err set when it cannot. */
struct service *broker_service(struct broker *b, struct slice name, bool create,
                               ferry_err *err);

/* A caller's REQUEST, parsed. Answers errors itself. */
void broker_request(struct broker *b, struct conn *caller, uint64_t id,
                    uint8_t flags, const struct frame_request *q);

/*
 * The request path of every caller: the answer goes to sink k (a binary
 * caller's conn, an icall). Answers errors itself.
 */
void broker_submit(struct broker *b, struct sink *k, uint8_t flags,
                   const struct frame_request *q);

/* An in-daemon caller left: drops record req_id of icall icall_id without
 * an answer (CANCEL to the worker holding it). */
void broker_drop(struct broker *b, uint64_t req_id, uint64_t icall_id);

/* A caller's CANCEL for its request id. */
void broker_cancel(struct broker *b, struct conn *caller, uint64_t id);

/* A worker's REPLY or ERROR for broker id. */
void broker_worker_reply(struct broker *b, struct conn *worker, uint64_t id,
                         struct slice payload);
void broker_worker_error(struct broker *b, struct conn *worker, uint64_t id,
                         const struct frame_error *e);

/* Sends queued requests of svc to workers with free credit. */
void broker_dispatch(struct broker *b, struct service *svc);

/* A service lost its last active worker: queued requests wait at most
 * worker_wait_ms more. */
void broker_rearm_queue(struct broker *b, struct service *svc);

/* The caller behind a session went away: drop or cancel its requests. */
void broker_caller_gone(struct broker *b, struct map *inflight);

/* A worker went away: its requests fail with WORKER_LOST, or are retried
 * when idempotent. */
void broker_worker_gone(struct broker *b, struct list *held);

/*
 * svc may have turned idle (service_is_idle): frees it at once when it
 * never had a worker, else arms its forget timer for
 * service_idle_forget_ms. Nothing may use svc after this.
 */
void broker_maybe_free_service(struct broker *b, struct service *svc);

/* Like broker_maybe_free_service(), but never frees at once: svc may be
 * used after it. */
void broker_service_settle(struct broker *b, struct service *svc);

/*
 * Starts the shutdown: no new requests, work in flight gets grace_ms, then
 * on_stopped is called (once) after every request has its answer.
 */
void broker_shutdown(struct broker *b);

#endif
