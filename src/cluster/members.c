/* SPDX-License-Identifier: MIT */
/*
 * members.c - cluster membership on etcd (see members.h and
 * docs/cluster-membership.md).
 *
 * Two machines run side by side on the loop. The lease side grants a
 * lease, claims a node id and the node key under it, and keeps it alive
 * every lease_ms/3; a lost lease starts it over. The view side reads the
 * nodes prefix and watches it from the revision read, resuming after a
 * broken stream and reading again after a compaction. The fence timer
 * turns the age of the last renewal into the fenced state, whether or not
 * a call fails.
 */
#include "cluster/members.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster/etcd.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"

/* The fastest services puts: one per 250 ms. */
#define MEMBERS_PUBLISH_MS 250
/* Retries back off from this to MEMBERS_BACKOFF_MAX. */
#define MEMBERS_BACKOFF_MIN 100
#define MEMBERS_BACKOFF_MAX 2000

enum members_state {
    MEMBERS_GRANT,    /* no lease: granting one */
    MEMBERS_CLAIM_ID, /* leased: claiming a node id */
    MEMBERS_REGISTER, /* id held: claiming the node key */
    MEMBERS_READY,    /* registered */
    MEMBERS_LEFT      /* leaving or left */
};

/* Owned by whoever called members_start. */
struct members {
    struct loop *l;         /* borrowed */
    struct etcd *e;         /* owned */
    struct members_hooks h; /* copied */
    void *ud;               /* of the hooks */
    char *name;             /* owned */
    char *addr;             /* owned */
    char *http;             /* owned, or NULL */
    uint32_t lease_ms;      /* the lease asked for */
    int preferred;          /* node id tried first, or -1 */
    char *nodes;            /* owned: "/ferry/<c>/nodes/" */
    char *ids;              /* owned: "/ferry/<c>/ids/" */
    char *self_key;         /* owned: nodes + name */
    uint64_t started;       /* wall clock ms of members_start */
    /* The lease side. */
    enum members_state st;    /* where registration is */
    int64_t lease;            /* the lease, 0 for none */
    int64_t ttl_s;            /* its TTL as granted */
    uint32_t node_id;         /* the id claimed (CLAIM_ID done) */
    uint32_t id_tries;        /* ids tried in this claim round */
    struct etcd_call *reg;    /* grant, claim or register in flight */
    struct etcd_call *ka;     /* keepalive in flight */
    uint64_t ka_sent;         /* loop ms the keepalive was sent */
    uint64_t grant_sent;      /* loop ms the grant was sent */
    uint64_t renewed;         /* loop ms of the last renewal's sending */
    bool renewed_once;        /* renewed has a value */
    bool refused;             /* the name was refused: logged once */
    uint32_t backoff;         /* of the lease side's retries */
    struct timer ka_timer;    /* next keepalive */
    struct timer reg_timer;   /* next grant/claim retry */
    struct timer fence_timer; /* when fencing is due */
    bool fenced;              /* the state last reported */
    bool leaving;             /* published: handing its data over */
    /* The view side. */
    struct member *list;     /* owned: sorted by name */
    size_t n;                /* entries of list */
    uint64_t epoch;          /* revision of the last join/leave */
    uint64_t rev;            /* the last revision seen */
    struct etcd_call *read;  /* range in flight */
    struct etcd_call *watch; /* the watch */
    uint32_t view_backoff;   /* of the view side's retries */
    struct timer view_timer; /* next read or watch */
    /* Publishing. */
    json_t *services;       /* owned: what we publish */
    bool dirty;             /* services not yet put */
    struct etcd_call *pub;  /* put in flight */
    uint64_t pub_sent;      /* loop ms of the last put */
    struct timer pub_timer; /* next put */
    /* Leaving. */
    void (*leave_done)(void *ud); /* members_leave's done */
};

static void members_grant(struct members *m);
static void members_claim_id(struct members *m);
static void members_register(struct members *m);
static void members_read(struct members *m);
static void members_watch(struct members *m);

static uint64_t
members_wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static char *
members_cat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);

    if (s != NULL) {
        snprintf(s, n, "%s%s%s", a, b, c);
    }
    return s;
}

static void
members_arm(struct members *m, struct timer *t, uint64_t in_ms)
{
    if (loop_timer_start(m->l, t, loop_now(m->l) + in_ms) != FERRY_OK) {
        log_error("member '%s': cannot arm a timer", m->name);
    }
}

