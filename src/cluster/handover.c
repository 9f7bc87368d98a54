/* SPDX-License-Identifier: MIT */
/*
 * handover.c - moving a vbucket's durable data to its next home
 * (docs/cluster.md, "Handover").
 *
 * A node is the home of the vbuckets whose etcd home key names it
 * (homes.c). When the map gives one of them to another live node (that
 * node joined), or this node is leaving, the home hands it over, one
 * vbucket at a time:
 *
 *   1. its durable requests get UNAVAILABLE from now on (c->moving);
 *   2. a store barrier: an empty batch, whose commit comes after every
 *      write accepted before step 1, so the export sees them all;
 *   3. BEGIN to the target: it drops any stale copy of the vbucket;
 *   4. the data in chunks (servants/vbdata.h), each imported and
 *      committed by the target before the next is sent;
 *   5. the home key swapped from this node to the target in etcd, only
 *      if it still names this node; from then on the target serves it;
 *   6. the vbucket's data dropped here.
 *
 * No moment has two nodes accepting writes for it: this node stops at
 * step 1, the target starts only once it reads the new home (step 5).
 * Any failure before step 5 leaves this node the home (the target's copy
 * is stale and dropped by the next BEGIN) and the move is tried again.
 *
 * The transfer is the service ferry.handover, routed by its key (the
 * target node's name) over the peer link like any forwarded request:
 * payload u8 op (1 BEGIN, 2 CHUNK), u16 vbucket (big-endian), then the
 * chunk. It is accepted only from a peer link, and sent only by this
 * file (icall_submit_cluster): route.c refuses anyone else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "cluster/cluster_impl.h"
#include "cluster/etcd.h"
#include "cluster/members.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "servants/servants.h"
#include "servants/vbdata.h"
#include "store/store.h"

#define HO_OP_BEGIN 1
#define HO_OP_CHUNK 2
#define HO_HEADER 3
/* A failed move is tried again after this. */
#define HO_RETRY_MS 500
/* Each transfer request's deadline. */
#define HO_CALL_MS 10000

static void ho_next_chunk(struct cluster *c);

/* ---- the receiving side: the service ferry.handover ---- */

struct ho_pending {
    struct broker *b; /* borrowed */
    uint64_t handle;  /* the held request */
};

static void
ho_pending_done(void *ud, ferry_err err, const char *msg)
{
    struct ho_pending *p = ud;

    if (err == FERRY_OK) {
        broker_answer(p->b, p->handle, FERRY_OK, NULL, 0);
    } else {
        broker_answer_error(p->b, p->handle, err, msg);
    }
    free(p);
}

static void
ho_call(struct backend *be, struct bcall *bc)
{
    struct cluster *c = container_of(be, struct cluster, ho_be);
    const uint8_t *p = bc->payload.p;
    struct ho_pending *pend;
    const char *home;
    uint16_t vb;
    char msg[160];

    if (bc->payload.len < HO_HEADER ||
        (p[0] != HO_OP_BEGIN && p[0] != HO_OP_CHUNK)) {
        bcall_error(bc, FERRY_EINVALID_ARGUMENT,
                    "ferry.handover: u8 op (1 begin, 2 chunk), u16 vbucket, "
                    "then the chunk");
        return;
    }
    vb = (uint16_t)(p[1] << 8 | p[2]);
    if (vb >= VB_COUNT) {
        bcall_error(bc, FERRY_EINVALID_ARGUMENT,
                    "ferry.handover: vbucket past 1023");
        return;
    }
    home = homes_of(c->homes, vb);
    if (home != NULL && strcmp(home, c->self) == 0) {
        /* Never overwrite what this node serves. */
        snprintf(msg, sizeof(msg),
                 "node '%.64s' is vbucket %u's home: it takes no handover "
                 "of it",
                 c->self, (unsigned)vb);
        bcall_error(bc, FERRY_EINVALID_ARGUMENT, msg);
        return;
    }
    pend = malloc(sizeof(*pend));
    if (pend == NULL) {
        bcall_error(bc, FERRY_ENOMEM, NULL);
        return;
    }
    pend->b = c->b;
    pend->handle = 0;
    if (p[0] == HO_OP_CHUNK) {
        /* The chunk is read now; the answer waits for its commit. */
        pend->handle = bcall_hold(bc);
        if (pend->handle == 0) {
            free(pend);
            return;
        }
        c->ho.chunks_in++;
        vbdata_import(c->sv, vb, p + HO_HEADER, bc->payload.len - HO_HEADER,
                      ho_pending_done, pend);
        return;
    }
    pend->handle = bcall_hold(bc);
    if (pend->handle == 0) {
        free(pend);
        return;
    }
    vbdata_drop(c->sv, vb, ho_pending_done, pend);
}

