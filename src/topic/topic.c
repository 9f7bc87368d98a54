/* SPDX-License-Identifier: MIT */
/*
 * topic.c - ferry.topic (topic/topic.h): subscriptions and their groups
 * in the trie, routing a publish into the subscriptions' rings, the held
 * POLLs, expiry, the byte cap, ferryd's own events and the counters.
 *
 * Every subscription belongs to one group: a named group is shared by the
 * subscriptions of the same (pattern, name), an unnamed one is its own.
 * The trie holds one entry per group, so a publish reaches a subscription
 * at most once, and a named group's members take its messages in turn.
 *
 * Nothing here answers a held POLL from inside a publish: a routed
 * message only puts its subscription on the wake list, answered from an
 * idle handle once the loop turn's callbacks are done. So topic_emit() is
 * safe anywhere, the broker's own paths (circuit changes) included.
 */
#include "topic/topic.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/backend.h"
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/map.h"
#include "core/rand.h"
#include "core/timer.h"
#include "topic/ring.h"
#include "topic/trie.h"

/* What a pattern can match of ferryd's events: one family, any, none. */
#define TOPIC_FAM_ANY TOPIC_EV_COUNT
#define TOPIC_FAM_NONE (TOPIC_EV_COUNT + 1)

static const char *const topic_families[TOPIC_EV_COUNT] = {
    "queue",
    "kv",
    "worker",
    "circuit",
};

/* A distinct pattern, kept while a group uses it. */
struct topic_pat {
    uint32_t groups; /* groups with this pattern */
    uint8_t fam;     /* the event family it counts for (TOPIC_FAM_*) */
    uint16_t len;    /* bytes of text */
    char text[];     /* the pattern: the key in te->patterns */
};

/* One entry of the trie: the subscriptions that share messages. */
struct topic_group {
    struct topic_pat *pat; /* borrowed: its pattern */
    struct list members;   /* struct topic_sub (gnode): round-robin order,
                              the next to take a message first */
    struct list ready;     /* members with a POLL waiting and nothing
                              buffered (rnode), longest waiting first */
    uint32_t n_members;    /* entries of members */
    uint16_t klen;         /* bytes of key; 0: unnamed */
    uint8_t key[];         /* named: pattern, '\0', name (te->groups' key) */
};

/* A subscription; owned by te->subs. */
struct topic_sub {
    uint64_t id;             /* its sub_id, the key in te->subs */
    struct topic_engine *te; /* borrowed */
    struct topic_group *g;   /* borrowed: its group; NULL once closed */
    struct list gnode;       /* in g->members */
    struct list rnode;       /* in g->ready while ready */
    struct list wnode;       /* in te->wake while its POLL is to answer */
    struct topic_ring ring;  /* its buffered messages */
    uint64_t seq;            /* the last sequence number given */
    uint64_t gap;            /* messages dropped since its last answer */
    uint64_t queued;         /* messages put into its ring */
    uint64_t delivered;      /* messages handed out by POLL */
    uint64_t dropped;        /* messages dropped, every cause */
    uint64_t poll;           /* the held POLL's handle; 0: none */
    uint32_t poll_max;       /* its max_msgs */
    struct timer poll_tm;    /* its wait */
    struct timer idle_tm;    /* armed while no POLL is held: expiry */
    uint8_t policy;          /* enum topic_policy */
    bool closed;             /* cut by policy 1: its next POLL is told */
};

struct topic_engine {
    struct backend be;         /* registered as ferry.topic */
    struct broker *b;          /* borrowed */
    struct loop *loop;         /* borrowed */
    const struct config *cfg;  /* borrowed, read live */
    struct topic_trie trie;    /* pattern -> struct topic_group */
    struct map subs;           /* sub_id -> struct topic_sub, owned */
    struct map polls;          /* held POLL handle -> struct topic_sub */
    struct smap groups;        /* pattern '\0' name -> named group, owned */
    struct smap patterns;      /* pattern -> struct topic_pat, owned */
    struct topic_store store;  /* every live message */
    struct list wake;          /* struct topic_sub (wnode) to answer */
    uv_idle_t idle;            /* answers te->wake */
    bool idle_on;              /* idle started */
    bool closing;              /* topic_engine_close was called */
    struct topic_group **hits; /* owned: a publish's matched groups */
    size_t n_hits;             /* entries used */
    size_t hits_cap;           /* entries allocated */
    bool hits_nomem;           /* hits could not grow */
    struct topic_msg *evict;   /* the message topic_evict_oldest drops */
    uint32_t fam[TOPIC_EV_COUNT + 1]; /* patterns per event family, and
                                         ANY (TOPIC_FAM_ANY) */
    uint64_t rng;                     /* sub ids */
    uint8_t *out;                     /* owned: reply scratch */
    size_t out_cap;                   /* bytes at out */
    struct topic_stats stats;         /* counters */
};

/* Sub ids stay below 2^53, exact as JSON numbers everywhere. */
#define TOPIC_ID_MASK ((UINT64_C(1) << 53) - 1)

static struct topic_engine *
topic_of(struct backend *be)
{
    return container_of(be, struct topic_engine, be);
}

/* Room for n bytes of reply at te->out. */
static uint8_t *
topic_out(struct topic_engine *te, size_t n)
{
    if (n > te->out_cap) {
        size_t cap = te->out_cap ? te->out_cap : 4096;
        uint8_t *p;

        while (cap < n) {
            cap *= 2;
        }
        p = realloc(te->out, cap);
        if (p == NULL) {
            return NULL;
        }
        te->out = p;
        te->out_cap = cap;
    }
    return te->out;
}

static void
topic_reply_status(struct bcall *c, uint8_t st)
{
    bcall_reply(c, &st, 1);
}

/* ---- patterns and groups ---- */