static uint32_t
members_next_backoff(uint32_t *b)
{
    uint32_t v = *b ? *b : MEMBERS_BACKOFF_MIN;

    *b = v * 2 > MEMBERS_BACKOFF_MAX ? MEMBERS_BACKOFF_MAX : v * 2;
    return v;
}

/* Fencing */

/* How long before the lease could expire on etcd we stop serving. */
static uint64_t
members_margin(const struct members *m)
{
    return m->lease_ms / 6;
}

static bool
members_should_fence(const struct members *m)
{
    uint64_t now = loop_now(m->l);

    return m->st != MEMBERS_READY || !m->renewed_once ||
           now >= m->renewed + m->lease_ms - members_margin(m);
}

/* Recomputes fenced, reports a change and arms the fence timer. */
static void
members_fence_check(struct members *m)
{
    bool f = members_should_fence(m);

    if (!f) {
        loop_timer_start(m->l, &m->fence_timer,
                         m->renewed + m->lease_ms - members_margin(m));
    } else {
        loop_timer_stop(m->l, &m->fence_timer);
    }
    if (f == m->fenced) {
        return;
    }
    m->fenced = f;
    if (f && m->st == MEMBERS_LEFT) {
        log_info("member '%s': leaving, no longer serving", m->name);
    } else if (f) {
        log_warn("member '%s': fenced, no lease renewal for %llu ms", m->name,
                 (unsigned long long)(loop_now(m->l) - m->renewed));
    } else {
        log_info("member '%s': serving, lease %llx", m->name,
                 (unsigned long long)m->lease);
    }
    if (m->h.fenced) {
        m->h.fenced(m->ud, f);
    }
}

static void
members_fence_cb(struct timer *t)
{
    members_fence_check(container_of(t, struct members, fence_timer));
}

/* The node key's value. */
static char *
members_value(const struct members *m)
{
    json_t *v =
        json_pack("{ss ss so si sO sI sb}", "name", m->name, "addr", m->addr,
                  "http", m->http ? json_string(m->http) : json_null(),
                  "node_id", (int)m->node_id, "services", m->services,
                  "started", (json_int_t)m->started, "leaving", m->leaving);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;

    json_decref(v);
    return s;
}

/* The lease side */

static void
members_lost(struct members *m, const char *why)
{
    log_warn("member '%s': lease %llx lost (%s), registering again", m->name,
             (unsigned long long)m->lease, why);
    etcd_cancel(m->reg);
    m->reg = NULL;
    etcd_cancel(m->pub);
    m->pub = NULL;
    m->lease = 0;
    m->st = MEMBERS_GRANT;
    m->renewed_once = false;
    loop_timer_stop(m->l, &m->ka_timer);
    members_fence_check(m);
    members_grant(m);
}

static void
members_ka_cb(void *ud, ferry_err err, const char *msg,
              const struct etcd_result *r)
{
    struct members *m = ud;

    m->ka = NULL;
    if (err != FERRY_OK) {
        log_debug("member '%s': keepalive: %s", m->name, msg);
        return;
    }
    if (r->ttl <= 0) {
        members_lost(m, "expired");
        return;
    }
    m->renewed = m->ka_sent;
    m->renewed_once = true;
    members_fence_check(m);
}

static void
members_ka_timer_cb(struct timer *t)
{
    struct members *m = container_of(t, struct members, ka_timer);

    members_arm(m, &m->ka_timer, m->lease_ms / 3);
    if (m->ka != NULL || m->lease == 0) {
        return;
    }
    m->ka_sent = loop_now(m->l);
    m->ka = etcd_lease_keepalive(m->e, m->lease, members_ka_cb, m);
}

static void
members_reg_timer_cb(struct timer *t)
{
    struct members *m = container_of(t, struct members, reg_timer);

    switch (m->st) {
    case MEMBERS_GRANT:
        members_grant(m);
        break;
    case MEMBERS_CLAIM_ID:
        members_claim_id(m);
        break;
    case MEMBERS_REGISTER:
        members_register(m);
        break;
    default:
        break;
    }
}

static void
members_retry(struct members *m, const char *what, const char *msg)
{
    uint32_t b = members_next_backoff(&m->backoff);

    log_debug("member '%s': %s: %s, again in %u ms", m->name, what, msg,
              (unsigned)b);
    members_arm(m, &m->reg_timer, b);
}

