/* SPDX-License-Identifier: MIT */
/*
 * queue_codec.c - ferry.queue's payloads: the request decoder (every
 * length checked before it is read, nothing allocated), the encoders, the
 * reply decoder, the PEEK entries and the stored job's layout.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "queue/queue_codec.h"

static const char *const queue_op_names[] = {
    "?",     "push",   "reserve", "ack",    "release",
    "touch", "bury",   "peek",    "stats",  "redrive",
    "pause", "resume", "purge",   "delete", "configure",
};

const char *
queue_codec_op_name(unsigned op)
{
    return op >= 1 && op <= QUEUE_OP_MAX ? queue_op_names[op] : "?";
}

bool
queue_name_is_valid(struct slice name)
{
    if (name.len == 0 || name.len > QUEUE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < name.len; i++) {
        uint8_t c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static ferry_err
queue_bad(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, QUEUE_CODEC_ERR_SIZE, fmt, ap);
    va_end(ap);
    return FERRY_EINVALID_ARGUMENT;
}

/* Bytes after the op that op's fixed part needs, and whether more may
 * follow. */
static size_t
queue_fixed(unsigned op, bool *more)
{
    *more = false;
    switch (op) {
    case QUEUE_OP_PUSH:
        *more = true;
        return 2 + 4 + 4 + 2 + 1;
    case QUEUE_OP_RESERVE:
        return 8;
    case QUEUE_OP_ACK:
        return 16;
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_TOUCH:
        return 20;
    case QUEUE_OP_BURY:
        *more = true;
        return 16;
    case QUEUE_OP_PEEK:
        return 3;
    case QUEUE_OP_REDRIVE:
        return 4;
    case QUEUE_OP_CONFIGURE:
        *more = true;
        return 0;
    }
    return 0;
}

