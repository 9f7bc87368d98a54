/* SPDX-License-Identifier: MIT */
/*
 * kv_codec.c - ferry.kv's payloads: the request decoder (every length
 * checked before it is read, nothing allocated), the reply writers, the
 * stored value's layout, and the encoder and reply decoder of the CLI.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "servants/kv_codec.h"

static const char *const kv_op_names[] = {
    "?", "get", "put", "delete", "range", "count", "watch",
};

const char *
kv_codec_op_name(unsigned op)
{
    return op >= 1 && op <= KV_OP_MAX ? kv_op_names[op] : "?";
}

static ferry_err
kv_bad(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, KV_CODEC_ERR_SIZE, fmt, ap);
    va_end(ap);
    return FERRY_EINVALID_ARGUMENT;
}

/* Bytes after the op that op's fixed part needs. */
static size_t
kv_fixed(unsigned op)
{
    switch (op) {
    case KV_OP_GET:
        return 0;
    case KV_OP_PUT:
    case KV_OP_DELETE:
        return 9; /* cond, R */
    case KV_OP_RANGE:
        return 1 + 2 + 4 + 1; /* mode, elen, limit, keys_only (+ end) */
    case KV_OP_COUNT:
        return 1 + 2; /* mode, elen (+ end) */
    case KV_OP_WATCH:
        return 1 + 8 + 4 + 4;
    }
    return 0;
}

ferry_err
kv_codec_decode(struct slice key, struct slice payload, struct kv_req *out,
                char *err)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len;
    struct kv_req r;
    size_t need;
    bool empty_ok;

    if (n < 1) {
        return kv_bad(err, "ferry.kv: empty payload (needs an op byte)");
    }
    memset(&r, 0, sizeof(r));
    r.op = p[0];
    if (r.op < 1 || r.op > KV_OP_MAX) {
        return kv_bad(err, "unknown op %u", (unsigned)r.op);
    }
    p++;
    n--;
    need = kv_fixed(r.op);
    if (n < need) {
        return kv_bad(err,
                      "ferry.kv: payload of op %u needs %zu bytes "
                      "after op, got %zu",
                      (unsigned)r.op, need, n);
    }
    r.key = key;
    switch (r.op) {
    case KV_OP_GET:
        if (n != 0) {
            return kv_bad(err,
                          "ferry.kv: get takes nothing after op, got "
                          "%zu bytes",
                          n);
        }
        break;
    case KV_OP_PUT:
    case KV_OP_DELETE:
        r.cond = p[0];
        r.rev = be_get_u64(p + 1);
        if (r.cond > KV_COND_REV ||
            (r.op == KV_OP_DELETE && r.cond == KV_COND_ABSENT)) {
            return kv_bad(err, "ferry.kv: %s: bad cond %u",
                          kv_codec_op_name(r.op), (unsigned)r.cond);
        }
        if (r.op == KV_OP_PUT) {
            r.value.p = p + 9;
            r.value.len = n - 9;
        } else if (n != 9) {
            return kv_bad(err,
                          "ferry.kv: delete takes 9 bytes after op, "
                          "got %zu",
                          n);
        }
        break;
    case KV_OP_RANGE:
    case KV_OP_COUNT: {
        size_t elen;

        r.mode = p[0];
        if (r.mode > KV_MODE_RANGE) {
            return kv_bad(err, "ferry.kv: %s: bad mode %u",
                          kv_codec_op_name(r.op), (unsigned)r.mode);
        }
        elen = (size_t)p[1] << 8 | p[2];
        if (elen > KV_KEY_MAX) {
            return kv_bad(err, "ferry.kv: %s: end of %zu bytes, at most %d",
                          kv_codec_op_name(r.op), elen, KV_KEY_MAX);
        }
        if (n != need + elen) {
            return kv_bad(err,
                          "ferry.kv: payload of op %u with elen %zu "
                          "needs %zu bytes after op, got %zu",
                          (unsigned)r.op, elen, need + elen, n);
        }
        if (r.mode == KV_MODE_PREFIX && elen != 0) {
            return kv_bad(err, "ferry.kv: %s: a prefix takes no end",
                          kv_codec_op_name(r.op));
        }
        r.end.p = p + 3;
        r.end.len = elen;
        if (r.op == KV_OP_RANGE) {
            const uint8_t *q = p + 3 + elen;
            r.limit = be_get_u32(q);
            if (r.limit == 0) {
                r.limit = KV_LIMIT_DEFAULT;
            } else if (r.limit > KV_LIMIT_MAX) {
                return kv_bad(err, "ferry.kv: range: limit %u, at most %d",
                              (unsigned)r.limit, KV_LIMIT_MAX);
            }
            if (q[4] > 1) {
                return kv_bad(err,
                              "ferry.kv: range: keys_only is %u, not "
                              "0 or 1",
                              (unsigned)q[4]);
            }
            r.keys_only = q[4] == 1;
        }
        break;
    }
    case KV_OP_WATCH:
        if (n != need) {
            return kv_bad(err,
                          "ferry.kv: watch takes %zu bytes after op, "
                          "got %zu",
                          need, n);
        }
        if (p[0] > 1) {
            return kv_bad(err, "ferry.kv: watch: prefix is %u, not 0 or 1",
                          (unsigned)p[0]);
        }
        r.prefix = p[0] == 1;
        r.from_rev = be_get_u64(p + 1);
        r.wait_ms = be_get_u32(p + 9);
        r.max_events = be_get_u32(p + 13);
        if (r.max_events == 0) {
            r.max_events = KV_EVENTS_DEFAULT;
        } else if (r.max_events > KV_EVENTS_MAX) {
            return kv_bad(err, "ferry.kv: watch: max_events %u, at most %d",
                          (unsigned)r.max_events, KV_EVENTS_MAX);
        }
        break;
    }
    empty_ok = r.op == KV_OP_RANGE || r.op == KV_OP_COUNT ||
               (r.op == KV_OP_WATCH && r.prefix);
    if (key.len > KV_KEY_MAX || (key.len == 0 && !empty_ok)) {
        return kv_bad(err, "ferry.kv: key of %zu bytes, needs 1 to %d", key.len,
                      KV_KEY_MAX);
    }
    *out = r;
    return FERRY_OK;
}