static void
members_register_cb(void *ud, ferry_err err, const char *msg,
                    const struct etcd_result *r)
{
    struct members *m = ud;

    m->reg = NULL;
    if (err != FERRY_OK) {
        members_retry(m, "register", msg);
        return;
    }
    if (!r->succeeded) {
        if (!m->refused) {
            log_error("member '%s': name held by another live node, "
                      "retrying until it is free",
                      m->name);
            m->refused = true;
        }
        members_arm(m, &m->reg_timer, m->lease_ms / 2);
        return;
    }
    if (m->refused) {
        log_info("member '%s': name free again, registered", m->name);
    }
    m->refused = false;
    m->backoff = 0;
    m->st = MEMBERS_READY;
    m->dirty = false;
    log_info("member '%s': registered as node %u", m->name,
             (unsigned)m->node_id);
    members_fence_check(m);
}

static void
members_register(struct members *m)
{
    char *v = members_value(m);

    if (v == NULL) {
        members_retry(m, "register", "out of memory");
        return;
    }
    m->st = MEMBERS_REGISTER;
    m->reg = etcd_claim(m->e, m->self_key, strlen(m->self_key), v, strlen(v),
                        m->lease, members_register_cb, m);
    free(v);
    if (m->reg == NULL) {
        members_retry(m, "register", "out of memory");
    }
}

/* The id to try after id_tries tries: the preferred, then the rest. */
static uint32_t
members_candidate(const struct members *m, uint32_t tries)
{
    uint32_t n = MEMBERS_NODE_ID_MAX + 1;

    if (m->preferred >= 0 && (uint32_t)m->preferred < n) {
        return (uint32_t)(((uint32_t)m->preferred + tries) % n);
    }
    return tries % n;
}

/* Whether another live member holds id, as far as the list says. */
static bool
members_id_taken(const struct members *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->list[i].node_id == id && strcmp(m->list[i].name, m->name)) {
            return true;
        }
    }
    return false;
}

static void
members_claim_cb(void *ud, ferry_err err, const char *msg,
                 const struct etcd_result *r)
{
    struct members *m = ud;

    m->reg = NULL;
    if (err != FERRY_OK) {
        members_retry(m, "node id", msg);
        return;
    }
    if (!r->succeeded) {
        m->id_tries++;
        if (m->id_tries > MEMBERS_NODE_ID_MAX) {
            m->id_tries = 0;
            members_retry(m, "node id", "every id is taken");
            return;
        }
        members_claim_id(m);
        return;
    }
    m->backoff = 0;
    log_info("member '%s': node id %u leased", m->name, (unsigned)m->node_id);
    if (m->h.node_id) {
        m->h.node_id(m->ud, m->node_id);
    }
    members_register(m);
}

static void
members_claim_id(struct members *m)
{
    char key[160];
    int n;

    m->st = MEMBERS_CLAIM_ID;
    while (m->id_tries <= MEMBERS_NODE_ID_MAX &&
           members_id_taken(m, members_candidate(m, m->id_tries))) {
        m->id_tries++;
    }
    if (m->id_tries > MEMBERS_NODE_ID_MAX) {
        m->id_tries = 0;
        members_retry(m, "node id", "every id is taken");
        return;
    }
    m->node_id = members_candidate(m, m->id_tries);
    n = snprintf(key, sizeof(key), "%s%u", m->ids, (unsigned)m->node_id);
    if (n < 0 || (size_t)n >= sizeof(key)) {
        members_retry(m, "node id", "key too long");
        return;
    }
    m->reg = etcd_claim(m->e, key, (size_t)n, m->name, strlen(m->name),
                        m->lease, members_claim_cb, m);
    if (m->reg == NULL) {
        members_retry(m, "node id", "out of memory");
    }
}

static void
members_grant_cb(void *ud, ferry_err err, const char *msg,
                 const struct etcd_result *r)
{
    struct members *m = ud;

    m->reg = NULL;
    if (err != FERRY_OK) {
        members_retry(m, "lease grant", msg);
        return;
    }
    m->lease = r->id;
    m->ttl_s = r->ttl;
    m->renewed = m->grant_sent;
    m->renewed_once = true;
    m->id_tries = 0;
    members_arm(m, &m->ka_timer, m->lease_ms / 3);
    members_claim_id(m);
}

