/* SPDX-License-Identifier: MIT */
/*
 * cluster.c - this node in the cluster: membership on etcd (members.h),
 * the vbucket map computed from the member list, the directory of the
 * other nodes' workers, and the broker's hooks (route.c, peers.c).
 *
 * The map is computed again on every join or leave, from the member list
 * alone, so every node that saw the same list has the same map; its
 * epoch is the etcd revision of that list. The directory is each
 * member's published services ({"svc":{"workers":N,"credit":C}}); this
 * node publishes its own every tick (250 ms) when it changed, and
 * members.c coalesces the puts.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/service.h"
#include "broker/session.h"
#include "cluster/cluster_impl.h"
#include "cluster/members.h"
#include "core/addr.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "queue/queue.h"
#include "servants/id.h"
#include "servants/servants.h"

#define CLUSTER_TICK_MS 250
/* A leave stops handing vbuckets over after this. */
#define CLUSTER_LEAVE_MAX_MS 30000

static void cluster_leave_now(struct cluster *c);
static void cluster_id_node(struct cluster *c);

/* Vbuckets this node owns in m. */
static unsigned
cluster_owned_here(const struct cluster *c, const struct vbmap *m)
{
    uint16_t i = vbmap_index(m, c->self, strlen(c->self));

    return i == VB_NONE ? 0 : vbmap_owned(m, i);
}

static void
cluster_rebuild_map(struct cluster *c)
{
    size_t n = 0;
    const struct member *m = members_list(c->members, &n);
    const char **names = calloc(n > 0 ? n : 1, sizeof(*names));
    struct vbmap next;

    if (names == NULL) {
        log_error("cluster: out of memory computing the vbucket map");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = m[i].name;
    }
    if (vbmap_init(&next, names, n, members_epoch(c->members)) != FERRY_OK) {
        log_error("cluster: cannot compute the vbucket map of %zu members", n);
        free(names);
        return;
    }
    free(names);
    if (c->have_map) {
        unsigned moved = vbmap_moved(&c->map, &next);
        vbmap_release(&c->map);
        log_info("cluster: %zu members at epoch %llu, %u vbuckets moved, "
                 "%u here",
                 n, (unsigned long long)next.epoch, moved,
                 cluster_owned_here(c, &next));
    } else {
        log_info("cluster: %zu members at epoch %llu, %u vbuckets here", n,
                 (unsigned long long)next.epoch, cluster_owned_here(c, &next));
    }
    c->map = next;
    c->have_map = true;
    c->map_builds++;
}

/* The directory: every member's published services, by node name. */
static void
cluster_rebuild_dir(struct cluster *c)
{
    size_t n = 0;
    const struct member *m = members_list(c->members, &n);
    json_t *dir = json_object();

    if (dir == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].services != NULL) {
            json_object_set(dir, m[i].name, m[i].services);
        }
    }
    json_decref(c->dir);
    c->dir = dir;
}

static void
cluster_changed(void *ud, bool membership)
{
    struct cluster *c = ud;

    if (membership || !c->have_map) {
        cluster_rebuild_map(c);
        homes_claim_due(c->homes);
        handover_kick(c);
    }
    cluster_rebuild_dir(c);
    peers_sync(c);
    if (membership) {
        route_remap_wake(c);
    }
}

static void
cluster_fenced(void *ud, bool fenced)
{
    struct cluster *c = ud;

    c->fenced = fenced;
    cluster_id_node(c);
    if (fenced && c->left_members) {
        log_info("cluster: node '%s' left: it serves no vbucket", c->self);
    } else if (fenced) {
        log_warn("cluster: node '%s' fenced: its lease was not renewed in "
                 "time; keyed requests get FENCED until it is a member again",
                 c->self);
    } else {
        log_info("cluster: node '%s' is a member", c->self);
        homes_claim_due(c->homes);
    }
}

void
cluster_homes_changed(struct cluster *c, uint16_t vb)
{
    if (vb == VB_NONE) {
        homes_claim_due(c->homes);
    }
    route_remap_wake(c);
}

/* ferry.id issues ids with the leased node id while this node is a
 * member, and none while it is fenced (another may hold the id then). */
static void
cluster_id_node(struct cluster *c)
{
    if (c->sv == NULL || c->sv->id == NULL) {
        return;
    }
    id_service_set_node(c->sv->id, c->fenced || c->node_id < 0 ? -1
                                                               : c->node_id);
}

static void
cluster_node_id(void *ud, uint32_t id)
{
    struct cluster *c = ud;

    log_info("cluster: node '%s' holds node id %u", c->self, (unsigned)id);
    c->node_id = (int)id;
    if (c->sv != NULL && c->sv->queue != NULL) {
        queue_engine_set_id_space(c->sv->queue, id + 1);
    }
    cluster_id_node(c);

}

