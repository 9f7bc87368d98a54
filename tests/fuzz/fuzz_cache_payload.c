/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cache_payload.c - libFuzzer target for ferry.cache's payload codec
 * (src/servants/cache_codec.c), the part of the service that reads what a
 * caller sends. The input is one length byte, that many bytes of routing
 * key, then the payload. A request that decodes must encode back to the
 * very same payload, its values must lie inside it, and a GET_MANY's keys
 * must walk to the end exactly; the same bytes are also read as the reply
 * to every op, whose decoder the CLI uses on what ferryd sends.
 *
 * FUZZ_SRC: src/servants/cache_codec.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servants/cache_codec.h"

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
    struct slice key, payload, rest, k, v;
    struct cache_req r;
    struct cache_reply rep;
    char err[CACHE_CODEC_ERR_SIZE];
    uint8_t *again;
    size_t klen, n;
    unsigned op, i;
    uint32_t flags;
    uint64_t cas;
    bool hit;

    if (size < 1) {
        return 0;
    }
    klen = data[0];
    if (klen > size - 1) {
        klen = size - 1;
    }
    key = (struct slice){data + 1, klen};
    payload = (struct slice){data + 1 + klen, size - 1 - klen};

    if (cache_codec_decode(key, payload, &r, err) == FERRY_OK) {
        if (!inside(r.value, payload) || !inside(r.keys, payload)) {
            abort();
        }
        n = cache_codec_write_request(NULL, &r);
        if (n != payload.len) {
            abort();
        }
        again = malloc(n);
        if (again == NULL) {
            return 0;
        }
        if (cache_codec_write_request(again, &r) != n ||
            memcmp(again, payload.p, n) != 0) {
            abort();
        }
        free(again);
        if (r.op == CACHE_OP_GET_MANY) {
            rest = r.keys;
            for (i = 0; i < r.n_keys; i++) {
                if (!cache_codec_next_key(&rest, &k) || k.len == 0 ||
                    k.len > CACHE_CODEC_KEY_MAX) {
                    abort();
                }
            }
            if (rest.len != 0) {
                abort();
            }
        }
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }

    for (op = 0; op <= CACHE_OP_MAX + 1; op++) {
        if (cache_codec_decode_reply(op, payload, &rep) != FERRY_OK) {
            continue;
        }
        if (!inside(rep.value, payload)) {
            abort();
        }
        if (op == CACHE_OP_GET_MANY) {
            rest = rep.value;
            for (i = 0; i < rep.n; i++) {
                if (!cache_codec_next_entry(&rest, &hit, &flags, &cas, &v)) {
                    break;
                }
                if (hit && !inside(v, payload)) {
                    abort();
                }
            }
        }
    }
    return 0;
}