static void
members_grant(struct members *m)
{
    int64_t ttl = ((int64_t)m->lease_ms + 999) / 1000;

    m->st = MEMBERS_GRANT;
    m->grant_sent = loop_now(m->l);
    m->reg = etcd_lease_grant(m->e, ttl < 2 ? 2 : ttl, members_grant_cb, m);
    if (m->reg == NULL) {
        members_retry(m, "lease grant", "out of memory");
    }
}

/* Publishing */

static void members_pub_timer_cb(struct timer *t);

static void
members_pub_cb(void *ud, ferry_err err, const char *msg,
               const struct etcd_result *r)
{
    struct members *m = ud;

    m->pub = NULL;
    if (err != FERRY_OK) {
        log_debug("member '%s': publish: %s", m->name, msg);
        m->dirty = true;
    }
    if (m->dirty) {
        members_arm(m, &m->pub_timer, MEMBERS_PUBLISH_MS);
    }
}

static void
members_pub_timer_cb(struct timer *t)
{
    struct members *m = container_of(t, struct members, pub_timer);
    char *v;

    if (!m->dirty || m->pub != NULL) {
        return;
    }
    if (m->st != MEMBERS_READY) {
        return; /* registering puts the services too */
    }
    v = members_value(m);
    if (v == NULL) {
        members_arm(m, &m->pub_timer, MEMBERS_PUBLISH_MS);
        return;
    }
    m->dirty = false;
    m->pub_sent = loop_now(m->l);
    m->pub = etcd_put(m->e, m->self_key, strlen(m->self_key), v, strlen(v),
                      m->lease, members_pub_cb, m);
    free(v);
    if (m->pub == NULL) {
        m->dirty = true;
        members_arm(m, &m->pub_timer, MEMBERS_PUBLISH_MS);
    }
}

void
members_publish(struct members *m, json_t *services)
{
    json_t *copy;
    uint64_t now = loop_now(m->l), at;

    if (services == NULL || json_equal(services, m->services)) {
        return;
    }
    copy = json_deep_copy(services);
    if (copy == NULL) {
        return;
    }
    json_decref(m->services);
    m->services = copy;
    m->dirty = true;
    if (m->pub != NULL || timer_is_armed(&m->pub_timer)) {
        return;
    }
    at = m->pub_sent + MEMBERS_PUBLISH_MS;
    members_arm(m, &m->pub_timer, at > now ? at - now : 0);
}

void
members_set_leaving(struct members *m)
{
    if (m->leaving) {
        return;
    }
    m->leaving = true;
    m->dirty = true;
    if (m->pub == NULL && !timer_is_armed(&m->pub_timer)) {
        members_arm(m, &m->pub_timer, 0);
    }
}

/* The view side */

static void
members_member_release(struct member *mb)
{
    free(mb->name);
    free(mb->addr);
    free(mb->http);
    json_decref(mb->services);
}

/* Decodes a node key's value; false when it is not one (logged). */
static bool
members_member_decode(const struct members *m, const struct etcd_kv *kv,
                      struct member *out)
{
    const char *name = kv->key + strlen(m->nodes);
    json_t *v, *svc;
    const char *vname, *addr, *http = NULL;
    json_t *jhttp = NULL;
    json_int_t id;
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    v = json_loadb(kv->value, kv->value_len, 0, &jerr);
    if (v == NULL ||
        json_unpack(v, "{s:s, s:s, s?o, s:I, s?o}", "name", &vname, "addr",
                    &addr, "http", &jhttp, "node_id", &id, "services",
                    &svc) != 0 ||
        (jhttp != NULL && !json_is_null(jhttp) && !json_is_string(jhttp)) ||
        strcmp(vname, name) != 0 || id < 0 || id > MEMBERS_NODE_ID_MAX) {
        log_warn("member '%s': ignoring the malformed node key '%s'", m->name,
                 kv->key);
        json_decref(v);
        return false;
    }
    svc = json_object_get(v, "services");
    http = json_is_string(jhttp) ? json_string_value(jhttp) : NULL;
    out->name = strdup(name);
    out->addr = strdup(addr);
    out->http = http ? strdup(http) : NULL;
    out->node_id = (uint32_t)id;
    out->services = json_is_object(svc) ? json_incref(svc) : json_object();
    out->mod_revision = kv->mod_revision;
    out->leaving = json_is_true(json_object_get(v, "leaving"));
    json_decref(v);
    if (out->name == NULL || out->addr == NULL || out->services == NULL ||
        (http != NULL && out->http == NULL)) {
        members_member_release(out);
        return false;
    }
    return true;
}

