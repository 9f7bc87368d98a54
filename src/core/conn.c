/* SPDX-License-Identifier: MIT */
/*
 * conn.c - reading, decoding, writing and closing ferryd's connections.
 *
 * Every byte from a client enters here: frame_decode() cuts whole frames
 * out of what was read and the role's ops handle them. A conn that holds
 * no partial frame reads into the loop's one shared buffer (loop->rbuf),
 * and only the bytes left over (a frame cut by the read, or frames left
 * for a later turn) are copied into its own input buffer; a busy
 * connection so reuses the same hot memory. A conn with bytes pending
 * reads into its own buffer, after them. Output collects in one half of a
 * double buffer and the loop's prepare hook writes it with one uv_write
 * per turn. Each of the three buffers takes a block from the loop's pool
 * (loop->bufs) when it gets bytes and puts it back once they are decoded
 * or written, so an idle connection holds no buffer at all. Closing is
 * done in two steps (conn_close, then uv_close from conn_destroy) so that
 * nothing frees a conn while a callback chain still uses it.
 */
#include "core/conn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"

static void conn_timer_cb(struct timer *t);
static void conn_arm(struct conn *c);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static const char *const conn_state_names[] = {"handshake", "ready", "draining",
                                               "closing"};

/* The peer and name of a conn before they are known; never freed. */
static char conn_no_text[1];

void
conn_set_state(struct conn *c, enum conn_state state)
{
    static const bool allowed[4][4] = {
        /* to:      HANDSHAKE READY  DRAINING CLOSING */
        [CONN_HANDSHAKE] = {false, true, false, true},
        [CONN_READY] = {false, false, true, true},
        [CONN_DRAINING] = {false, false, false, true},
        [CONN_CLOSING] = {false, false, false, false},
    };

    assert(allowed[c->state][state]);
    (void)allowed;
    log_debug("conn %llu '%s': %s -> %s", (unsigned long long)c->id, c->peer,
              conn_state_names[c->state], conn_state_names[state]);
    c->state = state;
}

static void
conn_mark_dirty(struct conn *c)
{
    if (list_is_empty(&c->dirty_node) && !c->destroyed) {
        list_push_back(&c->loop->dirty, &c->dirty_node);
    }
}

/* Replaces *dst, owned or conn_no_text, with a copy of text. */
static ferry_err
conn_copy_text(char **dst, const char *text)
{
    char *p = strdup(text);

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    if (*dst != conn_no_text) {
        free(*dst);
    }
    *dst = p;
    return FERRY_OK;
}

static void
conn_free_text(char **text)
{
    if (*text != conn_no_text) {
        free(*text);
    }
    *text = conn_no_text;
}

ferry_err
conn_set_name(struct conn *c, const char *name)
{
    return conn_copy_text(&c->name, name);
}

/* Sets c->peer: the listener's label for a unix socket, else "ip:port". */
static ferry_err
conn_peer_text(struct conn *c, bool is_unix, const char *label)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    char text[ADDR_MAX_TEXT];

    if (is_unix) {
        return conn_copy_text(&c->peer, label);
    }
    snprintf(text, sizeof(text), "unknown");
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0) {
        return conn_copy_text(&c->peer, text);
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(text, sizeof(text), "%s:%u", ip, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(in6, ip, sizeof(ip));
        snprintf(text, sizeof(text), "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    return conn_copy_text(&c->peer, text);
}

static void
conn_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct loop *l = c->loop;

    list_remove(&c->all_node);
    bufpool_put(&l->bufs, &c->in);
    bufpool_put(&l->bufs, &c->out[0]);
    bufpool_put(&l->bufs, &c->out[1]);
    conn_free_text(&c->peer);
    conn_free_text(&c->name);
    free(c);
    l->n_alive--;
    if (l->stopping && l->n_alive == 0 && l->on_empty != NULL) {
        l->on_empty(l);
    }
}

void
conn_accept(struct loop *l, uv_stream_t *server, bool is_unix,
            const char *label)
{
    conn_accept_as(l, server, is_unix, label, l->accept_ops);
}

/* A new conn of l with ops, in HANDSHAKE, its handle not yet inited. */
static struct conn *
conn_new(struct loop *l, const struct conn_ops *ops)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->loop = l;
    c->id = l->next_conn_id++;
    c->state = CONN_HANDSHAKE;
    c->ops = ops;
    c->peer = conn_no_text;
    c->name = conn_no_text;
    buf_init(&c->in);
    buf_init(&c->out[0]);
    buf_init(&c->out[1]);
    list_init(&c->all_node);
    list_init(&c->dirty_node);
    list_init(&c->backlog_node);
    timer_init(&c->tm, conn_timer_cb);
    c->accepted_at = c->last_rx = c->last_tx = loop_now(l);
    return c;
}

