/* SPDX-License-Identifier: MIT */
/*
 * id_routes.c - ferry.id over HTTP (docs/http.md):
 *   GET /v1/id?count=N   N ids (1..10000, default 1): {"ids": ["…", …]}
 *                        (decimal strings: a u64 does not fit a JSON
 *                        number everywhere)
 *   GET /v1/id/{id}      decodes a decimal id: {"id": "…", "unix_ms": …,
 *                        "node": …, "seq": …}
 * Each is one call of ferry.id through icall_submit() with the payload of
 * docs/services.md: the same path, stats and access rule (caller_token)
 * as POST /v1/call. The per-request state lives in h2o's pool.
 */
#include "http/id_routes.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/icall.h"
#include "core/config.h"
#include "core/list.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/respond.h"
#include "servants/id_codec.h"

#define ID_ROUTES_PATH "/v1/id"
#define ID_ROUTES_SERVICE "ferry.id"

struct id_routes_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

struct id_routes_call {
    struct icall ic;     /* the call into the broker */
    h2o_generator_t gen; /* started early for HTTP/2 */
    h2o_req_t *req;      /* borrowed */
    struct broker *b;    /* borrowed */
    uint8_t op;          /* ID_OP_NEXT or ID_OP_DECODE */
    uint64_t id;         /* DECODE: the id asked about */
    uint8_t payload[9];  /* the request */
};

static void
id_routes_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
}

static void
id_routes_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct id_routes_call *ic = container_of(gen, struct id_routes_call, gen);

    icall_cancel(ic->b, &ic->ic);
}

static void
id_routes_done(struct icall *icl, ferry_err err, const void *data, size_t len)
{
    struct id_routes_call *ic = container_of(icl, struct id_routes_call, ic);
    h2o_req_t *req = ic->req;
    char msg[ID_CODEC_ERR_SIZE];
    struct id_parts p;
    const uint8_t *ids;
    uint32_t n, i;
    char *body;
    size_t at = 0;

    if (err != FERRY_OK) {
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    if (ic->op == ID_OP_DECODE) {
        if (id_decode_decode_reply(data, len, &p, msg, sizeof(msg)) !=
            FERRY_OK) {
            http_respond_error(req, FERRY_EPROTO, msg);
            return;
        }
        body = h2o_mem_alloc_pool(&req->pool, 128);
        at = (size_t)snprintf(body, 128,
                              "{\"id\":\"%" PRIu64 "\",\"unix_ms\":%" PRIu64
                              ",\"node\":%u,\"seq\":%u}",
                              ic->id, p.unix_ms, (unsigned)p.node,
                              (unsigned)p.seq);
        http_respond_json(req, 200, body, at);
        return;
    }
    if (id_decode_next_reply(data, len, &n, &ids, msg, sizeof(msg)) !=
        FERRY_OK) {
        http_respond_error(req, FERRY_EPROTO, msg);
        return;
    }
    /* {"ids":[ + n x ("20 digits", ) + ]} */
    body = h2o_mem_alloc_pool(&req->pool, 16 + 24 * (size_t)n);
    at = (size_t)sprintf(body, "{\"ids\":[");
    for (i = 0; i < n; i++) {
        at += (size_t)sprintf(body + at, "%s\"%" PRIu64 "\"", i ? "," : "",
                              id_get(ids, i));
    }
    at += (size_t)sprintf(body + at, "]}");
    http_respond_json(req, 200, body, at);
}

/* A decimal u64 of [p, end); false when it is none. */
static bool
id_routes_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;

    if (p == end || end - p > 20) {
        return false;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' ||
            v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

static int
id_routes_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct id_routes_handler *h = (struct id_routes_handler *)self;
    struct loop *l = http_server_loop(h->s);
    const struct config *cfg = l->cfg;
    size_t plen = sizeof(ID_ROUTES_PATH) - 1, path_len = req->path.len, n;
    const char *q, *end;
    struct id_routes_call *ic;
    uint64_t v = 1;
    const h2o_iovec_t m = req->method;

    if (req->query_at != SIZE_MAX && req->query_at < path_len) {
        path_len = req->query_at;
    }
    if (!auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        auth_refuse(req);
        return 0;
    }
    if (!h2o_memis(m.base, m.len, H2O_STRLIT("GET"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "use GET /v1/id?count=N or GET /v1/id/{id}");
        return 0;
    }
    ic = h2o_mem_alloc_pool(&req->pool, sizeof(*ic));
    memset(ic, 0, sizeof(*ic));
    if (path_len == plen ||
        (path_len == plen + 1 && req->path.base[plen] == '/')) {
        ic->op = ID_OP_NEXT;
        if (req->query_at != SIZE_MAX) {
            q = req->path.base + req->query_at + 1;
            end = req->path.base + req->path.len;
            if (end - q < 6 || memcmp(q, "count=", 6) != 0 ||
                !id_routes_u64(q + 6, end, &v) || v < 1 || v > ID_COUNT_MAX) {
                http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                                   "query: only count=N (1 to 10000) is "
                                   "known");
                return 0;
            }
        }
        n = id_encode_next(ic->payload, (uint32_t)v);
    } else if (req->path.base[plen] == '/') {
        if (!id_routes_u64(req->path.base + plen + 1, req->path.base + path_len,
                           &v) ||
            (v >> 63) != 0) {
            http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                               "ferry.id: /v1/id/{id} needs a decimal id "
                               "below 2^63");
            return 0;
        }
        ic->op = ID_OP_DECODE;
        ic->id = v;
        n = id_encode_decode(ic->payload, v);
    } else {
        http_respond_status(req, 404, "NOT_FOUND", "no such route");
        return 0;
    }
    ic->req = req;
    ic->b = l->broker;
    ic->ic.id = 0;
    ic->ic.internals = auth_may_see_internals(req, cfg);
    if (req->version >= 0x200) {
        ic->gen.proceed = id_routes_proceed;
        ic->gen.stop = id_routes_stop;
        h2o_start_response(req, &ic->gen);
    }
    icall_submit(ic->b, &ic->ic, slice_str(ID_ROUTES_SERVICE),
                 (struct slice){NULL, 0}, (struct slice){ic->payload, n}, 0,
                 ic->op == ID_OP_DECODE ? FERRY_IDEMPOTENT : 0, id_routes_done);
    return 0;
}

void
id_routes_register(struct http_server *s)
{
    struct id_routes_handler *h;

    h = (struct id_routes_handler *)http_server_add_path(
        s, ID_ROUTES_PATH, id_routes_on_req, sizeof(*h));
    h->s = s;
}