/* The index of name in the list, or where it would go (*found false). */
static size_t
members_find(const struct members *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->list[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

/* Puts mb (taken) in the list; returns 1 for a join, 0 for a services
 * change, -1 for nothing changed or no memory. */
static int
members_upsert(struct members *m, struct member *mb)
{
    bool found;
    size_t i = members_find(m, mb->name, &found);
    struct member *old, *list;
    int changed;

    if (found) {
        old = &m->list[i];
        changed = strcmp(old->addr, mb->addr) != 0 ||
                          old->node_id != mb->node_id ||
                          (old->http == NULL) != (mb->http == NULL) ||
                          (old->http && strcmp(old->http, mb->http) != 0)
                      ? 1
                      : (json_equal(old->services, mb->services) ? -1 : 0);
        members_member_release(old);
        *old = *mb;
        return changed;
    }
    list = realloc(m->list, (m->n + 1) * sizeof(*list));
    if (list == NULL) {
        members_member_release(mb);
        return -1;
    }
    m->list = list;
    memmove(&list[i + 1], &list[i], (m->n - i) * sizeof(*list));
    list[i] = *mb;
    m->n++;
    return 1;
}

static bool
members_remove(struct members *m, const char *name)
{
    bool found;
    size_t i = members_find(m, name, &found);

    if (!found) {
        return false;
    }
    members_member_release(&m->list[i]);
    memmove(&m->list[i], &m->list[i + 1], (m->n - i - 1) * sizeof(*m->list));
    m->n--;
    return true;
}

static void
members_changed(struct members *m, bool membership)
{
    if (m->h.changed) {
        m->h.changed(m->ud, membership);
    }
}

static void
members_view_retry(struct members *m, bool reread)
{
    uint32_t b = members_next_backoff(&m->view_backoff);

    if (reread) {
        m->rev = 0;
    }
    members_arm(m, &m->view_timer, b);
}

static void
members_view_timer_cb(struct timer *t)
{
    struct members *m = container_of(t, struct members, view_timer);

    if (m->rev == 0) {
        members_read(m);
    } else {
        members_watch(m);
    }
}

static void
members_w_created(void *ud)
{
    struct members *m = ud;

    m->view_backoff = 0;
}

static void
members_w_event(void *ud, const struct etcd_event *ev)
{
    struct members *m = ud;
    size_t plen = strlen(m->nodes);
    struct member mb;
    int c;

    if (ev->kv.mod_revision > m->rev) {
        m->rev = ev->kv.mod_revision;
    }
    if (ev->kv.key_len <= plen || memcmp(ev->kv.key, m->nodes, plen) != 0) {
        return;
    }
    if (ev->type == ETCD_EVENT_DELETE) {
        if (members_remove(m, ev->kv.key + plen)) {
            m->epoch = ev->kv.mod_revision;
            members_changed(m, true);
        }
        return;
    }
    if (!members_member_decode(m, &ev->kv, &mb)) {
        if (members_remove(m, ev->kv.key + plen)) {
            m->epoch = ev->kv.mod_revision;
            members_changed(m, true);
        }
        return;
    }
    c = members_upsert(m, &mb);
    if (c == 1) {
        m->epoch = ev->kv.mod_revision;
    }
    if (c >= 0) {
        members_changed(m, c == 1);
    }
}

static void
members_w_ended(void *ud, ferry_err err, const char *msg, uint64_t compact)
{
    struct members *m = ud;

    m->watch = NULL;
    if (err == FERRY_ECANCELLED) {
        log_warn("member '%s': watch from revision %llu compacted (at %llu), "
                 "reading the members again",
                 m->name, (unsigned long long)m->rev + 1,
                 (unsigned long long)compact);
        m->rev = 0;
        members_read(m);
        return;
    }
    log_debug("member '%s': watch ended: %s", m->name, msg);
    members_view_retry(m, false);
}

static const struct etcd_watch_hooks members_watch_hooks = {
    members_w_created, members_w_event, members_w_ended};

static void
members_watch(struct members *m)
{
    m->watch = etcd_watch(m->e, m->nodes, strlen(m->nodes), m->rev + 1,
                          &members_watch_hooks, m);
    if (m->watch == NULL) {
        members_view_retry(m, false);
    }
}

static void
members_read_cb(void *ud, ferry_err err, const char *msg,
                const struct etcd_result *r)
{
    struct members *m = ud;
    size_t plen = strlen(m->nodes);
    struct member *old = m->list;
    size_t n_old = m->n;
    bool membership;

    m->read = NULL;
    if (err != FERRY_OK) {
        log_debug("member '%s': reading members: %s", m->name, msg);
        members_view_retry(m, true);
        return;
    }
    m->list = NULL;
    m->n = 0;
    for (size_t i = 0; i < r->n_kvs; i++) {
        struct member mb;
        if (r->kvs[i].key_len > plen &&
            members_member_decode(m, &r->kvs[i], &mb)) {
            members_upsert(m, &mb);
        }
    }
    /* A join or leave when the names differ from those held before. */
    membership = n_old != m->n;
    for (size_t i = 0; !membership && i < m->n; i++) {
        membership = strcmp(old[i].name, m->list[i].name) != 0 ||
                     strcmp(old[i].addr, m->list[i].addr) != 0 ||
                     old[i].node_id != m->list[i].node_id;
    }
    for (size_t i = 0; i < n_old; i++) {
        members_member_release(&old[i]);
    }
    free(old);
    m->rev = r->revision;
    if (membership || m->epoch == 0) {
        m->epoch = r->revision;
    }
    members_changed(m, membership);
    members_watch(m);
}

static void
members_read(struct members *m)
{
    m->read =
        etcd_range(m->e, m->nodes, strlen(m->nodes), true, members_read_cb, m);
    if (m->read == NULL) {
        members_view_retry(m, true);
    }
}

/* The whole */

struct members *
members_start(struct loop *l, const struct members_config *cfg,
              const struct members_hooks *h, void *ud)
{
    struct members *m;
    char *base;

    if (cfg->name == NULL || cfg->name[0] == '\0' || cfg->addr == NULL ||
        cfg->cluster == NULL || cfg->cluster[0] == '\0' ||
        strchr(cfg->name, '/') != NULL || strchr(cfg->cluster, '/') != NULL ||
        cfg->endpoints == NULL) {
        log_error("cluster: a member needs a name, an addr and a cluster "
                  "name without '/'");
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->l = l;
    m->h = *h;
    m->ud = ud;
    m->lease_ms = cfg->lease_ms ? cfg->lease_ms : 3000;
    if (m->lease_ms < 600) {
        m->lease_ms = 600;
    }
    m->preferred = cfg->preferred_node_id;
    m->fenced = true;
    m->started = members_wall_ms();
    timer_init(&m->ka_timer, members_ka_timer_cb);
    timer_init(&m->reg_timer, members_reg_timer_cb);
    timer_init(&m->fence_timer, members_fence_cb);
    timer_init(&m->view_timer, members_view_timer_cb);
    timer_init(&m->pub_timer, members_pub_timer_cb);
    m->name = strdup(cfg->name);
    m->addr = strdup(cfg->addr);
    m->http = cfg->http ? strdup(cfg->http) : NULL;
    base = members_cat("/ferry/", cfg->cluster, "/");
    m->nodes = base ? members_cat(base, "nodes/", "") : NULL;
    m->ids = base ? members_cat(base, "ids/", "") : NULL;
    free(base);
    m->self_key = m->nodes ? members_cat(m->nodes, cfg->name, "") : NULL;
    m->services = json_object();
    if (m->name == NULL || m->addr == NULL || (cfg->http && !m->http) ||
        m->nodes == NULL || m->ids == NULL || m->self_key == NULL ||
        m->services == NULL) {
        goto out_free;
    }
    /* Each call may take a third of the lease: a keepalive's interval. */
    m->e = etcd_new(l, cfg->endpoints, m->lease_ms / 3);
    if (m->e == NULL) {
        log_error("cluster: bad etcd endpoints '%s'", cfg->endpoints);
        goto out_free;
    }
    members_grant(m);
    members_read(m);
    return m;
out_free:
    members_stop(m);
    return NULL;
}

const struct member *
members_list(const struct members *m, size_t *n)
{
    *n = m->n;
    return m->list;
}

uint64_t
members_epoch(const struct members *m)
{
    return m->epoch;
}

bool
members_fenced(const struct members *m)
{
    return m->fenced;
}

static void
members_leave_revoked(void *ud, ferry_err err, const char *msg,
                      const struct etcd_result *r)
{
    struct members *m = ud;
    void (*done)(void *) = m->leave_done;

    m->reg = NULL;
    if (err != FERRY_OK) {
        log_warn("member '%s': revoking the lease: %s", m->name, msg);
    }
    m->lease = 0;
    m->leave_done = NULL;
    log_info("member '%s': left the cluster", m->name);
    if (done) {
        done(m->ud);
    }
}

static void
members_leave_deleted(void *ud, ferry_err err, const char *msg,
                      const struct etcd_result *r)
{
    struct members *m = ud;

    m->reg = NULL;
    if (err != FERRY_OK) {
        log_warn("member '%s': deleting the node key: %s", m->name, msg);
    }
    if (m->lease != 0) {
        m->reg = etcd_lease_revoke(m->e, m->lease, members_leave_revoked, m);
    }
    if (m->reg == NULL) {
        members_leave_revoked(m, FERRY_OK, NULL, NULL);
    }
}

void
members_leave(struct members *m, void (*done)(void *ud))
{
    bool registered = m->st == MEMBERS_READY;

    etcd_cancel(m->reg);
    m->reg = NULL;
    etcd_cancel(m->ka);
    m->ka = NULL;
    etcd_cancel(m->pub);
    m->pub = NULL;
    loop_timer_stop(m->l, &m->ka_timer);
    loop_timer_stop(m->l, &m->reg_timer);
    loop_timer_stop(m->l, &m->pub_timer);
    m->st = MEMBERS_LEFT;
    m->leave_done = done;
    members_fence_check(m);
    if (registered) {
        m->reg = etcd_delete(m->e, m->self_key, strlen(m->self_key), false,
                             members_leave_deleted, m);
    }
    if (m->reg == NULL) {
        members_leave_deleted(m, FERRY_OK, NULL, NULL);
    }
}

json_t *
members_describe(const struct members *m)
{
    json_t *d, *list;
    uint64_t now = loop_now(m->l);
    char lease[32];

    snprintf(lease, sizeof(lease), "%llx", (unsigned long long)m->lease);
    list = json_array();
    for (size_t i = 0; list != NULL && i < m->n; i++) {
        const struct member *mb = &m->list[i];
        json_array_append_new(
            list,
            json_pack("{ss ss so si sO sI sb}", "name", mb->name, "addr",
                      mb->addr, "http",
                      mb->http ? json_string(mb->http) : json_null(),
                      "node_id", (int)mb->node_id, "services", mb->services,
                      "mod_revision", (json_int_t)mb->mod_revision, "leaving",
                      mb->leaving));
    }
    d = json_pack("{ss ss so ss sI sI so sb sI sI so}", "self", m->name, "addr",
                  m->addr, "http", m->http ? json_string(m->http) : json_null(),
                  "lease", lease, "ttl_s", (json_int_t)m->ttl_s, "lease_ms",
                  (json_int_t)m->lease_ms, "last_renewal_ms",
                  m->renewed_once ? json_integer((json_int_t)(now - m->renewed))
                                  : json_null(),
                  "fenced", m->fenced, "epoch", (json_int_t)m->epoch,
                  "revision", (json_int_t)m->rev, "members",
                  list ? list : json_array());
    if (d != NULL && m->st == MEMBERS_READY) {
        json_object_set_new(d, "node_id", json_integer(m->node_id));
    }
    return d;
}

void
members_stop(struct members *m)
{
    if (m == NULL) {
        return;
    }
    loop_timer_stop(m->l, &m->ka_timer);
    loop_timer_stop(m->l, &m->reg_timer);
    loop_timer_stop(m->l, &m->fence_timer);
    loop_timer_stop(m->l, &m->view_timer);
    loop_timer_stop(m->l, &m->pub_timer);
    etcd_free(m->e); /* every call with it, silently */
    for (size_t i = 0; i < m->n; i++) {
        members_member_release(&m->list[i]);
    }
    free(m->list);
    json_decref(m->services);
    free(m->name);
    free(m->addr);
    free(m->http);
    free(m->nodes);
    free(m->ids);
    free(m->self_key);
    free(m);
}
