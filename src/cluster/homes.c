/* SPDX-License-Identifier: MIT */
/*
 * homes.c - where each vbucket's durable data lives (docs/cluster.md,
 * "Durable data: homes").
 *
 * The routing map (vbmap.h) follows the live members, so it changes the
 * moment a node dies; the data of ferry.kv and ferry.queue does not move
 * with it: it is on the dead node's disk. So each vbucket also has a
 * home, the node whose store holds its durable data, kept in etcd as
 * /ferry/<cluster>/homes/<vb> = node name, with no lease (it outlives
 * the node). A vbucket without a home is claimed, by a compare-and-swap
 * that succeeds only while the key does not exist, by the owner the map
 * gives it; a home changes only by a swap from the old name
 * (handover.c), so two nodes never both believe they are its home once
 * they have read etcd. Every node reads the prefix once and watches it,
 * like members.c does for the nodes, and reads it again after a broken
 * watch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_impl.h"
#include "cluster/etcd.h"
#include "core/log.h"
#include "core/loop.h"

/* Claims in flight at once, so a new cluster's 1024 claims do not queue
 * a thousand calls on etcd at the same moment. */
#define HOMES_CLAIMS_MAX 32
#define HOMES_BACKOFF_MIN 100
#define HOMES_BACKOFF_MAX 2000

/* One claim's record: a slot of its homes, so freeing the client mid-call
 * leaks nothing. */
struct homes_claim {
    struct homes *h; /* borrowed */
    uint16_t vb;     /* the vbucket claimed */
};

struct homes {
    struct cluster *c;         /* borrowed */
    struct etcd *e;            /* owned */
    char prefix[320];          /* /ferry/<cluster>/homes/ */
    size_t prefix_len;         /* bytes of prefix */
    char *home[VB_COUNT];      /* owned names; NULL: no home yet */
    bool claiming[VB_COUNT];   /* a claim of ours is in flight */
    unsigned n_claims;         /* entries of claiming set */
    bool loaded;               /* the prefix was read */
    uint64_t rev;              /* the etcd revision seen last */
    struct etcd_call *read;    /* the read in flight, or NULL */
    struct etcd_call *watch;   /* the watch, or NULL */
    struct timer retry;        /* reads again after a failure */
    uint32_t backoff;          /* the next retry's wait */
    uint64_t claims;           /* homes claimed by this node */
    uint64_t reads;            /* times the prefix was read */
    struct homes_claim slot[VB_COUNT]; /* the claims' records */
};

static void homes_read(struct homes *h);

/* The vbucket of key "<prefix><vb>", or VB_NONE. */
static uint16_t
homes_vb_of(const struct homes *h, const char *key, size_t len)
{
    unsigned long v;
    char *end;

    if (len <= h->prefix_len || len > h->prefix_len + 4 ||
        memcmp(key, h->prefix, h->prefix_len) != 0) {
        return VB_NONE;
    }
    v = strtoul(key + h->prefix_len, &end, 10);
    if (end != key + len || v >= VB_COUNT) {
        return VB_NONE;
    }
    return (uint16_t)v;
}

static void
homes_set(struct homes *h, uint16_t vb, const char *name, size_t len)
{
    char *n = NULL;

    if (name != NULL) {
        if (len == 0 || len > 255 || memchr(name, '\0', len) != NULL) {
            log_warn("cluster: ignoring the malformed home of vbucket %u",
                     (unsigned)vb);
            return;
        }
        if (h->home[vb] != NULL && strlen(h->home[vb]) == len &&
            memcmp(h->home[vb], name, len) == 0) {
            return;
        }
        n = strndup(name, len);
        if (n == NULL) {
            log_error("cluster: out of memory keeping vbucket homes");
            return;
        }
    }
    free(h->home[vb]);
    h->home[vb] = n;
}

