/* SPDX-License-Identifier: MIT */
/*
 * journal.c - the store's journal: with store_sync = always, a commit's
 * answers wait for one flush (of this file) instead of LMDB's two (its
 * pages, then its meta page).
 *
 * The writer commits each group to LMDB opened MDB_NOSYNC (the pages are
 * in the kernel, readers see them at once), then appends the group's
 * writes (the puts and deletes it made, hooks' results included, so a
 * replay needs no hook) to this file as one record and fdatasyncs it;
 * only then do the answers go. A checkpoint (every JOURNAL_CKPT_MS, or
 * when half the ring is used) runs mdb_env_sync, copies LMDB's two meta
 * pages into the journal's header and flushes it: the records before it
 * are no longer needed.
 *
 * Why a power cut cannot leave LMDB broken: without its own syncs LMDB's
 * writes reach the disk in any order, so its newest meta page may point
 * at pages that never got there, and pages of the last synced snapshot
 * may have been reused. So (1) the writer holds a read txn on the
 * checkpoint's snapshot (the pin) until the next checkpoint is on disk:
 * LMDB never reuses a page that snapshot needs; and (2) at open, the
 * meta pages saved in the header are written back before LMDB opens the
 * file, which puts it at that snapshot, whole; then the records after the
 * checkpoint are applied again. After a crash of ferryd alone (nothing
 * lost in the kernel) this does the same and ends at the same state.
 *
 * The file: two header slots (the newest valid one counts, so a torn
 * header write leaves the other), then a ring of records. A record is
 * {magic, payload length, sequence number, kind, checksum} and its
 * payload; replay starts at the checkpoint's offset and sequence number
 * and stops at the first record that is not the next one whole (a torn
 * append, or an older lap of the ring). Entries: {kind, table, key
 * length, value length, key, value}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "store/journal_codec.h"
#include "store/store_impl.h"

#define JOURNAL_HDR_MAGIC UINT32_C(0x464a4831) /* "FJH1" */
#define JOURNAL_REC_MAGIC UINT32_C(0x464a5231) /* "FJR1" */
#define JOURNAL_HDR_BYTES 64                   /* header fields */
#define JOURNAL_REC_BYTES 24                   /* record header */

enum { JOURNAL_REC_GROUP = 1, JOURNAL_REC_WRAP = 2 };

static void *journal_ckpt_main(void *arg);

/* Between checkpoints, LMDB's dirty pages are sent to the disk this
 * often (sync_file_range, not waited for). */
#define JOURNAL_WRITEBACK_MS 5

static void
put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void
put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t
get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint64_t
get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The table names, hashed: a journal replays only into the same tables. */
static uint64_t
journal_fingerprint(const struct store *s)
{
    uint64_t h = 0;

    for (size_t i = 0; i < s->n_tables; i++) {
        h = XXH64(s->names[i], strlen(s->names[i]) + 1, h);
    }
    return h;
}