void
conn_accept_as(struct loop *l, uv_stream_t *server, bool is_unix,
               const char *label, const struct conn_ops *ops)
{
    struct conn *c = conn_new(l, ops);
    int rc;

    if (c == NULL) {
        log_error("listener '%s': out of memory accepting a connection", label);
        return;
    }
    if (is_unix) {
        rc = uv_pipe_init(&l->uv, &c->h.pipe, 0);
    } else {
        rc = uv_tcp_init(&l->uv, &c->h.tcp);
    }
    if (rc != 0) {
        log_error("listener '%s': %s", label, uv_strerror(rc));
        free(c);
        return;
    }
    c->h.handle.data = c;
    list_push_back(&l->all, &c->all_node);
    l->n_alive++;
    l->n_conns++;
    if (map_put(&l->conns, c->id, c) != FERRY_OK) {
        l->n_conns--;
        c->state = CONN_CLOSING;
        rc = uv_accept(server, &c->h.stream);
        c->destroyed = true;
        uv_close(&c->h.handle, conn_close_cb);
        log_error("listener '%s': out of memory accepting a connection", label);
        return;
    }
    rc = uv_accept(server, &c->h.stream);
    if (rc != 0) {
        log_warn("listener '%s': accept: %s", label, uv_strerror(rc));
        conn_destroy(c);
        return;
    }
    if (!is_unix) {
        uv_tcp_nodelay(&c->h.tcp, 1);
    }
    if (conn_peer_text(c, is_unix, label) != FERRY_OK) {
        log_error("listener '%s': out of memory accepting a connection", label);
        conn_destroy(c);
        return;
    }
    log_debug("conn %llu '%s': accepted", (unsigned long long)c->id, c->peer);
    if (l->n_conns > l->cfg->max_connections) {
        l->conns_refused++;
        log_warn("conn '%s': refused, %u connections open", c->peer,
                 l->cfg->max_connections);
        if (ops->bytes != NULL) {
            conn_close(c, "too many connections");
        } else {
            conn_fail(c, FERRY_EOVERLOADED, "too many connections");
        }
        return;
    }
    if (ops->bytes != NULL) {
        conn_set_state(c, CONN_READY);
    } else if (loop_timer_start(l, &c->tm,
                         c->accepted_at + l->cfg->handshake_timeout_ms) !=
        FERRY_OK) {
        conn_destroy(c);
        return;
    }
    rc = uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        c->sys_err = rc;
        conn_close(c, uv_strerror(rc));
        return;
    }
    c->reading = true;
}

/* What conn_connect() keeps while the connect is under way. */
struct conn_dial {
    uv_connect_t req;                /* the connect */
    struct conn *c;                  /* the conn: alive until its close
                                        callback, which runs after this
                                        request's callback */
    void (*connected)(struct conn *c); /* called once it is up */
};

static void
conn_connect_cb(uv_connect_t *req, int status)
{
    struct conn_dial *d = container_of(req, struct conn_dial, req);
    struct conn *c = d->c;
    void (*connected)(struct conn *) = d->connected;
    int rc;

    free(d);
    if (c->state == CONN_CLOSING) {
        return; /* closed while connecting (timeout, shutdown) */
    }
    if (status != 0) {
        c->sys_err = status;
        conn_close(c, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->h.tcp, 1);
    c->last_rx = c->last_tx = loop_now(c->loop);
    rc = uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        c->sys_err = rc;
        conn_close(c, uv_strerror(rc));
        return;
    }
    c->reading = true;
    connected(c);
}

