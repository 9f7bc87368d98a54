/* SPDX-License-Identifier: MIT */
/*
 * route.c - where a request goes in a cluster, and the backend that
 * sends it over a peer link.
 *
 * Keyed services (ferry.cache, ferry.kv, ferry.queue and keyed_service)
 * go to the owner of their routing key's vbucket: served here when this
 * node owns it, forwarded once otherwise; a forwarded request whose
 * vbucket this node does not own (its map is newer than the sender's) is
 * answered NOT_MY_VBUCKET with the epoch. A fenced node serves no
 * vbucket (FENCED). Services of workers are served here while a local
 * worker has free credit; else by a node whose published directory shows
 * room for them (its workers' credit less what this node has outstanding
 * there; two random choices, the one with more room), or, when no local
 * worker exists at all, by the node with workers that has the most;
 * else here again (queued for a local worker, or NO_WORKER). In-daemon
 * services without a key (echo, ferry.id, ferry.topic, ...) are always
 * this node's. A request a peer forwarded is never forwarded again.
 *
 * The forwarding backend has the record hooks of backend.h: its record
 * sits in the link's session's held list, so the link's REPLY or ERROR
 * answers it like a worker's, and a link that closes fails it with
 * WORKER_LOST (broker_worker_gone).
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/broker_impl.h"
#include "broker/session.h"
#include "cluster/cluster_impl.h"
#include "core/conn.h"
#include "core/rand.h"

static struct peer *fwd_peer_of(struct cluster *c, uint64_t conn_id);

static bool
route_is_keyed_name(const struct cluster *c, const char *name)
{
    if (strcmp(name, "ferry.cache") == 0 || strcmp(name, "ferry.kv") == 0 ||
        strcmp(name, "ferry.queue") == 0) {
        return true;
    }
    for (size_t i = 0; i < c->n_keyed; i++) {
        if (strcmp(c->keyed[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static enum cluster_kind
route_kind(const struct cluster *c, struct service *svc)
{
    if (svc->cluster_kind != CLUSTER_KIND_UNKNOWN) {
        return (enum cluster_kind)svc->cluster_kind;
    }
    if (strcmp(svc->name, CLUSTER_HANDOVER_SERVICE) == 0) {
        svc->cluster_kind = CLUSTER_KIND_NODE;
    } else if (route_is_keyed_name(c, svc->name)) {
        svc->cluster_kind = CLUSTER_KIND_KEYED;
        svc->pick_by_key = svc->backend == &c->b->workers;
    } else if (svc->backend == &c->b->workers) {
        svc->cluster_kind = CLUSTER_KIND_PLAIN;
    } else {
        svc->cluster_kind = CLUSTER_KIND_LOCAL;
    }
    return (enum cluster_kind)svc->cluster_kind;
}

/* Whether the failure of a forwarded request is the peer's doing (as for
 * a worker: not the caller's bad argument, not its own deadline). */
static bool
route_is_peer_fault(ferry_err code)
{
    switch (code) {
    case FERRY_EWORKER_LOST:
    case FERRY_EOVERLOADED:
    case FERRY_ESHUTTING_DOWN:
    case FERRY_ENO_WORKER:
    case FERRY_EUNAVAILABLE:
    case FERRY_EFENCED:
    case FERRY_ECIRCUIT_OPEN:
    case FERRY_EWORKER_ERROR:
        return true;
    default:
        return false;
    }
}

void
cluster_peer_answer(struct broker *b, struct conn *link,
                    const struct service *svc, ferry_err code)
{
    struct cluster *c = b->cluster;
    const struct config *cfg = c->cfg;
    struct peer *p = fwd_peer_of(c, link->id);
    uint64_t len;

    /* Only plain routing ejects a node, so only its answers count: a
     * handover chunk's or a keyed request's OK must not clear a run of
     * failed calls (test_forwarding saw 9 failures where 5 eject). */
    if (p == NULL || svc->cluster_kind != CLUSTER_KIND_PLAIN) {
        return;
    }
    if (!route_is_peer_fault(code)) {
        p->fails_in_row = 0;
        return;
    }
    p->failed++;
    p->fails_in_row++;
    if (cfg->eject_failures == 0 || p->fails_in_row < cfg->eject_failures) {
        return;
    }
    /* Like a worker's: base times the ejections so far, at most max. */
    p->ejections++;
    len = (uint64_t)cfg->eject_base_ms * p->ejections;
    if (len > cfg->eject_max_ms) {
        len = cfg->eject_max_ms;
    }
    p->ejected_until = loop_now(c->loop) + len;
    p->fails_in_row = 0;
    log_warn("cluster: node '%s' ejected for %llu ms: %u of the requests "
             "forwarded to it failed in a row (last %s)",
             p->name, (unsigned long long)len, (unsigned)cfg->eject_failures,
             ferry_errname(code));
}

