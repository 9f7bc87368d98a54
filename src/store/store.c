/* SPDX-License-Identifier: MIT */
/*
 * store.c - the store's environment and its loop side: opening LMDB with
 * its named tables (clearing readers of dead processes), the one read
 * transaction of a loop turn, queueing batches for the writer thread
 * (writer.c) and running their callbacks when it hands them back, the
 * counters, and the drain at close.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_impl.h"

struct store_cursor {
    struct store *s; /* borrowed */
    MDB_cursor *cur; /* owned, on s->rtxn */
};

/* Ends this turn's read txn: later reads see newer commits, and the
 * writer may resize the map. */
static void
store_rtxn_end(struct store *s)
{
    if (!s->rtxn_live) {
        return;
    }
    assert(s->n_cursors == 0);
    mdb_txn_reset(s->rtxn);
    s->rtxn_live = false;
    pthread_rwlock_unlock(&s->map_lock);
    uv_prepare_stop(&s->prepare);
}

/* Before the loop polls: no read txn is held while it waits. */
static void
store_prepare_cb(uv_prepare_t *h)
{
    store_rtxn_end(h->data);
}

/* The read txn of this turn, renewed on first use. */
static ferry_err
store_rtxn(struct store *s, MDB_txn **out)
{
    int rc;

    if (!s->rtxn_live) {
        pthread_rwlock_rdlock(&s->map_lock);
        rc = mdb_txn_renew(s->rtxn);
        if (rc != 0) {
            pthread_rwlock_unlock(&s->map_lock);
            log_error("store: read transaction: %s", mdb_strerror(rc));
            return FERRY_ESYS;
        }
        s->rtxn_live = true;
        uv_prepare_start(&s->prepare, store_prepare_cb);
    }
    *out = s->rtxn;
    return FERRY_OK;
}

/* Runs the callbacks of every batch the writer has decided. */
static void
store_run_done(struct store *s)
{
    for (;;) {
        struct store_batch *b;

        pthread_mutex_lock(&s->mu);
        b = s->done.head;
        s->done.head = s->done.tail = NULL;
        pthread_mutex_unlock(&s->mu);
        if (b == NULL) {
            return;
        }
        /* Callbacks must see their own writes. */
        store_rtxn_end(s);
        while (b != NULL) {
            struct store_batch *next = b->next;
            struct store_stats *st = &s->stats;

            if (b->group > 0) {
                st->commits++;
                hist_record(&st->commit_us, b->commit_us);
                hist_record(&st->group_size, b->group);
                if (b->group > st->max_group) {
                    st->max_group = b->group;
                }
            }
            st->batches++;
            if (b->result.status == STORE_REFUSED) {
                st->batches_refused++;
            } else if (b->result.status == STORE_FAILED) {
                st->batches_failed++;
            } else {
                st->ops += b->n_ops;
            }
            s->in_flight--;
            s->in_flight_bytes -= b->len;
            if (b->cb != NULL) {
                b->cb(b->arg, &b->result);
            }
            store_batch_free(b);
            b = next;
        }
    }
}

static void
store_async_cb(uv_async_t *h)
{
    store_run_done(h->data);
}

static void
store_free(struct store *s)
{
    for (size_t i = 0; i < s->n_tables; i++) {
        free(s->names[i]);
    }
    free(s->w_scratch);
    journal_free(s);
    hist_release(&s->stats.commit_us);
    hist_release(&s->stats.group_size);
    pthread_rwlock_destroy(&s->map_lock);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
    store_batch_spares_release();
}

static void
store_closed_cb(uv_handle_t *h)
{
    struct store *s = h->data;

    if (--s->open_handles == 0) {
        store_free(s);
    }
}

/* Creates dir 0700 when missing; it must be a folder. */
static ferry_err
store_mkdir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_error("store '%s': %s", dir, strerror(errno));
        return FERRY_ESYS;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("store '%s': not a folder", dir);
        return FERRY_ESYS;
    }
    return FERRY_OK;
}

