/* SPDX-License-Identifier: MIT */
/*
 * writer.c - the store's one writer thread. It takes every batch queued
 * since its last commit (the group), applies them in one write
 * transaction, each batch's conditions checked before any of its writes so
 * a batch whose condition fails is refused alone, commits (store_sync =
 * always: LMDB unsynced, then the group's record appended to the journal
 * and flushed, journal.c; a checkpoint every STORE_JOURNAL_CKPT_MS) and
 * hands the group back to the loop through uv_async.
 * MDB_MAP_FULL grows the map (doubling, up to store_max_bytes) and retries the
 * group; at the limit the batch that does not fit fails with NO_SPACE and the
 * rest commit. With store_sync = N the commits do not fsync; this thread calls
 * mdb_env_sync every N ms while there is something unsynced.
 */
#include <errno.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store_impl.h"

/* Internal results of applying a batch, nothing of it written and the
 * txn still good: its condition failed; a hook's value could not be had;
 * its revision counter is not 8 bytes. */
#define WRITER_REFUSED (-30000)
#define WRITER_NOMEM (-30001)
#define WRITER_BADCTR (-30002)

void *
store_hook_value(struct store_hook_ctx *ctx, size_t len)
{
    struct store *s = ctx->s;
    size_t need;

    ctx->given = true;
    if (len > STORE_MAX_VALUE || len > SIZE_MAX / 2 - s->w_scratch_len) {
        ctx->nomem = true;
        return NULL;
    }
    need = s->w_scratch_len + len;
    if (need > s->w_scratch_cap) {
        size_t cap = s->w_scratch_cap ? s->w_scratch_cap : 4096;
        unsigned char *p;

        while (cap < need) {
            cap *= 2;
        }
        p = realloc(s->w_scratch, cap);
        if (p == NULL) {
            ctx->nomem = true;
            return NULL;
        }
        s->w_scratch = p;
        s->w_scratch_cap = cap;
    }
    ctx->off = s->w_scratch_len;
    ctx->len = len;
    s->w_scratch_len = need;
    return s->w_scratch + ctx->off;
}

/* The batch's revision: its counter + 1, or 0 without one. */
static int
writer_rev(struct store *s, MDB_txn *txn, const struct store_batch *b,
           uint64_t *rev)
{
    MDB_val k = {b->rev_klen, b->data + b->rev_koff};
    MDB_val v;
    uint64_t n = 0;
    int g;

    *rev = 0;
    if (!b->has_rev) {
        return 0;
    }
    g = mdb_get(txn, s->dbi[b->rev_table], &k, &v);
    if (g != 0 && g != MDB_NOTFOUND) {
        return g;
    }
    if (g == 0) {
        if (v.mv_size != 8) {
            log_error("store: revision counter is %zu bytes, not 8", v.mv_size);
            return WRITER_BADCTR;
        }
        for (int i = 0; i < 8; i++) {
            n = n << 8 | ((const unsigned char *)v.mv_data)[i];
        }
    }
    *rev = n + 1;
    return 0;
}

/* Runs the hook of op against the key's value before the batch. */
static int
writer_run_hook(struct store *s, MDB_txn *txn, struct store_op *op,
                const struct store_batch *b, uint64_t rev)
{
    MDB_val k = {op->klen, (void *)store_op_key(b, op)};
    MDB_val v;
    struct store_val old;
    struct store_hook_ctx ctx = {s, 0, 0, false, false};
    enum store_hook_act act;
    int g = mdb_get(txn, s->dbi[op->table], &k, &v);

    if (g != 0 && g != MDB_NOTFOUND) {
        return g;
    }
    old.data = g == 0 ? v.mv_data : NULL;
    old.len = g == 0 ? v.mv_size : 0;
    act = op->fn(op->fn_arg, g == 0 ? &old : NULL, rev, &ctx);
    if (ctx.nomem) {
        return WRITER_NOMEM;
    }
    if (act == STORE_HOOK_REFUSE) {
        return WRITER_REFUSED;
    }
    op->act =
        (uint8_t)(act == STORE_HOOK_PUT ? STORE_HOOK_PUT : STORE_HOOK_DELETE);
    op->hoff = ctx.off;
    op->hlen = act == STORE_HOOK_PUT ? ctx.len : 0;
    return 0;
}

