/* SPDX-License-Identifier: MIT */
/*
 * store.h - ferryd's durable state: one LMDB environment in a folder the
 * caller gives (ferryd passes <data_dir>/store), with one named table
 * (an LMDB sub-database) per kind of state: kv, queues, id...
 *
 * Reads run on the loop thread in one read transaction that is begun at
 * the first read of a loop turn and reset before the loop polls again, so
 * it never pins old pages across turns. The data a read returns is valid
 * until the end of the callback that read it.
 *
 * Writes are batches (put and delete operations, each with an optional
 * condition) queued on the loop with a completion callback. One writer
 * thread takes every batch queued since its last commit, applies them in
 * one transaction (a batch's conditions are all checked before any of its
 * writes, so a batch whose condition fails is refused alone), commits and hands
 * the results back to the loop (uv_async), which runs the callbacks. With
 * store_sync = always the commit includes the fsync: no callback runs before
 * its batch is on disk, and the loop never waits for the disk.
 *
 * Everything here is called on the loop thread only; writer.c is the
 * writer thread.
 */
#ifndef FERRY_STORE_STORE_H
#define FERRY_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/hist.h"
#include "ferry.h"

/* Named tables an environment may hold. */
#define STORE_MAX_TABLES 16
/* LMDB's key size limit (mdb_env_get_maxkeysize with default build). */
#define STORE_MAX_KEY 511
/* The largest value a hook may write (LMDB itself takes up to 4 GiB). */
#define STORE_MAX_VALUE (UINT32_C(1) << 30)
/* The smallest map, and the first one of a new environment. */
#define STORE_MIN_MAP (UINT64_C(1) << 20)

struct store;
struct store_batch;

/* How an environment is opened; borrowed for the call only. */
struct store_opts {
    const char *dir;           /* folder of data.mdb, created 0700 */
    const char *const *tables; /* table names; a table's id is its
                                  index here */
    size_t n_tables;           /* entries in tables */
    uint64_t max_bytes;        /* the map never grows past this */
    uint32_t sync_ms;          /* 0: fsync in every commit (always);
                                  N: MDB_NOSYNC, fsync every N ms */
    uint32_t checkpoint_ms;    /* always: the journal's checkpoints at
                                  most this long after a commit (0: the
                                  default, STORE_JOURNAL_CKPT_MS) */
    uint64_t journal_max_bytes; /* always: the journal's ring is a
                                   sixteenth of the free disk, at most
                                   this (0: STORE_JOURNAL_RING_DEFAULT) */
};

/* A slice of LMDB's map: valid until the current loop callback returns. */
struct store_val {
    const void *data; /* borrowed */
    size_t len;       /* bytes at data */
};

/* The condition of one operation, checked against the value the key has
 * before its batch is applied (earlier batches of the group included,
 * earlier operations of the same batch not: like etcd's txn compares). */
enum store_cond {
    STORE_IF_ANY = 0, /* always */
    STORE_IF_ABSENT,  /* the key does not exist */
    STORE_IF_PRESENT, /* the key exists */
    STORE_IF_EQUALS,  /* the value is exactly the expected bytes */
    STORE_IF_PREFIX   /* the value begins with the expected bytes (a
                         revision kept at the front of a kv value) */
};

/* What became of a batch. */
enum store_status {
    STORE_COMMITTED = 0, /* every operation is on disk (per store_sync) */
    STORE_REFUSED,       /* an operation's condition failed; nothing of
                            the batch was applied */
    STORE_FAILED         /* not applied: err says why */
};

/* Handed to a batch's callback; valid during the call only. */
struct store_result {
    enum store_status status; /* what became of the batch */
    ferry_err err;            /* STORE_FAILED: FERRY_ENO_SPACE (map at
                                 store_max_bytes, or the disk full),
                                 FERRY_ESYS (an LMDB error, logged) */
    size_t refused_op;        /* STORE_REFUSED: index of the operation
                                 whose condition failed */
    uint64_t rev;             /* STORE_COMMITTED with a revision counter
                                 (store_batch_revision): the revision this
                                 batch took; 0 otherwise */
};