/* The environment, its tables and the read txn. */
static ferry_err
store_open_env(struct store *s, const struct store_opts *o)
{
    /* always: the journal's flush makes a commit durable (journal.c). */
    unsigned flags = MDB_NOTLS | MDB_NOSYNC;
    uint64_t first =
        STORE_MIN_MAP < s->max_bytes ? STORE_MIN_MAP : s->max_bytes;
    MDB_txn *txn;
    int dead = 0;
    int rc;

    if (journal_open(s, o->dir, o->sync_ms == 0) != FERRY_OK) {
        return FERRY_ESYS;
    }
    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, (MDB_dbi)o->n_tables)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)first)) != 0 ||
        (rc = mdb_env_open(s->env, o->dir, flags, 0600)) != 0) {
        goto out_fail;
    }
    rc = mdb_reader_check(s->env, &dead);
    if (rc != 0) {
        goto out_fail;
    }
    if (dead > 0) {
        log_warn("store '%s': cleared %d stale readers", o->dir, dead);
    }
    s->stats.stale_readers = (uint64_t)dead;
    /* An existing file keeps its own (larger) map. */
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        goto out_fail;
    }
    for (size_t i = 0; i < o->n_tables; i++) {
        rc = mdb_dbi_open(txn, o->tables[i], MDB_CREATE, &s->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            goto out_fail;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0 ||
        (rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn)) != 0) {
        goto out_fail;
    }
    mdb_txn_reset(s->rtxn);
    if (journal_replay(s) != FERRY_OK) {
        journal_free(s);
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
        mdb_env_close(s->env);
        s->env = NULL;
        return FERRY_ESYS;
    }
    return FERRY_OK;

out_fail:
    log_error("store '%s': %s", o->dir, mdb_strerror(rc));
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
    return rc == ENOMEM ? FERRY_ENOMEM : FERRY_ESYS;
}

ferry_err
store_open(struct store **out, uv_loop_t *loop, const struct store_opts *o)
{
    struct store *s;
    pthread_condattr_t ca;
    pthread_rwlockattr_t ra;
    long page = sysconf(_SC_PAGESIZE);
    ferry_err rc;

    if (o->dir == NULL || o->n_tables == 0 || o->n_tables > STORE_MAX_TABLES ||
        o->max_bytes < STORE_MIN_MAP ||
        (uint64_t)(size_t)o->max_bytes != o->max_bytes) {
        return FERRY_EINVALID_ARGUMENT;
    }
    for (size_t i = 0; i < o->n_tables; i++) {
        if (o->tables[i] == NULL || o->tables[i][0] == '\0') {
            return FERRY_EINVALID_ARGUMENT;
        }
    }
    if ((rc = store_mkdir(o->dir)) != FERRY_OK) {
        return rc;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FERRY_ENOMEM;
    }
    s->loop = loop;
    s->j.fd = -1;
    s->sync_ms = o->sync_ms;
    s->checkpoint_ms =
        o->checkpoint_ms > 0 ? o->checkpoint_ms : STORE_JOURNAL_CKPT_MS;
    s->journal_max = o->journal_max_bytes == 0 ? STORE_JOURNAL_RING_DEFAULT
                     : o->journal_max_bytes < STORE_JOURNAL_RING_MIN
                         ? STORE_JOURNAL_RING_MIN
                     : o->journal_max_bytes > STORE_JOURNAL_RING_LIMIT
                         ? STORE_JOURNAL_RING_LIMIT
                         : o->journal_max_bytes / 4096 * 4096;
    s->max_bytes = o->max_bytes / (uint64_t)page * (uint64_t)page;
    s->stats.max_bytes = s->max_bytes;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    /* The writer must not starve behind the loop's turns. */
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->map_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    if (hist_init(&s->stats.commit_us, HIST_SUB_BITS, HIST_MAX_BITS) !=
            FERRY_OK ||
        hist_init(&s->stats.group_size, HIST_SUB_BITS, 32) != FERRY_OK) {
        rc = FERRY_ENOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < o->n_tables; i++) {
        s->names[i] = strdup(o->tables[i]);
        if (s->names[i] == NULL) {
            rc = FERRY_ENOMEM;
            goto out_free;
        }
        s->n_tables = i + 1;
    }
    if ((rc = store_open_env(s, o)) != FERRY_OK) {
        goto out_free;
    }
    {
        MDB_envinfo info;
        MDB_stat st;
        struct statvfs vfs;
        mdb_env_info(s->env, &info);
        mdb_env_stat(s->env, &st);
        atomic_store(&s->w_map_bytes, (uint64_t)info.me_mapsize);
        atomic_store(&s->w_used_bytes,
                     (uint64_t)(info.me_last_pgno + 1) * st.ms_psize);
        /* Until the writer's first look (its first commit). */
        atomic_store(&s->w_disk_free,
                     statvfs(o->dir, &vfs) == 0
                         ? (uint64_t)vfs.f_bavail * vfs.f_frsize
                         : UINT64_MAX / 4);
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        log_error("store '%s': cannot start the writer thread", o->dir);
        rc = FERRY_ESYS;
        goto out_close_env;
    }
    s->writer_started = true;
    uv_async_init(loop, &s->async, store_async_cb);
    s->async.data = s;
    uv_prepare_init(loop, &s->prepare);
    s->prepare.data = s;
    s->open_handles = 2;
    *out = s;
    return FERRY_OK;

out_close_env:
    journal_free(s);
    mdb_txn_abort(s->rtxn);
    mdb_env_close(s->env);
out_free:
    store_free(s);
    return rc;
}

