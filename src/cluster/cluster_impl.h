/* SPDX-License-Identifier: MIT */
/*
 * cluster_impl.h - what cluster.c (membership, the map, the directory),
 * peers.c (the links) and route.c (where a request goes, and the backend
 * that sends it over a link) share. Not for the rest of ferryd.
 */
#ifndef FERRY_CLUSTER_CLUSTER_IMPL_H
#define FERRY_CLUSTER_CLUSTER_IMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/backend.h"
#include "broker/icall.h"
#include "core/buf.h"
#include "core/list.h"
#include "servants/vbdata.h"
#include "cluster/cluster.h"
#include "cluster/vbmap.h"
#include "core/timer.h"

struct conn;
struct etcd_result;
struct loop;
struct members;
struct service;

/* The REQUEST flag a node sets on what it forwards over a peer link: the
 * receiver serves it here, never forwards it again (the hop mark). */
#define CLUSTER_FORWARDED BROKER_FORWARDED

/* One other node, known from the member list or from its link. */
struct peer {
    char *name;           /* owned: its node name */
    char *addr;           /* owned: where its link is dialled, or NULL
                             while it is not in the member list */
    uint64_t conn;        /* its link's conn id, 0 while down */
    bool live;            /* in the member list now */
    uint32_t out;         /* our requests at it now */
    uint64_t dial_at;     /* loop ms of the next dial, 0: now */
    uint32_t backoff_ms;  /* the wait before the dial after that */
    uint64_t forwarded;   /* requests sent to it */
    uint64_t failed;      /* of them, ended by an error of its side */
    uint32_t fails_in_row; /* failures since its last good answer */
    uint32_t ejections;   /* times it was ejected */
    uint64_t ejected_until; /* loop ms: no plain request goes to it
                               before (outlier ejection, as for workers) */
    uint64_t links;       /* times its link came up */
};

/* The service a home sends a vbucket's data with (handover.c); its
 * routing key is the target node's name. */
#define CLUSTER_HANDOVER_SERVICE "ferry.handover"

/* Where the handover of one vbucket is (handover.c). */
enum handover_state {
    HO_IDLE = 0,  /* none under way */
    HO_BARRIER,   /* waiting for the writes before it to commit */
    HO_BEGIN,     /* the target drops any stale copy */
    HO_CHUNK,     /* a chunk at the target */
    HO_SWAP,      /* the home key's swap at etcd */
    HO_DROP,      /* dropping the data here */
    HO_DROP_WAIT  /* the drop waits for a write in flight */
};

struct handover {
    enum handover_state st;    /* where it is */
    int vb;                    /* the vbucket moving, -1 none */
    char target[256];          /* its next home */
    uint16_t next;             /* where the next search starts */
    struct vbdata_cursor cur;  /* the export */
    bool last;                 /* the chunk at the target is the last */
    struct buf chunk;          /* owned: the chunk being sent */
    struct icall ic;           /* the transfer request in flight */
    struct etcd_call *swap;    /* the swap in flight, or NULL */
    uint64_t started_ms;       /* loop ms the move began */
    uint64_t retry_at;         /* no new move before this */
    uint64_t retry_vb[VB_COUNT]; /* a vbucket whose move failed waits */
    unsigned pending;          /* homes still here while leaving */
    uint64_t moved, failed;    /* moves done; moves stopped */
    uint64_t chunks_out;       /* chunks sent and committed there */
    uint64_t chunks_in;        /* chunks imported here */
};

/* How a service is routed, found once per service. */
enum cluster_kind {
    CLUSTER_KIND_UNKNOWN = 0, /* not looked at yet */
    CLUSTER_KIND_LOCAL = 1,   /* an in-daemon service with no key: here */
    CLUSTER_KIND_PLAIN = 2,   /* workers: here, else a node with room */
    CLUSTER_KIND_KEYED = 3,   /* the owner of the key's vbucket */
    CLUSTER_KIND_NODE = 4     /* the node the key names (ferry.handover) */
};