struct conn *
conn_connect(struct loop *l, const struct addr *to, const struct conn_ops *ops,
             void (*connected)(struct conn *c))
{
    struct conn *c = conn_new(l, ops);
    struct conn_dial *d = calloc(1, sizeof(*d));
    int rc;

    if (c == NULL || d == NULL || conn_copy_text(&c->peer, to->text) != FERRY_OK) {
        if (c != NULL) {
            conn_free_text(&c->peer);
        }
        free(c);
        free(d);
        return NULL;
    }
    rc = uv_tcp_init(&l->uv, &c->h.tcp);
    if (rc != 0) {
        conn_free_text(&c->peer);
        free(c);
        free(d);
        return NULL;
    }
    c->h.handle.data = c;
    list_push_back(&l->all, &c->all_node);
    l->n_alive++;
    l->n_conns++;
    d->c = c;
    d->connected = connected;
    /* Neither failure here tells ops: the caller gets NULL instead. */
    rc = uv_tcp_connect(&d->req, &c->h.tcp, (const struct sockaddr *)&to->ss,
                        conn_connect_cb);
    if (rc != 0) {
        free(d);
    }
    if (rc != 0 || map_put(&l->conns, c->id, c) != FERRY_OK) {
        l->n_conns--;
        c->state = CONN_CLOSING;
        c->destroyed = true;
        uv_close(&c->h.handle, conn_close_cb);
        return NULL;
    }
    /* The handshake timer bounds the connect and the HELLO_OK. */
    if (loop_timer_start(l, &c->tm,
                         c->accepted_at + l->cfg->handshake_timeout_ms) !=
        FERRY_OK) {
        conn_close(c, "out of memory");
        return c;
    }
    return c;
}

bool
conn_is_writable(const struct conn *c)
{
    return c->state != CONN_CLOSING &&
           conn_out_pending(c) < c->loop->cfg->high_water;
}

static void
conn_pause(struct conn *c)
{
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
        log_debug("conn %llu '%s': reading paused", (unsigned long long)c->id,
                  c->peer);
    }
    c->paused = true;
    list_remove(&c->backlog_node);
}

static void
conn_resume(struct conn *c)
{
    int rc;

    if (c->state == CONN_CLOSING || c->reading) {
        c->paused = false;
        return;
    }
    if (c->ops->can_read != NULL && !c->ops->can_read(c)) {
        return;
    }
    c->paused = false;
    rc = uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        c->sys_err = rc;
        c->failed = true;
        conn_mark_dirty(c);
        return;
    }
    c->reading = true;
    log_debug("conn %llu '%s': reading resumed", (unsigned long long)c->id,
              c->peer);
    if (buf_len(&c->in) > 0) {
        list_remove(&c->backlog_node);
        list_push_back(&c->loop->backlog, &c->backlog_node);
        loop_wake_backlog(c->loop);
    }
}

uint8_t *
conn_out_prepare(struct conn *c, size_t n)
{
    struct buf *b = &c->out[c->out_cur];
    uint64_t limit = c->loop->cfg->output_limit;
    uint8_t *p = NULL;

    if (c->state == CONN_CLOSING || c->failed || c->over_limit) {
        return NULL;
    }
    if (limit != 0 && conn_out_pending(c) + n > limit) {
        /* Closing here could re-enter whoever is sending; defer it. */
        c->over_limit = true;
        conn_mark_dirty(c);
        return NULL;
    }
    if (b->data != NULL || bufpool_get(&c->loop->bufs, b) == FERRY_OK) {
        size_t cap = b->cap;
        p = buf_prepare(b, n);
        if (b->cap > cap) {
            mem_note_alloc(c->loop, b->cap - cap);
        }
    }
    if (p == NULL) {
        /* Closing here could re-enter whoever is sending; defer it. */
        c->sys_err = ENOMEM;
        c->failed = true;
        conn_mark_dirty(c);
    }
    return p;
}

/* Reading stops only above high_water, the soft limit is far above it:
 * this is the one check per frame. */
