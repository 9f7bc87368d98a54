/* SPDX-License-Identifier: MIT */
/*
 * fuzz_queue_payload.c - libFuzzer target for ferry.queue's payload codec
 * (src/queue/queue_codec.c): what a caller sends, what ferryd answers,
 * and a job as the store keeps it. The input is one length byte, that
 * many bytes of routing key (the queue), then the payload. A request that
 * decodes must encode to a payload of the same size that decodes to the
 * same request, with its slices inside the input; the same bytes are also
 * read as the reply to every op and as a stored job.
 *
 * FUZZ_SRC: src/queue/queue_codec.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
inside(struct slice part, struct slice whole)
{
    return part.len == 0 ||
           (part.p >= whole.p && part.p + part.len <= whole.p + whole.len);
}

static int
same(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice key, payload, rest;
    struct queue_req r, r2;
    struct queue_reply rep;
    struct queue_rec rec;
    struct queue_peek_entry e;
    char err[QUEUE_CODEC_ERR_SIZE];
    uint8_t *again;
    size_t klen, n;

    if (size < 1) {
        return 0;
    }
    klen = data[0];
    if (klen > size - 1) {
        klen = size - 1;
    }
    key = (struct slice){data + 1, klen};
    payload = (struct slice){data + 1 + klen, size - 1 - klen};

    if (queue_codec_decode(key, payload, &r, err) == FERRY_OK) {
        if (!inside(r.dedup, payload) || !inside(r.payload, payload) ||
            !inside(r.reason, payload) || !inside(r.settings, payload) ||
            r.dedup.len > QUEUE_DEDUP_MAX || r.reason.len > QUEUE_REASON_MAX ||
            (r.op == QUEUE_OP_PEEK &&
             (r.limit == 0 || r.limit > QUEUE_PEEK_MAX))) {
            abort();
        }
        n = queue_codec_write_request(NULL, &r);
        again = malloc(n);
        if (again == NULL) {
            return 0;
        }
        if (queue_codec_write_request(again, &r) != n ||
            queue_codec_decode(key, (struct slice){again, n}, &r2, err) !=
                FERRY_OK ||
            r2.op != r.op || r2.priority != r.priority ||
            r2.delay_ms != r.delay_ms || r2.visibility_ms != r.visibility_ms ||
            r2.max_deliveries != r.max_deliveries || r2.wait_ms != r.wait_ms ||
            r2.id != r.id || r2.token != r.token || r2.which != r.which ||
            r2.limit != r.limit || !same(r2.dedup, r.dedup) ||
            !same(r2.payload, r.payload) || !same(r2.reason, r.reason) ||
            !same(r2.settings, r.settings)) {
            abort();
        }
        free(again);
    } else if (err[0] == '\0') {
        abort(); /* every refusal says why */
    }
    for (unsigned op = 0; op <= QUEUE_OP_MAX + 1; op++) {
        if (queue_codec_decode_reply(op, payload, &rep) == FERRY_OK) {
            if (!inside(rep.payload, payload) || !inside(rep.json, payload) ||
                !inside(rep.entries, payload)) {
                abort();
            }
            rest = rep.entries;
            for (uint32_t i = 0; i < rep.n; i++) {
                if (!queue_codec_next_peek_entry(&rest, &e) ||
                    !inside(e.payload, payload) || !inside(e.reason, payload)) {
                    abort();
                }
            }
        }
    }
    if (queue_codec_read_rec(payload.p, payload.len, &rec)) {
        uint8_t *buf = malloc(payload.len);
        if (!inside(rec.reason, payload) || !inside(rec.payload, payload) ||
            QUEUE_REC_HEAD + rec.reason.len + rec.payload.len != payload.len) {
            abort();
        }
        if (buf != NULL && (queue_codec_write_rec(buf, &rec) != payload.len ||
                            memcmp(buf + QUEUE_REC_HEAD,
                                   payload.p + QUEUE_REC_HEAD,
                                   payload.len - QUEUE_REC_HEAD) != 0)) {
            abort();
        }
        free(buf);
    }
    return 0;
}