/* Which of ferryd's event families pattern p may match (TOPIC_FAM_*). */
static uint8_t
topic_pattern_family(struct slice p)
{
    size_t i = 0, t1, t2_start, t2;

    while (i < p.len && p.p[i] != '.') {
        i++;
    }
    t1 = i;
    if (t1 == 1 && (p.p[0] == '*' || p.p[0] == '>')) {
        return TOPIC_FAM_ANY;
    }
    if (t1 != sizeof(TOPIC_RESERVED) - 1 ||
        memcmp(p.p, TOPIC_RESERVED, t1) != 0 || t1 == p.len) {
        return TOPIC_FAM_NONE;
    }
    t2_start = t1 + 1;
    i = t2_start;
    while (i < p.len && p.p[i] != '.') {
        i++;
    }
    t2 = i - t2_start;
    if (t2 == 1 && (p.p[t2_start] == '*' || p.p[t2_start] == '>')) {
        return TOPIC_FAM_ANY;
    }
    for (unsigned f = 0; f < TOPIC_EV_COUNT; f++) {
        if (strlen(topic_families[f]) == t2 &&
            memcmp(p.p + t2_start, topic_families[f], t2) == 0) {
            return (uint8_t)f;
        }
    }
    return TOPIC_FAM_NONE;
}

static struct topic_pat *
topic_pat_get(struct topic_engine *te, struct slice pattern)
{
    struct topic_pat *pat = smap_get(&te->patterns, pattern.p, pattern.len);

    if (pat != NULL) {
        pat->groups++;
        return pat;
    }
    pat = malloc(sizeof(*pat) + pattern.len);
    if (pat == NULL) {
        return NULL;
    }
    pat->groups = 1;
    pat->len = (uint16_t)pattern.len;
    memcpy(pat->text, pattern.p, pattern.len);
    pat->fam = topic_pattern_family(pattern);
    if (smap_put(&te->patterns, pat->text, pat->len, pat) != FERRY_OK) {
        free(pat);
        return NULL;
    }
    if (pat->fam != TOPIC_FAM_NONE) {
        te->fam[pat->fam]++;
    }
    te->stats.patterns++;
    return pat;
}

static void
topic_pat_put(struct topic_engine *te, struct topic_pat *pat)
{
    if (--pat->groups > 0) {
        return;
    }
    if (pat->fam != TOPIC_FAM_NONE) {
        te->fam[pat->fam]--;
    }
    smap_del(&te->patterns, pat->text, pat->len);
    te->stats.patterns--;
    free(pat);
}

static struct slice
topic_pat_slice(const struct topic_pat *pat)
{
    return (struct slice){(const uint8_t *)pat->text, pat->len};
}

/* The group of (pattern, name) (name empty: a new unnamed one), made
 * when needed; NULL when out of memory. */
static struct topic_group *
topic_group_get(struct topic_engine *te, struct slice pattern,
                struct slice name)
{
    size_t klen = name.len > 0 ? pattern.len + 1 + name.len : 0;
    struct topic_group *g;
    struct topic_pat *pat;

    if (klen > 0) {
        uint8_t key[TOPIC_MAX_LEN + 1 + TOPIC_GROUP_MAX];

        memcpy(key, pattern.p, pattern.len);
        key[pattern.len] = '\0';
        memcpy(key + pattern.len + 1, name.p, name.len);
        g = smap_get(&te->groups, key, klen);
        if (g != NULL) {
            return g;
        }
    }
    pat = topic_pat_get(te, pattern);
    if (pat == NULL) {
        return NULL;
    }
    g = calloc(1, sizeof(*g) + klen);
    if (g == NULL) {
        goto out_pat;
    }
    g->pat = pat;
    list_init(&g->members);
    list_init(&g->ready);
    g->klen = (uint16_t)klen;
    if (klen > 0) {
        memcpy(g->key, pattern.p, pattern.len);
        g->key[pattern.len] = '\0';
        memcpy(g->key + pattern.len + 1, name.p, name.len);
    }
    if (topic_trie_add(&te->trie, topic_pat_slice(pat), g) != FERRY_OK) {
        goto out_group;
    }
    if (klen > 0) {
        if (smap_put(&te->groups, g->key, klen, g) != FERRY_OK) {
            topic_trie_remove(&te->trie, topic_pat_slice(pat), g);
            goto out_group;
        }
        te->stats.groups++;
    }
    return g;

out_group:
    free(g);
out_pat:
    topic_pat_put(te, pat);
    return NULL;
}

static void
topic_group_free(struct topic_engine *te, struct topic_group *g)
{
    bool removed = topic_trie_remove(&te->trie, topic_pat_slice(g->pat), g);

    assert(removed);
    (void)removed;
    if (g->klen > 0) {
        smap_del(&te->groups, g->key, g->klen);
        te->stats.groups--;
    }
    topic_pat_put(te, g->pat);
    free(g);
}

/* The group name of g ("" when unnamed). */
static struct slice
topic_group_name(const struct topic_group *g)
{
    if (g->klen == 0) {
        return (struct slice){(const uint8_t *)"", 0};
    }
    return (struct slice){g->key + g->pat->len + 1,
                          (size_t)g->klen - g->pat->len - 1};
}

/* s leaves its group, which goes when it was the last. */
static void
topic_sub_leave(struct topic_engine *te, struct topic_sub *s)
{
    struct topic_group *g = s->g;

    if (g == NULL) {
        return;
    }
    list_remove(&s->gnode);
    list_remove(&s->rnode);
    s->g = NULL;
    if (--g->n_members == 0) {
        topic_group_free(te, g);
    }
}

/* The member of g to take the next message: one whose POLL waits on an
 * empty buffer, else the next in turn that has room. It goes to the back
 * of the turn. */
