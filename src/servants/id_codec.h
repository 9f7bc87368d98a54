/* SPDX-License-Identifier: MIT */
/*
 * id_codec.h - the payload format of ferry.id (docs/services.md): the
 * requests a caller sends, the replies ferryd sends back, and the layout
 * of an id. Pure C, nothing of the daemon: the fuzz target and the CLI
 * link it alone.
 *
 * An id (64 bits): bit 63 = 0, then 41 bits of milliseconds since
 * 2026-01-01T00:00:00Z (ID_EPOCH_UNIX_MS), 10 bits of node id, 12 bits of
 * sequence. All integers on the wire are big-endian.
 */
#ifndef FERRY_SERVANTS_ID_CODEC_H
#define FERRY_SERVANTS_ID_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

#define ID_EPOCH_UNIX_MS INT64_C(1767225600000)
#define ID_MS_BITS 41
#define ID_NODE_BITS 10
#define ID_SEQ_BITS 12
#define ID_MS_MAX ((UINT64_C(1) << ID_MS_BITS) - 1)
#define ID_NODE_MAX ((1u << ID_NODE_BITS) - 1)
#define ID_SEQ_MAX ((1u << ID_SEQ_BITS) - 1)

#define ID_OP_NEXT 1
#define ID_OP_DECODE 2
/* Ids one NEXT may ask for. */
#define ID_COUNT_MAX 10000
/* Reply status byte (the shared ones of docs/services.md). */
#define ID_ST_OK 0

/* Room for a decode error's message. */
#define ID_CODEC_ERR_SIZE 96
/* A NEXT reply's size: status, u32 n, n x u64. */
#define ID_NEXT_REPLY_LEN(n) (5u + 8u * (size_t)(n))
/* A DECODE reply's size: status, u64 unix_ms, u16 node, u16 seq. */
#define ID_DECODE_REPLY_LEN 13u

/* A decoded request. */
struct id_req {
    uint8_t op;     /* ID_OP_* */
    uint32_t count; /* NEXT: 1..ID_COUNT_MAX */
    uint64_t id;    /* DECODE: the id (bit 63 clear) */
};

/* What an id says. */
struct id_parts {
    uint64_t unix_ms; /* its millisecond, as Unix ms */
    uint16_t node;    /* 0..ID_NODE_MAX */
    uint16_t seq;     /* 0..ID_SEQ_MAX */
};

/*
 * Decodes a request payload. FERRY_OK with *r set, or
 * FERRY_EINVALID_ARGUMENT with a message naming the field in err (size
 * ID_CODEC_ERR_SIZE, always terminated).
 */
ferry_err id_decode_request(const uint8_t *p, size_t len, struct id_req *r,
                            char *err, size_t err_size);

/* Encodes a request: NEXT (5 bytes) or DECODE (9 bytes) into out (room
 * for 9); returns its length. */
size_t id_encode_next(uint8_t out[9], uint32_t count);
size_t id_encode_decode(uint8_t out[9], uint64_t id);

/* An id from its parts: ms since ID_EPOCH_UNIX_MS (<= ID_MS_MAX), node,
 * seq (masked to their widths). */
static inline uint64_t
id_make(uint64_t ms, unsigned node, unsigned seq)
{
    return ((ms & ID_MS_MAX) << (ID_NODE_BITS + ID_SEQ_BITS)) |
           ((uint64_t)(node & ID_NODE_MAX) << ID_SEQ_BITS) |
           (uint64_t)(seq & ID_SEQ_MAX);
}

/* Splits an id; false when bit 63 is set (no id of ferry.id). */
bool id_split(uint64_t id, struct id_parts *out);

/* The DECODE reply for parts into out (ID_DECODE_REPLY_LEN bytes). */
void id_encode_decode_reply(uint8_t out[ID_DECODE_REPLY_LEN],
                            const struct id_parts *parts);

/* Writes a NEXT reply's head (status OK, n) into out (5 bytes); the ids
 * follow it as u64 each. */
void id_encode_next_head(uint8_t out[5], uint32_t n);

/*
 * Reads a reply (what the CLI gets back). NEXT: *n and the ids at
 * *ids (big-endian u64 each, id_get(ids, i) reads one); DECODE: *parts.
 * FERRY_OK, or FERRY_EINVALID_ARGUMENT (short, long, bad status) with
 * err set.
 */
ferry_err id_decode_next_reply(const uint8_t *p, size_t len, uint32_t *n,
                               const uint8_t **ids, char *err, size_t err_size);
ferry_err id_decode_decode_reply(const uint8_t *p, size_t len,
                                 struct id_parts *parts, char *err,
                                 size_t err_size);

/* The i-th id of a NEXT reply's ids. */
static inline uint64_t
id_get(const uint8_t *ids, uint32_t i)
{
    const uint8_t *q = ids + 8u * (size_t)i;
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) {
        v = (v << 8) | q[k];
    }
    return v;
}

/* Writes v big-endian at q (8 bytes). */
static inline void
id_put_u64(uint8_t *q, uint64_t v)
{
    for (int k = 7; k >= 0; k--) {
        q[k] = (uint8_t)v;
        v >>= 8;
    }
}

#endif
