/* SPDX-License-Identifier: MIT */
/*
 * fuzz_journal_entries.c - libFuzzer target for the entry reader of the
 * store's journal records (src/store/journal_codec.c): the input is a
 * record's payload as it could be on disk after anything. Every entry
 * the reader takes must lie inside the input, and written again through
 * journal_entry_write the entries read must come out byte for byte as
 * the input's prefix they were read from.
 *
 * FUZZ_SRC: src/store/journal_codec.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/journal_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    size_t len = size, used = 0;
    struct journal_entry e;
    unsigned char *out = malloc(size ? size : 1);
    int got;

    if (out == NULL) {
        return 0;
    }
    while ((got = journal_entry_next(&p, &len, 3, &e)) == 1) {
        size_t n = journal_entry_size(e.klen, e.vlen);

        if (e.key < data || e.key + e.klen > data + size ||
            (e.val != NULL && e.val + e.vlen > data + size) ||
            used + n > size || p != data + used + n || len != size - used - n) {
            abort();
        }
        journal_entry_write(out + used, e.kind, e.table, e.key, e.klen, e.val,
                            e.vlen);
        used += n;
    }
    if ((got == 0 && used != size) || memcmp(out, data, used) != 0) {
        abort();
    }
    free(out);
    return 0;
}
