/* SPDX-License-Identifier: MIT */
/*
 * gather.c - a request every node answers for its own part, the answers
 * merged here: ferry.queue's STATS of every queue (`ferry queues`, GET
 * /v1/queues). A queue lives on its vbucket's home, so no one node knows
 * them all.
 *
 * The request is held here (a record of the broker, with its deadline);
 * each other node with its link up gets it hop-marked, so it answers from
 * its own store, and this node answers its own part the same way
 * (icall_submit_node). When all have answered, or failed, or their own
 * shorter deadline passed, the caller gets the queues of all of them,
 * each with the node it lives on, sorted by name, and under "missing"
 * the members that did not answer (a link down, too slow) and the nodes
 * homes name that are not members now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/broker_impl.h"
#include "cluster/cluster_impl.h"
#include "queue/queue_codec.h"

/* A part may take this share of what is left of the request's deadline,
 * so the merged answer, naming the late nodes, still reaches the caller. */
#define GATHER_PART_SHARE 4 /* 3/4 */
#define GATHER_PART_MAX_MS 2000

struct gather;

struct gather_part {
    struct icall ic;    /* its call in flight */
    struct gather *g;   /* the whole */
    char node[256];     /* the node it asks */
};

struct gather {
    struct cluster *c;       /* borrowed */
    uint64_t handle;         /* the held request */
    struct gather *next;     /* in the cluster's list */
    size_t n, left;          /* parts; of them, not answered yet */
    size_t answered;         /* parts that gave their queues */
    json_t *queues;          /* owned: the merged answer's */
    json_t *missing;         /* owned: nodes that did not answer */
    struct gather_part part[]; /* n of them */
};

static struct gather **
gather_link(struct cluster *c, uint64_t handle)
{
    struct gather **pp = &c->gathers;

    while (*pp != NULL && (*pp)->handle != handle) {
        pp = &(*pp)->next;
    }
    return pp;
}

static void
gather_free(struct gather *g)
{
    struct gather **pp = gather_link(g->c, g->handle);

    if (*pp == g) {
        *pp = g->next;
    }
    for (size_t i = 0; i < g->n; i++) {
        icall_cancel(g->c->b, &g->part[i].ic);
    }
    json_decref(g->queues);
    json_decref(g->missing);
    free(g);
}