/* This node's services of workers with their active workers and free
 * credit, as the directory shows them. */
static json_t *
cluster_local_services(struct cluster *c)
{
    struct broker *b = c->b;
    json_t *out = json_object();
    size_t pos = 0;
    void *val;

    if (out == NULL) {
        return NULL;
    }
    while (smap_next(&b->services, &pos, &val)) {
        struct service *svc = val;
        uint64_t credit = 0;
        size_t active = 0;
        /* The capacity, not the free credit of this instant: a snapshot
         * taken under load says 0 and would turn every node away. Each
         * sender subtracts what it has at this node itself. */
        for (size_t i = 0; i < svc->n_regs; i++) {
            const struct wreg *reg = svc->regs[i];
            if (reg->worker->draining) {
                continue;
            }
            active++;
            credit += reg->credit;
        }
        if (active == 0 || svc->disabled) {
            continue;
        }
        json_object_set_new(out, svc->name,
                            json_pack("{s:I, s:I}", "workers",
                                      (json_int_t)active, "credit",
                                      (json_int_t)credit));
    }
    return out;
}

static void
cluster_tick(struct timer *t)
{
    struct cluster *c = container_of(t, struct cluster, tick);
    json_t *now = cluster_local_services(c);

    if (now != NULL && (c->published == NULL || !json_equal(now, c->published))) {
        members_publish(c->members, now);
        json_decref(c->published);
        c->published = now;
    } else {
        json_decref(now);
    }
    peers_dial(c);
    handover_kick(c);
    if (c->leaving && !c->left_members && handover_idle(c)) {
        unsigned left = handover_left(c);
        if (left == 0 || loop_now(c->loop) >= c->leave_deadline) {
            if (left > 0) {
                log_warn("cluster: leaving with %u vbuckets not handed over "
                         "(no node took them within %u ms): their durable "
                         "data waits here until this node is back",
                         left, (unsigned)CLUSTER_LEAVE_MAX_MS);
            }
            cluster_leave_now(c);
        }
    }
    loop_timer_start(c->loop, &c->tick, loop_now(c->loop) + CLUSTER_TICK_MS);
}

/* keyed_service's comma-separated names. */
static ferry_err
cluster_parse_keyed(struct cluster *c, const char *list)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            char **v = realloc(c->keyed, (c->n_keyed + 1) * sizeof(*v));
            if (v == NULL) {
                return FERRY_ENOMEM;
            }
            c->keyed = v;
            c->keyed[c->n_keyed] = strndup(p, n);
            if (c->keyed[c->n_keyed] == NULL) {
                return FERRY_ENOMEM;
            }
            c->n_keyed++;
        }
        p += n;
        p += strspn(p, ", ");
    }
    return FERRY_OK;
}

/* The address the others dial: cluster_advertise, else the first TCP
 * listen address that is not a wildcard. */
static ferry_err
cluster_pick_addr(struct cluster *c, const struct config *cfg)
{
    if (cfg->cluster_advertise != NULL && cfg->cluster_advertise[0] != '\0') {
        snprintf(c->addr, sizeof(c->addr), "%s", cfg->cluster_advertise);
        return FERRY_OK;
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const char *a = cfg->listen[i];
        if (strncmp(a, "unix:", 5) == 0 || strncmp(a, "0.0.0.0:", 8) == 0 ||
            strncmp(a, "[::]:", 5) == 0) {
            continue;
        }
        snprintf(c->addr, sizeof(c->addr), "%s", a);
        return FERRY_OK;
    }
    log_error("cluster: no address for the peer links: set cluster_advertise "
              "(listen has no TCP address other nodes can dial)");
    return FERRY_EINVALID_ARGUMENT;
}

static json_t *
cluster_describe_hook(struct broker *b)
{
    return cluster_describe(b->cluster);
}

