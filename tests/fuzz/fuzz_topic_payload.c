/* SPDX-License-Identifier: MIT */
/*
 * fuzz_topic_payload.c - libFuzzer target for ferry.topic's payload codec
 * (src/topic/topic_codec.c), the part of the service that reads what a
 * caller sends. The input is one length byte, that many bytes of routing
 * key (up to 255 here), then the payload. A request that decodes must
 * have the fields its op promises (a valid subject not under "ferry.", a
 * valid pattern, a valid group, a known policy), slices inside the input,
 * and must encode back to the very same payload; one refused must say
 * why. The same bytes are also read as the reply to every op (the CLI's
 * decoder of what ferryd sends), every POLL entry walked.
 *
 * FUZZ_SRC: src/topic/topic_codec.c src/topic/trie.c src/core/map.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic/topic_codec.h"
#include "topic/trie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
inside(struct slice part, struct slice whole)
{
    return part.len == 0 ||
           (part.p >= whole.p && part.p + part.len <= whole.p + whole.len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice key, payload, rest;
    struct topic_req r;
    struct topic_reply rep;
    struct topic_msg_entry e;
    char err[TOPIC_CODEC_ERR_SIZE];
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

    if (topic_codec_decode(key, payload, &r, err) == FERRY_OK) {
        switch (r.op) {
        case TOPIC_OP_PUBLISH:
            if (!topic_subject_is_valid(r.subject) ||
                topic_subject_is_reserved(r.subject) ||
                !inside(r.message, payload)) {
                abort();
            }
            break;
        case TOPIC_OP_SUBSCRIBE:
            if (!topic_pattern_is_valid(r.pattern) ||
                (r.group.len > 0 && !topic_group_is_valid(r.group)) ||
                !inside(r.group, payload) || r.policy > TOPIC_POLICY_CLOSE) {
                abort();
            }
            break;
        case TOPIC_OP_POLL:
        case TOPIC_OP_UNSUBSCRIBE:
        case TOPIC_OP_STATS:
            break;
        default:
            abort();
        }
        n = topic_codec_write_request(NULL, &r);
        if (n != payload.len) {
            abort();
        }
        again = malloc(n);
        if (again == NULL || topic_codec_write_request(again, &r) != n ||
            memcmp(again, payload.p, n) != 0) {
            abort();
        }
        free(again);
    } else if (err[0] == '\0') {
        abort();
    }
    for (unsigned op = 0; op <= TOPIC_OP_MAX + 1; op++) {
        if (topic_codec_decode_reply(op, payload, &rep) != FERRY_OK) {
            continue;
        }
        if (!inside(rep.messages, payload) || !inside(rep.json, payload)) {
            abort();
        }
        rest = rep.messages;
        for (uint32_t i = 0; i < rep.n; i++) {
            if (!topic_codec_next_msg(&rest, &e) ||
                !inside(e.subject, payload) || !inside(e.payload, payload)) {
                abort();
            }
        }
        if (rest.len != 0) {
            abort();
        }
    }
    return 0;
}
