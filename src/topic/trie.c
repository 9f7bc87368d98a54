/* SPDX-License-Identifier: MIT */
/*
 * trie.c - the subject matcher (see trie.h). Each node is one token of
 * some pattern: its literal children sit in a byte-keyed hash map (the
 * smap of core/map.h, keyed by the child's own copy of its token), its "*"
 * child beside them. A pattern ending in ">" needs no node of its own: its
 * values sit in the "rest" array of the node before the ">", so a match
 * collects them at every level with tokens left over.
 *
 * A node lives only while it holds a value or a child: every removal, and
 * every add that fails half-way, prunes the path it walked bottom-up, so
 * the trie never keeps memory for patterns that are gone.
 */
#include "topic/trie.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/map.h"

/* At 255 bytes a subject has at most 128 one-byte tokens: the token bound
 * is reached only with the length bound, never before it. */
_Static_assert((TOPIC_MAX_LEN + 1) / 2 <= TOPIC_MAX_TOKENS,
               "a subject of TOPIC_MAX_LEN bytes fits TOPIC_MAX_TOKENS");

/* A growable array of borrowed values. */
struct topic_vals {
    void **v;   /* owned, cap slots; NULL when cap is 0 */
    size_t n;   /* values in use */
    size_t cap; /* slots allocated */
};

/* Owned by its parent (the root by the trie). */
struct topic_node {
    struct smap kids;        /* literal children, keys borrowed from their
                                tok; values owned */
    struct topic_node *star; /* owned: the "*" child, or NULL */
    struct topic_vals here;  /* patterns ending at this token */
    struct topic_vals rest;  /* patterns ending with ">" after it */
    size_t len;              /* bytes of tok */
    uint8_t tok[];           /* this node's token (empty for the root) */
};

/* Splits s into tokens, checking each as a subject's or, with pattern, as
 * a pattern's; false when s is invalid. */
static bool
topic_split(struct slice s, bool pattern, struct slice *toks, size_t *n)
{
    size_t start = 0, k = 0;

    if (s.len == 0 || s.len > TOPIC_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i <= s.len; i++) {
        uint8_t c = i < s.len ? s.p[i] : '.';
        size_t len = i - start;

        if (c != '.') {
            if (c < 0x21 || c > 0x7e) {
                return false;
            }
            continue;
        }
        if (len == 0 || k == TOPIC_MAX_TOKENS) {
            return false;
        }
        for (size_t j = start; j < i; j++) {
            uint8_t w = s.p[j];
            /* A wildcard only as a whole token of a pattern, and ">"
             * only as its last one. */
            if ((w == '*' || w == '>') &&
                (!pattern || len != 1 || (w == '>' && i != s.len))) {
                return false;
            }
        }
        toks[k].p = s.p + start;
        toks[k].len = len;
        k++;
        start = i + 1;
    }
    *n = k;
    return true;
}

bool
topic_subject_is_valid(struct slice s)
{
    struct slice toks[TOPIC_MAX_TOKENS];
    size_t n;

    return topic_split(s, false, toks, &n);
}

bool
topic_pattern_is_valid(struct slice p)
{
    struct slice toks[TOPIC_MAX_TOKENS];
    size_t n;

    return topic_split(p, true, toks, &n);
}

static bool
topic_is_tok(struct slice tok, char c)
{
    return tok.len == 1 && tok.p[0] == (uint8_t)c;
}

static ferry_err
topic_vals_push(struct topic_vals *a, void *val)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 2;
        void **v;

        if (cap > SIZE_MAX / sizeof(*v) ||
            (v = realloc(a->v, cap * sizeof(*v))) == NULL) {
            return FERRY_ENOMEM;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = val;
    return FERRY_OK;
}

/* Removes one copy of val; the order of the others may change. */
static bool
topic_vals_remove(struct topic_vals *a, void *val)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i] == val) {
            a->v[i] = a->v[--a->n];
            if (a->n == 0) {
                /* A node kept for its children holds no dead array. */
                free(a->v);
                a->v = NULL;
                a->cap = 0;
            }
            return true;
        }
    }
    return false;
}

static struct topic_node *
topic_node_new(struct topic_trie *t, struct slice tok)
{
    struct topic_node *nd = malloc(sizeof(*nd) + tok.len);

    if (nd == NULL) {
        return NULL;
    }
    smap_init(&nd->kids);
    nd->star = NULL;
    memset(&nd->here, 0, sizeof(nd->here));
    memset(&nd->rest, 0, sizeof(nd->rest));
    nd->len = tok.len;
    if (tok.len > 0) {
        memcpy(nd->tok, tok.p, tok.len);
    }
    t->nodes++;
    return nd;
}

static bool
topic_node_is_empty(const struct topic_node *nd)
{
    return nd->kids.n == 0 && nd->star == NULL && nd->here.n == 0 &&
           nd->rest.n == 0;
}

/* Frees nd and everything under it. */
static void
topic_node_free(struct topic_trie *t, struct topic_node *nd)
{
    size_t pos = 0;
    void *kid;

    while (smap_next(&nd->kids, &pos, &kid)) {
        topic_node_free(t, kid);
    }
    if (nd->star != NULL) {
        topic_node_free(t, nd->star);
    }
    smap_release(&nd->kids);
    free(nd->here.v);
    free(nd->rest.v);
    free(nd);
    t->nodes--;
}

static struct topic_node *
topic_node_child(const struct topic_node *nd, struct slice tok)
{
    if (topic_is_tok(tok, '*')) {
        return nd->star;
    }
    return smap_get(&nd->kids, tok.p, tok.len);
}

/* The child of nd for tok, made when missing; NULL when out of memory. */
static struct topic_node *
topic_node_child_add(struct topic_trie *t, struct topic_node *nd,
                     struct slice tok)
{
    struct topic_node *kid = topic_node_child(nd, tok);

