/* SPDX-License-Identifier: MIT */
/*
 * sink.h - where a request's answer goes: a binary caller's connection
 * (its conn id and request id) or an in-daemon caller (an icall id), one
 * interface, so that the broker and the backends never ask which.
 *
 * A sink is a small value: its ops, the caller's id for the answer and,
 * for a conn, the conn id. A request record keeps it by value; a sink
 * never points to the caller, so an answer after the caller left finds
 * that it is gone (the conn or icall id no longer maps) and is dropped.
 * Every answer of a sink is the request's one answer.
 */
#ifndef FERRY_BROKER_SINK_H
#define FERRY_BROKER_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"
#include "proto/frame.h"

struct broker;
struct conn;
struct req;
struct sink;

struct sink_ops {
    /* Who the caller is, for logs ("'name' at 'peer'"). */
    void (*who)(struct broker *b, const struct sink *k, char *buf, size_t size);
    /* Room for a REPLY payload of len bytes; NULL with *err set when not:
     * FERRY_ETOO_BIG (sent to the caller instead) or FERRY_EOVERLOADED
     * (nothing sent: the caller is gone or its output is full). */
    uint8_t *(*prepare)(struct broker *b, struct sink *k, uint32_t len,
                        ferry_err *err);
    /* Sends what prepare gave, filled. */
    void (*commit)(struct broker *b, struct sink *k);
    /* REPLY(data, len) in one go: FERRY_OK, or like prepare's *err. */
    ferry_err (*reply)(struct broker *b, struct sink *k, const void *data,
                       size_t len);
    /* ERROR code with msg. */
    void (*error)(struct broker *b, struct sink *k, ferry_err code,
                  struct slice msg);
    /* Record r now answers the caller's id: the caller's map of requests
     * in flight (a conn), the icall's record id. FERRY_ENOMEM when not. */
    ferry_err (*track)(struct broker *b, const struct sink *k, struct req *r);
    /* The record of the caller's id ends (before its answer is sent). */
    void (*untrack)(struct broker *b, const struct sink *k);
};

struct sink {
    const struct sink_ops *ops; /* borrowed, static */
    uint64_t id;                /* the caller's request id, or icall id */
    uint64_t conn_id;           /* the caller's conn, 0 for an icall */
    struct conn *c;             /* the conn while it is known open within
                                   one call chain; NULL: look it up */
    uint32_t len;               /* prepare()'s len, for commit() */
    bool internals;             /* the caller may see internals
                                   (ferry.services), as its door decided
                                   by core/access.h */
    bool admin;                 /* the caller may give operator commands
                                   (ferry.admin) */
    bool cluster;               /* the cluster's own icall (icall.h) */
    const void *to_node;        /* the cluster's own icall for one node
                                   (its struct peer, borrowed while the
                                   call is routed), NULL: routed */
};

extern const struct sink_ops sink_conn_ops;
extern const struct sink_ops sink_icall_ops;

/* The sink of request id of binary caller c (conn conn_id), with its
 * rights. */
static inline struct sink
sink_conn(struct conn *c, uint64_t conn_id, uint64_t id, bool internals,
          bool admin)
{
    struct sink k = {&sink_conn_ops, id, conn_id, c, 0, internals, admin,
                     false, NULL};

    return k;
}

/* The sink of icall id, with its rights. */
static inline struct sink
sink_icall(uint64_t id, bool internals)
{
    struct sink k = {&sink_icall_ops, id, 0, NULL, 0, internals, false,
                     false, NULL};

    return k;
}

/* An ERROR with code's own text. */
void sink_error_code(struct broker *b, struct sink *k, ferry_err code,
                     const char *msg);

#endif