/* Room node p has for svc: its workers' published credit less what we
 * have outstanding there, or 0 (also while it is ejected). */
static uint64_t
route_room(const struct cluster *c, const struct peer *p, const char *svc)
{
    json_t *node = json_object_get(c->dir, p->name);
    json_t *s = node != NULL ? json_object_get(node, svc) : NULL;
    json_int_t credit, workers;

    if (s == NULL || p->out >= c->cfg->cluster_peer_credit ||
        peers_link(c, p) == NULL || loop_now(c->loop) < p->ejected_until) {
        return 0;
    }
    workers = json_integer_value(json_object_get(s, "workers"));
    credit = json_integer_value(json_object_get(s, "credit"));
    if (workers <= 0 || credit <= 0 || (uint64_t)credit <= p->out) {
        return 0;
    }
    return (uint64_t)credit - p->out;
}

/* A node with room for svc, by two random choices; NULL when none. */
static struct peer *
route_pick_node(struct cluster *c, const struct service *svc)
{
    struct peer *best = NULL;
    uint64_t best_room = 0;
    size_t n = c->n_peers;

    if (n == 0) {
        return NULL;
    }
    if (n <= 4) {
        size_t ties = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t room = route_room(c, &c->peers[i], svc->name);
            if (room == 0 || room < best_room) {
                continue;
            }
            /* Equal room: each of the tied nodes by an equal chance. */
            ties = room > best_room ? 1 : ties + 1;
            if (ties == 1 || rand_next(&c->rng) % ties == 0) {
                best = &c->peers[i];
                best_room = room;
            }
        }
        return best;
    }
    for (int i = 0; i < 2; i++) {
        struct peer *p = &c->peers[rand_next(&c->rng) % n];
        uint64_t room = route_room(c, p, svc->name);
        if (room > best_room) {
            best = p;
            best_room = room;
        }
    }
    if (best == NULL) {
        /* Both choices had none: look at all before giving up. */
        for (size_t i = 0; i < n; i++) {
            uint64_t room = route_room(c, &c->peers[i], svc->name);
            if (room > best_room) {
                best = &c->peers[i];
                best_room = room;
            }
        }
    }
    return best;
}

/* Whether svc's data is durable: it lives on its vbucket's home, not on
 * whichever node the map names now. */
static bool
route_is_durable(const struct service *svc)
{
    return strcmp(svc->name, "ferry.kv") == 0 ||
           strcmp(svc->name, "ferry.queue") == 0;
}

/* Whether member name can take a request now: this node, or a peer whose
 * link is up. */
static bool
route_reachable(struct cluster *c, const char *name)
{
    struct peer *p;

    if (strcmp(name, c->self) == 0) {
        return true;
    }
    p = peers_find(c, name);
    return p != NULL && peers_link(c, p) != NULL;
}

/*
 * The owner a cache-like request goes to: the map's, or, while the map's
 * owner cannot be reached (its link is down: it died and etcd has not
 * expired its lease yet), the member of next highest weight that can.
 * A cache may lose items when its owner moves; it must not wait 3 s.
 */
static const char *
route_live_owner(struct cluster *c, uint16_t vb)
{
    const char *owner = vbmap_owner(&c->map, vb);
    const struct vbmap_member *best = NULL;
    uint64_t best_w = 0;

    if (owner == NULL || route_reachable(c, owner)) {
        return owner;
    }
    for (size_t i = 0; i < c->map.n; i++) {
        const struct vbmap_member *m = &c->map.members[i];
        uint64_t w = vbmap_weight(m->hash, vb);
        if (!route_reachable(c, m->name)) {
            continue;
        }
        /* Members are sorted by name: a tie keeps the smaller. */
        if (best == NULL || w > best_w) {
            best = m;
            best_w = w;
        }
    }
    return best != NULL ? best->name : NULL;
}

