/* SPDX-License-Identifier: MIT */
/*
 * vbdata.c - a vbucket's durable data out of one store and into another
 * (servants/vbdata.h): the table walks of export, drop and count, which
 * tell a record's vbucket from its key (a job's from its queue or origin,
 * through the queue engine's names), and the import of a chunk in one
 * batch behind a fence, so that every push submitted before it is in the
 * engine's memory when its job ids are checked.
 */
#include "servants/vbdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/vbmap.h"
#include "core/be.h"
#include "queue/queue.h"
#include "queue/queue_codec.h"
#include "servants/kv.h"
#include "servants/kv_codec.h"
#include "servants/servants.h"
#include "servants/vbdata_codec.h"

/* The tables in export order. */
enum vbdata_phase {
    VBP_META = 0, /* no table: the META record */
    VBP_KV,
    VBP_NAMES,
    VBP_JOBS,
    VBP_DEDUP,
    VBP_DONE
};

static const char *const vbdata_tables[] = {
    NULL, KV_TABLE, QUEUE_NAMES_TABLE, QUEUE_JOBS_TABLE, QUEUE_DEDUP_TABLE,
};

/* What a record of vb is, to write it in a chunk. */
struct vbdata_item {
    struct slice qname;   /* NAMES, JOBS, DEDUP: the queue */
    struct slice origin;  /* JOBS: the queue it died in, or empty */
    struct slice dedup;   /* DEDUP: the id */
    uint64_t id;          /* JOBS, DEDUP: the job */
    uint64_t expires;     /* DEDUP */
    size_t size;          /* its record's bytes in a chunk */
};

/* Whether record k, v of the phase's table belongs to vb; *it filled. A
 * job or dedup id of a queue the engine does not know is nobody's (its
 * queue's record is gone: queue_load skips them too). */
static bool
vbdata_is_vb(struct servants *sv, int phase, uint16_t vb, struct store_val k,
             struct store_val v, struct vbdata_item *it)
{
    struct slice key = {k.data, k.len};
    const uint8_t *kp = k.data;
    struct queue_rec rec;

    memset(it, 0, sizeof(*it));
    switch (phase) {
    case VBP_KV:
        it->size = vbdata_rec_size(2 + k.len + v.len);
        return k.len <= KV_KEY_MAX && vb_of_key(k.data, k.len) == vb;
    case VBP_NAMES:
        it->qname = key;
        it->size = vbdata_rec_size(1 + k.len + 2 + (v.len >= 4 ? v.len - 4 : 0) +
                                   8 * VBDATA_N_COUNTS);
        return v.len > 4 && v.len - 4 <= QUEUE_SETTINGS_MAX &&
               queue_name_is_valid(key) && vb_of_key(k.data, k.len) == vb;
    case VBP_JOBS:
        if (k.len != QUEUE_KEY_LEN ||
            !queue_codec_read_rec(v.data, v.len, &rec) ||
            !queue_engine_qname(sv->queue, be_get_u32(kp), &it->qname)) {
            return false;
        }
        if (rec.origin != 0 &&
            !queue_engine_qname(sv->queue, rec.origin, &it->origin)) {
            it->origin = (struct slice){NULL, 0};
        }
        it->id = be_get_u64(kp + 4);
        it->size = vbdata_rec_size(1 + it->qname.len + 1 + it->origin.len + 8 +
                                   v.len);
        key = it->origin.len > 0 ? it->origin : it->qname;
        return vb_of_key(key.p, key.len) == vb;
    case VBP_DEDUP:
        if (k.len < 5 || k.len > 4 + QUEUE_DEDUP_MAX || v.len != 16 ||
            !queue_engine_qname(sv->queue, be_get_u32(kp), &it->qname)) {
            return false;
        }
        it->dedup = (struct slice){kp + 4, k.len - 4};
        it->id = be_get_u64(v.data);
        it->expires = be_get_u64((const uint8_t *)v.data + 8);
        it->size = vbdata_rec_size(1 + it->qname.len + 1 + it->dedup.len + 16);
        return it->id != 0 &&
               vb_of_key(it->qname.p, it->qname.len) == vb;
    }
    return false;
}