static void
conn_soft_check(struct conn *c)
{
    uint64_t soft = c->loop->cfg->output_soft_limit;

    if (soft != 0 && c->soft_since_s == 0 && conn_out_pending(c) > soft &&
        (c->state == CONN_READY || c->state == CONN_DRAINING)) {
        c->soft_since_s = (uint32_t)(loop_now(c->loop) / 1000) + 1;
        conn_arm(c);
    }
}

/* Output went down: forget the soft limit's clock once below it. */
static void
conn_soft_reset(struct conn *c)
{
    if (c->soft_since_s != 0 &&
        conn_out_pending(c) <= c->loop->cfg->output_soft_limit) {
        c->soft_since_s = 0;
    }
}

void
conn_out_commit(struct conn *c, size_t n)
{
    buf_commit(&c->out[c->out_cur], n);
    c->last_tx = loop_now(c->loop);
    conn_mark_dirty(c);
    if (conn_out_pending(c) > c->loop->cfg->high_water) {
        conn_soft_check(c);
    }
    if (c->ops->pause_on_high && c->reading &&
        conn_out_pending(c) > c->loop->cfg->high_water) {
        conn_pause(c);
    }
}

ferry_err
conn_send_error(struct conn *c, uint64_t id, ferry_err code, const char *msg)
{
    struct slice m = slice_str(msg != NULL ? msg : ferry_strerror(code));
    uint8_t *p = conn_out_prepare(c, frame_error_size(m.len));

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    conn_out_commit(c, frame_write_error(p, id, (uint16_t)code, m));
    return FERRY_OK;
}

ferry_err
conn_send_empty(struct conn *c, uint8_t type, uint64_t id)
{
    uint8_t *p = conn_out_prepare(c, FRAME_HEADER_SIZE);

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    conn_out_commit(c, frame_write_empty(p, type, id));
    return FERRY_OK;
}

void
conn_fail(struct conn *c, ferry_err code, const char *msg)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    if (msg == NULL) {
        msg = ferry_strerror(code);
    }
    log_info("%s '%s': %s: %s", c->ops->role, c->peer, ferry_errname(code),
             msg);
    conn_send_error(c, 0, code, msg);
    conn_close(c, msg);
}

/* First half of closing: out of the map, requests failed, no more input. */
static void
conn_begin_close(struct conn *c, const char *reason)
{
    struct loop *l = c->loop;

    log_debug("conn %llu '%s': closing: %s", (unsigned long long)c->id, c->peer,
              reason);
    conn_set_state(c, CONN_CLOSING);
    map_del(&l->conns, c->id);
    l->n_conns--;
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    c->paused = false;
    list_remove(&c->backlog_node);
    buf_clear(&c->in);
    c->ops->closing(c);
}

void
conn_abort(struct conn *c, ferry_err code, const char *msg)
{
    uint8_t frame[512];
    struct slice m = slice_str(msg);

    if (c->state == CONN_CLOSING || c->destroyed) {
        return;
    }
    bufpool_put(&c->loop->bufs, &c->out[c->out_cur]);
    c->over_limit = false;
    /* With a write in progress the socket takes nothing more now. */
    if (!c->writing && c->ops->bytes == NULL &&
        frame_error_size(m.len) <= sizeof(frame)) {
        uv_buf_t ub;
        ub.base = (char *)frame;
        ub.len = frame_write_error(frame, 0, (uint16_t)code, m);
        (void)uv_try_write(&c->h.stream, &ub, 1);
    }
    conn_begin_close(c, msg);
    conn_destroy(c);
}

void
conn_close(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    conn_begin_close(c, reason);
    if (conn_out_pending(c) == 0 && !c->writing) {
        conn_destroy(c);
        return;
    }
    if (loop_timer_start(c->loop, &c->tm, loop_now(c->loop) + CONN_LINGER_MS) !=
        FERRY_OK) {
        conn_destroy(c);
        return;
    }
    conn_mark_dirty(c);
}

void
conn_destroy(struct conn *c)
{
    if (c->destroyed) {
        return;
    }
    if (c->state != CONN_CLOSING) {
        conn_begin_close(c, "shutting down");
    }
    c->destroyed = true;
    loop_timer_stop(c->loop, &c->tm);
    list_remove(&c->dirty_node);
    list_remove(&c->backlog_node);
    uv_close(&c->h.handle, conn_close_cb);
}