/* Counts an answer of code by this node's routing. */
static void
route_count(struct cluster *c, ferry_err code)
{
    if (code == FERRY_EUNAVAILABLE) {
        c->unavailable++;
    } else if (code == FERRY_ENOT_MY_VBUCKET) {
        c->not_mine++;
    } else if (code == FERRY_EFENCED) {
        c->fenced_refused++;
    }
}

static int
route_refuse(struct cluster *c, struct sink *k, struct service *svc,
             ferry_err code, const char *msg)
{
    route_count(c, code);
    service_count_error(svc, code);
    sink_error_code(c->b, k, code, msg);
    return -1;
}

/* With no local worker: a node that has workers for svc and a link up,
 * even a full one (the request queues there, not here), the one with the
 * most credit. */
static struct peer *
route_any_node(struct cluster *c, const struct service *svc)
{
    struct peer *best = NULL;
    json_int_t best_credit = 0;

    for (size_t i = 0; i < c->n_peers; i++) {
        struct peer *p = &c->peers[i];
        json_t *node = json_object_get(c->dir, p->name);
        json_t *s = node != NULL ? json_object_get(node, svc->name) : NULL;
        json_int_t credit = json_integer_value(json_object_get(s, "credit"));
        if (s == NULL || peers_link(c, p) == NULL ||
            loop_now(c->loop) < p->ejected_until ||
            json_integer_value(json_object_get(s, "workers")) <= 0 ||
            p->out >= c->cfg->cluster_peer_credit) {
            continue;
        }
        if (best == NULL || credit > best_credit) {
            best = p;
            best_credit = credit;
        }
    }
    return best;
}

/* Where a keyed request goes now (route_keyed_decide). */
enum route_to {
    ROUTE_REFUSED = -1, /* code and msg say why */
    ROUTE_HERE = 0,
    ROUTE_PEER = 1      /* to peer */
};

struct route_decision {
    struct peer *peer;
    ferry_err code;
    char msg[256];
};

static enum route_to
route_no(struct route_decision *d, ferry_err code)
{
    d->code = code;
    return ROUTE_REFUSED;
}

/* Where a request of keyed service svc with key goes now; forwarded: a
 * peer sent it (served here or refused, never sent on). */
static enum route_to
route_keyed_decide(struct cluster *c, const struct service *svc,
                   bool forwarded, struct slice key, struct route_decision *d)
{
    const char *owner;
    bool durable = route_is_durable(svc);
    uint16_t vb;

    if (c->fenced || !c->have_map) {
        snprintf(d->msg, sizeof(d->msg),
                 "node '%.64s' is not a cluster member now (its etcd lease "
                 "is not renewed): it serves no vbucket; try another node",
                 c->self);
        return route_no(d, FERRY_EFENCED);
    }
    vb = vb_of_key(key.p, key.len);
    if (durable) {
        if (!homes_loaded(c->homes)) {
            snprintf(d->msg, sizeof(d->msg),
                     "node '%.64s' has not read the vbuckets' homes from "
                     "etcd yet; try again",
                     c->self);
            return route_no(d, FERRY_EUNAVAILABLE);
        }
        owner = homes_of(c->homes, vb);
        if (owner == NULL) {
            snprintf(d->msg, sizeof(d->msg),
                     "vbucket %u has no home yet (its owner is claiming "
                     "it); try again",
                     (unsigned)vb);
            return route_no(d, FERRY_EUNAVAILABLE);
        }
        if (strcmp(owner, c->self) == 0) {
            if (c->moving[vb]) {
                snprintf(d->msg, sizeof(d->msg),
                         "vbucket %u is moving to another node; try again",
                         (unsigned)vb);
                return route_no(d, FERRY_EUNAVAILABLE);
            }
            return ROUTE_HERE;
        }
    } else {
        owner = route_live_owner(c, vb);
        if (owner == NULL || strcmp(owner, c->self) == 0) {
            return ROUTE_HERE;
        }
    }
    if (forwarded) {
        snprintf(d->msg, sizeof(d->msg),
                 "vbucket %u is node '%.64s''s at epoch=%llu, not this "
                 "node's",
                 (unsigned)vb, owner, (unsigned long long)c->map.epoch);
        return route_no(d, FERRY_ENOT_MY_VBUCKET);
    }
    d->peer = peers_find(c, owner);
    if (d->peer == NULL || peers_link(c, d->peer) == NULL) {
        snprintf(d->msg, sizeof(d->msg),
                 durable ? "vbucket %u's data is on node '%.64s', which is "
                           "down or unreachable; try again (nothing is lost: "
                           "it serves them again when it is back)"
                         : "vbucket %u's node '%.64s' is unreachable from "
                           "here; try again",
                 (unsigned)vb, owner);
        return route_no(d, FERRY_EUNAVAILABLE);
    }
    if (d->peer->out >= c->cfg->cluster_peer_credit) {
        snprintf(d->msg, sizeof(d->msg),
                 "the owner's peer link is full (cluster_peer_credit)");
        return route_no(d, FERRY_EOVERLOADED);
    }
    return ROUTE_PEER;
}

