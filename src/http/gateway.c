/* SPDX-License-Identifier: MIT */
/*
 * gateway.c - HTTP requests into services.
 *
 * POST /v1/call/{service} sends the body as the payload; the reply
 * payload is the 200 body. A route (`GET /fib/{n} fib`) sends a JSON
 * object of the path parameters and answers application/json. Both go
 * through icall_submit(), the same request path as binary callers.
 *
 * The handler returns at once and the answer comes from the broker's
 * callback. State lives in the request's pool; nothing is malloc'd per
 * request. With HTTP/2 a stream can be reset while the call waits, so the
 * response is started at once with a generator whose stop callback
 * cancels the call; with HTTP/1 h2o stops reading while a request is being
 * answered and keeps it alive until the answer, so the response starts
 * from the callback, when its length is known (no chunked encoding).
 */
#include "http/gateway.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/icall.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/respond.h"
#include "http/route.h"

#define GATEWAY_PREFIX "/v1/call/"

/* A gateway handler: h2o's handler first, then the server. */
struct gateway_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

/* One HTTP request waiting for its call; lives in the request's pool. */
struct gateway_call {
    struct icall ic;     /* the call into the broker */
    h2o_generator_t gen; /* started early for HTTP/2 */
    h2o_req_t *req;      /* borrowed: alive until answered or stopped */
    struct broker *b;    /* borrowed */
    const char *ctype;   /* Content-Type of a successful answer */
};

static void
gateway_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    /* The answer is sent whole, with H2O_SEND_STATE_FINAL. */
}

/* The HTTP/2 stream went away before the answer: withdraw the call. */
static void
gateway_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct gateway_call *gc = container_of(gen, struct gateway_call, gen);

    icall_cancel(gc->b, &gc->ic);
}

static void
gateway_done(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct gateway_call *gc = container_of(ic, struct gateway_call, ic);
    h2o_req_t *req = gc->req;

    if (err == FERRY_OK) {
        /* Up to max_frame, held by h2o until the client takes it. */
        http_server_note_output(req, len);
        http_respond(req, 200, gc->ctype, data, len);
        return;
    }
    http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
}

/* The path of req without its query string. */
static h2o_iovec_t
gateway_path(const h2o_req_t *req)
{
    h2o_iovec_t p = req->path;

    if (req->query_at != SIZE_MAX && req->query_at < p.len) {
        p.len = req->query_at;
    }
    return p;
}

/* Parses Ferry-Timeout and Ferry-Key; answers 400 itself and returns
 * false when one is bad. */
static bool
gateway_headers(h2o_req_t *req, uint32_t *deadline_ms, struct slice *key)
{
    ssize_t i;

    *deadline_ms = 0;
    key->p = NULL;
    key->len = 0;
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("ferry-timeout"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        uint64_t ms = 0;
        if (v.len == 0 || v.len > 10) {
            goto out_bad_timeout;
        }
        for (size_t k = 0; k < v.len; k++) {
            if (v.base[k] < '0' || v.base[k] > '9') {
                goto out_bad_timeout;
            }
            ms = ms * 10 + (uint64_t)(v.base[k] - '0');
        }
        if (ms == 0 || ms > UINT32_MAX) {
            goto out_bad_timeout;
        }
        *deadline_ms = (uint32_t)ms;
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("ferry-key"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > FRAME_MAX_KEY) {
            http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                               "Ferry-Key longer than 1024 bytes");
            return false;
        }
        key->p = (const uint8_t *)v.base;
        key->len = v.len;
    }
    return true;

out_bad_timeout:
    http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                       "Ferry-Timeout must be a whole number of "
                       "milliseconds from 1 to 4294967295");
    return false;
}

/* Whether the call carries Ferry-Idempotent: 1 (or true), so that ferryd
 * may retry it on another worker. */
static bool
gateway_is_idempotent(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers,
                                       H2O_STRLIT("ferry-idempotent"), -1);
    h2o_iovec_t v;

    if (i < 0) {
        return false;
    }
    v = req->headers.entries[i].value;
    return (v.len == 1 && v.base[0] == '1') ||
           h2o_lcstris(v.base, v.len, H2O_STRLIT("true"));
}

/* Starts the call; the answer comes through gateway_done(). */
static void
gateway_submit(struct http_server *s, h2o_req_t *req, struct slice service,
               struct slice key, struct slice payload, uint32_t deadline_ms,
               const char *ctype)
{
    struct gateway_call *gc = h2o_mem_alloc_pool(&req->pool, sizeof(*gc));

    gc->req = req;
    gc->b = http_server_loop(s)->broker;
    gc->ctype = ctype;
    gc->ic.id = 0;
    /* ferry.services decides with this: the one rule for internals. */
    gc->ic.internals =
        auth_may_see_internals(req, http_server_loop(s)->cfg);
    if (req->version >= 0x200) {
        gc->gen.proceed = gateway_proceed;
        gc->gen.stop = gateway_stop;
        h2o_start_response(req, &gc->gen);
    }
    icall_submit(gc->b, &gc->ic, service, key, payload, deadline_ms,
                 gateway_is_idempotent(req) ? FERRY_IDEMPOTENT : 0,
                 gateway_done);
}

