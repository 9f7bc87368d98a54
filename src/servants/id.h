/* SPDX-License-Identifier: MIT */
/*
 * id.h - the service ferry.id: 64-bit ids ordered by time (layout in
 * servants/id_codec.h), strictly increasing from one ferryd, unique
 * across ferryds with different node_id, never repeated across a restart
 * even when the clock was set back.
 *
 * Two parts:
 *   - id_gen, the pure core: fed the clock as an argument (ms since
 *     ID_EPOCH_UNIX_MS), it hands out ids, says when the persisted
 *     high-water mark must move and when the clock went back. The unit
 *     test drives it with a fake clock.
 *   - id_service, the in-daemon backend (broker/backend.h) around it: the
 *     wall clock (id_service_wall_ms, the one place it is read), the mark
 *     in the store table "id", the callers held while the mark commits or
 *     while a clock that stepped back catches up.
 *
 * The mark M (ms, persisted): no id is issued in a millisecond above M,
 * and after a restart none at or below it. It is moved to now + 1000 ms
 * once the ids come within 500 ms of it; a caller whose ids would pass it
 * waits (bcall_hold) for the commit.
 */
#ifndef FERRY_SERVANTS_ID_H
#define FERRY_SERVANTS_ID_H

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry.h"

struct broker;
struct config;
struct id_service;
struct loop;
struct store;

#define ID_SERVICE_NAME "ferry.id"
/* The mark is set this far ahead of the clock ... */
#define ID_MARK_AHEAD_MS 1000
/* ... and renewed once the ids come this close to it. */
#define ID_MARK_RENEW_MS 500

/* The core; all fields its own. Times are ms since ID_EPOCH_UNIX_MS. */
struct id_gen {
    unsigned node;     /* node_id */
    uint64_t last_ms;  /* ms of the last id issued (or the mark at start) */
    uint32_t seq;      /* its sequence */
    uint64_t last_now; /* the latest clock seen */
    uint64_t mark;     /* the persisted mark: no id above it */
};

enum id_gen_rc {
    ID_GEN_OK = 0, /* the ids can be issued now */
    ID_GEN_MARK,   /* they would pass the mark: wait for a new one */
    ID_GEN_BACK,   /* the clock is behind the latest one seen */
    ID_GEN_FULL    /* the 41 bits of ms are used up (year 2095) */
};

/* Starts the core: no id at or below mark (0: none persisted yet). */
void id_gen_init(struct id_gen *g, unsigned node, uint64_t mark, uint64_t now);

/*
 * Whether count ids can be issued at clock now, changing nothing.
 * ID_GEN_BACK sets *behind to how far the clock is behind (ms).
 */
enum id_gen_rc id_gen_check(const struct id_gen *g, uint64_t now,
                            uint32_t count, uint64_t *behind);

/* Issues count ids (id_gen_check said ID_GEN_OK for the same now) into
 * out as big-endian u64 each (8 * count bytes). */
void id_gen_fill(struct id_gen *g, uint64_t now, uint32_t count, uint8_t *out);

/* The mark to persist next, when one is due at clock now (within
 * ID_MARK_RENEW_MS of the current one or past it): true with *mark. */
bool id_gen_wants_mark(const struct id_gen *g, uint64_t now, uint64_t *mark);

/* A persisted mark took effect. */
void id_gen_set_mark(struct id_gen *g, uint64_t mark);

/*
 * Reads the mark from st's table "id", starts the core with cfg's
 * node_id and registers ferry.id with b. FERRY_ESYS when the store
 * cannot be read, FERRY_ENOMEM, or broker_add_backend's error.
 */
ferry_err id_service_open(struct id_service **out, struct broker *b,
                          struct loop *l, const struct config *cfg,
                          struct store *st);

/* Stops the timer and frees the service; the broker has stopped (and
 * answered every held caller itself). NULL is a no-op. */
void id_service_close(struct id_service *is);

/* A clustered node's node id, leased in etcd (cluster/members.h): ids
 * carry it from now on; -1 while it holds none (joining or fenced), when
 * NEXT answers UNAVAILABLE, since another node may hold the id. */
void id_service_set_node(struct id_service *is, int node);

/* The wall clock ferry.id runs on, in Unix ms (the test builds add
 * FERRY_TEST_CLOCK_OFFSET_MS). */
int64_t id_service_wall_ms(const struct id_service *is);

/* The "id" object of /v1/stats' "servants" and ferry.services. */
json_t *id_service_stats_json(const struct id_service *is);

/* The ferry_id_* families of /metrics. */
void id_service_metrics(const struct id_service *is, FILE *f);

#endif