static struct topic_sub *
topic_group_pick(struct topic_group *g)
{
    struct topic_sub *s;

    if (!list_is_empty(&g->ready)) {
        s = container_of(g->ready.next, struct topic_sub, rnode);
    } else {
        struct list *n = g->members.next;

        s = container_of(n, struct topic_sub, gnode);
        for (uint32_t k = 0; k < g->n_members; k++, n = n->next) {
            struct topic_sub *c = container_of(n, struct topic_sub, gnode);
            if (!topic_ring_is_full(&c->ring)) {
                s = c;
                break;
            }
        }
    }
    if (g->n_members > 1) {
        list_remove(&s->gnode);
        list_push_back(&g->members, &s->gnode);
    }
    return s;
}

/* ---- the wake list ---- */

static void topic_idle_cb(uv_idle_t *h);

/* s's held POLL is to be answered after this loop turn. */
static void
topic_wake(struct topic_engine *te, struct topic_sub *s)
{
    if (s->poll == 0 || te->closing) {
        return;
    }
    if (list_is_empty(&s->wnode)) {
        list_push_back(&te->wake, &s->wnode);
    }
    if (!te->idle_on) {
        uv_idle_start(&te->idle, topic_idle_cb);
        te->idle_on = true;
    }
}

/* ---- buffers ---- */

/* Pops s's oldest message, counted as dropped (why: a stats field). */
static void
topic_drop_head(struct topic_engine *te, struct topic_sub *s, uint64_t *why)
{
    struct topic_slot sl;

    if (topic_ring_pop(&s->ring, &sl)) {
        te->stats.pending--;
        topic_msg_unref(&te->store, sl.msg);
        s->gap++;
        s->dropped++;
        te->stats.dropped++;
        (*why)++;
    }
}

/* Empties s's ring, every message counted as dropped by why. */
static void
topic_drop_all(struct topic_engine *te, struct topic_sub *s, uint64_t *why)
{
    while (s->ring.n > 0) {
        topic_drop_head(te, s, why);
    }
}

static void
topic_slow_msg(const struct topic_sub *s, char *buf, size_t size)
{
    snprintf(buf, size,
             "slow subscriber: %u messages pending, the limit (max_pending); "
             "subscription %llu closed",
             (unsigned)s->ring.max, (unsigned long long)s->id);
}

/* Policy 1: s's buffer is full and a message came. It leaves its group
 * and drops what it held; its next POLL (or the one waiting) is told. */
static void
topic_sub_close_slow(struct topic_engine *te, struct topic_sub *s)
{
    char msg[128];

    topic_slow_msg(s, msg, sizeof(msg));
    log_info("ferry.topic: %s", msg);
    /* The message that found it full is lost too. */
    s->gap++;
    s->dropped++;
    te->stats.dropped++;
    te->stats.dropped_closed++;
    topic_drop_all(te, s, &te->stats.dropped_closed);
    topic_ring_release(&s->ring, &te->store);
    topic_sub_leave(te, s);
    s->closed = true;
    te->stats.slow_closed++;
    topic_wake(te, s);
}

/* Puts m into s's buffer; false when it did not take it (closed by its
 * policy, or out of memory: counted as dropped). */
static bool
topic_route(struct topic_engine *te, struct topic_sub *s, struct topic_msg *m)
{
    if (topic_ring_is_full(&s->ring)) {
        if (s->policy == TOPIC_POLICY_CLOSE) {
            topic_sub_close_slow(te, s);
            return false;
        }
        topic_drop_head(te, s, &te->stats.dropped_full);
    }
    s->seq++;
    if (topic_ring_push(&s->ring, m, s->seq) != FERRY_OK) {
        /* Its sequence number is spent: the gap shows. */
        s->gap++;
        s->dropped++;
        te->stats.dropped++;
        te->stats.nomem++;
        topic_wake(te, s);
        return false;
    }
    te->stats.pending++;
    s->queued++;
    te->stats.routed++;
    list_remove(&s->rnode);
    topic_wake(te, s);
    return true;
}

/* Trie callback of a publish: collects the groups reached. */
static void
topic_collect(void *val, void *arg)
{
    struct topic_engine *te = arg;

    if (te->n_hits == te->hits_cap) {
        size_t cap = te->hits_cap ? te->hits_cap * 2 : 64;
        struct topic_group **v = realloc(te->hits, cap * sizeof(*v));

        if (v == NULL) {
            te->hits_nomem = true;
            return;
        }
        te->hits = v;
        te->hits_cap = cap;
    }
    te->hits[te->n_hits++] = val;
}

/* Trie callback of an eviction: the group's members whose oldest message
 * is te->evict drop it. */
static void
topic_evict_each(void *val, void *arg)
{
    struct topic_group *g = val;
    struct topic_engine *te = arg;

    for (struct list *n = g->members.next; n != &g->members; n = n->next) {
        struct topic_sub *s = container_of(n, struct topic_sub, gnode);
        const struct topic_slot *h = topic_ring_head(&s->ring);

        if (h != NULL && h->msg == te->evict) {
            topic_drop_head(te, s, &te->stats.dropped_bytes);
            topic_wake(te, s);
        }
    }
}

/*
 * Drops the oldest live message from every buffer holding it, for the
 * byte cap. It is at the head of each of them (rings and the store are
 * both in publish order), and each of them is a member of a group whose
 * pattern matches its subject: one trie walk finds them all. false when
 * it could not be freed (a broken invariant: the caller stops evicting).
 */
static bool
topic_evict_oldest(struct topic_engine *te)
{
    struct topic_msg *m = topic_store_oldest(&te->store);
    bool freed;

    if (m == NULL) {
        return false;
    }
    /* Kept while its own subject is being matched. */
    topic_msg_ref(m);
    te->evict = m;
    topic_trie_match(&te->trie, topic_msg_subject(m), topic_evict_each, te);
    te->evict = NULL;
    freed = m->refs == 1;
    assert(freed);
    topic_msg_unref(&te->store, m);
    return freed;
}

