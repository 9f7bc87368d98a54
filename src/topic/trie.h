/* SPDX-License-Identifier: MIT */
/*
 * trie.h - the subject matcher of publish/subscribe: subscriptions are
 * stored as patterns in a token trie, and a published subject is walked
 * through it token by token to find every subscriber it reaches.
 *
 * A subject is 1..255 bytes of dot-separated tokens, each non-empty and
 * made of printable ASCII (0x21..0x7e) other than '.', '*' and '>'. A
 * pattern is the same, except that a token may be exactly "*" (any one
 * token) and the last token may be exactly ">" (one or more remaining
 * tokens): "a.>" matches "a.b" and "a.b.c", not "a"; ">" matches every
 * subject.
 *
 * Pure C, no libuv, no locking: one trie belongs to one loop.
 */
#ifndef FERRY_TOPIC_TRIE_H
#define FERRY_TOPIC_TRIE_H

#include <stdbool.h>
#include <stddef.h>

#include "ferry.h"
#include "proto/frame.h"

#define TOPIC_MAX_LEN 255    /* bytes of a subject or pattern */
#define TOPIC_MAX_TOKENS 128 /* tokens of a subject or pattern */

struct topic_node;

/* The values matched, one call per stored entry; must not change the trie
 * it was called from. */
typedef void (*topic_match_cb)(void *val, void *arg);

/* Embedded in its owner. */
struct topic_trie {
    struct topic_node *root; /* owned; NULL while the trie is empty */
    size_t entries;          /* (pattern, val) entries stored */
    size_t nodes;            /* nodes allocated, root included */
};

bool topic_subject_is_valid(struct slice s);
bool topic_pattern_is_valid(struct slice p);

void topic_trie_init(struct topic_trie *t);

/* Frees every node; the values are borrowed and left alone. */
void topic_trie_release(struct topic_trie *t);

/*
 * Stores val (borrowed, any pointer, NULL included) under pattern, copying
 * the pattern's tokens. Adding the same (pattern, val) twice stores it
 * twice: it is then matched twice and must be removed twice. Returns
 * FERRY_EINVALID_ARGUMENT for an invalid pattern, FERRY_ENOMEM; on error
 * the trie is unchanged.
 */
ferry_err topic_trie_add(struct topic_trie *t, struct slice pattern, void *val);

/* Removes one entry (pattern, val) and the nodes left empty; false when
 * there is none (an invalid pattern included). */
bool topic_trie_remove(struct topic_trie *t, struct slice pattern, void *val);

/*
 * Calls cb (NULL: only count) once per stored entry whose pattern matches
 * subject, in no set order, and returns how many. An invalid subject
 * matches nothing. Allocates nothing.
 *
 * A val stored under two patterns that both match is reported twice: the
 * caller dedups, for example by stamping each subscriber with the
 * publish's sequence number and skipping one already stamped.
 */
size_t topic_trie_match(const struct topic_trie *t, struct slice subject,
                        topic_match_cb cb, void *arg);

/* Entries stored, and nodes allocated (0 once the trie is empty). */
size_t topic_trie_count(const struct topic_trie *t);
size_t topic_trie_nodes(const struct topic_trie *t);

#endif
