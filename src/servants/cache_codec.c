/* SPDX-License-Identifier: MIT */
/*
 * cache_codec.c - ferry.cache's payloads (see cache_codec.h and the table
 * in docs/services.md). Every read is preceded by a length check against
 * what is left of the payload; nothing here allocates.
 */
#include "servants/cache_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const cache_codec_names[CACHE_OP_MAX + 1] = {
    [CACHE_OP_GET] = "get",         [CACHE_OP_GET_MANY] = "get_many",
    [CACHE_OP_SET] = "set",         [CACHE_OP_ADD] = "add",
    [CACHE_OP_REPLACE] = "replace", [CACHE_OP_APPEND] = "append",
    [CACHE_OP_PREPEND] = "prepend", [CACHE_OP_CAS] = "cas",
    [CACHE_OP_DELETE] = "delete",   [CACHE_OP_INCR] = "incr",
    [CACHE_OP_DECR] = "decr",       [CACHE_OP_TOUCH] = "touch",
    [CACHE_OP_GAT] = "gat",         [CACHE_OP_FLUSH] = "flush",
};

const char *
cache_codec_op_name(unsigned op)
{
    return op >= 1 && op <= CACHE_OP_MAX ? cache_codec_names[op] : "?";
}

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t
rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static uint8_t *
wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *
wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *
wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)(v >> 32));
    return wr32(p + 4, (uint32_t)v);
}

static ferry_err cache_codec_fail(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes the message into err; returns FERRY_EINVALID_ARGUMENT. */
static ferry_err
cache_codec_fail(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, CACHE_CODEC_ERR_SIZE, fmt, ap);
    va_end(ap);
    return FERRY_EINVALID_ARGUMENT;
}

/* Bytes after the op byte each op needs at least, and whether that is
 * also the most (no value). */
static const struct {
    uint8_t need;
    bool exact;
} cache_codec_shape[CACHE_OP_MAX + 1] = {
    [CACHE_OP_GET] = {0, true},      [CACHE_OP_GET_MANY] = {2, false},
    [CACHE_OP_SET] = {8, false},     [CACHE_OP_ADD] = {8, false},
    [CACHE_OP_REPLACE] = {8, false}, [CACHE_OP_APPEND] = {0, false},
    [CACHE_OP_PREPEND] = {0, false}, [CACHE_OP_CAS] = {16, false},
    [CACHE_OP_DELETE] = {0, true},   [CACHE_OP_INCR] = {8, true},
    [CACHE_OP_DECR] = {8, true},     [CACHE_OP_TOUCH] = {4, true},
    [CACHE_OP_GAT] = {4, true},      [CACHE_OP_FLUSH] = {4, true},
};

/* Checks GET_MANY's key list (p, len: after n) for exactly n keys. */
static ferry_err
cache_codec_check_many(const uint8_t *p, size_t len, unsigned n, char *err)
{
    size_t off = 0, klen;
    unsigned i;

    for (i = 0; i < n; i++) {
        if (len - off < 2) {
            return cache_codec_fail(err,
                                    "ferry.cache: get_many key %u of %u: "
                                    "payload ends before its u16 length",
                                    i + 1, n);
        }
        klen = rd16(p + off);
        off += 2;
        if (klen == 0 || klen > CACHE_CODEC_KEY_MAX) {
            return cache_codec_fail(err,
                                    "ferry.cache: get_many key %u has length "
                                    "%zu, must be 1 to 250",
                                    i + 1, klen);
        }
        if (len - off < klen) {
            return cache_codec_fail(err,
                                    "ferry.cache: get_many key %u needs %zu "
                                    "bytes, the payload ends first",
                                    i + 1, klen);
        }
        off += klen;
    }
    if (off != len) {
        return cache_codec_fail(err,
                                "ferry.cache: get_many of %u keys has %zu "
                                "bytes after the last key",
                                n, len - off);
    }
    return FERRY_OK;
}

ferry_err
cache_codec_decode(struct slice key, struct slice payload,
                   struct cache_req *out, char *err)
{
    const uint8_t *p = payload.p + 1;
    size_t rest;
    struct cache_req r;
    unsigned op;