    if (kid != NULL) {
        return kid;
    }
    kid = topic_node_new(t, tok);
    if (kid == NULL) {
        return NULL;
    }
    if (topic_is_tok(tok, '*')) {
        nd->star = kid;
    } else if (smap_put(&nd->kids, kid->tok, kid->len, kid) != FERRY_OK) {
        topic_node_free(t, kid);
        return NULL;
    }
    return kid;
}

/* Frees path[depth] and the nodes above it while they are empty. */
static void
topic_prune(struct topic_trie *t, struct topic_node **path, size_t depth)
{
    for (size_t i = depth;; i--) {
        struct topic_node *nd = path[i];

        if (!topic_node_is_empty(nd)) {
            return;
        }
        if (i == 0) {
            topic_node_free(t, nd);
            t->root = NULL;
            return;
        }
        if (path[i - 1]->star == nd) {
            path[i - 1]->star = NULL;
        } else {
            smap_del(&path[i - 1]->kids, nd->tok, nd->len);
        }
        topic_node_free(t, nd);
    }
}

void
topic_trie_init(struct topic_trie *t)
{
    t->root = NULL;
    t->entries = 0;
    t->nodes = 0;
}

void
topic_trie_release(struct topic_trie *t)
{
    if (t->root != NULL) {
        topic_node_free(t, t->root);
    }
    assert(t->nodes == 0);
    topic_trie_init(t);
}

ferry_err
topic_trie_add(struct topic_trie *t, struct slice pattern, void *val)
{
    static const struct slice root_tok = {NULL, 0};
    struct slice toks[TOPIC_MAX_TOKENS];
    struct topic_node *path[TOPIC_MAX_TOKENS + 1];
    struct topic_node *end;
    size_t n, depth;
    bool rest;
    ferry_err err;

    if (!topic_split(pattern, true, toks, &n)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    rest = topic_is_tok(toks[n - 1], '>');
    n -= rest;
    if (t->root == NULL && (t->root = topic_node_new(t, root_tok)) == NULL) {
        return FERRY_ENOMEM;
    }
    path[0] = t->root;
    for (depth = 0; depth < n; depth++) {
        struct topic_node *kid =
            topic_node_child_add(t, path[depth], toks[depth]);

        if (kid == NULL) {
            err = FERRY_ENOMEM;
            goto out_prune;
        }
        path[depth + 1] = kid;
    }
    end = path[n];
    err = topic_vals_push(rest ? &end->rest : &end->here, val);
    if (err != FERRY_OK) {
        goto out_prune;
    }
    t->entries++;
    return FERRY_OK;

out_prune:
    /* Only the nodes made here are empty: the trie is as it was. */
    topic_prune(t, path, depth);
    return err;
}

bool
topic_trie_remove(struct topic_trie *t, struct slice pattern, void *val)
{
    struct slice toks[TOPIC_MAX_TOKENS];
    struct topic_node *path[TOPIC_MAX_TOKENS + 1];
    struct topic_node *end;
    size_t n;
    bool rest;

    if (!topic_split(pattern, true, toks, &n) || t->root == NULL) {
        return false;
    }
    rest = topic_is_tok(toks[n - 1], '>');
    n -= rest;
    path[0] = t->root;
    for (size_t i = 0; i < n; i++) {
        path[i + 1] = topic_node_child(path[i], toks[i]);
        if (path[i + 1] == NULL) {
            return false;
        }
    }
    end = path[n];
    if (!topic_vals_remove(rest ? &end->rest : &end->here, val)) {
        return false;
    }
    t->entries--;
    topic_prune(t, path, n);
    return true;
}

/* What one match carries down the walk. */
struct topic_walk {
    const struct slice *toks; /* borrowed: the subject's tokens */
    size_t n;                 /* tokens in toks */
    topic_match_cb cb;        /* borrowed, or NULL */
    void *arg;                /* borrowed, for cb */
    size_t count;             /* entries matched so far */
};

static void
topic_walk_report(struct topic_walk *w, const struct topic_vals *a)
{
    if (w->cb != NULL) {
        for (size_t i = 0; i < a->n; i++) {
            w->cb(a->v[i], w->arg);
        }
    }
    w->count += a->n;
}

/*
 * Matches the tokens from i on under nd. Recursion depth is at most the
 * subject's tokens (128), and each node is visited at most once: a node
 * stands for one pattern prefix, which meets the subject at one depth.
 */
static void
topic_walk(struct topic_walk *w, const struct topic_node *nd, size_t i)
{
    const struct topic_node *kid;

    if (i == w->n) {
        topic_walk_report(w, &nd->here);
        return;
    }
    /* ">" takes the tokens left over, and there is at least one. */
    topic_walk_report(w, &nd->rest);
    if (nd->star != NULL) {
        topic_walk(w, nd->star, i + 1);
    }
    kid = smap_get(&nd->kids, w->toks[i].p, w->toks[i].len);
    if (kid != NULL) {
        topic_walk(w, kid, i + 1);
    }
}

size_t
topic_trie_match(const struct topic_trie *t, struct slice subject,
                 topic_match_cb cb, void *arg)
{
    struct slice toks[TOPIC_MAX_TOKENS];
    struct topic_walk w = {toks, 0, cb, arg, 0};

    if (t->root == NULL || !topic_split(subject, false, toks, &w.n)) {
        return 0;
    }
    topic_walk(&w, t->root, 0);
    return w.count;
}

size_t
topic_trie_count(const struct topic_trie *t)
{
    return t->entries;
}

size_t
topic_trie_nodes(const struct topic_trie *t)
{
    return t->nodes;
}
