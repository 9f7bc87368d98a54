/* SPDX-License-Identifier: MIT */
/*
 * backend.h - what serves a service, and where a request's answer goes.
 *
 * The broker owns every request from arrival to its one answer: the
 * deadline, the circuit breaker, disabling, stats, shutdown. What serves
 * the request is the service's backend:
 *   - workers: the outside processes registered for it (broker/workers.c);
 *   - an in-daemon service with state of its own (echo, ferry.services,
 *     ferry.admin, ferry.cache, ferry.kv, ferry.id; src/servants/), which
 *     sees the routing key, flags and deadline and may answer at once or
 *     later (after a disk write);
 *   - later a queue's consumers and a peer ferryd.
 * The answer goes to the request's reply sink: a binary caller's
 * connection or an in-daemon caller (the HTTP gateway), one interface, so
 * no backend and no broker path asks which kind of caller it serves.
 *
 * An in-daemon backend answers in one of two ways:
 *   - at once, inside call(): bcall_reply() / bcall_reply_prepare() +
 *     bcall_reply_commit() / bcall_error(). No request record is made: the
 *     hot path of a cache get or an echo allocates nothing.
 *   - later: bcall_hold() inside call() turns the request into a record of
 *     the broker (with its deadline timer) and gives a handle; the backend
 *     answers with broker_answer() from any later loop callback. When the
 *     caller stops waiting first (deadline, CANCEL, caller gone,
 *     shutdown), the broker answers it itself and calls the backend's
 *     cancelled(); a broker_answer() for that handle is then a no-op.
 * Exactly one of these per call; a call() that does neither is a bug.
 *
 * A backend whose requests leave the daemon (the worker pool; later a
 * queue's consumers, a peer ferryd) has no call(): every request is a
 * record of the broker from its arrival (retries, queueing for credit,
 * a lost holder), and the record hooks below place it, and are told of
 * its deadline, its cancel and its end. The broker's record API they use
 * is in broker_impl.h.
 */
#ifndef FERRY_BROKER_BACKEND_H
#define FERRY_BROKER_BACKEND_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

struct backend;
struct bcall;
struct broker;
struct frame_request;
struct req;
struct service;
struct sink;

struct backend_ops {
    const char *kind; /* "workers", "builtin", "cache", ... shown as the
                         service's "backend" in ferry.services */
    /* A request of the backend's service; answers it (see above). */
    void (*call)(struct backend *be, struct bcall *c);
    /* A held request ended without the backend's answer: handle is what
     * bcall_hold() gave. Optional (NULL: nothing to do). */
    void (*cancelled)(struct backend *be, uint64_t handle);
    /* Adds the backend's own fields to the object of its service svc in
     * ferry.services and /v1/services. Optional. 0, or -1 when out of
     * memory. */
    int (*describe)(struct backend *be, const struct service *svc, json_t *obj);
    /* Its services come and go with their users: one that is idle (no
     * requests, no workers, not disabled) is forgotten after
     * service_idle_forget_ms. In-daemon services stay. */
    bool transient;

    /* The record hooks (call NULL). admit: whether svc can take q now or
     * queue it; false when k has been answered (TOO_BIG, OVERLOADED; the
     * circuit probe given back). *where: what start() is to use (the
     * worker picked), or NULL to queue. */
    bool (*admit)(struct backend *be, struct sink *k, struct service *svc,
                  const struct frame_request *q, uint32_t probe, void **where);
    /* New record r goes where admit() said. */
    void (*start)(struct backend *be, struct req *r, void *where,
                  const struct frame_request *q);
    /* r's timer fired (deadline, retry backoff, wait in the queue). */
    void (*timer)(struct backend *be, struct req *r, uint64_t now);
    /* r ends without its answer (cancel, caller gone, shutdown): tell
     * whoever holds it. */
    void (*cancel)(struct backend *be, struct req *r);
    /* r is freed while out (REQ_AT_WORKER): give back its credit. */
    void (*release)(struct backend *be, struct req *r);
};

/* Embedded in the backend's own state; registered with
 * broker_add_backend(). */
struct backend {
    const struct backend_ops *ops; /* borrowed, static */
    struct broker *b;              /* set by broker_add_backend() */
};

/* What a backend sees of a request; borrowed for call() only. */
struct bcall {
    struct broker *b;     /* borrowed */
    struct service *svc;  /* borrowed: the service called */
    struct slice key;     /* routing key, borrowed */
    struct slice payload; /* borrowed */
    uint8_t flags;        /* REQUEST flags (FERRY_IDEMPOTENT ...) */
    uint32_t deadline_ms; /* its whole deadline, default and cap
                             applied */
    uint64_t deadline;    /* loop ms it ends at */
    bool internals;       /* the caller may see internals
                             (core/access.h) */
    bool admin;           /* the caller may give operator commands */
    bool answered;        /* set by the bcall_* answers; the broker's */
    void *priv;           /* the broker's: the reply sink */
};

/*
 * Registers an in-daemon service name (a reserved name: "echo" or
 * "ferry.*") served by be, which must outlive the broker's use of it
 * (until broker_release). FERRY_ENOMEM, FERRY_EINVALID_ARGUMENT for a
 * name that is not reserved or already served.
 */
ferry_err broker_add_backend(struct broker *b, const char *name,
                             struct backend *be);

/* Answers c now with REPLY(data, len). A reply above the caller's
 * max_frame becomes TOO_BIG; a caller whose output cannot take it gets
 * OVERLOADED or nothing (it is being closed). */
void bcall_reply(struct bcall *c, const void *data, size_t len);

/*
 * Room for a REPLY payload of exactly len bytes, to be written and then
 * sent with bcall_reply_commit(c): for replies assembled from parts (a
 * header and a cached value) without a second copy. NULL when it cannot
 * be had: c has been answered with an error then (TOO_BIG, OVERLOADED).
 */
uint8_t *bcall_reply_prepare(struct bcall *c, size_t len);
void bcall_reply_commit(struct bcall *c);

/* Answers c now with ERROR code; msg NULL means ferry_strerror(code). */
void bcall_error(struct bcall *c, ferry_err code, const char *msg);

/*
 * Keeps c for a later answer: returns its handle (never 0), or 0 when out
 * of memory, in which case c has been answered with an error. The
 * request's key and payload are not kept: copy what the answer needs.
 */
uint64_t bcall_hold(struct bcall *c);

/* The later answer of held request handle: err FERRY_OK with the reply
 * payload, or an error with msg (NULL: the code's text). A no-op when the
 * request has ended already. */
void broker_answer(struct broker *b, uint64_t handle, ferry_err err,
                   const void *data, size_t len);
void broker_answer_error(struct broker *b, uint64_t handle, ferry_err err,
                         const char *msg);

/* Who the caller of c is, for a log line ("'name' at 'peer'", or the
 * HTTP gateway). */
void bcall_who(struct bcall *c, char *buf, size_t size);

/* Whether held request handle still waits for its answer. */
bool broker_is_waiting(struct broker *b, uint64_t handle);

#endif