ferry_err
queue_codec_decode(struct slice key, struct slice payload,
                   struct queue_req *out, char *err)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len;
    struct queue_req r;
    size_t need;
    bool more;

    if (n < 1) {
        return queue_bad(err, "ferry.queue: empty payload (needs an op byte)");
    }
    memset(&r, 0, sizeof(r));
    r.op = p[0];
    if (r.op < 1 || r.op > QUEUE_OP_MAX) {
        return queue_bad(err, "ferry.queue: unknown op %u", (unsigned)r.op);
    }
    p++;
    n--;
    need = queue_fixed(r.op, &more);
    if (n < need || (!more && n != need)) {
        return queue_bad(err,
                         "ferry.queue: %s takes %s%zu bytes after op, "
                         "got %zu",
                         queue_codec_op_name(r.op), more ? "at least " : "",
                         need, n);
    }
    if (!(r.op == QUEUE_OP_STATS && key.len == 0) &&
        !queue_name_is_valid(key)) {
        return queue_bad(err,
                         "ferry.queue: the routing key must be a queue "
                         "name: 1 to %d bytes of A-Z a-z 0-9 _ . : -",
                         QUEUE_NAME_MAX);
    }
    r.queue = key;
    switch (r.op) {
    case QUEUE_OP_PUSH: {
        size_t dlen = p[12];
        r.priority = (int16_t)be_get_u16(p);
        r.delay_ms = be_get_u32(p + 2);
        r.visibility_ms = be_get_u32(p + 6);
        r.max_deliveries = be_get_u16(p + 10);
        if (dlen > QUEUE_DEDUP_MAX) {
            return queue_bad(err,
                             "ferry.queue: push: dedup id of %zu bytes, "
                             "at most %d",
                             dlen, QUEUE_DEDUP_MAX);
        }
        if (n < need + dlen) {
            return queue_bad(err,
                             "ferry.queue: push: dedup id of %zu bytes "
                             "but %zu left",
                             dlen, n - need);
        }
        r.dedup.p = p + need;
        r.dedup.len = dlen;
        r.payload.p = p + need + dlen;
        r.payload.len = n - need - dlen;
        break;
    }
    case QUEUE_OP_RESERVE:
        r.wait_ms = be_get_u32(p);
        r.visibility_ms = be_get_u32(p + 4);
        break;
    case QUEUE_OP_ACK:
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_TOUCH:
    case QUEUE_OP_BURY:
        r.id = be_get_u64(p);
        r.token = be_get_u64(p + 8);
        if (r.op == QUEUE_OP_RELEASE) {
            r.delay_ms = be_get_u32(p + 16);
        } else if (r.op == QUEUE_OP_TOUCH) {
            r.visibility_ms = be_get_u32(p + 16);
        } else if (r.op == QUEUE_OP_BURY) {
            r.reason.p = p + 16;
            r.reason.len = n - 16;
            if (r.reason.len > QUEUE_REASON_MAX) {
                return queue_bad(err,
                                 "ferry.queue: bury: reason of %zu bytes, "
                                 "at most %d",
                                 r.reason.len, QUEUE_REASON_MAX);
            }
        }
        break;
    case QUEUE_OP_PEEK:
        r.which = p[0];
        r.limit = be_get_u16(p + 1);
        if (r.which > QUEUE_PEEK_RESERVED) {
            return queue_bad(err, "ferry.queue: peek: bad kind %u",
                             (unsigned)r.which);
        }
        if (r.limit == 0) {
            r.limit = QUEUE_PEEK_DEFAULT;
        } else if (r.limit > QUEUE_PEEK_MAX) {
            return queue_bad(err, "ferry.queue: peek: limit %u, at most %d",
                             (unsigned)r.limit, QUEUE_PEEK_MAX);
        }
        break;
    case QUEUE_OP_REDRIVE:
        r.limit = be_get_u32(p);
        break;
    case QUEUE_OP_CONFIGURE:
        if (n == 0 || n > QUEUE_SETTINGS_MAX) {
            return queue_bad(err,
                             "ferry.queue: configure takes a JSON object "
                             "of 1 to %d bytes, got %zu",
                             QUEUE_SETTINGS_MAX, n);
        }
        r.settings.p = p;
        r.settings.len = n;
        break;
    }
    *out = r;
    return FERRY_OK;
}

size_t
queue_codec_write_request(uint8_t *dst, const struct queue_req *r)
{
    bool more;
    size_t n = 1 + queue_fixed(r->op, &more);
    uint8_t *p;

    switch (r->op) {
    case QUEUE_OP_PUSH:
        n += r->dedup.len + r->payload.len;
        break;
    case QUEUE_OP_BURY:
        n += r->reason.len;
        break;
    case QUEUE_OP_CONFIGURE:
        n += r->settings.len;
        break;
    }
    if (dst == NULL) {
        return n;
    }
    p = dst;
    *p++ = r->op;
    switch (r->op) {
    case QUEUE_OP_PUSH:
        p = be_put_u16(p, (uint16_t)r->priority);
        p = be_put_u32(p, r->delay_ms);
        p = be_put_u32(p, r->visibility_ms);
        p = be_put_u16(p, r->max_deliveries);
        *p++ = (uint8_t)r->dedup.len;
        if (r->dedup.len > 0) {
            memcpy(p, r->dedup.p, r->dedup.len);
            p += r->dedup.len;
        }
        if (r->payload.len > 0) {
            memcpy(p, r->payload.p, r->payload.len);
        }
        break;
    case QUEUE_OP_RESERVE:
        p = be_put_u32(p, r->wait_ms);
        be_put_u32(p, r->visibility_ms);
        break;
    case QUEUE_OP_ACK:
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_TOUCH:
    case QUEUE_OP_BURY:
        p = be_put_u64(p, r->id);
        p = be_put_u64(p, r->token);
        if (r->op == QUEUE_OP_RELEASE) {
            be_put_u32(p, r->delay_ms);
        } else if (r->op == QUEUE_OP_TOUCH) {
            be_put_u32(p, r->visibility_ms);
        } else if (r->op == QUEUE_OP_BURY && r->reason.len > 0) {
            memcpy(p, r->reason.p, r->reason.len);
        }
        break;
    case QUEUE_OP_PEEK:
        *p++ = r->which;
        be_put_u16(p, (uint16_t)r->limit);
        break;
    case QUEUE_OP_REDRIVE:
        be_put_u32(p, r->limit);
        break;
    case QUEUE_OP_CONFIGURE:
        if (r->settings.len > 0) {
            memcpy(p, r->settings.p, r->settings.len);
        }
        break;
    }
    return n;
}

