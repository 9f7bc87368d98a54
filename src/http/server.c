/* SPDX-License-Identifier: MIT */
/*
 * server.c - ferryd's HTTP side: h2o on the loop's own libuv loop.
 *
 * The server owns h2o's global config (one host), its context on the
 * loop, the listening sockets and a count of open connections. Accepted
 * sockets are handed to h2o, which speaks HTTP/1.1 with keep-alive and
 * HTTP/2 over cleartext with prior knowledge: the server reads the first
 * bytes itself and gives the socket to h2o's HTTP/2 side when they are
 * the connection preface, else to its HTTP/1 side, which never switches
 * protocol (`Upgrade: h2c` is ignored). Handlers registered by path
 * answer, some of them later from a broker callback. Paths are matched
 * longest first whatever the order of registration, and every path no
 * handler takes gets a JSON 404.
 */
#include "http/server.h"

#include <assert.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "core/list.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/sockstat.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"
#include "http/admin.h"
#include "http/dashboard.h"
#include "http/cache_routes.h"
#include "http/id_routes.h"
#include "http/gateway.h"
#include "http/kv_routes.h"
#include "http/queue_routes.h"
#include "http/route.h"

/* One listening socket; owned by the server, freed in its close cb. */
struct http_listener {
    uv_tcp_t tcp;               /* the socket; data = the server */
    struct http_listener *next; /* next in s->listeners */
};

/* One accepted connection: the libuv handle h2o's socket wraps. Pooled;
 * given back from the close callback h2o's socket runs. */
struct http_conn {
    uv_tcp_t tcp;              /* data = the server */
    struct http_server *s;     /* borrowed */
    h2o_socket_t *sock;        /* borrowed: h2o's socket, freed by h2o
                                  just before the close callback */
    struct list node;          /* on s->conns while open */
    uint64_t serial;           /* tells a reuse of the pooled struct */
    uint64_t shed_held;        /* what it held when shed, counted in
                                  loop->mem.shed_pending until closed */
    uint64_t out_held;         /* bytes of answers h2o holds for it
                                  (http_server_note_output()) */
    uint64_t done;             /* of the bytes received, what HTTP/2
                                  requests handed to handlers took (memory
                                  budget) */
    h2o_timeout_entry_t sniff; /* bounds the wait for the first bytes */
    struct timeval connected_at; /* for h2o's logs */
    struct list paused_node;     /* on s->paused while its reads wait */
    uint64_t turn;               /* s->turn when turn_read was counted */
    uint64_t turn_read;          /* bytes read in that turn */
    bool h1;                   /* has sent an HTTP/1.x request */
    bool shed;                 /* shut down by the memory bounds; h2o
                                  closes it on the EOF */
    bool sniffing;             /* ours until the first bytes tell */
    bool paused;               /* reading stopped by us, not by h2o */
    bool stall_shut;           /* shut down for a stalled answer */
};

/* The first handler of every path: counts what a request took of its
 * connection's bytes, then passes it on. */
struct http_count_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

#define HTTP_MAX_STOP_HOOKS 4 /* parts that end their answers at shutdown */

/* A part's call at shutdown (http_server_on_shutdown()). */
struct http_stop_hook {
    void (*cb)(void *arg); /* ends what the part keeps open */
    void *arg;             /* borrowed */
};

/* The first bytes of every HTTP/2 connection with prior knowledge. */
static const char http_server_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define HTTP_PREFACE_LEN (sizeof(http_server_preface) - 1)

/* Owned by main() through loop->http. */
struct http_server {
    struct loop *loop;               /* borrowed */
    h2o_globalconf_t globalconf;     /* h2o's config: one host */
    h2o_hostconf_t *host;            /* borrowed from globalconf */
    size_t root;                     /* index of "/" in host->paths */
    h2o_context_t ctx;               /* h2o's state on the loop */
    h2o_accept_ctx_t accept_ctx;     /* what h2o_accept needs */
    bool ctx_live;                   /* ctx initialised, not disposed */
    struct http_listener *listeners; /* owned list */
    struct pool conn_pool;           /* struct http_conn */
    size_t n_conns;                  /* accepted, not yet closed */
    struct list conns;               /* struct http_conn, open ones */
    struct map by_sock;              /* h2o socket -> struct http_conn */
    uint64_t refused;                /* closed at accept: over the limit */
    uint64_t next_serial;            /* of struct http_conn */
    struct route_table routes;       /* the REST routes */
    size_t max_body;                 /* largest body accepted */
    bool stopping;                   /* shutdown asked */
    uv_timer_t force;                /* ends the wait for connections */
    unsigned force_step;             /* 0: not fired; 1: sockets shut */
    struct http_stop_hook hooks[HTTP_MAX_STOP_HOOKS]; /* run at shutdown */
    size_t n_hooks;                  /* entries in hooks */
    struct list watched;             /* struct http_watch */
    uv_timer_t sweep;                /* checks them once a second */
    bool sweep_on;                   /* sweep started */
    uint64_t stalled;                /* connections shut for a stall */
    struct list jobs;                /* struct http_job, queued */
    uv_idle_t job_idle;              /* runs them, once a turn */
    bool job_idle_on;                /* job_idle started */
    uint64_t sse_dropped;            /* SSE events skipped */
    struct list peers;               /* struct http_peer_watch */
    uv_timer_t peer_tm;              /* polls their sockets */
    bool peer_on;                    /* peer_tm started */
    struct pollfd *peer_fds;         /* owned: room for the poll */
    size_t peer_cap;                 /* entries of peer_fds */
    uv_alloc_cb h2o_alloc_cb;        /* h2o's own, under the read hook */
    uv_read_cb h2o_read_cb;          /* ... */
    uv_prepare_t turn_prep;          /* resumes paused reads each turn */
    uint64_t turn;                   /* loop turns seen by turn_prep */
    struct list paused;              /* struct http_conn, reads paused */
    bool paused_all;                 /* every read paused for the budget */
    uint64_t reads_paused_turn;      /* reads paused: a turn's share */
    uint64_t reads_paused_memory;    /* reads paused: the budget */
};