static void
homes_arm_retry(struct homes *h)
{
    uint32_t wait = h->backoff ? h->backoff : HOMES_BACKOFF_MIN;

    h->backoff = wait * 2 > HOMES_BACKOFF_MAX ? HOMES_BACKOFF_MAX : wait * 2;
    loop_timer_start(h->c->loop, &h->retry, loop_now(h->c->loop) + wait);
}

static void
homes_retry_cb(struct timer *t)
{
    struct homes *h = container_of(t, struct homes, retry);

    homes_read(h);
}

static void
homes_w_created(void *ud)
{
    struct homes *h = ud;

    h->backoff = 0;
}

static void
homes_w_event(void *ud, const struct etcd_event *ev)
{
    struct homes *h = ud;
    uint16_t vb = homes_vb_of(h, ev->kv.key, ev->kv.key_len);

    if (ev->kv.mod_revision > h->rev) {
        h->rev = ev->kv.mod_revision;
    }
    if (vb == VB_NONE) {
        return;
    }
    if (ev->type == ETCD_EVENT_DELETE) {
        homes_set(h, vb, NULL, 0);
    } else {
        homes_set(h, vb, ev->kv.value, ev->kv.value_len);
    }
    cluster_homes_changed(h->c, vb);
}

static void
homes_w_ended(void *ud, ferry_err err, const char *msg, uint64_t compact)
{
    struct homes *h = ud;

    h->watch = NULL;
    log_debug("cluster: homes watch ended: %s", msg ? msg : "closed");
    /* Compacted or broken: read everything again (1024 keys at most). */
    homes_arm_retry(h);
}

static const struct etcd_watch_hooks homes_watch_hooks = {
    homes_w_created, homes_w_event, homes_w_ended};

static void
homes_read_cb(void *ud, ferry_err err, const char *msg,
              const struct etcd_result *r)
{
    struct homes *h = ud;
    bool seen[VB_COUNT] = {false};

    h->read = NULL;
    if (err != FERRY_OK) {
        log_debug("cluster: reading vbucket homes: %s", msg);
        homes_arm_retry(h);
        return;
    }
    for (size_t i = 0; i < r->n_kvs; i++) {
        const struct etcd_kv *kv = &r->kvs[i];
        uint16_t vb = homes_vb_of(h, kv->key, kv->key_len);
        if (vb != VB_NONE) {
            homes_set(h, vb, kv->value, kv->value_len);
            seen[vb] = true;
        }
    }
    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        if (!seen[vb]) {
            homes_set(h, vb, NULL, 0);
        }
    }
    h->rev = r->revision;
    h->loaded = true;
    h->reads++;
    h->watch = etcd_watch(h->e, h->prefix, h->prefix_len, h->rev + 1,
                          &homes_watch_hooks, h);
    if (h->watch == NULL) {
        homes_arm_retry(h);
    }
    cluster_homes_changed(h->c, VB_NONE);
}

static void
homes_read(struct homes *h)
{
    etcd_cancel(h->watch);
    h->watch = NULL;
    etcd_cancel(h->read);
    h->read = etcd_range(h->e, h->prefix, h->prefix_len, true, homes_read_cb,
                         h);
    if (h->read == NULL) {
        homes_arm_retry(h);
    }
}

struct homes *
homes_start(struct cluster *c, const char *endpoints, const char *cluster,
            uint32_t timeout_ms)
{
    struct homes *h = calloc(1, sizeof(*h));
    int n;

    if (h == NULL) {
        return NULL;
    }
    h->c = c;
    timer_init(&h->retry, homes_retry_cb);
    n = snprintf(h->prefix, sizeof(h->prefix), "/ferry/%s/homes/", cluster);
    if (n < 0 || (size_t)n >= sizeof(h->prefix)) {
        free(h);
        return NULL;
    }
    h->prefix_len = (size_t)n;
    h->e = etcd_new(c->loop, endpoints, timeout_ms);
    if (h->e == NULL) {
        free(h);
        return NULL;
    }
    homes_read(h);
    return h;
}

