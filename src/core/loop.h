/* SPDX-License-Identifier: MIT */
/*
 * loop.h - one event loop and everything that hangs off it.
 *
 * A struct loop owns the libuv loop, the connections (by id), the deadline
 * heap and its single uv_timer_t, the prepare hook that flushes every dirty
 * connection once per turn, the listeners, and the buffers connections
 * share: one read buffer and the free list of blocks they hold while they
 * have bytes pending. There are no globals on the request path: a second
 * loop later is a second struct loop. The broker's state hangs off it too,
 * as an opaque pointer, because core never includes broker.
 */
#ifndef FERRY_CORE_LOOP_H
#define FERRY_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/bufpool.h"
#include "core/config.h"
#include "core/list.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/timer.h"
#include "ferry.h"

struct conn;
struct conn_ops;
struct listener;
struct broker;
struct servants;
struct http_server;
struct topic_engine;

/* Owned by main(); lives as long as the process runs. */
struct loop {
    uv_loop_t uv;                      /* the libuv loop */
    const struct config *cfg;          /* borrowed */
    struct map conns;                  /* conn id -> conn, borrowed */
    uint64_t next_conn_id;             /* ids start at 1 */
    size_t n_conns;                    /* conns open (not closing) */
    size_t n_alive;                    /* conns not yet freed */
    struct list all;                   /* every conn not yet freed */
    struct list dirty;                 /* conns with output to flush */
    struct list backlog;               /* conns with frames left to decode */
    struct buf rbuf;                   /* shared read buffer: see conn.c */
    struct bufpool bufs;               /* blocks of conns' own buffers */
    struct timer_heap timers;          /* every deadline of this loop */
    uv_timer_t timer;                  /* armed for the earliest deadline */
    uint64_t timer_armed;              /* when timer fires, or UINT64_MAX */
    uv_prepare_t prepare;              /* flushes dirty conns */
    uv_idle_t idle;                    /* runs the decode backlog */
    bool idle_on;                      /* idle handle started */
    struct listener *listeners;        /* owned list */
    const struct conn_ops *accept_ops; /* borrowed: ops of new conns */
    struct broker *broker;             /* borrowed; set by main() */
    struct servants *servants;         /* borrowed; set by main(): the
                                          services ferryd serves itself
                                          (servants/servants.h) */
    struct topic_engine *topics;       /* borrowed; set by ferry.topic
                                          while it runs, else NULL: where
                                          topic_emit() sends ferryd's own
                                          events (topic/topic.h) */
    struct http_server *http;          /* borrowed; set by main(), NULL
                                          when HTTP is off */
    /* Set by the HTTP side (core never includes it): scans its conns,
     * closing those whose unfinished bodies pass limit (0: none), and
     * returns the open one holding the most, with its bytes in *bytes;
     * NULL when none. */
    void *(*http_scan)(struct http_server *s, uint64_t limit, uint64_t *bytes);
    /* ... and closes one it returned; why is for the log. */
    void (*http_shed)(struct http_server *s, void *conn, const char *why);
    struct mem mem;                   /* the memory budget's state */
    uint64_t hrtime;                  /* cached uv_hrtime() of this turn,
                                         0 when not yet read */
    uint64_t auth_failures;           /* HELLOs refused for their token */
    uint64_t conns_refused;           /* accepted past max_connections */
    bool stopping;                    /* closing everything */
    void (*on_empty)(struct loop *l); /* called when the last conn is freed
                                         while stopping */
};

ferry_err loop_init(struct loop *l, const struct config *cfg);

/* Closes the loop's own handles; runs the loop until they are closed. */
void loop_release(struct loop *l);

/* Milliseconds of the loop clock (cached per turn). */
static inline uint64_t
loop_now(const struct loop *l)
{
    return uv_now(&l->uv);
}

/*
 * Nanoseconds of a monotonic clock, read once per loop turn: every frame
 * handled in one turn sees the same time, which is exact enough for
 * latency figures and saves a clock read per request.
 */
static inline uint64_t
loop_hrtime(struct loop *l)
{
    if (l->hrtime == 0) {
        l->hrtime = uv_hrtime();
    }
    return l->hrtime;
}

/* Makes the idle hook decode the conns left on loop->backlog. */
void loop_wake_backlog(struct loop *l);

/* Arms a timer on this loop's heap; FERRY_ENOMEM when it cannot. */
ferry_err loop_timer_start(struct loop *l, struct timer *t, uint64_t when);
void loop_timer_stop(struct loop *l, struct timer *t);

/* The open connection with this id, or NULL (closed or closing). */
struct conn *loop_conn(const struct loop *l, uint64_t id);

/*
 * Starts listening on addr ("host:port" or "unix:/path"), removing a stale
 * unix socket file first. Logs "listening on" once bound. Returns
 * FERRY_ESYS (logged) when it cannot bind.
 */
ferry_err loop_listen(struct loop *l, const char *addr);
/* ... whose conns get ops (not accept_ops): a listener of another
 * protocol (the memcached face). */
ferry_err loop_listen_as(struct loop *l, const char *addr,
                         const struct conn_ops *ops);

/* Closes every listener and unlinks the unix socket files. */
void loop_close_listeners(struct loop *l);

/* Closes every connection (after flushing what it has pending). */
void loop_close_conns(struct loop *l);

/* Closes every connection at once, lingering ones included. */
void loop_destroy_conns(struct loop *l);

#endif
