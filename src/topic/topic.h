/* SPDX-License-Identifier: MIT */
/*
 * topic.h - the service ferry.topic: publish/subscribe on subjects, in
 * memory, served as an in-daemon backend (broker/backend.h) with the
 * payloads of docs/topics.md (topic/topic_codec.h).
 *
 * A subscription is a pattern (topic/trie.h), optionally a group, and a
 * bounded buffer; its owner takes messages with POLL, a long poll held
 * until one is buffered or its wait passes. PUBLISH walks the trie once
 * (work in proportion to the subscriptions it reaches, never a scan of
 * all), stores the message once and puts a reference in each reached
 * subscription's ring (topic/ring.h); subscriptions of one (pattern,
 * group) share one entry of the trie and take each message in turn.
 * Memory is bounded three ways: max_pending messages per subscription
 * (the oldest dropped, or the subscription closed), topic_max_bytes for
 * every message stored (the oldest dropped everywhere), and
 * topic_idle_ms: a subscription with no POLL outstanding for that long
 * expires. Every drop is counted and told to the subscriber in its next
 * POLL answer.
 *
 * ferryd's own modules publish events under "ferry." with topic_emit()
 * (queue pushes, acks and dead jobs, kv writes, workers joining and
 * leaving, circuits changing); callers cannot publish there.
 */
#ifndef FERRY_TOPIC_TOPIC_H
#define FERRY_TOPIC_TOPIC_H

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry.h"
#include "proto/frame.h"
#include "topic/topic_codec.h"

struct broker;
struct config;
struct loop;
struct topic_engine;

#define TOPIC_SERVICE_NAME "ferry.topic"
/* Subscriptions at once, at most; SUBSCRIBE past it gets OVERLOADED. */
#define TOPIC_MAX_SUBSCRIPTIONS 100000
/* Subscriptions listed by STATS without a sub_id. */
#define TOPIC_STATS_LIST_MAX 1000

/* The families of ferryd's own events: the second token of their
 * subjects. */
enum topic_event {
    TOPIC_EV_QUEUE = 0,   /* ferry.queue.<queue>.pushed|acked|dead */
    TOPIC_EV_KV = 1,      /* ferry.kv.<key> */
    TOPIC_EV_WORKER = 2,  /* ferry.worker.<service>.joined|left */
    TOPIC_EV_CIRCUIT = 3, /* ferry.circuit.<service>.open|closed|half_open */
};
#define TOPIC_EV_COUNT 4

/* Counters for STATS, /v1/stats and /metrics. */
struct topic_stats {
    uint64_t ops[TOPIC_OP_MAX + 1]; /* requests by op (enum topic_op) */
    uint64_t bad;                   /* refused as malformed */
    uint64_t published;             /* messages published (events included) */
    uint64_t events;                /* of them, ferryd's own (topic_emit) */
    uint64_t unrouted;              /* published to no subscription */
    uint64_t routed;                /* messages put into a buffer */
    uint64_t delivered;             /* messages handed out by POLL */
    uint64_t dropped;               /* messages dropped from buffers (every
                                       cause below) */
    uint64_t dropped_full;          /* a full buffer dropped its oldest */
    uint64_t dropped_bytes;         /* topic_max_bytes dropped the oldest */
    uint64_t dropped_closed;        /* buffered when policy 1 closed it */
    uint64_t slow_closed;           /* subscriptions closed by policy 1 */
    uint64_t expired;               /* subscriptions gone for idleness */
    uint64_t polls_empty;           /* POLLs answered EMPTY */
    uint64_t too_big;               /* PUBLISHes above topic_max_bytes */
    uint64_t nomem;                 /* publishes or routes out of memory */
    uint64_t subscriptions;         /* now */
    uint64_t patterns;              /* distinct patterns now */
    uint64_t groups;                /* named groups now */
    uint64_t polls_waiting;         /* POLLs held now */
    uint64_t messages;              /* messages stored now */
    uint64_t bytes;                 /* their bytes (topic_msg_size) */
    uint64_t pending;               /* buffered slots over every
                                       subscription */
};

/*
 * Registers ferry.topic with b; cfg is read live (topic_idle_ms,
 * topic_max_bytes), so a reload changes them at once. Sets l->topics for
 * topic_emit()'s callers. *out is set only on success.
 */
ferry_err topic_engine_open(struct topic_engine **out, struct broker *b,
                            struct loop *l, const struct config *cfg);

/* Drops every subscription and message and frees the engine once its
 * handle is closed (run the loop); clears l->topics first, so events
 * emitted later are no-ops. NULL is a no-op. Call after the broker has
 * stopped: no POLL is held then. */
void topic_engine_close(struct topic_engine *te);

/*
 * Whether some subscription's pattern may match an event of family ev
 * (its first two tokens "ferry.<family>", or wildcards there): false
 * means topic_emit() of such an event would reach nobody, so a caller can
 * skip formatting it. te NULL: false. O(1).
 */
bool topic_wants(const struct topic_engine *te, enum topic_event ev);

/*
 * Publishes one of ferryd's own events: subject (borrowed; it should
 * start with "ferry.") and payload are copied when some subscription
 * matches, else nothing is stored. Never answers anyone at once: POLLs it
 * wakes are answered after this loop turn's callbacks, so it is safe from
 * any loop callback, the broker's included. An invalid subject is
 * ignored. te NULL (no ferry.topic, or closed): a no-op.
 */
void topic_emit(struct topic_engine *te, struct slice subject,
                struct slice payload);

/*
 * The formatting form the hooks use: emits "ferry.<family>.<name>" with
 * ".<what>" appended when what is not NULL, and the payload printf'd from
 * fmt; a no-op when topic_wants() says nobody listens, or when name makes
 * the subject invalid (an empty token, '*', '>', a byte outside
 * 0x21..0x7e, more than 255 bytes). Payloads above 512 bytes are cut.
 */
void topic_emit_event(struct topic_engine *te, enum topic_event ev,
                      struct slice name, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

const struct topic_stats *topic_engine_stats(struct topic_engine *te);

/* The "topic" object of /v1/stats' "servants" (totals); NULL when out of
 * memory. */
json_t *topic_engine_stats_json(struct topic_engine *te);

/* The ferry_topic_* families of /metrics, each with HELP and TYPE. */
void topic_engine_metrics(struct topic_engine *te, FILE *f);

#endif
