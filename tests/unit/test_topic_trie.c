/* SPDX-License-Identifier: MIT */
/*
 * test_topic_trie.c - the subject matcher of publish/subscribe: tables of
 * valid and invalid subjects and patterns and of what matches what; adds
 * and removes down to no node at all; several values on one pattern; a
 * thousand subscribers and one subject; each allocation failed in turn;
 * and random patterns and subjects against a naive matcher written here.
 *
 * The Makefile links this test with malloc, calloc and realloc wrapped
 * (-Wl,--wrap), so the trie's allocations and its child maps' go through
 * __wrap_* below, which can fail them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topic/trie.h"

/* Allocations left before one fails; SIZE_MAX = never. */
static size_t fail_after = SIZE_MAX;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool
alloc_fails(void)
{
    if (fail_after == 0) {
        return true;
    }
    if (fail_after != SIZE_MAX) {
        fail_after--;
    }
    return false;
}

void *
__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t k, size_t n)
{
    return alloc_fails() ? NULL : __real_calloc(k, n);
}

void *
__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

static struct slice
sl(const char *s)
{
    struct slice r = {(const uint8_t *)s, strlen(s)};
    return r;
}

static void
count_cb(void *val, void *arg)
{
    (*(size_t *)arg)++;
}

/* Marks seen[val - 1]; vals are small integers from 1. */
struct seen {
    unsigned char *hits; /* borrowed, cap entries */
    size_t cap;          /* entries in hits */
};

static void
seen_cb(void *val, void *arg)
{
    struct seen *s = arg;
    uintptr_t i = (uintptr_t)val;

    assert_true(i >= 1 && i <= s->cap);
    s->hits[i - 1]++;
}

static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * The reference: both strings split on '.', compared token by token, "*"
 * taking any one token and a final ">" one or more. Assumes both valid.
 */
static bool
ref_match(const char *pattern, const char *subject)
{
    const char *p = pattern, *s = subject;

    for (;;) {
        size_t plen = strcspn(p, "."), slen = strcspn(s, ".");

        if (plen == 1 && p[0] == '>') {
            return true;
        }
        if (!(plen == 1 && p[0] == '*') &&
            (plen != slen || memcmp(p, s, plen) != 0)) {
            return false;
        }
        p += plen;
        s += slen;
        if (*p == '\0' || *s == '\0') {
            return *p == '\0' && *s == '\0';
        }
        p++;
        s++;
    }
}

static void
test_subject_validity(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } rows[] = {
        {"a", true},           {"a.b", true},
        {"foo.bar.baz", true}, {"A-Z_0~9!", true},
        {"a.b.c.d.e", true},   {"x{}|\"'#$%&", true},
        {"", false},           {".", false},
        {"a..b", false},       {".a", false},
        {"a.", false},         {"..", false},
        {"a b", false},        {"a\tb", false},
        {"a\x7f", false},      {"caf\xc3\xa9", false},
        {"*", false},          {">", false},
        {"a.*", false},        {"a.>", false},
        {"a*", false},         {"a.b>", false},
        {"*.a", false},
    };
    char big[TOPIC_MAX_LEN + 2];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (topic_subject_is_valid(sl(rows[i].s)) != rows[i].ok) {
            fail_msg("subject '%s': expected %s", rows[i].s,
                     rows[i].ok ? "valid" : "invalid");
        }
    }
    /* A NUL inside the bytes is not a printable byte. */
    assert_false(
        topic_subject_is_valid((struct slice){(const uint8_t *)"a\0b", 3}));
    /* 255 bytes pass, 256 do not. */
    memset(big, 'x', sizeof(big));
    assert_true(topic_subject_is_valid(
        (struct slice){(const uint8_t *)big, TOPIC_MAX_LEN}));
    assert_false(topic_subject_is_valid(
        (struct slice){(const uint8_t *)big, TOPIC_MAX_LEN + 1}));
    /* 128 one-byte tokens are exactly 255 bytes. */
    for (size_t i = 1; i < sizeof(big); i += 2) {
        big[i] = '.';
    }
    assert_true(topic_subject_is_valid(
        (struct slice){(const uint8_t *)big, TOPIC_MAX_LEN}));
}