const struct backend_ops cluster_handover_ops = {
    .kind = "cluster",
    .call = ho_call,
};

/* ---- the sending side ---- */

/* Whether member name said it is leaving (it takes no vbucket). */
static bool
ho_is_leaving(const struct cluster *c, const char *name)
{
    size_t n = 0;
    const struct member *ms = members_list(c->members, &n);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(ms[i].name, name) == 0) {
            return ms[i].leaving;
        }
    }
    return false;
}

/* Where vb should live: when leaving, the member of highest weight but
 * this node (and any other leaving one); else the map's owner, unless it
 * is leaving. NULL: nowhere else. */
static const char *
ho_target(struct cluster *c, uint16_t vb)
{
    const struct vbmap_member *best = NULL;
    uint64_t best_w = 0;
    const char *owner;

    if (!c->leaving) {
        owner = vbmap_owner(&c->map, vb);
        return owner != NULL && strcmp(owner, c->self) != 0 &&
                       !ho_is_leaving(c, owner)
                   ? owner
                   : NULL;
    }
    for (size_t i = 0; i < c->map.n; i++) {
        const struct vbmap_member *m = &c->map.members[i];
        uint64_t w = vbmap_weight(m->hash, vb);
        if (strcmp(m->name, c->self) == 0 || ho_is_leaving(c, m->name)) {
            continue;
        }
        if (best == NULL || w > best_w) {
            best = m;
            best_w = w;
        }
    }
    return best != NULL ? best->name : NULL;
}

static bool
ho_link_up(struct cluster *c, const char *name)
{
    struct peer *p = peers_find(c, name);

    return p != NULL && peers_link(c, p) != NULL;
}

static void
ho_abort(struct cluster *c, const char *why)
{
    struct handover *ho = &c->ho;

    log_warn("cluster: handover of vbucket %d to '%s' stopped: %s; this node "
             "stays its home, tried again",
             ho->vb, ho->target, why);
    c->moving[ho->vb] = false;
    ho->failed++;
    /* This one waits; the others go on at once. */
    ho->retry_vb[ho->vb] = loop_now(c->loop) + HO_RETRY_MS;
    ho->next = (uint16_t)((ho->vb + 1) % VB_COUNT);
    ho->st = HO_IDLE;
    ho->vb = -1;
    route_remap_wake(c);
    buf_clear(&ho->chunk);
}

static void
ho_send(struct cluster *c, uint8_t op, icall_done_cb cb)
{
    struct handover *ho = &c->ho;
    uint8_t head[HO_HEADER] = {op, (uint8_t)(ho->vb >> 8), (uint8_t)ho->vb};
    struct slice svc = slice_str(CLUSTER_HANDOVER_SERVICE);
    struct slice key = slice_str(ho->target);
    struct slice payload;

    if (op == HO_OP_BEGIN) {
        payload = (struct slice){head, sizeof(head)};
    } else {
        memcpy(buf_head(&ho->chunk), head, sizeof(head));
        payload = (struct slice){buf_head(&ho->chunk), buf_len(&ho->chunk)};
    }
    memset(&ho->ic, 0, sizeof(ho->ic));
    icall_submit_cluster(c->b, &ho->ic, svc, key, payload, HO_CALL_MS, cb);
}