static void
conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    int rc;

    if (c->destroyed) {
        return;
    }
    if (status < 0) {
        conn_destroy(c);
        return;
    }
    /* Read until the peer's EOF so unread input does not turn our last
     * frames into a reset; the linger timer bounds the wait. */
    rc = uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);
    if (rc != 0) {
        conn_destroy(c);
        return;
    }
    c->reading = true;
}

/* A closing conn has written everything: half-close, then wait for EOF. */
static void
conn_finish_close(struct conn *c)
{
    int rc;

    if (c->shut) {
        return;
    }
    c->shut = true;
    c->req.shutdown.data = c;
    rc = uv_shutdown(&c->req.shutdown, &c->h.stream, conn_shutdown_cb);
    if (rc != 0) {
        conn_destroy(c);
    }
}

/* Bookkeeping after output was written: closing, resuming a reader. */
static void
conn_after_write(struct conn *c)
{
    conn_soft_reset(c);
    if (buf_len(&c->out[c->out_cur]) > 0 || c->state == CONN_CLOSING) {
        conn_mark_dirty(c);
    }
    if (c->paused && conn_out_pending(c) <= c->loop->cfg->low_water) {
        conn_resume(c);
    }
}

static void
conn_write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    struct buf *done = &c->out[c->out_cur ^ 1];

    c->writing = false;
    if (c->destroyed) {
        return;
    }
    bufpool_put(&c->loop->bufs, done);
    if (status < 0) {
        c->sys_err = status;
        if (c->state == CONN_CLOSING) {
            conn_destroy(c);
        } else {
            conn_close(c, uv_strerror(status));
        }
        return;
    }
    conn_after_write(c);
}

/* A write failed: give up on the output and close. */
static void
conn_write_failed(struct conn *c, struct buf *b, int rc)
{
    bufpool_put(&c->loop->bufs, b);
    c->sys_err = rc;
    if (c->state == CONN_CLOSING) {
        conn_destroy(c);
    } else {
        conn_close(c, uv_strerror(rc));
    }
}

/*
 * Writes the collecting buffer: first uv_try_write, which needs no request
 * and no completion callback (and so no epoll change) when the socket takes
 * everything, as it usually does; whatever is left goes out with one
 * uv_write while new frames collect in the other buffer.
 */
static void
conn_flush(struct conn *c)
{
    struct buf *b = &c->out[c->out_cur];
    uv_buf_t ub;
    int rc;

    if (c->destroyed) {
        return;
    }
    if (c->over_limit && c->state != CONN_CLOSING) {
        /* Checked before the write in progress: a peer that does not read
         * never completes it. */
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "output above output_limit (%llu bytes): not read",
                 (unsigned long long)c->loop->cfg->output_limit);
        c->loop->mem.closed_output++;
        log_warn("%s '%s': %s, closing", c->ops->role, c->peer, msg);
        conn_abort(c, FERRY_ESLOW_CONSUMER, msg);
        return;
    }
    if (c->writing) {
        return;
    }
    if (c->failed && c->state != CONN_CLOSING) {
        log_warn("%s '%s': out of memory, closing", c->ops->role, c->peer);
        conn_close(c, "out of memory");
        return;
    }
    if (buf_len(b) == 0) {
        if (c->state == CONN_CLOSING) {
            conn_finish_close(c);
        }
        return;
    }
    ub.base = (char *)buf_head(b);
    ub.len = buf_len(b);
    rc = uv_try_write(&c->h.stream, &ub, 1);
    if (rc >= 0 && (size_t)rc == ub.len) {
        bufpool_put(&c->loop->bufs, b);
        conn_soft_reset(c);
        if (c->state == CONN_CLOSING) {
            conn_finish_close(c);
        } else if (c->paused &&
                   conn_out_pending(c) <= c->loop->cfg->low_water) {
            conn_resume(c);
        }
        return;
    }
    if (rc < 0 && rc != UV_EAGAIN) {
        conn_write_failed(c, b, rc);
        return;
    }
    if (rc > 0) {
        buf_consume(b, (size_t)rc);
        ub.base = (char *)buf_head(b);
        ub.len = buf_len(b);
    }
    c->out_cur ^= 1;
    c->writing = true;
    c->req.write.data = c;
    rc = uv_write(&c->req.write, &c->h.stream, &ub, 1, conn_write_cb);
    if (rc != 0) {
        c->writing = false;
        conn_write_failed(c, b, rc);
    }
}

