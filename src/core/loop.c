/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the per-loop machinery around libuv: the deadline heap behind
 * one uv_timer_t, the prepare hook that flushes every dirty connection
 * once per turn, the idle hook that finishes decoding for connections that
 * used up their frame budget, and the listeners.
 */
#include "core/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/mem.h"

/* Owned by the loop's listener list; freed from its close callback. */
struct listener {
    struct loop *loop; /* borrowed */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;                      /* the listening socket */
    bool is_unix;             /* a unix socket, unlinked on close */
    char path[ADDR_MAX_TEXT]; /* socket file of a unix listener */
    char text[ADDR_MAX_TEXT]; /* the address, for logs */
    const struct conn_ops *ops; /* borrowed: of its conns; NULL = the
                                   loop's accept_ops */
    struct listener *next;    /* owned: the next listener */
};

static void
loop_timer_cb(uv_timer_t *t)
{
    struct loop *l = t->data;

    l->timer_armed = UINT64_MAX;
    l->hrtime = 0;
    timer_heap_run(&l->timers, loop_now(l));
}

static void
loop_prepare_cb(uv_prepare_t *p)
{
    struct loop *l = p->data;
    uint64_t next;

    conn_flush_dirty(l);
    mem_step(l);
    l->hrtime = 0;
    next = timer_heap_next(&l->timers);
    if (next != l->timer_armed) {
        uint64_t now = loop_now(l);
        if (next == UINT64_MAX) {
            uv_timer_stop(&l->timer);
        } else {
            uv_timer_start(&l->timer, loop_timer_cb,
                           next > now ? next - now : 0, 0);
        }
        l->timer_armed = next;
    }
}

static void
loop_idle_cb(uv_idle_t *h)
{
    struct loop *l = h->data;

    conn_run_backlog(l);
    if (list_is_empty(&l->backlog)) {
        uv_idle_stop(&l->idle);
        l->idle_on = false;
    }
}

void
loop_wake_backlog(struct loop *l)
{
    if (!l->idle_on) {
        uv_idle_start(&l->idle, loop_idle_cb);
        l->idle_on = true;
    }
}

ferry_err
loop_init(struct loop *l, const struct config *cfg)
{
    memset(l, 0, sizeof(*l));
    if (uv_loop_init(&l->uv) != 0) {
        return FERRY_ESYS;
    }
    l->cfg = cfg;
    buf_init(&l->rbuf);
    bufpool_init(&l->bufs, BUFPOOL_MAX_FREE);
    map_init(&l->conns);
    l->next_conn_id = 1;
    list_init(&l->all);
    list_init(&l->dirty);
    list_init(&l->backlog);
    timer_heap_init(&l->timers);
    l->timer_armed = UINT64_MAX;
    uv_timer_init(&l->uv, &l->timer);
    l->timer.data = l;
    uv_prepare_init(&l->uv, &l->prepare);
    l->prepare.data = l;
    uv_prepare_start(&l->prepare, loop_prepare_cb);
    uv_idle_init(&l->uv, &l->idle);
    l->idle.data = l;
    return FERRY_OK;
}

static void
loop_walk_close_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

void
loop_release(struct loop *l)
{
    loop_close_listeners(l);
    uv_walk(&l->uv, loop_walk_close_cb, NULL);
    uv_run(&l->uv, UV_RUN_DEFAULT);
    uv_loop_close(&l->uv);
    buf_release(&l->rbuf);
    bufpool_release(&l->bufs);
    map_release(&l->conns);
    timer_heap_release(&l->timers);
}

ferry_err
loop_timer_start(struct loop *l, struct timer *t, uint64_t when)
{
    return timer_start(&l->timers, t, when);
}

void
loop_timer_stop(struct loop *l, struct timer *t)
{
    timer_stop(&l->timers, t);
}

struct conn *
loop_conn(const struct loop *l, uint64_t id)
{
    return map_get(&l->conns, id);
}

static void
loop_listener_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void
loop_connection_cb(uv_stream_t *server, int status)
{
    struct listener *ls = server->data;

    if (status < 0) {
        log_warn("listener '%s': %s", ls->text, uv_strerror(status));
        return;
    }
    if (ls->ops != NULL) {
        conn_accept_as(ls->loop, server, ls->is_unix, ls->text, ls->ops);
    } else {
        conn_accept(ls->loop, server, ls->is_unix, ls->text);
    }
}

