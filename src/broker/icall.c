/* SPDX-License-Identifier: MIT */
/*
 * icall.c - in-daemon callers of the broker: the icall map and the two
 * ends of a call, submit and answer. The request path itself is
 * broker_submit(), shared with binary callers.
 */
#include "broker/icall.h"

#include <string.h>

#include "broker/broker.h"

static void
icall_submit_as(struct broker *b, struct icall *ic, struct slice service,
                struct slice key, struct slice payload, uint32_t deadline_ms,
                uint8_t flags, icall_done_cb cb, bool cluster,
                const void *to_node)
{
    struct frame_request q = {
        .deadline_ms = deadline_ms,
        .service = service,
        .key = key,
        .payload = payload,
    };
    struct sink k;

    ic->id = b->next_icall_id++;
    ic->req_id = 0;
    ic->cb = cb;
    if (map_put(&b->icalls, ic->id, ic) != FERRY_OK) {
        ic->id = 0;
        cb(ic, FERRY_ENOMEM, "out of memory", strlen("out of memory"));
        return;
    }
    k = sink_icall(ic->id, ic->internals);
    k.cluster = cluster;
    k.to_node = to_node;
    broker_submit(b, &k, flags, &q);
}

void
icall_submit(struct broker *b, struct icall *ic, struct slice service,
             struct slice key, struct slice payload, uint32_t deadline_ms,
             uint8_t flags, icall_done_cb cb)
{
    icall_submit_as(b, ic, service, key, payload, deadline_ms, flags, cb,
                    false, NULL);
}

void
icall_submit_cluster(struct broker *b, struct icall *ic, struct slice service,
                     struct slice key, struct slice payload,
                     uint32_t deadline_ms, icall_done_cb cb)
{
    icall_submit_as(b, ic, service, key, payload, deadline_ms, 0, cb, true,
                    NULL);
}

void
icall_submit_node(struct broker *b, struct icall *ic, const void *node,
                  struct slice service, struct slice key, struct slice payload,
                  uint32_t deadline_ms, icall_done_cb cb)
{
    icall_submit_as(b, ic, service, key, payload, deadline_ms,
                    BROKER_FORWARDED, cb, true, node);
}

void
icall_cancel(struct broker *b, struct icall *ic)
{
    uint64_t id = ic->id;

    if (id == 0) {
        return;
    }
    map_del(&b->icalls, id);
    ic->id = 0;
    if (ic->req_id != 0) {
        broker_drop(b, ic->req_id, id);
        ic->req_id = 0;
    }
}

void
icall_complete(struct broker *b, uint64_t id, ferry_err err, const void *data,
               size_t len)
{
    struct icall *ic = map_del(&b->icalls, id);

    if (ic == NULL) {
        return;
    }
    ic->id = 0;
    ic->req_id = 0;
    ic->cb(ic, err, data, len);
}