struct loop *
http_server_loop(const struct http_server *s)
{
    return s->loop;
}

const struct route_table *
http_server_routes(const struct http_server *s)
{
    return &s->routes;
}

size_t
http_server_max_body(const struct http_server *s)
{
    return s->max_body;
}

uint64_t
http_server_n_refused(const struct http_server *s)
{
    return s->refused;
}

size_t
http_server_n_conns(const struct http_server *s)
{
    return s->n_conns;
}

uint64_t
http_server_n_stalled(const struct http_server *s)
{
    return s->stalled;
}

uint64_t
http_server_n_sse_dropped(const struct http_server *s)
{
    return s->sse_dropped;
}

void
http_server_count_sse_dropped(struct http_server *s, uint64_t n)
{
    s->sse_dropped += n;
}

static struct http_conn *http_server_conn_of(struct http_server *s,
                                             h2o_req_t *req);

/* Shuts down the socket under req's connection (see http_server_abort()). */
static void
http_server_shut_req(h2o_req_t *req)
{
    h2o_socket_t *sock = NULL;
    int fd;

    if (req->conn->callbacks->get_socket != NULL) {
        sock = req->conn->callbacks->get_socket(req->conn);
    }
    if (sock != NULL && (fd = h2o_socket_get_fd(sock)) >= 0) {
        shutdown(fd, SHUT_RDWR);
    }
}

static void
http_server_sweep_cb(uv_timer_t *t)
{
    struct http_server *s = t->data;
    uint64_t limit = s->loop->cfg->http_stall_timeout_ms;
    uint64_t now = loop_now(s->loop);
    struct http_conn *c;

    if (list_is_empty(&s->watched)) {
        uv_timer_stop(t);
        s->sweep_on = false;
        return;
    }
    if (limit == 0) {
        return;
    }
    for (struct list *n = s->watched.next; n != &s->watched; n = n->next) {
        struct http_watch *w = container_of(n, struct http_watch, node);
        if (w->since == 0 || w->stalled || now - w->since < limit) {
            continue;
        }
        /* h2o closes the connection on the failed write; the answer's
         * state goes with it (and unwatches itself). Counted once per
         * connection: the streams of one HTTP/2 connection that stall
         * together end together. */
        w->stalled = true;
        c = http_server_conn_of(s, w->req);
        if (c != NULL && c->stall_shut) {
            continue;
        }
        if (c != NULL) {
            c->stall_shut = true;
        }
        if (s->stalled++ % 100 == 0) {
            log_warn("http: a client took nothing of its answer for %llu ms "
                     "(http_stall_timeout_ms), closing its connection "
                     "(%llu so far)",
                     (unsigned long long)(now - w->since),
                     (unsigned long long)s->stalled);
        }
        http_server_shut_req(w->req);
    }
}

static void
http_server_job_cb(uv_idle_t *h)
{
    struct http_server *s = h->data;
    uint64_t start = uv_hrtime();

    /* Jobs queued by the ones that run go behind the others: each job
     * gets its turn before any gets a second one. */
    while (!list_is_empty(&s->jobs)) {
        struct http_job *j = container_of(s->jobs.next, struct http_job, node);
        list_remove(&j->node);
        j->queued = false;
        j->run(j);
        if (uv_hrtime() - start >= (uint64_t)HTTP_TURN_BUDGET_US * 1000) {
            break;
        }
    }
    if (list_is_empty(&s->jobs)) {
        uv_idle_stop(&s->job_idle);
        s->job_idle_on = false;
    }
}

void
http_server_job_queue(struct http_server *s, struct http_job *j)
{
    if (j->queued) {
        return;
    }
    j->queued = true;
    list_push_back(&s->jobs, &j->node);
    if (!s->job_idle_on) {
        uv_idle_start(&s->job_idle, http_server_job_cb);
        s->job_idle_on = true;
    }
}

void
http_server_job_cancel(struct http_job *j)
{
    if (j->queued) {
        list_remove(&j->node);
        j->queued = false;
    }
}

void
http_server_watch(struct http_server *s, struct http_watch *w,
                  h2o_req_t *req)
{
    w->req = req;
    w->since = 0;
    w->stalled = false;
    list_push_back(&s->watched, &w->node);
    if (!s->sweep_on) {
        uv_timer_start(&s->sweep, http_server_sweep_cb, 1000, 1000);
        s->sweep_on = true;
    }
}

void
http_server_unwatch(struct http_watch *w)
{
    list_remove(&w->node);
}

void
http_watch_sent(struct http_server *s, struct http_watch *w)
{
    w->since = loop_now(s->loop);
    if (w->since == 0) {
        w->since = 1;
    }
}

void
http_watch_taken(struct http_watch *w)
{
    w->since = 0;
}

/* The socket under req's connection, or -1. */
static int
http_server_req_fd(h2o_req_t *req)
{
    h2o_socket_t *sock = NULL;

    if (req->conn->callbacks->get_socket != NULL) {
        sock = req->conn->callbacks->get_socket(req->conn);
    }
    return sock != NULL ? h2o_socket_get_fd(sock) : -1;
}