static int
journal_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* 0, or errno (a short file reads as EIO). */
static int
journal_pread(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return EIO;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static void
journal_layout(struct store_journal *j, uint32_t psize)
{
    j->psize = psize;
    j->slot = (JOURNAL_HDR_BYTES + 2 * (uint64_t)psize + 4095) / 4096 * 4096;
    j->data_off = 2 * j->slot;
    j->cap = j->data_off + STORE_JOURNAL_RING_DEFAULT;
}

/*
 * The ring for this run, its space taken at once (fallocate), so that an
 * append never finds the disk full: the file's size when it has one
 * already (cut to s->journal_max when it is larger), else a sixteenth of
 * the free space, between STORE_JOURNAL_RING_MIN and s->journal_max
 * (store_journal_max_bytes). Called after the replay: nothing in the
 * file is needed any more. false when no room can be had (the store then
 * syncs LMDB itself).
 */
static bool
journal_size(struct store *s)
{
    struct store_journal *j = &s->j;
    struct statvfs v;
    struct stat st;
    uint64_t ring, max = s->journal_max;

    if (fstat(j->fd, &st) == 0 &&
        (uint64_t)st.st_size >= j->data_off + STORE_JOURNAL_RING_MIN) {
        ring = (uint64_t)st.st_size - j->data_off;
        if (ring > max) {
            ring = max;
            if (ftruncate(j->fd, (off_t)(j->data_off + max)) != 0) {
                log_warn("store journal '%s': cannot cut it to %llu bytes: "
                         "%s", j->path,
                         (unsigned long long)(j->data_off + max),
                         strerror(errno));
            }
        }
        j->cap = j->data_off + ring / 4096 * 4096;
        return true;
    }
    ring = fstatvfs(j->fd, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize / 16
                                    : max;
    ring = ring < max ? ring : max;
    ring = ring > STORE_JOURNAL_RING_MIN ? ring / 4096 * 4096
                                         : STORE_JOURNAL_RING_MIN;
    for (; ring >= STORE_JOURNAL_RING_MIN; ring /= 2) {
        int rc = fallocate(j->fd, 0, 0, (off_t)(j->data_off + ring));

        if (rc == 0 || errno == EOPNOTSUPP) {
            j->cap = j->data_off + ring;
            return true;
        }
        if (errno != ENOSPC && errno != EDQUOT) {
            break;
        }
    }
    log_warn("store journal '%s': no room for it (%s); LMDB syncs every "
             "commit itself",
             j->path, strerror(errno));
    return false;
}

/* A header's checksum: its fields and the meta pages. */
static uint64_t
journal_header_sum(const unsigned char *hdr, const struct store_journal *j)
{
    return XXH64(j->metas, 2 * (size_t)j->psize,
                 XXH64(hdr, JOURNAL_HDR_BYTES - 8, 0));
}

/* Reads slot i; true when it is a valid header of this store. */
static bool
journal_read_slot(struct store *s, int i, unsigned char *hdr,
                  uint64_t *gen)
{
    struct store_journal *j = &s->j;

    if (journal_pread(j->fd, hdr, JOURNAL_HDR_BYTES, (uint64_t)i * j->slot) !=
            0 ||
        get32(hdr) != JOURNAL_HDR_MAGIC || get32(hdr + 4) != j->psize ||
        get64(hdr + 8) != journal_fingerprint(s)) {
        return false;
    }
    if (journal_pread(j->fd, j->metas, 2 * (size_t)j->psize,
                      (uint64_t)i * j->slot + JOURNAL_HDR_BYTES) != 0) {
        return false;
    }
    if (journal_header_sum(hdr, j) != get64(hdr + JOURNAL_HDR_BYTES - 8)) {
        return false;
    }
    *gen = get64(hdr + 16);
    return true;
}

/* Writes the saved meta pages into data.mdb (dfd), unless it has them. */
static int
journal_restore_metas(int dfd, struct store_journal *j)
{
    size_t n = 2 * (size_t)j->psize;
    unsigned char *now = malloc(n);
    int rc = 0;

    if (now == NULL) {
        return ENOMEM;
    }
    if (journal_pread(dfd, now, n, 0) != 0 || memcmp(now, j->metas, n) != 0) {
        rc = journal_pwrite(dfd, j->metas, n, 0);
        if (rc == 0 && fdatasync(dfd) != 0) {
            rc = errno;
        }
    }
    free(now);
    return rc;
}

ferry_err
journal_open(struct store *s, const char *dir, bool keep)
{
    struct store_journal *j = &s->j;
    char path[4096], data[4096];
    unsigned char hdr[2][JOURNAL_HDR_BYTES];
    uint64_t gen[2] = {0, 0};
    bool ok[2];
    struct stat st;
    int best, rc, dfd;

    j->fd = -1;
    j->on = keep;
    if (snprintf(path, sizeof(path), "%s/journal", dir) >= (int)sizeof(path) ||
        snprintf(data, sizeof(data), "%s/data.mdb", dir) >=
            (int)sizeof(data)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    j->path = strdup(path);
    if (j->path == NULL) {
        return FERRY_ENOMEM;
    }
    j->fd = open(path, O_RDWR | O_CLOEXEC | (keep ? O_CREAT : 0), 0600);
    if (j->fd < 0 && !keep && errno == ENOENT) {
        return FERRY_OK; /* store_sync = N, and no journal left over */
    }
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        log_error("store journal '%s': %s", path, strerror(errno));
        return FERRY_ESYS;
    }
    journal_layout(j, (uint32_t)sysconf(_SC_PAGESIZE));
    j->metas = malloc(2 * (size_t)j->psize);
    if (j->metas == NULL) {
        return FERRY_ENOMEM;
    }
    ok[0] = journal_read_slot(s, 0, hdr[0], &gen[0]);
    ok[1] = journal_read_slot(s, 1, hdr[1], &gen[1]);
    if (!ok[0] && !ok[1]) {
        if (st.st_size >= JOURNAL_HDR_BYTES) {
            log_warn("store journal '%s': no valid header, nothing replayed",
                     path);
        }
        return FERRY_OK; /* a new journal: the first checkpoint writes it */
    }
    best = ok[0] && (!ok[1] || gen[0] > gen[1]) ? 0 : 1;
    /* Read again: the slot read last left its metas behind. */
    (void)journal_read_slot(s, best, hdr[best], &gen[best]);
    j->gen = gen[best];
    j->start_off = get64(hdr[best] + 24);
    j->start_seq = get64(hdr[best] + 32);
    j->cap = get64(hdr[best] + 40); /* the ring its records were in */
    if (j->cap <= j->data_off ||
        j->cap > j->data_off + STORE_JOURNAL_RING_LIMIT ||
        j->start_off < j->data_off || j->start_off > j->cap) {
        log_warn("store journal '%s': checkpoint offset out of range", path);
        return FERRY_OK;
    }
    /* LMDB back at the checkpoint's snapshot, before it opens the file. */
    dfd = open(data, O_RDWR | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &st) != 0) {
        log_warn("store journal '%s': %s: %s; the journal is not replayed",
                 path, data, strerror(errno));
        if (dfd >= 0) {
            close(dfd);
        }
        return FERRY_OK;
    }
    if ((uint64_t)st.st_ino != get64(hdr[best] + 48)) {
        /* A data.mdb put back from a copy, say: the saved pages are not
         * its own. */
        log_warn("store journal '%s': written for another %s; the journal "
                 "is not replayed",
                 path, data);
        close(dfd);
        return FERRY_OK;
    }
    rc = journal_restore_metas(dfd, j);
    close(dfd);
    if (rc != 0) {
        log_error("store journal: restoring %s: %s", data, strerror(rc));
        return FERRY_ESYS;
    }
    j->replay = true;
    return FERRY_OK;
}

/* Applies one record's entries in txn; *bad when they do not parse. */
static int
journal_apply(struct store *s, MDB_txn *txn, const unsigned char *p,
              size_t len, bool *bad)
{
    struct journal_entry e;
    int got;

    while ((got = journal_entry_next(&p, &len, s->n_tables, &e)) == 1) {
        MDB_val k = {e.klen, (void *)e.key}, v = {e.vlen, (void *)e.val};
        int rc;

        if (e.kind == JOURNAL_PUT) {
            rc = mdb_put(txn, s->dbi[e.table], &k, &v, 0);
        } else {
            rc = mdb_del(txn, s->dbi[e.table], &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        }
        if (rc != 0) {
            return rc;
        }
    }
    *bad = got < 0;
    return 0;
}

/* One pass over the records from the checkpoint, in txn. */
static int
journal_replay_pass(struct store *s, MDB_txn *txn, uint64_t *end_off,
                    uint64_t *end_seq, uint64_t *records)
{
    struct store_journal *j = &s->j;
    uint64_t off = j->start_off, seq = j->start_seq, fsize;
    unsigned char rh[JOURNAL_REC_BYTES];
    unsigned char *buf = NULL;
    size_t cap = 0;
    struct stat st;
    int rc = 0;

    *records = 0;
    fsize = fstat(j->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    for (;;) {
        uint32_t len, kind;
        bool bad = false;

        if (off + JOURNAL_REC_BYTES > fsize ||
            journal_pread(j->fd, rh, sizeof(rh), off) != 0 ||
            get32(rh) != JOURNAL_REC_MAGIC || get64(rh + 8) != seq) {
            break;
        }
        len = get32(rh + 4);
        kind = get32(rh + 16);
        if (kind == JOURNAL_REC_WRAP && len == 0) {
            off = j->data_off;
            seq++;
            continue;
        }
        if (kind != JOURNAL_REC_GROUP ||
            off + JOURNAL_REC_BYTES + len > fsize ||
            off + JOURNAL_REC_BYTES + len > j->cap) {
            break;
        }
        if (len > cap) {
            unsigned char *p = realloc(buf, len);

            if (p == NULL) {
                rc = ENOMEM;
                break;
            }
            buf = p;
            cap = len;
        }
        if (journal_pread(j->fd, buf, len, off + JOURNAL_REC_BYTES) != 0 ||
            (uint32_t)XXH64(buf, len, seq) != get32(rh + 20)) {
            break; /* a torn append: the answers of it never went */
        }
        if ((rc = journal_apply(s, txn, buf, len, &bad)) != 0) {
            break;
        }
        if (bad) {
            log_error("store journal: record %llu does not parse; replay "
                      "stops before it",
                      (unsigned long long)seq);
            break;
        }
        off += JOURNAL_REC_BYTES + len;
        seq++;
        (*records)++;
    }
    free(buf);
    *end_off = off;
    *end_seq = seq;
    return rc;
}

ferry_err
journal_replay(struct store *s)
{
    struct store_journal *j = &s->j;
    uint64_t end_off = j->data_off, end_seq = j->start_seq, records = 0;
    ferry_err err = FERRY_OK;

    if (j->fd < 0) {
        return FERRY_OK;
    }
    {
        MDB_stat st;

        if (mdb_env_stat(s->env, &st) != 0 || st.ms_psize != j->psize) {
            log_error("store journal: LMDB's page size is not the system's");
            return FERRY_ESYS;
        }
    }
    if (j->replay) {
        for (;;) {
            MDB_txn *txn;
            int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

            if (rc == 0) {
                rc = journal_replay_pass(s, txn, &end_off, &end_seq, &records);
                if (rc == 0) {
                    rc = mdb_txn_commit(txn);
                } else {
                    mdb_txn_abort(txn);
                }
            }
            if (rc == MDB_MAP_FULL) {
                MDB_envinfo info;
                uint64_t next;

                mdb_env_info(s->env, &info);
                next = (uint64_t)info.me_mapsize * 2;
                if ((uint64_t)info.me_mapsize < s->max_bytes &&
                    mdb_env_set_mapsize(
                        s->env, (size_t)(next < s->max_bytes
                                             ? next
                                             : s->max_bytes)) == 0) {
                    continue;
                }
            }
            if (rc != 0) {
                log_error("store journal: replay: %s", mdb_strerror(rc));
                return FERRY_ESYS;
            }
            break;
        }
        if (records > 0) {
            log_info("store journal: %llu commits replayed",
                     (unsigned long long)records);
        }
        s->stats.journal_replayed = records;
    }
    if (mdb_env_sync(s->env, 1) != 0) {
        return FERRY_ESYS;
    }
    if (j->on && !journal_size(s)) {
        j->on = false;
        if (mdb_env_set_flags(s->env, MDB_NOSYNC, 0) != 0) {
            return FERRY_ESYS;
        }
    }
    if (!j->on) {
        /* store_sync = N keeps no journal (nor does a full disk): none
         * may be left to replay over what is written later. */
        if (unlink(j->path) != 0 && errno != ENOENT) {
            log_error("store journal '%s': %s", j->path, strerror(errno));
            err = FERRY_ESYS;
        }
        return err;
    }
    {
        mdb_filehandle_t dfd;
        struct stat st;

        if (mdb_env_get_fd(s->env, &dfd) != 0 || fstat(dfd, &st) != 0) {
            return FERRY_ESYS;
        }
        j->data_ino = (uint64_t)st.st_ino;
    }
    j->off = j->data_off;
    j->seq = end_seq + 1; /* never the number of a record left behind */
    {
        /* Nor a record there at all: the first checkpoint's flush takes
         * this with it, so no replay can reach a record of before. */
        unsigned char zero[JOURNAL_REC_BYTES] = {0};

        if (journal_pwrite(j->fd, zero, sizeof(zero), j->data_off) != 0) {
            return FERRY_ESYS;
        }
    }
    j->ck_metas = malloc(2 * (size_t)j->psize);
    if (j->ck_metas == NULL) {
        return FERRY_ENOMEM;
    }
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &j->pin) != 0) {
        j->pin = NULL;
        return FERRY_ESYS;
    }
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &j->pin_next) != 0) {
        j->pin_next = NULL;
        return FERRY_ESYS;
    }
    mdb_txn_reset(j->pin_next);
    if (journal_checkpoint(s) != 0) {
        return FERRY_ESYS;
    }
    pthread_mutex_init(&j->ck_mu, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&j->ck_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    j->ck_state = JOURNAL_CK_IDLE;
    if (pthread_create(&j->ck_thread, NULL, journal_ckpt_main, s) != 0) {
        pthread_cond_destroy(&j->ck_cond);
        pthread_mutex_destroy(&j->ck_mu);
        return FERRY_ESYS;
    }
    j->ck_started = true;
    return FERRY_OK;
}