ferry_err
cluster_start(struct broker *b, struct servants *sv, struct cluster **out)
{
    const struct config *cfg = b->cfg;
    struct members_config mc;
    struct members_hooks hooks = {cluster_changed, cluster_fenced,
                                  cluster_node_id};
    struct cluster *c;

    *out = NULL;
    if (cfg->cluster_etcd == NULL || cfg->cluster_etcd[0] == '\0' ||
        strcmp(cfg->cluster_etcd, "none") == 0 ||
        strcmp(cfg->cluster_etcd, "off") == 0) {
        return FERRY_OK;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return FERRY_ENOMEM;
    }
    c->loop = b->loop;
    c->b = b;
    c->cfg = cfg;
    c->fenced = true;
    c->rng = (uint64_t)uv_hrtime() | 1;
    c->fwd.ops = &cluster_fwd_ops;
    c->fwd.b = b;
    list_init(&c->remap_wait);
    c->gather_be.ops = &cluster_gather_ops;
    c->gather_be.b = b;
    c->sv = sv;
    c->node_id = -1;
    handover_init(c);
    cluster_id_node(c);
    c->dir = json_object();
    snprintf(c->self, sizeof(c->self), "%s", cfg->name);
    timer_init(&c->tick, cluster_tick);
    if (c->dir == NULL || cluster_pick_addr(c, cfg) != FERRY_OK ||
        cluster_parse_keyed(c, cfg->keyed_service) != FERRY_OK) {
        cluster_stop(c);
        return FERRY_EINVALID_ARGUMENT;
    }
    mc.endpoints = cfg->cluster_etcd;
    mc.cluster = cfg->cluster_name != NULL ? cfg->cluster_name : "ferry";
    mc.name = c->self;
    mc.addr = c->addr;
    mc.http = cfg->http;
    mc.lease_ms = cfg->cluster_lease_ms;
    mc.preferred_node_id = (int)cfg->node_id;
    b->cluster = c;
    b->on_peer_up = peers_up;
    b->on_peer_down = peers_down;
    b->route = cluster_route;
    b->describe_remote = cluster_describe_remote;
    b->describe_remote_only = cluster_describe_remote_only;
    b->describe_cluster = cluster_describe_hook;
    b->on_peer_answer = cluster_peer_answer;
    b->peer_retry = cluster_peer_retry;
    if (sv != NULL && sv->store != NULL &&
        broker_add_backend(b, CLUSTER_HANDOVER_SERVICE, &c->ho_be) !=
            FERRY_OK) {
        cluster_stop(c);
        return FERRY_ENOMEM;
    }
    c->members = members_start(b->loop, &mc, &hooks, c);
    c->homes = homes_start(c, cfg->cluster_etcd, mc.cluster,
                           cfg->cluster_lease_ms / 3);
    if (c->members == NULL || c->homes == NULL) {
        cluster_stop(c);
        return FERRY_ENOMEM;
    }
    loop_timer_start(c->loop, &c->tick, loop_now(c->loop) + CLUSTER_TICK_MS);
    log_info("cluster: node '%s' (peer address %s) joining cluster '%s' on %s",
             c->self, c->addr, mc.cluster, cfg->cluster_etcd);
    *out = c;
    return FERRY_OK;
}

static void
cluster_left(void *ud)
{
    struct cluster *c = ud;

    log_info("cluster: node '%s' left", c->self);
    if (c->leave_done != NULL) {
        void (*done)(void *) = c->leave_done;
        c->leave_done = NULL;
        done(c->leave_arg);
    }
}

/* Hands-over done (or given up): leave the membership. */
static void
cluster_leave_now(struct cluster *c)
{
    c->left_members = true;
    c->fenced = true;
    members_leave(c->members, cluster_left);
}

void
cluster_leave(struct cluster *c, void (*done)(void *arg), void *arg)
{
    if (c == NULL || c->leaving) {
        if (c == NULL) {
            done(arg);
        }
        return;
    }
    c->leaving = true;
    c->leave_done = done;
    c->leave_arg = arg;
    c->leave_deadline = loop_now(c->loop) + CLUSTER_LEAVE_MAX_MS;
    if (c->fenced || c->sv == NULL) {
        /* Fenced: etcd is away, so no home can be swapped. */
        cluster_leave_now(c);
        return;
    }
    members_set_leaving(c->members);
    log_info("cluster: node '%s' leaving: handing its %u vbuckets' data over",
             c->self, handover_left(c));
    handover_kick(c);
}

void
cluster_quiesce(struct cluster *c)
{
    if (c == NULL) {
        return;
    }
    loop_timer_stop(c->loop, &c->tick);
    gather_release(c);
    handover_release(c); /* before homes_stop: its swap is a homes call */
    homes_stop(c->homes);
    c->homes = NULL;
    members_stop(c->members);
    c->members = NULL;
}

void
cluster_stop(struct cluster *c)
{
    if (c == NULL) {
        return;
    }
    cluster_quiesce(c);
    if (c->b->cluster == c) {
        c->b->cluster = NULL;
        c->b->on_peer_up = NULL;
        c->b->on_peer_down = NULL;
        c->b->route = NULL;
        c->b->describe_remote = NULL;
        c->b->describe_remote_only = NULL;
        c->b->describe_cluster = NULL;
        c->b->on_peer_answer = NULL;
        c->b->peer_retry = NULL;
    }
    if (c->have_map) {
        vbmap_release(&c->map);
    }
    peers_release(c);
    for (size_t i = 0; i < c->n_keyed; i++) {
        free(c->keyed[i]);
    }
    free(c->keyed);
    json_decref(c->published);
    json_decref(c->dir);
    free(c);
}

/* Adds to one member of members_describe what this node knows of it:
 * its vbuckets in the map, and its link and counters (or "self"). */