static int
route_keyed(struct cluster *c, struct sink *k, struct service *svc,
            uint8_t flags, const struct frame_request *q, struct backend **be,
            void **where)
{
    struct route_decision d;
    enum route_to to = route_keyed_decide(
        c, svc, (flags & CLUSTER_FORWARDED) != 0, q->key, &d);

    if (to == ROUTE_REFUSED) {
        return route_refuse(c, k, svc, d.code, d.msg);
    }
    if (to == ROUTE_PEER) {
        *be = &c->fwd;
        *where = d.peer;
    }
    return (int)to;
}

/* ferry.handover: to the node its key names, from this node's own
 * handover only; served here when a peer sent it for this node. */
static int
route_node(struct cluster *c, struct sink *k, struct service *svc,
           uint8_t flags, const struct frame_request *q, struct backend **be,
           void **where)
{
    bool here = q->key.len == strlen(c->self) &&
                memcmp(q->key.p, c->self, q->key.len) == 0;
    struct peer *p;
    char name[256];

    if ((flags & CLUSTER_FORWARDED) != 0) {
        if (!here) {
            return route_refuse(c, k, svc, FERRY_EINVALID_ARGUMENT,
                                "ferry.handover for another node");
        }
        return 0;
    }
    if (!k->cluster) {
        return route_refuse(c, k, svc, FERRY_EUNAUTHORIZED,
                            "ferry.handover is the cluster's own: it takes "
                            "requests from peer ferryds only");
    }
    if (here || q->key.len == 0 || q->key.len >= sizeof(name)) {
        return route_refuse(c, k, svc, FERRY_EINVALID_ARGUMENT,
                            "ferry.handover: the key names another node");
    }
    memcpy(name, q->key.p, q->key.len);
    name[q->key.len] = '\0';
    p = peers_find(c, name);
    if (p == NULL || peers_link(c, p) == NULL) {
        return route_refuse(c, k, svc, FERRY_EUNAVAILABLE,
                            "ferry.handover: no link to that node");
    }
    *be = &c->fwd;
    *where = p;
    return 1;
}

int
cluster_route(struct broker *b, struct sink *k, struct service *svc,
              uint8_t flags, const struct frame_request *q,
              struct backend **be, void **where)
{
    struct cluster *c = b->cluster;
    struct peer *p;

