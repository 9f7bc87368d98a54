/* SPDX-License-Identifier: MIT */
/*
 * queue.c - libferry's helpers for ferry.queue (include/ferry_servants.h,
 * docs/queues.md): the public request encoder and reply decoder, which
 * wrap the daemon's own codec (src/queue/queue_codec.c, linked into
 * libferry, its header private because it speaks in slices), and one
 * synchronous call per operation. The queue travels as the routing key.
 * Tested against tests/vectors/client_payloads.json
 * (tests/unit/test_servants.c) and fuzzed
 * (tests/fuzz/fuzz_servant_replies.c).
 */
#include "ferry_servants.h"

#include <stdlib.h>
#include <string.h>

#include "queue/queue_codec.h"

/* A RESERVE's call deadline beyond its wait, as the CLI gives it. */
#define FERRY_QUEUE_RESERVE_SLACK_MS 5000

const char *
ferry_queue_status_name(unsigned status)
{
    static const char *const names[] = {"OK", "EMPTY", "STALE", "NOT_FOUND"};

    return status < 4 ? names[status] : "?";
}

const char *
ferry_queue_state_name(unsigned state)
{
    static const char *const names[] = {"ready", "delayed", "reserved"};

    return state < 3 ? names[state] : "?";
}

static struct slice
queue_bytes(const void *p, size_t n)
{
    struct slice s = {p, p != NULL ? n : 0};

    return s;
}

