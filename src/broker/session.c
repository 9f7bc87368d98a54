/* SPDX-License-Identifier: MIT */
/*
 * session.c - the broker's side of a connection: the HELLO handshake and
 * the frames callers and workers may send afterwards.
 *
 * Each role is a struct conn_ops; the handshake swaps the conn's ops for
 * the caller's or the worker's once HELLO is accepted. Anything a role may
 * not send, or a body that does not parse, ends the connection with ERROR
 * PROTO; an invalid but well-formed REGISTER only fails that REGISTER.
 */
#include "broker/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "core/access.h"
#include "core/config.h"
#include "core/log.h"
#include "topic/topic.h"

static ferry_err session_hello(struct conn *c, const struct frame *f);
static ferry_err session_caller_frame(struct conn *c, const struct frame *f);
static ferry_err session_worker_frame(struct conn *c, const struct frame *f);
static void session_closing(struct conn *c);
static void session_hs_closing(struct conn *c);
static bool session_can_read(const struct conn *c);

const struct conn_ops session_handshake_ops = {
    .role = "client",
    .pause_on_high = true,
    .frame = session_hello,
    .closing = session_hs_closing,
};

static const struct conn_ops session_caller_ops = {
    .role = "caller",
    .pause_on_high = true,
    .frame = session_caller_frame,
    .can_read = session_can_read,
    .closing = session_closing,
};

static const struct conn_ops session_worker_ops = {
    .role = "worker",
    .pause_on_high = false,
    .frame = session_worker_frame,
    .can_read = session_can_read,
    .closing = session_closing,
};

/* A peer ferryd's link, either side of it: it forwards requests (a caller
 * whose window is cluster_peer_credit) and answers ours (a worker, never
 * paused, so its answers keep flowing). */
static ferry_err session_peer_frame(struct conn *c, const struct frame *f);
static ferry_err session_peer_hello_ok(struct conn *c, const struct frame *f);
static bool session_peer_can_read(const struct conn *c);
static void session_peer_closing(struct conn *c);

static const struct conn_ops session_peer_ops = {
    .role = "peer",
    .pause_on_high = false,
    .frame = session_peer_frame,
    .can_read = session_peer_can_read,
    .closing = session_peer_closing,
};

const struct conn_ops session_peer_dial_ops = {
    .role = "peer",
    .pause_on_high = false,
    .frame = session_peer_hello_ok,
    .closing = session_hs_closing,
};

void
session_send_too_big(struct conn *c, uint64_t id, size_t len)
{
    const struct session *s = c->data;
    char msg[112];

    snprintf(msg, sizeof(msg),
             "reply of %zu bytes is above this connection's max_frame of %u",
             len, s != NULL ? s->max_frame : 0);
    conn_send_error(c, id, FERRY_ETOO_BIG, msg);
}

bool
session_can_take(const struct session *s)
{
    return !s->draining && conn_is_writable(s->conn);
}

/*
 * A caller's window: with max_in_flight requests unanswered it is not read
 * until one ends, so one connection that pipelines faster than workers
 * answer is slowed down instead of filling the service queue.
 */
static bool
session_can_read(const struct conn *c)
{
    const struct session *s = c->data;

    return s == NULL || s->inflight.n < c->loop->cfg->max_in_flight;
}

/* Sets c's name for logs and stats to a peer-chosen name, control bytes
 * masked. HELLO has already checked it is at most 255 bytes. */
static ferry_err
session_set_name(struct conn *c, struct slice name)
{
    char text[256];
    size_t n = name.len < sizeof(text) - 1 ? name.len : sizeof(text) - 1;

    for (size_t i = 0; i < n; i++) {
        uint8_t ch = name.p[i];
        text[i] = (ch < 0x20 || ch == 0x7f || ch == '\'') ? '?' : (char)ch;
    }
    text[n] = '\0';
    return conn_set_name(c, text);
}

static void
session_hs_closing(struct conn *c)
{
}