    if (k->cluster && (flags & CLUSTER_FORWARDED) != 0) {
        /* The cluster's own call for one node (gather.c): here, or over
         * that node's link. */
        p = (struct peer *)(uintptr_t)k->to_node;
        if (p == NULL) {
            return 0;
        }
        if (peers_link(c, p) == NULL) {
            return route_refuse(c, k, svc, FERRY_EUNAVAILABLE,
                                "the node's peer link is down");
        }
        *be = &c->fwd;
        *where = p;
        return 1;
    }
    if ((flags & CLUSTER_FORWARDED) != 0) {
        c->received++;
    }
    switch (route_kind(c, svc)) {
    case CLUSTER_KIND_NODE:
        return route_node(c, k, svc, flags, q, be, where);
    case CLUSTER_KIND_KEYED:
        if (q->key.len > 0) {
            return route_keyed(c, k, svc, flags, q, be, where);
        }
        if (gather_wanted(c, svc, flags, q)) {
            *be = &c->gather_be;
            *where = NULL;
            return 1;
        }
        /* A keyed user service called without a key: as a plain one;
         * ferry.cache's GET_MANY and the like: here. */
        if (svc->backend != &b->workers) {
            return 0;
        }
        break;
    case CLUSTER_KIND_PLAIN:
        break;
    default:
        return 0;
    }
    if ((flags & CLUSTER_FORWARDED) != 0 || c->n_peers == 0) {
        return 0;
    }
    /* Local workers first while one has room. */
    if (svc->queued == 0 &&
        service_pick(svc, &b->rng,
                     frame_request_size(svc->name_len, q->key.len,
                                        q->payload.len)) != NULL) {
        return 0;
    }
    p = route_pick_node(c, svc);
    if (p == NULL && svc->n_regs == 0) {
        p = route_any_node(c, svc);
    }
    if (p == NULL) {
        return 0;
    }
    *be = &c->fwd;
    *where = p;
    return 1;
}

/* ---- the forwarding backend ---- */

static struct peer *
fwd_peer_of(struct cluster *c, uint64_t conn_id)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        if (c->peers[i].conn == conn_id) {
            return &c->peers[i];
        }
    }
    return NULL;
}

static void
fwd_start(struct backend *be, struct req *r, void *where,
          const struct frame_request *q)
{
    struct cluster *c = container_of(be, struct cluster, fwd);
    struct broker *b = c->b;
    struct peer *p = where;
    struct conn *link = peers_link(c, p);
    struct slice name = {(const uint8_t *)r->svc->name, r->svc->name_len};
    uint64_t now = loop_now(b->loop);
    uint64_t left = r->deadline > now ? r->deadline - now : 1;
    struct session *s;
    uint8_t *out;
    size_t size;

    r->state = REQ_AT_WORKER; /* on no list yet */
    if (link == NULL) {
        broker_req_fail(b, r, FERRY_EUNAVAILABLE,
                        slice_str("the node's peer link went down"));
        return;
    }
    size = frame_request_size(name.len, q->key.len, q->payload.len);
    out = conn_out_prepare(link, size);
    if (out == NULL) {
        broker_req_fail(b, r, FERRY_EOVERLOADED,
                        slice_str("the node's peer link takes no more now"));
        return;
    }
    conn_out_commit(link, frame_write_request(out, r->id,
                                              r->flags | CLUSTER_FORWARDED,
                                              (uint32_t)left, name, q->key,
                                              q->payload));
    /* An idempotent plain request may be retried at another node once,
     * and a keyed one routed once more after NOT_MY_VBUCKET (when its
     * bytes fit the record: no allocation for it): keep its bytes, as
     * the worker pool does for its retries. */
    if (r->data == NULL && r->attempts == 0 &&
        (r->svc->cluster_kind == CLUSTER_KIND_PLAIN
             ? (r->flags & FERRY_IDEMPOTENT) != 0
             : r->svc->cluster_kind == CLUSTER_KIND_KEYED &&
                   q->key.len + q->payload.len <= REQ_INLINE) &&
        broker_req_copy(b, r, q->key, q->payload) != FERRY_OK) {
        r->data = NULL;
    }
    s = link->data;
    r->reg = NULL;
    r->worker_conn = link->id;
    r->sent_at = now;
    list_push_back(&s->held, &r->node);
    s->held_count++;
    p->out++;
    p->forwarded++;
    c->forwarded++;
    if (loop_timer_start(b->loop, &r->tm, r->deadline) != FERRY_OK) {
        broker_req_fail_code(b, r, FERRY_ENOMEM);
    }
}

static void
fwd_cancel(struct backend *be, struct req *r)
{
    struct conn *link;

    if (r->state != REQ_AT_WORKER) {
        return;
    }
    link = loop_conn(be->b->loop, r->worker_conn);
    if (link != NULL) {
        conn_send_empty(link, FRAME_CANCEL, r->id);
    }
}

static bool route_remap_send(struct cluster *c, struct req *r, bool last);

