/* SPDX-License-Identifier: MIT */
/*
 * vbdata_codec.c - the handover chunk (servants/vbdata_codec.h): the
 * reader, which checks every length before it reads what it covers and
 * allocates nothing, and the writers.
 */
#include "servants/vbdata_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster/vbmap.h"
#include "core/be.h"
#include "queue/queue_codec.h"
#include "servants/kv_codec.h"

static ferry_err
vbdata_bad(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VBDATA_ERR_SIZE, fmt, ap);
    va_end(ap);
    return FERRY_EPROTO;
}

ferry_err
vbdata_reader_init(struct vbdata_reader *r, const void *chunk, size_t len,
                   char *err)
{
    const uint8_t *p = chunk;

    if (len < VBDATA_HEAD) {
        return vbdata_bad(err, "handover chunk of %zu bytes, the header is %d",
                          len, VBDATA_HEAD);
    }
    if (memcmp(p, VBDATA_MAGIC, 4) != 0) {
        return vbdata_bad(err, "handover chunk: bad magic");
    }
    if (p[4] != VBDATA_VERSION) {
        return vbdata_bad(err, "handover chunk: version %u, this node reads %d",
                          (unsigned)p[4], VBDATA_VERSION);
    }
    if (p[5] != 0) {
        return vbdata_bad(err, "handover chunk: unknown flags 0x%02x",
                          (unsigned)p[5]);
    }
    r->p = p;
    r->len = len;
    r->off = VBDATA_HEAD;
    r->vb = be_get_u16(p + 6);
    r->n = be_get_u32(p + 8);
    r->i = 0;
    if (r->vb >= VB_COUNT) {
        return vbdata_bad(err, "handover chunk: vbucket %u, at most %d",
                          (unsigned)r->vb, VB_COUNT - 1);
    }
    return FERRY_OK;
}

/* A u8-length name at *p (n bytes left), advanced; false when short. */
static bool
vbdata_take8(const uint8_t **p, size_t *n, struct slice *out)
{
    size_t l;

    if (*n < 1) {
        return false;
    }
    l = (*p)[0];
    if (*n - 1 < l) {
        return false;
    }
    out->p = *p + 1;
    out->len = l;
    *p += 1 + l;
    *n -= 1 + l;
    return true;
}

/* Whether key's vbucket is the reader's; err says otherwise. */
static ferry_err
vbdata_in_vb(const struct vbdata_reader *r, const char *what, struct slice key,
             char *err)
{
    uint16_t vb = vb_of_key(key.p, key.len);

    if (vb != r->vb) {
        return vbdata_bad(err,
                          "handover chunk: record %u: %s of vbucket %u in a "
                          "chunk of vbucket %u",
                          (unsigned)r->i, what, (unsigned)vb, (unsigned)r->vb);
    }
    return FERRY_OK;
}

static ferry_err
vbdata_read_kv(struct vbdata_reader *r, const uint8_t *p, size_t n,
               struct vbdata_rec *out, char *err)
{
    struct kv_meta m;
    struct slice val;
    size_t klen;

    if (n < 2 || (klen = be_get_u16(p)) == 0 || klen > KV_KEY_MAX ||
        n - 2 < klen) {
        return vbdata_bad(err, "handover chunk: record %u: bad kv key length",
                          (unsigned)r->i);
    }
    out->key = (struct slice){p + 2, klen};
    out->val = (struct slice){p + 2 + klen, n - 2 - klen};
    if (!kv_codec_read_stored(out->val.p, out->val.len, &m, &val) ||
        m.mod_rev == 0 || m.create_rev == 0 || m.create_rev > m.mod_rev ||
        m.version == 0) {
        return vbdata_bad(err, "handover chunk: record %u: bad kv value",
                          (unsigned)r->i);
    }
    out->kv_rev = m.mod_rev;
    return vbdata_in_vb(r, "kv key", out->key, err);
}

static ferry_err
vbdata_read_queue(struct vbdata_reader *r, const uint8_t *p, size_t n,
                  struct vbdata_rec *out, char *err)
{
    size_t slen;

    if (!vbdata_take8(&p, &n, &out->key) || !queue_name_is_valid(out->key)) {
        return vbdata_bad(err, "handover chunk: record %u: bad queue name",
                          (unsigned)r->i);
    }
    if (n < 2 || (slen = be_get_u16(p)) == 0 || slen > QUEUE_SETTINGS_MAX ||
        n - 2 != slen + 8 * VBDATA_N_COUNTS) {
        return vbdata_bad(err,
                          "handover chunk: record %u: bad queue settings or "
                          "counters",
                          (unsigned)r->i);
    }
    out->val = (struct slice){p + 2, slen};
    p += 2 + slen;
    for (int i = 0; i < VBDATA_N_COUNTS; i++) {
        out->counts[i] = be_get_u64(p + 8 * i);
    }
    return vbdata_in_vb(r, "queue", out->key, err);
}

