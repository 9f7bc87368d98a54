/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vbdata_chunk.c - libFuzzer target for the handover chunk reader
 * (src/servants/vbdata_codec.c): the input is one chunk as a peer would
 * send it. A chunk the reader takes must have every slice inside the
 * input, and written again record by record through the writers it must
 * come out byte for byte the same; vbdata_chunk_check must agree with
 * the record walk.
 *
 * FUZZ_SRC: src/servants/vbdata_codec.c src/servants/kv_codec.c
 * FUZZ_SRC: src/queue/queue_codec.c src/cluster/vbmap.c src/core/buf.c
 * FUZZ_LIBS: -lxxhash
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servants/vbdata_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
inside(struct slice part, const uint8_t *data, size_t size)
{
    return part.len == 0 || (part.p >= data && part.p + part.len <= data + size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vbdata_reader r;
    struct vbdata_rec rec;
    struct vbdata_summary sum;
    char err[VBDATA_ERR_SIZE];
    struct buf out;
    size_t head = 0;
    bool end = false;
    ferry_err rc, whole;

    whole = vbdata_chunk_check(data, size, &sum, err);
    if (whole != FERRY_OK && whole != FERRY_EPROTO) {
        abort();
    }
    buf_init(&out);
    rc = vbdata_reader_init(&r, data, size, err);
    if (rc == FERRY_OK && vbdata_write_head(&out, r.vb, &head) != FERRY_OK) {
        abort();
    }
    while (rc == FERRY_OK &&
           (rc = vbdata_reader_next(&r, &rec, &end, err)) == FERRY_OK && !end) {
        ferry_err w = FERRY_OK;

        if (!inside(rec.key, data, size) || !inside(rec.val, data, size) ||
            !inside(rec.origin, data, size) || !inside(rec.dedup, data, size)) {
            abort();
        }
        switch (rec.type) {
        case VBDATA_META:
            w = vbdata_write_meta(&out, head, rec.kv_rev, rec.next_id);
            break;
        case VBDATA_KV:
            w = vbdata_write_kv(&out, head, rec.key, rec.val);
            break;
        case VBDATA_QUEUE:
            w = vbdata_write_queue(&out, head, rec.key, rec.val, rec.counts);
            break;
        case VBDATA_JOB:
            w = vbdata_write_job(&out, head, rec.key, rec.origin, rec.id,
                                 rec.val);
            break;
        case VBDATA_DEDUP:
            w = vbdata_write_dedup(&out, head, rec.key, rec.dedup, rec.id,
                                   rec.expires);
            break;
        default:
            abort();
        }
        if (w != FERRY_OK) {
            abort();
        }
    }
    if ((rc == FERRY_OK) != (whole == FERRY_OK)) {
        abort();
    }
    if (rc == FERRY_OK && (buf_len(&out) != size ||
                           memcmp(buf_head(&out), data, size) != 0 ||
                           sum.records != r.n || sum.vb != r.vb)) {
        abort();
    }
    buf_release(&out);
    return 0;
}