static void
ho_dropped(void *ud, ferry_err err, const char *msg)
{
    struct cluster *c = ud;
    struct handover *ho = &c->ho;

    if (err == FERRY_EOVERLOADED) {
        /* A job of it still has a write in flight: again soon. */
        ho->st = HO_DROP_WAIT;
        ho->retry_at = loop_now(c->loop) + 50;
        return;
    }
    if (err != FERRY_OK) {
        log_warn("cluster: dropping vbucket %d's data after its handover: "
                 "%s (it is '%s''s now; the copy here is never served)",
                 ho->vb, msg ? msg : ferry_strerror(err), ho->target);
    }
    log_info("cluster: vbucket %d handed over to '%s' (%llu records, %llu "
             "bytes, %llu ms)",
             ho->vb, ho->target, (unsigned long long)ho->cur.records,
             (unsigned long long)ho->cur.bytes,
             (unsigned long long)(loop_now(c->loop) - ho->started_ms));
    ho->moved++;
    ho->st = HO_IDLE;
    ho->vb = -1;
    buf_clear(&ho->chunk);
    handover_kick(c);
}

static void
ho_swapped(void *ud, ferry_err err, const char *msg,
           const struct etcd_result *r)
{
    struct cluster *c = ud;
    struct handover *ho = &c->ho;

    ho->swap = NULL;
    if (err != FERRY_OK) {
        ho_abort(c, msg ? msg : "etcd did not answer the swap");
        return;
    }
    if (!r->succeeded) {
        ho_abort(c, "its home in etcd is not this node's any more");
        return;
    }
    homes_note(c->homes, (uint16_t)ho->vb, ho->target);
    c->moving[ho->vb] = false;
    ho->st = HO_DROP;
    vbdata_drop(c->sv, (uint16_t)ho->vb, ho_dropped, c);
}

static void
ho_chunk_done(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct handover *ho = container_of(ic, struct handover, ic);
    struct cluster *c = container_of(ho, struct cluster, ho);
    char why[200];

    if (err != FERRY_OK) {
        snprintf(why, sizeof(why), "the target refused a chunk: %s: %.*s",
                 ferry_strerror(err), (int)(len > 120 ? 120 : len),
                 (const char *)data);
        ho_abort(c, why);
        return;
    }
    ho->chunks_out++;
    if (!ho->last) {
        ho_next_chunk(c);
        return;
    }
    ho->st = HO_SWAP;
    ho->swap = homes_swap(c->homes, (uint16_t)ho->vb, c->self, ho->target,
                          ho_swapped, c);
    if (ho->swap == NULL) {
        ho_abort(c, "out of memory");
    }
}

static void
ho_next_chunk(struct cluster *c)
{
    struct handover *ho = &c->ho;
    size_t max = c->cfg->max_frame / 2;
    uint8_t *head;
    ferry_err err;

    if (max > VBDATA_CHUNK_BYTES) {
        max = VBDATA_CHUNK_BYTES;
    }
    buf_clear(&ho->chunk);
    head = buf_prepare(&ho->chunk, HO_HEADER);
    if (head == NULL) {
        ho_abort(c, "out of memory");
        return;
    }
    buf_commit(&ho->chunk, HO_HEADER);
    err = vbdata_export_next(c->sv, (uint16_t)ho->vb, &ho->cur, &ho->chunk,
                             max, &ho->last);
    if (err != FERRY_OK) {
        ho_abort(c, ferry_strerror(err));
        return;
    }
    ho->st = HO_CHUNK;
    ho_send(c, HO_OP_CHUNK, ho_chunk_done);
}

static void
ho_begun(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct handover *ho = container_of(ic, struct handover, ic);
    struct cluster *c = container_of(ho, struct cluster, ho);
    char why[200];

    if (err != FERRY_OK) {
        snprintf(why, sizeof(why), "the target refused to begin: %s: %.*s",
                 ferry_strerror(err), (int)(len > 120 ? 120 : len),
                 (const char *)data);
        ho_abort(c, why);
        return;
    }
    vbdata_cursor_init(&ho->cur);
    ho->last = false;
    ho_next_chunk(c);
}