static ferry_err
vbdata_read_job(struct vbdata_reader *r, const uint8_t *p, size_t n,
                struct vbdata_rec *out, char *err)
{
    struct queue_rec rec;

    if (!vbdata_take8(&p, &n, &out->key) || !queue_name_is_valid(out->key) ||
        !vbdata_take8(&p, &n, &out->origin) ||
        (out->origin.len > 0 && !queue_name_is_valid(out->origin))) {
        return vbdata_bad(err,
                          "handover chunk: record %u: bad queue or origin name",
                          (unsigned)r->i);
    }
    if (n < 8 || (out->id = be_get_u64(p)) == 0 || out->id == UINT64_MAX) {
        return vbdata_bad(err, "handover chunk: record %u: bad job id",
                          (unsigned)r->i);
    }
    out->val = (struct slice){p + 8, n - 8};
    if (!queue_codec_read_rec(out->val.p, out->val.len, &rec) ||
        rec.reason.len > QUEUE_REASON_MAX) {
        return vbdata_bad(err, "handover chunk: record %u: bad job record",
                          (unsigned)r->i);
    }
    /* A dead job goes with the queue it died in. */
    return vbdata_in_vb(r, "job",
                        out->origin.len > 0 ? out->origin : out->key, err);
}

static ferry_err
vbdata_read_dedup(struct vbdata_reader *r, const uint8_t *p, size_t n,
                  struct vbdata_rec *out, char *err)
{
    if (!vbdata_take8(&p, &n, &out->key) || !queue_name_is_valid(out->key) ||
        !vbdata_take8(&p, &n, &out->dedup) || out->dedup.len == 0 ||
        out->dedup.len > QUEUE_DEDUP_MAX || n != 16) {
        return vbdata_bad(err, "handover chunk: record %u: bad dedup record",
                          (unsigned)r->i);
    }
    out->id = be_get_u64(p);
    out->expires = be_get_u64(p + 8);
    if (out->id == 0) {
        return vbdata_bad(err, "handover chunk: record %u: bad job id",
                          (unsigned)r->i);
    }
    return vbdata_in_vb(r, "dedup id", out->key, err);
}

ferry_err
vbdata_reader_next(struct vbdata_reader *r, struct vbdata_rec *out, bool *end,
                   char *err)
{
    const uint8_t *p;
    size_t left = r->len - r->off, n;
    ferry_err rc;

    *end = false;
    if (r->i == r->n) {
        if (left != 0) {
            return vbdata_bad(err,
                              "handover chunk: %zu bytes after its %u records",
                              left, (unsigned)r->n);
        }
        *end = true;
        return FERRY_OK;
    }
    if (left < VBDATA_REC_HEAD) {
        return vbdata_bad(err, "handover chunk: record %u of %u is cut off",
                          (unsigned)r->i, (unsigned)r->n);
    }
    p = r->p + r->off;
    n = be_get_u32(p + 1);
    if (left - VBDATA_REC_HEAD < n) {
        return vbdata_bad(err,
                          "handover chunk: record %u says %zu bytes, %zu left",
                          (unsigned)r->i, n, left - VBDATA_REC_HEAD);
    }
    memset(out, 0, sizeof(*out));
    out->type = p[0];
    p += VBDATA_REC_HEAD;
    switch (out->type) {
    case VBDATA_META:
        if (n != 16) {
            rc = vbdata_bad(err, "handover chunk: record %u: meta of %zu bytes",
                            (unsigned)r->i, n);
            break;
        }
        out->kv_rev = be_get_u64(p);
        out->next_id = be_get_u64(p + 8);
        rc = FERRY_OK;
        break;
    case VBDATA_KV:
        rc = vbdata_read_kv(r, p, n, out, err);
        break;
    case VBDATA_QUEUE:
        rc = vbdata_read_queue(r, p, n, out, err);
        break;
    case VBDATA_JOB:
        rc = vbdata_read_job(r, p, n, out, err);
        break;
    case VBDATA_DEDUP:
        rc = vbdata_read_dedup(r, p, n, out, err);
        break;
    default:
        rc = vbdata_bad(err, "handover chunk: record %u: unknown type %u",
                        (unsigned)r->i, (unsigned)out->type);
        break;
    }
    if (rc == FERRY_OK) {
        r->off += VBDATA_REC_HEAD + n;
        r->i++;
    }
    return rc;
}