    if (payload.len == 0) {
        return cache_codec_fail(err, "ferry.cache: empty payload, needs an op "
                                     "byte");
    }
    op = payload.p[0];
    rest = payload.len - 1;
    if (op < 1 || op > CACHE_OP_MAX) {
        return cache_codec_fail(err, "ferry.cache: unknown op %u", op);
    }
    if (rest < cache_codec_shape[op].need) {
        return cache_codec_fail(err,
                                "ferry.cache: payload of op %u needs %u "
                                "bytes after op, got %zu",
                                op, (unsigned)cache_codec_shape[op].need, rest);
    }
    if (cache_codec_shape[op].exact && rest != cache_codec_shape[op].need) {
        return cache_codec_fail(err,
                                "ferry.cache: payload of op %u takes %u "
                                "bytes after op, got %zu",
                                op, (unsigned)cache_codec_shape[op].need, rest);
    }
    if (op == CACHE_OP_GET_MANY || op == CACHE_OP_FLUSH) {
        if (key.len > CACHE_CODEC_KEY_MAX) {
            return cache_codec_fail(err,
                                    "ferry.cache: op %u: key of %zu bytes, "
                                    "must be at most 250",
                                    op, key.len);
        }
    } else if (key.len == 0 || key.len > CACHE_CODEC_KEY_MAX) {
        return cache_codec_fail(err,
                                "ferry.cache: op %u needs a key (the routing "
                                "key) of 1 to 250 bytes, got %zu",
                                op, key.len);
    }

    memset(&r, 0, sizeof(r));
    r.op = (uint8_t)op;
    r.key = key;
    switch (op) {
    case CACHE_OP_GET_MANY:
        r.n_keys = rd16(p);
        if (r.n_keys == 0 || r.n_keys > CACHE_CODEC_MANY_MAX) {
            return cache_codec_fail(err,
                                    "ferry.cache: get_many of %u keys, must "
                                    "be 1 to 1000",
                                    (unsigned)r.n_keys);
        }
        r.keys = (struct slice){p + 2, rest - 2};
        if (cache_codec_check_many(r.keys.p, r.keys.len, r.n_keys, err) !=
            FERRY_OK) {
            return FERRY_EINVALID_ARGUMENT;
        }
        break;
    case CACHE_OP_SET:
    case CACHE_OP_ADD:
    case CACHE_OP_REPLACE:
        r.flags = rd32(p);
        r.ttl_ms = rd32(p + 4);
        r.value = (struct slice){p + 8, rest - 8};
        break;
    case CACHE_OP_APPEND:
    case CACHE_OP_PREPEND:
        r.value = (struct slice){p, rest};
        break;
    case CACHE_OP_CAS:
        r.flags = rd32(p);
        r.ttl_ms = rd32(p + 4);
        r.cas = rd64(p + 8);
        r.value = (struct slice){p + 16, rest - 16};
        break;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        r.delta = rd64(p);
        break;
    case CACHE_OP_TOUCH:
    case CACHE_OP_GAT:
        r.ttl_ms = rd32(p);
        break;
    case CACHE_OP_FLUSH:
        r.delay_ms = rd32(p);
        break;
    default:
        break;
    }
    *out = r;
    return FERRY_OK;
}

bool
cache_codec_next_key(struct slice *rest, struct slice *key)
{
    size_t klen;

    if (rest->len < 2) {
        return false;
    }
    klen = rd16(rest->p);
    if (rest->len - 2 < klen) {
        return false;
    }
    *key = (struct slice){rest->p + 2, klen};
    rest->p += 2 + klen;
    rest->len -= 2 + klen;
    return true;
}

size_t
cache_codec_write_status(uint8_t *dst, uint8_t status)
{
    dst[0] = status;
    return 1;
}

size_t
cache_codec_write_u64(uint8_t *dst, uint8_t status, uint64_t v)
{
    dst[0] = status;
    wr64(dst + 1, v);
    return 9;
}

size_t
cache_codec_write_hit(uint8_t *dst, uint32_t flags, uint64_t cas)
{
    dst[0] = CACHE_ST_OK;
    wr64(wr32(dst + 1, flags), cas);
    return CACHE_CODEC_HIT_HEAD;
}

size_t
cache_codec_write_many_entry(uint8_t *dst, bool hit, uint32_t flags,
                             uint64_t cas, uint32_t vlen)
{
    if (!hit) {
        dst[0] = CACHE_ST_NOT_FOUND;
        return 1;
    }
    dst[0] = CACHE_ST_OK;
    wr32(wr64(wr32(dst + 1, flags), cas), vlen);
    return CACHE_CODEC_MANY_HIT_HEAD;
}

