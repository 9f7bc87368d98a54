/* SPDX-License-Identifier: MIT */
/*
 * fuzz_servant_replies.c - libferry's reply decoders of ferry.cache,
 * ferry.kv and ferry.id (src/lib/servants.c), ferry.queue
 * (src/lib/queue.c) and ferry.topic (src/lib/topic.c) on any bytes: the
 * first byte picks the service and op (225 to 239: ferry.topic, 240 and
 * up: ferry.queue), the rest is the reply. A decode either fails with
 * FERRY_EINVALID_ARGUMENT or gives fields inside the input, and the list
 * iterators then walk exactly the count it announced.
 *
 * FUZZ_SRC: src/lib/servants.c src/lib/queue.c src/queue/queue_codec.c
 * FUZZ_SRC: src/lib/topic.c src/topic/topic_codec.c src/topic/trie.c
 * FUZZ_SRC: src/core/map.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_servants.h"

/* ferry_call is not linked: the helpers' calls are never made here. */
ferry_err ferry_call(struct ferry_client *c, const struct ferry_request *req,
                     struct ferry_reply *reply);
ferry_err
ferry_call(struct ferry_client *c, const struct ferry_request *req,
           struct ferry_reply *reply)
{
    (void)c;
    (void)req;
    (void)reply;
    abort();
}

static void
inside(const uint8_t *p, size_t n, const uint8_t *b, size_t len)
{
    if (n && (p < b || p + n > b + len)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned pick = data[0];
    /* A copy of exactly the reply's bytes, so a read past it is caught. */
    size_t len = size - 1;
    uint8_t *b = malloc(len ? len : 1);
    if (!b) {
        return 0;
    }
    memcpy(b, data + 1, len);
    unsigned svc = pick % 3, op = pick / 3 % 15 + 1;
    if (pick >= 240) {
        struct ferry_queue_reply r;
        if (ferry_queue_decode((pick - 240) % 14 + 1, b, len, &r) == FERRY_OK) {
            inside(r.payload, r.payload_len, b, len);
            inside((const uint8_t *)r.json, r.json_len, b, len);
            inside(r.entries, r.entries_len, b, len);
            struct ferry_queue_entry e;
            size_t pos = 0;
            uint32_t k = 0;
            while (ferry_queue_next(&r, &pos, &e)) {
                inside(e.reason, e.reason_len, b, len);
                inside(e.payload, e.payload_len, b, len);
                k++;
            }
            if (k != r.n || pos != r.entries_len) {
                abort();
            }
        }
    } else if (pick >= 225) {
        struct ferry_topic_reply r;
        if (ferry_topic_decode((pick - 225) % 5 + 1, b, len, &r) == FERRY_OK) {
            inside((const uint8_t *)r.json, r.json_len, b, len);
            inside(r.messages, r.messages_len, b, len);
            struct ferry_topic_msg m;
            size_t pos = 0;
            uint32_t k = 0;
            while (ferry_topic_next(&r, &pos, &m)) {
                inside((const uint8_t *)m.subject, m.subject_len, b, len);
                inside(m.payload, m.payload_len, b, len);
                k++;
            }
            if (k != r.n || pos != r.messages_len) {
                abort();
            }
        }
    } else if (svc == 0) {
        struct ferry_cache_reply r;
        if (ferry_cache_decode(op, b, len, &r) == FERRY_OK) {
            inside(r.value, r.value_len, b, len);
            struct ferry_cache_item it;
            size_t pos = 0;
            unsigned k = 0;
            while (ferry_cache_next(&r, &pos, &it)) {
                inside(it.value, it.value_len, b, len);
                k++;
            }
            if (k != r.n_items) {
                abort();
            }
        }
    } else if (svc == 1) {
        struct ferry_kv_reply r;
        if (ferry_kv_decode(op % 7, b, len, &r) == FERRY_OK) {
            inside(r.entry.value, r.entry.value_len, b, len);
            struct ferry_kv_entry e;
            size_t pos = 0;
            uint32_t k = 0;
            while (ferry_kv_next(&r, &pos, &e)) {
                inside(e.key, e.key_len, b, len);
                inside(e.value, e.value_len, b, len);
                k++;
            }
            if (k != r.n) {
                abort();
            }
        }
    } else {
        struct ferry_id_reply r;
        if (ferry_id_decode_reply(op % 3, b, len, &r) == FERRY_OK) {
            for (uint32_t i = 0; i < r.n; i++) {
                (void)ferry_id_at(&r, i);
            }
            inside(r.ids, (size_t)r.n * 8, b, len);
        }
    }
    free(b);
    return 0;
}
