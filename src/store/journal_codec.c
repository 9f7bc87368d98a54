/* SPDX-License-Identifier: MIT */
/*
 * journal_codec.c - a journal record's entries, written and read
 * (journal_codec.h).
 */
#include "store/journal_codec.h"

#include <string.h>

static void
le32_put(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t
le32_get(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

void
journal_entry_write(unsigned char *p, uint8_t kind, uint8_t table,
                    const void *key, uint32_t klen, const void *val,
                    uint32_t vlen)
{
    p[0] = kind;
    p[1] = table;
    p[2] = p[3] = 0;
    le32_put(p + 4, klen);
    le32_put(p + 8, vlen);
    memcpy(p + JOURNAL_ENTRY_BYTES, key, klen);
    if (vlen > 0) {
        memcpy(p + JOURNAL_ENTRY_BYTES + klen, val, vlen);
    }
}

int
journal_entry_next(const unsigned char **p, size_t *len, size_t n_tables,
                   struct journal_entry *e)
{
    const unsigned char *q = *p;
    uint32_t klen, vlen;

    if (*len == 0) {
        return 0;
    }
    if (*len < JOURNAL_ENTRY_BYTES) {
        return -1;
    }
    klen = le32_get(q + 4);
    vlen = le32_get(q + 8);
    if ((q[0] != JOURNAL_PUT && q[0] != JOURNAL_DEL) || q[1] >= n_tables ||
        q[2] != 0 || q[3] != 0 || klen == 0 || klen > JOURNAL_MAX_KEY ||
        (q[0] == JOURNAL_DEL && vlen != 0) ||
        klen > *len - JOURNAL_ENTRY_BYTES ||
        vlen > *len - JOURNAL_ENTRY_BYTES - klen) {
        return -1;
    }
    e->kind = q[0];
    e->table = q[1];
    e->key = q + JOURNAL_ENTRY_BYTES;
    e->klen = klen;
    e->val = q[0] == JOURNAL_PUT ? q + JOURNAL_ENTRY_BYTES + klen : NULL;
    e->vlen = vlen;
    *p = q + JOURNAL_ENTRY_BYTES + klen + vlen;
    *len -= JOURNAL_ENTRY_BYTES + klen + vlen;
    return 1;
}
