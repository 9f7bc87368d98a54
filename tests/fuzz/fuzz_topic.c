/* SPDX-License-Identifier: MIT */
/*
 * fuzz_topic.c - libFuzzer target for the subject matcher, which takes
 * patterns and subjects from clients: the input is lines, each one added
 * as a pattern (refused exactly when it is invalid) and then matched as a
 * subject, the count checked against a naive matcher written here; then
 * every pattern is removed again and the trie must be left with no node.
 *
 * FUZZ_SRC: src/topic/trie.c src/core/map.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic/trie.h"

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length of the token at p, up to '.' or the end. */
static size_t
tok_len(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *dot = memchr(p, '.', (size_t)(end - p));

    return (size_t)((dot != NULL ? dot : end) - p);
}

/* Token by token, "*" any one, a final ">" one or more; both valid. */
static int
ref_match(struct slice pat, struct slice subj)
{
    const uint8_t *p = pat.p, *pe = pat.p + pat.len;
    const uint8_t *s = subj.p, *se = subj.p + subj.len;

    for (;;) {
        size_t pl = tok_len(p, pe), sl = tok_len(s, se);

        if (pl == 1 && p[0] == '>') {
            return 1;
        }
        if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl))) {
            return 0;
        }
        p += pl;
        s += sl;
        if (p == pe || s == se) {
            return p == pe && s == se;
        }
        p++;
        s++;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice lines[MAX_LINES];
    int added[MAX_LINES];
    struct topic_trie t;
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= size && n < MAX_LINES; i++) {
        if (i == size || data[i] == '\n') {
            lines[n].p = data + start;
            lines[n].len = i - start;
            n++;
            start = i + 1;
        }
    }
    topic_trie_init(&t);
    for (size_t i = 0; i < n; i++) {
        ferry_err err = topic_trie_add(&t, lines[i], (void *)(uintptr_t)i);

        added[i] = err == FERRY_OK;
        if (err != (topic_pattern_is_valid(lines[i])
                        ? FERRY_OK
                        : FERRY_EINVALID_ARGUMENT)) {
            abort();
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t want = 0;

        if (topic_subject_is_valid(lines[k])) {
            for (size_t i = 0; i < n; i++) {
                want += added[i] && ref_match(lines[i], lines[k]);
            }
        }
        if (topic_trie_match(&t, lines[k], NULL, NULL) != want) {
            abort();
        }
    }
    /* Backwards, so prunes meet nodes other patterns still share. */
    for (size_t i = n; i-- > 0;) {
        if (topic_trie_remove(&t, lines[i], (void *)(uintptr_t)i) != added[i]) {
            abort();
        }
    }
    if (topic_trie_count(&t) != 0 || topic_trie_nodes(&t) != 0 ||
        (n > 0 && topic_trie_remove(&t, lines[0], (void *)0))) {
        abort();
    }
    topic_trie_release(&t);
    return 0;
}
