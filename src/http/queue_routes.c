/* SPDX-License-Identifier: MIT */
/*
 * queue_routes.c - ferry.queue over HTTP (docs/http.md):
 *   POST   /v1/queues/{q}/jobs          push the body: 201 {"id","dup"}
 *   POST   /v1/queues/{q}/reserve       the job as the body with headers
 *                                       Ferry-Job-Id/-Token/-Attempts/
 *                                       -Priority (or ?format=json); 204
 *                                       when none came within wait_ms
 *   POST   /v1/queues/{q}/jobs/{id}/ack|release|touch|bury
 *   GET    /v1/queues, /v1/queues/{q}   STATS; DELETE /v1/queues/{q}
 *   GET    /v1/queues/{q}/peek          PEEK as JSON
 *   POST   /v1/queues/{q}/pause|resume|purge|redrive
 *   GET    /v1/queues/{q}/settings, PUT (CONFIGURE)
 * queue_path.c parses the request; each one is then one call of
 * ferry.queue through icall_submit() with the payload of docs/queues.md
 * and the queue as the routing key: the same path, stats and access rule
 * (caller_token) as POST /v1/call. Ids and tokens are JSON strings (u64).
 *
 * A reserve that waits must not hand a job to a client that has left:
 * with HTTP/2 h2o stops the stream's generator and the call is withdrawn
 * (the engine makes a job whose reservation was in flight ready again);
 * with HTTP/1.1 h2o reads nothing while the request is answered, so the
 * socket is watched (http_server_watch_peer()) and the call withdrawn
 * when the client's end comes. A job that arrives for a client found gone
 * at that moment is released at once, not left reserved until its
 * visibility timeout. The per-request state lives in h2o's pool, with a
 * dispose callback that withdraws whatever is still in flight.
 */
#include "http/queue_routes.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/icall.h"
#include "core/config.h"
#include "core/list.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/queue_path.h"
#include "http/respond.h"
#include "queue/queue.h"

/* What a reserve's deadline gives beyond its wait (the CLI's too). */
#define QUEUE_ROUTES_MARGIN_MS 5000
/* A RELEASE's payload: op, id, token, delay. */
#define QUEUE_ROUTES_RELEASE_LEN 21

struct queue_routes_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

/* One HTTP request and its call; in the request's pool (shared, so that
 * disposing the pool withdraws what is in flight). */
struct queue_routes_call {
    struct icall ic;             /* the call into the broker */
    struct icall rel;            /* the RELEASE of a job nobody took */
    h2o_generator_t gen;         /* started early for HTTP/2 */
    struct http_peer_watch peer; /* HTTP/1.1: a waiting reserve's client */
    h2o_req_t *req;              /* borrowed: alive until answered */
    struct broker *b;            /* borrowed */
    struct queue_path qp;        /* the request, parsed */
    uint8_t rel_payload[QUEUE_ROUTES_RELEASE_LEN]; /* the RELEASE */
};

static void
queue_routes_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    /* The answer is sent whole. */
}

/* The HTTP/2 stream went away before the answer: withdraw the call. */
static void
queue_routes_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct queue_routes_call *qc =
        container_of(gen, struct queue_routes_call, gen);

    icall_cancel(qc->b, &qc->ic);
    icall_cancel(qc->b, &qc->rel);
}

/* h2o frees the request's pool; no-ops once answered. */
static void
queue_routes_dispose(void *p)
{
    struct queue_routes_call *qc = p;

    http_server_unwatch_peer(&qc->peer);
    icall_cancel(qc->b, &qc->ic);
    icall_cancel(qc->b, &qc->rel);
}

static void
queue_routes_header_u64(h2o_req_t *req, const char *name, uint64_t v)
{
    char *text = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(text, 24, "%" PRIu64, v);

    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, text, (size_t)n);
}

static void
queue_routes_header_i64(h2o_req_t *req, const char *name, int64_t v)
{
    char *text = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(text, 24, "%" PRId64, v);

    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, text, (size_t)n);
}

/* A small JSON answer, formatted into the pool. */
static void queue_routes_json(h2o_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
queue_routes_json(h2o_req_t *req, int status, const char *fmt, ...)
{
    char *body = h2o_mem_alloc_pool(&req->pool, 128);
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, 128, fmt, ap);
    va_end(ap);
    http_respond_json(req, status, body, (size_t)n);
}

/* Bytes http_json_escape() writes for s, which is UTF-8: exact, where
 * HTTP_JSON_ESCAPED_MAX() would reserve six times a job's size. */
static size_t
queue_routes_text_len(struct slice s)
{
    size_t n = 2 + s.len;

    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.p[i];
        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            n += 1;
        } else if (c < 0x20) {
            n += 5;
        }
    }
    return n;
}

