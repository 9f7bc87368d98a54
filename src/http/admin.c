/* SPDX-License-Identifier: MIT */
/*
 * admin.c - the admin endpoints on the HTTP port: liveness (/healthz),
 * readiness (/readyz), the services document (/v1/services, the same
 * builder as the built-in ferry.services), the statistics document
 * (/v1/stats), its live stream as Server-Sent Events (/v1/stats/stream),
 * the Prometheus exposition (/metrics) and the operator's commands
 * (POST /v1/admin/{op}, the same as `ferry admin`, see control.h).
 *
 * Everything is read from the broker on the same loop at request time;
 * nothing here is on the binary request path. The big documents go out
 * in slices, a loop turn each (body.h), so a table of thousands of
 * services never holds the loop. The streams share one uv_timer_t that
 * ticks once a second while any stream is open: each tick starts building
 * one event, a slice per job of the server (server.h), and the event, once
 * whole, is shared by every stream (counted references). A stream sends
 * it in pieces of ADMIN_PIECE bytes, one at a time (h2o allows one send
 * in progress per request), each piece a job of the server: a socket
 * that takes every write at once calls proceed at once, and 64 streams
 * sending their pieces from proceed held the loop for 100 ms and more
 * (37 MB in one turn, test_big_tables); a stream still sending an older event
 * when a new one is ready skips to the newest when it is done, and the skipped
 * events are counted. So a client that does not read holds one event
 * (shared with the others that stalled at the same time) until
 * http_stall_timeout_ms closes it.
 */
#include "http/admin.h"

#include <jansson.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/builtin.h"
#include "broker/control.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/body.h"
#include "http/metrics.h"
#include "http/render.h"
#include "http/respond.h"

#define ADMIN_MAX_STREAMS 64    /* open /v1/stats/stream clients at once */
#define ADMIN_TICK_MS 1000      /* one event a second */
#define ADMIN_PIECE (64 * 1024) /* bytes of an event sent at once */

/* One statistics event, "data: {...}\n\n", shared by the streams that
 * send it; freed with its last reference. */
struct admin_event {
    unsigned refs;   /* streams sending it, and adm->latest */
    uint64_t seq;    /* events are numbered from 1 */
    struct buf text; /* owned: the event */
};

/* The state the admin handlers share; owned by them together, freed when
 * the last is disposed (and its handles closed). */
struct admin {
    struct loop *loop;          /* borrowed */
    struct http_server *http;   /* borrowed */
    uv_timer_t timer;           /* the streams' tick; unref'd, so it never
                                   keeps the loop alive */
    struct http_job job;        /* builds the next event, a slice a job */
    bool handles_on;            /* timer initialised */
    bool building;              /* build and next hold an event in work */
    struct render build;        /* the next event's document */
    struct buf next;            /* owned: its text so far */
    struct admin_event *latest; /* the newest whole event, or NULL */
    uint64_t seq;               /* of the last event built */
    struct list streams;        /* struct admin_stream, open */
    size_t n_streams;           /* streams in the list */
    unsigned refs;              /* handlers that point here */
};

/* One admin path's handler; h2o owns it. */
struct admin_handler {
    h2o_handler_t super; /* first: h2o hands this back */
    struct admin *adm;   /* shared, counted in adm->refs */
};

/* One /v1/stats/stream client; owned by admin, freed when h2o stops the
 * generator (the client went away or the server closes it). */
struct admin_stream {
    h2o_generator_t gen;     /* first: h2o hands this back */
    struct admin *adm;       /* borrowed */
    h2o_req_t *req;          /* borrowed: valid until gen.stop */
    struct list node;        /* on adm->streams */
    struct admin_event *cur; /* a reference: the event being sent, or
                                NULL */
    size_t off;              /* bytes of cur handed to h2o before the
                                piece in progress */
    size_t piece;            /* bytes of the piece in progress */
    uint64_t last_seq;       /* of the last event it began, 0 for none */
    struct http_watch watch; /* the stall bound */
    struct http_job job;     /* sends the next piece, within the server's
                                turn budget */
    bool sending;            /* h2o_send in progress, no proceed yet */
    bool ending;             /* shutting down: the last chunk follows the
                                piece in progress */
};

