/* SPDX-License-Identifier: MIT */
/*
 * peers.c - one link to every other node of the cluster.
 *
 * A link is a conn of the ferry protocol with role peer (session.h): it
 * carries both nodes' forwarded requests and their answers, multiplexed
 * by request id. One link per pair: the node whose name sorts first
 * dials, the other accepts, so two nodes never hold two links. A link
 * that fails is dialled again after a backoff (100 ms doubling to 2 s);
 * a node that left the member list keeps its link until it closes, so
 * answers still in flight on it arrive.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/session.h"
#include "cluster/cluster_impl.h"
#include "cluster/members.h"
#include "core/addr.h"
#include "core/conn.h"
#include "core/log.h"

#define PEERS_BACKOFF_MIN_MS 100
#define PEERS_BACKOFF_MAX_MS 2000

struct peer *
peers_find(struct cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        if (strcmp(c->peers[i].name, name) == 0) {
            return &c->peers[i];
        }
    }
    return NULL;
}

static struct peer *
peers_add(struct cluster *c, const char *name)
{
    struct peer *p;

    if (c->n_peers == c->cap_peers) {
        size_t cap = c->cap_peers ? c->cap_peers * 2 : 8;
        struct peer *v = realloc(c->peers, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        c->peers = v;
        c->cap_peers = cap;
    }
    p = &c->peers[c->n_peers];
    memset(p, 0, sizeof(*p));
    p->name = strdup(name);
    if (p->name == NULL) {
        return NULL;
    }
    p->backoff_ms = PEERS_BACKOFF_MIN_MS;
    c->n_peers++;
    return p;
}

struct conn *
peers_link(const struct cluster *c, const struct peer *p)
{
    struct conn *conn;

    if (p->conn == 0) {
        return NULL;
    }
    conn = loop_conn(c->loop, p->conn);
    return conn != NULL && conn->state == CONN_READY ? conn : NULL;
}

void
peers_sync(struct cluster *c)
{
    size_t n = 0;
    const struct member *m = members_list(c->members, &n);

    for (size_t i = 0; i < c->n_peers; i++) {
        c->peers[i].live = false;
    }
    for (size_t i = 0; i < n; i++) {
        struct peer *p;
        if (strcmp(m[i].name, c->self) == 0) {
            continue;
        }
        p = peers_find(c, m[i].name);
        if (p == NULL && (p = peers_add(c, m[i].name)) == NULL) {
            log_error("cluster: out of memory adding node '%s'", m[i].name);
            continue;
        }
        p->live = true;
        if (m[i].addr != NULL &&
            (p->addr == NULL || strcmp(p->addr, m[i].addr) != 0)) {
            char *a = strdup(m[i].addr);
            if (a != NULL) {
                free(p->addr);
                p->addr = a;
                p->dial_at = 0;
            }
        }
    }
    peers_dial(c);
}

static void
peers_connected(struct conn *conn)
{
    struct cluster *c = conn->loop->broker->cluster;

    if (session_peer_hello(conn, c->self) != FERRY_OK) {
        conn_close(conn, "out of memory");
    }
}

/* A dial that failed before its link had a session never reaches
 * peers_down(): its conn id is simply gone. */
static void
peers_forget_dead_dials(struct cluster *c)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        struct peer *p = &c->peers[i];
        if (p->conn != 0 && loop_conn(c->loop, p->conn) == NULL) {
            p->conn = 0;
        }
    }
}

void
peers_dial(struct cluster *c)
{
    uint64_t now = loop_now(c->loop);

    peers_forget_dead_dials(c);

    for (size_t i = 0; i < c->n_peers; i++) {
        struct peer *p = &c->peers[i];
        struct addr to;
        struct conn *conn;

        /* The name that sorts first dials; the other waits for it. */
        if (!p->live || p->addr == NULL || p->conn != 0 || c->leaving ||
            strcmp(c->self, p->name) > 0 || now < p->dial_at) {
            continue;
        }
        p->dial_at = now + p->backoff_ms;
        p->backoff_ms = p->backoff_ms * 2 > PEERS_BACKOFF_MAX_MS
                            ? PEERS_BACKOFF_MAX_MS
                            : p->backoff_ms * 2;
        if (addr_parse(p->addr, &to) != FERRY_OK || addr_is_unix(&to)) {
            log_warn("cluster: node '%s' has an address I cannot dial: '%s'",
                     p->name, p->addr);
            continue;
        }
        conn = conn_connect(c->loop, &to, &session_peer_dial_ops,
                            peers_connected);
        if (conn == NULL) {
            log_warn("cluster: cannot dial node '%s' at '%s'", p->name,
                     p->addr);
            continue;
        }
        (void)conn_set_name(conn, p->name);
        p->conn = conn->id;
        log_debug("cluster: dialling node '%s' at '%s'", p->name, p->addr);
    }
}

/* The peer whose link conn is, by its conn id or else its HELLO name. */
static struct peer *
peers_of_conn(struct cluster *c, const struct conn *conn)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        if (c->peers[i].conn == conn->id) {
            return &c->peers[i];
        }
    }
    return peers_find(c, conn->name);
}

void
peers_up(struct broker *b, struct conn *conn)
{
    struct cluster *c = b->cluster;
    struct peer *p = peers_of_conn(c, conn);

    if (p == NULL && (p = peers_add(c, conn->name)) == NULL) {
        conn_fail(conn, FERRY_ENOMEM, NULL);
        return;
    }
    if (p->conn != 0 && p->conn != conn->id &&
        peers_link(c, p) != NULL) {
        /* A second link of one node (it restarted and dialled again
         * before the old one timed out): the new one wins. */
        struct conn *old = loop_conn(c->loop, p->conn);
        if (old != NULL) {
            conn_close(old, "replaced by a newer link");
        }
    }
    p->conn = conn->id;
    p->backoff_ms = PEERS_BACKOFF_MIN_MS;
    p->links++;
    log_info("cluster: link to node '%s' at '%s' up", p->name, conn->peer);
}

void
peers_down(struct broker *b, struct conn *conn)
{
    struct cluster *c = b->cluster;

    for (size_t i = 0; i < c->n_peers; i++) {
        struct peer *p = &c->peers[i];
        if (p->conn == conn->id) {
            /* Its requests fail with the link (broker_worker_gone). */
            p->conn = 0;
            p->out = 0;
            log_info("cluster: link to node '%s' down", p->name);
        }
    }
}

void
peers_release(struct cluster *c)
{
    for (size_t i = 0; i < c->n_peers; i++) {
        free(c->peers[i].name);
        free(c->peers[i].addr);
    }
    free(c->peers);
    c->peers = NULL;
    c->n_peers = c->cap_peers = 0;
}