/* Room queue_routes_bytes() needs for s. */
static size_t
queue_routes_bytes_max(struct slice s)
{
    return 40 + h2o_base64_encode_capacity(s.len) +
           (http_is_utf8(s.p, s.len) ? queue_routes_text_len(s) : 0);
}

/* Writes ,"NAME_base64":"...", and ,"NAME":"..." when the bytes are UTF-8,
 * at dst; returns the bytes written. */
static size_t
queue_routes_bytes(char *dst, const char *name, struct slice s)
{
    size_t n = (size_t)sprintf(dst, ",\"%s_base64\":\"", name);

    n += h2o_base64_encode(dst + n, s.p, s.len, 0);
    dst[n++] = '"';
    if (http_is_utf8(s.p, s.len)) {
        n += (size_t)sprintf(dst + n, ",\"%s\":", name);
        n += http_json_escape(dst + n, s.p, s.len);
    }
    return n;
}

/* RESERVE with ?format=json. */
static void
queue_routes_reserve_json(h2o_req_t *req, const struct queue_reply *rep)
{
    size_t cap = 160 + queue_routes_bytes_max(rep->payload), n;
    char *body = h2o_mem_alloc_pool(&req->pool, cap);

    n = (size_t)sprintf(body,
                        "{\"id\":\"%" PRIu64 "\",\"token\":\"%" PRIu64
                        "\",\"attempts\":%" PRIu32 ",\"priority\":%d",
                        rep->id, rep->token, rep->attempts, (int)rep->priority);
    n += queue_routes_bytes(body + n, "payload", rep->payload);
    body[n++] = '}';
    assert(n <= cap);
    http_server_note_output(req, n);
    http_respond_json(req, 200, body, n);
}

/* PEEK: {"queue", "which", "jobs": [...]}. */
static void
queue_routes_peek_json(h2o_req_t *req, const struct queue_path *qp,
                       const struct queue_reply *rep)
{
    static const char *const which[] = {"ready", "delayed", "dead", "reserved"};
    static const char *const states[] = {"ready", "delayed", "reserved"};
    struct slice rest = rep->entries;
    struct queue_peek_entry e;
    size_t cap = 64 + HTTP_JSON_ESCAPED_MAX(qp->r.queue.len), n;
    char *body;

    while (queue_codec_next_peek_entry(&rest, &e)) {
        cap += 200 + HTTP_JSON_ESCAPED_MAX(e.reason.len) +
               queue_routes_bytes_max(e.payload);
    }
    body = h2o_mem_alloc_pool(&req->pool, cap);
    n = (size_t)sprintf(body, "{\"queue\":");
    n += http_json_escape(body + n, qp->r.queue.p, qp->r.queue.len);
    n += (size_t)sprintf(body + n, ",\"which\":\"%s\",\"jobs\":[",
                         which[qp->r.which & 3]);
    rest = rep->entries;
    for (uint32_t i = 0; i < rep->n && queue_codec_next_peek_entry(&rest, &e);
         i++) {
        n += (size_t)sprintf(
            body + n,
            "%s{\"id\":\"%" PRIu64 "\",\"attempts\":%" PRIu32
            ",\"priority\":%d,\"state\":\"%s\",\"age_ms\":%" PRIu64
            ",\"reason\":",
            i > 0 ? "," : "", e.id, e.attempts, (int)e.priority,
            states[e.state % 3], e.age_ms);
        n += http_json_escape(body + n, e.reason.p, e.reason.len);
        n += queue_routes_bytes(body + n, "payload", e.payload);
        body[n++] = '}';
    }
    n += (size_t)sprintf(body + n, "]}");
    assert(n < cap);
    http_server_note_output(req, n);
    http_respond_json(req, 200, body, n);
}

/* GET .../settings: the "settings" member of the queue's STATS. */
static void
queue_routes_settings_json(h2o_req_t *req, struct slice doc)
{
    json_t *o = json_loadb((const char *)doc.p, doc.len, 0, NULL);
    json_t *set = json_object_get(o, "settings");
    char *text = set != NULL ? json_dumps(set, JSON_COMPACT) : NULL;

    json_decref(o);
    if (text == NULL) {
        http_respond_error(req, FERRY_EPROTO, "ferry.queue: malformed stats");
        return;
    }
    http_respond_json(req, 200, text, strlen(text));
    free(text);
}

/* The release of a job whose client had gone is decided: the request
 * gets its answer (nobody reads it) so that h2o can close. */
static void
queue_routes_released(struct icall *ic, ferry_err err, const void *data,
                      size_t len)
{
    struct queue_routes_call *qc =
        container_of(ic, struct queue_routes_call, rel);

    http_respond_error(qc->req, FERRY_ECANCELLED,
                       "the client went away; the job was released");
}