void
conn_flush_dirty(struct loop *l)
{
    while (!list_is_empty(&l->dirty)) {
        struct list *n = l->dirty.next;
        list_remove(n);
        conn_flush(container_of(n, struct conn, dirty_node));
    }
}

static void
conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    struct buf *shared = &c->loop->rbuf;
    size_t want = CONN_READ_MIN;
    size_t have = buf_len(&c->in);
    size_t cap;

    if (c->state == CONN_CLOSING) {
        bufpool_put(&c->loop->bufs, &c->in);
    }
    if (have == 0 || c->state == CONN_CLOSING) {
        /* Emptied by the read callback of whichever conn used it last. */
        buf_clear(shared);
        if (buf_reserve(shared, CONN_READ_SIZE) != FERRY_OK) {
            b->base = NULL;
            b->len = 0;
            return;
        }
        b->base = (char *)buf_tail(shared);
        b->len = buf_room(shared);
        return;
    }
    if (c->ops->bytes != NULL) {
        /* A data block being cut: grow towards it as its bytes come. */
        if (c->in_need > have && c->in_need - have > want) {
            size_t step = have > CONN_READ_SIZE ? have : CONN_READ_SIZE;
            want = c->in_need - have < step ? c->in_need - have : step;
        }
    } else if (have >= FRAME_HEADER_SIZE) {
        const uint8_t *p = buf_head(&c->in);
        uint64_t body = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
                        (uint64_t)p[2] << 8 | p[3];
        uint64_t total = FRAME_HEADER_SIZE + body;
        /* Wait for a whole large frame in one buffer (the size was
         * checked against max_frame when the header was decoded), grown
         * as its bytes come: reserving all of it at the header would let
         * a peer that sends headers only make ferryd hold max_frame per
         * connection. Large blocks are mmap'd (core/mem.c), so growing
         * one is a mremap, not a copy. */
        if (body <= c->loop->cfg->max_frame && total > have &&
            total - have > want) {
            size_t step = have > CONN_READ_SIZE ? have : CONN_READ_SIZE;
            want = total - have < step ? (size_t)(total - have) : step;
        }
    }
    /* Else whatever room the block has: a cut frame rarely fills it, so
     * the read needs no larger buffer. */
    cap = c->in.cap;
    if (buf_reserve(&c->in, want) != FERRY_OK) {
        b->base = NULL;
        b->len = 0;
        return;
    }
    if (c->in.cap > cap) {
        mem_note_alloc(c->loop, c->in.cap - cap);
    }
    b->base = (char *)buf_tail(&c->in);
    b->len = buf_room(&c->in);
}

/* Decodes and handles whole frames of in (c's own buffer or the shared
 * one), up to the budget; puts c's own buffer back once it is empty. */