/*
 * Routes one message to every subscription it reaches; *receivers is
 * the number that took it. FERRY_ETOO_BIG when it alone is above
 * topic_max_bytes, FERRY_ENOMEM.
 */
static ferry_err
topic_publish(struct topic_engine *te, struct slice subject,
              struct slice payload, uint32_t *receivers)
{
    uint64_t cap = te->cfg->topic_max_bytes;
    uint64_t size = sizeof(struct topic_msg) + subject.len + payload.len;
    struct topic_msg *m;
    uint32_t n = 0;

    /* Too big whoever listens: the answer must not depend on that. */
    if (size > cap) {
        te->stats.too_big++;
        return FERRY_ETOO_BIG;
    }
    te->stats.published++;
    te->n_hits = 0;
    te->hits_nomem = false;
    topic_trie_match(&te->trie, subject, topic_collect, te);
    if (te->hits_nomem) {
        te->stats.nomem++;
        return FERRY_ENOMEM;
    }
    if (te->n_hits == 0) {
        te->stats.unrouted++;
        *receivers = 0;
        return FERRY_OK;
    }
    while (te->store.bytes + size > cap) {
        if (!topic_evict_oldest(te)) {
            break;
        }
    }
    m = topic_store_add(&te->store, subject, payload);
    if (m == NULL) {
        te->stats.nomem++;
        return FERRY_ENOMEM;
    }
    for (size_t i = 0; i < te->n_hits; i++) {
        /* Each group once: one closed by this route is not seen again. */
        if (topic_route(te, topic_group_pick(te->hits[i]), m)) {
            n++;
        }
    }
    if (m->refs == 0) {
        topic_store_free(&te->store, m);
    }
    *receivers = n;
    return FERRY_OK;
}

/* ---- subscriptions ---- */

static void topic_sub_free(struct topic_engine *te, struct topic_sub *s);

/* s's held POLL is no longer held (answered or withdrawn). */
static void
topic_poll_unhold(struct topic_engine *te, struct topic_sub *s)
{
    if (s->poll == 0) {
        return;
    }
    map_del(&te->polls, s->poll);
    s->poll = 0;
    loop_timer_stop(te->loop, &s->poll_tm);
    list_remove(&s->rnode);
    list_remove(&s->wnode);
    te->stats.polls_waiting--;
}

/* No POLL of s is outstanding from now: its expiry clock starts. Nothing
 * may use s after this (out of memory frees it). */
static void
topic_sub_idle(struct topic_engine *te, struct topic_sub *s)
{
    if (loop_timer_start(te->loop, &s->idle_tm,
                         loop_now(te->loop) + te->cfg->topic_idle_ms) !=
        FERRY_OK) {
        log_error("ferry.topic: out of memory, subscription %llu dropped",
                  (unsigned long long)s->id);
        topic_sub_free(te, s);
    }
}

static void
topic_sub_expired(struct timer *t)
{
    struct topic_sub *s = container_of(t, struct topic_sub, idle_tm);

    s->te->stats.expired++;
    topic_sub_free(s->te, s);
}

static void
topic_sub_free(struct topic_engine *te, struct topic_sub *s)
{
    if (s->poll != 0) {
        uint64_t h = s->poll;
        uint8_t st = TOPIC_ST_NOT_FOUND;

        topic_poll_unhold(te, s);
        broker_answer(te->b, h, FERRY_OK, &st, 1);
    }
    topic_sub_leave(te, s);
    te->stats.pending -= s->ring.n;
    topic_ring_release(&s->ring, &te->store);
    loop_timer_stop(te->loop, &s->idle_tm);
    loop_timer_stop(te->loop, &s->poll_tm);
    list_remove(&s->wnode);
    map_del(&te->subs, s->id);
    te->stats.subscriptions--;
    free(s);
}

/*
 * The POLL answer of s at te->out, up to max messages (and about
 * TOPIC_POLL_BYTES): OK with the messages and the gap, or EMPTY with the
 * gap when none is buffered. The messages and the gap are then s's no
 * more. NULL when out of memory (nothing taken).
 */
static uint8_t *
topic_take(struct topic_engine *te, struct topic_sub *s, uint32_t max,
           size_t *len)
{
    size_t off = TOPIC_POLL_HEAD;
    uint32_t cnt = 0;
    uint8_t *p = topic_out(te, off);

    if (p == NULL) {
        return NULL;
    }
    while (cnt < max) {
        const struct topic_slot *h = topic_ring_head(&s->ring);
        struct topic_slot sl;
        size_t need;

        if (h == NULL) {
            break;
        }
        need = TOPIC_MSG_HEAD + h->msg->subject_len + h->msg->len;
        if (cnt > 0 && off + need > TOPIC_POLL_BYTES) {
            break;
        }
        p = topic_out(te, off + need);
        if (p == NULL) {
            if (cnt == 0) {
                return NULL;
            }
            break;
        }
        off += topic_codec_write_msg(p + off, h->seq, topic_msg_subject(h->msg),
                                     topic_msg_payload(h->msg));
        topic_ring_pop(&s->ring, &sl);
        te->stats.pending--;
        topic_msg_unref(&te->store, sl.msg);
        cnt++;
    }
    p = te->out;
    be_put_u64(p + 1, s->gap);
    if (cnt == 0) {
        p[0] = TOPIC_ST_EMPTY;
        te->stats.polls_empty++;
        *len = 9;
    } else {
        p[0] = TOPIC_ST_OK;
        be_put_u32(p + 9, cnt);
        *len = off;
    }
    s->gap = 0;
    s->delivered += cnt;
    te->stats.delivered += cnt;
    return p;
}

/* Answers s's held POLL now: with what s has (maybe nothing), or its
 * closing. s may be gone afterwards. */
