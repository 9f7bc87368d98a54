/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one client connection of ferryd, whatever its role.
 *
 * A conn reads into its input buffer, decodes every whole frame there (up
 * to a budget per turn) and hands each to its ops; whatever it must send
 * goes into its output buffer, and the loop's prepare hook writes that with
 * one uv_write per turn. Output is double-buffered: the buffer being
 * written is never touched, new frames go to the other. A buffer holds
 * memory only while it has bytes: it takes a block from the loop's pool
 * (core/bufpool.h) and puts it back once they are written or decoded, so
 * an idle conn costs the struct alone. Above the high-water mark of pending
 * output the conn stops reading until it drains below the low-water mark,
 * so a peer that does not read cannot make ferryd's memory grow.
 *
 * Roles (a client still in handshake, a caller, a worker) differ only by
 * their struct conn_ops, supplied by the broker. Other parts refer to a
 * conn by its id, never by pointer, across loop turns: loop_conn() finds it
 * while it is open.
 */
#ifndef FERRY_CORE_CONN_H
#define FERRY_CORE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/addr.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/loop.h"
#include "core/timer.h"
#include "proto/frame.h"

#define CONN_FRAME_BUDGET 256      /* frames decoded per callback */
#define CONN_READ_SIZE (64 * 1024) /* room of the shared read buffer */
#define CONN_LINGER_MS 2000        /* time to flush and see EOF on close */
#define CONN_READ_MIN 4096         /* least room for a read into c->in */

enum conn_state {
    CONN_HANDSHAKE = 0, /* accepted; waiting for HELLO */
    CONN_READY = 1,     /* HELLO done; serving */
    CONN_DRAINING = 2,  /* a worker that takes no new requests */
    CONN_CLOSING = 3    /* going away: nothing new is read or sent */
};

/* Behaviour of one role; static tables owned by the broker. */
struct conn_ops {
    const char *role;   /* for logs: "client", "caller", "worker" */
    bool pause_on_high; /* stop reading while output is above high water;
                           false for workers, whose output credit already
                           bounds and whose replies must keep flowing */
    /*
     * Handles one decoded frame, a slice of the input buffer valid only
     * during the call. Returning an error sends ERROR with id 0 and that
     * code, then closes the conn; a handler that wants its own message
     * calls conn_fail() itself and returns FERRY_OK.
     */
    ferry_err (*frame)(struct conn *c, const struct frame *f);
    /*
     * Optional: false while the role must not take more frames from the
     * peer (a caller with its window of requests in flight). Reading stops
     * until the role calls conn_wake().
     */
    bool (*can_read)(const struct conn *c);
    /*
     * Called once when the conn starts closing (after it left the id map):
     * fail or cancel its requests and free c->data.
     */
    void (*closing)(struct conn *c);
    /*
     * Optional, for a role that speaks a byte stream instead of frames
     * (the memcached face): handles what is at the head of p[0..n) and
     * returns the bytes it took, 0 when it needs more (*need then set to
     * the bytes the command needs in all when known, else 0). Such a conn
     * is READY from accept (no HELLO), and is never sent an ERROR frame.
     */
    size_t (*bytes)(struct conn *c, const uint8_t *p, size_t n, size_t *need);
};

/*
 * Owned by its loop; freed only from the libuv close callback. Fields are
 * ordered largest first so the struct has no holes: every idle connection
 * pays for each byte of it.
 */
struct conn {
    struct loop *loop; /* borrowed */
    uint64_t id;       /* unique within the loop, never reused */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;                        /* the socket */
    const struct conn_ops *ops; /* borrowed: the role's behaviour */
    void *data;                 /* owned by ops: the role's state */
    struct buf in;              /* bytes read, not yet decoded; holds a
                                   block of loop->bufs only while it has
                                   some */
    struct buf out[2];          /* double-buffered output; each holds a
                                   block only while it has bytes */
    union {
        uv_write_t write;       /* while writing: the one write */
        uv_shutdown_t shutdown; /* once shut: after the last write */
    } req;                      /* never both: no write starts once shut */
    struct list all_node;       /* on loop->all until freed */
    struct list dirty_node;     /* on loop->dirty */
    struct list backlog_node;   /* on loop->backlog */
    struct timer tm;            /* handshake, heartbeat or linger */
    uint64_t accepted_at;       /* loop ms at accept */
    uint64_t last_rx;           /* loop ms of the last bytes read */
    uint64_t last_tx;           /* loop ms of the last frame queued */
    char *peer;                 /* owned, exactly sized (a static "" until
                                   accepted): address for logs and stats */
    char *name;                 /* owned, exactly sized (a static "" until
                                   conn_set_name()): name from HELLO */
    enum conn_state state;      /* changed only by conn_set_state() */
    uint32_t peer_hb_ms;        /* heartbeat the peer announced */
    uint32_t hb_ms;             /* this end's heartbeat (a PING after so
                                   long without sending); 0: the config's
                                   heartbeat_ms */
    uint32_t in_need;           /* ops->bytes: bytes the cut command at
                                   the head of in needs, 0 unknown */
    uint32_t soft_since_s;      /* loop second after the one in which
                                   output passed output_soft_limit, 0
                                   while below it */
    int sys_err;                /* errno-style code of the last failure */
    unsigned out_cur;           /* out[] that collects new frames */
    bool writing;               /* req.write in progress */
    bool reading;               /* uv_read_start in effect */
    bool paused;                /* reading stopped for back-pressure */
    bool shut;                  /* shutdown requested */
    bool destroyed;             /* uv_close called */
    bool failed;                /* out of memory: close at the next flush */
    bool over_limit;            /* output would pass output_limit: close
                                   with SLOW_CONSUMER at the next flush */
};