static uint64_t
writer_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Whether the current value v satisfies op's condition. */
static bool
writer_cond_holds(const struct store_batch *b, const struct store_op *op,
                  int get_rc, const MDB_val *v)
{
    const unsigned char *expect = b->data + op->eoff;

    switch ((enum store_cond)op->cond) {
    case STORE_IF_ANY:
        return true;
    case STORE_IF_ABSENT:
        return get_rc == MDB_NOTFOUND;
    case STORE_IF_PRESENT:
        return get_rc == 0;
    case STORE_IF_EQUALS:
        return get_rc == 0 && v->mv_size == op->elen &&
               (op->elen == 0 || memcmp(v->mv_data, expect, op->elen) == 0);
    case STORE_IF_PREFIX:
        return get_rc == 0 && v->mv_size >= op->elen &&
               (op->elen == 0 || memcmp(v->mv_data, expect, op->elen) == 0);
    }
    return false;
}

/*
 * Applies b in txn: first every condition, against the state before b
 * (earlier batches of the group included), then the operations. 0,
 * WRITER_REFUSED (nothing of b written, txn still good) or an LMDB error,
 * after which b may be half-applied and the caller must abort txn.
 * Checking before writing spares a nested txn per batch (LMDB allocates
 * about 3 MB for each).
 */
