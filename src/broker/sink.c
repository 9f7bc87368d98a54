/* SPDX-License-Identifier: MIT */
/*
 * sink.c - the two reply sinks: a binary caller's connection (frames into
 * its output buffer, its session's map of requests in flight) and an
 * in-daemon caller (the icall's callback).
 */
#include "broker/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/icall.h"
#include "broker/session.h"
#include "core/conn.h"

void
sink_error_code(struct broker *b, struct sink *k, ferry_err code,
                const char *msg)
{
    k->ops->error(b, k, code,
                  slice_str(msg != NULL ? msg : ferry_strerror(code)));
}

/* ---- a binary caller's connection ---- */

/* The caller's conn while it is open, else NULL. */
static struct conn *
sink_conn_get(struct broker *b, struct sink *k)
{
    if (k->c == NULL) {
        k->c = loop_conn(b->loop, k->conn_id);
    }
    return k->c;
}

static void
sink_conn_who(struct broker *b, const struct sink *k, char *buf, size_t size)
{
    struct conn *c = k->c != NULL ? k->c : loop_conn(b->loop, k->conn_id);

    if (c == NULL) {
        snprintf(buf, size, "a caller that left");
        return;
    }
    snprintf(buf, size, "'%s' at '%s'", c->name, c->peer);
}

static uint8_t *
sink_conn_prepare(struct broker *b, struct sink *k, uint32_t len,
                  ferry_err *err)
{
    struct conn *c = sink_conn_get(b, k);
    uint8_t *p;

    if (c == NULL) {
        *err = FERRY_EOVERLOADED;
        return NULL;
    }
    /* Above the caller's max_frame: it gets TOO_BIG for that id and keeps
     * its connection. */
    if (!session_takes(c->data, len)) {
        session_send_too_big(c, k->id, len);
        *err = FERRY_ETOO_BIG;
        return NULL;
    }
    p = conn_out_prepare(c, FRAME_HEADER_SIZE + len);
    if (p == NULL) {
        *err = FERRY_EOVERLOADED;
        return NULL;
    }
    frame_write_reply_header(p, k->id, (uint32_t)len);
    k->len = len;
    return p + FRAME_HEADER_SIZE;
}

static void
sink_conn_commit(struct broker *b, struct sink *k)
{
    conn_out_commit(k->c, FRAME_HEADER_SIZE + k->len);
}

/* prepare + copy + commit, written out: the path of every echo. */
static ferry_err
sink_conn_reply(struct broker *b, struct sink *k, const void *data, size_t len)
{
    struct conn *c = sink_conn_get(b, k);
    uint8_t *p;

    if (c == NULL) {
        return FERRY_EOVERLOADED;
    }
    if (!session_takes(c->data, len)) {
        session_send_too_big(c, k->id, len);
        return FERRY_ETOO_BIG;
    }
    p = conn_out_prepare(c, FRAME_HEADER_SIZE + len);
    if (p == NULL) {
        return FERRY_EOVERLOADED;
    }
    frame_write_reply_header(p, k->id, (uint32_t)len);
    if (len > 0) {
        memcpy(p + FRAME_HEADER_SIZE, data, len);
    }
    conn_out_commit(c, FRAME_HEADER_SIZE + len);
    return FERRY_OK;
}

static void
sink_conn_error(struct broker *b, struct sink *k, ferry_err code,
                struct slice msg)
{
    struct conn *c = sink_conn_get(b, k);
    uint8_t *p;

    if (c == NULL) {
        return;
    }
    p = conn_out_prepare(c, frame_error_size(msg.len));
    if (p != NULL) {
        conn_out_commit(c, frame_write_error(p, k->id, (uint16_t)code, msg));
    }
}

static ferry_err
sink_conn_track(struct broker *b, const struct sink *k, struct req *r)
{
    /* k->c is NULL for a record's own sink (broker_resubmit). */
    struct conn *c = k->c != NULL ? k->c : loop_conn(b->loop, k->conn_id);
    struct session *s = c != NULL ? c->data : NULL;

    if (s == NULL) {
        return FERRY_ECONNECTION;
    }
    return map_put(&s->inflight, k->id, r);
}

static void
sink_conn_untrack(struct broker *b, const struct sink *k)
{
    struct conn *c = k->c != NULL ? k->c : loop_conn(b->loop, k->conn_id);
    struct session *s = c != NULL ? c->data : NULL;

    if (s == NULL) {
        return;
    }
    map_del(&s->inflight, k->id);
    if (c->paused) {
        conn_wake(c);
    }
}

const struct sink_ops sink_conn_ops = {
    .who = sink_conn_who,
    .prepare = sink_conn_prepare,
    .commit = sink_conn_commit,
    .reply = sink_conn_reply,
    .error = sink_conn_error,
    .track = sink_conn_track,
    .untrack = sink_conn_untrack,
};

/* ---- an in-daemon caller (icall.h) ---- */

static void
sink_icall_who(struct broker *b, const struct sink *k, char *buf, size_t size)
{
    snprintf(buf, size, "the HTTP gateway");
}

/* The reply is assembled in the broker's scratch buffer (kept up to
 * SINK_SCRATCH_KEEP: no allocation per reply once it fits), then handed
 * over. */
#define SINK_SCRATCH_KEEP (64 * 1024)
static uint8_t *
sink_icall_prepare(struct broker *b, struct sink *k, uint32_t len,
                   ferry_err *err)
{
    if (len > b->scratch_cap) {
        uint8_t *p = realloc(b->scratch, len);
        if (p == NULL) {
            *err = FERRY_EOVERLOADED;
            return NULL;
        }
        b->scratch = p;
        b->scratch_cap = len;
    }
    k->len = len;
    /* Room for nothing is somewhere all the same. */
    return len > 0 ? b->scratch : (uint8_t *)k;
}

static void
sink_icall_commit(struct broker *b, struct sink *k)
{
    uint8_t *p = b->scratch;
    size_t cap = b->scratch_cap;

    /* Taken out while the callback runs: a call it starts gets its own. */
    b->scratch = NULL;
    b->scratch_cap = 0;
    icall_complete(b, k->id, FERRY_OK, k->len > 0 ? p : (void *)"", k->len);
    /* Kept for the next, unless large or replaced meanwhile. */
    if (b->scratch == NULL && cap <= SINK_SCRATCH_KEEP) {
        b->scratch = p;
        b->scratch_cap = cap;
        return;
    }
    free(p);
}

static ferry_err
sink_icall_reply(struct broker *b, struct sink *k, const void *data, size_t len)
{
    icall_complete(b, k->id, FERRY_OK, data, len);
    return FERRY_OK;
}

static void
sink_icall_error(struct broker *b, struct sink *k, ferry_err code,
                 struct slice msg)
{
    icall_complete(b, k->id, code, msg.p, msg.len);
}

static ferry_err
sink_icall_track(struct broker *b, const struct sink *k, struct req *r)
{
    struct icall *ic = map_get(&b->icalls, k->id);

    if (ic != NULL) {
        ic->req_id = r->id;
    }
    return FERRY_OK;
}

static void
sink_icall_untrack(struct broker *b, const struct sink *k)
{
    struct icall *ic = map_get(&b->icalls, k->id);

    if (ic != NULL) {
        ic->req_id = 0;
    }
}

const struct sink_ops sink_icall_ops = {
    .who = sink_icall_who,
    .prepare = sink_icall_prepare,
    .commit = sink_icall_commit,
    .reply = sink_icall_reply,
    .error = sink_icall_error,
    .track = sink_icall_track,
    .untrack = sink_icall_untrack,
};