void
store_close(struct store *s)
{
    s->closing = true;
    /* A writer growing the map waits for the loop's read txn to end. */
    store_rtxn_end(s);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    /* Callbacks run here may submit more: those fail SHUTTING_DOWN. */
    store_run_done(s);
    assert(s->in_flight == 0);
    store_rtxn_end(s);
    journal_free(s);
    mdb_txn_abort(s->rtxn);
    mdb_env_close(s->env);
    s->env = NULL;
    uv_close((uv_handle_t *)&s->async, store_closed_cb);
    uv_close((uv_handle_t *)&s->prepare, store_closed_cb);
}

int
store_table(const struct store *s, const char *name)
{
    for (size_t i = 0; i < s->n_tables; i++) {
        if (strcmp(s->names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

ferry_err
store_get(struct store *s, unsigned table, const void *key, size_t klen,
          struct store_val *val, bool *found)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v;
    ferry_err rc;
    int mrc;

    if (table >= s->n_tables || klen == 0 || klen > STORE_MAX_KEY ||
        s->closing) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if ((rc = store_rtxn(s, &txn)) != FERRY_OK) {
        return rc;
    }
    mrc = mdb_get(txn, s->dbi[table], &k, &v);
    if (mrc == MDB_NOTFOUND) {
        *found = false;
        return FERRY_OK;
    }
    if (mrc != 0) {
        log_error("store: read: %s", mdb_strerror(mrc));
        return FERRY_ESYS;
    }
    val->data = v.mv_data;
    val->len = v.mv_size;
    *found = true;
    return FERRY_OK;
}

ferry_err
store_get_counter(struct store *s, unsigned table, const void *key, size_t klen,
                  uint64_t *out)
{
    struct store_val v;
    bool found = false;
    ferry_err rc = store_get(s, table, key, klen, &v, &found);
    uint64_t n = 0;

    if (rc != FERRY_OK) {
        return rc;
    }
    if (found) {
        if (v.len != 8) {
            log_error("store: counter in table '%s' is %zu bytes, not 8",
                      s->names[table], v.len);
            return FERRY_ESYS;
        }
        for (int i = 0; i < 8; i++) {
            n = n << 8 | ((const unsigned char *)v.data)[i];
        }
    }
    *out = n;
    return FERRY_OK;
}

ferry_err
store_cursor_open(struct store *s, unsigned table, struct store_cursor **out)
{
    struct store_cursor *c;
    MDB_txn *txn;
    ferry_err rc;
    int mrc;

    if (table >= s->n_tables || s->closing) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if ((rc = store_rtxn(s, &txn)) != FERRY_OK) {
        return rc;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        return FERRY_ENOMEM;
    }
    mrc = mdb_cursor_open(txn, s->dbi[table], &c->cur);
    if (mrc != 0) {
        free(c);
        log_error("store: cursor: %s", mdb_strerror(mrc));
        return FERRY_ESYS;
    }
    c->s = s;
    s->n_cursors++;
    *out = c;
    return FERRY_OK;
}

static ferry_err
store_cursor_get(struct store_cursor *c, MDB_val *k, MDB_cursor_op op,
                 struct store_val *ko, struct store_val *vo, bool *found)
{
    MDB_val v;
    int rc = mdb_cursor_get(c->cur, k, &v, op);

    if (rc == MDB_NOTFOUND) {
        *found = false;
        return FERRY_OK;
    }
    if (rc != 0) {
        log_error("store: cursor: %s", mdb_strerror(rc));
        return FERRY_ESYS;
    }
    ko->data = k->mv_data;
    ko->len = k->mv_size;
    vo->data = v.mv_data;
    vo->len = v.mv_size;
    *found = true;
    return FERRY_OK;
}

ferry_err
store_seek(struct store_cursor *c, const void *key, size_t klen,
           struct store_val *k, struct store_val *v, bool *found)
{
    MDB_val mk = {klen, (void *)key};

    if (klen > STORE_MAX_KEY) {
        return FERRY_EINVALID_ARGUMENT;
    }
    return store_cursor_get(c, &mk, klen == 0 ? MDB_FIRST : MDB_SET_RANGE, k, v,
                            found);
}

ferry_err
store_next(struct store_cursor *c, struct store_val *k, struct store_val *v,
           bool *found)
{
    MDB_val mk;

    return store_cursor_get(c, &mk, MDB_NEXT, k, v, found);
}

void
store_cursor_close(struct store_cursor *c)
{
    if (c == NULL) {
        return;
    }
    mdb_cursor_close(c->cur);
    c->s->n_cursors--;
    free(c);
}

void
store_submit(struct store *s, struct store_batch *b, store_done_cb cb,
             void *arg)
{
    b->cb = cb;
    b->arg = arg;
    b->group = 0;
    b->result.status = STORE_COMMITTED;
    b->result.err = FERRY_OK;
    b->result.refused_op = 0;
    b->result.rev = 0;
    if (b->has_rev && b->rev_table >= s->n_tables) {
        b->result.status = STORE_FAILED;
        b->result.err = FERRY_EINVALID_ARGUMENT;
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        if (b->ops[i].table >= s->n_tables) {
            b->result.status = STORE_FAILED;
            b->result.err = FERRY_EINVALID_ARGUMENT;
        }
    }
    if (s->closing) {
        b->result.status = STORE_FAILED;
        b->result.err = FERRY_ESHUTTING_DOWN;
    }
    s->in_flight++;
    s->in_flight_bytes += b->len;
    pthread_mutex_lock(&s->mu);
    if (b->result.status == STORE_FAILED) {
        /* Decided already; its callback still runs from the loop. */
        store_list_push(&s->done, b);
        pthread_mutex_unlock(&s->mu);
        if (!s->closing) {
            uv_async_send(&s->async);
        }
        return;
    }
    store_list_push(&s->pending, b);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

const struct store_stats *
store_stats(struct store *s)
{
    struct store_stats *st = &s->stats;

    st->used_bytes = atomic_load(&s->w_used_bytes);
    st->map_bytes = atomic_load(&s->w_map_bytes);
    st->grows = atomic_load(&s->w_grows);
    st->syncs = atomic_load(&s->w_syncs);
    st->journal_bytes = atomic_load(&s->w_journal_bytes);
    st->queued = s->in_flight;
    return st;
}

uint64_t
store_headroom(const struct store *s)
{
    /* A small store keeps an eighth of itself. */
    return s->max_bytes / 8 < STORE_HEADROOM ? s->max_bytes / 8
                                             : STORE_HEADROOM;
}

bool
store_space_low(struct store *s)
{
    uint64_t used = atomic_load(&s->w_used_bytes);
    uint64_t freed = atomic_load(&s->w_free_bytes);
    uint64_t disk = atomic_load(&s->w_disk_free) + freed;
    uint64_t map = (s->max_bytes > used ? s->max_bytes - used : 0) + freed;
    uint64_t room = disk < map ? disk : map;
    /* What is queued but not yet measured: twice its bytes, for the
     * B-tree's pages around it. */
    uint64_t coming = 2 * s->in_flight_bytes;

    return room < coming || room - coming < store_headroom(s);
}