void
homes_stop(struct homes *h)
{
    if (h == NULL) {
        return;
    }
    loop_timer_stop(h->c->loop, &h->retry);
    etcd_free(h->e); /* ends every call, with no callback */
    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        free(h->home[vb]);
    }
    free(h);
}

bool
homes_loaded(const struct homes *h)
{
    return h != NULL && h->loaded;
}

const char *
homes_of(const struct homes *h, uint16_t vb)
{
    return h != NULL && vb < VB_COUNT ? h->home[vb] : NULL;
}

static void
homes_claim_cb(void *ud, ferry_err err, const char *msg,
               const struct etcd_result *r)
{
    const struct homes_claim *cl = ud;
    struct homes *h = cl->h;
    uint16_t vb = cl->vb;

    h->claiming[vb] = false;
    h->n_claims--;
    if (err != FERRY_OK) {
        log_debug("cluster: claiming vbucket %u: %s", (unsigned)vb, msg);
    } else if (r->succeeded) {
        h->claims++;
        /* The watch will say so too; setting it now serves sooner. */
        homes_set(h, vb, h->c->self, strlen(h->c->self));
        cluster_homes_changed(h->c, vb);
    }
    homes_claim_due(h);
}

void
homes_claim_due(struct homes *h)
{
    struct cluster *c = h->c;
    size_t self_len = strlen(c->self);

    if (!h->loaded || c->fenced || !c->have_map || c->leaving) {
        return;
    }
    for (uint16_t vb = 0; vb < VB_COUNT && h->n_claims < HOMES_CLAIMS_MAX;
         vb++) {
        const char *owner;
        struct homes_claim *cl;
        char key[340];
        int n;

        if (h->home[vb] != NULL || h->claiming[vb]) {
            continue;
        }
        owner = vbmap_owner(&c->map, vb);
        if (owner == NULL || strcmp(owner, c->self) != 0) {
            continue;
        }
        n = snprintf(key, sizeof(key), "%s%u", h->prefix, (unsigned)vb);
        if (n < 0 || (size_t)n >= sizeof(key)) {
            return;
        }
        cl = &h->slot[vb];
        cl->h = h;
        cl->vb = vb;
        if (etcd_swap(h->e, key, (size_t)n, NULL, 0, c->self, self_len,
                      homes_claim_cb, cl) == NULL) {
            return;
        }
        h->claiming[vb] = true;
        h->n_claims++;
    }
}

/* The swap of one home, for handover.c. */
struct etcd_call *
homes_swap(struct homes *h, uint16_t vb, const char *from, const char *to,
           etcd_cb cb, void *ud)
{
    char key[340];
    int n = snprintf(key, sizeof(key), "%s%u", h->prefix, (unsigned)vb);

    if (n < 0 || (size_t)n >= sizeof(key)) {
        return NULL;
    }
    return etcd_swap(h->e, key, (size_t)n, from, strlen(from), to, strlen(to),
                     cb, ud);
}

/* Sets vb's home here as soon as a swap of ours succeeded. */
void
homes_note(struct homes *h, uint16_t vb, const char *name)
{
    homes_set(h, vb, name, strlen(name));
}

json_t *
homes_describe(const struct homes *h)
{
    json_t *count = json_object();
    unsigned none = 0;

    if (count == NULL) {
        return NULL;
    }
    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        const char *n = h->home[vb];
        if (n == NULL) {
            none++;
            continue;
        }
        json_object_set_new(
            count, n,
            json_integer(json_integer_value(json_object_get(count, n)) + 1));
    }
    return json_pack("{s:b, s:o, s:i, s:I, s:I}", "loaded", h->loaded,
                     "per_node", count, "unclaimed", none, "claimed_here",
                     (json_int_t)h->claims, "reads", (json_int_t)h->reads);
}