/*
 * Whether a HELLO may go on: with the role's token set (caller_token or
 * worker_token), its token must be that one or admin_token. Both are
 * compared every time, so the time taken does not tell which one was close.
 */
static bool
session_token_is_ok(const struct config *cfg, uint8_t role, struct slice token)
{
    /* A peer ferryd gives work and takes it: it needs the worker token. */
    const char *want = role != FRAME_ROLE_CALLER ? cfg->worker_token
                                                 : cfg->caller_token;
    bool role_ok = access_token_matches(token.p, token.len, want);
    bool admin_ok = access_token_matches(token.p, token.len, cfg->admin_token);

    return !config_token_is_set(want) || role_ok || admin_ok;
}

/* A new session of c in role, after a handshake; NULL when out of memory
 * (c failed). Both sides of HELLO make one: the accepted client's and
 * the dialled peer's. */
static struct session *
session_new(struct conn *c, uint8_t role, uint32_t max_frame)
{
    struct session *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        conn_fail(c, FERRY_ENOMEM, NULL);
        return NULL;
    }
    s->conn = c;
    s->b = c->loop->broker;
    s->role = role;
    s->max_frame = max_frame;
    map_init(&s->inflight);
    list_init(&s->held);
    return s;
}

static ferry_err
session_hello(struct conn *c, const struct frame *f)
{
    struct broker *b = c->loop->broker;
    const struct config *cfg = c->loop->cfg;
    struct slice daemon = slice_str(FERRYD_NAME);
    struct frame_hello h;
    struct session *s;
    uint16_t version;
    uint32_t hb;
    uint8_t *p;

    if (f->type != FRAME_HELLO) {
        conn_fail(c, FERRY_EPROTO, "expected HELLO first");
        return FERRY_OK;
    }
    /* Version 0 is refused whatever the layout of the rest. */
    if (f->body.len >= 2 && f->body.p[0] == 0 && f->body.p[1] == 0) {
        conn_fail(c, FERRY_EVERSION,
                  "unsupported protocol version 0; "
                  "ferryd speaks versions 1 and 2");
        return FERRY_OK;
    }
    if (frame_parse_hello(f, &h) != FERRY_OK) {
        conn_fail(c, FERRY_EPROTO, "malformed HELLO");
        return FERRY_OK;
    }
    if (h.max_frame != 0 && h.max_frame < FRAME_MIN_CLIENT_MAX) {
        char msg[96];
        snprintf(msg, sizeof(msg),
                 "max_frame %u is below %u, the largest ERROR body",
                 h.max_frame, (unsigned)FRAME_MIN_CLIENT_MAX);
        conn_fail(c, FERRY_EINVALID_ARGUMENT, msg);
        return FERRY_OK;
    }
    version = h.version < FERRY_PROTOCOL_VERSION ? h.version
                                                 : FERRY_PROTOCOL_VERSION;
    if (h.role == FRAME_ROLE_PEER && b->on_peer_up == NULL) {
        conn_fail(c, FERRY_EINVALID_ARGUMENT,
                  "this ferryd is not in a cluster: no peer links");
        return FERRY_OK;
    }
    if (!session_token_is_ok(cfg, h.role, h.token)) {
        const char *role = h.role == FRAME_ROLE_WORKER ? "worker"
                           : h.role == FRAME_ROLE_PEER ? "peer"
                                                       : "caller";
        char msg[64];
        c->loop->auth_failures++;
        snprintf(msg, sizeof(msg), "invalid token for role '%s'", role);
        log_warn("%s at '%s': refused: %s token", role, c->peer,
                 h.token.len == 0 ? "no" : "wrong");
        conn_send_error(c, 0, FERRY_EUNAUTHORIZED, msg);
        conn_close(c, msg);
        return FERRY_OK;
    }
    s = session_new(c, h.role, h.max_frame);
    if (s == NULL) {
        return FERRY_OK;
    }
    /* What this client may do beyond calling: the rules of access.h. */
    s->admin = access_may_command(cfg, h.token.p, h.token.len, conn_is_unix(c));
    s->internals = access_may_see_internals(cfg, h.token.p, h.token.len);
    if (session_set_name(c, h.name) != FERRY_OK) {
        free(s);
        conn_fail(c, FERRY_ENOMEM, NULL);
        return FERRY_OK;
    }
    /* ferryd promises PINGs only to a client that promised its own: a
     * client that announced 0 is never pinged, so it is told 0. A peer
     * link keeps the cluster's own, shorter heartbeat. */
    if (h.role == FRAME_ROLE_PEER) {
        c->hb_ms = session_peer_heartbeat_ms(cfg);
    }
    hb = h.heartbeat_ms != 0 ? (c->hb_ms != 0 ? c->hb_ms : cfg->heartbeat_ms)
                             : 0;
    p = conn_out_prepare(c, frame_hello_ok_size(version, daemon.len));
    if (p == NULL) {
        free(s);
        return FERRY_OK;
    }
    conn_out_commit(c, frame_write_hello_ok(p, version, hb, cfg->max_frame,
                                            cfg->max_deadline_ms,
                                            cfg->default_deadline_ms, daemon));
    c->data = s;
    conn_set_ops(c, h.role == FRAME_ROLE_WORKER ? &session_worker_ops
                    : h.role == FRAME_ROLE_PEER ? &session_peer_ops
                                                : &session_caller_ops);
    conn_set_state(c, CONN_READY);
    conn_start_heartbeat(c, h.heartbeat_ms);
    if (h.role == FRAME_ROLE_PEER) {
        b->on_peer_up(b, c);
    }
    log_debug("%s '%s' from '%s': hello, version %u, heartbeat %u ms, "
              "max_frame %u",
              c->ops->role, c->name, c->peer, (unsigned)version,
              h.heartbeat_ms, h.max_frame);
    return FERRY_OK;
}