/* Removes a unix socket file nobody listens on any more. */
static ferry_err
loop_remove_stale(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0) {
        return FERRY_OK;
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_error("listen on 'unix:%s': file exists and is not a socket", path);
        return FERRY_ESYS;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        return FERRY_ESYS;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return FERRY_ESYS;
    }
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (rc == 0) {
        log_error("listen on 'unix:%s': another process is listening there",
                  path);
        return FERRY_ESYS;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        log_error("listen on 'unix:%s': cannot remove stale socket: %s", path,
                  strerror(errno));
        return FERRY_ESYS;
    }
    log_debug("removed stale socket 'unix:%s'", path);
    return FERRY_OK;
}

static void
loop_bound_text(struct listener *ls, const char *given)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[64];

    snprintf(ls->text, sizeof(ls->text), "%s", given);
    if (ls->is_unix ||
        uv_tcp_getsockname(&ls->h.tcp, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    /* Show the port the kernel chose for ":0". */
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        const char *colon = strrchr(given, ':');
        if (colon != NULL && strcmp(colon, ":0") == 0) {
            uv_ip4_name(in, ip, sizeof(ip));
            snprintf(ls->text, sizeof(ls->text), "%s:%u", ip,
                     ntohs(in->sin_port));
        }
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        const char *colon = strrchr(given, ':');
        if (colon != NULL && strcmp(colon, ":0") == 0) {
            uv_ip6_name(in6, ip, sizeof(ip));
            snprintf(ls->text, sizeof(ls->text), "[%s]:%u", ip,
                     ntohs(in6->sin6_port));
        }
    }
}

ferry_err
loop_listen(struct loop *l, const char *text)
{
    return loop_listen_as(l, text, NULL);
}

ferry_err
loop_listen_as(struct loop *l, const char *text, const struct conn_ops *ops)
{
    struct listener *ls;
    struct addr a;
    int rc;

    if (addr_parse(text, &a) != FERRY_OK) {
        log_error("listen on '%s': bad address", text);
        return FERRY_EINVALID_ARGUMENT;
    }
    ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        return FERRY_ENOMEM;
    }
    ls->loop = l;
    ls->ops = ops;
    ls->is_unix = addr_is_unix(&a);
    snprintf(ls->text, sizeof(ls->text), "%s", text);
    if (ls->is_unix) {
        snprintf(ls->path, sizeof(ls->path), "%s", text + 5);
        if (loop_remove_stale(ls->path) != FERRY_OK) {
            free(ls);
            return FERRY_ESYS;
        }
        uv_pipe_init(&l->uv, &ls->h.pipe, 0);
        rc = uv_pipe_bind(&ls->h.pipe, ls->path);
        /* The umask decides the mode bind gives; connecting needs write,
         * so the group (php-fpm's user added to ferryd's group) is let in
         * by the mode set here, not by chance. Before listen: no one can
         * connect in between. */
        if (rc == 0 && chmod(ls->path, l->cfg->unix_socket_mode) != 0) {
            rc = uv_translate_sys_error(errno);
        }
    } else {
        uv_tcp_init(&l->uv, &ls->h.tcp);
        rc = uv_tcp_bind(&ls->h.tcp, (const struct sockaddr *)&a.ss, 0);
    }
    ls->h.handle.data = ls;
    if (rc == 0) {
        rc = uv_listen(&ls->h.stream, 511, loop_connection_cb);
    }
    if (rc != 0) {
        log_error("listen on '%s': %s", text, uv_strerror(rc));
        ls->is_unix = false; /* the file, if any, is not ours */
        uv_close(&ls->h.handle, loop_listener_close_cb);
        return FERRY_ESYS;
    }
    loop_bound_text(ls, text);
    ls->next = l->listeners;
    l->listeners = ls;
    log_info("listening on '%s'", ls->text);
    return FERRY_OK;
}

void
loop_close_listeners(struct loop *l)
{
    struct listener *ls = l->listeners;

    while (ls != NULL) {
        struct listener *next = ls->next;
        if (ls->is_unix) {
            unlink(ls->path);
        }
        uv_close(&ls->h.handle, loop_listener_close_cb);
        ls = next;
    }
    l->listeners = NULL;
}

void
loop_close_conns(struct loop *l)
{
    size_t k, pos = 0;
    uint64_t id, *ids = map_keys(&l->conns, &k);
    void *val;

    if (ids == NULL) {
        /* Out of memory (or none): close at once, one lookup at a time. */
        while (map_next(&l->conns, &pos, &id, &val)) {
            conn_destroy(val);
            pos = 0;
        }
        return;
    }
    for (size_t i = 0; i < k; i++) {
        struct conn *c = loop_conn(l, ids[i]);
        if (c != NULL) {
            conn_close(c, "shutting down");
        }
    }
    free(ids);
}

void
loop_destroy_conns(struct loop *l)
{
    struct list *n;

    for (n = l->all.next; n != &l->all; n = n->next) {
        conn_destroy(container_of(n, struct conn, all_node));
    }
}
