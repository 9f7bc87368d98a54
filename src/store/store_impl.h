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

/* Owned by whoever called store_open. */
struct store {
    uv_loop_t *loop;               /* borrowed */
    MDB_env *env;                  /* owned */
    MDB_dbi dbi[STORE_MAX_TABLES]; /* one per table */
    char *names[STORE_MAX_TABLES]; /* owned table names */
    size_t n_tables;               /* entries in dbi and names */
    uint32_t sync_ms;              /* 0 = always */
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
    _Atomic uint64_t w_syncs;      /* mdb_env_sync calls */

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
