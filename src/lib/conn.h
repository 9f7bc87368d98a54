/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one libferry connection to ferryd, shared by the caller
 * (client.c) and the worker (worker.c).
 *
 * It owns the socket, the input and output buffers, the HELLO exchange and
 * the reconnect backoff. Sockets are plain non-blocking file descriptors
 * driven with poll(2), so any program can embed libferry whatever its own
 * event loop is. Frames go out through the output buffer and leave in one
 * send per loop turn; frames come in by reading everything available and
 * decoding every whole frame in the input buffer.
 */
#ifndef FERRY_LIB_CONN_H
#define FERRY_LIB_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/buf.h"
#include "ferry.h"
#include "proto/frame.h"

#define FERRY__DEFAULT_HEARTBEAT_MS 2500
#define FERRY__DEFAULT_CONNECT_TIMEOUT_MS 2000
#define FERRY__DEFAULT_RECONNECT_MIN_MS 50
#define FERRY__DEFAULT_RECONNECT_MAX_MS 2000
#define FERRY__ERRMSG_MAX 256

/* Owned by the client or worker that embeds it. */
struct ferry__conn {
    struct addr addr;               /* where ferryd listens */
    int fd;                         /* the socket, -1 while disconnected */
    struct buf in;                  /* bytes read and not yet decoded */
    struct buf out;                 /* frames waiting to be written */
    char *name;                     /* owned: HELLO name, NULL for the pid */
    char *token;                    /* owned: HELLO token, NULL for none */
    uint8_t role;                   /* enum frame_role sent in HELLO */
    uint32_t heartbeat_ms;          /* the interval we announce, 0 = none */
    uint32_t connect_timeout_ms;    /* connect plus HELLO */
    uint32_t reconnect_min_ms;      /* first reconnect delay */
    uint32_t reconnect_max_ms;      /* backoff cap */
    uint32_t max_frame;             /* largest body we accept */
    uint32_t peer_heartbeat_ms;     /* ferryd's interval, from HELLO_OK */
    uint32_t peer_max_frame;        /* largest body ferryd accepts */
    uint32_t peer_max_deadline_ms;  /* ferryd's deadline cap (version 2),
                                       0 when not told */
    uint32_t peer_default_deadline_ms; /* ferryd's deadline for deadline_ms
                                          0 (version 2), 0 when not told */
    uint64_t last_send_ms;          /* when bytes last left */
    uint64_t last_recv_ms;          /* when bytes last arrived */
    uint32_t backoff_ms;            /* next reconnect delay before jitter */
    uint64_t retry_at_ms;           /* no connect attempt before this */
    uint64_t epoch;                 /* bumped on every new connection */
    uint64_t rng;                   /* xorshift state for the jitter */
    int sys_err;                    /* errno of the last failed call */
    char errmsg[FERRY__ERRMSG_MAX]; /* why the last connect or link failed */
};

/* Milliseconds on the monotonic clock. */
uint64_t ferry__now_ms(void);

/*
 * Parses addr (NULL: addr_default()) and copies opts. heartbeat_ms is the
 * interval announced in HELLO: the caller passes 0, the worker passes the
 * option or its default. Returns FERRY_EINVALID_ARGUMENT, FERRY_ENOMEM.
 */
ferry_err ferry__conn_init(struct ferry__conn *c, const char *addr,
                           const struct ferry_opts *opts, uint8_t role,
                           bool announce_heartbeat);

void ferry__conn_release(struct ferry__conn *c);

static inline bool
ferry__conn_is_open(const struct ferry__conn *c)
{
    return c->fd >= 0;
}

/* Whether the backoff allows a connect attempt at now. */
bool ferry__conn_may_connect(const struct ferry__conn *c, uint64_t now);

/*
 * Connects and exchanges HELLO, waiting up to connect_timeout_ms; a byte on
 * wake_fd (or -1) cuts the wait short. Returns FERRY_OK, FERRY_EVERSION,
 * FERRY_EUNAUTHORIZED, or FERRY_ECONNECTION; on failure the reason is in
 * errmsg and the next attempt is pushed back by the backoff.
 */
ferry_err ferry__conn_open(struct ferry__conn *c, int wake_fd);

/*
 * Closes the socket, drops buffered bytes and schedules the next connect
 * attempt after the (jittered) backoff. why (printf format, may be NULL)
 * goes to errmsg. No-op when already closed.
 */
void ferry__conn_close(struct ferry__conn *c, const char *why, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Reads what the socket holds into the input buffer without blocking.
 * Returns FERRY_ECONNECTION when the peer closed or the read failed
 * (errmsg says which); the caller then closes.
 */
ferry_err ferry__conn_read(struct ferry__conn *c);

/*
 * Takes the next whole frame off the input buffer. *got is false when no
 * whole frame is buffered. The frame's body is a slice of the input buffer,
 * valid until the next read. Returns FERRY_ETOO_BIG or FERRY_EUNKNOWN_TYPE
 * for a frame that must end the connection.
 */
ferry_err ferry__conn_next(struct ferry__conn *c, struct frame *f, bool *got);

/* Handles one decoded frame for the role that owns the conn. */
typedef void (*ferry__frame_cb)(void *arg, const struct frame *f);

/*
 * Hands every whole buffered frame to on_frame while the conn stays open.
 * Returns false when a bad frame header aborted the conn (ERROR sent): the
 * role then handles the loss.
 */
bool ferry__conn_process(struct ferry__conn *c, ferry__frame_cb on_frame,
                         void *arg);

/* Writes as much queued output as one send takes. Returns
 * FERRY_ECONNECTION when the socket failed. */
ferry_err ferry__conn_flush(struct ferry__conn *c);

/* Appends an empty-bodied frame (PING, CANCEL, DRAIN). */
ferry_err ferry__conn_send_empty(struct ferry__conn *c, uint8_t type,
                                 uint64_t id);

/* Appends an ERROR frame; msg may be NULL. */
ferry_err ferry__conn_send_error(struct ferry__conn *c, uint64_t id,
                                 uint16_t code, const char *msg);

/*
 * Tells ferryd the connection is broken by its fault (ERROR code, id 0),
 * makes a best-effort attempt to send it, and closes.
 */
void ferry__conn_abort(struct ferry__conn *c, ferry_err code, const char *why);

/*
 * Waits up to timeout_ms (-1: no limit) for the socket to become readable
 * (or writable while output is queued) or for a byte on wake_fd (-1: none).
 * Sets *readable and *woken. Returns FERRY_ESYS when poll fails.
 */
ferry_err ferry__conn_wait(struct ferry__conn *c, int wake_fd, int timeout_ms,
                           bool *readable, bool *woken);

/*
 * The wait of one turn: timeout_ms (-1: no limit) shortened to the next
 * PING we owe and to the moment a silent ferryd counts as dead. Only a
 * connection that announced a heartbeat has either duty.
 */
int ferry__conn_timeout(const struct ferry__conn *c, int timeout_ms);

/*
 * The heartbeat duties of a turn, on an open connection that announced an
 * interval: queues a PING when nothing was sent for that long, and closes
 * the connection (errmsg says why) when ferryd sent nothing for three of
 * its own intervals. Returns false when it closed the connection.
 */
bool ferry__conn_keepalive(struct ferry__conn *c);

/* Clamps a millisecond span to an int timeout for poll(2). */
int ferry__ms_to_timeout(uint64_t ms);

#endif