/* Whether c came through a unix socket listener. */
static inline bool
conn_is_unix(const struct conn *c)
{
    return c->h.handle.type == UV_NAMED_PIPE;
}

/*
 * Accepts a pending connection on server and starts reading it with
 * loop->accept_ops. label is the listener address, used as the peer name
 * of unix connections. Failures are logged and leave nothing behind.
 */
void conn_accept(struct loop *l, uv_stream_t *server, bool is_unix,
                 const char *label);
/* ... with ops instead of loop->accept_ops (a listener of its own). */
void conn_accept_as(struct loop *l, uv_stream_t *server, bool is_unix,
                    const char *label, const struct conn_ops *ops);

/*
 * Dials the TCP address to (ferryd's peer links): a conn with ops in
 * HANDSHAKE at once (closable, found by its id), reading once connected,
 * when connected(c) is called to send the first frame. A failed connect,
 * or no HELLO_OK within handshake_timeout_ms, closes it (ops->closing is
 * called as for any conn). NULL when out of memory.
 */
struct conn *conn_connect(struct loop *l, const struct addr *to,
                          const struct conn_ops *ops,
                          void (*connected)(struct conn *c));

/* Changes state; asserts the transition is allowed and traces it. */
void conn_set_state(struct conn *c, enum conn_state state);

/*
 * Sets the name shown for c in logs and stats to a copy of name, replacing
 * any earlier one. FERRY_ENOMEM (the name unchanged) when it cannot.
 */
ferry_err conn_set_name(struct conn *c, const char *name);

static inline void
conn_set_ops(struct conn *c, const struct conn_ops *ops)
{
    c->ops = ops;
}

/* Bytes queued for writing, both halves. */
static inline size_t
conn_out_pending(const struct conn *c)
{
    return buf_len(&c->out[0]) + buf_len(&c->out[1]);
}

static inline bool
conn_is_open(const struct conn *c)
{
    return c->state != CONN_CLOSING;
}

/* Bytes of buffer memory c holds (input and both output halves), for the
 * memory budget's choice of whom to close. */
static inline uint64_t
conn_held_bytes(const struct conn *c)
{
    return (uint64_t)c->in.cap + c->out[0].cap + c->out[1].cap;
}

/* Whether more output may be queued without passing the high-water mark. */
bool conn_is_writable(const struct conn *c);

/*
 * Reserves n bytes of output and returns where to write them, or NULL when
 * the conn is closing, memory ran out, or the output would pass
 * output_limit (the conn is then closed at the next flush, with
 * SLOW_CONSUMER in the last case). Follow with conn_out_commit().
 */
uint8_t *conn_out_prepare(struct conn *c, size_t n);
void conn_out_commit(struct conn *c, size_t n);

/* Queues ERROR(id, code, msg); a NULL msg sends the code's message. */
ferry_err conn_send_error(struct conn *c, uint64_t id, ferry_err code,
                          const char *msg);
/* Queues a frame with an empty body. */
ferry_err conn_send_empty(struct conn *c, uint8_t type, uint64_t id);

/*
 * Sends ERROR(0, code, msg) and closes after it has been written: the
 * answer to anything that makes the whole connection unusable.
 */
void conn_fail(struct conn *c, ferry_err code, const char *msg);

/*
 * Closes at once, dropping whatever output waits: ERROR(0, code, msg) is
 * written only if the socket takes it now, then the socket closes. For a
 * peer that does not read (output_limit, output_soft_limit) or one closed
 * for the memory budget, whose pending output is what must go. Not from
 * within a callback chain that still uses c (the flush hook, timers and
 * the memory budget call it).
 */
void conn_abort(struct conn *c, ferry_err code, const char *msg);

/*
 * Closes: the conn leaves the id map, its ops fail its requests, pending
 * output is flushed (for at most CONN_LINGER_MS), then the socket closes.
 * Harmless on a conn already closing.
 */
void conn_close(struct conn *c, const char *reason);

/* Stops reading c until conn_wake() (the memory budget: past its
 * shedding mark no connection reads more in this turn). */
void conn_pause_reads(struct conn *c);

/* Resumes reading a conn paused by flow control, when nothing holds it
 * back any more (its role's can_read, its output above low water). */
void conn_wake(struct conn *c);

/* Arms the heartbeat checks after HELLO (peer_hb_ms 0: none). */
void conn_start_heartbeat(struct conn *c, uint32_t peer_hb_ms);

/* Writes out[] of every dirty conn; the loop's prepare hook. */
void conn_flush_dirty(struct loop *l);

/* Decodes more frames of conns left with work; the loop's idle hook. */
void conn_run_backlog(struct loop *l);

/* Closes the socket at once, whatever is pending (loop shutdown). */
void conn_destroy(struct conn *c);

#endif