void
journal_group_reset(struct store *s)
{
    s->j.len = 0;
    s->j.nomem = false;
}

void
journal_note(struct store *s, bool put, uint8_t table, const MDB_val *k,
             const MDB_val *v)
{
    struct store_journal *j = &s->j;
    size_t vlen = put ? v->mv_size : 0;
    size_t need = journal_entry_size(k->mv_size, vlen);
    unsigned char *p;

    if (!j->on || j->nomem) {
        return;
    }
    if (vlen > UINT32_MAX || need > SIZE_MAX / 2 - j->len) {
        j->nomem = true;
        return;
    }
    if (j->len + need > j->buf_cap) {
        size_t cap = j->buf_cap ? j->buf_cap : 65536;

        while (cap < j->len + need) {
            cap *= 2;
        }
        p = realloc(j->buf, cap);
        if (p == NULL) {
            j->nomem = true; /* the group is made durable by a checkpoint */
            return;
        }
        j->buf = p;
        j->buf_cap = cap;
    }
    journal_entry_write(j->buf + j->len, put ? JOURNAL_PUT : JOURNAL_DEL,
                        table, k->mv_data, (uint32_t)k->mv_size,
                        put ? v->mv_data : NULL, (uint32_t)vlen);
    j->len += need;
}

static void
journal_rec_header(unsigned char *rh, uint32_t len, uint64_t seq,
                   uint32_t kind, uint32_t sum)
{
    put32(rh, JOURNAL_REC_MAGIC);
    put32(rh + 4, len);
    put64(rh + 8, seq);
    put32(rh + 16, kind);
    put32(rh + 20, sum);
}