static void
fwd_timer(struct backend *be, struct req *r, uint64_t now)
{
    struct cluster *c = container_of(be, struct cluster, fwd);

    if (r->state == REQ_RETRY_WAIT && now < r->deadline) {
        /* The map did not change in time: the peer's may be the stale
         * one; route it by ours again. */
        (void)route_remap_send(c, r, true);
        return;
    }
    fwd_cancel(be, r);
    broker_req_fail_code(be->b, r, FERRY_EDEADLINE);
}

static void
fwd_release(struct backend *be, struct req *r)
{
    struct cluster *c = container_of(be, struct cluster, fwd);
    struct conn *link = loop_conn(c->loop, r->worker_conn);
    struct peer *p;

    if (r->worker_conn == 0) {
        return;
    }
    if (link != NULL && link->data != NULL) {
        ((struct session *)link->data)->held_count--;
    }
    p = fwd_peer_of(c, r->worker_conn);
    if (p != NULL && p->out > 0) {
        p->out--;
    }
}

const struct backend_ops cluster_fwd_ops = {
    .kind = "peer",
    .start = fwd_start,
    .timer = fwd_timer,
    .cancel = fwd_cancel,
    .release = fwd_release,
};

/* The other nodes with workers of service svc, as ferry.services shows
 * them; NULL when out of memory. */
static json_t *
route_remote_nodes(const struct cluster *c, const char *svc)
{
    json_t *nodes = json_array();
    const char *name;
    json_t *node;

    if (nodes == NULL) {
        return NULL;
    }
    json_object_foreach(c->dir, name, node) {
        json_t *s = json_object_get(node, svc);
        json_t *row;
        if (s == NULL || strcmp(name, c->self) == 0) {
            continue;
        }
        /* What another node published: a missing field reads as 0. */
        row = json_pack(
            "{s:s, s:I, s:I}", "node", name, "workers",
            json_integer_value(json_object_get(s, "workers")), "credit",
            json_integer_value(json_object_get(s, "credit")));
        if (row == NULL || json_array_append_new(nodes, row) != 0) {
            json_decref(nodes);
            return NULL;
        }
    }
    return nodes;
}

int
cluster_describe_remote(struct broker *b, const struct service *svc,
                        json_t *obj)
{
    json_t *nodes = route_remote_nodes(b->cluster, svc->name);

    return nodes != NULL ? json_object_set_new(obj, "nodes", nodes) : -1;
}