static void
topic_poll_finish(struct topic_engine *te, struct topic_sub *s)
{
    uint64_t h = s->poll;
    uint8_t *p;
    size_t len;

    topic_poll_unhold(te, s);
    if (!broker_is_waiting(te->b, h)) {
        /* Its caller left first: what s holds stays for the next POLL. */
        topic_sub_idle(te, s);
        return;
    }
    if (s->closed) {
        char msg[128];

        topic_slow_msg(s, msg, sizeof(msg));
        topic_sub_free(te, s);
        broker_answer_error(te->b, h, FERRY_ESLOW_CONSUMER, msg);
        return;
    }
    p = topic_take(te, s, s->poll_max, &len);
    if (p == NULL) {
        broker_answer_error(te->b, h, FERRY_ENOMEM, NULL);
    } else {
        broker_answer(te->b, h, FERRY_OK, p, len);
    }
    topic_sub_idle(te, s);
}

static void
topic_poll_timeout(struct timer *t)
{
    struct topic_sub *s = container_of(t, struct topic_sub, poll_tm);

    topic_poll_finish(s->te, s);
}

static void
topic_idle_cb(uv_idle_t *h)
{
    struct topic_engine *te = h->data;

    uv_idle_stop(h);
    te->idle_on = false;
    while (!list_is_empty(&te->wake)) {
        struct topic_sub *s =
            container_of(te->wake.next, struct topic_sub, wnode);

        list_remove(&s->wnode);
        if (s->poll != 0) {
            topic_poll_finish(te, s);
        }
    }
}

/* A new sub id: random (not guessable from another's), never 0, unique,
 * below 2^53. */
static uint64_t
topic_new_id(struct topic_engine *te)
{
    uint64_t id;

    do {
        id = rand_next(&te->rng) & TOPIC_ID_MASK;
    } while (id == 0 || map_get(&te->subs, id) != NULL);
    return id;
}

/* ---- the ops ---- */

static void
topic_op_publish(struct topic_engine *te, struct bcall *c,
                 const struct topic_req *r)
{
    uint8_t rep[5];
    uint32_t n = 0;
    ferry_err err = topic_publish(te, r->subject, r->message, &n);

    if (err == FERRY_ETOO_BIG) {
        char msg[128];

        snprintf(msg, sizeof(msg),
                 "ferry.topic: a message of %zu bytes is above "
                 "topic_max_bytes (%llu)",
                 r->subject.len + r->message.len,
                 (unsigned long long)te->cfg->topic_max_bytes);
        bcall_error(c, err, msg);
        return;
    }
    if (err != FERRY_OK) {
        bcall_error(c, err, NULL);
        return;
    }
    rep[0] = TOPIC_ST_OK;
    be_put_u32(rep + 1, n);
    bcall_reply(c, rep, sizeof(rep));
}

