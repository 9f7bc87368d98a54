/* SPDX-License-Identifier: MIT */
/*
 * store_impl.h - what store.c (the environment, reads, the loop side),
 * batch.c (building batches) and writer.c (the writer thread) share.
 * Nothing outside src/store/ includes it.
 */
#ifndef FERRY_STORE_STORE_IMPL_H
#define FERRY_STORE_STORE_IMPL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

enum store_op_kind { STORE_OP_PUT = 0, STORE_OP_DEL = 1, STORE_OP_HOOK = 2 };

/* One operation; its bytes live in the batch's data, by offset. */
struct store_op {
    uint8_t kind;     /* enum store_op_kind */
    uint8_t table;    /* table id */
    uint8_t cond;     /* enum store_cond */
    uint32_t klen;    /* key bytes */
    size_t koff;      /* key at data + koff */
    size_t vlen;      /* value bytes (put) */
    size_t voff;      /* value at data + voff */
    size_t elen;      /* expected bytes (IF_EQUALS, IF_PREFIX) */
    size_t eoff;      /* expected at data + eoff */
    store_hook_fn fn; /* STORE_OP_HOOK: the hook */
    void *fn_arg;     /* borrowed, for fn */
    /* STORE_OP_HOOK, written by the writer between its two passes: */
    uint8_t act; /* enum store_hook_act */
    size_t hoff; /* the new value at the writer's scratch + hoff */
    size_t hlen; /* its bytes */
};

/* Owned by its builder, then by the store from store_submit until its
 * callback returns. */
struct store_batch {
    struct store_batch *next;   /* in the store's pending or done list */
    struct store_op *ops;       /* owned */
    size_t n_ops;               /* entries used in ops */
    size_t cap_ops;             /* entries allocated */
    unsigned char *data;        /* owned: keys, values, expected values */
    size_t len;                 /* bytes used in data */
    size_t cap;                 /* bytes allocated */
    store_done_cb cb;           /* run on the loop once decided */
    void *arg;                  /* borrowed, for cb */
    struct store_result result; /* written by the writer */
    uint32_t group;             /* first batch of a commit: batches in it */
    uint64_t commit_us;         /* first batch of a commit: its latency */
    bool has_rev;               /* store_batch_revision was called */
    uint8_t rev_table;          /* the counter's table */
    uint32_t rev_klen;          /* its key's bytes */
    size_t rev_koff;            /* its key at data + rev_koff */
};

/* What a hook writes its value into: the writer's scratch area. */
struct store_hook_ctx {
    struct store *s; /* borrowed */
    size_t off;      /* the value at s->w_scratch + off */
    size_t len;      /* its bytes, once store_hook_value was called */
    bool given;      /* store_hook_value was called */
    bool nomem;      /* store_hook_value failed */
};

/* A singly linked FIFO of batches. */
struct store_list {
    struct store_batch *head; /* first, or NULL */
    struct store_batch *tail; /* last, or NULL */
};

/* Free bytes on the store's disk under which an EIO of a commit is taken
 * for a full disk (NO_SPACE). */
#define STORE_FULL_SLACK (UINT64_C(1) << 20)

/* Frees the batches kept for reuse (batch.c); at a store's end. */
void store_batch_spares_release(void);

/* The room store_space_low() keeps (store.c). */
struct store;
uint64_t store_headroom(const struct store *s);

/* The journal's ring (journal.c), after its two header slots: a
 * sixteenth of the disk's free space at open, at least RING_MIN and at
 * most store_journal_max_bytes (RING_DEFAULT when not set, never above
 * RING_LIMIT: a header naming a larger ring is not believed). */
#define STORE_JOURNAL_RING_DEFAULT (UINT64_C(64) << 20) /* 0 in store_opts */
#define STORE_JOURNAL_RING_MIN (UINT64_C(256) << 10)
#define STORE_JOURNAL_RING_LIMIT (UINT64_C(1) << 32)
/* A checkpoint at most this long after a commit (and at half the ring). */
#define STORE_JOURNAL_CKPT_MS 200

enum { JOURNAL_CK_IDLE = 0, JOURNAL_CK_ASKED, JOURNAL_CK_DONE };

/* The journal of store_sync = always (journal.c); the writer's own
 * after store_open. */
struct store_journal {
    bool on;             /* store_sync = always: commits append here */
    bool replay;         /* open: records to apply after the checkpoint */
    bool broken;         /* a checkpoint failed: no appends until one holds */
    bool nomem;          /* the group's record could not be built */
    int fd;              /* the file, or -1 */
    char *path;          /* owned */
    uint32_t psize;      /* LMDB's page size (its meta pages' size) */
    uint64_t slot;       /* bytes of a header slot */
    uint64_t data_off;   /* where the ring begins */
    uint64_t cap;        /* where it ends */
    uint64_t off;        /* the next record's offset */
    uint64_t seq;        /* the next record's number */
    uint64_t live;       /* ring bytes since the checkpoint */
    uint64_t gen;        /* checkpoints written */
    uint64_t start_off;  /* the checkpoint's first record */
    uint64_t start_seq;  /* and its number */
    uint64_t data_ino;   /* data.mdb's inode: the file a header is for */
    MDB_txn *pin;        /* read txn on the checkpoint's snapshot */
    MDB_txn *pin_next;   /* on the snapshot of the one being written */
    /* The checkpoint being written (journal_ckpt_*): captured by the
     * writer, written by the checkpoint thread. */
    pthread_t ck_thread;
    bool ck_started;     /* ck_thread runs */
    pthread_mutex_t ck_mu; /* guards ck_state, ck_stop */
    pthread_cond_t ck_cond;
    int ck_state;        /* JOURNAL_CK_* */
    bool ck_stop;        /* the thread must end */
    int ck_rc;           /* its result, at DONE */
    bool ck_synced;      /* LMDB's file was flushed */
    uint64_t ck_gen, ck_off, ck_seq, ck_live; /* its header, and the ring
                                                 bytes before it */
    unsigned char *ck_metas; /* owned: its meta pages */
    unsigned char *metas; /* owned: 2 * psize, the saved meta pages */
    unsigned char *buf;  /* owned: the group's entries */
    size_t len;          /* bytes used in buf */
    size_t buf_cap;      /* bytes allocated */
};

