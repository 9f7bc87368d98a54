/* SPDX-License-Identifier: MIT */
/*
 * id_codec.c - ferry.id's payloads (see id_codec.h). Every length is
 * checked before a byte is read; nothing is allocated.
 */
#include "servants/id_codec.h"

#include <stdio.h>
#include <string.h>

static uint32_t
id_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static uint16_t
id_rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | (unsigned)p[1]);
}

static void
id_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static ferry_err
id_fail(char *err, size_t err_size, const char *fmt, unsigned a, size_t b)
{
    if (err_size > 0) {
        snprintf(err, err_size, fmt, a, b);
    }
    return FERRY_EINVALID_ARGUMENT;
}

ferry_err
id_decode_request(const uint8_t *p, size_t len, struct id_req *r, char *err,
                  size_t err_size)
{
    memset(r, 0, sizeof(*r));
    if (len == 0) {
        return id_fail(err, err_size,
                       "ferry.id: empty payload, needs an op%.0u%.0zu", 0, 0);
    }
    r->op = p[0];
    switch (r->op) {
    case ID_OP_NEXT:
        if (len != 5) {
            return id_fail(err, err_size,
                           "ferry.id: payload of op %u needs 4 bytes after "
                           "op, got %zu",
                           r->op, len - 1);
        }
        r->count = id_rd32(p + 1);
        if (r->count < 1 || r->count > ID_COUNT_MAX) {
            return id_fail(err, err_size,
                           "ferry.id: count %u out of range 1..%zu", r->count,
                           (size_t)ID_COUNT_MAX);
        }
        return FERRY_OK;
    case ID_OP_DECODE:
        if (len != 9) {
            return id_fail(err, err_size,
                           "ferry.id: payload of op %u needs 8 bytes after "
                           "op, got %zu",
                           r->op, len - 1);
        }
        r->id = id_get(p + 1, 0);
        if (r->id >> 63) {
            return id_fail(err, err_size,
                           "ferry.id: id has bit 63 set (op %u)%.0zu", r->op,
                           0);
        }
        return FERRY_OK;
    default:
        return id_fail(err, err_size, "unknown op %u%.0zu", r->op, 0);
    }
}

size_t
id_encode_next(uint8_t out[9], uint32_t count)
{
    out[0] = ID_OP_NEXT;
    id_wr32(out + 1, count);
    return 5;
}

size_t
id_encode_decode(uint8_t out[9], uint64_t id)
{
    out[0] = ID_OP_DECODE;
    id_put_u64(out + 1, id);
    return 9;
}

bool
id_split(uint64_t id, struct id_parts *out)
{
    if (id >> 63) {
        return false;
    }
    out->unix_ms =
        (id >> (ID_NODE_BITS + ID_SEQ_BITS)) + (uint64_t)ID_EPOCH_UNIX_MS;
    out->node = (uint16_t)((id >> ID_SEQ_BITS) & ID_NODE_MAX);
    out->seq = (uint16_t)(id & ID_SEQ_MAX);
    return true;
}

void
id_encode_decode_reply(uint8_t out[ID_DECODE_REPLY_LEN],
                       const struct id_parts *parts)
{
    out[0] = ID_ST_OK;
    id_put_u64(out + 1, parts->unix_ms);
    out[9] = (uint8_t)(parts->node >> 8);
    out[10] = (uint8_t)parts->node;
    out[11] = (uint8_t)(parts->seq >> 8);
    out[12] = (uint8_t)parts->seq;
}

void
id_encode_next_head(uint8_t out[5], uint32_t n)
{
    out[0] = ID_ST_OK;
    id_wr32(out + 1, n);
}

ferry_err
id_decode_next_reply(const uint8_t *p, size_t len, uint32_t *n,
                     const uint8_t **ids, char *err, size_t err_size)
{
    if (len < 5) {
        return id_fail(err, err_size,
                       "ferry.id: NEXT reply needs 5 bytes, got %u%.0zu",
                       (unsigned)len, 0);
    }
    if (p[0] != ID_ST_OK) {
        return id_fail(err, err_size, "ferry.id: reply status %u%.0zu", p[0],
                       0);
    }
    *n = id_rd32(p + 1);
    if (*n > ID_COUNT_MAX || len - 5 != 8u * (size_t)*n) {
        return id_fail(err, err_size,
                       "ferry.id: NEXT reply of %u ids has %zu bytes after "
                       "its head",
                       *n, len - 5);
    }
    *ids = p + 5;
    return FERRY_OK;
}

ferry_err
id_decode_decode_reply(const uint8_t *p, size_t len, struct id_parts *parts,
                       char *err, size_t err_size)
{
    if (len != ID_DECODE_REPLY_LEN) {
        return id_fail(err, err_size,
                       "ferry.id: DECODE reply needs %u bytes, got %zu",
                       ID_DECODE_REPLY_LEN, len);
    }
    if (p[0] != ID_ST_OK) {
        return id_fail(err, err_size, "ferry.id: reply status %u%.0zu", p[0],
                       0);
    }
    parts->unix_ms = id_get(p + 1, 0);
    parts->node = id_rd16(p + 9);
    parts->seq = id_rd16(p + 11);
    return FERRY_OK;
}