size_t
cache_codec_write_request(uint8_t *dst, const struct cache_req *r)
{
    size_t n = 1;

    switch (r->op) {
    case CACHE_OP_GET_MANY:
        n += 2 + r->keys.len;
        break;
    case CACHE_OP_SET:
    case CACHE_OP_ADD:
    case CACHE_OP_REPLACE:
        n += 8 + r->value.len;
        break;
    case CACHE_OP_APPEND:
    case CACHE_OP_PREPEND:
        n += r->value.len;
        break;
    case CACHE_OP_CAS:
        n += 16 + r->value.len;
        break;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        n += 8;
        break;
    case CACHE_OP_TOUCH:
    case CACHE_OP_GAT:
    case CACHE_OP_FLUSH:
        n += 4;
        break;
    default:
        break;
    }
    if (dst == NULL) {
        return n;
    }
    dst[0] = r->op;
    dst++;
    switch (r->op) {
    case CACHE_OP_GET_MANY:
        dst = wr16(dst, r->n_keys);
        break;
    case CACHE_OP_SET:
    case CACHE_OP_ADD:
    case CACHE_OP_REPLACE:
        dst = wr32(wr32(dst, r->flags), r->ttl_ms);
        break;
    case CACHE_OP_CAS:
        dst = wr64(wr32(wr32(dst, r->flags), r->ttl_ms), r->cas);
        break;
    case CACHE_OP_APPEND:
    case CACHE_OP_PREPEND:
        break;
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        wr64(dst, r->delta);
        return n;
    case CACHE_OP_TOUCH:
    case CACHE_OP_GAT:
        wr32(dst, r->ttl_ms);
        return n;
    case CACHE_OP_FLUSH:
        wr32(dst, r->delay_ms);
        return n;
    default:
        return n;
    }
    if (r->op == CACHE_OP_GET_MANY) {
        if (r->keys.len > 0) {
            memcpy(dst, r->keys.p, r->keys.len);
        }
    } else if (r->value.len > 0) {
        memcpy(dst, r->value.p, r->value.len);
    }
    return n;
}

ferry_err
cache_codec_decode_reply(unsigned op, struct slice payload,
                         struct cache_reply *out)
{
    const uint8_t *p = payload.p + 1;
    size_t rest;
    struct cache_reply r;

    if (payload.len == 0) {
        return FERRY_EPROTO;
    }
    memset(&r, 0, sizeof(r));
    r.status = payload.p[0];
    rest = payload.len - 1;
    if (r.status > CACHE_ST_EXISTS) {
        return FERRY_EPROTO;
    }
    switch (op) {
    case CACHE_OP_GET:
    case CACHE_OP_GAT:
        if (r.status == CACHE_ST_OK) {
            if (rest < 12) {
                return FERRY_EPROTO;
            }
            r.flags = rd32(p);
            r.cas = rd64(p + 4);
            r.value = (struct slice){p + 12, rest - 12};
        } else if (rest != 0) {
            return FERRY_EPROTO;
        }
        break;
    case CACHE_OP_GET_MANY:
        if (r.status != CACHE_ST_OK || rest < 2) {
            return FERRY_EPROTO;
        }
        r.n = rd16(p);
        r.value = (struct slice){p + 2, rest - 2};
        break;
    case CACHE_OP_SET:
    case CACHE_OP_ADD:
    case CACHE_OP_REPLACE:
    case CACHE_OP_APPEND:
    case CACHE_OP_PREPEND:
    case CACHE_OP_CAS:
    case CACHE_OP_INCR:
    case CACHE_OP_DECR:
        if (r.status == CACHE_ST_OK) {
            if (rest != 8) {
                return FERRY_EPROTO;
            }
            r.cas = rd64(p);
            r.number = r.cas;
        } else if (rest != 0) {
            return FERRY_EPROTO;
        }
        break;
    case CACHE_OP_DELETE:
    case CACHE_OP_TOUCH:
    case CACHE_OP_FLUSH:
        if (rest != 0) {
            return FERRY_EPROTO;
        }
        break;
    default:
        return FERRY_EPROTO;
    }
    *out = r;
    return FERRY_OK;
}

bool
cache_codec_next_entry(struct slice *rest, bool *hit, uint32_t *flags,
                       uint64_t *cas, struct slice *value)
{
    const uint8_t *p = rest->p;
    uint32_t vlen;

    if (rest->len < 1) {
        return false;
    }
    if (p[0] != CACHE_ST_OK) {
        if (p[0] != CACHE_ST_NOT_FOUND) {
            return false;
        }
        *hit = false;
        rest->p++;
        rest->len--;
        return true;
    }
    if (rest->len < CACHE_CODEC_MANY_HIT_HEAD) {
        return false;
    }
    vlen = rd32(p + 13);
    if (rest->len - CACHE_CODEC_MANY_HIT_HEAD < vlen) {
        return false;
    }
    *hit = true;
    *flags = rd32(p + 1);
    *cas = rd64(p + 5);
    *value = (struct slice){p + CACHE_CODEC_MANY_HIT_HEAD, vlen};
    rest->p += CACHE_CODEC_MANY_HIT_HEAD + vlen;
    rest->len -= CACHE_CODEC_MANY_HIT_HEAD + vlen;
    return true;
}