static void
cluster_describe_member(const struct cluster *c, json_t *m)
{
    const char *name = json_string_value(json_object_get(m, "name"));
    const struct peer *p;
    uint16_t idx;

    if (name == NULL) {
        return;
    }
    idx = c->have_map ? vbmap_index(&c->map, name, strlen(name)) : VB_NONE;
    json_object_set_new(m, "vbuckets",
                        json_integer(idx == VB_NONE
                                         ? 0
                                         : (json_int_t)vbmap_owned(&c->map,
                                                                   idx)));
    {
        int homes = 0;
        for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
            const char *h = homes_of(c->homes, vb);
            homes += h != NULL && strcmp(h, name) == 0;
        }
        json_object_set_new(m, "homes", json_integer(homes));
    }
    if (strcmp(name, c->self) == 0) {
        json_object_set_new(m, "link", json_string("self"));
        return;
    }
    p = peers_find((struct cluster *)c, name);
    json_object_set_new(
        m, "link",
        json_string(p != NULL && peers_link(c, p) != NULL ? "up" : "down"));
    if (p != NULL) {
        json_object_set_new(m, "out", json_integer(p->out));
        json_object_set_new(m, "forwarded",
                            json_integer((json_int_t)p->forwarded));
        json_object_set_new(m, "failed", json_integer((json_int_t)p->failed));
        json_object_set_new(m, "ejected",
                            json_boolean(loop_now(c->loop) < p->ejected_until));
        json_object_set_new(m, "ejections", json_integer(p->ejections));
        json_object_set_new(m, "links", json_integer((json_int_t)p->links));
    }
}

json_t *
cluster_describe(const struct cluster *c)
{
    json_t *o, *ms;

    if (c == NULL) {
        return json_pack("{s:b}", "enabled", 0);
    }
    if (c->members == NULL) {
        return json_pack("{s:b, s:b}", "enabled", 1, "stopping", 1);
    }
    o = members_describe(c->members);
    if (o == NULL) {
        return NULL;
    }
    ms = json_object_get(o, "members");
    for (size_t i = 0; i < json_array_size(ms); i++) {
        cluster_describe_member(c, json_array_get(ms, i));
    }
    json_object_set_new(o, "enabled", json_true());
    json_object_set_new(o, "node", json_string(c->self));
    json_object_set_new(o, "peer_addr", json_string(c->addr));
    json_object_set_new(o, "fenced", json_boolean(c->fenced));
    json_object_set_new(o, "vbucket_count", json_integer(VB_COUNT));
    json_object_set_new(o, "homes", homes_describe(c->homes));
    json_object_set_new(o, "handover", handover_describe(c));
    json_object_set_new(o, "leaving", json_boolean(c->leaving));
    json_object_set_new(o, "epoch",
                        json_integer(c->have_map ? (json_int_t)c->map.epoch
                                                 : 0));
    json_object_set_new(
        o, "counters",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "forwarded",
                  (json_int_t)c->forwarded, "received", (json_int_t)c->received,
                  "not_my_vbucket", (json_int_t)c->not_mine, "remapped",
                  (json_int_t)c->remapped, "fenced",
                  (json_int_t)c->fenced_refused, "unavailable",
                  (json_int_t)c->unavailable, "map_builds",
                  (json_int_t)c->map_builds));
    return o;
}

/* The index of name in names (added when new), for the vbuckets doc. */
static json_int_t
cluster_name_index(json_t *names, const char *name)
{
    for (size_t i = 0; i < json_array_size(names); i++) {
        if (strcmp(json_string_value(json_array_get(names, i)), name) == 0) {
            return (json_int_t)i;
        }
    }
    json_array_append_new(names, json_string(name));
    return (json_int_t)json_array_size(names) - 1;
}

json_t *
cluster_describe_vbuckets(const struct cluster *c)
{
    json_t *names, *owner, *home;

    if (c == NULL) {
        return json_pack("{s:b}", "enabled", 0);
    }
    names = json_array();
    owner = json_array();
    home = json_array();
    if (names == NULL || owner == NULL || home == NULL) {
        json_decref(names);
        json_decref(owner);
        json_decref(home);
        return NULL;
    }
    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        const char *o = c->have_map ? vbmap_owner(&c->map, vb) : NULL;
        const char *h = homes_of(c->homes, vb);
        json_array_append_new(owner,
                              o ? json_integer(cluster_name_index(names, o))
                                : json_null());
        json_array_append_new(home,
                              h ? json_integer(cluster_name_index(names, h))
                                : json_null());
    }
    return json_pack("{s:b, s:I, s:o, s:o, s:o}", "enabled", 1, "epoch",
                     (json_int_t)(c->have_map ? c->map.epoch : 0), "nodes",
                     names, "owner", owner, "home", home);
}
