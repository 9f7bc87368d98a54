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
 * nothing here is on the binary request path. The streams share one
 * uv_timer_t that ticks once a second while any stream is open: each tick
 * renders the statistics once and sends it to every stream that has taken
 * the previous event (h2o allows one send in progress per request; a
 * client that is slower than one event a second skips events instead of
 * piling them up).
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
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/metrics.h"
#include "http/respond.h"

#define ADMIN_MAX_STREAMS 64 /* open /v1/stats/stream clients at once */
#define ADMIN_TICK_MS 1000   /* one event a second */

/* The state the admin handlers share; owned by them together, freed when
 * the last is disposed (and its timer closed). */
struct admin {
    struct loop *loop;   /* borrowed */
    uv_timer_t timer;    /* the streams' tick; unref'd, so it never
                            keeps the loop alive */
    bool timer_on;       /* timer initialised */
    struct list streams; /* struct admin_stream, open */
    size_t n_streams;    /* streams in the list */
    unsigned refs;       /* handlers that point here */
};

/* One admin path's handler; h2o owns it. */
struct admin_handler {
    h2o_handler_t super; /* first: h2o hands this back */
    struct admin *adm;   /* shared, counted in adm->refs */
};

/* One /v1/stats/stream client; owned by admin, freed when h2o stops the
 * generator (the client went away or the server closes it). */
struct admin_stream {
    h2o_generator_t gen; /* first: h2o hands this back */
    struct admin *adm;   /* borrowed */
    h2o_req_t *req;      /* borrowed: valid until gen.stop */
    struct list node;    /* on adm->streams */
    char *event;         /* owned: the event h2o is sending, or NULL */
    bool sending;        /* h2o_send in progress, no proceed yet */
    bool ending;         /* shutting down: the last chunk follows the
                            event in progress */
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
    return admin_send_doc(req, 200,
                          builtin_services_json(admin_of(self)->loop->broker));
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
    return admin_send_doc(req, 200,
                          metrics_stats_json(admin_of(self)->loop->broker));
}

static int
admin_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    char *text;
    size_t len;

    if (!admin_path_is(req, "/metrics")) {
        return -1;
    }
    if (!admin_is_allowed(self, req)) {
        return 0;
    }
    if (!admin_is_get(req)) {
        return admin_not_allowed(req);
    }
    if (metrics_render(admin_of(self)->loop->broker, &text, &len) != FERRY_OK) {
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    http_respond(req, 200, METRICS_CONTENT_TYPE, text, len);
    free(text);
    return 0;
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

/* The statistics as one SSE event, "data: {...}\n\n"; NULL when out of
 * memory. JSON_COMPACT output has no line feed, so one data line holds
 * it. */
static char *
admin_event(struct admin *adm)
{
    json_t *doc = metrics_stats_json(adm->loop->broker);
    char *text, *event;
    size_t len;

    if (doc == NULL) {
        return NULL;
    }
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(doc);
    if (text == NULL) {
        return NULL;
    }
    len = strlen(text);
    event = malloc(len + 9);
    if (event != NULL) {
        memcpy(event, "data: ", 6);
        memcpy(event + 6, text, len);
        memcpy(event + 6 + len, "\n\n", 3);
    }
    free(text);
    return event;
}

static void
admin_stream_free(struct admin_stream *st)
{
    struct admin *adm = st->adm;

    list_remove(&st->node);
    adm->n_streams--;
    if (adm->n_streams == 0 && adm->timer_on) {
        uv_timer_stop(&adm->timer);
    }
    free(st->event);
    free(st);
}

/* Sends event (taking it) to st; st must have no send in progress. */
static void
admin_stream_send(struct admin_stream *st, char *event)
{
    h2o_iovec_t buf = h2o_iovec_init(event, strlen(event));

    free(st->event);
    st->event = event;
    st->sending = true;
    h2o_send(st->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* Sends the stream's last chunk and frees it: once h2o has the final
 * send it calls neither proceed nor stop, and copies nothing of ours. */
static void
admin_stream_end(struct admin_stream *st)
{
    h2o_req_t *req = st->req;

    admin_stream_free(st);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* h2o took the last event: its buffer is free again. */
static void
admin_stream_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct admin_stream *st = (struct admin_stream *)gen;

    st->sending = false;
    free(st->event);
    st->event = NULL;
    if (st->ending) {
        admin_stream_end(st);
    }
}

/* The client went away (or the server is closing it): req and its pool
 * are gone after this returns. */
static void
admin_stream_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    admin_stream_free((struct admin_stream *)gen);
}

static void
admin_tick(uv_timer_t *t)
{
    struct admin *adm = t->data;
    struct broker *b = adm->loop->broker;
    char *event = NULL;
    struct list *n;

    if (b == NULL || b->shutting_down || adm->loop->stopping) {
        /* No more events: admin_shutdown() ends the streams. */
        uv_timer_stop(t);
        return;
    }
    for (n = adm->streams.next; n != &adm->streams; n = n->next) {
        struct admin_stream *st = container_of(n, struct admin_stream, node);
        char *copy;
        if (st->sending) {
            continue; /* a slow client skips this event */
        }
        if (event == NULL && (event = admin_event(adm)) == NULL) {
            return;
        }
        copy = strdup(event);
        if (copy != NULL) {
            admin_stream_send(st, copy);
        }
    }
    free(event);
}

static int
admin_stream(h2o_handler_t *self, h2o_req_t *req)
{
    struct admin *adm = admin_of(self);
    struct admin_stream *st;
    char *event;

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
    event = admin_event(adm);
    if (st == NULL || event == NULL) {
        free(st);
        free(event);
        http_respond_error(req, FERRY_ENOMEM, NULL);
        return 0;
    }
    if (!adm->timer_on) {
        uv_timer_init(&adm->loop->uv, &adm->timer);
        adm->timer.data = adm;
        uv_unref((uv_handle_t *)&adm->timer);
        adm->timer_on = true;
    }
    if (adm->n_streams == 0) {
        uv_timer_start(&adm->timer, admin_tick, ADMIN_TICK_MS, ADMIN_TICK_MS);
    }
    st->gen.proceed = admin_stream_proceed;
    st->gen.stop = admin_stream_stop;
    st->adm = adm;
    st->req = req;
    list_push_back(&adm->streams, &st->node);
    adm->n_streams++;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_start_response(req, &st->gen);
    admin_stream_send(st, event);
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

    if (adm->timer_on) {
        uv_timer_stop(&adm->timer);
    }
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
admin_free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* A handler goes away (the server is freed); the last frees the state. */
static void
admin_dispose(h2o_handler_t *self)
{
    struct admin *adm = admin_of(self);

    if (adm == NULL || --adm->refs > 0) {
        return;
    }
    if (adm->timer_on && !uv_is_closing((uv_handle_t *)&adm->timer)) {
        uv_close((uv_handle_t *)&adm->timer, admin_free_cb);
    } else {
        /* Never started, or already closed by the loop's last sweep. */
        free(adm);
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
        {"/v1/admin/", admin_command},
    };
    struct admin *adm = calloc(1, sizeof(*adm));

    if (adm == NULL) {
        log_error("http: admin endpoints: out of memory");
        return;
    }
    adm->loop = http_server_loop(s);
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