static void
conn_process_from(struct conn *c, struct buf *in)
{
    const struct config *cfg = c->loop->cfg;
    unsigned budget = CONN_FRAME_BUDGET;
    char msg[128];

    while (c->state != CONN_CLOSING && !c->destroyed) {
        struct frame f;
        size_t used = 0;
        ferry_err err;

        if ((c->ops->pause_on_high && conn_out_pending(c) > cfg->high_water) ||
            (c->ops->can_read != NULL && !c->ops->can_read(c))) {
            conn_pause(c);
            break;
        }
        if (budget == 0) {
            if (list_is_empty(&c->backlog_node)) {
                list_push_back(&c->loop->backlog, &c->backlog_node);
            }
            loop_wake_backlog(c->loop);
            break;
        }
        if (c->ops->bytes != NULL) {
            size_t need = 0;
            used = c->ops->bytes(c, buf_head(in), buf_len(in), &need);
            c->in_need = (uint32_t)need;
            if (used == 0) {
                break;
            }
            budget--;
            if (c->state != CONN_CLOSING) {
                buf_consume(in, used);
            }
            continue;
        }
        err =
            frame_decode(buf_head(in), buf_len(in), cfg->max_frame, &f, &used);
        if (err == FERRY_ETOO_BIG) {
            const uint8_t *p = buf_head(in);
            snprintf(msg, sizeof(msg),
                     "frame body of %u bytes is above the limit of %u",
                     (unsigned)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                (uint32_t)p[2] << 8 | p[3]),
                     cfg->max_frame);
            conn_fail(c, err, msg);
            break;
        }
        if (err != FERRY_OK) {
            snprintf(msg, sizeof(msg), "unknown frame type %u",
                     buf_head(in)[4]);
            conn_fail(c, err, msg);
            break;
        }
        if (used == 0) {
            break;
        }
        budget--;
        err = c->ops->frame(c, &f);
        if (c->state != CONN_CLOSING) {
            buf_consume(in, used);
        }
        if (err != FERRY_OK) {
            conn_fail(c, err, NULL);
            break;
        }
    }
    /* Every way out comes here: no frame of c->in is in use any more. */
    if (buf_len(&c->in) == 0) {
        bufpool_put(&c->loop->bufs, &c->in);
    }
}

static void
conn_process(struct conn *c)
{
    conn_process_from(c, &c->in);
}

/*
 * Keeps what c left unread in the shared buffer (a cut frame, or frames
 * for a later turn) in its own buffer, which is empty: the shared one is
 * only read into then. Fails c when that cannot be allocated.
 */
static void
conn_keep_rest(struct conn *c, struct buf *shared)
{
    size_t n = buf_len(shared);

    if (n > 0 && c->state != CONN_CLOSING) {
        if ((c->in.data == NULL &&
             bufpool_get(&c->loop->bufs, &c->in) != FERRY_OK) ||
            buf_reserve(&c->in, n) != FERRY_OK) {
            conn_fail(c, FERRY_ENOMEM, NULL);
        } else {
            memcpy(buf_tail(&c->in), buf_head(shared), n);
            buf_commit(&c->in, n);
        }
    }
    buf_clear(shared);
}