/* ferry.worker.<svc>.<what> for subscribers (topic/topic.h): the workers
 * svc has now, the worker's address and name. */
static void
session_worker_emit(struct conn *c, const struct service *svc, const char *what)
{
    topic_emit_event(c->loop->topics, TOPIC_EV_WORKER,
                     (struct slice){(const uint8_t *)svc->name, svc->name_len},
                     what, "workers=%zu peer=%s name=%s", svc->n_regs, c->peer,
                     c->name);
}

static void
session_closing(struct conn *c)
{
    struct session *s = c->data;
    struct broker *b;

    if (s == NULL) {
        return;
    }
    b = s->b;
    broker_caller_gone(b, &s->inflight);
    map_release(&s->inflight);
    if (s->held_count > 0 || s->n_regs > 0) {
        log_info("worker '%s' at '%s' gone, %u requests lost", c->name, c->peer,
                 s->held_count);
    }
    broker_worker_gone(b, &s->held);
    for (size_t i = 0; i < s->n_regs; i++) {
        struct wreg *reg = s->regs[i];
        struct service *svc = reg->svc;
        service_remove_reg(svc, reg);
        free(reg);
        session_worker_emit(c, svc, "left");
        if (service_active_workers(svc) == 0) {
            broker_rearm_queue(b, svc);
        }
        broker_maybe_free_service(b, svc);
    }
    free(s->regs);
    free(s);
    c->data = NULL;
}

/* Frames both roles may send: REQUEST, CANCEL, PING, ERROR (with id 0 it
 * closes; with an id this side holds no request of, it is ignored). */
