/* SPDX-License-Identifier: MIT */
/*
 * bench_impl.h - what the engine of ferry bench (bench.c) shares with its
 * workloads: the run, its connections and their request slots, and the
 * hooks through which a workload says what each connection sends and what
 * its replies mean. bench.c has the echo workload; bench_queue.c the
 * producers and consumers of ferry.queue; bench_pubsub.c the publishers
 * and subscribers of ferry.topic. Not for the rest of the CLI:
 * cli/bench.h.
 *
 * The engine owns the sockets, the frames, the phases and the accounting
 * (every request sent ends replied, errors, bad or outstanding); a
 * workload only builds requests, judges replies, and reports.
 */
#ifndef FERRY_CLI_BENCH_IMPL_H
#define FERRY_CLI_BENCH_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/bench.h"
#include "core/buf.h"
#include "core/hist.h"
#include "proto/frame.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* Latency buckets 1/128 of a power of two wide (any uint64_t ns). */
#define BENCH_HIST_SUB_BITS 7

struct bench;
struct bench_conn;

enum bench_phase {
    PHASE_HANDSHAKE, /* HELLO sent, waiting for every HELLO_OK */
    PHASE_WARMUP,    /* load on, nothing recorded */
    PHASE_MEASURE,   /* load on, replies recorded */
    PHASE_DRAIN,     /* no new load; waiting for the outstanding */
    PHASE_DONE
};

enum bench_conn_state {
    BCONN_HELLO, /* HELLO queued, no HELLO_OK yet */
    BCONN_READY, /* requests flowing */
    BCONN_CLOSED /* failed; its outstanding requests are lost */
};

/* One request window position. */
struct bench_slot {
    uint64_t id;      /* id of the request in flight, when busy */
    uint64_t gen;     /* requests this slot has sent */
    uint64_t sent_ns; /* when that request was queued */
    uint8_t kind;     /* the workload's tag for what it sent */
    bool busy;        /* a request is in flight */
};

/*
 * What one connection does; picked per connection (a workload may give
 * its connections different roles). Hooks may queue requests with
 * bench_slot_get() and bench_request().
 */
struct bench_conn_ops {
    /* Queues the connection's first requests when the load starts. */
    void (*start)(struct bench *b, struct bench_conn *c);
    /* The REPLY f ended the request of done (its slot already free):
     * returns whether it was the right one, after queueing what follows. */
    bool (*reply)(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done, const struct frame *f);
    /* An ERROR frame ended the request of done (counted already). */
    void (*error)(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done);
};

/* A whole workload: its state, its connections' roles, its report. */
struct bench_workload {
    /* Sets up b->wl and each connection's ops (c->ops), b->slots and
     * b->req_max (and may set b->drain_ms). FERRY_OK or an error. */
    ferry_err (*init)(struct bench *b);
    /* Once each loop turn during the load and the drain (may be NULL). */
    void (*tick)(struct bench *b);
    /* Prints the results; missing is the requests never answered.
     * Returns the exit code. */
    int (*report)(struct bench *b, uint64_t missing);
    /* Frees b->wl (may be NULL). */
    void (*release)(struct bench *b);
};

/* One socket. Owned by struct bench. */
struct bench_conn {
    int fd;                           /* the socket, -1 when closed */
    enum bench_conn_state st;         /* see enum */
    const struct bench_conn_ops *ops; /* borrowed: its role */
    struct buf in;                    /* bytes read, not yet decoded */
    struct buf out;                   /* frames queued, not yet written */
    struct bench_slot *slots;         /* owned: b->slots slots */
    uint32_t *free;                   /* owned: indexes of free slots */
    uint32_t n_free;                  /* entries in free */
    uint32_t in_flight;               /* busy slots */
    uint64_t measured;                /* replies inside the window */
    void *role;                       /* borrowed: the workload's state */
    bool dirty;                       /* on the dirty list */
    bool want_out;                    /* EPOLLOUT armed: the socket was full */
};

/* The whole run. No globals: everything hangs off this. */
struct bench {
    const struct bench_config *cfg;        /* borrowed */
    const struct bench_workload *wk;       /* borrowed: what it runs */
    void *wl;                              /* owned by wk: its state */
    int ep;                                /* epoll fd */
    struct bench_conn *conns;              /* owned: cfg->connections */
    uint32_t *dirty;                       /* owned: indexes of dirty conns */
    uint32_t n_dirty;                      /* entries in dirty */
    uint32_t n_ready;                      /* conns past HELLO_OK */
    uint32_t slots;                        /* request slots per connection */
    enum bench_phase phase;                /* see enum */
    uint64_t now;                          /* CLOCK_MONOTONIC ns, this turn */
    uint64_t t_start;                      /* the load started */
    uint64_t t_measure;                    /* start of the window */
    uint64_t t_end;                        /* end of the window */
    uint64_t t_deadline;                   /* end of handshake or drain */
    struct slice service;                  /* the service, as bytes */
    size_t req_max;                        /* largest request body sent */
    uint64_t drain_ms;                     /* the workload's drain at least */
    struct hist hist;                      /* latencies in the window, ns */
    uint64_t measured;                     /* replies in the window */
    uint64_t replies;                      /* all good replies */
    uint64_t sent;                         /* all requests sent */
    uint64_t errors[FERRY__ERR_COUNT + 1]; /* ERROR frames by code */
    uint64_t req_errors[FERRY__ERR_COUNT + 1]; /* of those, ending a request */
    uint64_t wrong;         /* replies with wrong id or bytes */
    uint64_t bad;           /* of those, ending a request (wrong bytes) */
    uint64_t lost;          /* in flight on a failed connection */
    uint64_t conn_failures; /* connections that failed */
    uint64_t max_lat_ns;    /* longest send-to-answer time, all phases */
    char first_error[FRAME_MAX_ERRMSG + 64]; /* first error, for stderr */
};

/* Whether new load may be sent: warm-up or the window. */
static inline bool
bench_is_loading(const struct bench *b)
{
    return b->phase == PHASE_WARMUP || b->phase == PHASE_MEASURE;
}

/* Whether replies now are recorded: the window. */
static inline bool
bench_is_measuring(const struct bench *b)
{
    return b->phase == PHASE_MEASURE;
}

/* A free slot of c with its next request id set, or NULL when all are
 * busy or c is closed. The caller must send with bench_request(). */
struct bench_slot *bench_slot_get(struct bench *b, struct bench_conn *c);

/*
 * Queues the request of slot (from bench_slot_get) on c: service
 * b->service, the routing key and payload given, deadline timeout_ms (0:
 * the daemon's), tagged kind. False when c failed (out of memory).
 */
bool bench_request(struct bench *b, struct bench_conn *c,
                   struct bench_slot *slot, uint8_t kind, struct slice key,
                   struct slice payload, uint32_t timeout_ms);

/* Notes the first error of the run, for the report. */
void bench_note_error(struct bench *b, const char *fmt, const char *a,
                      const char *c);

/* Ends the window now (a workload's own limit was reached). */
void bench_stop(struct bench *b);

/* The sum of the request errors (ERROR frames that ended a request). */
uint64_t bench_request_errors(const struct bench *b);

/* Prints "ferry bench: errors NAME=N" lines and the first error. */
void bench_report_errors(const struct bench *b);

/* The accounting line of bench.h, on stderr. */
void bench_report_end(const struct bench *b, uint64_t outstanding);

#endif
