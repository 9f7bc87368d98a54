/* SPDX-License-Identifier: MIT */
/*
 * vbdata_codec.h - the chunk format of a vbucket handover (docs/cluster.md,
 * "Handover: the chunk format"): what one node's store exports of a
 * vbucket's durable data (ferry.kv keys, ferry.queue queues, jobs and
 * dedup ids) and another imports. All integers big-endian.
 *
 * Chunks come from a peer: outside input. The reader checks the header,
 * every record's length against what is left before it reads the record,
 * every record's type and fields, and that every key belongs to the
 * chunk's vbucket; it allocates nothing and its slices borrow the chunk.
 * Pure C with no store and no loop, linked alone into the fuzz target
 * tests/fuzz/fuzz_vbdata_chunk.c. The writers append to a struct buf.
 */
#ifndef FERRY_SERVANTS_VBDATA_CODEC_H
#define FERRY_SERVANTS_VBDATA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "ferry.h"
#include "proto/frame.h"

#define VBDATA_MAGIC "FVBD"     /* the first four bytes of a chunk */
#define VBDATA_VERSION 1        /* the byte after them */
#define VBDATA_HEAD 12          /* magic, version, flags, u16 vb, u32 n */
#define VBDATA_REC_HEAD 5       /* u8 type, u32 len */
#define VBDATA_ERR_SIZE 160     /* room for a reader's message */
#define VBDATA_N_COUNTS 12      /* a queue's counters in a QUEUE record */
/* The largest chunk a node takes (one record may pass the exporter's
 * max_bytes: a value of up to STORE_MAX_VALUE, 1 GiB). */
#define VBDATA_CHUNK_MAX ((UINT64_C(1) << 30) + (UINT64_C(1) << 20))

enum vbdata_type {
    VBDATA_META = 1,  /* u64 kv_rev, u64 queue_next_id */
    VBDATA_KV = 2,    /* u16 klen, key, the stored value (rest) */
    VBDATA_QUEUE = 3, /* u8 nlen, name, u16 slen, settings JSON,
                         VBDATA_N_COUNTS x u64 counters */
    VBDATA_JOB = 4,   /* u8 nlen, name, u8 olen, origin, u64 id,
                         the stored job (rest) */
    VBDATA_DEDUP = 5, /* u8 nlen, name, u8 dlen, dedup id, u64 job id,
                         u64 expires (unix ms) */
};
#define VBDATA_TYPE_MAX VBDATA_DEDUP

/* One decoded record; slices borrow the chunk. */
struct vbdata_rec {
    uint8_t type;          /* enum vbdata_type */
    struct slice key;      /* KV: the key; QUEUE, JOB, DEDUP: the queue */
    struct slice val;      /* KV: stored value (meta + value); QUEUE:
                              settings JSON; JOB: stored job */
    struct slice origin;   /* JOB: the queue it died in, or empty */
    struct slice dedup;    /* DEDUP: the dedup id */
    uint64_t id;           /* JOB, DEDUP: the job id */
    uint64_t expires;      /* DEDUP: unix ms */
    uint64_t kv_rev;       /* META: the source's ferry.kv revision; KV:
                              the key's mod_rev */
    uint64_t next_id;      /* META: the source's next queue job id */
    uint64_t counts[VBDATA_N_COUNTS]; /* QUEUE: pushes ... purged */
};

/* Walks a chunk's records; set up by vbdata_reader_init. */
struct vbdata_reader {
    const uint8_t *p; /* borrowed: the chunk */
    size_t len;       /* its bytes */
    size_t off;       /* the next record */
    uint16_t vb;      /* the chunk's vbucket */
    uint32_t n;       /* records it says it has */
    uint32_t i;       /* records read */
};

/*
 * Checks the header of chunk (len bytes): magic, version, flags 0, a
 * vbucket below 1024. FERRY_EPROTO with a message in err (at least
 * VBDATA_ERR_SIZE bytes) when malformed.
 */
ferry_err vbdata_reader_init(struct vbdata_reader *r, const void *chunk,
                             size_t len, char *err);

/*
 * The next record into *out, *end set after the last (then the chunk must
 * have no byte left). Every field is checked: lengths, names (valid queue
 * names), ids, the stored kv value and job, and that the key (a job: its
 * origin's name when it has one, else its queue's) is in r->vb.
 * FERRY_EPROTO with err when not.
 */
ferry_err vbdata_reader_next(struct vbdata_reader *r, struct vbdata_rec *out,
                             bool *end, char *err);

/* What vbdata_chunk_check learns of a chunk. */
struct vbdata_summary {
    uint16_t vb;          /* its vbucket */
    uint32_t records;     /* records in it */
    uint64_t max_kv_rev;  /* highest META kv_rev or KV mod_rev, 0 none */
    uint64_t max_next_id; /* highest META next_id or JOB id + 1, 0 none */
};

/* Reads every record of chunk: FERRY_OK with *sum, or FERRY_EPROTO with
 * err for the first thing wrong. */
ferry_err vbdata_chunk_check(const void *chunk, size_t len,
                             struct vbdata_summary *sum, char *err);

/*
 * Writers. vbdata_write_head appends a header with n = 0 at b's end and
 * returns its offset from buf_head; each record writer appends one record
 * and bumps the count in that header. FERRY_ENOMEM leaves b as it was.
 */
ferry_err vbdata_write_head(struct buf *b, uint16_t vb, size_t *head_off);
ferry_err vbdata_write_meta(struct buf *b, size_t head_off, uint64_t kv_rev,
                            uint64_t next_id);
ferry_err vbdata_write_kv(struct buf *b, size_t head_off, struct slice key,
                          struct slice stored);
ferry_err vbdata_write_queue(struct buf *b, size_t head_off, struct slice name,
                             struct slice settings,
                             const uint64_t counts[VBDATA_N_COUNTS]);
ferry_err vbdata_write_job(struct buf *b, size_t head_off, struct slice name,
                           struct slice origin, uint64_t id,
                           struct slice stored);
ferry_err vbdata_write_dedup(struct buf *b, size_t head_off, struct slice name,
                             struct slice dedup, uint64_t id,
                             uint64_t expires);

/* Bytes a record of these body bytes takes in a chunk. */
static inline size_t
vbdata_rec_size(size_t body)
{
    return VBDATA_REC_HEAD + body;
}

#endif