static bool
admin_path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path,
                     strlen(path));
}

static bool
admin_is_get(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

/* Answers a request for one of our paths with a method other than GET. */
static int
admin_not_allowed(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                   H2O_STRLIT("GET, HEAD"));
    http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                        "only GET is allowed here");
    return 0;
}

static struct admin *
admin_of(h2o_handler_t *self)
{
    return ((struct admin_handler *)self)->adm;
}

/* Sends doc (consumed) as compact JSON with status. */
static int
admin_send_doc(h2o_req_t *req, int status, json_t *doc)
{
    char *text;

    if (doc == NULL) {
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(doc);
    if (text == NULL) {
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    http_respond_json(req, status, text, strlen(text));
    free(text);
    return 0;
}

/*
 * Whether req may see internals, by the rule of core/access.h (the same
 * as ferry.services on every door); else the 401 is sent here.
 */
static bool
admin_is_allowed(h2o_handler_t *self, h2o_req_t *req)
{
    if (auth_may_see_internals(req, admin_of(self)->loop->cfg)) {
        return true;
    }
    auth_refuse(req);
    return false;
}

static int
admin_healthz(h2o_handler_t *self, h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";

    if (!admin_path_is(req, "/healthz")) {
        return -1;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    http_respond_json(req, 200, body, sizeof(body) - 1);
    return 0;
}

/* Ready while the binary listeners are open and no shutdown has begun. */
static int
admin_readyz(h2o_handler_t *self, h2o_req_t *req)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char stopping[] = "{\"status\":\"shutting_down\"}";
    static const char starting[] = "{\"status\":\"starting\"}";
    struct loop *l = admin_of(self)->loop;
    struct broker *b = l->broker;

    if (!admin_path_is(req, "/readyz")) {
        return -1;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    if (b == NULL || b->shutting_down || l->stopping) {
        http_respond_json(req, 503, stopping, sizeof(stopping) - 1);
    } else if (l->listeners == NULL) {
        http_respond_json(req, 503, starting, sizeof(starting) - 1);
    } else {
        http_respond_json(req, 200, ready, sizeof(ready) - 1);
    }
    return 0;
}

static int
admin_services(h2o_handler_t *self, h2o_req_t *req)
{
    if (!admin_path_is(req, "/v1/services")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    return http_body_send(admin_of(self)->http, req, RENDER_SERVICES);
}

/* /v1/cluster: this node's view of the cluster (cluster_describe);
 * /v1/cluster/vbuckets: every vbucket's owner and home. */
static int
admin_cluster(h2o_handler_t *self, h2o_req_t *req)
{
    struct broker *b = admin_of(self)->loop->broker;
    bool vbs = admin_path_is(req, "/v1/cluster/vbuckets");

    if (!vbs && !admin_path_is(req, "/v1/cluster")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    if (vbs) {
        return admin_send_doc(
            req, 200, cluster_describe_vbuckets(b != NULL ? b->cluster : NULL));
    }
    return admin_send_doc(req, 200,
                          cluster_describe(b != NULL ? b->cluster : NULL));
}

static int
admin_stats(h2o_handler_t *self, h2o_req_t *req)
{
    if (!admin_path_is(req, "/v1/stats")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    return http_body_send(admin_of(self)->http, req, RENDER_STATS);
}

static int
admin_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    if (!admin_path_is(req, "/metrics")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    return http_body_send(admin_of(self)->http, req, RENDER_METRICS);
}

/* "http from 'ADDR:PORT'", the client of req, for the log. */
static const char *
admin_peer(h2o_req_t *req, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len =
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t n =
        len > 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, len, host)
                : SIZE_MAX;

    if (n == SIZE_MAX) {
        snprintf(buf, size, "http");
    } else {
        host[n] = '\0';
        snprintf(buf, size, "http from '%s:%d'", host,
                 (int)h2o_socket_getport((struct sockaddr *)&ss));
    }
    return buf;
}

/*
 * POST /v1/admin/{op}: one of the operator's commands; the body, if any, is
 * a JSON object of its fields ({"service": "fib", "fallback": "..."}).
 * Unlike the read-only endpoints it is never open: it needs admin_token
 * set, and sent. Without one, `ferry admin` on the unix socket is the way.
 */
static int
admin_command(h2o_handler_t *self, h2o_req_t *req)
{
    static const char prefix[] = "/v1/admin/";
    const size_t plen = sizeof(prefix) - 1;
    struct broker *b = admin_of(self)->loop->broker;
    const char *token = admin_of(self)->loop->cfg->admin_token;
    h2o_iovec_t path = req->path_normalized;
    char msg[CONFIG_ERR_SIZE], who[NI_MAXHOST + 32];
    json_t *cmd, *reply;
    ferry_err err;

    if (path.len <= plen || memcmp(path.base, prefix, plen) != 0) {
        return -1;
    }
    if (path.len - plen > 32 ||
        memchr(path.base + plen, '/', path.len - plen) != NULL) {
        http_respond_status(req, 404, "NOT_FOUND", "no such admin command");
        return 0;
    }
    if (!config_token_is_set(token)) {
        http_respond_status(req, 403, "FORBIDDEN",
                            "admin commands over HTTP need admin_token set; "
                            "without one, use ferry admin on the unix socket");
        return 0;
    }
    if (!auth_is_allowed(req, token, NULL)) {
        auth_refuse(req);
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("POST"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "admin commands are POST");
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > 0) {
        err = control_parse(req->entity.base, req->entity.len, &cmd, msg,
                            sizeof(msg));
        if (err != FERRY_OK) {
            http_respond_error(req, err, msg);
            return 0;
        }
    } else {
        cmd = json_object();
    }
    if (cmd == NULL) {
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    /* NULL for bytes that are not UTF-8: no command is named so. */
    if (json_object_set_new(
            cmd, "op", json_stringn(path.base + plen, path.len - plen)) != 0) {
        json_decref(cmd);
        http_respond_status(req, 404, "NOT_FOUND", "no such admin command");
        return 0;
    }
    err = control_run(b, cmd, admin_peer(req, who, sizeof(who)), &reply, msg,
                      sizeof(msg));
    json_decref(cmd);
    if (err != FERRY_OK) {
        http_respond_error(req, err, msg);
        return 0;
    }
    return admin_send_doc(req, 200, reply);
}

static void
admin_event_unref(struct admin_event *ev)
{
    if (ev != NULL && --ev->refs == 0) {
        buf_release(&ev->text);
        free(ev);
    }
}

/* Drops the event in work, if any. */
static void
admin_build_stop(struct admin *adm)
{
    if (adm->building) {
        http_server_job_cancel(&adm->job);
        render_release(&adm->build);
        buf_release(&adm->next);
        adm->building = false;
    }
}

/* Gives st the next piece of its event, or the newest event when it is
 * done with its own and one is there. */
static void
admin_stream_send(struct admin_stream *st)
{
    struct admin *adm = st->adm;
    struct admin_event *ev = st->cur;
    h2o_iovec_t v;

    if (ev != NULL && st->off + st->piece >= buf_len(&ev->text)) {
        admin_event_unref(ev);
        st->cur = ev = NULL;
    }
    if (ev != NULL) {
        st->off += st->piece;
    } else {
        ev = adm->latest;
        if (ev == NULL || ev->seq <= st->last_seq) {
            return; /* up to date: the next event sends itself */
        }
        if (st->last_seq != 0 && ev->seq > st->last_seq + 1) {
            http_server_count_sse_dropped(adm->http,
                                          ev->seq - st->last_seq - 1);
        }
        ev->refs++;
        st->cur = ev;
        st->off = 0;
        st->last_seq = ev->seq;
    }
    st->piece = buf_len(&ev->text) - st->off;
    if (st->piece > ADMIN_PIECE) {
        st->piece = ADMIN_PIECE;
    }
    v = h2o_iovec_init(buf_head(&ev->text) + st->off, st->piece);
    st->sending = true;
    http_watch_sent(adm->http, &st->watch);
    h2o_send(st->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* The stream's job: its next piece, unless one is in progress or the
 * stream ends. */
static void
admin_stream_job(struct http_job *j)
{
    struct admin_stream *st = container_of(j, struct admin_stream, job);

    if (!st->sending && !st->ending) {
        admin_stream_send(st);
    }
}

static void
admin_stream_free(struct admin_stream *st)
{
    struct admin *adm = st->adm;

    http_server_job_cancel(&st->job);
    list_remove(&st->node);
    http_server_unwatch(&st->watch);
    adm->n_streams--;
    admin_event_unref(st->cur);
    free(st);
    if (adm->n_streams == 0) {
        /* Nobody to send to: no tick, no event kept. */
        if (adm->handles_on) {
            uv_timer_stop(&adm->timer);
        }
        admin_build_stop(adm);
        admin_event_unref(adm->latest);
        adm->latest = NULL;
    }
}

/* Sends the stream's last chunk and frees it: once h2o has the final
 * send it calls neither proceed nor stop, and uses nothing of ours. */
static void
admin_stream_end(struct admin_stream *st)
{
    h2o_req_t *req = st->req;

    admin_stream_free(st);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* h2o took the last piece. */
static void
admin_stream_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct admin_stream *st = (struct admin_stream *)gen;

    st->sending = false;
    http_watch_taken(&st->watch);
    if (st->ending) {
        admin_stream_end(st);
        return;
    }
    http_server_job_queue(st->adm->http, &st->job);
}

/* The client went away (or the server is closing it): req and its pool
 * are gone after this returns. */
static void
admin_stream_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    admin_stream_free((struct admin_stream *)gen);
}

/* One slice of the event in work; once it is whole, every stream that is
 * not busy with an older one starts it. */
static void
admin_build_cb(struct http_job *j)
{
    struct admin *adm = container_of(j, struct admin, job);
    struct admin_event *ev;
    bool done = false;
    struct list *n;

    if (render_step(&adm->build, &adm->next, &done) != FERRY_OK ||
        (done && buf_append(&adm->next, "\n\n", 2) != FERRY_OK)) {
        admin_build_stop(adm); /* out of memory: the next tick tries */
        return;
    }
    if (!done) {
        http_server_job_queue(adm->http, &adm->job);
        return;
    }
    ev = malloc(sizeof(*ev));
    if (ev == NULL) {
        admin_build_stop(adm);
        return;
    }
    ev->refs = 1;
    ev->seq = ++adm->seq;
    ev->text = adm->next;
    buf_init(&adm->next);
    admin_build_stop(adm);
    admin_event_unref(adm->latest);
    adm->latest = ev;
    for (n = adm->streams.next; n != &adm->streams;) {
        struct admin_stream *st = container_of(n, struct admin_stream, node);
        n = n->next;
        if (!st->sending && !st->ending) {
            http_server_job_queue(adm->http, &st->job);
        }
    }
}

/* Starts building the next event, unless one is in work. */
static void
admin_build_start(struct admin *adm)
{
    static const char prefix[] = "data: ";

    if (adm->building) {
        return;
    }
    render_init(&adm->build, adm->loop->broker, RENDER_STATS);
    buf_init(&adm->next);
    if (buf_append(&adm->next, prefix, sizeof(prefix) - 1) != FERRY_OK) {
        render_release(&adm->build);
        return;
    }
    adm->building = true;
    adm->job.run = admin_build_cb;
    http_server_job_queue(adm->http, &adm->job);
}

static void
admin_tick(uv_timer_t *t)
{
    struct admin *adm = t->data;
    struct broker *b = adm->loop->broker;

    if (b == NULL || b->shutting_down || adm->loop->stopping) {
        /* No more events: admin_shutdown() ends the streams. */
        uv_timer_stop(t);
        return;
    }
    admin_build_start(adm);
}

static int
admin_stream(h2o_handler_t *self, h2o_req_t *req)
{
    struct admin *adm = admin_of(self);
    struct admin_stream *st;

    if (!admin_path_is(req, "/v1/stats/stream")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "only GET is allowed here");
        return 0;
    }
    if (adm->loop->broker == NULL || adm->loop->broker->shutting_down) {
        http_respond_error(req, FERRY_ESHUTTING_DOWN, NULL);
        return 0;
    }
    if (adm->n_streams >= ADMIN_MAX_STREAMS) {
        http_respond_error(req, FERRY_EOVERLOADED, "too many stats streams");
        return 0;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    if (!adm->handles_on) {
        uv_timer_init(&adm->loop->uv, &adm->timer);
        adm->timer.data = adm;
        uv_unref((uv_handle_t *)&adm->timer);
        adm->handles_on = true;
    }
    if (adm->n_streams == 0) {
        uv_timer_start(&adm->timer, admin_tick, ADMIN_TICK_MS, ADMIN_TICK_MS);
    }
    st->gen.proceed = admin_stream_proceed;
    st->gen.stop = admin_stream_stop;
    st->job.run = admin_stream_job;
    st->adm = adm;
    st->req = req;
    list_push_back(&adm->streams, &st->node);
    adm->n_streams++;
    http_server_watch(adm->http, &st->watch, req);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_start_response(req, &st->gen);
    /* The newest event at once (at most a tick old), else the first one
     * as soon as it is built. */
    if (adm->latest != NULL) {
        http_server_job_queue(adm->http, &st->job);
    } else {
        admin_build_start(adm);
    }
    return 0;
}

/*
 * The HTTP side shuts down (http_server_on_shutdown()): every stream ends
 * with its last chunk, at once or after the event h2o is sending, so that
 * h2o can close its connection. A client that does not read that event is
 * left to the server's bounds.
 */
static void
admin_shutdown(void *arg)
{
    struct admin *adm = arg;
    struct list *n = adm->streams.next;

    if (adm->handles_on) {
        uv_timer_stop(&adm->timer);
    }
    admin_build_stop(adm);
    while (n != &adm->streams) {
        struct admin_stream *st = container_of(n, struct admin_stream, node);
        n = n->next;
        if (st->sending) {
            st->ending = true;
        } else {
            admin_stream_end(st);
        }
    }
}

static void
admin_free(struct admin *adm)
{
    admin_build_stop(adm);
    admin_event_unref(adm->latest);
    free(adm);
}

static void
admin_close_cb(uv_handle_t *h)
{
    admin_free(h->data);
}

/* A handler goes away (the server is freed); the last frees the state. */
static void
admin_dispose(h2o_handler_t *self)
{
    struct admin *adm = admin_of(self);

    if (adm == NULL || --adm->refs > 0) {
        return;
    }
    if (adm->handles_on && !uv_is_closing((uv_handle_t *)&adm->timer)) {
        uv_close((uv_handle_t *)&adm->timer, admin_close_cb);
    } else {
        /* Never started, or already closed by the loop's last sweep. */
        admin_free(adm);
    }
}

void
admin_register(struct http_server *s)
{
    static const struct {
        const char *path;
        http_handler_cb cb;
    } paths[] = {
        /* Longer paths first: h2o matches by prefix. */
        {"/v1/stats/stream", admin_stream}, {"/v1/stats", admin_stats},
        {"/v1/services", admin_services},   {"/healthz", admin_healthz},
        {"/readyz", admin_readyz},          {"/metrics", admin_metrics},
        {"/v1/admin/", admin_command},      {"/v1/cluster", admin_cluster},
    };
    struct admin *adm = calloc(1, sizeof(*adm));

    if (adm == NULL) {
        log_error("http: admin endpoints: out of memory");
        return;
    }
    adm->loop = http_server_loop(s);
    adm->http = s;
    list_init(&adm->streams);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct admin_handler *h = (struct admin_handler *)http_server_add_path(
            s, paths[i].path, paths[i].cb, sizeof(*h));
        if (h == NULL) {
            continue;
        }
        h->adm = adm;
        h->super.dispose = admin_dispose;
        adm->refs++;
    }
    if (adm->refs == 0) {
        free(adm);
        return;
    }
    http_server_on_shutdown(s, admin_shutdown, adm);
}
