/* SPDX-License-Identifier: MIT */
/*
 * topic.c - libferry's helpers for ferry.topic (include/ferry_servants.h,
 * docs/topics.md): the public request encoder and reply decoder, which
 * wrap the daemon's own codec (src/topic/topic_codec.c, linked into
 * libferry with the trie's subject checks it uses, its header private
 * because it speaks in slices), and one synchronous call per operation.
 * A publish's subject and a subscribe's pattern travel as the routing
 * key. Tested against tests/vectors/client_payloads.json
 * (tests/unit/test_servants.c) and fuzzed
 * (tests/fuzz/fuzz_servant_replies.c).
 */
#include "ferry_servants.h"

#include <stdlib.h>
#include <string.h>

#include "topic/topic_codec.h"

/* A POLL's call deadline beyond its wait, as the CLI gives it. */
#define FERRY_TOPIC_POLL_SLACK_MS 5000

const char *
ferry_topic_status_name(unsigned status)
{
    static const char *const names[] = {"OK", "EMPTY", "?", "NOT_FOUND"};

    return status < 4 ? names[status] : "?";
}

const char *
ferry_topic_policy_name(unsigned policy)
{
    static const char *const names[] = {"drop_oldest", "close"};

    return policy < 2 ? names[policy] : "?";
}

static struct slice
topic_bytes(const void *p, size_t n)
{
    struct slice s = {p, p != NULL ? n : 0};

    return s;
}

static struct slice
topic_text(const char *s)
{
    return topic_bytes(s, s != NULL ? strlen(s) : 0);
}