ferry_err
vbdata_chunk_check(const void *chunk, size_t len, struct vbdata_summary *sum,
                   char *err)
{
    struct vbdata_reader r;
    struct vbdata_rec rec;
    struct vbdata_summary s = {0};
    bool end = false;
    ferry_err rc = vbdata_reader_init(&r, chunk, len, err);

    s.vb = r.vb;
    while (rc == FERRY_OK &&
           (rc = vbdata_reader_next(&r, &rec, &end, err)) == FERRY_OK &&
           !end) {
        uint64_t next = 0;

        if (rec.type == VBDATA_META || rec.type == VBDATA_KV) {
            s.max_kv_rev = rec.kv_rev > s.max_kv_rev ? rec.kv_rev : s.max_kv_rev;
        }
        if (rec.type == VBDATA_META) {
            next = rec.next_id;
        } else if (rec.type == VBDATA_JOB) {
            next = rec.id + 1;
        }
        s.max_next_id = next > s.max_next_id ? next : s.max_next_id;
    }
    if (rc == FERRY_OK) {
        s.records = r.n;
        *sum = s;
    }
    return rc;
}

/* ---- writers ---- */

ferry_err
vbdata_write_head(struct buf *b, uint16_t vb, size_t *head_off)
{
    uint8_t h[VBDATA_HEAD];
    size_t off = buf_len(b);
    ferry_err rc;

    memcpy(h, VBDATA_MAGIC, 4);
    h[4] = VBDATA_VERSION;
    h[5] = 0;
    be_put_u16(h + 6, vb);
    be_put_u32(h + 8, 0);
    if ((rc = buf_append(b, h, sizeof(h))) == FERRY_OK) {
        *head_off = off;
    }
    return rc;
}

/* Appends one record of type whose body is the parts, in order. */
static ferry_err
vbdata_write(struct buf *b, size_t head_off, uint8_t type,
             const struct slice *parts, size_t n_parts)
{
    size_t body = 0;
    uint8_t *p, *h;

    for (size_t i = 0; i < n_parts; i++) {
        body += parts[i].len;
    }
    if (body > UINT32_MAX) {
        return FERRY_EINVALID_ARGUMENT;
    }
    p = buf_prepare(b, VBDATA_REC_HEAD + body);
    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    buf_commit(b, VBDATA_REC_HEAD + body);
    p[0] = type;
    p = be_put_u32(p + 1, (uint32_t)body);
    for (size_t i = 0; i < n_parts; i++) {
        if (parts[i].len > 0) {
            memcpy(p, parts[i].p, parts[i].len);
            p += parts[i].len;
        }
    }
    h = buf_head(b) + head_off;
    be_put_u32(h + 8, be_get_u32(h + 8) + 1);
    return FERRY_OK;
}

ferry_err
vbdata_write_meta(struct buf *b, size_t head_off, uint64_t kv_rev,
                  uint64_t next_id)
{
    uint8_t v[16];

    be_put_u64(be_put_u64(v, kv_rev), next_id);
    return vbdata_write(b, head_off, VBDATA_META,
                        &(struct slice){v, sizeof(v)}, 1);
}

ferry_err
vbdata_write_kv(struct buf *b, size_t head_off, struct slice key,
                struct slice stored)
{
    uint8_t l[2];

    be_put_u16(l, (uint16_t)key.len);
    return vbdata_write(b, head_off, VBDATA_KV,
                        (struct slice[]){{l, 2}, key, stored}, 3);
}

ferry_err
vbdata_write_queue(struct buf *b, size_t head_off, struct slice name,
                   struct slice settings, const uint64_t counts[VBDATA_N_COUNTS])
{
    uint8_t nl = (uint8_t)name.len, sl[2], c[8 * VBDATA_N_COUNTS];

    be_put_u16(sl, (uint16_t)settings.len);
    for (int i = 0; i < VBDATA_N_COUNTS; i++) {
        be_put_u64(c + 8 * i, counts[i]);
    }
    return vbdata_write(
        b, head_off, VBDATA_QUEUE,
        (struct slice[]){{&nl, 1}, name, {sl, 2}, settings, {c, sizeof(c)}},
        5);
}

ferry_err
vbdata_write_job(struct buf *b, size_t head_off, struct slice name,
                 struct slice origin, uint64_t id, struct slice stored)
{
    uint8_t nl = (uint8_t)name.len, ol = (uint8_t)origin.len, iv[8];

    be_put_u64(iv, id);
    return vbdata_write(
        b, head_off, VBDATA_JOB,
        (struct slice[]){{&nl, 1}, name, {&ol, 1}, origin, {iv, 8}, stored}, 6);
}

ferry_err
vbdata_write_dedup(struct buf *b, size_t head_off, struct slice name,
                   struct slice dedup, uint64_t id, uint64_t expires)
{
    uint8_t nl = (uint8_t)name.len, dl = (uint8_t)dedup.len, v[16];

    be_put_u64(be_put_u64(v, id), expires);
    return vbdata_write(
        b, head_off, VBDATA_DEDUP,
        (struct slice[]){{&nl, 1}, name, {&dl, 1}, dedup, {v, 16}}, 5);
}