/* Whether a poll's revents say the client has left. */
static bool
http_server_is_hangup(short revents)
{
    return (revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

bool
http_server_is_peer_gone(h2o_req_t *req)
{
    struct pollfd p;

    p.fd = http_server_req_fd(req);
    p.events = POLLRDHUP;
    p.revents = 0;
    if (p.fd < 0) {
        return false;
    }
    return poll(&p, 1, 0) == 1 && http_server_is_hangup(p.revents);
}

/*
 * Every HTTP_PEER_CHECK_MS while requests are watched: one poll() of all
 * their sockets, without waiting. The watches whose client left move to a
 * list of their own before any gone() runs, and each leaves it before its
 * own runs, so a gone() may unwatch any other watch (or answer, which
 * lets h2o free a request) safely.
 */
static void
http_server_peer_cb(uv_timer_t *t)
{
    struct http_server *s = t->data;
    struct list gone, *n, *next;
    size_t count = 0, i = 0;

    for (n = s->peers.next; n != &s->peers; n = n->next) {
        count++;
    }
    if (count == 0) {
        uv_timer_stop(t);
        s->peer_on = false;
        return;
    }
    if (count > s->peer_cap) {
        struct pollfd *v = realloc(s->peer_fds, count * sizeof(*v));
        if (v == NULL) {
            return; /* Tried again next time. */
        }
        s->peer_fds = v;
        s->peer_cap = count;
    }
    for (n = s->peers.next; n != &s->peers; n = n->next) {
        struct http_peer_watch *w =
            container_of(n, struct http_peer_watch, node);
        s->peer_fds[i].fd = http_server_req_fd(w->req);
        s->peer_fds[i].events = POLLRDHUP;
        s->peer_fds[i].revents = 0;
        i++;
    }
    if (poll(s->peer_fds, count, 0) <= 0) {
        return;
    }
    list_init(&gone);
    i = 0;
    for (n = s->peers.next; n != &s->peers; n = next, i++) {
        next = n->next;
        if (s->peer_fds[i].fd >= 0 &&
            http_server_is_hangup(s->peer_fds[i].revents)) {
            list_remove(n);
            list_push_back(&gone, n);
        }
    }
    while (!list_is_empty(&gone)) {
        struct http_peer_watch *w =
            container_of(gone.next, struct http_peer_watch, node);
        list_remove(&w->node);
        w->gone(w);
    }
}

void
http_server_watch_peer(struct http_server *s, struct http_peer_watch *w,
                       h2o_req_t *req, void (*gone)(struct http_peer_watch *w))
{
    w->req = req;
    w->gone = gone;
    list_push_back(&s->peers, &w->node);
    if (!s->peer_on) {
        uv_timer_start(&s->peer_tm, http_server_peer_cb, HTTP_PEER_CHECK_MS,
                       HTTP_PEER_CHECK_MS);
        s->peer_on = true;
    }
}

void
http_server_unwatch_peer(struct http_peer_watch *w)
{
    if (w->node.next != NULL) {
        list_remove(&w->node);
    }
}

/* The pathconf for path, created when new. Only valid until the next
 * registration: h2o keeps pathconfs by value in a growing vector. */
static h2o_pathconf_t *
http_server_pathconf(struct http_server *s, const char *path)
{
    h2o_hostconf_t *h = s->host;
    size_t n = strlen(path);

    for (size_t i = 0; i < h->paths.size; i++) {
        h2o_pathconf_t *pc = &h->paths.entries[i];
        if (pc->path.len == n && memcmp(pc->path.base, path, n) == 0) {
            return pc;
        }
    }
    return h2o_config_register_path(h, path, 0);
}

h2o_handler_t *
http_server_add_path(struct http_server *s, const char *path,
                     http_handler_cb cb, size_t handler_size)
{
    h2o_handler_t *h;

    if (handler_size < sizeof(h2o_handler_t)) {
        handler_size = sizeof(h2o_handler_t);
    }
    h = h2o_create_handler(http_server_pathconf(s, path), handler_size);
    h->on_req = cb;
    return h;
}

/* Longest path first, so that "/v1/stats/stream" wins over "/v1/stats"
 * and "/" comes last: h2o takes the first prefix that fits. */
static void
http_server_sort_paths(struct http_server *s)
{
    h2o_pathconf_t *v = s->host->paths.entries;
    size_t n = s->host->paths.size;

    for (size_t i = 1; i < n; i++) {
        h2o_pathconf_t tmp = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1].path.len < tmp.path.len) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = tmp;
    }
}

/* The JSON body that replaces h2o's own text error. */
struct http_json_ostream {
    h2o_ostream_t super; /* h2o's part */
    h2o_iovec_t body;    /* in the request's pool */
};

static void
http_server_json_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                      size_t bufcnt, h2o_send_state_t state)
{
    struct http_json_ostream *o = (struct http_json_ostream *)self;

    h2o_ostream_send_next(self, req, &o->body, 1, state);
}

/*
 * Errors h2o answers by itself before any handler runs (a body over
 * http_max_body: 413; a malformed body: 400) go through the host's
 * fallback path. This filter there turns their text into the same JSON
 * every other error has.
 */