static ferry_err
session_common_frame(struct conn *c, const struct frame *f)
{
    struct broker *b = c->loop->broker;
    char msg[64];

    switch (f->type) {
    case FRAME_REQUEST: {
        struct frame_request q;
        if (frame_parse_request(f, &q) != FERRY_OK) {
            conn_fail(c, FERRY_EPROTO, "malformed REQUEST");
            return FERRY_OK;
        }
        /* A role that is never paused (a worker: its replies must keep
         * flowing) is held back per request instead: above high_water
         * its new requests are refused, so the answers to them cannot
         * pile up in an output it does not read. */
        if (!c->ops->pause_on_high &&
            conn_out_pending(c) > c->loop->cfg->high_water) {
            conn_send_error(c, f->id, FERRY_EOVERLOADED,
                            "output above high_water: read what ferryd "
                            "sent first");
            return FERRY_OK;
        }
        broker_request(b, c, f->id, f->flags, &q);
        return FERRY_OK;
    }
    case FRAME_CANCEL:
        if (frame_check_empty(f) != FERRY_OK) {
            conn_fail(c, FERRY_EPROTO, "malformed CANCEL");
            return FERRY_OK;
        }
        broker_cancel(b, c, f->id);
        return FERRY_OK;
    case FRAME_PING:
        return frame_check_empty(f);
    case FRAME_ERROR: {
        struct frame_error e;
        if (frame_parse_error(f, &e) != FERRY_OK) {
            conn_fail(c, FERRY_EPROTO, "malformed ERROR");
            return FERRY_OK;
        }
        if (f->id != 0) {
            /* An answer for a request this side never sent it: an unknown
             * id, ignored like a late REPLY (protocol.md, Who may send
             * what). */
            log_debug("%s '%s': ERROR for unknown id %llu ignored",
                      c->ops->role, c->name, (unsigned long long)f->id);
            return FERRY_OK;
        }
        log_info("%s '%s': closing with %s", c->ops->role, c->name,
                 ferry_errname((ferry_err)e.code));
        conn_close(c, "peer sent ERROR");
        return FERRY_OK;
    }
    default:
        snprintf(msg, sizeof(msg), "unexpected %s from a %s",
                 frame_type_name(f->type), c->ops->role);
        conn_fail(c, FERRY_EPROTO, msg);
        return FERRY_OK;
    }
}

static ferry_err
session_caller_frame(struct conn *c, const struct frame *f)
{
    struct frame_register g;

    if (f->type == FRAME_REGISTER) {
        if (frame_parse_register(f, &g) != FERRY_OK) {
            conn_fail(c, FERRY_EPROTO, "malformed REGISTER");
            return FERRY_OK;
        }
        conn_send_error(c, f->id, FERRY_EINVALID_ARGUMENT,
                        "only workers register services");
        return FERRY_OK;
    }
    return session_common_frame(c, f);
}