static void
test_pattern_validity(void **state)
{
    static const struct {
        const char *p;
        bool ok;
    } rows[] = {
        {"a", true},     {"a.b", true},     {"*", true},     {">", true},
        {"a.*", true},   {"*.a", true},     {"a.>", true},   {"*.>", true},
        {"*.*.*", true}, {"a.*.b.>", true}, {"", false},     {".", false},
        {"a..b", false}, {".a", false},     {"a.", false},   {"a*", false},
        {"*a", false},   {">b", false},     {"b>", false},   {"**", false},
        {">>", false},   {"a.>.b", false},  {">.a", false},  {">.>", false},
        {"a.*b", false}, {"a. b", false},   {"a.>.", false}, {"*.", false},
    };
    char big[TOPIC_MAX_LEN + 2];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (topic_pattern_is_valid(sl(rows[i].p)) != rows[i].ok) {
            fail_msg("pattern '%s': expected %s", rows[i].p,
                     rows[i].ok ? "valid" : "invalid");
        }
    }
    memset(big, '*', sizeof(big));
    for (size_t i = 1; i < sizeof(big); i += 2) {
        big[i] = '.';
    }
    big[TOPIC_MAX_LEN - 1] = '>';
    assert_true(topic_pattern_is_valid(
        (struct slice){(const uint8_t *)big, TOPIC_MAX_LEN}));
    big[TOPIC_MAX_LEN] = 'x';
    assert_false(topic_pattern_is_valid(
        (struct slice){(const uint8_t *)big, TOPIC_MAX_LEN + 1}));
}

static void
test_match_table(void **state)
{
    static const struct {
        const char *pattern;
        const char *subject;
        bool match;
    } rows[] = {
        {"a", "a", true},
        {"a", "b", false},
        {"a", "a.b", false},
        {"a.b", "a", false},
        {"a.b", "a.b", true},
        {"a.b", "a.c", false},
        {"a.b", "ab", false},
        {"ab", "a.b", false},
        {"abc", "ab", false},
        {"ab", "abc", false},
        {"*", "a", true},
        {"*", "a.b", false},
        {"a.*", "a.b", true},
        {"a.*", "a", false},
        {"a.*", "a.b.c", false},
        {"*.b", "a.b", true},
        {"*.b", "a.c", false},
        {"*.*", "a.b", true},
        {"*.*", "a", false},
        {"a.*.c", "a.b.c", true},
        {"a.*.c", "a.b.d", false},
        {"a.*.c", "a.c", false},
        {">", "a", true},
        {">", "a.b.c", true},
        {"a.>", "a", false},
        {"a.>", "a.b", true},
        {"a.>", "a.b.c", true},
        {"a.>", "b.c", false},
        {"a.b.>", "a.b", false},
        {"a.b.>", "a.b.c.d.e", true},
        {"*.>", "a", false},
        {"*.>", "a.b", true},
        {"a.*.>", "a.b", false},
        {"a.*.>", "a.b.c", true},
        {"*.*.>", "x.y.z", true},
        {"foo.bar", "foo.bar", true},
        {"foo.bar", "foo.baz", false},
        {"foo.*.baz", "foo.bar.baz", true},
        /* The literal "*" or ">" cannot be a subject. */
        {"*", "*", false},
        {">", ">", false},
        {"a.>", "a.>", false},
        /* Case matters; bytes are compared, not letters. */
        {"A", "a", false},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct topic_trie t;
        size_t calls = 0, n;
        int v;

        topic_trie_init(&t);
        assert_int_equal(topic_trie_add(&t, sl(rows[i].pattern), &v), FERRY_OK);
        n = topic_trie_match(&t, sl(rows[i].subject), count_cb, &calls);
        if (n != (rows[i].match ? 1u : 0u) || calls != n) {
            fail_msg("pattern '%s' subject '%s': %zu matches, %zu calls",
                     rows[i].pattern, rows[i].subject, n, calls);
        }
        /* The naive matcher agrees, where the subject is valid. */
        if (topic_subject_is_valid(sl(rows[i].subject))) {
            assert_int_equal(ref_match(rows[i].pattern, rows[i].subject),
                             rows[i].match);
        }
        topic_trie_release(&t);
        assert_int_equal(topic_trie_nodes(&t), 0);
    }
}

