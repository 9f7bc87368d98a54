/* SPDX-License-Identifier: MIT */
/*
 * fuzz_kv_payload.c - libFuzzer target for ferry.kv's payload codec
 * (src/servants/kv_codec.c), the part of the service that reads what a
 * caller sends. The input is one length byte, that many bytes of routing
 * key (up to 255 here), then the payload. A request that decodes must
 * encode to a payload of the same size that decodes to the same request,
 * and its slices must lie inside the input; the same bytes are also read
 * as the reply to every op (the CLI's decoder of what ferryd sends) and
 * as a stored value.
 *
 * FUZZ_SRC: src/servants/kv_codec.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servants/kv_codec.h"

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
    struct slice key, payload, rest, k, v;
    struct kv_req r, r2;
    struct kv_reply rep;
    struct kv_meta m;
    char err[KV_CODEC_ERR_SIZE];
    uint8_t *again, t;
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

    if (kv_codec_decode(key, payload, &r, err) == FERRY_OK) {
        if (!inside(r.value, payload) || !inside(r.end, payload) ||
            r.limit > KV_LIMIT_MAX || r.max_events > KV_EVENTS_MAX) {
            abort();
        }
        n = kv_codec_write_request(NULL, &r);
        if (n != payload.len) {
            abort();
        }
        again = malloc(n);
        if (again == NULL || kv_codec_write_request(again, &r) != n) {
            abort();
        }
        if (kv_codec_decode(key, (struct slice){again, n}, &r2, err) !=
                FERRY_OK ||
            r2.op != r.op || r2.cond != r.cond || r2.rev != r.rev ||
            r2.mode != r.mode || r2.limit != r.limit ||
            r2.keys_only != r.keys_only || r2.prefix != r.prefix ||
            r2.from_rev != r.from_rev || r2.wait_ms != r.wait_ms ||
            r2.max_events != r.max_events || !same(r2.value, r.value) ||
            !same(r2.end, r.end)) {
            abort();
        }
        (void)kv_codec_in_range(&r, payload);
        free(again);
    } else if (err[0] == '\0') {
        abort();
    }
    for (unsigned op = 0; op <= KV_OP_MAX + 1; op++) {
        if (kv_codec_decode_reply(op, payload, &rep) != FERRY_OK) {
            continue;
        }
        if (!inside(rep.value, payload) || !inside(rep.entries, payload)) {
            abort();
        }
        rest = rep.entries;
        for (uint32_t i = 0; i < rep.n; i++) {
            if (!kv_codec_next_entry(&rest, op == KV_OP_WATCH, &t, &k, &m,
                                     &v) ||
                !inside(k, payload) || !inside(v, payload)) {
                abort();
            }
        }
        if (rest.len != 0) {
            abort();
        }
    }
    if (kv_codec_read_stored(payload.p, payload.len, &m, &v) &&
        v.len != payload.len - KV_META) {
        abort();
    }
    return 0;
}