/* A job came for an HTTP/1.1 client found gone: released, to be ready
 * at once for the next reserve (its delivery was counted). */
static void
queue_routes_release(struct queue_routes_call *qc,
                     const struct queue_reply *rep)
{
    struct queue_req r;

    memset(&r, 0, sizeof(r));
    r.op = QUEUE_OP_RELEASE;
    r.id = rep->id;
    r.token = rep->token;
    queue_codec_write_request(qc->rel_payload, &r);
    qc->rel.id = 0;
    qc->rel.internals = qc->ic.internals;
    icall_submit(qc->b, &qc->rel, slice_str(QUEUE_SERVICE_NAME), qc->qp.r.queue,
                 (struct slice){qc->rel_payload, sizeof(qc->rel_payload)}, 0, 0,
                 queue_routes_released);
}

/* The answer of a reply with status OK. */
static void
queue_routes_ok(struct queue_routes_call *qc, const struct queue_reply *rep)
{
    h2o_req_t *req = qc->req;

    switch (qc->qp.r.op) {
    case QUEUE_OP_PUSH:
        queue_routes_header_u64(req, "ferry-job-id", rep->id);
        queue_routes_json(req, rep->dup ? 200 : 201,
                          "{\"id\":\"%" PRIu64 "\",\"dup\":%s}", rep->id,
                          rep->dup ? "true" : "false");
        return;
    case QUEUE_OP_RESERVE:
        if (req->version < 0x200 && http_server_is_peer_gone(req)) {
            queue_routes_release(qc, rep);
            return;
        }
        queue_routes_header_u64(req, "ferry-job-id", rep->id);
        queue_routes_header_u64(req, "ferry-job-token", rep->token);
        queue_routes_header_u64(req, "ferry-job-attempts", rep->attempts);
        queue_routes_header_i64(req, "ferry-job-priority", rep->priority);
        if (qc->qp.json) {
            queue_routes_reserve_json(req, rep);
            return;
        }
        http_server_note_output(req, rep->payload.len);
        http_respond(req, 200, "application/octet-stream", rep->payload.p,
                     rep->payload.len);
        return;
    case QUEUE_OP_TOUCH:
        queue_routes_json(req, 200, "{\"visibility_ms\":%" PRIu32 "}",
                          rep->deadline_ms);
        return;
    case QUEUE_OP_PURGE:
        queue_routes_json(req, 200, "{\"removed\":%" PRIu64 "}", rep->count);
        return;
    case QUEUE_OP_REDRIVE:
        queue_routes_json(req, 200, "{\"moved\":%" PRIu64 "}", rep->count);
        return;
    case QUEUE_OP_PEEK:
        queue_routes_peek_json(req, &qc->qp, rep);
        return;
    case QUEUE_OP_STATS:
    case QUEUE_OP_CONFIGURE:
        if (qc->qp.settings) {
            queue_routes_settings_json(req, rep->json);
            return;
        }
        http_server_note_output(req, rep->json.len);
        http_respond_json(req, 200, (const char *)rep->json.p, rep->json.len);
        return;
    default: /* ACK, RELEASE, BURY, PAUSE, RESUME, DELETE */
        http_respond_json(req, 200, "{\"ok\":true}", 11);
        return;
    }
}

static void
queue_routes_done(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct queue_routes_call *qc =
        container_of(ic, struct queue_routes_call, ic);
    h2o_req_t *req = qc->req;
    uint8_t op = qc->qp.r.op;
    struct queue_reply rep;
    bool job = op == QUEUE_OP_ACK || op == QUEUE_OP_RELEASE ||
               op == QUEUE_OP_TOUCH || op == QUEUE_OP_BURY;

    http_server_unwatch_peer(&qc->peer);
    if (err != FERRY_OK) {
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    if (queue_codec_decode_reply(op, (struct slice){data, len}, &rep) !=
        FERRY_OK) {
        http_respond_error(req, FERRY_EPROTO, "ferry.queue: malformed reply");
        return;
    }
    switch (rep.status) {
    case QUEUE_ST_OK:
        queue_routes_ok(qc, &rep);
        return;
    case QUEUE_ST_EMPTY:
        http_respond(req, 204, NULL, NULL, 0);
        return;
    case QUEUE_ST_STALE:
        http_respond_status(req, 409, "STALE",
                            "the token does not hold the job now: its "
                            "reservation ran out, or it was released");
        return;
    default:
        http_respond_status(req, 404, "NOT_FOUND",
                            job ? "no such job in this queue"
                                : "no such queue");
        return;
    }
}

/* An HTTP/1.1 client left while its reserve waited: withdrawn (the
 * engine drops the waiter), and answered so that h2o closes. */
static void
queue_routes_peer_gone(struct http_peer_watch *w)
{
    struct queue_routes_call *qc =
        container_of(w, struct queue_routes_call, peer);

    icall_cancel(qc->b, &qc->ic);
    http_respond_error(qc->req, FERRY_ECANCELLED,
                       "the client went away while the reserve waited");
}

/* The value of header name, p NULL when absent. */
static struct slice
queue_routes_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    struct slice s = {NULL, 0};

    if (i >= 0) {
        s.p = (const uint8_t *)req->headers.entries[i].value.base;
        s.len = req->headers.entries[i].value.len;
        if (s.p == NULL) {
            s.p = (const uint8_t *)"";
        }
    }
    return s;
}