ferry_err
queue_codec_decode_reply(unsigned op, struct slice payload,
                         struct queue_reply *out)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len;

    memset(out, 0, sizeof(*out));
    if (n < 1 || p[0] > QUEUE_ST_NOT_FOUND) {
        return FERRY_EPROTO;
    }
    out->status = p[0];
    if (out->status != QUEUE_ST_OK) {
        return n == 1 ? FERRY_OK : FERRY_EPROTO;
    }
    p++;
    n--;
    switch (op) {
    case QUEUE_OP_PUSH:
        if (n != 9 || p[8] > 1) {
            return FERRY_EPROTO;
        }
        out->id = be_get_u64(p);
        out->dup = p[8] == 1;
        return FERRY_OK;
    case QUEUE_OP_RESERVE:
        if (n < QUEUE_RESERVE_HEAD - 1) {
            return FERRY_EPROTO;
        }
        out->id = be_get_u64(p);
        out->token = be_get_u64(p + 8);
        out->attempts = be_get_u32(p + 16);
        out->priority = (int16_t)be_get_u16(p + 20);
        out->payload.p = p + 22;
        out->payload.len = n - 22;
        return FERRY_OK;
    case QUEUE_OP_TOUCH:
        if (n != 4) {
            return FERRY_EPROTO;
        }
        out->deadline_ms = be_get_u32(p);
        return FERRY_OK;
    case QUEUE_OP_REDRIVE:
    case QUEUE_OP_PURGE:
        if (n != 8) {
            return FERRY_EPROTO;
        }
        out->count = be_get_u64(p);
        return FERRY_OK;
    case QUEUE_OP_PEEK: {
        struct slice rest;
        struct queue_peek_entry e;
        if (n < 2) {
            return FERRY_EPROTO;
        }
        out->n = be_get_u16(p);
        rest.p = p + 2;
        rest.len = n - 2;
        out->entries = rest;
        for (uint32_t i = 0; i < out->n; i++) {
            if (!queue_codec_next_peek_entry(&rest, &e)) {
                return FERRY_EPROTO;
            }
        }
        return rest.len == 0 ? FERRY_OK : FERRY_EPROTO;
    }
    case QUEUE_OP_STATS:
    case QUEUE_OP_CONFIGURE:
        out->json.p = p;
        out->json.len = n;
        return FERRY_OK;
    case QUEUE_OP_ACK:
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_BURY:
    case QUEUE_OP_PAUSE:
    case QUEUE_OP_RESUME:
    case QUEUE_OP_DELETE:
        return n == 0 ? FERRY_OK : FERRY_EPROTO;
    }
    return FERRY_EPROTO;
}

size_t
queue_codec_write_peek_entry(uint8_t *dst, const struct queue_peek_entry *e)
{
    uint8_t *p = dst;

    p = be_put_u64(p, e->id);
    p = be_put_u32(p, e->attempts);
    p = be_put_u16(p, (uint16_t)e->priority);
    *p++ = e->state;
    p = be_put_u64(p, e->age_ms);
    p = be_put_u16(p, (uint16_t)e->reason.len);
    p = be_put_u32(p, (uint32_t)e->payload.len);
    if (e->reason.len > 0) {
        memcpy(p, e->reason.p, e->reason.len);
        p += e->reason.len;
    }
    if (e->payload.len > 0) {
        memcpy(p, e->payload.p, e->payload.len);
        p += e->payload.len;
    }
    return (size_t)(p - dst);
}