static void
http_server_json_errors(h2o_filter_t *self, h2o_req_t *req,
                        h2o_ostream_t **slot)
{
    int status = req->res.status;
    struct http_json_ostream *o;
    const char *name, *msg;
    int code;
    char *json;
    int n;

    if (status == 413) {
        name = "TOO_BIG";
        code = FERRY_ETOO_BIG;
        msg = "request body larger than http_max_body";
    } else if (status == 400) {
        name = "INVALID_ARGUMENT";
        code = FERRY_EINVALID_ARGUMENT;
        msg = "malformed request";
    } else {
        h2o_setup_next_ostream(req, slot);
        return;
    }
    json = h2o_mem_alloc_pool(&req->pool, 128);
    n = snprintf(json, 128, "{\"error\":\"%s\",\"code\":%d,\"message\":\"%s\"}",
                 name, code, msg);
    memset(&req->res.headers, 0, sizeof(req->res.headers));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    req->res.content_length = (size_t)n;
    o = (struct http_json_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
    o->super.do_send = http_server_json_send;
    o->body = h2o_iovec_init(json, (size_t)n);
    slot = &o->super.next;
    h2o_setup_next_ostream(req, slot);
}

/* Bytes the kernel has received on c's socket so far (TCP_INFO), or 0
 * when it cannot tell. h2o's own sock->bytes_read is not kept up by its
 * libuv binding. */
static uint64_t
http_conn_received(const struct http_conn *c)
{
    uv_os_fd_t fd;

    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0) {
        return 0;
    }
    return sockstat_bytes_received(fd);
}

/*
 * Bytes a connection holds in requests not yet handed to a handler: its
 * socket's input buffer, where an HTTP/1.1 body in progress waits until
 * whole; and for a connection not known to speak HTTP/1.1, whose HTTP/2
 * stream bodies h2o keeps in buffers its public headers do not reach, the
 * bytes received less what the requests handled took (see
 * http_server_count_on_req()). A system call: only for scans.
 */
static uint64_t
http_conn_bytes(struct http_conn *c)
{
    const h2o_socket_t *sock = c->sock;
    uint64_t in = 0, got;

    if (sock->input != NULL && sock->input->bytes != NULL) {
        in = sock->input->capacity;
    }
    if (c->h1) {
        return in;
    }
    got = http_conn_received(c);
    if (c->done > got) {
        c->done = got;
    }
    return got - c->done > in ? got - c->done : in;
}

/* Shuts the socket down under h2o: it reads EOF and closes the
 * connection itself, freeing what it held, from its own callbacks. */
static void
http_server_shed(struct http_server *s, void *conn, const char *why)
{
    struct http_conn *c = conn;
    uv_os_fd_t fd;

    log_warn("http conn: holds %llu bytes of unfinished requests and "
             "%llu of answers, closed for %s",
             (unsigned long long)http_conn_bytes(c),
             (unsigned long long)c->out_held, why);
    c->shed = true;
    c->shed_held = http_conn_bytes(c) + c->out_held;
    s->loop->mem.shed_pending += c->shed_held;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0) {
        shutdown(fd, SHUT_RDWR);
    }
}

/* The loop's http_scan hook (core/mem.c). */
static void *
http_server_scan(struct http_server *s, uint64_t limit, uint64_t *bytes)
{
    struct http_conn *best = NULL;
    uint64_t most = 0;

    for (struct list *n = s->conns.next; n != &s->conns; n = n->next) {
        struct http_conn *c = container_of(n, struct http_conn, node);
        uint64_t b;

        if (c->shed) {
            continue;
        }
        b = http_conn_bytes(c);
        if (limit != 0 && b > limit) {
            s->loop->mem.closed_body++;
            http_server_shed(s, c, "http_conn_body_limit");
            continue;
        }
        b += c->out_held;
        if (b > most) {
            most = b;
            best = c;
        }
    }
    *bytes = most;
    return best;
}

/* Decoded size of a request's head, at most 512: what its HEADERS took of
 * the bytes read, about (HPACK makes the wire smaller, never much
 * larger), bounded so that no request frees more than it could cost. */
static uint64_t
http_head_credit(const h2o_req_t *req)
{
    uint64_t n = 9 + req->method.len + req->path.len + req->authority.len;

    for (size_t i = 0; i < req->headers.size && n < 512; i++) {
        n += req->headers.entries[i].name->len +
             req->headers.entries[i].value.len;
    }
    return n < 512 ? n : 512;
}

/* The open connection req came on, or NULL. */
static struct http_conn *
http_server_conn_of(struct http_server *s, h2o_req_t *req)
{
    h2o_socket_t *sock = NULL;

    if (req->conn->callbacks->get_socket != NULL) {
        sock = req->conn->callbacks->get_socket(req->conn);
    }
    return sock != NULL ? map_get(&s->by_sock, (uint64_t)(uintptr_t)sock)
                        : NULL;
}

/* An answer's bytes, given back to its connection's count when h2o
 * frees the request's pool. In that pool. */
struct http_out_note {
    struct http_server *s; /* borrowed */
    h2o_socket_t *sock;    /* borrowed: a key of s->by_sock, maybe gone */
    uint64_t serial;       /* the conn's, when noted */
    size_t len;            /* bytes noted */
};

static void
http_out_note_dispose(void *p)
{
    struct http_out_note *n = p;
    struct http_conn *c = map_get(&n->s->by_sock, (uint64_t)(uintptr_t)n->sock);

    if (c != NULL && c->serial == n->serial) {
        c->out_held -= n->len < c->out_held ? n->len : c->out_held;
    }
}

void
http_server_note_output(h2o_req_t *req, size_t len)
{
    struct http_server *s =
        container_of(req->conn->ctx, struct http_server, ctx);
    struct http_conn *c = http_server_conn_of(s, req);
    struct http_out_note *n;

    if (c == NULL || len == 0) {
        return;
    }
    n = h2o_mem_alloc_shared(&req->pool, sizeof(*n), http_out_note_dispose);
    n->s = s;
    n->sock = c->sock;
    n->serial = c->serial;
    n->len = len;
    c->out_held += len;
}

static int
http_server_count_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *s = ((struct http_count_handler *)self)->s;
    struct http_conn *c = http_server_conn_of(s, req);

    if (c == NULL) {
        return -1;
    }
    if (req->version < 0x200) {
        /* One request at a time, read whole into the socket's input. */
        c->h1 = true;
        return -1;
    }
    c->done += req->entity.len + (req->entity.len / 16384 + 1) * 9 +
               http_head_credit(req);
    return -1;
}