bool
journal_half_full(const struct store *s)
{
    return s->j.on && s->j.live > (s->j.cap - s->j.data_off) / 2;
}

/*
 * An append failed (a full disk, most likely: the file grows on its
 * first lap). LMDB's own sync makes the group durable; the checkpoint
 * then says no record is needed, so the ring starts again at its
 * beginning, in space the file has already.
 */
static int
journal_restart(struct store *s)
{
    s->j.off = s->j.data_off;
    s->j.broken = true; /* until a checkpoint says so on disk */
    return journal_checkpoint(s);
}

int
journal_commit(struct store *s)
{
    struct store_journal *j = &s->j;
    uint64_t need = JOURNAL_REC_BYTES + j->len, waste = 0;
    uint64_t ring = j->cap - j->data_off;
    int rc;

    if (j->len == 0) {
        return 0; /* nothing written: nothing to wait for */
    }
    if (j->nomem || j->broken || need > ring / 4) {
        return journal_checkpoint(s); /* LMDB's own sync, then */
    }
    /* A record always leaves room after it for the wrap mark. */
    if (j->off + need + JOURNAL_REC_BYTES > j->cap) {
        waste = j->cap - j->off;
    }
    if (j->live + waste + need > ring - JOURNAL_REC_BYTES) {
        if ((rc = journal_checkpoint(s)) != 0) {
            return rc;
        }
    }
    if (waste > 0) {
        unsigned char rh[JOURNAL_REC_BYTES];

        journal_rec_header(rh, 0, j->seq, JOURNAL_REC_WRAP, 0);
        if (journal_pwrite(j->fd, rh, sizeof(rh), j->off) != 0) {
            return journal_restart(s);
        }
        j->seq++;
        j->off = j->data_off;
        j->live += waste;
    }
    {
        unsigned char rh[JOURNAL_REC_BYTES];
        struct iovec iov[2];
        ssize_t n;

        journal_rec_header(rh, (uint32_t)j->len, j->seq, JOURNAL_REC_GROUP,
                           (uint32_t)XXH64(j->buf, j->len, j->seq));
        iov[0].iov_base = rh;
        iov[0].iov_len = sizeof(rh);
        iov[1].iov_base = j->buf;
        iov[1].iov_len = j->len;
        n = pwritev(j->fd, iov, 2, (off_t)j->off);
        if (n < 0 || (uint64_t)n != need || fdatasync(j->fd) != 0) {
            return journal_restart(s);
        }
    }
    j->off += need;
    j->live += need;
    j->seq++;
    atomic_fetch_add(&s->w_journal_bytes, need);
    return 0;
}