bool
queue_codec_next_peek_entry(struct slice *rest, struct queue_peek_entry *e)
{
    const uint8_t *p = rest->p;
    size_t rlen, plen;

    if (rest->len < QUEUE_PEEK_ENTRY_HEAD) {
        return false;
    }
    e->id = be_get_u64(p);
    e->attempts = be_get_u32(p + 8);
    e->priority = (int16_t)be_get_u16(p + 12);
    e->state = p[14];
    e->age_ms = be_get_u64(p + 15);
    rlen = be_get_u16(p + 23);
    plen = be_get_u32(p + 25);
    if (e->state > QUEUE_RESERVED || rest->len - QUEUE_PEEK_ENTRY_HEAD < rlen ||
        rest->len - QUEUE_PEEK_ENTRY_HEAD - rlen < plen) {
        return false;
    }
    e->reason.p = p + QUEUE_PEEK_ENTRY_HEAD;
    e->reason.len = rlen;
    e->payload.p = p + QUEUE_PEEK_ENTRY_HEAD + rlen;
    e->payload.len = plen;
    rest->p += QUEUE_PEEK_ENTRY_HEAD + rlen + plen;
    rest->len -= QUEUE_PEEK_ENTRY_HEAD + rlen + plen;
    return true;
}

void
queue_codec_write_rec_head(uint8_t *dst, const struct queue_rec *r)
{
    uint8_t *p = dst;

    *p++ = r->state;
    *p++ = 0; /* flags, for later */
    p = be_put_u16(p, (uint16_t)r->priority);
    p = be_put_u32(p, r->attempts);
    p = be_put_u16(p, r->max_deliveries);
    p = be_put_u32(p, r->visibility_ms);
    p = be_put_u64(p, r->at_ms);
    p = be_put_u64(p, r->token);
    p = be_put_u64(p, r->pushed_ms);
    p = be_put_u32(p, r->origin);
    be_put_u16(p, (uint16_t)r->reason.len);
}

size_t
queue_codec_write_rec(uint8_t *dst, const struct queue_rec *r)
{
    uint8_t *p = dst + QUEUE_REC_HEAD;

    queue_codec_write_rec_head(dst, r);
    if (r->reason.len > 0) {
        memcpy(p, r->reason.p, r->reason.len);
        p += r->reason.len;
    }
    if (r->payload.len > 0) {
        memcpy(p, r->payload.p, r->payload.len);
        p += r->payload.len;
    }
    return (size_t)(p - dst);
}

bool
queue_codec_read_rec(const void *data, size_t len, struct queue_rec *r)
{
    const uint8_t *p = data;
    size_t rlen;

    if (len < QUEUE_REC_HEAD || p[0] > QUEUE_RESERVED) {
        return false;
    }
    r->state = p[0];
    r->priority = (int16_t)be_get_u16(p + 2);
    r->attempts = be_get_u32(p + 4);
    r->max_deliveries = be_get_u16(p + 8);
    r->visibility_ms = be_get_u32(p + 10);
    r->at_ms = be_get_u64(p + 14);
    r->token = be_get_u64(p + 22);
    r->pushed_ms = be_get_u64(p + 30);
    r->origin = be_get_u32(p + 38);
    rlen = be_get_u16(p + 42);
    if (len - QUEUE_REC_HEAD < rlen) {
        return false;
    }
    r->reason.p = p + QUEUE_REC_HEAD;
    r->reason.len = rlen;
    r->payload.p = p + QUEUE_REC_HEAD + rlen;
    r->payload.len = len - QUEUE_REC_HEAD - rlen;
    return true;
}

void
queue_codec_key(uint8_t dst[QUEUE_KEY_LEN], uint32_t qid, uint64_t id)
{
    be_put_u64(be_put_u32(dst, qid), id);
}
