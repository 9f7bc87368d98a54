/* SPDX-License-Identifier: MIT */
/*
 * cache_routes.c - GET, PUT and DELETE /v1/cache/{key}: ferry.cache over
 * HTTP.
 *
 * The key is the rest of the path, percent-decoded (any bytes, '/'
 * included). Each request becomes one call of ferry.cache through
 * icall_submit(), with the payload of docs/services.md and the key as
 * the routing key: the same request path, stats and access rule
 * (caller_token) as POST /v1/call. GET answers the value with headers
 * ferry-cas and ferry-flags, 404 on a miss; PUT stores the body
 * (?ttl_ms=, ?flags=) and answers {"cas": "N"} with ferry-cas; DELETE
 * answers 204, 404 on a miss. The per-request state lives in h2o's pool.
 */
#include "http/cache_routes.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/icall.h"
#include "core/config.h"
#include "core/list.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/respond.h"
#include "servants/cache_codec.h"

#define CACHE_ROUTES_PREFIX "/v1/cache/"
#define CACHE_ROUTES_SERVICE "ferry.cache"

struct cache_routes_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

/* One HTTP request waiting for its call; in the request's pool. */
struct cache_routes_call {
    struct icall ic;     /* the call into the broker */
    h2o_generator_t gen; /* started early for HTTP/2 */
    h2o_req_t *req;      /* borrowed: alive until answered or stopped */
    struct broker *b;    /* borrowed */
    uint8_t op;          /* GET, SET or DELETE */
};

static void
cache_routes_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    /* The answer is sent whole. */
}

static void
cache_routes_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct cache_routes_call *cc =
        container_of(gen, struct cache_routes_call, gen);

    icall_cancel(cc->b, &cc->ic);
}

static void
cache_routes_header_u64(h2o_req_t *req, const char *name, uint64_t v)
{
    char *text = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(text, 24, "%" PRIu64, v);

    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, text, (size_t)n);
}

static void
cache_routes_done(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct cache_routes_call *cc =
        container_of(ic, struct cache_routes_call, ic);
    h2o_req_t *req = cc->req;
    struct cache_reply rep;
    char body[48];
    int n;

    if (err != FERRY_OK) {
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    if (cache_codec_decode_reply(cc->op, (struct slice){data, len}, &rep) !=
        FERRY_OK) {
        http_respond_error(req, FERRY_EPROTO, "ferry.cache: malformed reply");
        return;
    }
    if (rep.status == CACHE_ST_NOT_FOUND) {
        http_respond_status(req, 404, "NOT_FOUND", "no such item");
        return;
    }
    switch (cc->op) {
    case CACHE_OP_GET:
        cache_routes_header_u64(req, "ferry-cas", rep.cas);
        cache_routes_header_u64(req, "ferry-flags", rep.flags);
        http_respond(req, 200, "application/octet-stream", rep.value.p,
                     rep.value.len);
        return;
    case CACHE_OP_SET:
        cache_routes_header_u64(req, "ferry-cas", rep.cas);
        n = snprintf(body, sizeof(body), "{\"cas\":\"%" PRIu64 "\"}", rep.cas);
        http_respond_json(req, 200, body, (size_t)n);
        return;
    default:
        http_respond(req, 204, NULL, NULL, 0);
        return;
    }
}

/* Parses ?ttl_ms=N&flags=N into r; false (answered 400) when bad. */
static bool
cache_routes_query(h2o_req_t *req, struct cache_req *r)
{
    const char *q, *end, *amp, *eq;
    uint64_t v;
    size_t nlen;

    if (req->query_at == SIZE_MAX) {
        return true;
    }
    q = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (q < end) {
        amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL) {
            amp = end;
        }
        eq = memchr(q, '=', (size_t)(amp - q));
        if (eq == NULL || eq + 1 == amp || amp - eq - 1 > 10) {
            goto out_bad;
        }
        v = 0;
        for (const char *p = eq + 1; p < amp; p++) {
            if (*p < '0' || *p > '9') {
                goto out_bad;
            }
            v = v * 10 + (uint64_t)(*p - '0');
        }
        if (v > UINT32_MAX) {
            goto out_bad;
        }
        nlen = (size_t)(eq - q);
        if (nlen == 6 && memcmp(q, "ttl_ms", 6) == 0) {
            r->ttl_ms = (uint32_t)v;
        } else if (nlen == 5 && memcmp(q, "flags", 5) == 0) {
            r->flags = (uint32_t)v;
        } else {
            goto out_bad;
        }
        q = amp + 1;
    }
    return true;

out_bad:
    http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                       "query: only ttl_ms=N and flags=N (0 to 4294967295) "
                       "are known");
    return false;
}