/* Puts a counting handler first on every path. */
static void
http_server_add_counters(struct http_server *s)
{
    for (size_t i = 0; i < s->host->paths.size; i++) {
        h2o_pathconf_t *pc = &s->host->paths.entries[i];
        struct http_count_handler *h;

        h = (struct http_count_handler *)h2o_create_handler(pc, sizeof(*h));
        h->super.on_req = http_server_count_on_req;
        h->s = s;
        memmove(pc->handlers.entries + 1, pc->handlers.entries,
                (pc->handlers.size - 1) * sizeof(pc->handlers.entries[0]));
        pc->handlers.entries[0] = &h->super;
    }
}

/*
 * The read hook. h2o reads its sockets itself (libuv calls the alloc and
 * read callbacks h2o's binding gave uv_read_start()), so without a hook
 * the bytes a loop turn reads from HTTP sockets are seen by the memory
 * budget only at the next sample, a turn later: a turn can read several
 * MiB from each ready socket. The hook puts its own callbacks in the
 * libuv handle (ours: the uv_tcp_t of struct http_conn), which call h2o's
 * and then: cap one read at HTTP_READ_MAX, count every byte read and
 * every byte h2o's input buffer grew by (mem_note_read(), _alloc(): a
 * sample every MiB, shedding at once past the mark), stop reading a connection
 * for the rest of the turn once it read HTTP_TURN_READ, and past the
 * shedding mark stop reading every HTTP connection until the next turn
 * (what is waiting stays in the kernel). The paused ones are resumed by
 * a prepare hook before the next poll, if h2o still wants to read them.
 *
 * h2o calls uv_read_start() again, with its own callbacks, whenever it
 * starts reading again after a stop: the hook is put back after each of
 * h2o's read callbacks, at each resume, and in a round of
 * HTTP_REHOOK_STEP connections each turn for restarts from elsewhere
 * (h2o's write callbacks). Until then a connection's reads are seen at
 * the next sample, as before.
 */
#define HTTP_READ_MAX (256 * 1024)   /* one read of an HTTP socket */
#define HTTP_TURN_READ (1024 * 1024) /* one conn's reads in one turn */
#define HTTP_REHOOK_STEP 64          /* conns checked per turn */

static void http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void http_conn_read_cb(uv_stream_t *st, ssize_t nread,
                              const uv_buf_t *b);

/* Puts the hook in c's handle if h2o's callbacks are there. */
static void
http_conn_hook(struct http_conn *c)
{
    struct http_server *s = c->s;
    uv_stream_t *st = (uv_stream_t *)&c->tcp;

    if (st->read_cb == NULL || st->read_cb == http_conn_read_cb ||
        uv_is_closing((uv_handle_t *)st)) {
        return;
    }
    if (s->h2o_read_cb == NULL) {
        s->h2o_read_cb = st->read_cb;
        s->h2o_alloc_cb = st->alloc_cb;
    }
    if (st->read_cb != s->h2o_read_cb || st->alloc_cb != s->h2o_alloc_cb) {
        return;
    }
    st->alloc_cb = http_conn_alloc_cb;
    st->read_cb = http_conn_read_cb;
}

/* Bytes h2o's input buffer of c has reserved. */
static size_t
http_conn_input_capacity(const struct http_conn *c)
{
    const h2o_buffer_t *in = c->sock->input;

    return in != NULL && in->bytes != NULL ? in->capacity : 0;
}

/* Stops reading c until the next turn (h2o thinks it still reads). */
static void
http_conn_pause(struct http_conn *c)
{
    if (c->paused || c->shed || uv_is_closing((uv_handle_t *)&c->tcp)) {
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->paused = true;
    list_push_back(&c->s->paused, &c->paused_node);
}

/* Past the shedding mark: every HTTP read waits for the next turn,
 * except those of connections shed (they must read their EOF). */
static void
http_server_pause_all(struct http_server *s)
{
    if (s->paused_all) {
        return;
    }
    s->paused_all = true;
    s->reads_paused_memory++;
    for (struct list *n = s->conns.next; n != &s->conns; n = n->next) {
        struct http_conn *c = container_of(n, struct http_conn, node);
        if (c->tcp.read_cb != NULL) {
            http_conn_pause(c);
        }
    }
}

static void
http_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = container_of((uv_tcp_t *)h, struct http_conn, tcp);
    size_t before = http_conn_input_capacity(c);
    size_t after;

    c->s->h2o_alloc_cb(h, suggested, b);
    if (b->len > HTTP_READ_MAX) {
        b->len = HTTP_READ_MAX;
    }
    /* A doubling of h2o's buffer counts as read: the allocator sees all
     * of it at once. */
    after = http_conn_input_capacity(c);
    if (after > before) {
        mem_note_alloc(c->s->loop, after - before);
    }
}

static void
http_conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = container_of((uv_tcp_t *)st, struct http_conn, tcp);
    struct http_server *s = c->s;
    struct loop *l = s->loop;

    /* A conn shed for the memory bounds ends at its next read: Linux
     * still queues what the peer sends after shutdown(SHUT_RD), and h2o
     * would take it in until the peer stops. */
    if (c->shed && nread > 0) {
        nread = UV_EOF;
    }
    /* h2o may close the socket (c stays until the close callback), stop
     * reading, or stop and start again with its own callbacks. */
    s->h2o_read_cb(st, nread, b);
    if (nread <= 0) {
        return;
    }
    if (!uv_is_closing((uv_handle_t *)st)) {
        http_conn_hook(c);
        if (c->turn != s->turn) {
            c->turn = s->turn;
            c->turn_read = 0;
        }
        c->turn_read += (uint64_t)nread;
        if (c->turn_read >= HTTP_TURN_READ && st->read_cb != NULL &&
            !c->paused && !c->shed) {
            s->reads_paused_turn++;
            http_conn_pause(c);
        }
    }
    mem_note_read(l, (size_t)nread);
    if (mem_is_shedding(l)) {
        http_server_pause_all(s);
    }
}