/* Appends record k, v (which is vb's, described by it) of phase. */
static ferry_err
vbdata_write_item(struct servants *sv, struct buf *out, size_t head, int phase,
                  struct store_val k, struct store_val v,
                  const struct vbdata_item *it)
{
    uint64_t counts[QUEUE_N_COUNTS];
    struct slice val = {v.data, v.len};

    switch (phase) {
    case VBP_KV:
        return vbdata_write_kv(out, head, (struct slice){k.data, k.len}, val);
    case VBP_NAMES:
        queue_engine_counts(sv->queue, it->qname, counts);
        return vbdata_write_queue(out, head, it->qname,
                                  (struct slice){val.p + 4, val.len - 4},
                                  counts);
    case VBP_JOBS:
        return vbdata_write_job(out, head, it->qname, it->origin, it->id, val);
    default:
        return vbdata_write_dedup(out, head, it->qname, it->dedup, it->id,
                                  it->expires);
    }
}

/* Opens the phase's table at where it goes on; *found when a record is
 * there. */
static ferry_err
vbdata_open(struct servants *sv, int phase, const uint8_t *key, size_t klen,
            bool skip, struct store_cursor **cur, struct store_val *k,
            struct store_val *v, bool *found)
{
    int t = store_table(sv->store, vbdata_tables[phase]);
    ferry_err rc;

    if (t < 0) {
        return FERRY_ESYS;
    }
    if ((rc = store_cursor_open(sv->store, (unsigned)t, cur)) != FERRY_OK) {
        return rc;
    }
    rc = store_seek(*cur, key, klen, k, v, found);
    if (rc == FERRY_OK && *found && skip && k->len == klen &&
        memcmp(k->data, key, klen) == 0) {
        rc = store_next(*cur, k, v, found);
    }
    if (rc != FERRY_OK) {
        store_cursor_close(*cur);
    }
    return rc;
}

void
vbdata_cursor_init(struct vbdata_cursor *c)
{
    memset(c, 0, sizeof(*c));
}

ferry_err
vbdata_export_next(struct servants *sv, uint16_t vb, struct vbdata_cursor *c,
                   struct buf *out, size_t max_bytes, bool *done)
{
    size_t start = buf_len(out), head, data_recs = 0;
    struct vbdata_cursor nc = *c;
    unsigned scanned = 0;
    ferry_err rc;

    if (vb >= VB_COUNT) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if ((rc = vbdata_write_head(out, vb, &head)) != FERRY_OK) {
        return rc;
    }
    if (nc.phase == VBP_META) {
        rc = vbdata_write_meta(out, head, kv_service_stats(sv->kv)->rev,
                               queue_engine_next_id(sv->queue));
        nc.phase = VBP_KV;
        nc.klen = 0;
        nc.skip = false;
    }
    while (rc == FERRY_OK && nc.phase < VBP_DONE &&
           scanned < VBDATA_SCAN_BUDGET) {
        struct store_cursor *cur;
        struct store_val k, v;
        bool found = false, full = false;

        rc = vbdata_open(sv, nc.phase, nc.key, nc.klen, nc.skip, &cur, &k, &v,
                         &found);
        while (rc == FERRY_OK && found && scanned < VBDATA_SCAN_BUDGET) {
            struct vbdata_item it;

            scanned++;
            if (vbdata_is_vb(sv, nc.phase, vb, k, v, &it)) {
                if (data_recs > 0 &&
                    buf_len(out) - start + it.size > max_bytes) {
                    full = true; /* k is the next chunk's first */
                    nc.skip = false;
                    break;
                }
                rc = vbdata_write_item(sv, out, head, nc.phase, k, v, &it);
                if (rc != FERRY_OK) {
                    break;
                }
                data_recs++;
                nc.records++;
                nc.bytes += it.size;
            }
            memcpy(nc.key, k.data, k.len);
            nc.klen = k.len;
            nc.skip = true;
            rc = store_next(cur, &k, &v, &found);
        }
        if (rc != FERRY_OK) {
            break;
        }
        if (full) {
            memcpy(nc.key, k.data, k.len);
            nc.klen = k.len;
        }
        store_cursor_close(cur);
        if (full) {
            break;
        }
        if (!found) {
            nc.phase++;
            nc.klen = 0;
            nc.skip = false;
        }
    }
    if (rc != FERRY_OK) {
        /* Back to what out was. */
        out->wpos = out->rpos + start;
        return rc;
    }
    *c = nc;
    *done = nc.phase == VBP_DONE;
    return FERRY_OK;
}