static int
cache_routes_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct cache_routes_handler *h = (struct cache_routes_handler *)self;
    struct loop *l = http_server_loop(h->s);
    const struct config *cfg = l->cfg;
    size_t plen = sizeof(CACHE_ROUTES_PREFIX) - 1, path_len = req->path.len;
    struct cache_routes_call *cc;
    struct cache_req r = {0};
    uint8_t *key, *payload;
    size_t klen = 0, n;
    const h2o_iovec_t m = req->method;

    if (req->query_at != SIZE_MAX && req->query_at < path_len) {
        path_len = req->query_at;
    }
    if (path_len <= plen ||
        memcmp(req->path.base, CACHE_ROUTES_PREFIX, plen) != 0) {
        http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                           "no key in the path: /v1/cache/{key}");
        return 0;
    }
    if (!auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        auth_refuse(req);
        return 0;
    }
    if (h2o_memis(m.base, m.len, H2O_STRLIT("GET")) ||
        h2o_memis(m.base, m.len, H2O_STRLIT("HEAD"))) {
        r.op = CACHE_OP_GET;
    } else if (h2o_memis(m.base, m.len, H2O_STRLIT("PUT"))) {
        r.op = CACHE_OP_SET;
    } else if (h2o_memis(m.base, m.len, H2O_STRLIT("DELETE"))) {
        r.op = CACHE_OP_DELETE;
    } else {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD, PUT, DELETE"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "use GET, PUT or DELETE /v1/cache/{key}");
        return 0;
    }
    /* The key, percent-decoded; checked before anything else is built. */
    key = h2o_mem_alloc_pool(&req->pool, path_len - plen);
    for (size_t i = plen; i < path_len; i++) {
        char c = req->path.base[i];
        if (c == '%' && i + 2 < path_len &&
            h2o_hex_decode(&c, req->path.base + i + 1, 2) == 0) {
            i += 2;
        }
        key[klen++] = (uint8_t)c;
    }
    if (klen > CACHE_CODEC_KEY_MAX) {
        http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                           "ferry.cache: key must be 1 to 250 bytes");
        return 0;
    }
    if (r.op == CACHE_OP_SET) {
        if (req->entity.len > http_server_max_body(h->s)) {
            http_respond_error(req, FERRY_ETOO_BIG, "request body too large");
            return 0;
        }
        if (!cache_routes_query(req, &r)) {
            return 0;
        }
        r.value =
            (struct slice){(const uint8_t *)req->entity.base,
                           req->entity.base != NULL ? req->entity.len : 0};
    }
    n = cache_codec_write_request(NULL, &r);
    payload = h2o_mem_alloc_pool(&req->pool, n);
    cache_codec_write_request(payload, &r);

    cc = h2o_mem_alloc_pool(&req->pool, sizeof(*cc));
    cc->req = req;
    cc->b = l->broker;
    cc->op = r.op;
    cc->ic.id = 0;
    cc->ic.internals = auth_may_see_internals(req, cfg);
    if (req->version >= 0x200) {
        cc->gen.proceed = cache_routes_proceed;
        cc->gen.stop = cache_routes_stop;
        h2o_start_response(req, &cc->gen);
    }
    icall_submit(cc->b, &cc->ic, slice_str(CACHE_ROUTES_SERVICE),
                 (struct slice){key, klen}, (struct slice){payload, n}, 0,
                 r.op == CACHE_OP_SET ? 0 : FERRY_IDEMPOTENT,
                 cache_routes_done);
    return 0;
}

void
cache_routes_register(struct http_server *s)
{
    struct cache_routes_handler *h;

    h = (struct cache_routes_handler *)http_server_add_path(
        s, "/v1/cache", cache_routes_on_req, sizeof(*h));
    h->s = s;
}
