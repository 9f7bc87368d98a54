/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the inside of struct ferry_worker and struct ferry_job,
 * libferry's worker (the public functions are declared in include/ferry.h).
 * Kept here so unit tests can look at a worker's state.
 */
#ifndef FERRY_LIB_WORKER_H
#define FERRY_LIB_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/map.h"
#include "core/pool.h"
#include "ferry.h"
#include "lib/conn.h"

/* How long a stopping worker waits for the jobs it holds. */
#define FERRY__DRAIN_MS 1000

/* One service the worker serves; owned by the worker. */
struct ferry__service {
    char *name;               /* owned, NUL-terminated */
    size_t name_len;          /* bytes in name */
    uint32_t credit;          /* requests taken at once */
    ferry_handler_cb handler; /* runs for each request */
    void *arg;                /* borrowed: passed to handler */
    bool registered;          /* REGISTERED came on this connection */
};

/* A request being served. Pooled by the worker; held by the program from
 * the handler until ferry_job_reply() or ferry_job_fail(). */
struct ferry_job {
    struct ferry_worker *w;     /* borrowed: the owner */
    uint64_t id;                /* ferryd's request id */
    uint64_t epoch;             /* connection the request came on */
    struct ferry__service *svc; /* borrowed: the service asked for */
    struct slice payload;       /* borrowed: valid inside the handler */
    struct slice key;           /* borrowed: valid inside the handler */
    uint64_t deadline_at;       /* monotonic ms, UINT64_MAX for none */
    bool held;                  /* given out and not yet answered */
    bool cancelled;             /* ferryd no longer wants the answer */
    struct ferry_job *prev;     /* held list */
    struct ferry_job *next;     /* held list */
};

/* Owned by the program that made it with ferry_worker_new(). */
struct ferry_worker {
    struct ferry__conn conn;          /* the link to ferryd */
    struct ferry__service **services; /* owned: each owned */
    size_t nservices;                 /* entries in services */
    size_t nregistered;               /* registered on this connection */
    bool ready_seen;                  /* ready ran on this connection */
    bool drain_sent;                  /* DRAIN went on this connection */
    void (*ready)(struct ferry_worker *w, void *arg); /* from run, or NULL */
    void *ready_arg;            /* borrowed: passed to ready */
    struct map jobs;            /* id -> borrowed job, this
                                   connection's held jobs */
    size_t nlive;               /* held, this connection, not
                                   cancelled */
    size_t nheld;               /* held, any connection */
    struct ferry_job held;      /* list head of held jobs */
    struct pool jobs_pool;      /* every job record */
    ferry_cancel_cb on_cancel;  /* or NULL: told of cancelled jobs */
    void *on_cancel_arg;        /* borrowed: passed to on_cancel */
    ferry_err fatal;            /* why serving is impossible */
    int wake[2];                /* self-pipe for ferry_worker_stop */
    volatile sig_atomic_t stop; /* set by ferry_worker_stop */
};

#endif