static int
kv_cmp(struct slice a, struct slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.p, b.p, n) : 0;

    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

bool
kv_codec_in_range(const struct kv_req *r, struct slice k)
{
    if (r->mode == KV_MODE_PREFIX || r->op == KV_OP_WATCH) {
        if (r->op == KV_OP_WATCH && !r->prefix) {
            return kv_cmp(k, r->key) == 0;
        }
        return k.len >= r->key.len &&
               (r->key.len == 0 || memcmp(k.p, r->key.p, r->key.len) == 0);
    }
    return kv_cmp(k, r->key) >= 0 && (r->end.len == 0 || kv_cmp(k, r->end) < 0);
}

void
kv_codec_write_meta(uint8_t *dst, const struct kv_meta *m)
{
    dst = be_put_u64(dst, m->create_rev);
    dst = be_put_u64(dst, m->mod_rev);
    be_put_u64(dst, m->version);
}

bool
kv_codec_read_stored(const void *data, size_t len, struct kv_meta *m,
                     struct slice *value)
{
    const uint8_t *p = data;

    if (len < KV_META) {
        return false;
    }
    m->create_rev = be_get_u64(p);
    m->mod_rev = be_get_u64(p + 8);
    m->version = be_get_u64(p + 16);
    value->p = p + KV_META;
    value->len = len - KV_META;
    return true;
}

size_t
kv_codec_write_entry(uint8_t *dst, bool event, uint8_t type, struct slice key,
                     const struct kv_meta *m, struct slice value)
{
    uint8_t *p = dst;

    if (event) {
        *p++ = type;
    }
    p = be_put_u16(p, (uint16_t)key.len);
    if (key.len > 0) {
        memcpy(p, key.p, key.len);
    }
    p += key.len;
    kv_codec_write_meta(p, m);
    p += KV_META;
    p = be_put_u32(p, (uint32_t)value.len);
    if (value.len > 0) {
        memcpy(p, value.p, value.len);
    }
    p += value.len;
    return (size_t)(p - dst);
}