static void
topic_op_subscribe(struct topic_engine *te, struct bcall *c,
                   const struct topic_req *r)
{
    uint32_t mp = r->max_pending == 0                  ? TOPIC_PENDING_DEFAULT
                  : r->max_pending > TOPIC_PENDING_MAX ? TOPIC_PENDING_MAX
                                                       : r->max_pending;
    struct topic_group *g;
    struct topic_sub *s;
    uint8_t rep[9];

    if (te->stats.subscriptions >= TOPIC_MAX_SUBSCRIPTIONS) {
        char msg[96];

        snprintf(msg, sizeof(msg),
                 "ferry.topic: %d subscriptions, the limit: unsubscribe some",
                 TOPIC_MAX_SUBSCRIPTIONS);
        bcall_error(c, FERRY_EOVERLOADED, msg);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    g = topic_group_get(te, r->pattern, r->group);
    if (g == NULL) {
        free(s);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    s->te = te;
    s->id = topic_new_id(te);
    s->policy = r->policy;
    list_init(&s->gnode);
    list_init(&s->rnode);
    list_init(&s->wnode);
    topic_ring_init(&s->ring, mp);
    timer_init(&s->poll_tm, topic_poll_timeout);
    timer_init(&s->idle_tm, topic_sub_expired);
    if (map_put(&te->subs, s->id, s) != FERRY_OK) {
        if (g->n_members == 0) {
            topic_group_free(te, g);
        }
        free(s);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    s->g = g;
    list_push_back(&g->members, &s->gnode);
    g->n_members++;
    te->stats.subscriptions++;
    if (loop_timer_start(te->loop, &s->idle_tm,
                         loop_now(te->loop) + te->cfg->topic_idle_ms) !=
        FERRY_OK) {
        topic_sub_free(te, s);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    rep[0] = TOPIC_ST_OK;
    be_put_u64(rep + 1, s->id);
    bcall_reply(c, rep, sizeof(rep));
}

static void
topic_op_poll(struct topic_engine *te, struct bcall *c,
              const struct topic_req *r)
{
    struct topic_sub *s = map_get(&te->subs, r->sub_id);
    uint32_t max = r->max_msgs == 0 || r->max_msgs > TOPIC_POLL_MAX
                       ? TOPIC_POLL_MAX
                       : r->max_msgs;
    uint32_t wait =
        r->wait_ms < TOPIC_MAX_WAIT_MS ? r->wait_ms : TOPIC_MAX_WAIT_MS;
    uint64_t now, when, h;
    uint8_t *p;
    size_t len;

    if (s == NULL) {
        topic_reply_status(c, TOPIC_ST_NOT_FOUND);
        return;
    }
    if (s->closed) {
        char msg[128];

        topic_slow_msg(s, msg, sizeof(msg));
        topic_sub_free(te, s);
        bcall_error(c, FERRY_ESLOW_CONSUMER, msg);
        return;
    }
    if (s->poll != 0) {
        /* A newer POLL takes the place of the one held: that one ends
         * empty, and what s holds is this one's. */
        uint8_t rep[9] = {TOPIC_ST_EMPTY};

        h = s->poll;
        topic_poll_unhold(te, s);
        te->stats.polls_empty++;
        broker_answer(te->b, h, FERRY_OK, rep, sizeof(rep));
    }
    if (s->ring.n > 0 || s->gap > 0 || wait == 0) {
        p = topic_take(te, s, max, &len);
        if (p == NULL) {
            bcall_error(c, FERRY_ENOMEM, NULL);
        } else {
            bcall_reply(c, p, len);
        }
        topic_sub_idle(te, s);
        return;
    }
    /* An empty answer before the request's deadline rather than the
     * broker's DEADLINE error. */
    now = loop_now(te->loop);
    when = now + wait;
    if (c->deadline > now) {
        uint64_t left = c->deadline - now;
        uint64_t margin = left / 10 < 100 ? left / 10 : 100;

        if (when > c->deadline - margin) {
            when = c->deadline - margin;
        }
    }
    if (loop_timer_start(te->loop, &s->poll_tm, when) != FERRY_OK) {
        bcall_error(c, FERRY_ENOMEM, NULL);
        topic_sub_idle(te, s);
        return;
    }
    h = bcall_hold(c);
    if (h == 0) {
        loop_timer_stop(te->loop, &s->poll_tm);
        topic_sub_idle(te, s);
        return;
    }
    if (map_put(&te->polls, h, s) != FERRY_OK) {
        loop_timer_stop(te->loop, &s->poll_tm);
        broker_answer_error(te->b, h, FERRY_ENOMEM, NULL);
        topic_sub_idle(te, s);
        return;
    }
    loop_timer_stop(te->loop, &s->idle_tm);
    s->poll = h;
    s->poll_max = max;
    list_push_back(&s->g->ready, &s->rnode);
    te->stats.polls_waiting++;
}

static void
topic_op_unsubscribe(struct topic_engine *te, struct bcall *c,
                     const struct topic_req *r)
{
    struct topic_sub *s = map_get(&te->subs, r->sub_id);

    if (s == NULL) {
        topic_reply_status(c, TOPIC_ST_NOT_FOUND);
        return;
    }
    topic_sub_free(te, s);
    topic_reply_status(c, TOPIC_ST_OK);
}

/* ---- stats ---- */

static int
topic_jset(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v) != 0 ? -1 : 0;
}

static json_t *
topic_sub_json(const struct topic_sub *s)
{
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad) {
        return NULL;
    }
    bad |= topic_jset(o, "id", json_integer((json_int_t)s->id));
    if (s->g != NULL) {
        struct slice name = topic_group_name(s->g);
        bad |= topic_jset(o, "pattern",
                          json_stringn(s->g->pat->text, s->g->pat->len));
        bad |= topic_jset(o, "group",
                          json_stringn((const char *)name.p, name.len));
    } else {
        bad |= topic_jset(o, "pattern", json_null());
        bad |= topic_jset(o, "group", json_null());
    }
    bad |= topic_jset(o, "max_pending", json_integer(s->ring.max));
    bad |= topic_jset(
        o, "policy",
        json_string(s->policy == TOPIC_POLICY_CLOSE ? "close" : "drop_oldest"));
    bad |= topic_jset(o, "pending", json_integer(s->ring.n));
    bad |= topic_jset(o, "queued", json_integer((json_int_t)s->queued));
    bad |= topic_jset(o, "delivered", json_integer((json_int_t)s->delivered));
    bad |= topic_jset(o, "dropped", json_integer((json_int_t)s->dropped));
    bad |= topic_jset(o, "gap", json_integer((json_int_t)s->gap));
    bad |= topic_jset(o, "polling", json_boolean(s->poll != 0));
    bad |= topic_jset(o, "closed", json_boolean(s->closed));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *
topic_engine_stats_json(struct topic_engine *te)
{
    const struct topic_stats *s = topic_engine_stats(te);
    json_t *obj = json_object(), *ops = json_object();
    int bad = obj == NULL || ops == NULL;

    for (unsigned op = 1; op <= TOPIC_OP_MAX && !bad; op++) {
        bad |= topic_jset(ops, topic_codec_op_name(op),
                          json_integer((json_int_t)s->ops[op]));
    }
#define TOPIC_J(name)                                                          \
    bad = bad || topic_jset(obj, #name, json_integer((json_int_t)s->name))
    TOPIC_J(subscriptions);
    TOPIC_J(patterns);
    TOPIC_J(groups);
    TOPIC_J(polls_waiting);
    TOPIC_J(messages);
    TOPIC_J(bytes);
    TOPIC_J(pending);
    TOPIC_J(published);
    TOPIC_J(events);
    TOPIC_J(unrouted);
    TOPIC_J(routed);
    TOPIC_J(delivered);
    TOPIC_J(dropped);
    TOPIC_J(dropped_full);
    TOPIC_J(dropped_bytes);
    TOPIC_J(dropped_closed);
    TOPIC_J(slow_closed);
    TOPIC_J(expired);
    TOPIC_J(polls_empty);
    TOPIC_J(too_big);
    TOPIC_J(nomem);
    TOPIC_J(bad);
#undef TOPIC_J
    bad = bad ||
          topic_jset(obj, "max_bytes",
                     json_integer((json_int_t)te->cfg->topic_max_bytes)) ||
          topic_jset(obj, "idle_ms", json_integer(te->cfg->topic_idle_ms));
    if (bad || json_object_set_new(obj, "ops", ops) != 0) {
        json_decref(obj);
        if (bad) {
            json_decref(ops);
        }
        return NULL;
    }
    return obj;
}

/* STATS of every subscription: the totals, and with list "subs", the
 * first TOPIC_STATS_LIST_MAX subscriptions ("subs_complete" false when
 * there are more). NULL when out of memory. */
static json_t *
topic_stats_doc(struct topic_engine *te, bool list_subs)
{
    json_t *doc = topic_engine_stats_json(te), *list;
    size_t pos = 0, listed = 0;
    uint64_t id;
    void *val;
    int bad;

    if (!list_subs || doc == NULL) {
        return doc;
    }
    list = json_array();
    bad = list == NULL;
    while (!bad && listed < TOPIC_STATS_LIST_MAX &&
           map_next(&te->subs, &pos, &id, &val)) {
        bad |= json_array_append_new(list, topic_sub_json(val)) != 0;
        listed++;
    }
    bad = bad || topic_jset(doc, "subs_complete",
                            json_boolean(listed == te->stats.subscriptions));
    if (bad) {
        json_decref(list);
        json_decref(doc);
        return NULL;
    }
    if (json_object_set_new(doc, "subs", list) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static void
topic_op_stats(struct topic_engine *te, struct bcall *c,
               const struct topic_req *r)
{
    json_t *doc;
    char *text;
    size_t n;
    uint8_t *p;

    if (r->one) {
        struct topic_sub *s = map_get(&te->subs, r->sub_id);
        if (s == NULL) {
            topic_reply_status(c, TOPIC_ST_NOT_FOUND);
            return;
        }
        doc = topic_sub_json(s);
    } else {
        /* Sub ids are what a POLL or UNSUBSCRIBE needs: listed only to
         * callers who may see internals (core/access.h). */
        doc = topic_stats_doc(te, c->internals);
    }
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    n = text != NULL ? strlen(text) : 0;
    p = text != NULL ? topic_out(te, 1 + n) : NULL;
    if (p == NULL) {
        free(text);
        bcall_error(c, FERRY_ENOMEM, NULL);
        return;
    }
    p[0] = TOPIC_ST_OK;
    memcpy(p + 1, text, n);
    free(text);
    bcall_reply(c, p, 1 + n);
}

/* ---- the backend ---- */

static void
topic_call(struct backend *be, struct bcall *c)
{
    struct topic_engine *te = topic_of(be);
    struct topic_req r;
    char err[TOPIC_CODEC_ERR_SIZE];

    if (topic_codec_decode(c->key, c->payload, &r, err) != FERRY_OK) {
        te->stats.bad++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    te->stats.ops[r.op]++;
    if (te->closing) {
        bcall_error(c, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    switch (r.op) {
    case TOPIC_OP_PUBLISH:
        topic_op_publish(te, c, &r);
        break;
    case TOPIC_OP_SUBSCRIBE:
        topic_op_subscribe(te, c, &r);
        break;
    case TOPIC_OP_POLL:
        topic_op_poll(te, c, &r);
        break;
    case TOPIC_OP_UNSUBSCRIBE:
        topic_op_unsubscribe(te, c, &r);
        break;
    case TOPIC_OP_STATS:
        topic_op_stats(te, c, &r);
        break;
    }
}

/* A held POLL ended first (deadline, CANCEL, caller gone): what its
 * subscription holds waits for the next POLL, and its expiry clock
 * starts. */
static void
topic_cancelled(struct backend *be, uint64_t handle)
{
    struct topic_engine *te = topic_of(be);
    struct topic_sub *s = map_get(&te->polls, handle);

    if (s != NULL) {
        topic_poll_unhold(te, s);
        topic_sub_idle(te, s);
    }
}

static int
topic_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    struct topic_engine *te = topic_of(be);

    return topic_jset(obj, "subscriptions",
                      json_integer((json_int_t)te->stats.subscriptions));
}

static const struct backend_ops topic_ops = {
    .kind = "topic",
    .call = topic_call,
    .cancelled = topic_cancelled,
    .describe = topic_describe,
};

/* ---- events ---- */

bool
topic_wants(const struct topic_engine *te, enum topic_event ev)
{
    return te != NULL && !te->closing &&
           (te->fam[ev] > 0 || te->fam[TOPIC_FAM_ANY] > 0);
}

void
topic_emit(struct topic_engine *te, struct slice subject, struct slice payload)
{
    uint32_t n;

    if (te == NULL || te->closing || !topic_subject_is_valid(subject)) {
        return;
    }
    te->stats.events++;
    (void)topic_publish(te, subject, payload, &n);
}

void
topic_emit_event(struct topic_engine *te, enum topic_event ev,
                 struct slice name, const char *what, const char *fmt, ...)
{
    char subject[TOPIC_MAX_LEN + 1], payload[513];
    size_t len, wlen = what != NULL ? 1 + strlen(what) : 0;
    va_list ap;
    int n;

    if (!topic_wants(te, ev)) {
        return;
    }
    n = snprintf(subject, sizeof(subject), "%s.%s.", TOPIC_RESERVED,
                 topic_families[ev]);
    len = (size_t)n;
    if (name.len == 0 || len + name.len + wlen > TOPIC_MAX_LEN) {
        return;
    }
    memcpy(subject + len, name.p, name.len);
    len += name.len;
    if (what != NULL) {
        subject[len] = '.';
        memcpy(subject + len + 1, what, wlen - 1);
        len += wlen;
    }
    va_start(ap, fmt);
    n = vsnprintf(payload, sizeof(payload), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    } else if ((size_t)n >= sizeof(payload)) {
        n = sizeof(payload) - 1;
    }
    topic_emit(te, (struct slice){(const uint8_t *)subject, len},
               (struct slice){(const uint8_t *)payload, (size_t)n});
}

/* ---- open, close, counters ---- */

ferry_err
topic_engine_open(struct topic_engine **out, struct broker *b, struct loop *l,
                  const struct config *cfg)
{
    struct topic_engine *te = calloc(1, sizeof(*te));
    ferry_err err;

    if (te == NULL) {
        return FERRY_ENOMEM;
    }
    te->be.ops = &topic_ops;
    te->b = b;
    te->loop = l;
    te->cfg = cfg;
    topic_trie_init(&te->trie);
    map_init(&te->subs);
    map_init(&te->polls);
    smap_init(&te->groups);
    smap_init(&te->patterns);
    topic_store_init(&te->store);
    list_init(&te->wake);
    rand_init(&te->rng,
              uv_hrtime() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)te);
    err = broker_add_backend(b, TOPIC_SERVICE_NAME, &te->be);
    if (err != FERRY_OK) {
        free(te);
        return err;
    }
    uv_idle_init(&l->uv, &te->idle);
    te->idle.data = te;
    l->topics = te;
    *out = te;
    return FERRY_OK;
}

static void
topic_idle_closed(uv_handle_t *h)
{
    struct topic_engine *te = h->data;

    free(te->hits);
    free(te->out);
    free(te);
}

void
topic_engine_close(struct topic_engine *te)
{
    uint64_t *ids;
    size_t n = 0;

    if (te == NULL) {
        return;
    }
    if (te->loop->topics == te) {
        te->loop->topics = NULL;
    }
    te->closing = true;
    if (te->idle_on) {
        uv_idle_stop(&te->idle);
        te->idle_on = false;
    }
    ids = map_keys(&te->subs, &n);
    for (size_t i = 0; i < n; i++) {
        struct topic_sub *s = map_get(&te->subs, ids[i]);
        if (s != NULL) {
            if (s->poll != 0) {
                uint64_t h = s->poll;
                topic_poll_unhold(te, s);
                broker_answer_error(te->b, h, FERRY_ESHUTTING_DOWN, NULL);
            }
            topic_sub_free(te, s);
        }
    }
    free(ids);
    /* Out of memory for the keys: one at a time. */
    while (te->subs.n > 0) {
        size_t pos = 0;
        uint64_t id;
        void *val;

        if (!map_next(&te->subs, &pos, &id, &val)) {
            break;
        }
        topic_sub_free(te, val);
    }
    assert(te->store.n == 0);
    topic_store_release(&te->store);
    topic_trie_release(&te->trie);
    map_release(&te->subs);
    map_release(&te->polls);
    smap_release(&te->groups);
    smap_release(&te->patterns);
    uv_close((uv_handle_t *)&te->idle, topic_idle_closed);
}

const struct topic_stats *
topic_engine_stats(struct topic_engine *te)
{
    te->stats.messages = te->store.n;
    te->stats.bytes = te->store.bytes;
    return &te->stats;
}

static void
topic_metric(FILE *f, const char *name, const char *type, const char *help,
             uint64_t v)
{
    fprintf(f,
            "# HELP ferry_topic_%s %s\n# TYPE ferry_topic_%s %s\n"
            "ferry_topic_%s %llu\n",
            name, help, name, type, name, (unsigned long long)v);
}

void
topic_engine_metrics(struct topic_engine *te, FILE *f)
{
    const struct topic_stats *s = topic_engine_stats(te);

    fprintf(f, "# HELP ferry_topic_requests_total ferry.topic requests by "
               "op.\n# TYPE ferry_topic_requests_total counter\n");
    for (unsigned op = 1; op <= TOPIC_OP_MAX; op++) {
        fprintf(f, "ferry_topic_requests_total{op=\"%s\"} %llu\n",
                topic_codec_op_name(op), (unsigned long long)s->ops[op]);
    }
    topic_metric(f, "subscriptions", "gauge", "Subscriptions now.",
                 s->subscriptions);
    topic_metric(f, "patterns", "gauge", "Distinct patterns subscribed now.",
                 s->patterns);
    topic_metric(f, "groups", "gauge", "Named groups now.", s->groups);
    topic_metric(f, "polls_waiting", "gauge", "POLLs held now.",
                 s->polls_waiting);
    topic_metric(f, "messages", "gauge", "Messages stored now (each once).",
                 s->messages);
    topic_metric(f, "bytes", "gauge",
                 "Bytes of the messages stored now (against "
                 "topic_max_bytes).",
                 s->bytes);
    topic_metric(f, "pending", "gauge",
                 "Messages buffered over every subscription now.", s->pending);
    topic_metric(f, "published_total", "counter",
                 "Messages published, ferryd's own events included.",
                 s->published);
    topic_metric(f, "events_total", "counter",
                 "ferryd's own events published (ferry.> subjects).",
                 s->events);
    topic_metric(f, "unrouted_total", "counter",
                 "Messages published that reached no subscription.",
                 s->unrouted);
    topic_metric(f, "routed_total", "counter",
                 "Messages put into a subscription's buffer.", s->routed);
    topic_metric(f, "delivered_total", "counter",
                 "Messages handed out by POLL.", s->delivered);
    fprintf(f,
            "# HELP ferry_topic_dropped_total Messages dropped from a "
            "subscription's buffer, by cause.\n"
            "# TYPE ferry_topic_dropped_total counter\n"
            "ferry_topic_dropped_total{cause=\"full\"} %llu\n"
            "ferry_topic_dropped_total{cause=\"bytes\"} %llu\n"
            "ferry_topic_dropped_total{cause=\"closed\"} %llu\n"
            "ferry_topic_dropped_total{cause=\"nomem\"} %llu\n",
            (unsigned long long)s->dropped_full,
            (unsigned long long)s->dropped_bytes,
            (unsigned long long)s->dropped_closed,
            (unsigned long long)(s->dropped - s->dropped_full -
                                 s->dropped_bytes - s->dropped_closed));
    topic_metric(f, "slow_closed_total", "counter",
                 "Subscriptions closed for a full buffer (policy close).",
                 s->slow_closed);
    topic_metric(f, "expired_total", "counter",
                 "Subscriptions expired: no POLL for topic_idle_ms.",
                 s->expired);
    topic_metric(f, "too_big_total", "counter",
                 "Publishes refused: one message above topic_max_bytes.",
                 s->too_big);
}