/*
 * Checkpoints. The writer captures one between commits: the meta pages
 * as LMDB has them now (from the kernel's cache), a second pin on this
 * snapshot, and where the ring stands. The checkpoint thread then flushes
 * LMDB's file (the snapshot's pages, and any later ones) and writes the
 * header; meanwhile the writer goes on committing and appending. Only
 * once the header is on disk does the old pin go (journal_ckpt_finish).
 */
static int
journal_ckpt_capture(struct store *s)
{
    struct store_journal *j = &s->j;
    mdb_filehandle_t dfd;
    int rc;

    if ((rc = mdb_env_get_fd(s->env, &dfd)) != 0 ||
        (rc = journal_pread(dfd, j->ck_metas, 2 * (size_t)j->psize, 0)) !=
            0) {
        log_error("store journal: reading the meta pages: %s",
                  mdb_strerror(rc));
        return rc;
    }
    mdb_txn_reset(j->pin_next);
    if ((rc = mdb_txn_renew(j->pin_next)) != 0) {
        log_error("store journal: pin: %s", mdb_strerror(rc));
        return rc;
    }
    j->ck_gen = j->gen + 1;
    j->ck_off = j->off;
    j->ck_seq = j->seq;
    j->ck_live = j->live;
    j->ck_synced = false;
    return 0;
}