struct cluster {
    struct loop *loop;          /* borrowed */
    struct broker *b;           /* borrowed */
    const struct config *cfg;   /* borrowed */
    struct members *members;    /* owned */
    char self[256];             /* this node's name */
    char addr[256];             /* its peer address */
    struct backend fwd;         /* forwards over a peer link (route.c) */
    struct homes *homes;        /* owned: where durable data lives */
    struct servants *sv;        /* borrowed: the store handed over */
    int node_id;                /* leased in etcd, -1 none yet */
    struct handover ho;         /* the vbucket being handed over */
    struct backend ho_be;       /* serves ferry.handover */
    uint64_t leave_deadline;    /* loop ms a leave gives up moving */
    bool moving[VB_COUNT];      /* this node is handing the vbucket's data
                                   over: its durable requests wait */
    struct peer *peers;         /* owned, n_peers of them */
    size_t n_peers;             /* entries in peers */
    size_t cap_peers;           /* room in peers */
    struct vbmap map;           /* the vbucket map of the members */
    bool have_map;              /* map built at least once */
    bool fenced;                /* self-fenced: serves no vbucket */
    struct timer tick;          /* redials and the directory's publish */
    json_t *published;          /* owned: the services last published */
    json_t *dir;                /* owned: node name -> its services, from
                                   the member list */
    char **keyed;               /* owned: keyed_service names */
    size_t n_keyed;             /* entries in keyed */
    uint64_t rng;               /* for the two random choices */
    uint64_t forwarded;         /* requests sent over links */
    uint64_t received;          /* requests peers forwarded here */
    uint64_t not_mine;          /* NOT_MY_VBUCKET answered */
    uint64_t remapped;          /* keyed requests a peer answered
                                   NOT_MY_VBUCKET, routed once more */
    struct backend gather_be;   /* holds requests every node answers */
    struct gather *gathers;     /* owned: those under way (gather.c) */
    struct list remap_wait;     /* of them, those waiting for the map or
                                   a home to change (struct req, borrowed:
                                   the broker's records) */
    uint64_t fenced_refused;    /* FENCED answered */
    uint64_t unavailable;       /* UNAVAILABLE answered */
    uint64_t map_builds;        /* times the map was computed */
    bool leaving;               /* cluster_leave() under way */
    bool left_members;          /* ... and members_leave() called */
    void (*leave_done)(void *arg); /* cluster_leave()'s */
    void *leave_arg;            /* ... and its argument */
};

/* homes.c */
struct homes;
struct homes *homes_start(struct cluster *c, const char *endpoints,
                          const char *cluster, uint32_t timeout_ms);
void homes_stop(struct homes *h);
/* The prefix was read: homes_of is etcd's answer, not a guess. */
bool homes_loaded(const struct homes *h);
/* vb's home node, or NULL when it has none yet (borrowed: until the next
 * change of homes). */
const char *homes_of(const struct homes *h, uint16_t vb);
/* Claims the homeless vbuckets the map gives this node. */
void homes_claim_due(struct homes *h);
/* Moves vb's home from one node to another if it is still from's. */
struct etcd_call *homes_swap(struct homes *h, uint16_t vb, const char *from,
                             const char *to,
                             void (*cb)(void *ud, ferry_err err,
                                        const char *msg,
                                        const struct etcd_result *r),
                             void *ud);
void homes_note(struct homes *h, uint16_t vb, const char *name);
json_t *homes_describe(const struct homes *h);
/* cluster.c: a home changed (vb), or all of them were read (VB_NONE). */
void cluster_homes_changed(struct cluster *c, uint16_t vb);

/* handover.c */
extern const struct backend_ops cluster_handover_ops;
void handover_init(struct cluster *c);
void handover_release(struct cluster *c);
/* Starts the next move when none is under way and one is due. */
void handover_kick(struct cluster *c);
bool handover_idle(const struct cluster *c);
/* Vbuckets this node is still the home of. */
unsigned handover_left(const struct cluster *c);
json_t *handover_describe(const struct cluster *c);

/* peers.c */
struct peer *peers_find(struct cluster *c, const char *name);
/* The member list changed: add the new, mark the gone, dial. */
void peers_sync(struct cluster *c);
/* Dials the links that are due (the tick). */
void peers_dial(struct cluster *c);
void peers_up(struct broker *b, struct conn *conn);
void peers_down(struct broker *b, struct conn *conn);
void peers_release(struct cluster *c);
/* The link's conn of p when it is up, else NULL. */
struct conn *peers_link(const struct cluster *c, const struct peer *p);

/* gather.c */
struct gather;
extern const struct backend_ops cluster_gather_ops;
/* Whether q is a request every node answers a part of (ferry.queue's
 * STATS of every queue), asked of this node by a caller. */
bool gather_wanted(const struct cluster *c, const struct service *svc,
                   uint8_t flags, const struct frame_request *q);
void gather_release(struct cluster *c);

/* route.c */
/* The map or a home changed: requests waiting to be routed again go. */
void route_remap_wake(struct cluster *c);
void cluster_peer_answer(struct broker *b, struct conn *link,
                         const struct service *svc, ferry_err code);
bool cluster_peer_retry(struct broker *b, struct req *r, ferry_err code);
extern const struct backend_ops cluster_fwd_ops;
int cluster_route(struct broker *b, struct sink *k, struct service *svc,
                  uint8_t flags, const struct frame_request *q,
                  struct backend **be, void **where);
int cluster_describe_remote(struct broker *b, const struct service *svc,
                            json_t *obj);
json_t *cluster_describe_remote_only(struct broker *b);

#endif