size_t
kv_codec_write_request(uint8_t *dst, const struct kv_req *r)
{
    size_t n = 1 + kv_fixed(r->op);
    uint8_t *p = dst;

    if (r->op == KV_OP_PUT) {
        n += r->value.len;
    } else if (r->op == KV_OP_RANGE || r->op == KV_OP_COUNT) {
        n += r->end.len;
    }
    if (dst == NULL) {
        return n;
    }
    *p++ = r->op;
    switch (r->op) {
    case KV_OP_PUT:
    case KV_OP_DELETE:
        *p++ = r->cond;
        p = be_put_u64(p, r->rev);
        if (r->op == KV_OP_PUT && r->value.len > 0) {
            memcpy(p, r->value.p, r->value.len);
        }
        break;
    case KV_OP_RANGE:
    case KV_OP_COUNT:
        *p++ = r->mode;
        p = be_put_u16(p, (uint16_t)r->end.len);
        if (r->end.len > 0) {
            memcpy(p, r->end.p, r->end.len);
        }
        p += r->end.len;
        if (r->op == KV_OP_RANGE) {
            p = be_put_u32(p, r->limit);
            *p = r->keys_only ? 1 : 0;
        }
        break;
    case KV_OP_WATCH:
        *p++ = r->prefix ? 1 : 0;
        p = be_put_u64(p, r->from_rev);
        p = be_put_u32(p, r->wait_ms);
        be_put_u32(p, r->max_events);
        break;
    }
    return n;
}

bool
kv_codec_next_entry(struct slice *rest, bool event, uint8_t *type,
                    struct slice *key, struct kv_meta *m, struct slice *value)
{
    const uint8_t *p = rest->p;
    size_t n = rest->len;
    size_t klen, vlen;

    if (event) {
        if (n < 1 || p[0] > 1) {
            return false;
        }
        *type = p[0];
        p++;
        n--;
    } else {
        *type = 0;
    }
    if (n < 2) {
        return false;
    }
    klen = (size_t)p[0] << 8 | p[1];
    if (n - 2 < klen + KV_META + 4) {
        return false;
    }
    key->p = p + 2;
    key->len = klen;
    p += 2 + klen;
    m->create_rev = be_get_u64(p);
    m->mod_rev = be_get_u64(p + 8);
    m->version = be_get_u64(p + 16);
    vlen = be_get_u32(p + KV_META);
    p += KV_META + 4;
    n -= 2 + klen + KV_META + 4;
    if (vlen > n) {
        return false;
    }
    value->p = p;
    value->len = vlen;
    rest->p = p + vlen;
    rest->len = n - vlen;
    return true;
}

ferry_err
kv_codec_decode_reply(unsigned op, struct slice payload, struct kv_reply *out)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len;
    struct kv_reply r;

    memset(&r, 0, sizeof(r));
    if (n < 1 || p[0] > KV_ST_EXISTS) {
        return FERRY_EPROTO;
    }
    r.status = p[0];
    p++;
    n--;
    switch (op) {
    case KV_OP_GET:
        if (n < 8) {
            return FERRY_EPROTO;
        }
        r.rev = be_get_u64(p);
        if (r.status == KV_ST_OK) {
            if (!kv_codec_read_stored(p + 8, n - 8, &r.meta, &r.value)) {
                return FERRY_EPROTO;
            }
        } else if (n != 8) {
            return FERRY_EPROTO;
        }
        break;
    case KV_OP_PUT:
    case KV_OP_DELETE:
        if (r.status == KV_ST_NOT_FOUND && n == 0) {
            break;
        }
        if (n != 8) {
            return FERRY_EPROTO;
        }
        r.rev = be_get_u64(p);
        break;
    case KV_OP_COUNT:
        if (n != 16) {
            return FERRY_EPROTO;
        }
        r.rev = be_get_u64(p);
        r.count = be_get_u64(p + 8);
        break;
    case KV_OP_RANGE:
    case KV_OP_WATCH: {
        bool event = op == KV_OP_WATCH;
        size_t head = event ? 12 : 13;
        struct slice rest, k, v;
        struct kv_meta m;
        uint8_t t;

        if (n < head) {
            return FERRY_EPROTO;
        }
        r.rev = be_get_u64(p);
        if (!event) {
            if (p[8] > 1) {
                return FERRY_EPROTO;
            }
            r.more = p[8] == 1;
        }
        r.n = be_get_u32(p + head - 4);
        r.entries.p = p + head;
        r.entries.len = n - head;
        rest = r.entries;
        for (uint32_t i = 0; i < r.n; i++) {
            if (!kv_codec_next_entry(&rest, event, &t, &k, &m, &v)) {
                return FERRY_EPROTO;
            }
        }
        if (rest.len != 0) {
            return FERRY_EPROTO;
        }
        break;
    }
    default:
        return FERRY_EPROTO;
    }
    *out = r;
    return FERRY_OK;
}
