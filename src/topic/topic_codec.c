/* SPDX-License-Identifier: MIT */
/*
 * topic_codec.c - ferry.topic's payloads: the request decoder (every
 * length checked before it is read, nothing allocated), the request
 * encoder, the POLL entries and the reply decoder.
 */
#include "topic/topic_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topic/trie.h"

static const char *const topic_op_names[] = {
    "?", "publish", "subscribe", "poll", "unsubscribe", "stats",
};

const char *
topic_codec_op_name(unsigned op)
{
    return op >= 1 && op <= TOPIC_OP_MAX ? topic_op_names[op] : "?";
}

bool
topic_subject_is_reserved(struct slice subject)
{
    size_t n = sizeof(TOPIC_RESERVED) - 1;

    return subject.len >= n && memcmp(subject.p, TOPIC_RESERVED, n) == 0 &&
           (subject.len == n || subject.p[n] == '.');
}

bool
topic_group_is_valid(struct slice g)
{
    if (g.len == 0 || g.len > TOPIC_GROUP_MAX) {
        return false;
    }
    for (size_t i = 0; i < g.len; i++) {
        if (g.p[i] < 0x21 || g.p[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static ferry_err
topic_bad(char *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, TOPIC_CODEC_ERR_SIZE, fmt, ap);
    va_end(ap);
    return FERRY_EINVALID_ARGUMENT;
}

/* Bytes after the op that op needs exactly (SUBSCRIBE: before its group;
 * STATS: either this or 8 more). */
static size_t
topic_fixed(unsigned op)
{
    switch (op) {
    case TOPIC_OP_SUBSCRIBE:
        return 1 + 4 + 1;
    case TOPIC_OP_POLL:
        return 8 + 4 + 4;
    case TOPIC_OP_UNSUBSCRIBE:
        return 8;
    default:
        return 0;
    }
}

ferry_err
topic_codec_decode(struct slice key, struct slice payload,
                   struct topic_req *out, char *err)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len, need;
    struct topic_req r;

    err[0] = '\0';
    if (n < 1) {
        return topic_bad(err, "ferry.topic: empty payload (needs an op byte)");
    }
    memset(&r, 0, sizeof(r));
    r.op = p[0];
    if (r.op < 1 || r.op > TOPIC_OP_MAX) {
        return topic_bad(err, "ferry.topic: unknown op %u", (unsigned)r.op);
    }
    p++;
    n--;
    need = topic_fixed(r.op);
    switch (r.op) {
    case TOPIC_OP_PUBLISH:
        if (!topic_subject_is_valid(key)) {
            return topic_bad(err,
                             "ferry.topic: publish: the routing key must be "
                             "a subject: 1 to %d bytes of dot-separated "
                             "tokens, no '*' or '>'",
                             TOPIC_MAX_LEN);
        }
        if (topic_subject_is_reserved(key)) {
            return topic_bad(err, "ferry.topic: publish: subjects under "
                                  "'ferry.' are ferryd's own events; only "
                                  "ferryd publishes them");
        }
        r.subject = key;
        r.message = (struct slice){p, n};
        break;
    case TOPIC_OP_SUBSCRIBE: {
        size_t glen;

        if (!topic_pattern_is_valid(key)) {
            return topic_bad(err,
                             "ferry.topic: subscribe: the routing key must "
                             "be a pattern: 1 to %d bytes of dot-separated "
                             "tokens, '*' for one, a last '>' for the rest",
                             TOPIC_MAX_LEN);
        }
        if (n < need) {
            return topic_bad(err,
                             "ferry.topic: subscribe takes at least %zu bytes "
                             "after op, got %zu",
                             need, n);
        }
        glen = p[0];
        if (n != need + glen) {
            return topic_bad(err,
                             "ferry.topic: subscribe with a group of %zu "
                             "bytes takes %zu bytes after op, got %zu",
                             glen, need + glen, n);
        }
        r.pattern = key;
        r.group = (struct slice){p + 1, glen};
        if (glen > 0 && !topic_group_is_valid(r.group)) {
            return topic_bad(err, "ferry.topic: subscribe: a group name is "
                                  "printable ASCII, no spaces");
        }
        r.max_pending = be_get_u32(p + 1 + glen);
        r.policy = p[1 + glen + 4];
        if (r.policy > TOPIC_POLICY_CLOSE) {
            return topic_bad(err,
                             "ferry.topic: subscribe: policy %u is neither 0 "
                             "(drop oldest) nor 1 (close)",
                             (unsigned)r.policy);
        }
        break;
    }
    case TOPIC_OP_POLL:
    case TOPIC_OP_UNSUBSCRIBE:
        if (n != need) {
            return topic_bad(err,
                             "ferry.topic: %s takes %zu bytes after op, got "
                             "%zu",
                             topic_codec_op_name(r.op), need, n);
        }
        r.sub_id = be_get_u64(p);
        if (r.op == TOPIC_OP_POLL) {
            r.wait_ms = be_get_u32(p + 8);
            r.max_msgs = be_get_u32(p + 12);
        }
        break;
    case TOPIC_OP_STATS:
        if (n != 0 && n != 8) {
            return topic_bad(err,
                             "ferry.topic: stats takes 0 or 8 bytes after "
                             "op, got %zu",
                             n);
        }
        if (n == 8) {
            r.one = true;
            r.sub_id = be_get_u64(p);
        }
        break;
    }
    *out = r;
    return FERRY_OK;
}

size_t
topic_codec_write_request(uint8_t *dst, const struct topic_req *r)
{
    size_t n = 1;

    switch (r->op) {
    case TOPIC_OP_PUBLISH:
        n += r->message.len;
        break;
    case TOPIC_OP_SUBSCRIBE:
        n += topic_fixed(r->op) + r->group.len;
        break;
    case TOPIC_OP_POLL:
    case TOPIC_OP_UNSUBSCRIBE:
        n += topic_fixed(r->op);
        break;
    case TOPIC_OP_STATS:
        n += r->one ? 8 : 0;
        break;
    }
    if (dst == NULL) {
        return n;
    }
    dst[0] = r->op;
    switch (r->op) {
    case TOPIC_OP_PUBLISH:
        if (r->message.len > 0) {
            memcpy(dst + 1, r->message.p, r->message.len);
        }
        break;
    case TOPIC_OP_SUBSCRIBE:
        dst[1] = (uint8_t)r->group.len;
        if (r->group.len > 0) {
            memcpy(dst + 2, r->group.p, r->group.len);
        }
        be_put_u32(dst + 2 + r->group.len, r->max_pending);
        dst[6 + r->group.len] = r->policy;
        break;
    case TOPIC_OP_POLL:
        be_put_u32(be_put_u32(be_put_u64(dst + 1, r->sub_id), r->wait_ms),
                   r->max_msgs);
        break;
    case TOPIC_OP_UNSUBSCRIBE:
        be_put_u64(dst + 1, r->sub_id);
        break;
    case TOPIC_OP_STATS:
        if (r->one) {
            be_put_u64(dst + 1, r->sub_id);
        }
        break;
    }
    return n;
}

size_t
topic_codec_write_msg(uint8_t *dst, uint64_t seq, struct slice subject,
                      struct slice payload)
{
    uint8_t *p = be_put_u64(dst, seq);

    p = be_put_u16(p, (uint16_t)subject.len);
    memcpy(p, subject.p, subject.len);
    p = be_put_u32(p + subject.len, (uint32_t)payload.len);
    if (payload.len > 0) {
        memcpy(p, payload.p, payload.len);
    }
    return TOPIC_MSG_HEAD + subject.len + payload.len;
}

bool
topic_codec_next_msg(struct slice *rest, struct topic_msg_entry *e)
{
    const uint8_t *p = rest->p;
    size_t n = rest->len, slen, plen;

    if (n < TOPIC_MSG_HEAD) {
        return false;
    }
    slen = be_get_u16(p + 8);
    if (n - 10 < slen || n - 10 - slen < 4) {
        return false;
    }
    plen = be_get_u32(p + 10 + slen);
    if (n - TOPIC_MSG_HEAD - slen < plen) {
        return false;
    }
    e->seq = be_get_u64(p);
    e->subject = (struct slice){p + 10, slen};
    e->payload = (struct slice){p + TOPIC_MSG_HEAD + slen, plen};
    rest->p = p + TOPIC_MSG_HEAD + slen + plen;
    rest->len = n - TOPIC_MSG_HEAD - slen - plen;
    return true;
}

ferry_err
topic_codec_decode_reply(unsigned op, struct slice payload,
                         struct topic_reply *out)
{
    const uint8_t *p = payload.p;
    size_t n = payload.len;
    struct topic_reply r;

    if (n < 1) {
        return FERRY_EPROTO;
    }
    memset(&r, 0, sizeof(r));
    r.status = p[0];
    switch (op) {
    case TOPIC_OP_PUBLISH:
        if (r.status != TOPIC_ST_OK || n != 5) {
            return FERRY_EPROTO;
        }
        r.receivers = be_get_u32(p + 1);
        break;
    case TOPIC_OP_SUBSCRIBE:
        if (r.status != TOPIC_ST_OK || n != 9) {
            return FERRY_EPROTO;
        }
        r.sub_id = be_get_u64(p + 1);
        break;
    case TOPIC_OP_POLL:
        if (r.status == TOPIC_ST_NOT_FOUND) {
            if (n != 1) {
                return FERRY_EPROTO;
            }
            break;
        }
        if (r.status == TOPIC_ST_EMPTY) {
            if (n != 9) {
                return FERRY_EPROTO;
            }
            r.dropped = be_get_u64(p + 1);
            break;
        }
        if (r.status != TOPIC_ST_OK || n < TOPIC_POLL_HEAD) {
            return FERRY_EPROTO;
        }
        r.dropped = be_get_u64(p + 1);
        r.n = be_get_u32(p + 9);
        if (r.n == 0) {
            /* No message is EMPTY, never OK. */
            return FERRY_EPROTO;
        }
        r.messages = (struct slice){p + TOPIC_POLL_HEAD, n - TOPIC_POLL_HEAD};
        {
            /* Checked here, so a reader of the entries can trust them. */
            struct slice rest = r.messages;
            struct topic_msg_entry e;

            for (uint32_t i = 0; i < r.n; i++) {
                if (!topic_codec_next_msg(&rest, &e)) {
                    return FERRY_EPROTO;
                }
            }
            if (rest.len != 0) {
                return FERRY_EPROTO;
            }
        }
        break;
    case TOPIC_OP_UNSUBSCRIBE:
        if (n != 1 ||
            (r.status != TOPIC_ST_OK && r.status != TOPIC_ST_NOT_FOUND)) {
            return FERRY_EPROTO;
        }
        break;
    case TOPIC_OP_STATS:
        if (r.status == TOPIC_ST_NOT_FOUND && n == 1) {
            break;
        }
        if (r.status != TOPIC_ST_OK) {
            return FERRY_EPROTO;
        }
        r.json = (struct slice){p + 1, n - 1};
        break;
    default:
        return FERRY_EPROTO;
    }
    *out = r;
    return FERRY_OK;
}