static void
session_register(struct conn *c, const struct frame *f)
{
    struct session *s = c->data;
    struct broker *b = s->b;
    const struct config *cfg = c->loop->cfg;
    struct frame_register g;
    struct service *svc;
    struct wreg *reg = NULL;
    ferry_err err = FERRY_OK;
    char msg[96];

    if (frame_parse_register(f, &g) != FERRY_OK) {
        conn_fail(c, FERRY_EPROTO, "malformed REGISTER");
        return;
    }
    /* Well formed, but values the broker refuses: only this REGISTER
     * fails. */
    if (g.credit == 0 || g.credit > FRAME_MAX_CREDIT) {
        snprintf(msg, sizeof(msg), "credit %u is outside 1..%u", g.credit,
                 (unsigned)FRAME_MAX_CREDIT);
        conn_send_error(c, f->id, FERRY_EINVALID_ARGUMENT, msg);
        return;
    }
    if (g.service.len == 0) {
        conn_send_error(c, f->id, FERRY_EINVALID_ARGUMENT,
                        "the service name must be 1..255 bytes");
        return;
    }
    if (service_name_is_builtin(g.service)) {
        snprintf(msg, sizeof(msg), "'%.*s' is a built-in service",
                 g.service.len > 64 ? 64 : (int)g.service.len,
                 (const char *)g.service.p);
        if (!service_name_is_valid(g.service)) {
            snprintf(msg, sizeof(msg), "names starting with 'ferry.' are "
                                       "built-in services");
        }
        conn_send_error(c, f->id, FERRY_EINVALID_ARGUMENT, msg);
        return;
    }
    if (s->draining) {
        conn_send_error(c, f->id, FERRY_EINVALID_ARGUMENT,
                        "a draining worker cannot register");
        return;
    }
    /* Registering a service again only changes its credit; a new one
     * counts against this connection's share of the table. */
    svc = broker_service(b, g.service, false, &err);
    for (size_t i = 0; svc != NULL && i < s->n_regs; i++) {
        if (s->regs[i]->svc == svc) {
            reg = s->regs[i];
            break;
        }
    }
    if (reg == NULL && s->n_regs >= cfg->max_services_per_worker) {
        snprintf(msg, sizeof(msg),
                 "too many services on one worker connection "
                 "(max_services_per_worker %u)",
                 (unsigned)cfg->max_services_per_worker);
        conn_send_error(c, f->id, FERRY_EOVERLOADED, msg);
        return;
    }
    svc = broker_service(b, g.service, true, &err);
    if (svc == NULL && err == FERRY_EINVALID_ARGUMENT) {
        conn_send_error(c, f->id, err, BROKER_BAD_NAME);
        return;
    }
    if (svc == NULL && err == FERRY_ENOMEM) {
        conn_send_error(c, f->id, FERRY_ENOMEM, NULL);
        return;
    }
    if (svc == NULL) {
        snprintf(msg, sizeof(msg), "too many services (max_services %u)",
                 (unsigned)cfg->max_services);
        conn_send_error(c, f->id, FERRY_EOVERLOADED, msg);
        return;
    }
    if (reg != NULL) {
        reg->credit = g.credit;
    } else {
        if (s->n_regs == s->cap_regs) {
            uint32_t cap = s->cap_regs ? s->cap_regs * 2 : 4;
            struct wreg **v = realloc(s->regs, cap * sizeof(*v));
            if (v == NULL) {
                goto out_nomem;
            }
            s->regs = v;
            s->cap_regs = cap;
        }
        reg = calloc(1, sizeof(*reg));
        if (reg == NULL) {
            goto out_nomem;
        }
        reg->worker = s;
        reg->svc = svc;
        reg->credit = g.credit;
        if (service_add_reg(svc, reg) != FERRY_OK) {
            free(reg);
            goto out_nomem;
        }
        s->regs[s->n_regs++] = reg;
        session_worker_emit(c, svc, "joined");
    }
    conn_send_empty(c, FRAME_REGISTERED, f->id);
    log_info("worker '%s' at '%s' serves '%s' with credit %u", c->name, c->peer,
             svc->name, g.credit);
    broker_dispatch(b, svc);
    return;

out_nomem:
    conn_send_error(c, f->id, FERRY_ENOMEM, NULL);
    broker_maybe_free_service(b, svc);
}

void
session_drain(struct conn *c, const char *why)
{
    struct session *s = c->data;

    if (s->draining) {
        return;
    }
    s->draining = true;
    conn_set_state(c, CONN_DRAINING);
    log_info("worker '%s' at '%s' draining (%s), %u requests held", c->name,
             c->peer, why, s->held_count);
    for (size_t i = 0; i < s->n_regs; i++) {
        if (service_active_workers(s->regs[i]->svc) == 0) {
            broker_rearm_queue(s->b, s->regs[i]->svc);
        }
    }
}

/* An answer (REPLY, or ERROR with an id) to a request this conn holds:
 * a worker's, or a peer node's to what this node forwarded it. */
static ferry_err
session_answer_frame(struct conn *c, const struct frame *f)
{
    struct broker *b = c->loop->broker;
    struct frame_error e;

    if (f->type == FRAME_REPLY) {
        broker_worker_reply(b, c, f->id, f->body);
        return FERRY_OK;
    }
    if (f->id == 0) {
        return session_common_frame(c, f);
    }
    if (frame_parse_error(f, &e) != FERRY_OK) {
        conn_fail(c, FERRY_EPROTO, "malformed ERROR");
        return FERRY_OK;
    }
    broker_worker_error(b, c, f->id, &e);
    return FERRY_OK;
}