/* Runs on the loop thread once the batch is decided; the batch is freed
 * after it returns. */
typedef void (*store_done_cb)(void *arg, const struct store_result *r);

/* Counters for /v1/stats, /metrics and the dashboard. Owned by the store;
 * read on the loop thread (store_stats). */
struct store_stats {
    uint64_t commits;         /* write transactions committed */
    uint64_t batches;         /* batches decided (all statuses) */
    uint64_t batches_refused; /* of which a condition refused */
    uint64_t batches_failed;  /* of which failed (NO_SPACE, SYS) */
    uint64_t ops;             /* operations committed */
    uint64_t max_group;       /* most batches in one commit */
    uint64_t grows;           /* times the map was grown */
    uint64_t syncs;           /* mdb_env_sync calls (store_sync = N; the
                                 journal's checkpoints with always) */
    uint64_t stale_readers;   /* dead readers cleared at open */
    uint64_t journal_bytes;   /* appended to the journal */
    uint64_t journal_replayed; /* journal records applied at open */
    uint64_t used_bytes;      /* pages in use in the map, in bytes */
    uint64_t map_bytes;       /* the map's size now */
    uint64_t max_bytes;       /* store_max_bytes */
    uint64_t queued;          /* batches waiting for or in a commit */
    struct hist commit_us;    /* commit latency (txn begin to commit
                                 return, fsync included), µs */
    struct hist group_size;   /* batches per commit */
};

/*
 * Opens (creating when missing) the environment in opts->dir with its
 * tables, clears stale readers and starts the writer thread. The store
 * uses loop for its async and prepare handles. *out is set on success.
 * FERRY_EINVALID_ARGUMENT for bad opts, FERRY_ENOMEM, FERRY_ESYS when the
 * folder or LMDB refuse (logged with the reason).
 */
ferry_err store_open(struct store **out, uv_loop_t *loop,
                     const struct store_opts *opts);

/*
 * Drains every queued batch (committed and its callback run, here), joins
 * the writer thread and closes the environment; the struct is freed once
 * the loop has closed its handles (run the loop after this). Blocks the
 * loop until the last commit is on disk: for shutdown only.
 */
void store_close(struct store *s);

/* The id of a table by name, or -1. */
int store_table(const struct store *s, const char *name);

/*
 * Reads key in table. FERRY_OK with *found set (and *val when found);
 * FERRY_EINVALID_ARGUMENT for a bad table or key; FERRY_ESYS when LMDB
 * fails. Sees every batch whose callback has run.
 */
ferry_err store_get(struct store *s, unsigned table, const void *key,
                    size_t klen, struct store_val *val, bool *found);

/*
 * Ordered iteration: store_seek puts the cursor at the first key >= key
 * (klen 0: the first key), store_next moves it on. Each sets *found and,
 * when found, *k and *v. A cursor lives within one loop callback:
 * store_cursor_close before returning.
 */
struct store_cursor;
ferry_err store_cursor_open(struct store *s, unsigned table,
                            struct store_cursor **out);
ferry_err store_seek(struct store_cursor *c, const void *key, size_t klen,
                     struct store_val *k, struct store_val *v, bool *found);
ferry_err store_next(struct store_cursor *c, struct store_val *k,
                     struct store_val *v, bool *found);
void store_cursor_close(struct store_cursor *c);

/* A new empty batch, or NULL when out of memory. */
struct store_batch *store_batch_new(void);
/* Frees a batch that was never submitted. */
void store_batch_free(struct store_batch *b);
/* Operations in a batch so far. */
size_t store_batch_len(const struct store_batch *b);

/*
 * Append an operation; the bytes are copied. A put writes val, a delete
 * removes the key (deleting a missing key is not an error unless the
 * condition asks for it). expect is used by STORE_IF_EQUALS and
 * STORE_IF_PREFIX. FERRY_EINVALID_ARGUMENT for an empty or too long key or
 * a table id past STORE_MAX_TABLES, FERRY_ENOMEM; the batch is unchanged
 * on error.
 */