static void
test_add_remove_prune(void **state)
{
    static const char *pats[] = {
        "a", "a.b", "a.b.c", "a.*", "a.*.c", "a.>", ">", "*", "*.b.>", "x.y.z",
    };
    const size_t np = sizeof(pats) / sizeof(pats[0]);
    struct topic_trie t;
    int v[10];

    topic_trie_init(&t);
    assert_int_equal(topic_trie_nodes(&t), 0);
    assert_int_equal(topic_trie_match(&t, sl("a"), NULL, NULL), 0);
    assert_false(topic_trie_remove(&t, sl("a"), &v[0]));

    /* Invalid patterns are refused and leave nothing behind. */
    assert_int_equal(topic_trie_add(&t, sl("a..b"), &v[0]),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(topic_trie_add(&t, sl("a.>.b"), &v[0]),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(topic_trie_count(&t), 0);
    assert_int_equal(topic_trie_nodes(&t), 0);

    /* One pattern: the root and one node per token but ">". */
    assert_int_equal(topic_trie_add(&t, sl("a.b.>"), &v[0]), FERRY_OK);
    assert_int_equal(topic_trie_nodes(&t), 3);
    assert_true(topic_trie_remove(&t, sl("a.b.>"), &v[0]));
    assert_int_equal(topic_trie_nodes(&t), 0);

    for (size_t i = 0; i < np; i++) {
        assert_int_equal(topic_trie_add(&t, sl(pats[i]), &v[i]), FERRY_OK);
    }
    assert_int_equal(topic_trie_count(&t), np);
    /* a.b: a.b, a.*, a.>, >, *.b.> is not (needs a third token). */
    assert_int_equal(topic_trie_match(&t, sl("a.b"), NULL, NULL), 4);
    assert_int_equal(topic_trie_match(&t, sl("a.b.c"), NULL, NULL), 5);

    /* Absent entries: another value, a prefix, a longer pattern. */
    assert_false(topic_trie_remove(&t, sl("a.b"), &v[0]));
    assert_false(topic_trie_remove(&t, sl("a.b.c.d"), &v[2]));
    assert_false(topic_trie_remove(&t, sl("x.y"), &v[9]));
    assert_false(topic_trie_remove(&t, sl("a.b.>"), &v[1]));
    assert_false(topic_trie_remove(&t, sl("a..b"), &v[1]));
    assert_int_equal(topic_trie_count(&t), np);

    /* Removing a leaf prunes its branch, and only that. */
    {
        size_t before = topic_trie_nodes(&t);

        assert_true(topic_trie_remove(&t, sl("x.y.z"), &v[9]));
        assert_int_equal(topic_trie_nodes(&t), before - 3);
        assert_false(topic_trie_remove(&t, sl("x.y.z"), &v[9]));
    }
    /* Removing an inner pattern keeps the node for its children. */
    assert_true(topic_trie_remove(&t, sl("a.b"), &v[1]));
    assert_int_equal(topic_trie_match(&t, sl("a.b.c"), NULL, NULL), 5);
    assert_int_equal(topic_trie_match(&t, sl("a.b"), NULL, NULL), 3);

    for (size_t i = 0; i < np - 1; i++) {
        if (i != 1) {
            assert_true(topic_trie_remove(&t, sl(pats[i]), &v[i]));
        }
    }
    assert_int_equal(topic_trie_count(&t), 0);
    assert_int_equal(topic_trie_nodes(&t), 0);
    assert_null(t.root);
    assert_int_equal(topic_trie_match(&t, sl("a.b"), NULL, NULL), 0);

    /* Release frees what is still there. */
    for (size_t i = 0; i < np; i++) {
        assert_int_equal(topic_trie_add(&t, sl(pats[i]), &v[i]), FERRY_OK);
    }
    topic_trie_release(&t);
    assert_int_equal(topic_trie_nodes(&t), 0);
    assert_int_equal(topic_trie_count(&t), 0);
}

static void
test_values_on_one_pattern(void **state)
{
    struct topic_trie t;
    unsigned char hits[4] = {0};
    struct seen s = {hits, 4};
    void *a = (void *)1, *b = (void *)2, *c = (void *)3;

    topic_trie_init(&t);
    assert_int_equal(topic_trie_add(&t, sl("q.*"), a), FERRY_OK);
    assert_int_equal(topic_trie_add(&t, sl("q.*"), b), FERRY_OK);
    assert_int_equal(topic_trie_add(&t, sl("q.*"), c), FERRY_OK);
    /* The same entry twice is stored twice. */
    assert_int_equal(topic_trie_add(&t, sl("q.*"), a), FERRY_OK);
    /* The same value on another pattern that matches too: reported for
     * each, the caller dedups. */
    assert_int_equal(topic_trie_add(&t, sl("q.>"), b), FERRY_OK);
    assert_int_equal(topic_trie_count(&t), 5);

    assert_int_equal(topic_trie_match(&t, sl("q.x"), seen_cb, &s), 5);
    assert_int_equal(hits[0], 2);
    assert_int_equal(hits[1], 2);
    assert_int_equal(hits[2], 1);

    assert_true(topic_trie_remove(&t, sl("q.*"), a));
    assert_int_equal(topic_trie_match(&t, sl("q.x"), NULL, NULL), 4);
    assert_true(topic_trie_remove(&t, sl("q.*"), a));
    assert_false(topic_trie_remove(&t, sl("q.*"), a));
    assert_true(topic_trie_remove(&t, sl("q.*"), b));
    memset(hits, 0, sizeof(hits));
    assert_int_equal(topic_trie_match(&t, sl("q.x"), seen_cb, &s), 2);
    assert_int_equal(hits[0], 0);
    assert_int_equal(hits[1], 1);
    assert_int_equal(hits[2], 1);
    /* NULL is a value like any other. */
    assert_int_equal(topic_trie_add(&t, sl("q.x"), NULL), FERRY_OK);
    assert_int_equal(topic_trie_match(&t, sl("q.x"), NULL, NULL), 3);
    assert_true(topic_trie_remove(&t, sl("q.x"), NULL));
    assert_true(topic_trie_remove(&t, sl("q.*"), c));
    assert_true(topic_trie_remove(&t, sl("q.>"), b));
    assert_int_equal(topic_trie_nodes(&t), 0);
    topic_trie_release(&t);
}

/* Subscriber i takes one of four shapes by i % 4; the subject reaches
 * every "svc.*.ev" and the one literal "svc.40.ev", nothing else. */
static void
test_thousand_subscribers(void **state)
{
    enum { SUBS = 1000 };
    static char pats[SUBS][32];
    unsigned char hits[SUBS] = {0};
    struct seen s = {hits, SUBS};
    struct topic_trie t;
    size_t expect = 0;

    topic_trie_init(&t);
    for (size_t i = 0; i < SUBS; i++) {
        switch (i % 4) {
        case 0:
            snprintf(pats[i], sizeof(pats[i]), "svc.%zu.ev", i);
            break;
        case 1:
            snprintf(pats[i], sizeof(pats[i]), "svc.*.ev");
            break;
        case 2:
            snprintf(pats[i], sizeof(pats[i]), "svc.%zu.ev.>", i);
            break;
        default:
            snprintf(pats[i], sizeof(pats[i]), "other.%zu", i);
            break;
        }
        assert_int_equal(
            topic_trie_add(&t, sl(pats[i]), (void *)(uintptr_t)(i + 1)),
            FERRY_OK);
    }
    assert_int_equal(topic_trie_count(&t), SUBS);
    assert_int_equal(topic_trie_match(&t, sl("svc.40.ev"), seen_cb, &s),
                     SUBS / 4 + 1);
    for (size_t i = 0; i < SUBS; i++) {
        bool want = i % 4 == 1 || i == 40;

        assert_int_equal(hits[i], want);
        expect += want;
    }
    assert_int_equal(expect, SUBS / 4 + 1);
    /* One level deeper: only the ">" of subscriber 42. */
    memset(hits, 0, sizeof(hits));
    assert_int_equal(topic_trie_match(&t, sl("svc.42.ev.x.y"), seen_cb, &s), 1);
    assert_int_equal(hits[42], 1);
    assert_int_equal(topic_trie_match(&t, sl("other.999"), NULL, NULL), 1);
    assert_int_equal(topic_trie_match(&t, sl("other.1000"), NULL, NULL), 0);

    for (size_t i = 0; i < SUBS; i++) {
        assert_true(
            topic_trie_remove(&t, sl(pats[i]), (void *)(uintptr_t)(i + 1)));
    }
    assert_int_equal(topic_trie_count(&t), 0);
    assert_int_equal(topic_trie_nodes(&t), 0);
    topic_trie_release(&t);
}

/* The longest patterns and subjects: 128 tokens, 255 bytes. */
static void
test_deepest(void **state)
{
    char subj[TOPIC_MAX_LEN + 1], pat[TOPIC_MAX_LEN + 1];
    struct slice s = {(const uint8_t *)subj, TOPIC_MAX_LEN};
    struct slice p = {(const uint8_t *)pat, TOPIC_MAX_LEN};
    struct topic_trie t;
    int v;

    memset(subj, 'a', sizeof(subj));
    for (size_t i = 1; i < TOPIC_MAX_LEN; i += 2) {
        subj[i] = '.';
    }
    memcpy(pat, subj, sizeof(pat));
    topic_trie_init(&t);
    assert_int_equal(topic_trie_add(&t, s, &v), FERRY_OK);
    assert_int_equal(topic_trie_nodes(&t), TOPIC_MAX_TOKENS + 1);
    pat[TOPIC_MAX_LEN - 1] = '>';
    assert_int_equal(topic_trie_add(&t, p, &v), FERRY_OK);
    pat[TOPIC_MAX_LEN - 1] = '*';
    pat[0] = '*';
    assert_int_equal(topic_trie_add(&t, p, &v), FERRY_OK);
    /* All three at 128 tokens; at 127 none: the ">" wants a 128th. */
    assert_int_equal(topic_trie_match(&t, s, NULL, NULL), 3);
    s.len -= 2;
    assert_int_equal(topic_trie_match(&t, s, NULL, NULL), 0);
    /* One more byte is refused before anything is allocated. */
    p.len = TOPIC_MAX_LEN + 1;
    assert_int_equal(topic_trie_add(&t, p, &v), FERRY_EINVALID_ARGUMENT);
    topic_trie_release(&t);
    assert_int_equal(topic_trie_nodes(&t), 0);
}

/* Collects what one match reports, to compare before and after. */
static size_t
match_all(const struct topic_trie *t, const char **subjects, size_t n)
{
    size_t total = 0;

    for (size_t i = 0; i < n; i++) {
        total = total * 31 + topic_trie_match(t, sl(subjects[i]), NULL, NULL);
    }
    return total;
}

/* Each allocation of an add failed in turn: every failure leaves the
 * trie's entries, nodes and matches as they were. */
static void
test_out_of_memory(void **state)
{
    static const char *subjects[] = {"a", "a.b", "a.b.c", "k.x", "z.q.r.s"};
    static const char *adds[] = {"a.b.c.d.e", "a.*.c", "k.>", "z.q.r.s",
                                 "new.*.deep.>"};
    struct topic_trie t;
    char name[16];
    int v;

    topic_trie_init(&t);
    /* Twelve literal children at the root: the thirteenth, "k" of "k.>",
     * grows its map. */
    assert_int_equal(topic_trie_add(&t, sl("a.b"), &v), FERRY_OK);
    for (int i = 0; i < 11; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(topic_trie_add(&t, sl(name), &v), FERRY_OK);
    }
    for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
        size_t k = 0;
        ferry_err err;

        do {
            size_t entries = topic_trie_count(&t);
            size_t nodes = topic_trie_nodes(&t);
            size_t before = match_all(&t, subjects, 5);

            fail_after = k++;
            err = topic_trie_add(&t, sl(adds[i]), &v);
            fail_after = SIZE_MAX;
            if (err == FERRY_ENOMEM) {
                assert_int_equal(topic_trie_count(&t), entries);
                assert_int_equal(topic_trie_nodes(&t), nodes);
                assert_int_equal(match_all(&t, subjects, 5), before);
            } else {
                assert_int_equal(err, FERRY_OK);
                assert_int_equal(topic_trie_count(&t), entries + 1);
            }
        } while (err == FERRY_ENOMEM);
        /* Each add had allocations to fail. */
        assert_true(k > 1);
    }
    /* Matching allocates nothing: it works with every allocation failing. */
    fail_after = 0;
    assert_int_equal(topic_trie_match(&t, sl("a.b.c"), NULL, NULL), 1);
    assert_int_equal(topic_trie_match(&t, sl("k.x"), NULL, NULL), 1);
    fail_after = SIZE_MAX;
    topic_trie_release(&t);
}

/*
 * Random patterns and subjects over three letters, the trie against
 * ref_match(): after each batch of adds and removes, every subject's
 * matched set must be exactly the reference's.
 */
static void
test_random_against_reference(void **state)
{
    enum { PATS = 300, SUBJECTS = 200, ROUNDS = 6 };
    static char pats[PATS][16], subjects[SUBJECTS][16];
    static const char *toks[] = {"a", "b", "c", "*", ">"};
    static bool in[PATS];
    unsigned char hits[PATS];
    struct seen s = {hits, PATS};
    struct topic_trie t;
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < PATS; i++) {
        size_t n = 1 + next_rand(&seed) % 4, len = 0;

        for (size_t j = 0; j < n; j++) {
            /* ">" only last; three in five tokens literal. */
            const char *tok = toks[next_rand(&seed) % (j + 1 == n ? 5 : 4)];

            len += (size_t)snprintf(pats[i] + len, sizeof(pats[i]) - len,
                                    "%s%s", j ? "." : "", tok);
        }
        assert_true(topic_pattern_is_valid(sl(pats[i])));
    }
    for (size_t i = 0; i < SUBJECTS; i++) {
        size_t n = 1 + next_rand(&seed) % 5, len = 0;

        for (size_t j = 0; j < n; j++) {
            len += (size_t)snprintf(subjects[i] + len,
                                    sizeof(subjects[i]) - len, "%s%s",
                                    j ? "." : "", toks[next_rand(&seed) % 3]);
        }
        assert_true(topic_subject_is_valid(sl(subjects[i])));
    }
    memset(in, 0, sizeof(in));
    topic_trie_init(&t);
    for (int round = 0; round < ROUNDS; round++) {
        size_t stored = 0;

        /* Flip about a third of the patterns in or out. */
        for (size_t i = 0; i < PATS; i++) {
            if (next_rand(&seed) % 3 != 0) {
                continue;
            }
            if (in[i]) {
                assert_true(topic_trie_remove(&t, sl(pats[i]),
                                              (void *)(uintptr_t)(i + 1)));
            } else {
                assert_int_equal(
                    topic_trie_add(&t, sl(pats[i]), (void *)(uintptr_t)(i + 1)),
                    FERRY_OK);
            }
            in[i] = !in[i];
        }
        for (size_t i = 0; i < PATS; i++) {
            stored += in[i];
        }
        assert_int_equal(topic_trie_count(&t), stored);
        for (size_t k = 0; k < SUBJECTS; k++) {
            size_t want = 0, n;

            memset(hits, 0, sizeof(hits));
            n = topic_trie_match(&t, sl(subjects[k]), seen_cb, &s);
            for (size_t i = 0; i < PATS; i++) {
                bool m = in[i] && ref_match(pats[i], subjects[k]);

                if (hits[i] != m) {
                    fail_msg("pattern '%s' subject '%s': trie %d, ref %d",
                             pats[i], subjects[k], hits[i], m);
                }
                want += m;
            }
            assert_int_equal(n, want);
        }
    }
    for (size_t i = 0; i < PATS; i++) {
        if (in[i]) {
            assert_true(
                topic_trie_remove(&t, sl(pats[i]), (void *)(uintptr_t)(i + 1)));
        }
    }
    assert_int_equal(topic_trie_count(&t), 0);
    assert_int_equal(topic_trie_nodes(&t), 0);
    topic_trie_release(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_validity),
        cmocka_unit_test(test_pattern_validity),
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_add_remove_prune),
        cmocka_unit_test(test_values_on_one_pattern),
        cmocka_unit_test(test_thousand_subscribers),
        cmocka_unit_test(test_deepest),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_random_against_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