static ferry_err
session_worker_frame(struct conn *c, const struct frame *f)
{
    switch (f->type) {
    case FRAME_REGISTER:
        session_register(c, f);
        return FERRY_OK;
    case FRAME_REPLY:
    case FRAME_ERROR:
        return session_answer_frame(c, f);
    case FRAME_DRAIN:
        if (frame_check_empty(f) != FERRY_OK) {
            conn_fail(c, FERRY_EPROTO, "malformed DRAIN");
            return FERRY_OK;
        }
        session_drain(c, "it asked");
        return FERRY_OK;
    default:
        return session_common_frame(c, f);
    }
}

/* ---- peer links ---- */

static bool
session_peer_can_read(const struct conn *c)
{
    const struct session *s = c->data;

    return s == NULL || s->inflight.n < c->loop->cfg->cluster_peer_credit;
}

static void
session_peer_closing(struct conn *c)
{
    struct broker *b = c->loop->broker;

    if (c->data != NULL && b->on_peer_down != NULL) {
        b->on_peer_down(b, c);
    }
    session_closing(c);
}

/* A peer's frames: its requests (REQUEST, CANCEL) as a caller's, and its
 * answers to ours (REPLY, ERROR with an id) as a worker's. */
static ferry_err
session_peer_frame(struct conn *c, const struct frame *f)
{
    switch (f->type) {
    case FRAME_REPLY:
    case FRAME_ERROR:
        return session_answer_frame(c, f);
    case FRAME_REQUEST:
    case FRAME_CANCEL:
    case FRAME_PING:
        return session_common_frame(c, f);
    default: {
        char msg[64];
        snprintf(msg, sizeof(msg), "unexpected %s from a peer",
                 frame_type_name(f->type));
        conn_fail(c, FERRY_EPROTO, msg);
        return FERRY_OK;
    }
    }
}

uint32_t
session_peer_heartbeat_ms(const struct config *cfg)
{
    uint32_t hb = cfg->cluster_lease_ms / 6;

    return hb < 100 ? 100 : hb;
}

ferry_err
session_peer_hello(struct conn *c, const char *self)
{
    const struct config *cfg = c->loop->cfg;
    struct slice name = slice_str(self);
    struct slice token = slice_str(cfg->worker_token != NULL ? cfg->worker_token
                                                             : "");
    size_t n = frame_hello_size(FERRY_PROTOCOL_VERSION, name.len, token.len);
    uint8_t *p = conn_out_prepare(c, n);

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    c->hb_ms = session_peer_heartbeat_ms(cfg);
    conn_out_commit(c, frame_write_hello(p, FERRY_PROTOCOL_VERSION,
                                         FRAME_ROLE_PEER, c->hb_ms,
                                         cfg->max_frame, name, token));
    return FERRY_OK;
}

/* The dialled peer's answer to our HELLO: the link is up. */
static ferry_err
session_peer_hello_ok(struct conn *c, const struct frame *f)
{
    struct broker *b = c->loop->broker;
    struct frame_hello_ok h;
    struct session *s;

    if (f->type == FRAME_ERROR) {
        struct frame_error e;
        if (frame_parse_error(f, &e) == FERRY_OK) {
            log_warn("peer at '%s' refused the link: %s %.*s", c->peer,
                     ferry_errname((ferry_err)e.code), (int)e.msg.len,
                     (const char *)e.msg.p);
        }
        conn_close(c, "peer refused HELLO");
        return FERRY_OK;
    }
    if (f->type != FRAME_HELLO_OK || frame_parse_hello_ok(f, &h) != FERRY_OK) {
        conn_fail(c, FERRY_EPROTO, "expected HELLO_OK");
        return FERRY_OK;
    }
    s = session_new(c, FRAME_ROLE_PEER, h.max_frame);
    if (s == NULL) {
        return FERRY_OK;
    }
    c->data = s;
    conn_set_ops(c, &session_peer_ops);
    conn_set_state(c, CONN_READY);
    conn_start_heartbeat(c, h.heartbeat_ms);
    log_debug("peer link to '%s' up", c->peer);
    b->on_peer_up(b, c);
    return FERRY_OK;
}