/* LMDB's file flushed, then the header: on either thread, reading only
 * what the capture wrote. */
static int
journal_ckpt_write(struct store *s)
{
    struct store_journal *j = &s->j;
    unsigned char hdr[JOURNAL_HDR_BYTES];
    mdb_filehandle_t dfd;
    uint64_t at;
    int rc;

    if ((rc = mdb_env_get_fd(s->env, &dfd)) != 0 ||
        (fdatasync(dfd) != 0 && (rc = errno) != 0)) {
        return rc;
    }
    j->ck_synced = true;
    memset(hdr, 0, sizeof(hdr));
    put32(hdr, JOURNAL_HDR_MAGIC);
    put32(hdr + 4, j->psize);
    put64(hdr + 8, journal_fingerprint(s));
    put64(hdr + 16, j->ck_gen);
    put64(hdr + 24, j->ck_off);
    put64(hdr + 32, j->ck_seq);
    put64(hdr + 40, j->cap);
    put64(hdr + 48, j->data_ino);
    put64(hdr + JOURNAL_HDR_BYTES - 8,
          XXH64(j->ck_metas, 2 * (size_t)j->psize,
                XXH64(hdr, JOURNAL_HDR_BYTES - 8, 0)));
    at = (j->ck_gen % 2) * j->slot;
    if ((rc = journal_pwrite(j->fd, hdr, sizeof(hdr), at)) != 0 ||
        (rc = journal_pwrite(j->fd, j->ck_metas, 2 * (size_t)j->psize,
                             at + JOURNAL_HDR_BYTES)) != 0 ||
        (fdatasync(j->fd) != 0 && (rc = errno) != 0)) {
        return rc;
    }
    return 0;
}

/* The writer, once the write is done: the records before the checkpoint
 * and the old pin are no longer needed. */
static void
journal_ckpt_finish(struct store *s, int rc)
{
    struct store_journal *j = &s->j;
    MDB_txn *old = j->pin;

    atomic_fetch_add(&s->w_syncs, 1);
    if (rc != 0) {
        /* The old header still holds, and its pin with it. */
        log_error("store journal: checkpoint: %s", strerror(rc));
        mdb_txn_reset(j->pin_next);
        return;
    }
    j->pin = j->pin_next;
    j->pin_next = old;
    mdb_txn_reset(old);
    j->gen = j->ck_gen;
    j->start_off = j->ck_off;
    j->start_seq = j->ck_seq;
    j->live -= j->ck_live;
    j->broken = false;
}