/* Before LMDB opens dir: reads the journal, puts the checkpoint's meta
 * pages back into data.mdb. keep: store_sync = always. */
ferry_err journal_open(struct store *s, const char *dir, bool keep);
/* After the tables open: applies the records after the checkpoint, syncs,
 * then (keep) writes a checkpoint and takes the pin, or removes the
 * journal. */
ferry_err journal_replay(struct store *s);
/* The writer, applying a group: start again; one put or delete made. */
void journal_group_reset(struct store *s);
void journal_note(struct store *s, bool put, uint8_t table, const MDB_val *k,
                  const MDB_val *v);
/* After the group's LMDB commit: its record appended and flushed (or
 * LMDB synced, when that failed). 0 or an LMDB/errno code. */
int journal_commit(struct store *s);
/* LMDB synced, its meta pages saved in a header, the pin moved; waits
 * for the one in flight first. */
int journal_checkpoint(struct store *s);
/* The same on the checkpoint thread (none when one is in flight), and
 * finishing it once written. */
void journal_ckpt_start(struct store *s);
void journal_ckpt_poll(struct store *s);
bool journal_half_full(const struct store *s);
/* Around a map resize, which needs no txn open. */
void journal_unpin(struct store *s);
void journal_repin(struct store *s);
void journal_free(struct store *s);

/* Owned by whoever called store_open. */
struct store {
    uv_loop_t *loop;               /* borrowed */
    MDB_env *env;                  /* owned */
    MDB_dbi dbi[STORE_MAX_TABLES]; /* one per table */
    char *names[STORE_MAX_TABLES]; /* owned table names */
    size_t n_tables;               /* entries in dbi and names */
    uint32_t sync_ms;              /* 0 = always */
    uint32_t checkpoint_ms;        /* always: the journal's period */
    uint64_t journal_max;          /* always: the ring's largest size */
    uint64_t max_bytes;            /* map size limit */

    /* Loop side. */
    MDB_txn *rtxn;            /* owned read txn, reset between
                                 turns (NULL before the first) */
    bool rtxn_live;           /* rtxn renewed this turn */
    unsigned n_cursors;       /* cursors open on rtxn */
    uv_prepare_t prepare;     /* resets rtxn before the poll */
    uv_async_t async;         /* the writer's "batches done" */
    unsigned open_handles;    /* handles not closed yet */
    uint64_t in_flight;       /* submitted, callback not run */
    bool closing;             /* store_close was called */
    struct store_stats stats; /* counters, loop-owned */

    /* Shared with the writer thread, under mu. */
    pthread_mutex_t mu;        /* guards the lists and flags */
    pthread_cond_t wake;       /* the writer has work or must stop */
    struct store_list pending; /* submitted, not taken yet */
    struct store_list done;    /* decided, callbacks not run */
    bool stop;                 /* drain, then exit */

    /* The map may only be resized while the loop holds no read txn. */
    pthread_rwlock_t map_lock; /* loop: read while rtxn is live;
                                  writer: write to resize */
    pthread_t writer;          /* the writer thread */
    bool writer_started;       /* writer needs joining */

    /* Written by the writer, read by the loop. */
    _Atomic uint64_t w_used_bytes; /* pages in use, bytes */
    _Atomic uint64_t w_free_bytes; /* pages on LMDB's free list, bytes */
    _Atomic uint64_t w_disk_free;  /* free bytes of the disk under it */
    uint64_t w_space_at;           /* writer: µs of the last look */
    uint64_t in_flight_bytes;      /* loop: data bytes of the batches
                                      queued and not yet called back */
    _Atomic uint64_t w_map_bytes;  /* map size */
    _Atomic uint64_t w_grows;      /* map growths */
    _Atomic uint64_t w_syncs;      /* mdb_env_sync calls (checkpoints) */
    _Atomic uint64_t w_journal_bytes; /* appended to the journal */

    struct store_journal j; /* store_sync = always */

    /* The writer's own. */
    unsigned char *w_scratch; /* owned: hooks' values of a batch */
    size_t w_scratch_len;     /* bytes used */
    size_t w_scratch_cap;     /* bytes allocated */
};

void store_list_push(struct store_list *l, struct store_batch *b);

/* The writer thread's body (writer.c); arg is the struct store. */
void *writer_main(void *arg);

/* The bytes of an operation. */
static inline const unsigned char *
store_op_key(const struct store_batch *b, const struct store_op *op)
{
    return b->data + op->koff;
}

#endif
