/* SPDX-License-Identifier: MIT */
/*
 * journal_codec.h - the entries of a journal record (journal.c): one put
 * or delete each, {kind u8, table u8, 0 u16, key length u32 LE, value
 * length u32 LE, key, value}. Pure functions, fuzzed
 * (tests/fuzz/fuzz_journal_entries.c).
 */
#ifndef FERRY_STORE_JOURNAL_CODEC_H
#define FERRY_STORE_JOURNAL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_ENTRY_BYTES 12 /* an entry's fixed part */
#define JOURNAL_MAX_KEY 511    /* LMDB's key limit (STORE_MAX_KEY) */

enum journal_entry_kind { JOURNAL_PUT = 1, JOURNAL_DEL = 2 };

/* One entry, its key and value inside the record it was read from. */
struct journal_entry {
    uint8_t kind;             /* enum journal_entry_kind */
    uint8_t table;            /* the store's table id */
    const unsigned char *key; /* borrowed */
    uint32_t klen;
    const unsigned char *val; /* borrowed; NULL for a delete */
    uint32_t vlen;
};

/* The bytes of an entry with these lengths. */
static inline size_t
journal_entry_size(size_t klen, size_t vlen)
{
    return JOURNAL_ENTRY_BYTES + klen + vlen;
}

/* Writes one entry at p (journal_entry_size(klen, vlen) bytes). */
void journal_entry_write(unsigned char *p, uint8_t kind, uint8_t table,
                         const void *key, uint32_t klen, const void *val,
                         uint32_t vlen);

/*
 * Reads the entry at *p (len bytes left) and moves past it: 1 with *e
 * set, 0 at the end (len 0), -1 when the bytes are not an entry (a kind,
 * table >= n_tables, key of 0 or more than JOURNAL_MAX_KEY bytes, a
 * delete with a value, or lengths past the end).
 */
int journal_entry_next(const unsigned char **p, size_t *len, size_t n_tables,
                       struct journal_entry *e);

#endif