static void
ho_barrier_done(void *arg, const struct store_result *r)
{
    struct cluster *c = arg;

    if (r->status != STORE_COMMITTED) {
        ho_abort(c, "the store's barrier failed");
        return;
    }
    c->ho.st = HO_BEGIN;
    ho_send(c, HO_OP_BEGIN, ho_begun);
}

static void
ho_start(struct cluster *c, uint16_t vb, const char *target)
{
    struct handover *ho = &c->ho;
    struct store_batch *barrier = store_batch_new();

    if (barrier == NULL) {
        return;
    }
    ho->vb = vb;
    snprintf(ho->target, sizeof(ho->target), "%s", target);
    ho->started_ms = loop_now(c->loop);
    c->moving[vb] = true;
    ho->st = HO_BARRIER;
    store_submit(c->sv->store, barrier, ho_barrier_done, c);
}

/* Vbuckets this node is the home of. */
static unsigned
ho_homes_here(const struct cluster *c)
{
    unsigned n = 0;

    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        const char *h = homes_of(c->homes, vb);
        n += h != NULL && strcmp(h, c->self) == 0;
    }
    return n;
}

void
handover_kick(struct cluster *c)
{
    struct handover *ho = &c->ho;
    uint64_t now = loop_now(c->loop);

    if (ho->st == HO_DROP_WAIT && now >= ho->retry_at) {
        ho->st = HO_DROP;
        vbdata_drop(c->sv, (uint16_t)ho->vb, ho_dropped, c);
        return;
    }
    if (c->b->shutting_down) {
        return; /* the store closes: no new move */
    }
    if (ho->st != HO_IDLE || c->sv == NULL || c->fenced || !c->have_map ||
        !homes_loaded(c->homes) || now < ho->retry_at) {
        return;
    }
    for (unsigned i = 0; i < VB_COUNT; i++) {
        uint16_t vb = (uint16_t)((ho->next + i) % VB_COUNT);
        const char *home = homes_of(c->homes, vb);
        const char *t;
        if (home == NULL || strcmp(home, c->self) != 0 ||
            now < ho->retry_vb[vb]) {
            continue;
        }
        t = ho_target(c, vb);
        if (t == NULL || !ho_link_up(c, t)) {
            continue;
        }
        ho->next = (uint16_t)((vb + 1) % VB_COUNT);
        ho_start(c, vb, t);
        return;
    }
    ho->pending = c->leaving ? ho_homes_here(c) : 0;
}

bool
handover_idle(const struct cluster *c)
{
    return c->ho.st == HO_IDLE;
}

unsigned
handover_left(const struct cluster *c)
{
    return ho_homes_here(c);
}

/* Vbuckets this node is the home of that belong elsewhere now. */
static unsigned
ho_pending(struct cluster *c)
{
    unsigned n = 0;

    if (!c->have_map) {
        return 0;
    }
    for (uint16_t vb = 0; vb < VB_COUNT; vb++) {
        const char *h = homes_of(c->homes, vb);
        n += h != NULL && strcmp(h, c->self) == 0 && ho_target(c, vb) != NULL;
    }
    return n;
}

json_t *
handover_describe(const struct cluster *c)
{
    const struct handover *ho = &c->ho;

    return json_pack("{s:b, s:i, s:s?, s:i, s:I, s:I, s:I, s:I}", "moving",
                     ho->st != HO_IDLE, "vbucket", ho->vb, "target",
                     ho->st != HO_IDLE ? ho->target : NULL, "pending",
                     (int)ho_pending((struct cluster *)c), "moved",
                     (json_int_t)ho->moved, "failed", (json_int_t)ho->failed,
                     "chunks_sent", (json_int_t)ho->chunks_out,
                     "chunks_received", (json_int_t)ho->chunks_in);
}

void
handover_init(struct cluster *c)
{
    c->ho.vb = -1;
    c->ho.st = HO_IDLE;
    buf_init(&c->ho.chunk);
    c->ho_be.ops = &cluster_handover_ops;
}

void
handover_release(struct cluster *c)
{
    icall_cancel(c->b, &c->ho.ic);
    etcd_cancel(c->ho.swap);
    c->ho.swap = NULL;
    buf_release(&c->ho.chunk);
    buf_init(&c->ho.chunk);
}
