/* SPDX-License-Identifier: MIT */
/*
 * kv.h - the service ferry.kv: a durable key-value store on the store
 * (src/store/), served as an in-daemon backend (broker/backend.h) with the
 * payloads of docs/services.md (servants/kv_codec.h).
 *
 * Reads (GET, RANGE, COUNT) run on the loop in the store's read txn and
 * answer at once. Writes (PUT, DELETE) hold the call, submit one batch
 * with a hook that computes the stored value (create_rev, mod_rev,
 * version, then the value) in the writer thread from the key's old value
 * and the batch's revision, and answer from the batch's callback: a reply
 * means the write is on disk per store_sync. The global revision is the
 * store counter "kv/rev" in table "meta", bumped in the same transaction
 * as the write, so it survives a restart and has no gaps.
 *
 * WATCH is a long poll: events since from_rev come from an in-memory
 * history of the most recent writes, bounded by KV_HISTORY_EVENTS events
 * and KV_HISTORY_BYTES bytes of keys and values (the oldest go first); a
 * from_rev older than what is kept is refused ("compacted"). A watcher
 * with nothing to see yet is held until an event it matches commits, its
 * wait_ms passes (an empty answer) or ferryd stops (an empty answer).
 */
#ifndef FERRY_SERVANTS_KV_H
#define FERRY_SERVANTS_KV_H

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>

#include "ferry.h"

struct broker;
struct kv_service;
struct loop;
struct store;
struct store_batch;

#define KV_SERVICE_NAME "ferry.kv"
/* The store tables ferry.kv uses (servants.c opens them). */
#define KV_TABLE "kv"
#define KV_META_TABLE "meta"
#define KV_REV_KEY "kv/rev"
/* Bounds of the watch history. */
#define KV_HISTORY_EVENTS 10000
#define KV_HISTORY_BYTES (UINT64_C(16) << 20)

/* Counters for /v1/stats and /metrics. */
struct kv_stats {
    uint64_t ops[7];         /* requests by op (index = enum kv_op) */
    uint64_t bad;            /* refused as malformed */
    uint64_t puts;           /* puts committed */
    uint64_t deletes;        /* deletes committed */
    uint64_t cas_failed;     /* writes answered EXISTS */
    uint64_t not_found;      /* GET / DELETE answered NOT_FOUND */
    uint64_t write_errors;   /* writes the store failed (NO_SPACE ...) */
    uint64_t watch_events;   /* events sent to watchers */
    uint64_t compacted;      /* watches refused as compacted */
    uint64_t writes_pending; /* writes waiting for their commit */
    uint64_t watchers;       /* watches held now */
    uint64_t history_events; /* events kept now */
    uint64_t history_bytes;  /* their key and value bytes */
    uint64_t oldest_rev;     /* the oldest revision a watch may ask */
    uint64_t rev;            /* the store revision now */
};

/*
 * Registers ferry.kv with b on the store's tables KV_TABLE and
 * KV_META_TABLE (FERRY_EINVALID_ARGUMENT when the store lacks them) and
 * reads the revision. *out is set only on success.
 */
ferry_err kv_service_open(struct kv_service **out, struct broker *b,
                          struct loop *l, struct store *st);

/* Answers every held watch (empty) and frees the service once its
 * pending writes are decided: call before store_close, which runs their
 * callbacks. NULL is a no-op. */
void kv_service_close(struct kv_service *kv);

const struct kv_stats *kv_service_stats(struct kv_service *kv);

/* The "kv" object of /v1/stats' "servants"; NULL when out of memory. */
json_t *kv_service_stats_json(struct kv_service *kv);

/* The ferry_kv_* families of /metrics, each with HELP and TYPE. */
void kv_service_metrics(struct kv_service *kv, FILE *f);

/*
 * A vbucket handover's import (servants/vbdata.h) writes the source's
 * records as they are, their create_rev, mod_rev and version kept, so a
 * mod_rev read on the source still compares on this node. Revisions must
 * stay monotonic: kv_service_raise_rev adds to b a hook that sets the
 * revision counter to at least r->want (the highest revision of the
 * chunk, or the source's revision); once b is committed r->got holds
 * the counter it left, for kv_service_imported. r is borrowed until b's
 * callback. FERRY_ENOMEM.
 */
struct kv_rev_raise {
    uint64_t want; /* the counter is at least this after */
    uint64_t got;  /* written by the writer: what it is after */
};
ferry_err kv_service_raise_rev(struct kv_service *kv, struct store_batch *b,
                               struct kv_rev_raise *r);

/*
 * After an import with kv records committed: takes rev as the revision
 * when it is higher, and forgets the watch history up to now, since the
 * imported keys' events are not in it: held watchers are answered
 * "compacted" and read the state again with RANGE (no event is made up
 * for an imported key).
 */
void kv_service_imported(struct kv_service *kv, uint64_t rev);

#endif
