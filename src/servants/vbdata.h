/* SPDX-License-Identifier: MIT */
/*
 * vbdata.h - the store side of a vbucket handover (docs/cluster.md,
 * "Handover"): export a vbucket's durable data as bounded chunks, import
 * such chunks into another node's store, and drop the vbucket's data on
 * the source after the flip. The wire transfer and the decision to move
 * are src/cluster/'s; this file only reads and writes the store and
 * keeps ferry.kv and ferry.queue's memory in step.
 *
 * A vbucket's durable data: every ferry.kv key of the vbucket (its
 * create_rev, mod_rev and version kept), and every ferry.queue queue
 * whose name is in it (its name record and settings, dedup ids, counters)
 * with its jobs in every state; a dead job (one with an origin) goes with
 * the queue it died in, not with the dead-letter queue holding it, since
 * that queue's PEEK dead, STATS dead and REDRIVE reach it. A dead-letter
 * queue `Q.dead` is a queue of its own (its own name record, its own
 * vbucket); only Q's own dead jobs in it travel with Q.
 *
 * The caller's promise: no write to the vbucket is accepted from the
 * first vbdata_export_next until vbdata_drop (the cluster refuses them).
 * vbdata_export_next relies on it (chunks taken in several loop turns
 * form one consistent copy only then), so does vbdata_drop (it deletes
 * what it finds, in several batches). The engine's own timers are not
 * writes the caller can refuse: a reservation that runs out during an
 * export with max_deliveries reached moves its job, and the chunk that
 * meets it again is refused by the import ("twice"): start over.
 *
 * Everything runs on the loop thread. Chunks are outside input for the
 * importer: checked whole (servants/vbdata_codec.h) before anything is
 * written, then written as one store batch: all of a chunk or nothing.
 */
#ifndef FERRY_SERVANTS_VBDATA_H
#define FERRY_SERVANTS_VBDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ferry.h"
#include "store/store.h"

struct servants;

/* A good size of chunk for vbdata_export_next. */
#define VBDATA_CHUNK_BYTES (256u * 1024u)
/* Store records one export or drop step looks at, at most: a vbucket is
 * about a 1024th of each table, and each step scans its tables in key
 * order, so a step never holds the loop for long. */
#define VBDATA_SCAN_BUDGET 16384
/* Deletes in one batch of vbdata_drop. */
#define VBDATA_DROP_OPS 4096

/* Where an export is; owned by the caller, set up by vbdata_cursor_init,
 * passed to each vbdata_export_next of one export. */
struct vbdata_cursor {
    uint8_t phase;               /* the table being read */
    bool skip;                   /* key was sent: start after it */
    size_t klen;                 /* bytes of key; 0: at the table's start */
    uint8_t key[STORE_MAX_KEY];  /* where to go on */
    uint64_t records;            /* records exported so far */
    uint64_t bytes;              /* their bytes in chunks */
};

void vbdata_cursor_init(struct vbdata_cursor *c);

/*
 * Appends one chunk of vb at the end of out: a header and the next records
 * after where c is, at most max_bytes in all, except that a record larger
 * than max_bytes goes alone in its chunk (a chunk then holds one record
 * past the bound, up to 1 GiB: a kv value or a job's payload can be that
 * large). It reads at most VBDATA_SCAN_BUDGET store records, so a chunk
 * may hold no record (send it all the same: it imports as nothing). The
 * first chunk has a META record: the source's kv revision and next job
 * id. *done is set once every table was read to its end. FERRY_ENOMEM,
 * FERRY_ESYS (the store), FERRY_EINVALID_ARGUMENT (vb >= 1024); out is as
 * it was on error.
 */
ferry_err vbdata_export_next(struct servants *sv, uint16_t vb,
                             struct vbdata_cursor *c, struct buf *out,
                             size_t max_bytes, bool *done);

/* How an import or a drop ended: err FERRY_OK, or why, with a message
 * (maybe NULL) valid during the call. */
typedef void (*vbdata_done_cb)(void *ud, ferry_err err, const char *msg);

/*
 * Imports one chunk of vb (chunk is copied; borrowed for the call).
 * Checked first, whole: FERRY_EPROTO for anything malformed (a bad
 * length, an unknown type or version, a key of another vbucket, settings
 * that do not parse, a job id twice), FERRY_EINVALID_ARGUMENT when the
 * chunk is of another vbucket than vb or one of its job ids is held by a
 * job of this node already, FERRY_ENO_SPACE when the store is nearly full;
 * then written in one batch (FERRY_ENO_SPACE, FERRY_ESYS from the store:
 * nothing of the chunk applied). done runs exactly once: inside this call
 * when refused before anything is queued, else from a store callback.
 */
void vbdata_import(struct servants *sv, uint16_t vb, const void *chunk,
                   size_t len, vbdata_done_cb done, void *ud);

/*
 * Deletes vb's durable data from this node's store, in batches of at most
 * VBDATA_DROP_OPS deletes, then forgets its queues and jobs in memory (a
 * dead-letter queue of vb that keeps dead jobs of other vbuckets stays,
 * with its name record). FERRY_EOVERLOADED (inside this call) while a job
 * of vb has a write in flight; a store error stops it (what was deleted
 * stays deleted: drop again). done runs exactly once.
 */
void vbdata_drop(struct servants *sv, uint16_t vb, vbdata_done_cb done,
                 void *ud);

/* Records of vb in the store and their key and value bytes. */
struct vbdata_count {
    uint64_t records;
    uint64_t bytes;
};

/* Counts vb's records by reading every table to its end in one go: for
 * progress views and tests, not for a busy loop. FERRY_ESYS. */
ferry_err vbdata_count(struct servants *sv, uint16_t vb,
                       struct vbdata_count *out);

#endif