/* Before each poll: reads paused in the last turn go on where h2o still
 * wants them; a round of connections gets the hook back. */
static void
http_server_turn_cb(uv_prepare_t *p)
{
    struct http_server *s = p->data;

    s->turn++;
    s->paused_all = false;
    while (!list_is_empty(&s->paused)) {
        struct http_conn *c =
            container_of(s->paused.next, struct http_conn, paused_node);
        uv_stream_t *st = (uv_stream_t *)&c->tcp;

        list_remove(&c->paused_node);
        c->paused = false;
        if (uv_is_closing((uv_handle_t *)st)) {
            continue;
        }
        if (st->read_cb == s->h2o_read_cb) {
            /* h2o started reading again itself meanwhile. */
            http_conn_hook(c);
        } else if (h2o_socket_is_reading(c->sock)) {
            /* It cannot fail: the handle is open and not reading. */
            (void)uv_read_start(st, http_conn_alloc_cb, http_conn_read_cb);
        }
    }
    for (size_t i = 0; i < HTTP_REHOOK_STEP && i < s->n_conns &&
                       !list_is_empty(&s->conns);
         i++) {
        struct http_conn *c =
            container_of(s->conns.next, struct http_conn, node);
        list_remove(&c->node);
        list_push_back(&s->conns, &c->node);
        http_conn_hook(c);
    }
}

static void
http_server_conn_close_cb(uv_handle_t *h)
{
    struct http_conn *c = container_of(h, struct http_conn, tcp);
    struct http_server *s = c->s;

    list_remove(&c->node);
    list_remove(&c->paused_node);
    if (c->shed) {
        uint64_t *pending = &s->loop->mem.shed_pending;
        *pending -= c->shed_held < *pending ? c->shed_held : *pending;
    }
    map_del(&s->by_sock, (uint64_t)(uintptr_t)c->sock);
    s->n_conns--;
    pool_put(&s->conn_pool, c);
    if (s->stopping && s->n_conns == 0 && s->loop->n_alive == 0 &&
        s->loop->on_empty != NULL) {
        s->loop->on_empty(s->loop);
    }
}

static void
http_server_refused_close_cb(uv_handle_t *h)
{
    struct http_conn *c = container_of(h, struct http_conn, tcp);

    pool_put(&c->s->conn_pool, c);
}

/* Ends the sniffing of c: from now on the socket is h2o's (or closed). */
static void
http_server_sniff_end(struct http_conn *c)
{
    c->sniffing = false;
    h2o_timeout_unlink(&c->sniff);
    h2o_socket_read_stop(c->sock);
    c->sock->data = NULL;
}

/* Closes c while it is still ours (no HTTP side has it). */
static void
http_server_sniff_close(struct http_conn *c)
{
    http_server_sniff_end(c);
    h2o_socket_close(c->sock);
}

/* A client that sent nothing whole in http_header_timeout_ms. */
static void
http_server_sniff_timeout(h2o_timeout_entry_t *e)
{
    http_server_sniff_close(container_of(e, struct http_conn, sniff));
}

/*
 * The first bytes of a connection: the HTTP/2 preface goes to h2o's
 * HTTP/2 side (prior knowledge), anything else to its HTTP/1 side. Both
 * take the bytes already read from the socket's input buffer. h2o's own
 * check for the preface is off with its h2c upgrade (they share one
 * setting), which is why it is done here.
 */
static void
http_server_sniff_cb(h2o_socket_t *sock, const char *err)
{
    struct http_conn *c = sock->data;
    struct http_server *s = c->s;
    size_t n = sock->input->size;

    if (err != NULL) {
        http_server_sniff_close(c);
        return;
    }
    if (n > HTTP_PREFACE_LEN) {
        n = HTTP_PREFACE_LEN;
    }
    if (memcmp(sock->input->bytes, http_server_preface, n) != 0) {
        http_server_sniff_end(c);
        h2o_http1_accept(&s->accept_ctx, sock, c->connected_at);
    } else if (n == HTTP_PREFACE_LEN) {
        http_server_sniff_end(c);
        h2o_http2_accept(&s->accept_ctx, sock, c->connected_at);
    }
    /* Else a part of the preface: wait for the rest. */
}