static int
queue_routes_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct queue_routes_handler *h = (struct queue_routes_handler *)self;
    struct loop *l = http_server_loop(h->s);
    const struct config *cfg = l->cfg;
    struct queue_path_in in;
    struct queue_path qp;
    struct queue_routes_call *qc;
    const char *allow = NULL;
    char err[QUEUE_PATH_ERR_SIZE];
    uint8_t *scratch, *payload;
    uint32_t deadline_ms = 0;
    size_t n;
    int st;

    if (!auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        auth_refuse(req);
        return 0;
    }
    if (req->entity.len > http_server_max_body(h->s)) {
        http_respond_error(req, FERRY_ETOO_BIG, "request body too large");
        return 0;
    }
    in.method =
        (struct slice){(const uint8_t *)req->method.base, req->method.len};
    in.path = (struct slice){(const uint8_t *)req->path.base, req->path.len};
    in.body = (struct slice){(const uint8_t *)req->entity.base,
                             req->entity.base != NULL ? req->entity.len : 0};
    in.token = queue_routes_header(req, H2O_STRLIT("ferry-job-token"));
    in.dedup = queue_routes_header(req, H2O_STRLIT("ferry-dedup-id"));
    scratch = h2o_mem_alloc_pool(&req->pool, req->path.len + 1);
    st = queue_path_parse(&in, scratch, &qp, &allow, err);
    if (st == 405) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       allow, strlen(allow));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED", err);
        return 0;
    }
    if (st == 404) {
        http_respond_status(req, 404, "NOT_FOUND", err);
        return 0;
    }
    if (st != 0) {
        http_respond_error(req, FERRY_EINVALID_ARGUMENT, err);
        return 0;
    }
    if (qp.r.op == QUEUE_OP_RESERVE) {
        /* The deadline must outlast the wait, within max_deadline_ms: a
         * longer wait is cut to fit. */
        uint32_t maxd = cfg->max_deadline_ms;
        uint32_t margin = maxd / 2 < QUEUE_ROUTES_MARGIN_MS
                              ? maxd / 2
                              : QUEUE_ROUTES_MARGIN_MS;
        if (qp.r.wait_ms > maxd - margin) {
            qp.r.wait_ms = maxd - margin;
        }
        deadline_ms = qp.r.wait_ms + margin;
    }
    n = queue_codec_write_request(NULL, &qp.r);
    payload = h2o_mem_alloc_pool(&req->pool, n);
    queue_codec_write_request(payload, &qp.r);

    qc = h2o_mem_alloc_shared(&req->pool, sizeof(*qc), queue_routes_dispose);
    memset(qc, 0, sizeof(*qc));
    qc->req = req;
    qc->b = l->broker;
    qc->qp = qp;
    qc->ic.internals = auth_may_see_internals(req, cfg);
    if (req->version >= 0x200) {
        qc->gen.proceed = queue_routes_proceed;
        qc->gen.stop = queue_routes_stop;
        h2o_start_response(req, &qc->gen);
    } else if (qp.r.op == QUEUE_OP_RESERVE && qp.r.wait_ms > 0) {
        http_server_watch_peer(h->s, &qc->peer, req, queue_routes_peer_gone);
    }
    icall_submit(qc->b, &qc->ic, slice_str(QUEUE_SERVICE_NAME), qp.r.queue,
                 (struct slice){payload, n}, deadline_ms,
                 qp.r.op == QUEUE_OP_STATS || qp.r.op == QUEUE_OP_PEEK
                     ? FERRY_IDEMPOTENT
                     : 0,
                 queue_routes_done);
    return 0;
}

void
queue_routes_register(struct http_server *s)
{
    struct queue_routes_handler *h;

    h = (struct queue_routes_handler *)http_server_add_path(
        s, QUEUE_PATH_PREFIX, queue_routes_on_req, sizeof(*h));
    h->s = s;
}