static int
writer_apply(struct store *s, MDB_txn *txn, struct store_batch *b)
{
    uint64_t rev;
    int rc;

    /* The first pass only reads, so the values it sees stay valid. */
    s->w_scratch_len = 0;
    if ((rc = writer_rev(s, txn, b, &rev)) != 0) {
        return rc;
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        struct store_op *op = &b->ops[i];
        MDB_val k = {op->klen, (void *)store_op_key(b, op)};
        MDB_val v;
        int g;

        if (op->kind == STORE_OP_HOOK) {
            rc = writer_run_hook(s, txn, op, b, rev);
            if (rc == WRITER_REFUSED) {
                b->result.refused_op = i;
            }
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (op->cond == STORE_IF_ANY) {
            continue;
        }
        g = mdb_get(txn, s->dbi[op->table], &k, &v);
        if (g != 0 && g != MDB_NOTFOUND) {
            return g;
        }
        if (!writer_cond_holds(b, op, g, &v)) {
            b->result.refused_op = i;
            return WRITER_REFUSED;
        }
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        const struct store_op *op = &b->ops[i];
        MDB_dbi dbi = s->dbi[op->table];
        MDB_val k = {op->klen, (void *)store_op_key(b, op)};
        MDB_val v;

        if (op->kind == STORE_OP_PUT ||
            (op->kind == STORE_OP_HOOK && op->act == STORE_HOOK_PUT)) {
            if (op->kind == STORE_OP_PUT) {
                v.mv_size = op->vlen;
                v.mv_data = b->data + op->voff;
            } else {
                v.mv_size = op->hlen;
                v.mv_data = s->w_scratch + op->hoff;
            }
            rc = mdb_put(txn, dbi, &k, &v, 0);
            journal_note(s, true, op->table, &k, &v);
        } else {
            rc = mdb_del(txn, dbi, &k, NULL);
            if (rc == MDB_NOTFOUND) {
                rc = 0;
            }
            journal_note(s, false, op->table, &k, NULL);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (b->has_rev) {
        unsigned char be[8];
        MDB_val k = {b->rev_klen, b->data + b->rev_koff};
        MDB_val v = {8, be};

        for (int i = 0; i < 8; i++) {
            be[i] = (unsigned char)(rev >> (56 - 8 * i));
        }
        if ((rc = mdb_put(txn, s->dbi[b->rev_table], &k, &v, 0)) != 0) {
            return rc;
        }
        journal_note(s, true, b->rev_table, &k, &v);
    }
    b->result.rev = rev;
    return 0;
}

/* Refreshes the map figures the loop reads. */
/*
 * The room left for writes, every 250 ms (every commit when it is short):
 * the disk's free bytes
 * and the pages LMDB has freed inside its file (its free list, which new
 * pages come from first). store_space_low() reads them on the loop.
 */
static void
writer_note_space(struct store *s, unsigned psize)
{
    uint64_t now = writer_now_us(), pages = 0;
    const char *path = NULL;
    struct statvfs v;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, d;

    /* Every commit once the room is getting short, else every 250 ms. */
    if (now - s->w_space_at < 250000 && s->w_space_at != 0 &&
        atomic_load(&s->w_disk_free) + atomic_load(&s->w_free_bytes) >
            8 * store_headroom(s)) {
        return;
    }
    s->w_space_at = now;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        /* dbi 0 is LMDB's free list: txn id -> page list, count first. */
        if (mdb_cursor_open(txn, 0, &cur) == 0) {
            int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
            while (rc == 0) {
                if (d.mv_size >= sizeof(size_t)) {
                    size_t n;
                    memcpy(&n, d.mv_data, sizeof(n));
                    pages += n;
                }
                rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
            }
            mdb_cursor_close(cur);
        }
        mdb_txn_abort(txn);
    }
    atomic_store(&s->w_free_bytes, pages * psize);
    if (mdb_env_get_path(s->env, &path) == 0 && path != NULL &&
        statvfs(path, &v) == 0) {
        atomic_store(&s->w_disk_free, (uint64_t)v.f_bavail * v.f_frsize);
    }
}

static void
writer_note_map(struct store *s)
{
    MDB_envinfo info;
    MDB_stat st;

    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0) {
        atomic_store(&s->w_used_bytes,
                     (uint64_t)(info.me_last_pgno + 1) * st.ms_psize);
        atomic_store(&s->w_map_bytes, (uint64_t)info.me_mapsize);
        writer_note_space(s, st.ms_psize);
    }
}

static bool
writer_can_grow(const struct store *s)
{
    return atomic_load(&s->w_map_bytes) < s->max_bytes;
}

/* Doubles the map, up to max_bytes, once the loop holds no read txn; no
 * txn of the writer may be open. When LMDB refuses, the map stays as it
 * is for good (max_bytes drops to it), so a retry cannot loop. */
static void
writer_grow(struct store *s)
{
    uint64_t cur = atomic_load(&s->w_map_bytes);
    uint64_t next;
    int rc;

    next = cur > s->max_bytes / 2 ? s->max_bytes : cur * 2;
    /* The pin is a txn too: a checkpoint first, so nothing needs it. */
    if (s->j.on) {
        journal_checkpoint(s);
        journal_unpin(s);
    }
    pthread_rwlock_wrlock(&s->map_lock);
    rc = mdb_env_set_mapsize(s->env, (size_t)next);
    pthread_rwlock_unlock(&s->map_lock);
    if (s->j.on) {
        journal_repin(s);
    }
    if (rc != 0) {
        log_error("store: growing the map to %llu bytes: %s",
                  (unsigned long long)next, mdb_strerror(rc));
        s->max_bytes = cur;
        return;
    }
    atomic_fetch_add(&s->w_grows, 1);
    writer_note_map(s);
    log_info("store: map grown to %llu bytes", (unsigned long long)next);
}

static void
writer_fail(struct store_batch *b, ferry_err err)
{
    b->result.status = STORE_FAILED;
    b->result.err = err;
    b->result.rev = 0;
}

static ferry_err
writer_err(int rc)
{
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT ? FERRY_ENO_SPACE
                                                              : FERRY_ESYS;
}

/* Whether the disk under the store is (nearly) full. LMDB turns a short
 * write of its pages into EIO, so a full disk can show as EIO, not
 * ENOSPC: told apart by the space left. */
static bool
writer_disk_full(struct store *s)
{
    const char *path = NULL;
    struct statvfs v;

    if (mdb_env_get_path(s->env, &path) != 0 || path == NULL ||
        statvfs(path, &v) != 0) {
        return false;
    }
    return (uint64_t)v.f_bavail * v.f_frsize < STORE_FULL_SLACK;
}

/*
 * With the journal, the pin keeps every page freed since the last
 * checkpoint: on a full map or disk, a checkpoint now (once a group)
 * lets LMDB reuse them, and the group is tried again. True when it ran.
 */
static bool
writer_unpin_for_room(struct store *s, int rc, bool *unpinned)
{
    if (!s->j.on || *unpinned ||
        (rc != MDB_MAP_FULL && rc != ENOSPC && rc != EDQUOT)) {
        return false;
    }
    *unpinned = true;
    return journal_checkpoint(s) == 0;
}

/* Decides every batch of the group and commits those that apply. */
static void
writer_commit_group(struct store *s, struct store_batch *group)
{
    uint64_t t0;
    uint32_t n = 0;
    bool unpinned = false; /* writer_unpin_for_room ran */

    for (struct store_batch *b = group; b != NULL; b = b->next) {
        b->result.status = STORE_COMMITTED;
        b->result.err = FERRY_OK;
        n++;
    }
retry:
    t0 = writer_now_us();
    journal_group_reset(s);
    {
        MDB_txn *txn;
        struct store_batch *last = NULL;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

        if (rc != 0) {
            log_error("store: beginning a write: %s", mdb_strerror(rc));
            for (struct store_batch *b = group; b != NULL; b = b->next) {
                if (b->result.status != STORE_FAILED) {
                    writer_fail(b, writer_err(rc));
                }
            }
            goto out;
        }
        for (struct store_batch *b = group; b != NULL; b = b->next) {
            if (b->result.status == STORE_FAILED) {
                continue;
            }
            b->result.status = STORE_COMMITTED;
            b->result.rev = 0;
            rc = writer_apply(s, txn, b);
            if (rc == 0) {
                last = b;
            } else if (rc == WRITER_REFUSED) {
                b->result.status = STORE_REFUSED;
            } else if (rc == WRITER_NOMEM || rc == WRITER_BADCTR) {
                writer_fail(b, rc == WRITER_NOMEM ? FERRY_ENOMEM : FERRY_ESYS);
            } else {
                /* b may be half-written: the group starts again, with a
                 * bigger map or without b. The map can only change with
                 * no txn open. */
                mdb_txn_abort(txn);
                if (rc == MDB_MAP_FULL && writer_can_grow(s)) {
                    writer_grow(s);
                } else if (writer_unpin_for_room(s, rc, &unpinned)) {
                    /* pages freed since the checkpoint may be reused */
                } else {
                    if (rc != MDB_MAP_FULL) {
                        log_error("store: applying a batch: %s",
                                  mdb_strerror(rc));
                    }
                    writer_fail(b, writer_err(rc));
                }
                goto retry;
            }
        }
        rc = mdb_txn_commit(txn);
        if (rc == 0 && s->j.on && (rc = journal_commit(s)) != 0) {
            /* Committed, not durable: it must not be applied again. */
            log_error("store: journal: %s", mdb_strerror(rc));
            for (struct store_batch *b = group; b != NULL; b = b->next) {
                if (b->result.status == STORE_COMMITTED) {
                    writer_fail(b, FERRY_ESYS);
                }
            }
            goto out;
        }
        if (rc == MDB_MAP_FULL) {
            /* The commit itself needs pages (the free list). */
            if (writer_can_grow(s)) {
                writer_grow(s);
                goto retry;
            }
            if (writer_unpin_for_room(s, rc, &unpinned)) {
                goto retry;
            }
            if (last != NULL) {
                writer_fail(last, FERRY_ENO_SPACE);
                goto retry;
            }
        } else if (rc != 0) {
            if (rc == EIO && writer_disk_full(s)) {
                rc = ENOSPC;
            }
            if (writer_unpin_for_room(s, rc, &unpinned)) {
                goto retry; /* the failed commit wrote nothing */
            }
            if (rc != ENOSPC && rc != EDQUOT) {
                log_error("store: commit: %s", mdb_strerror(rc));
            }
            for (struct store_batch *b = group; b != NULL; b = b->next) {
                if (b->result.status == STORE_COMMITTED) {
                    writer_fail(b, writer_err(rc));
                }
            }
        }
    }
out:
    group->group = n;
    group->commit_us = writer_now_us() - t0;
    writer_note_map(s);
}

static void
writer_sync(struct store *s)
{
    int rc;

    if (s->j.on) {
        journal_ckpt_start(s); /* logs its own failures */
        return;
    }
    rc = mdb_env_sync(s->env, 1);
    if (rc != 0) {
        log_error("store: sync: %s", mdb_strerror(rc));
    }
    atomic_fetch_add(&s->w_syncs, 1);
}

void *
writer_main(void *arg)
{
    struct store *s = arg;
    bool dirty = false;   /* commits since the last sync or checkpoint */
    uint64_t sync_at = 0; /* when the next one is due, µs */
    /* store_sync = N: syncs every N ms; always: the journal's checkpoints. */
    uint32_t period_ms = s->sync_ms > 0 ? s->sync_ms
                         : s->j.on      ? s->checkpoint_ms
                                        : 0;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct store_batch *group;

        while (s->pending.head == NULL && !s->stop) {
            if (dirty) {
                uint64_t now = writer_now_us();
                struct timespec ts;

                if (now >= sync_at) {
                    pthread_mutex_unlock(&s->mu);
                    writer_sync(s);
                    pthread_mutex_lock(&s->mu);
                    dirty = false;
                    continue;
                }
                ts.tv_sec = (time_t)(sync_at / 1000000u);
                ts.tv_nsec = (long)(sync_at % 1000000u) * 1000;
                pthread_cond_timedwait(&s->wake, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->wake, &s->mu);
            }
        }
        if (s->pending.head == NULL) {
            break; /* stop, with nothing left */
        }
        group = s->pending.head;
        s->pending.head = s->pending.tail = NULL;
        pthread_mutex_unlock(&s->mu);

        writer_commit_group(s, group);
        journal_ckpt_poll(s);
        if (period_ms > 0) {
            if (!dirty) {
                sync_at = writer_now_us() + (uint64_t)period_ms * 1000u;
            }
            dirty = true;
            if (writer_now_us() >= sync_at || journal_half_full(s)) {
                writer_sync(s);
                dirty = false;
            }
        }

        pthread_mutex_lock(&s->mu);
        for (struct store_batch *b = group, *next; b != NULL; b = next) {
            next = b->next;
            store_list_push(&s->done, b);
        }
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->j.on) {
        journal_checkpoint(s); /* a clean close leaves nothing to replay */
    } else if (dirty) {
        writer_sync(s);
    }
    return NULL;
}