static void
conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    struct buf *shared = &c->loop->rbuf;
    bool is_shared = b->base != NULL && (uint8_t *)b->base == shared->data;

    if (nread > 0) {
        if (c->state == CONN_CLOSING) {
            buf_clear(is_shared ? shared : &c->in);
            return;
        }
        c->last_rx = loop_now(c->loop);
        if (is_shared) {
            buf_commit(shared, (size_t)nread);
            conn_process_from(c, shared);
            conn_keep_rest(c, shared);
        } else {
            buf_commit(&c->in, (size_t)nread);
            conn_process(c);
        }
        mem_note_read(c->loop, (size_t)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    if (c->state == CONN_CLOSING) {
        conn_destroy(c);
        return;
    }
    c->sys_err = (int)nread;
    if (nread == UV_EOF) {
        conn_close(c, "closed by peer");
    } else if (nread == UV_ENOBUFS) {
        log_warn("%s '%s': out of memory, closing", c->ops->role, c->peer);
        conn_close(c, "out of memory");
    } else {
        conn_close(c, uv_strerror((int)nread));
    }
}

void
conn_run_backlog(struct loop *l)
{
    struct list work;

    if (list_is_empty(&l->backlog)) {
        return;
    }
    /* Take this turn's list so conns that re-queue wait for the next. */
    work.next = l->backlog.next;
    work.prev = l->backlog.prev;
    work.next->prev = &work;
    work.prev->next = &work;
    list_init(&l->backlog);
    while (!list_is_empty(&work)) {
        struct conn *c = container_of(work.next, struct conn, backlog_node);
        list_remove(&c->backlog_node);
        if (c->state != CONN_CLOSING && !c->paused) {
            conn_process(c);
        }
    }
}

void
conn_pause_reads(struct conn *c)
{
    if (c->reading && c->state != CONN_CLOSING && !c->destroyed) {
        conn_pause(c);
    }
}

void
conn_wake(struct conn *c)
{
    if (c->paused && conn_out_pending(c) <= c->loop->cfg->low_water) {
        conn_resume(c);
    }
}

static uint32_t
conn_own_hb(const struct conn *c)
{
    return c->hb_ms != 0 ? c->hb_ms : c->loop->cfg->heartbeat_ms;
}

static uint64_t
conn_heartbeat_due(const struct conn *c)
{
    uint64_t due = c->last_rx + 3 * (uint64_t)c->peer_hb_ms;
    uint32_t hb = conn_own_hb(c);

    if (hb > 0 && c->last_tx + hb < due) {
        due = c->last_tx + hb;
    }
    return due;
}

/* Loop ms at which output held above output_soft_limit closes c. */
static uint64_t
conn_soft_due(const struct conn *c)
{
    return ((uint64_t)c->soft_since_s + c->loop->cfg->output_soft_seconds) *
           1000;
}

/* Arms c's timer, past HELLO, for the earlier of its heartbeat check and
 * its soft limit's end; stops it when it needs neither. */
static void
conn_arm(struct conn *c)
{
    uint64_t due = UINT64_MAX;

    if (c->peer_hb_ms != 0) {
        due = conn_heartbeat_due(c);
    }
    if (c->soft_since_s != 0 && conn_soft_due(c) < due) {
        due = conn_soft_due(c);
    }
    if (due == UINT64_MAX) {
        loop_timer_stop(c->loop, &c->tm);
        return;
    }
    if (due <= loop_now(c->loop)) {
        due = loop_now(c->loop) + 1;
    }
    if (loop_timer_start(c->loop, &c->tm, due) != FERRY_OK) {
        c->failed = true;
        conn_mark_dirty(c);
    }
}

void
conn_start_heartbeat(struct conn *c, uint32_t peer_hb_ms)
{
    c->peer_hb_ms = peer_hb_ms;
    conn_arm(c);
}

static void
conn_timer_cb(struct timer *t)
{
    struct conn *c = container_of(t, struct conn, tm);
    uint64_t now = loop_now(c->loop);
    uint32_t hb = conn_own_hb(c);

    if (c->state == CONN_HANDSHAKE) {
        char msg[64];
        snprintf(msg, sizeof(msg), "no HELLO within %u ms",
                 c->loop->cfg->handshake_timeout_ms);
        log_info("client '%s': %s, closing", c->peer, msg);
        conn_send_error(c, 0, FERRY_ETIMED_OUT, msg);
        conn_close(c, "handshake timed out");
        return;
    }
    if (c->state == CONN_CLOSING) {
        conn_destroy(c);
        return;
    }
    if (c->soft_since_s != 0) {
        conn_soft_reset(c);
    }
    if (c->soft_since_s != 0 && now >= conn_soft_due(c)) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "output above output_soft_limit (%llu bytes) for %u s: "
                 "not read",
                 (unsigned long long)c->loop->cfg->output_soft_limit,
                 c->loop->cfg->output_soft_seconds);
        c->loop->mem.closed_soft++;
        log_warn("%s '%s': %s, closing", c->ops->role, c->peer, msg);
        conn_abort(c, FERRY_ESLOW_CONSUMER, msg);
        return;
    }
    if (c->peer_hb_ms == 0) {
        conn_arm(c);
        return;
    }
    if (now >= c->last_rx + 3 * (uint64_t)c->peer_hb_ms) {
        char msg[96];
        snprintf(msg, sizeof(msg), "silent for %llu ms, 3 x heartbeat %u ms",
                 (unsigned long long)(now - c->last_rx), c->peer_hb_ms);
        log_warn("%s '%s': %s, taken for dead", c->ops->role,
                 c->name[0] != '\0' ? c->name : c->peer, msg);
        conn_send_error(c, 0, FERRY_ETIMED_OUT, msg);
        conn_close(c, "heartbeat timed out");
        return;
    }
    if (hb > 0 && now >= c->last_tx + hb) {
        conn_send_empty(c, FRAME_PING, 0);
    }
    conn_arm(c);
}