static int
gather_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(
        json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(
        json_object_get(*(json_t *const *)b, "name"));

    return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

/* The merged answer: status OK, then the JSON. */
static void
gather_answer(struct gather *g)
{
    struct broker *b = g->c->b;
    size_t n = json_array_size(g->queues);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    json_t *sorted = json_array(), *doc = NULL;
    char *text = NULL;
    uint8_t *out = NULL;
    size_t len = 0;

    if (v != NULL && sorted != NULL) {
        for (size_t i = 0; i < n; i++) {
            v[i] = json_array_get(g->queues, i);
        }
        qsort(v, n, sizeof(*v), gather_cmp);
        for (size_t i = 0; i < n; i++) {
            json_array_append(sorted, v[i]);
        }
        doc = json_pack("{s:O, s:I, s:O}", "queues", sorted, "nodes",
                        (json_int_t)g->answered, "missing", g->missing);
    }
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    len = text != NULL ? strlen(text) : 0;
    out = text != NULL ? malloc(1 + len) : NULL;
    if (out != NULL) {
        out[0] = QUEUE_ST_OK;
        memcpy(out + 1, text, len);
        broker_answer(b, g->handle, FERRY_OK, out, 1 + len);
    } else {
        broker_answer_error(b, g->handle, FERRY_ENOMEM, NULL);
    }
    free(out);
    free(text);
    json_decref(doc);
    json_decref(sorted);
    free(v);
    gather_free(g);
}

/* Adds part p's answer (its queues, each marked with its node), or names
 * its node as missing. */
static void
gather_take(struct gather_part *p, ferry_err err, const void *data,
            size_t len)
{
    struct gather *g = p->g;
    const uint8_t *d = data;
    json_t *doc = NULL, *qs, *q;
    size_t i;

    if (err == FERRY_OK && len >= 1 && d[0] == QUEUE_ST_OK) {
        doc = json_loadb((const char *)d + 1, len - 1, 0, NULL);
    }
    qs = json_object_get(doc, "queues");
    if (!json_is_array(qs)) {
        json_array_append_new(g->missing, json_string(p->node));
    } else {
        g->answered++;
        json_array_foreach(qs, i, q) {
            if (json_is_object(q)) {
                json_object_set_new(q, "node", json_string(p->node));
                json_array_append(g->queues, q);
            }
        }
    }
    json_decref(doc);
}

static void
gather_part_done(struct icall *ic, ferry_err err, const void *data,
                 size_t len)
{
    struct gather_part *p = container_of(ic, struct gather_part, ic);
    struct gather *g = p->g;

    gather_take(p, err, data, len);
    if (--g->left == 0) {
        gather_answer(g);
    }
}

/* The nodes vbuckets' homes name that are not members now (down, their
 * lease gone): their queues cannot be in the answer; named as missing. */
static void
gather_homeless(struct gather *g)
{
    struct cluster *c = g->c;

    if (!homes_loaded(c->homes)) {
        return;
    }
    for (unsigned vb = 0; vb < VB_COUNT; vb++) {
        const char *home = homes_of(c->homes, (uint16_t)vb);
        const struct peer *p;
        bool named = false;
        size_t i;
        json_t *m;

        if (home == NULL || strcmp(home, c->self) == 0) {
            continue;
        }
        p = peers_find(c, home);
        if (p != NULL && p->live) {
            continue;
        }
        json_array_foreach(g->missing, i, m) {
            named = named || strcmp(json_string_value(m), home) == 0;
        }
        if (!named) {
            json_array_append_new(g->missing, json_string(home));
        }
    }
}

bool
gather_wanted(const struct cluster *c, const struct service *svc,
              uint8_t flags, const struct frame_request *q)
{
    return (flags & CLUSTER_FORWARDED) == 0 && c->n_peers > 0 &&
           q->key.len == 0 && q->payload.len == 1 &&
           q->payload.p[0] == QUEUE_OP_STATS &&
           strcmp(svc->name, "ferry.queue") == 0;
}

static void
gather_start(struct backend *be, struct req *r, void *where,
             const struct frame_request *q)
{
    struct cluster *c = container_of(be, struct cluster, gather_be);
    struct broker *b = c->b;
    uint64_t now = loop_now(b->loop);
    uint64_t left_ms = r->deadline > now ? r->deadline - now : 1;
    uint32_t part_ms;
    struct slice svc = {(const uint8_t *)r->svc->name, r->svc->name_len};
    struct gather *g;
    uint64_t h = r->id; /* r may be answered, and freed, by a part */
    size_t n = 1;

    (void)where;
    r->state = REQ_HELD;
    r->svc->in_flight++;
    if (loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
        broker_answer_error(b, r->id, FERRY_ENOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        n += c->peers[i].live;
    }
    g = calloc(1, sizeof(*g) + n * sizeof(g->part[0]));
    if (g == NULL || (g->queues = json_array()) == NULL ||
        (g->missing = json_array()) == NULL) {
        if (g != NULL) {
            json_decref(g->queues);
        }
        free(g);
        broker_answer_error(b, r->id, FERRY_ENOMEM, NULL);
        return;
    }
    g->c = c;
    g->handle = r->id;
    g->next = c->gathers;
    c->gathers = g;
    part_ms = (uint32_t)(left_ms * (GATHER_PART_SHARE - 1) / GATHER_PART_SHARE);
    part_ms = part_ms > GATHER_PART_MAX_MS ? GATHER_PART_MAX_MS
              : part_ms == 0               ? 1
                                           : part_ms;
    /* Every part first (an answer may come back at once), then sent. */
    snprintf(g->part[0].node, sizeof(g->part[0].node), "%s", c->self);
    for (size_t i = 0, k = 1; i < c->n_peers; i++) {
        if (c->peers[i].live) {
            snprintf(g->part[k].node, sizeof(g->part[k].node), "%s",
                     c->peers[i].name);
            k++;
        }
    }
    g->n = g->left = n;
    gather_homeless(g);
    for (size_t i = 0; i < n; i++) {
        struct gather_part *p = &g->part[i];
        p->g = g;
        p->ic.internals = true;
        icall_submit_node(b, &p->ic,
                          i == 0 ? NULL : peers_find(c, p->node), svc,
                          q->key, q->payload, part_ms, gather_part_done);
        if (*gather_link(c, h) != g) {
            return; /* answered and freed already */
        }
    }
}

static void
gather_cancelled(struct backend *be, uint64_t handle)
{
    struct cluster *c = container_of(be, struct cluster, gather_be);
    struct gather *g = *gather_link(c, handle);

    if (g != NULL) {
        gather_free(g);
    }
}

static void
gather_timer(struct backend *be, struct req *r, uint64_t now)
{
    (void)be;
    (void)now;
    broker_req_fail_code(r->b, r, FERRY_EDEADLINE);
}

static void
gather_nothing(struct backend *be, struct req *r)
{
    (void)be;
    (void)r;
}

const struct backend_ops cluster_gather_ops = {
    .kind = "cluster",
    .start = gather_start,
    .timer = gather_timer,
    .cancel = gather_nothing,
    .release = gather_nothing,
    .cancelled = gather_cancelled,
};

void
gather_release(struct cluster *c)
{
    while (c->gathers != NULL) {
        gather_free(c->gathers);
    }
}
