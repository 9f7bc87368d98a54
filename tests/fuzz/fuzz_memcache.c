/* SPDX-License-Identifier: MIT */
/*
 * fuzz_memcache.c - libFuzzer target for the memcached text protocol
 * parser: any bytes are parsed the way a connection of the face consumes
 * them (commands, error answers, swallowed data blocks), with a small
 * item_max so that refused data blocks are common. Every slice handed out
 * must lie inside the input, every command must make progress, and the
 * bounds (key length, data block size, line length) must hold.
 *
 * FUZZ_SRC: src/servants/memcache_parse.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "servants/memcache_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ITEM_MAX 64

static void
inside(const uint8_t *p, size_t n, const uint8_t *s, size_t len)
{
    if (len > 0 && (s < p || s + len > p + n)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    uint64_t swallow = 0;

    while (off < size) {
        const uint8_t *p = data + off;
        size_t n = size - off;
        struct mc_cmd m;
        enum mc_result r;

        if (swallow > 0) {
            size_t k = swallow < n ? (size_t)swallow : n;
            swallow -= k;
            off += k;
            continue;
        }
        r = memcache_parse(p, n, FUZZ_ITEM_MAX, &m);
        if (r == MC_NEED || r == MC_CLOSE) {
            if (r == MC_NEED && n >= MC_GET_LINE_MAX && m.need == 0) {
                abort(); /* a line that never ends must close */
            }
            break;
        }
        if (m.used == 0 || m.used > n) {
            abort();
        }
        if (r == MC_ERR) {
            size_t el = m.err == NULL ? 0 : strlen(m.err);
            if (m.err == NULL ||
                (el > 0 && (el < 2 || strcmp(m.err + el - 2, "\r\n") != 0))) {
                abort();
            }
            swallow = m.swallow;
        } else {
            if (m.kind <= 0 || m.kind >= MC_KIND_COUNT ||
                m.klen > MC_KEY_MAX || m.dlen > FUZZ_ITEM_MAX ||
                m.n_flags > MC_META_FLAGS_MAX) {
                abort();
            }
            if (m.b64) { /* decoded into the command's own buffer */
                inside(p, m.used, m.rkey, m.rklen);
                if (m.key != m.kbuf || m.klen == 0 || m.rklen > MC_KEY_MAX) {
                    abort();
                }
            } else {
                inside(p, m.used, m.key, m.klen);
            }
            inside(p, m.used, m.keys, m.keys_len);
            inside(p, m.used, m.data, m.dlen);
            for (unsigned i = 0; i < m.n_flags; i++) {
                inside(p, m.used, m.flag[i].tok, m.flag[i].len);
            }
            (void)memcache_kind_name(m.kind);
        }
        off += m.used;
    }
    return 0;
}
