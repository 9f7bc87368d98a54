/* SPDX-License-Identifier: MIT */
/*
 * fuzz_id_payload.c - libFuzzer target for ferry.id's payload codec
 * (src/servants/id_codec.c). The input is read as a request payload: one
 * that decodes must encode back to the very same bytes, and a DECODE's id
 * must split into parts that rebuild it. The same bytes are read as both
 * replies (what the CLI and the HTTP routes decode): a NEXT reply's ids
 * must lie inside the input, a DECODE reply must write back the same 13
 * bytes.
 *
 * FUZZ_SRC: src/servants/id_codec.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servants/id_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ID_CODEC_ERR_SIZE];
    uint8_t again[ID_DECODE_REPLY_LEN > 9 ? ID_DECODE_REPLY_LEN : 9];
    struct id_parts p;
    const uint8_t *ids;
    struct id_req r;
    uint32_t n;
    size_t len;

    if (id_decode_request(data, size, &r, err, sizeof(err)) == FERRY_OK) {
        len = r.op == ID_OP_NEXT ? id_encode_next(again, r.count)
                                 : id_encode_decode(again, r.id);
        if (len != size || memcmp(again, data, size) != 0) {
            abort();
        }
        if (r.op == ID_OP_DECODE) {
            if (!id_split(r.id, &p) ||
                id_make(p.unix_ms - (uint64_t)ID_EPOCH_UNIX_MS, p.node,
                        p.seq) != r.id) {
                abort();
            }
        } else if (r.count < 1 || r.count > ID_COUNT_MAX) {
            abort();
        }
    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }
    if (id_decode_next_reply(data, size, &n, &ids, err, sizeof(err)) ==
        FERRY_OK) {
        if (ids + 8u * (size_t)n != data + size) {
            abort();
        }
        for (uint32_t i = 0; i < n; i++) {
            (void)id_get(ids, i);
        }
    }
    if (id_decode_decode_reply(data, size, &p, err, sizeof(err)) == FERRY_OK) {
        id_encode_decode_reply(again, &p);
        if (memcmp(again, data, ID_DECODE_REPLY_LEN) != 0) {
            abort();
        }
    }
    return 0;
}