static void
http_server_accept_cb(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    struct http_conn *c;
    h2o_socket_t *sock;

    if (status != 0) {
        log_warn("http: accept failed: %s", uv_strerror(status));
        return;
    }
    c = pool_get(&s->conn_pool);
    if (c == NULL) {
        /* Leave it in the backlog; the next accept tries again. */
        log_warn("http: out of memory accepting a connection");
        return;
    }
    c->s = s;
    uv_tcp_init(&s->loop->uv, &c->tcp);
    c->tcp.data = s;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, http_server_refused_close_cb);
        return;
    }
    if (s->n_conns >= s->loop->cfg->http_max_connections || s->stopping) {
        if (s->refused++ % 1000 == 0) {
            log_warn("http: %zu connections open (http_max_connections), "
                     "closing new ones",
                     s->n_conns);
        }
        uv_close((uv_handle_t *)&c->tcp, http_server_refused_close_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    s->n_conns++;
    sock =
        h2o_uv_socket_create((uv_stream_t *)&c->tcp, http_server_conn_close_cb);
    c->sock = sock;
    c->serial = ++s->next_serial;
    c->out_held = 0;
    c->shed_held = 0;
    c->done = 0;
    c->h1 = false;
    c->shed = false;
    c->paused = false;
    c->stall_shut = false;
    c->turn = 0;
    c->turn_read = 0;
    list_init(&c->paused_node);
    list_push_back(&s->conns, &c->node);
    /* Without its entry the conn's requests are not counted as done, so it
     * only looks bigger to the memory budget. */
    (void)map_put(&s->by_sock, (uint64_t)(uintptr_t)sock, c);
    c->connected_at = *h2o_get_timestamp(&s->ctx, NULL, NULL);
    c->sniffing = true;
    memset(&c->sniff, 0, sizeof(c->sniff));
    c->sniff.cb = http_server_sniff_timeout;
    h2o_timeout_link(s->ctx.loop, &s->ctx.http1.req_timeout, &c->sniff);
    sock->data = c;
    h2o_socket_read_start(sock, http_server_sniff_cb);
    http_conn_hook(c);
}

static void
http_server_listener_close_cb(uv_handle_t *h)
{
    free(container_of(h, struct http_listener, tcp));
}

static ferry_err
http_server_listen(struct http_server *s, const char *text)
{
    struct http_listener *ln;
    struct addr a;
    int rc;

    if (addr_parse(text, &a) != FERRY_OK || addr_is_unix(&a)) {
        log_error("http '%s': bad address", text);
        return FERRY_EINVALID_ARGUMENT;
    }
    ln = calloc(1, sizeof(*ln));
    if (ln == NULL) {
        log_error("http '%s': out of memory", text);
        return FERRY_ENOMEM;
    }
    uv_tcp_init(&s->loop->uv, &ln->tcp);
    ln->tcp.data = s;
    ln->next = s->listeners;
    s->listeners = ln;
    rc = uv_tcp_bind(&ln->tcp, (const struct sockaddr *)&a.ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&ln->tcp, 511, http_server_accept_cb);
    }
    if (rc != 0) {
        log_error("http '%s': cannot listen: %s", text, uv_strerror(rc));
        return FERRY_ESYS;
    }
    log_info("http listening on %s", text);
    return FERRY_OK;
}

void
http_server_reload(struct http_server *s, struct route_table *routes)
{
    const struct config *cfg = s->loop->cfg;

    route_table_release(&s->routes);
    s->routes = *routes;
    memset(routes, 0, sizeof(*routes));
    s->max_body = cfg->http_max_body != 0 ? cfg->http_max_body : cfg->max_frame;
    /* h2o reads this from its globalconf at each request. */
    s->globalconf.max_request_entity_size = s->max_body;
}

ferry_err
http_server_new(struct loop *l, struct route_table *routes,
                struct http_server **out)
{
    const struct config *cfg = l->cfg;
    struct http_server *s;
    uint64_t http1_timeout;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_error("http: out of memory");
        return FERRY_ENOMEM;
    }
    s->loop = l;
    pool_init(&s->conn_pool, sizeof(struct http_conn), 64);
    list_init(&s->conns);
    map_init(&s->by_sock);
    s->routes = *routes;
    memset(routes, 0, sizeof(*routes));
    s->max_body = cfg->http_max_body != 0 ? cfg->http_max_body : cfg->max_frame;
    /* h2o moves a socket buffer of 32 MiB or more (an HTTP/1.1 body
     * near the default http_max_body doubles to that) into a mapping of
     * a deleted file in /tmp, which the allocator's count, and so the
     * memory budget, never sees, and which fills /tmp. On the heap it is
     * counted like everything else. */
    h2o_socket_buffer_mmap_settings.threshold = SIZE_MAX;
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT(FERRYD_NAME));
    s->globalconf.max_request_entity_size = s->max_body;
    /* h2o 2.2.5 runs one HTTP/1 timer from "waiting for a request" to
     * "request head read": the smaller of the two limits. */
    http1_timeout = cfg->http_header_timeout_ms;
    if (cfg->http_idle_timeout_ms < http1_timeout) {
        http1_timeout = cfg->http_idle_timeout_ms;
    }
    s->globalconf.http1.req_timeout = http1_timeout;
    /* No `Upgrade: h2c`: RFC 9113 deprecates it, clients use prior
     * knowledge (or TLS, which ferryd leaves to a proxy), and a switch of
     * protocol in the middle of a request is one more path for a hostile
     * peer. h2o then answers such a request in HTTP/1.1, as if it had
     * not asked (RFC 9110 7.8 lets a server ignore Upgrade). */
    s->globalconf.http1.upgrade_to_http2 = 0;
    s->globalconf.http2.idle_timeout = cfg->http_idle_timeout_ms;
    s->globalconf.http2.graceful_shutdown_timeout = 1000;
    s->host = h2o_config_register_host(
        &s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    http_server_pathconf(s, "/");
    h2o_create_filter(&s->host->fallback_path, sizeof(h2o_filter_t))
        ->on_setup_ostream = http_server_json_errors;
    l->http = s;
    /* The gateway's route handler comes first on "/", the JSON 404 last,
     * the dashboard's pages in between. */
    gateway_register(s);
    cache_routes_register(s);
    kv_routes_register(s);
    id_routes_register(s);
    queue_routes_register(s);
    admin_register(s);
    dashboard_register(s);
    gateway_register_fallback(s);
    http_server_sort_paths(s);
    http_server_add_counters(s);
    l->http_scan = http_server_scan;
    l->http_shed = http_server_shed;
    h2o_context_init(&s->ctx, &l->uv, &s->globalconf);
    s->ctx_live = true;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    uv_timer_init(&l->uv, &s->force);
    s->force.data = s;
    list_init(&s->watched);
    list_init(&s->jobs);
    uv_idle_init(&l->uv, &s->job_idle);
    s->job_idle.data = s;
    uv_unref((uv_handle_t *)&s->job_idle);
    list_init(&s->paused);
    uv_prepare_init(&l->uv, &s->turn_prep);
    s->turn_prep.data = s;
    uv_prepare_start(&s->turn_prep, http_server_turn_cb);
    uv_unref((uv_handle_t *)&s->turn_prep);
    uv_timer_init(&l->uv, &s->sweep);
    s->sweep.data = s;
    /* The sweep never keeps the loop alive. */
    uv_unref((uv_handle_t *)&s->sweep);
    list_init(&s->peers);
    uv_timer_init(&l->uv, &s->peer_tm);
    s->peer_tm.data = s;
    uv_unref((uv_handle_t *)&s->peer_tm);
    *out = s;
    return http_server_listen(s, cfg->http);
}