/* Whether req carries caller_token (or admin_token) when it is set; else
 * the 401 is sent here. */
static bool
gateway_is_allowed(struct http_server *s, h2o_req_t *req)
{
    const struct config *cfg = http_server_loop(s)->cfg;

    if (auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        return true;
    }
    auth_refuse(req);
    return false;
}

static int
gateway_call_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct gateway_handler *h = (struct gateway_handler *)self;
    h2o_iovec_t path = gateway_path(req);
    size_t plen = sizeof(GATEWAY_PREFIX) - 1;
    struct slice service, key, payload;
    uint32_t deadline_ms;
    char *name;
    size_t n = 0;

    if (path.len < plen || memcmp(path.base, GATEWAY_PREFIX, plen) != 0 ||
        path.len == plen) {
        http_respond_error(req, FERRY_EUNKNOWN_SERVICE,
                           "no service in the path: POST /v1/call/{service}");
        return 0;
    }
    if (!gateway_is_allowed(h->s, req)) {
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("POST"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "use POST /v1/call/{service}");
        return 0;
    }
    /* The service name, percent-decoded; no '/' in it. */
    name = h2o_mem_alloc_pool(&req->pool, path.len - plen);
    for (size_t i = plen; i < path.len; i++) {
        char c = path.base[i];
        if (c == '/') {
            n = 0;
            break;
        }
        if (c == '%' && i + 2 < path.len &&
            h2o_hex_decode(&c, path.base + i + 1, 2) == 0) {
            i += 2;
        }
        name[n++] = c;
    }
    if (n == 0 || n > FRAME_MAX_NAME) {
        http_respond_error(req, FERRY_EUNKNOWN_SERVICE, "bad service name");
        return 0;
    }
    if (req->entity.len > http_server_max_body(h->s)) {
        http_respond_error(req, FERRY_ETOO_BIG, "request body too large");
        return 0;
    }
    if (!gateway_headers(req, &deadline_ms, &key)) {
        return 0;
    }
    service.p = (const uint8_t *)name;
    service.len = n;
    payload.p = (const uint8_t *)req->entity.base;
    payload.len = req->entity.base != NULL ? req->entity.len : 0;
    gateway_submit(h->s, req, service, key, payload, deadline_ms,
                   "application/octet-stream");
    return 0;
}

static int
gateway_route_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct gateway_handler *h = (struct gateway_handler *)self;
    const struct route_table *t = http_server_routes(h->s);
    h2o_iovec_t path = gateway_path(req);
    struct slice params[ROUTE_MAX_SEGS];
    const struct route *r;
    struct slice service, key, payload;
    uint32_t deadline_ms;
    bool path_known;
    char *json, *scratch;

    if (t->n == 0) {
        return -1;
    }
    r = route_find(t, req->method.base, req->method.len, path.base, path.len,
                   params, &path_known);
    if (r == NULL) {
        if (!path_known) {
            return -1;
        }
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "method not allowed on this route");
        return 0;
    }
    if (!gateway_is_allowed(h->s, req)) {
        return 0;
    }
    if (!gateway_headers(req, &deadline_ms, &key)) {
        return 0;
    }
    json = h2o_mem_alloc_pool(&req->pool, route_payload_max(r, path.len));
    scratch = h2o_mem_alloc_pool(&req->pool, path.len + 1);
    payload.p = (const uint8_t *)json;
    payload.len = route_payload(r, params, json, scratch);
    service.p = (const uint8_t *)r->service;
    service.len = r->service_len;
    gateway_submit(h->s, req, service, key, payload, deadline_ms,
                   "application/json");
    return 0;
}

static int
gateway_fallback_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_respond_status(req, 404, "NOT_FOUND", "no such path");
    return 0;
}

void
gateway_register(struct http_server *s)
{
    struct gateway_handler *h;

    h = (struct gateway_handler *)http_server_add_path(
        s, "/v1/call", gateway_call_on_req, sizeof(*h));
    h->s = s;
    h = (struct gateway_handler *)http_server_add_path(
        s, "/", gateway_route_on_req, sizeof(*h));
    h->s = s;
}

void
gateway_register_fallback(struct http_server *s)
{
    http_server_add_path(s, "/", gateway_fallback_on_req,
                         sizeof(h2o_handler_t));
}