size_t
ferry_topic_encode(const struct ferry_topic_req *req, uint8_t *dst, size_t cap)
{
    struct topic_req r;
    size_t n;

    if (req->op < FERRY_TOPIC_PUBLISH || req->op > FERRY_TOPIC_STATS) {
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.op = (uint8_t)req->op;
    switch (req->op) {
    case FERRY_TOPIC_PUBLISH:
        r.message = topic_bytes(req->payload, req->payload_len);
        break;
    case FERRY_TOPIC_SUBSCRIBE:
        r.group = topic_text(req->group);
        if (r.group.len > TOPIC_GROUP_MAX || req->policy > FERRY_TOPIC_CLOSE) {
            return 0;
        }
        r.max_pending = req->max_pending;
        r.policy = (uint8_t)req->policy;
        break;
    case FERRY_TOPIC_POLL:
        r.sub_id = req->sub_id;
        r.wait_ms = req->wait_ms;
        r.max_msgs = req->max_msgs;
        break;
    case FERRY_TOPIC_UNSUBSCRIBE:
        r.sub_id = req->sub_id;
        break;
    default: /* STATS: of one subscription, or (0) the totals */
        r.one = req->sub_id != 0;
        r.sub_id = req->sub_id;
        break;
    }
    n = topic_codec_write_request(NULL, &r);
    if (n <= cap) {
        topic_codec_write_request(dst, &r);
    }
    return n;
}

ferry_err
ferry_topic_decode(unsigned op, const void *reply, size_t len,
                   struct ferry_topic_reply *out)
{
    struct topic_reply r;

    memset(out, 0, sizeof(*out));
    /* The codec takes of each op only the statuses it answers. */
    if (op < FERRY_TOPIC_PUBLISH || op > FERRY_TOPIC_STATS ||
        topic_codec_decode_reply(op, topic_bytes(reply, len), &r) != FERRY_OK) {
        return FERRY_EINVALID_ARGUMENT;
    }
    out->op = op;
    out->status = r.status;
    out->receivers = r.receivers;
    out->sub_id = r.sub_id;
    out->dropped = r.dropped;
    if (op == FERRY_TOPIC_POLL && r.status == FERRY_TOPIC_OK) {
        out->n = r.n;
        out->messages = r.messages.p;
        out->messages_len = r.messages.len;
    }
    if (op == FERRY_TOPIC_STATS && r.status == FERRY_TOPIC_OK) {
        out->json = (const char *)r.json.p;
        out->json_len = r.json.len;
    }
    return FERRY_OK;
}

bool
ferry_topic_next(const struct ferry_topic_reply *r, size_t *pos,
                 struct ferry_topic_msg *m)
{
    struct slice rest;
    struct topic_msg_entry e;

    if (r->messages == NULL || *pos >= r->messages_len) {
        return false;
    }
    rest.p = r->messages + *pos;
    rest.len = r->messages_len - *pos;
    if (!topic_codec_next_msg(&rest, &e)) {
        return false;
    }
    m->seq = e.seq;
    m->subject = (const char *)e.subject.p;
    m->subject_len = e.subject.len;
    m->payload = e.payload.p;
    m->payload_len = e.payload.len;
    *pos = (size_t)(rest.p - r->messages);
    return true;
}

/* ------------------------------------------------------------------ calls */

ferry_err
ferry_topic_call(struct ferry_client *c, const struct ferry_topic_req *req,
                 uint32_t deadline_ms, struct ferry_reply *raw,
                 struct ferry_topic_reply *out)
{
    uint8_t small[512];
    uint8_t *buf = small;
    const char *key = req->op == FERRY_TOPIC_PUBLISH     ? req->subject
                      : req->op == FERRY_TOPIC_SUBSCRIBE ? req->pattern
                                                         : NULL;
    size_t n;
    ferry_err e;

    memset(raw, 0, sizeof(*raw));
    if (key == NULL) {
        key = "";
    }
    n = ferry_topic_encode(req, small, sizeof(small));
    if (n == 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (n > sizeof(small)) {
        buf = malloc(n);
        if (buf == NULL) {
            return FERRY_ENOMEM;
        }
        ferry_topic_encode(req, buf, n);
    }
    struct ferry_request r = {.service = "ferry.topic",
                              .key = key,
                              .key_len = strlen(key),
                              .payload = buf,
                              .payload_len = n,
                              .deadline_ms = deadline_ms};
    e = ferry_call(c, &r, raw);
    if (buf != small) {
        free(buf);
    }
    if (e != FERRY_OK) {
        return e;
    }
    return ferry_topic_decode(req->op, raw->data, raw->len, out);
}

ferry_err
ferry_topic_publish(struct ferry_client *c, const char *subject,
                    const void *payload, size_t payload_len,
                    struct ferry_reply *raw, struct ferry_topic_reply *out)
{
    struct ferry_topic_req q = {.op = FERRY_TOPIC_PUBLISH,
                                .subject = subject,
                                .payload = payload,
                                .payload_len = payload_len};

    return ferry_topic_call(c, &q, 0, raw, out);
}

ferry_err
ferry_topic_subscribe(struct ferry_client *c, const char *pattern,
                      const char *group, uint32_t max_pending, unsigned policy,
                      struct ferry_reply *raw, struct ferry_topic_reply *out)
{
    struct ferry_topic_req q = {.op = FERRY_TOPIC_SUBSCRIBE,
                                .pattern = pattern,
                                .group = group,
                                .max_pending = max_pending,
                                .policy = policy};

    return ferry_topic_call(c, &q, 0, raw, out);
}

ferry_err
ferry_topic_poll(struct ferry_client *c, uint64_t sub_id, uint32_t wait_ms,
                 uint32_t max_msgs, struct ferry_reply *raw,
                 struct ferry_topic_reply *out)
{
    struct ferry_topic_req q = {.op = FERRY_TOPIC_POLL,
                                .sub_id = sub_id,
                                .wait_ms = wait_ms,
                                .max_msgs = max_msgs};
    uint32_t deadline = wait_ms > UINT32_MAX - FERRY_TOPIC_POLL_SLACK_MS
                            ? UINT32_MAX
                            : wait_ms + FERRY_TOPIC_POLL_SLACK_MS;

    return ferry_topic_call(c, &q, deadline, raw, out);
}

ferry_err
ferry_topic_unsubscribe(struct ferry_client *c, uint64_t sub_id,
                        struct ferry_reply *raw, struct ferry_topic_reply *out)
{
    struct ferry_topic_req q = {.op = FERRY_TOPIC_UNSUBSCRIBE,
                                .sub_id = sub_id};

    return ferry_topic_call(c, &q, 0, raw, out);
}

ferry_err
ferry_topic_stats(struct ferry_client *c, uint64_t sub_id,
                  struct ferry_reply *raw, struct ferry_topic_reply *out)
{
    struct ferry_topic_req q = {.op = FERRY_TOPIC_STATS, .sub_id = sub_id};

    return ferry_topic_call(c, &q, 0, raw, out);
}