ferry_err
vbdata_count(struct servants *sv, uint16_t vb, struct vbdata_count *out)
{
    struct vbdata_count n = {0, 0};

    for (int ph = VBP_KV; ph < VBP_DONE; ph++) {
        struct store_cursor *cur;
        struct store_val k, v;
        bool found = false;
        ferry_err rc = vbdata_open(sv, ph, NULL, 0, false, &cur, &k, &v, &found);

        while (rc == FERRY_OK && found) {
            struct vbdata_item it;
            if (vbdata_is_vb(sv, ph, vb, k, v, &it)) {
                n.records++;
                n.bytes += k.len + v.len;
            }
            rc = store_next(cur, &k, &v, &found);
        }
        if (rc != FERRY_OK) {
            return rc;
        }
        store_cursor_close(cur);
    }
    *out = n;
    return FERRY_OK;
}

/* ---- import ---- */

/* One chunk being imported; freed when done has run. */
struct vbdata_imp {
    struct servants *sv;       /* borrowed */
    uint16_t vb;               /* the vbucket */
    uint8_t *chunk;            /* owned: a copy of the chunk */
    size_t len;                /* its bytes */
    struct vbdata_summary sum; /* what the check found */
    struct queue_import *qi;   /* owned until finished */
    struct kv_rev_raise rev;   /* the kv counter's raise */
    bool has_kv;               /* the chunk has kv records */
    vbdata_done_cb done;       /* called once */
    void *ud;                  /* for done */
};

static void
vbdata_imp_end(struct vbdata_imp *im, bool committed, ferry_err err,
               const char *msg)
{
    queue_import_finish(im->qi, committed);
    im->done(im->ud, err, msg);
    free(im->chunk);
    free(im);
}

static void
vbdata_import_done(void *arg, const struct store_result *res)
{
    struct vbdata_imp *im = arg;

    if (res->status != STORE_COMMITTED) {
        vbdata_imp_end(im, false,
                       res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                       res->status == STORE_FAILED
                           ? "handover: the store refused the chunk"
                           : "handover: a condition of the chunk failed");
        return;
    }
    if (im->has_kv || im->rev.want > 0) {
        kv_service_imported(im->sv->kv, im->rev.got);
    }
    vbdata_imp_end(im, true, FERRY_OK, NULL);
}

/* The records of the chunk into b and the queue import. */
static ferry_err
vbdata_import_fill(struct vbdata_imp *im, struct store_batch *b, char *err)
{
    struct vbdata_reader r;
    struct vbdata_rec rec;
    int tkv = store_table(im->sv->store, KV_TABLE);
    bool end = false;
    ferry_err rc = vbdata_reader_init(&r, im->chunk, im->len, err);

    if (tkv < 0) {
        return FERRY_ESYS;
    }
    while (rc == FERRY_OK &&
           (rc = vbdata_reader_next(&r, &rec, &end, err)) == FERRY_OK && !end) {
        switch (rec.type) {
        case VBDATA_KV:
            im->has_kv = true;
            rc = store_batch_put(b, (unsigned)tkv, rec.key.p, rec.key.len,
                                 rec.val.p, rec.val.len);
            break;
        case VBDATA_QUEUE:
            rc = queue_import_queue(im->qi, rec.key, rec.val, rec.counts);
            break;
        case VBDATA_JOB:
            rc = queue_import_job(im->qi, rec.key, rec.origin, rec.id,
                                  rec.val);
            break;
        case VBDATA_DEDUP:
            rc = queue_import_dedup(im->qi, rec.key, rec.dedup, rec.id,
                                    rec.expires);
            break;
        }
    }
    return rc;
}