json_t *
cluster_describe_remote_only(struct broker *b)
{
    struct cluster *c = b->cluster;
    json_t *out = json_object();
    const char *name, *svc;
    json_t *node, *s;

    if (out == NULL) {
        return NULL;
    }
    json_object_foreach(c->dir, name, node) {
        if (strcmp(name, c->self) == 0) {
            continue;
        }
        json_object_foreach(node, svc, s) {
            json_t *nodes;
            if (json_object_get(out, svc) != NULL ||
                smap_get(&b->services, svc, strlen(svc)) != NULL) {
                continue;
            }
            nodes = route_remote_nodes(c, svc);
            if (nodes == NULL || json_object_set_new(out, svc, nodes) != 0) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* ---- keyed requests a peer answered NOT_MY_VBUCKET ---- */

/* r's key and payload, from its copy. */
static struct frame_request
route_req_of(const struct req *r)
{
    struct frame_request q;

    memset(&q, 0, sizeof(q));
    q.key = (struct slice){r->data, r->key_len};
    q.payload = (struct slice){r->data + r->key_len, r->payload_len};
    return q;
}

/*
 * Routes waiting record r by this node's map and homes now: to a peer
 * (not the one that refused it, unless last), here (submitted anew), or
 * its error. False: not yet (the map still names the node that refused
 * it, or refuses it for now); r waits on.
 */
static bool
route_remap_send(struct cluster *c, struct req *r, bool last)
{
    struct route_decision d;
    struct frame_request q = route_req_of(r);
    enum route_to to = route_keyed_decide(c, r->svc, false, q.key, &d);

    if (!last && (to == ROUTE_REFUSED ||
                  (to == ROUTE_PEER && d.peer->conn == r->failed_conn))) {
        return false;
    }
    list_remove(&r->node);
    r->state = REQ_AT_WORKER;
    switch (to) {
    case ROUTE_PEER:
        fwd_start(&c->fwd, r, d.peer, &q);
        break;
    case ROUTE_HERE:
        broker_resubmit(c->b, r);
        break;
    default:
        route_count(c, d.code);
        broker_req_fail(c->b, r, d.code, slice_str(d.msg));
        break;
    }
    return true;
}

/* How long a request waits for this node's map or homes to change after
 * a peer answered NOT_MY_VBUCKET, at most: a watch round trip is a few
 * ms; past this the peer's map may be the stale one. */
#define ROUTE_REMAP_WAIT_MS 250

/*
 * A keyed request the peer did not serve (NOT_MY_VBUCKET: the peer never
 * ran it), routed once more: at once when this node's map already names
 * another place, else when it or a home changes (route_remap_wake), or
 * after ROUTE_REMAP_WAIT_MS by the map it has then.
 */
static bool
route_remap(struct cluster *c, struct req *r)
{
    uint64_t now = loop_now(c->loop), at;

    if (r->data == NULL || r->attempts > 0 || c->b->shutting_down ||
        r->svc->cluster_kind != CLUSTER_KIND_KEYED ||
        (size_t)r->key_len + r->payload_len > REQ_INLINE ||
        now >= r->deadline) {
        return false;
    }
    list_remove(&r->node);
    fwd_release(&c->fwd, r);
    r->failed_conn = r->worker_conn;
    r->worker_conn = 0;
    r->attempts++;
    r->state = REQ_RETRY_WAIT;
    list_push_back(&c->remap_wait, &r->node);
    c->remapped++;
    if (route_remap_send(c, r, false)) {
        return true;
    }
    at = now + ROUTE_REMAP_WAIT_MS;
    if (loop_timer_start(c->loop, &r->tm,
                         at < r->deadline ? at : r->deadline) != FERRY_OK) {
        broker_req_fail_code(c->b, r, FERRY_ENOMEM);
    }
    return true;
}

void
route_remap_wake(struct cluster *c)
{
    struct list ready;

    if (list_is_empty(&c->remap_wait)) {
        return;
    }
    /* Off the list first: sending one may end another (a caller's
     * callback), which then leaves whichever list it is on. */
    list_init(&ready);
    list_splice(&ready, &c->remap_wait);
    while (!list_is_empty(&ready)) {
        struct req *r = container_of(ready.next, struct req, node);
        list_remove(&r->node);
        list_push_back(&c->remap_wait, &r->node);
        (void)route_remap_send(c, r, false);
    }
}

/* A retry of r, held by peer link r->worker_conn: a keyed one the peer
 * answered NOT_MY_VBUCKET routed once more, a plain one at another node
 * with room; see broker.h's peer_retry. */
bool
cluster_peer_retry(struct broker *b, struct req *r, ferry_err code)
{
    struct cluster *c = b->cluster;
    struct peer *from = fwd_peer_of(c, r->worker_conn), *to = NULL;
    uint64_t best = 0;
    struct frame_request q;

    if (code == FERRY_ENOT_MY_VBUCKET) {
        return route_remap(c, r);
    }
    if (r->data == NULL || r->attempts > 0 || b->shutting_down ||
        r->svc->cluster_kind != CLUSTER_KIND_PLAIN ||
        !route_is_peer_fault(code) || loop_now(c->loop) >= r->deadline) {
        return false;
    }
    for (size_t i = 0; i < c->n_peers; i++) {
        struct peer *p = &c->peers[i];
        uint64_t room = p == from ? 0 : route_room(c, p, r->svc->name);
        if (room > best) {
            best = room;
            to = p;
        }
    }
    if (to == NULL) {
        return false;
    }
    /* Off the first link, its credit given back, then sent again. */
    list_remove(&r->node);
    fwd_release(&c->fwd, r);
    r->worker_conn = 0;
    r->attempts++;
    service_count_retry(r->svc);
    q = route_req_of(r);
    log_debug("cluster: request %llu failed at '%s' with %s, retried at '%s'",
              (unsigned long long)r->id, from != NULL ? from->name : "?",
              ferry_errname(code), to->name);
    fwd_start(&c->fwd, r, to, &q);
    return true;
}