void
http_server_stop_accepting(struct http_server *s)
{
    while (s->listeners != NULL) {
        struct http_listener *ln = s->listeners;
        s->listeners = ln->next;
        uv_close((uv_handle_t *)&ln->tcp, http_server_listener_close_cb);
    }
}

void
http_server_on_shutdown(struct http_server *s, void (*cb)(void *arg),
                        void *arg)
{
    assert(s->n_hooks < HTTP_MAX_STOP_HOOKS);
    s->hooks[s->n_hooks].cb = cb;
    s->hooks[s->n_hooks].arg = arg;
    s->n_hooks++;
}

size_t
http_server_abort(struct http_server *s)
{
    size_t n = 0;

    for (struct list *e = s->conns.next; e != &s->conns; e = e->next) {
        struct http_conn *c = container_of(e, struct http_conn, node);
        uv_os_fd_t fd;

        if (uv_is_closing((uv_handle_t *)&c->tcp) ||
            uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
            continue;
        }
        /* h2o's write in progress fails (EPIPE), or its read sees EOF:
         * either way h2o closes the connection itself, from its own
         * callbacks, freeing what it held. Closing the handle under it
         * instead leaves its write callback to close it a second time
         * (the uv_close assertion of hole 4). */
        shutdown(fd, SHUT_RDWR);
        n++;
    }
    return n;
}

static void
http_server_force_cb(uv_timer_t *t)
{
    struct http_server *s = t->data;

    if (s->force_step == 0) {
        s->force_step = 1;
        log_warn("http: %zu connections still open (clients not reading), "
                 "shutting their sockets down",
                 http_server_abort(s));
        uv_timer_start(&s->force, http_server_force_cb, 1000, 0);
        return;
    }
    /* h2o closes a connection on the first failed write or read; one
     * that it neither reads nor writes is left to loop_release(). */
    log_warn("http: %zu connections still open, closing at once", s->n_conns);
    uv_stop(&s->loop->uv);
}

void
http_server_shutdown(struct http_server *s)
{
    http_server_stop_accepting(s);
    s->stopping = true;
    /* Connections that have sent no request yet are closed now. */
    for (struct list *e = s->conns.next; e != &s->conns; e = e->next) {
        struct http_conn *c = container_of(e, struct http_conn, node);
        if (c->sniffing) {
            http_server_sniff_close(c);
        }
    }
    if (s->n_conns == 0) {
        return;
    }
    h2o_context_request_shutdown(&s->ctx);
    /* Answers that would go on forever (the SSE streams) end here. */
    for (size_t i = 0; i < s->n_hooks; i++) {
        s->hooks[i].cb(s->hooks[i].arg);
    }
    uv_timer_start(&s->force, http_server_force_cb, 1000, 0);
}

void
http_server_drop_all(struct http_server *s)
{
    if (s->n_conns == 0 || !s->ctx_live) {
        return;
    }
    http_server_abort(s);
    /* A few turns let h2o see the failures and close; each turn blocks
     * for nothing (the shut sockets are ready at once). */
    for (int i = 0; i < 16 && s->n_conns > 0; i++) {
        uv_run(&s->loop->uv, UV_RUN_NOWAIT);
    }
}

void
http_server_close(struct http_server *s)
{
    http_server_stop_accepting(s);
    if (!uv_is_closing((uv_handle_t *)&s->force)) {
        uv_close((uv_handle_t *)&s->force, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&s->sweep)) {
        uv_close((uv_handle_t *)&s->sweep, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&s->peer_tm)) {
        uv_close((uv_handle_t *)&s->peer_tm, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&s->job_idle)) {
        uv_close((uv_handle_t *)&s->job_idle, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&s->turn_prep)) {
        uv_close((uv_handle_t *)&s->turn_prep, NULL);
    }
    if (s->ctx_live && s->n_conns == 0) {
        /* h2o_context_request_shutdown() armed HTTP/2's graceful-shutdown
         * timer; h2o 2.2.5 asserts in dispose if it is still linked. */
        if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout)) {
            h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
        }
        h2o_context_dispose(&s->ctx);
        s->ctx_live = false;
    }
}

void
http_server_free(struct http_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->ctx_live) {
        /* Stopped at once: h2o's connections were closed under it by
         * loop_release(); leave its memory be, the process is ending. */
        return;
    }
    h2o_config_dispose(&s->globalconf);
    route_table_release(&s->routes);
    free(s->peer_fds);
    pool_release(&s->conn_pool);
    map_release(&s->by_sock);
    if (s->loop->http == s) {
        s->loop->http = NULL;
        s->loop->http_scan = NULL;
        s->loop->http_shed = NULL;
    }
    free(s);
}