/* Behind the fence: every earlier batch is decided, so the engine's
 * memory holds every job id this node has. */
static void
vbdata_import_go(void *arg, const struct store_result *res)
{
    struct vbdata_imp *im = arg;
    struct store_batch *b = store_batch_new();
    char err[VBDATA_ERR_SIZE];
    ferry_err rc;

    (void)res;
    err[0] = '\0';
    if (b == NULL) {
        vbdata_imp_end(im, false, FERRY_ENOMEM, NULL);
        return;
    }
    rc = vbdata_import_fill(im, b, err);
    if (rc == FERRY_OK) {
        rc = queue_import_prepare(im->qi, b, err, sizeof(err));
    }
    im->rev.want = im->sum.max_kv_rev;
    if (rc == FERRY_OK && (im->has_kv || im->rev.want > 0)) {
        rc = kv_service_raise_rev(im->sv->kv, b, &im->rev);
    }
    if (rc != FERRY_OK) {
        store_batch_free(b);
        vbdata_imp_end(im, false, rc, err[0] != '\0' ? err : NULL);
        return;
    }
    store_submit(im->sv->store, b, vbdata_import_done, im);
}

/* A batch that writes nothing: its callback runs once every batch
 * submitted before it is decided. */
static ferry_err
vbdata_fence(struct servants *sv, store_done_cb cb, void *arg)
{
    static const char none[] = "vbdata/none";
    int tm = store_table(sv->store, KV_META_TABLE);
    struct store_batch *b = store_batch_new();

    if (b == NULL || tm < 0 ||
        store_batch_del(b, (unsigned)tm, none, sizeof(none) - 1) != FERRY_OK) {
        store_batch_free(b);
        return FERRY_ENOMEM;
    }
    store_submit(sv->store, b, cb, arg);
    return FERRY_OK;
}