size_t
ferry_queue_encode(const struct ferry_queue_req *req, uint8_t *dst, size_t cap)
{
    struct queue_req r;
    size_t n;

    if (req->op < FERRY_QUEUE_PUSH || req->op > FERRY_QUEUE_CONFIGURE) {
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.op = (uint8_t)req->op;
    switch (req->op) {
    case FERRY_QUEUE_PUSH:
        if (req->dedup != NULL && req->dedup_len > UINT8_MAX) {
            return 0;
        }
        r.priority = req->priority;
        r.delay_ms = req->delay_ms;
        r.visibility_ms = req->visibility_ms;
        r.max_deliveries = req->max_deliveries;
        r.dedup = queue_bytes(req->dedup, req->dedup_len);
        r.payload = queue_bytes(req->payload, req->payload_len);
        break;
    case FERRY_QUEUE_RESERVE:
        r.wait_ms = req->wait_ms;
        r.visibility_ms = req->visibility_ms;
        break;
    case FERRY_QUEUE_ACK:
    case FERRY_QUEUE_RELEASE:
    case FERRY_QUEUE_TOUCH:
    case FERRY_QUEUE_BURY:
        r.id = req->id;
        r.token = req->token;
        r.delay_ms = req->delay_ms;
        r.visibility_ms = req->visibility_ms;
        r.reason = queue_bytes(req->reason, req->reason_len);
        break;
    case FERRY_QUEUE_PEEK:
        if (req->which > FERRY_QUEUE_PEEK_RESERVED || req->limit > UINT16_MAX) {
            return 0;
        }
        r.which = (uint8_t)req->which;
        r.limit = req->limit;
        break;
    case FERRY_QUEUE_REDRIVE:
        r.limit = req->limit;
        break;
    case FERRY_QUEUE_CONFIGURE:
        if (req->settings == NULL) {
            return 0;
        }
        r.settings = queue_bytes(req->settings, strlen(req->settings));
        break;
    default:
        break;
    }
    n = queue_codec_write_request(NULL, &r);
    if (n <= cap) {
        queue_codec_write_request(dst, &r);
    }
    return n;
}

/* Whether op may answer status (docs/queues.md). */
static bool
queue_status_fits(unsigned op, unsigned status)
{
    switch (status) {
    case FERRY_QUEUE_OK:
        return true;
    case FERRY_QUEUE_EMPTY:
        return op == FERRY_QUEUE_RESERVE;
    case FERRY_QUEUE_STALE:
        return op >= FERRY_QUEUE_ACK && op <= FERRY_QUEUE_BURY;
    default:
        return op != FERRY_QUEUE_PUSH && op != FERRY_QUEUE_RESERVE;
    }
}

ferry_err
ferry_queue_decode(unsigned op, const void *reply, size_t len,
                   struct ferry_queue_reply *out)
{
    struct queue_reply r;

    memset(out, 0, sizeof(*out));
    if (op < FERRY_QUEUE_PUSH || op > FERRY_QUEUE_CONFIGURE ||
        queue_codec_decode_reply(op, queue_bytes(reply, len), &r) != FERRY_OK ||
        !queue_status_fits(op, r.status)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    out->op = op;
    out->status = r.status;
    out->id = r.id;
    out->dup = r.dup;
    out->token = r.token;
    out->attempts = r.attempts;
    out->priority = r.priority;
    if (op == FERRY_QUEUE_RESERVE && r.status == FERRY_QUEUE_OK) {
        out->payload = r.payload.p;
        out->payload_len = r.payload.len;
    }
    out->visibility_ms = r.deadline_ms;
    out->count = r.count;
    if (op == FERRY_QUEUE_PEEK && r.status == FERRY_QUEUE_OK) {
        out->n = r.n;
        out->entries = r.entries.p;
        out->entries_len = r.entries.len;
    }
    if (r.json.len > 0) {
        out->json = (const char *)r.json.p;
        out->json_len = r.json.len;
    }
    return FERRY_OK;
}

bool
ferry_queue_next(const struct ferry_queue_reply *r, size_t *pos,
                 struct ferry_queue_entry *e)
{
    struct slice rest;
    struct queue_peek_entry pe;

    if (r->entries == NULL || *pos >= r->entries_len) {
        return false;
    }
    rest.p = r->entries + *pos;
    rest.len = r->entries_len - *pos;
    if (!queue_codec_next_peek_entry(&rest, &pe)) {
        return false;
    }
    e->id = pe.id;
    e->attempts = pe.attempts;
    e->priority = pe.priority;
    e->state = pe.state;
    e->age_ms = pe.age_ms;
    e->reason = pe.reason.p;
    e->reason_len = pe.reason.len;
    e->payload = pe.payload.p;
    e->payload_len = pe.payload.len;
    *pos = (size_t)(rest.p - r->entries);
    return true;
}

/* ------------------------------------------------------------------ calls */

ferry_err
ferry_queue_call(struct ferry_client *c, const struct ferry_queue_req *req,
                 uint32_t deadline_ms, struct ferry_reply *raw,
                 struct ferry_queue_reply *out)
{
    uint8_t small[512];
    uint8_t *buf = small;
    const char *q = req->queue != NULL ? req->queue : "";
    size_t n;
    ferry_err e;

    memset(raw, 0, sizeof(*raw));
    n = ferry_queue_encode(req, small, sizeof(small));
    if (n == 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (n > sizeof(small)) {
        buf = malloc(n);
        if (buf == NULL) {
            return FERRY_ENOMEM;
        }
        ferry_queue_encode(req, buf, n);
    }
    struct ferry_request r = {.service = "ferry.queue",
                              .key = q,
                              .key_len = strlen(q),
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
    return ferry_queue_decode(req->op, raw->data, raw->len, out);
}

ferry_err
ferry_queue_push(struct ferry_client *c, const char *queue, const void *payload,
                 size_t payload_len, int16_t priority, uint32_t delay_ms,
                 const void *dedup, size_t dedup_len, struct ferry_reply *raw,
                 struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {.op = FERRY_QUEUE_PUSH,
                                .queue = queue,
                                .payload = payload,
                                .payload_len = payload_len,
                                .priority = priority,
                                .delay_ms = delay_ms,
                                .dedup = dedup,
                                .dedup_len = dedup_len};

    return ferry_queue_call(c, &q, 0, raw, out);
}

ferry_err
ferry_queue_reserve(struct ferry_client *c, const char *queue, uint32_t wait_ms,
                    uint32_t visibility_ms, struct ferry_reply *raw,
                    struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {.op = FERRY_QUEUE_RESERVE,
                                .queue = queue,
                                .wait_ms = wait_ms,
                                .visibility_ms = visibility_ms};
    uint32_t deadline = wait_ms > UINT32_MAX - FERRY_QUEUE_RESERVE_SLACK_MS
                            ? UINT32_MAX
                            : wait_ms + FERRY_QUEUE_RESERVE_SLACK_MS;

    return ferry_queue_call(c, &q, deadline, raw, out);
}

/* ACK, RELEASE, TOUCH, BURY. */
static ferry_err
queue_job_call(struct ferry_client *c, unsigned op, const char *queue,
               uint64_t id, uint64_t token, uint32_t ms, const void *reason,
               size_t reason_len, struct ferry_reply *raw,
               struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {.op = op,
                                .queue = queue,
                                .id = id,
                                .token = token,
                                .delay_ms = ms,
                                .visibility_ms = ms,
                                .reason = reason,
                                .reason_len = reason_len};

    return ferry_queue_call(c, &q, 0, raw, out);
}

ferry_err
ferry_queue_ack(struct ferry_client *c, const char *queue, uint64_t id,
                uint64_t token, struct ferry_reply *raw,
                struct ferry_queue_reply *out)
{
    return queue_job_call(c, FERRY_QUEUE_ACK, queue, id, token, 0, NULL, 0, raw,
                          out);
}

ferry_err
ferry_queue_release(struct ferry_client *c, const char *queue, uint64_t id,
                    uint64_t token, uint32_t delay_ms, struct ferry_reply *raw,
                    struct ferry_queue_reply *out)
{
    return queue_job_call(c, FERRY_QUEUE_RELEASE, queue, id, token, delay_ms,
                          NULL, 0, raw, out);
}

ferry_err
ferry_queue_touch(struct ferry_client *c, const char *queue, uint64_t id,
                  uint64_t token, uint32_t visibility_ms,
                  struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_job_call(c, FERRY_QUEUE_TOUCH, queue, id, token, visibility_ms,
                          NULL, 0, raw, out);
}

ferry_err
ferry_queue_bury(struct ferry_client *c, const char *queue, uint64_t id,
                 uint64_t token, const void *reason, size_t reason_len,
                 struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_job_call(c, FERRY_QUEUE_BURY, queue, id, token, 0, reason,
                          reason_len, raw, out);
}

ferry_err
ferry_queue_peek(struct ferry_client *c, const char *queue, unsigned which,
                 uint32_t limit, struct ferry_reply *raw,
                 struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {
        .op = FERRY_QUEUE_PEEK, .queue = queue, .which = which, .limit = limit};

    return ferry_queue_call(c, &q, 0, raw, out);
}

/* The ops that take nothing but the queue. */
static ferry_err
queue_plain_call(struct ferry_client *c, unsigned op, const char *queue,
                 struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {.op = op, .queue = queue};

    return ferry_queue_call(c, &q, 0, raw, out);
}

ferry_err
ferry_queue_stats(struct ferry_client *c, const char *queue,
                  struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_plain_call(c, FERRY_QUEUE_STATS, queue, raw, out);
}

ferry_err
ferry_queue_redrive(struct ferry_client *c, const char *queue, uint32_t limit,
                    struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {
        .op = FERRY_QUEUE_REDRIVE, .queue = queue, .limit = limit};

    return ferry_queue_call(c, &q, 0, raw, out);
}

ferry_err
ferry_queue_pause(struct ferry_client *c, const char *queue,
                  struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_plain_call(c, FERRY_QUEUE_PAUSE, queue, raw, out);
}

ferry_err
ferry_queue_resume(struct ferry_client *c, const char *queue,
                   struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_plain_call(c, FERRY_QUEUE_RESUME, queue, raw, out);
}

ferry_err
ferry_queue_purge(struct ferry_client *c, const char *queue,
                  struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_plain_call(c, FERRY_QUEUE_PURGE, queue, raw, out);
}

ferry_err
ferry_queue_delete(struct ferry_client *c, const char *queue,
                   struct ferry_reply *raw, struct ferry_queue_reply *out)
{
    return queue_plain_call(c, FERRY_QUEUE_DELETE, queue, raw, out);
}

ferry_err
ferry_queue_configure(struct ferry_client *c, const char *queue,
                      const char *settings, struct ferry_reply *raw,
                      struct ferry_queue_reply *out)
{
    struct ferry_queue_req q = {
        .op = FERRY_QUEUE_CONFIGURE, .queue = queue, .settings = settings};

    return ferry_queue_call(c, &q, 0, raw, out);
}
