/* SPDX-License-Identifier: MIT */
/*
 * fuzz_etcd_stream.c - libFuzzer target for what ferryd reads from etcd
 * (src/cluster/etcd_codec.c): the watch stream's splitter, fed in pieces whose
 * sizes the input chooses, each object it cuts decoded as a watch answer;
 * the same bytes decoded whole as the answer to every kind of call; and
 * base64 both ways. An object the splitter returns must lie inside what
 * it was given and end on a closing bracket; a decoded range's kvs must be NUL-ended;
 * base64 must decode back what it encoded.
 *
 * FUZZ_SRC: src/cluster/etcd_codec.c src/proto/errors.c
 * FUZZ_LIBS: -ljansson
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t events;

static void
on_created(void *ud)
{
    (void)ud;
}

static void
on_event(void *ud, const struct etcd_event *ev)
{
    (void)ud;
    if (ev->kv.key == NULL || ev->kv.key[ev->kv.key_len] != '\0' ||
        (ev->type != ETCD_EVENT_PUT && ev->type != ETCD_EVENT_DELETE)) {
        abort();
    }
    events++;
}

static void
on_ended(void *ud, ferry_err err, const char *msg, uint64_t compact)
{
    (void)ud;
    (void)err;
    (void)msg;
    (void)compact;
}

static const struct etcd_watch_hooks hooks = {on_created, on_event, on_ended};

/* Feeds body to a splitter in steps of 1..16 bytes chosen by step[]. */
static void
split_all(const char *body, size_t len, const uint8_t *step, size_t n_step)
{
    struct etcd_splitter s;
    char msg[ETCD_MSG_SIZE];
    size_t start = 0, have = 0, k = 0, used;
    uint64_t compact;

    etcd_splitter_init(&s, 4096);
    while (start < len) {
        size_t add = n_step ? (size_t)(step[k++ % n_step] % 16) + 1 : len;
        enum etcd_split r;

        have = have + add > len - start ? len - start : have + add;
        r = etcd_split_next(&s, body + start, have, &used);
        if (r == ETCD_SPLIT_MORE) {
            if (start + have == len) {
                return;
            }
            continue;
        }
        if (r != ETCD_SPLIT_OBJECT) {
            return;
        }
        /* It counts brackets, not their kinds: the decoder judges. */
        if (used == 0 || used > have ||
            (body[start + used - 1] != '}' && body[start + used - 1] != ']')) {
            abort();
        }
        compact = 0;
        (void)etcd_watch_decode(body + start, used, &hooks, NULL, &compact,
                                msg);
        start += used;
        have = 0;
        etcd_splitter_init(&s, 4096);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum etcd_kind kinds[] = {
        ETCD_GRANT, ETCD_KEEPALIVE, ETCD_REVOKE, ETCD_PUT,
        ETCD_RANGE, ETCD_DELETE,    ETCD_TXN,    ETCD_WATCH};
    struct etcd_result r;
    char msg[ETCD_MSG_SIZE];
    const char *body;
    size_t n_step, len;
    char *enc, *dec;
    size_t dec_len;

    if (size < 1) {
        return 0;
    }
    /* The first byte says how many step bytes follow; the rest is body. */
    n_step = data[0] % 8;
    if (n_step > size - 1) {
        n_step = size - 1;
    }
    body = (const char *)data + 1 + n_step;
    len = size - 1 - n_step;
    split_all(body, len, data + 1, n_step);

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        msg[0] = '\0';
        if (etcd_result_decode(kinds[i], body, len, 200, &r, msg) ==
            FERRY_OK) {
            for (size_t j = 0; j < r.n_kvs; j++) {
                if (r.kvs[j].key[r.kvs[j].key_len] != '\0' ||
                    r.kvs[j].value[r.kvs[j].value_len] != '\0') {
                    abort();
                }
            }
            etcd_result_release(&r);
        } else if (msg[0] == '\0') {
            abort(); /* a refusal says why */
        }
    }

    enc = malloc(4 * ((len + 2) / 3) + 1);
    dec = malloc(len + 8); /* room for either decode below */
    if (enc != NULL && dec != NULL) {
        size_t elen = etcd_b64_encode(body, len, enc);
        if (!etcd_b64_decode(enc, elen, dec, &dec_len) || dec_len != len ||
            memcmp(dec, body, len) != 0) {
            abort();
        }
        (void)etcd_b64_decode(body, len, dec, &dec_len);
    }
    free(enc);
    free(dec);
    return 0;
}