void
vbdata_import(struct servants *sv, uint16_t vb, const void *chunk, size_t len,
              vbdata_done_cb done, void *ud)
{
    char err[VBDATA_ERR_SIZE];
    struct vbdata_summary sum;
    struct vbdata_imp *im;
    ferry_err rc;

    if ((uint64_t)len > VBDATA_CHUNK_MAX) {
        snprintf(err, sizeof(err), "handover chunk of %zu bytes, at most %llu",
                 len, (unsigned long long)VBDATA_CHUNK_MAX);
        done(ud, FERRY_EPROTO, err);
        return;
    }
    if ((rc = vbdata_chunk_check(chunk, len, &sum, err)) != FERRY_OK) {
        done(ud, rc, err);
        return;
    }
    if (sum.vb != vb) {
        snprintf(err, sizeof(err),
                 "handover chunk of vbucket %u, imported as vbucket %u",
                 (unsigned)sum.vb, (unsigned)vb);
        done(ud, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    if (sum.records > 0 && store_space_low(sv->store)) {
        done(ud, FERRY_ENO_SPACE,
             "handover: the store is nearly full: nothing of the chunk "
             "written");
        return;
    }
    im = calloc(1, sizeof(*im));
    if (im == NULL || (im->chunk = malloc(len > 0 ? len : 1)) == NULL) {
        free(im);
        done(ud, FERRY_ENOMEM, NULL);
        return;
    }
    memcpy(im->chunk, chunk, len);
    im->sv = sv;
    im->vb = vb;
    im->len = len;
    im->sum = sum;
    im->done = done;
    im->ud = ud;
    /* From here on no push takes an id the chunk may hold. */
    im->qi = queue_import_new(sv->queue, sum.max_next_id);
    if (im->qi == NULL || vbdata_fence(sv, vbdata_import_go, im) != FERRY_OK) {
        vbdata_imp_end(im, false, FERRY_ENOMEM, NULL);
    }
}

/* ---- drop ---- */

/* The tables in drop order: jobs while their queues are known. */
static const uint8_t vbdata_drop_order[] = {VBP_JOBS, VBP_DEDUP, VBP_NAMES,
                                            VBP_KV};

struct vbdata_drop {
    struct servants *sv;        /* borrowed */
    uint16_t vb;                /* the vbucket */
    size_t step;                /* index in vbdata_drop_order */
    size_t klen;                /* where the table goes on */
    uint8_t key[STORE_MAX_KEY]; /* its key */
    vbdata_done_cb done;        /* called once */
    void *ud;                   /* for done */
};

static void vbdata_drop_step(struct vbdata_drop *d);

static void
vbdata_drop_cb(void *arg, const struct store_result *res)
{
    struct vbdata_drop *d = arg;

    if (res->status != STORE_COMMITTED) {
        d->done(d->ud, res->status == STORE_FAILED ? res->err : FERRY_ESYS,
                "handover: a delete of the drop failed");
        free(d);
        return;
    }
    vbdata_drop_step(d);
}

/* Adds the deletes of the next records of vb to b (up to the bounds);
 * moves d on. */
static ferry_err
vbdata_drop_fill(struct vbdata_drop *d, struct store_batch *b)
{
    unsigned scanned = 0;

    while (d->step < sizeof(vbdata_drop_order) &&
           scanned < VBDATA_SCAN_BUDGET &&
           store_batch_len(b) < VBDATA_DROP_OPS) {
        int ph = vbdata_drop_order[d->step];
        int t = store_table(d->sv->store, vbdata_tables[ph]);
        struct store_cursor *cur;
        struct store_val k, v;
        bool found = false;
        ferry_err rc = vbdata_open(d->sv, ph, d->key, d->klen, d->klen > 0,
                                   &cur, &k, &v, &found);

        while (rc == FERRY_OK && found && scanned < VBDATA_SCAN_BUDGET &&
               store_batch_len(b) < VBDATA_DROP_OPS) {
            struct vbdata_item it;

            scanned++;
            if (vbdata_is_vb(d->sv, ph, d->vb, k, v, &it) &&
                !(ph == VBP_NAMES &&
                  queue_engine_holds_other(d->sv->queue, it.qname, d->vb))) {
                rc = store_batch_del(b, (unsigned)t, k.data, k.len);
            }
            memcpy(d->key, k.data, k.len);
            d->klen = k.len;
            if (rc == FERRY_OK) {
                rc = store_next(cur, &k, &v, &found);
            }
        }
        if (rc != FERRY_OK) {
            return rc;
        }
        store_cursor_close(cur);
        if (!found) {
            d->step++;
            d->klen = 0;
        }
    }
    return FERRY_OK;
}

static void
vbdata_drop_step(struct vbdata_drop *d)
{
    struct store_batch *b = store_batch_new();
    ferry_err rc = b != NULL ? vbdata_drop_fill(d, b) : FERRY_ENOMEM;

    if (rc != FERRY_OK) {
        store_batch_free(b);
        d->done(d->ud, rc, NULL);
        free(d);
        return;
    }
    if (store_batch_len(b) > 0) {
        store_submit(d->sv->store, b, vbdata_drop_cb, d);
        return;
    }
    store_batch_free(b);
    if (d->step < sizeof(vbdata_drop_order)) {
        /* Nothing of vb in this stretch: go on in a later loop turn. */
        if (vbdata_fence(d->sv, vbdata_drop_cb, d) != FERRY_OK) {
            d->done(d->ud, FERRY_ENOMEM, NULL);
            free(d);
        }
        return;
    }
    queue_engine_unload_vb(d->sv->queue, d->vb);
    d->done(d->ud, FERRY_OK, NULL);
    free(d);
}

void
vbdata_drop(struct servants *sv, uint16_t vb, vbdata_done_cb done, void *ud)
{
    char err[VBDATA_ERR_SIZE];
    struct vbdata_drop *d;
    ferry_err rc;

    if (vb >= VB_COUNT) {
        done(ud, FERRY_EINVALID_ARGUMENT, "handover: no such vbucket");
        return;
    }
    rc = queue_engine_drop_check(sv->queue, vb, err, sizeof(err));
    if (rc != FERRY_OK) {
        done(ud, rc, err);
        return;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        done(ud, FERRY_ENOMEM, NULL);
        return;
    }
    d->sv = sv;
    d->vb = vb;
    d->done = done;
    d->ud = ud;
    vbdata_drop_step(d);
}