static void *
journal_ckpt_main(void *arg)
{
    struct store *s = arg;
    struct store_journal *j = &s->j;

    mdb_filehandle_t dfd;

    if (mdb_env_get_fd(s->env, &dfd) != 0) {
        dfd = -1;
    }
    pthread_mutex_lock(&j->ck_mu);
    for (;;) {
        while (j->ck_state != JOURNAL_CK_ASKED && !j->ck_stop) {
            struct timespec ts;

            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += JOURNAL_WRITEBACK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&j->ck_cond, &j->ck_mu, &ts) ==
                    ETIMEDOUT &&
                dfd >= 0) {
                /* Start writing LMDB's dirty pages back now, so that the
                 * checkpoint's flush finds little left to do. */
                pthread_mutex_unlock(&j->ck_mu);
                (void)sync_file_range(dfd, 0, 0, SYNC_FILE_RANGE_WRITE);
                pthread_mutex_lock(&j->ck_mu);
            }
        }
        if (j->ck_state != JOURNAL_CK_ASKED) {
            break;
        }
        pthread_mutex_unlock(&j->ck_mu);
        j->ck_rc = journal_ckpt_write(s);
        pthread_mutex_lock(&j->ck_mu);
        j->ck_state = JOURNAL_CK_DONE;
        pthread_cond_broadcast(&j->ck_cond);
    }
    pthread_mutex_unlock(&j->ck_mu);
    return NULL;
}

void
journal_ckpt_poll(struct store *s)
{
    struct store_journal *j = &s->j;
    bool done;

    if (!j->ck_started) {
        return;
    }
    pthread_mutex_lock(&j->ck_mu);
    done = j->ck_state == JOURNAL_CK_DONE;
    pthread_mutex_unlock(&j->ck_mu);
    if (done) {
        journal_ckpt_finish(s, j->ck_rc);
        j->ck_state = JOURNAL_CK_IDLE; /* the thread waits for ASKED */
    }
}

/* Waits for the checkpoint in flight, if any, and finishes it. */
static void
journal_ckpt_wait(struct store *s)
{
    struct store_journal *j = &s->j;

    if (!j->ck_started) {
        return;
    }
    pthread_mutex_lock(&j->ck_mu);
    while (j->ck_state == JOURNAL_CK_ASKED) {
        pthread_cond_wait(&j->ck_cond, &j->ck_mu);
    }
    pthread_mutex_unlock(&j->ck_mu);
    journal_ckpt_poll(s);
}

void
journal_ckpt_start(struct store *s)
{
    struct store_journal *j = &s->j;

    journal_ckpt_poll(s);
    if (!j->ck_started || j->ck_state != JOURNAL_CK_IDLE ||
        journal_ckpt_capture(s) != 0) {
        return;
    }
    pthread_mutex_lock(&j->ck_mu);
    j->ck_state = JOURNAL_CK_ASKED;
    pthread_cond_signal(&j->ck_cond);
    pthread_mutex_unlock(&j->ck_mu);
}

int
journal_checkpoint(struct store *s)
{
    struct store_journal *j = &s->j;
    int rc;

    journal_ckpt_wait(s);
    if ((rc = journal_ckpt_capture(s)) != 0) {
        return rc;
    }
    rc = journal_ckpt_write(s);
    journal_ckpt_finish(s, rc);
    if (rc != 0 && !j->ck_synced) {
        return rc; /* LMDB's data may not be on disk */
    }
    if (rc != 0) {
        j->broken = true; /* no appends over its records until one holds */
    }
    return 0;
}

void
journal_unpin(struct store *s)
{
    journal_ckpt_wait(s);
    if (s->j.pin != NULL) {
        mdb_txn_reset(s->j.pin);
    }
}

void
journal_repin(struct store *s)
{
    if (s->j.pin != NULL && mdb_txn_renew(s->j.pin) != 0) {
        log_error("store journal: the pin could not be taken again");
    }
}

void
journal_free(struct store *s)
{
    struct store_journal *j = &s->j;

    if (j->ck_started) {
        pthread_mutex_lock(&j->ck_mu);
        j->ck_stop = true;
        pthread_cond_signal(&j->ck_cond);
        pthread_mutex_unlock(&j->ck_mu);
        pthread_join(j->ck_thread, NULL);
        pthread_cond_destroy(&j->ck_cond);
        pthread_mutex_destroy(&j->ck_mu);
        j->ck_started = false;
    }
    if (j->pin != NULL) {
        mdb_txn_abort(j->pin);
        j->pin = NULL;
    }
    if (j->pin_next != NULL) {
        mdb_txn_abort(j->pin_next);
        j->pin_next = NULL;
    }
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    free(j->buf);
    free(j->metas);
    free(j->ck_metas);
    j->ck_metas = NULL;
    free(j->path);
    j->buf = j->metas = NULL;
    j->path = NULL;
}