ferry_err store_batch_put(struct store_batch *b, unsigned table,
                          const void *key, size_t klen, const void *val,
                          size_t vlen);
ferry_err store_batch_del(struct store_batch *b, unsigned table,
                          const void *key, size_t klen);
ferry_err store_batch_put_if(struct store_batch *b, unsigned table,
                             const void *key, size_t klen, const void *val,
                             size_t vlen, enum store_cond cond,
                             const void *expect, size_t elen);
ferry_err store_batch_del_if(struct store_batch *b, unsigned table,
                             const void *key, size_t klen, enum store_cond cond,
                             const void *expect, size_t elen);

/*
 * Revisions and hooks: values computed in the writer thread.
 *
 * store_batch_revision gives the batch a revision counter: a u64
 * (big-endian) kept at key in table, absent = 0. When the batch applies,
 * it takes the counter's value + 1 as its revision, and the counter is
 * written in the same transaction. Batches are applied in the order they
 * were submitted, so revisions follow commit order with no gaps: a refused
 * or failed batch takes none. One counter per (table, key): a global one
 * (ferry.kv keeps "rev" in its own meta table) or one per table or queue.
 *
 * A hook operation (store_batch_hook) computes a key's new value in the
 * writer, from its value before the batch (NULL when absent) and the
 * batch's revision (0 without a counter): it returns what to do and, for
 * STORE_HOOK_PUT, writes the new value into store_hook_value(ctx, len).
 * Hooks run before any write of their batch, like the conditions, and
 * may run more than once for one batch (a group retried after the map
 * grew): each run must depend only on its inputs and overwrite whatever
 * it records in arg. arg is written by the writer thread and may be read
 * on the loop from the batch's callback on (the hand-back orders them).
 * A hook must not block or call the store.
 */
enum store_hook_act {
    STORE_HOOK_PUT = 0, /* write the value given to store_hook_value */
    STORE_HOOK_DELETE,  /* remove the key */
    STORE_HOOK_REFUSE   /* refuse the batch (STORE_REFUSED, refused_op) */
};
struct store_hook_ctx;
typedef enum store_hook_act (*store_hook_fn)(void *arg,
                                             const struct store_val *old,
                                             uint64_t rev,
                                             struct store_hook_ctx *ctx);
/* Room for the new value of len bytes (STORE_MAX_VALUE at most), valid
 * for the hook's run; NULL when out of memory (the batch then fails
 * FERRY_ENOMEM whatever the hook returns). */
void *store_hook_value(struct store_hook_ctx *ctx, size_t len);

ferry_err store_batch_revision(struct store_batch *b, unsigned table,
                               const void *key, size_t klen);
ferry_err store_batch_hook(struct store_batch *b, unsigned table,
                           const void *key, size_t klen, store_hook_fn fn,
                           void *arg);

/* The counter of store_batch_revision as the loop sees it now: 0 when
 * absent. FERRY_EINVALID_ARGUMENT, FERRY_ESYS as store_get; FERRY_ESYS
 * too when the value there is not 8 bytes. */
ferry_err store_get_counter(struct store *s, unsigned table, const void *key,
                            size_t klen, uint64_t *out);

/*
 * Takes ownership of b and queues it for the writer; cb runs on the loop
 * once it is decided (never inside this call). A batch naming a table the
 * store does not have fails with FERRY_EINVALID_ARGUMENT.
 */
void store_submit(struct store *s, struct store_batch *b, store_done_cb cb,
                  void *arg);

/*
 * Whether less than STORE_HEADROOM bytes (an eighth of store_max_bytes
 * when that is less) are left for writes (on the disk and under
 * store_max_bytes, LMDB's freed pages counted as room), as the
 * writer last saw it (at most 250 ms ago). Writes that add data (queue
 * pushes) are refused with NO_SPACE then, so that those which free it
 * (acks, deletes) and small rewrites (reserves) still find room.
 */
#define STORE_HEADROOM (UINT64_C(2) << 20)
bool store_space_low(struct store *s);

/* The counters; the histograms are the store's own (borrowed). */
const struct store_stats *store_stats(struct store *s);

#endif
