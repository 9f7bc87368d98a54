/* SPDX-License-Identifier: MIT */
/*
 * kv_routes.c - ferry.kv over HTTP (docs/http.md):
 *   GET    /v1/kv/{key}        the value, headers ferry-revision,
 *                              ferry-create-revision, ferry-mod-revision,
 *                              ferry-version; 404 on a miss
 *   PUT    /v1/kv/{key}        body = value; ?if_absent=1 or
 *                              ?if_mod_rev=R (412 when it fails);
 *                              {"revision": "N"}
 *   DELETE /v1/kv/{key}        ?if_mod_rev=R; {"revision": "N"}, 404, 412
 *   GET    /v1/kv?prefix=P&limit=N&start=S   a page of keys (JSON)
 *   GET    /v1/kv/{key}?watch=1&from_rev=R&wait_ms=N[&prefix=1]  long poll
 * Keys in the path and the query are percent-decoded bytes. Each request
 * is one call of ferry.kv through icall_submit() with the payload of
 * docs/services.md: the same path, stats and access rule (caller_token)
 * as POST /v1/call. Revisions are JSON strings (u64); keys and values
 * come as base64 ("key_b64", "value_b64") and, when valid UTF-8, also as
 * text ("key", "value"). The per-request state lives in h2o's pool.
 */
#include "http/kv_routes.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/icall.h"
#include "core/config.h"
#include "core/list.h"
#include "core/loop.h"
#include "http/auth.h"
#include "http/respond.h"
#include "servants/kv_codec.h"

#define KV_ROUTES_PATH "/v1/kv"
#define KV_ROUTES_SERVICE "ferry.kv"
#define KV_ROUTES_WAIT_MAX 60000

struct kv_routes_handler {
    h2o_handler_t super;   /* h2o's part */
    struct http_server *s; /* borrowed */
};

struct kv_routes_call {
    struct icall ic;     /* the call into the broker */
    h2o_generator_t gen; /* started early for HTTP/2 */
    h2o_req_t *req;      /* borrowed */
    struct broker *b;    /* borrowed */
    uint8_t op;          /* enum kv_op */
    uint8_t cond;        /* the write's condition */
};

static void
kv_routes_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
}

static void
kv_routes_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct kv_routes_call *kc = container_of(gen, struct kv_routes_call, gen);

    icall_cancel(kc->b, &kc->ic);
}

static void
kv_routes_header(h2o_req_t *req, const char *name, uint64_t v)
{
    char *text = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(text, 24, "%" PRIu64, v);

    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, text, (size_t)n);
}

static json_t *
kv_routes_u64(uint64_t v)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRIu64, v);
    return json_string(text);
}

/* "NAME_b64" always, "NAME" when the bytes are UTF-8. */
static int
kv_routes_bytes(json_t *o, const char *name, struct slice s)
{
    char *b64 = malloc(h2o_base64_encode_capacity(s.len) + 1);
    char key[32];
    json_t *t;
    int rc;

    if (b64 == NULL) {
        return -1;
    }
    h2o_base64_encode(b64, s.p, s.len, 0);
    snprintf(key, sizeof(key), "%s_b64", name);
    rc = json_object_set_new(o, key, json_string(b64));
    free(b64);
    t = json_stringn((const char *)s.p, s.len);
    if (t != NULL) {
        rc |= json_object_set_new(o, name, t);
    }
    return rc;
}

static void
kv_routes_send_json(h2o_req_t *req, int status, json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (text == NULL) {
        http_respond_error(req, FERRY_ENOMEM, "out of memory");
        return;
    }
    http_respond_json(req, status, h2o_strdup(&req->pool, text, SIZE_MAX).base,
                      strlen(text));
    free(text);
}

static json_t *
kv_routes_entries(struct slice entries, bool event)
{
    json_t *arr = json_array();
    struct slice k, v;
    struct kv_meta m;
    uint8_t t;

    while (arr != NULL &&
           kv_codec_next_entry(&entries, event, &t, &k, &m, &v)) {
        json_t *e = json_object();
        int rc = e == NULL;

        if (event && e != NULL) {
            rc |= json_object_set_new(e, "type",
                                      json_string(t == 0 ? "put" : "delete"));
        }
        rc |=
            e == NULL || kv_routes_bytes(e, "key", k) ||
            json_object_set_new(e, "create_revision",
                                kv_routes_u64(m.create_rev)) ||
            json_object_set_new(e, "mod_revision", kv_routes_u64(m.mod_rev)) ||
            json_object_set_new(e, "version", kv_routes_u64(m.version)) ||
            kv_routes_bytes(e, "value", v);
        if (rc != 0 || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void
kv_routes_done(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct kv_routes_call *kc = container_of(ic, struct kv_routes_call, ic);
    h2o_req_t *req = kc->req;
    struct kv_reply rep;
    json_t *o;

    if (err != FERRY_OK) {
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    if (kv_codec_decode_reply(kc->op, (struct slice){data, len}, &rep) !=
        FERRY_OK) {
        http_respond_error(req, FERRY_EPROTO, "ferry.kv: malformed reply");
        return;
    }
    if (kc->op == KV_OP_GET) {
        kv_routes_header(req, "ferry-revision", rep.rev);
        if (rep.status != KV_ST_OK) {
            http_respond_status(req, 404, "NOT_FOUND", "no such key");
            return;
        }
        kv_routes_header(req, "ferry-create-revision", rep.meta.create_rev);
        kv_routes_header(req, "ferry-mod-revision", rep.meta.mod_rev);
        kv_routes_header(req, "ferry-version", rep.meta.version);
        http_respond(req, 200, "application/octet-stream", rep.value.p,
                     rep.value.len);
        return;
    }
    if (kc->op == KV_OP_PUT || kc->op == KV_OP_DELETE) {
        if (rep.status == KV_ST_NOT_FOUND) {
            http_respond_status(req, 404, "NOT_FOUND", "no such key");
            return;
        }
        if (rep.status == KV_ST_EXISTS) {
            kv_routes_header(req, "ferry-mod-revision", rep.rev);
            http_respond_status(req, 412, "EXISTS",
                                "the key's revision does not match");
            return;
        }
        kv_routes_header(req, "ferry-revision", rep.rev);
        o = json_object();
        if (o != NULL &&
            json_object_set_new(o, "revision", kv_routes_u64(rep.rev)) != 0) {
            json_decref(o);
            o = NULL;
        }
        kv_routes_send_json(req, 200, o);
        return;
    }
    /* RANGE, WATCH */
    kv_routes_header(req, "ferry-revision", rep.rev);
    o = json_object();
    if (o != NULL) {
        json_t *arr = kv_routes_entries(rep.entries, kc->op == KV_OP_WATCH);
        if (arr == NULL ||
            json_object_set_new(o, "revision", kv_routes_u64(rep.rev)) ||
            json_object_set_new(o, kc->op == KV_OP_WATCH ? "events" : "kvs",
                                arr) ||
            (kc->op == KV_OP_RANGE &&
             json_object_set_new(o, "more", json_boolean(rep.more)))) {
            json_decref(o);
            o = NULL;
        }
    }
    kv_routes_send_json(req, 200, o);
}

/* Percent-decodes [p, end) into the pool; NULL when longer than max. */
static uint8_t *
kv_routes_decode(h2o_req_t *req, const char *p, const char *end, size_t max,
                 size_t *out_len)
{
    uint8_t *out = h2o_mem_alloc_pool(&req->pool, (size_t)(end - p) + 1);
    size_t n = 0;

    for (; p < end; p++) {
        char c = *p;
        if (c == '%' && end - p > 2 && h2o_hex_decode(&c, p + 1, 2) == 0) {
            p += 2;
        } else if (c == '+') {
            c = ' ';
        }
        out[n++] = (uint8_t)c;
        if (n > max) {
            return NULL;
        }
    }
    *out_len = n;
    return out;
}

/* The query's parameters this route knows. */
struct kv_routes_q {
    struct slice prefix, start;
    uint64_t from_rev, if_mod_rev, limit, wait_ms;
    bool watch, is_prefix, if_absent, has_if_rev;
};

static bool
kv_routes_num(const char *p, const char *end, uint64_t *v)
{
    if (p == end || end - p > 20) {
        return false;
    }
    *v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || *v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        *v = *v * 10 + (uint64_t)(*p - '0');
    }
    return true;
}

static bool
kv_routes_query(h2o_req_t *req, struct kv_routes_q *q)
{
    const char *p, *end, *amp, *eq;

    if (req->query_at == SIZE_MAX) {
        return true;
    }
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        size_t nlen;
        bool ok;
        uint64_t flag = 0;

        amp = memchr(p, '&', (size_t)(end - p));
        amp = amp != NULL ? amp : end;
        eq = memchr(p, '=', (size_t)(amp - p));
        if (eq == NULL) {
            goto out_bad;
        }
        nlen = (size_t)(eq - p);
#define KV_Q(name) (nlen == sizeof(name) - 1 && memcmp(p, name, nlen) == 0)
        if (KV_Q("prefix") || KV_Q("start")) {
            size_t n;
            uint8_t *s = kv_routes_decode(req, eq + 1, amp, KV_KEY_MAX, &n);
            ok = s != NULL;
            if (ok && KV_Q("prefix")) {
                q->prefix = (struct slice){s, n};
            } else if (ok) {
                q->start = (struct slice){s, n};
            }
        } else if (KV_Q("limit")) {
            ok = kv_routes_num(eq + 1, amp, &q->limit) &&
                 q->limit <= KV_LIMIT_MAX;
        } else if (KV_Q("from_rev")) {
            ok = kv_routes_num(eq + 1, amp, &q->from_rev);
        } else if (KV_Q("wait_ms")) {
            ok = kv_routes_num(eq + 1, amp, &q->wait_ms) &&
                 q->wait_ms <= KV_ROUTES_WAIT_MAX;
        } else if (KV_Q("if_mod_rev")) {
            ok = kv_routes_num(eq + 1, amp, &q->if_mod_rev);
            q->has_if_rev = true;
        } else if (KV_Q("watch") || KV_Q("if_absent") || KV_Q("prefix_watch")) {
            ok = kv_routes_num(eq + 1, amp, &flag) && flag <= 1;
            if (KV_Q("watch")) {
                q->watch = flag == 1;
            } else if (KV_Q("if_absent")) {
                q->if_absent = flag == 1;
            } else {
                q->is_prefix = flag == 1;
            }
        } else {
            ok = false;
        }
#undef KV_Q
        if (!ok) {
            goto out_bad;
        }
        p = amp + 1;
    }
    return true;

out_bad:
    http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                       "query: known are prefix, start, limit (up to 10000), "
                       "watch=1, prefix_watch=1, from_rev, wait_ms (up to "
                       "60000), if_absent=1, if_mod_rev");
    return false;
}

static int
kv_routes_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct kv_routes_handler *h = (struct kv_routes_handler *)self;
    struct loop *l = http_server_loop(h->s);
    const struct config *cfg = l->cfg;
    size_t plen = sizeof(KV_ROUTES_PATH) - 1, path_len = req->path.len;
    struct kv_routes_q q;
    struct kv_routes_call *kc;
    struct kv_req r;
    struct slice key = {(const uint8_t *)"", 0};
    uint8_t *payload, *end = NULL;
    size_t n;
    const h2o_iovec_t m = req->method;
    bool is_get = h2o_memis(m.base, m.len, H2O_STRLIT("GET")) ||
                  h2o_memis(m.base, m.len, H2O_STRLIT("HEAD"));

    memset(&q, 0, sizeof(q));
    memset(&r, 0, sizeof(r));
    if (req->query_at != SIZE_MAX && req->query_at < path_len) {
        path_len = req->query_at;
    }
    if (path_len < plen || memcmp(req->path.base, KV_ROUTES_PATH, plen) != 0 ||
        (path_len > plen && req->path.base[plen] != '/')) {
        http_respond_status(req, 404, "NOT_FOUND", "no such route");
        return 0;
    }
    if (!auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        auth_refuse(req);
        return 0;
    }
    if (!kv_routes_query(req, &q)) {
        return 0;
    }
    if (path_len > plen + 1) {
        uint8_t *k =
            kv_routes_decode(req, req->path.base + plen + 1,
                             req->path.base + path_len, KV_KEY_MAX, &n);
        if (k == NULL) {
            http_respond_error(req, FERRY_EINVALID_ARGUMENT,
                               "ferry.kv: key must be 1 to 448 bytes");
            return 0;
        }
        key = (struct slice){k, n};
    }
    if (key.len == 0) {
        /* GET /v1/kv?prefix=P&limit=N&start=S */
        if (!is_get) {
            http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                                "use GET /v1/kv?prefix=P or a key");
            return 0;
        }
        r.op = KV_OP_RANGE;
        r.limit = (uint32_t)q.limit;
        key = q.prefix;
        if (q.start.len > 0) {
            /* [start, the prefix's end) */
            size_t elen = q.prefix.len;
            end = h2o_mem_alloc_pool(&req->pool, elen + 1);
            if (elen > 0) {
                memcpy(end, q.prefix.p, elen);
            }
            while (elen > 0 && end[elen - 1] == 0xff) {
                elen--;
            }
            if (elen > 0) {
                end[elen - 1]++;
            }
            r.mode = KV_MODE_RANGE;
            r.end = (struct slice){end, elen};
            key = q.start;
        }
    } else if (is_get && q.watch) {
        r.op = KV_OP_WATCH;
        r.prefix = q.is_prefix;
        r.from_rev = q.from_rev;
        r.wait_ms = (uint32_t)q.wait_ms;
    } else if (is_get) {
        r.op = KV_OP_GET;
    } else if (h2o_memis(m.base, m.len, H2O_STRLIT("PUT"))) {
        if (req->entity.len > http_server_max_body(h->s)) {
            http_respond_error(req, FERRY_ETOO_BIG, "request body too large");
            return 0;
        }
        r.op = KV_OP_PUT;
        r.cond = q.if_absent    ? KV_COND_ABSENT
                 : q.has_if_rev ? KV_COND_REV
                                : KV_COND_ANY;
        r.rev = q.if_mod_rev;
        r.value =
            (struct slice){(const uint8_t *)req->entity.base,
                           req->entity.base != NULL ? req->entity.len : 0};
    } else if (h2o_memis(m.base, m.len, H2O_STRLIT("DELETE"))) {
        r.op = KV_OP_DELETE;
        r.cond = q.has_if_rev ? KV_COND_REV : KV_COND_ANY;
        r.rev = q.if_mod_rev;
    } else {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD, PUT, DELETE"));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED",
                            "use GET, PUT or DELETE /v1/kv/{key}");
        return 0;
    }
    n = kv_codec_write_request(NULL, &r);
    payload = h2o_mem_alloc_pool(&req->pool, n);
    kv_codec_write_request(payload, &r);

    kc = h2o_mem_alloc_pool(&req->pool, sizeof(*kc));
    kc->req = req;
    kc->b = l->broker;
    kc->op = r.op;
    kc->cond = r.cond;
    kc->ic.id = 0;
    kc->ic.internals = auth_may_see_internals(req, cfg);
    if (req->version >= 0x200) {
        kc->gen.proceed = kv_routes_proceed;
        kc->gen.stop = kv_routes_stop;
        h2o_start_response(req, &kc->gen);
    }
    icall_submit(kc->b, &kc->ic, slice_str(KV_ROUTES_SERVICE), key,
                 (struct slice){payload, n},
                 r.op == KV_OP_WATCH ? (uint32_t)q.wait_ms + 5000 : 0,
                 r.op == KV_OP_PUT || r.op == KV_OP_DELETE ? 0
                                                           : FERRY_IDEMPOTENT,
                 kv_routes_done);
    return 0;
}

void
kv_routes_register(struct http_server *s)
{
    struct kv_routes_handler *h;

    h = (struct kv_routes_handler *)http_server_add_path(
        s, KV_ROUTES_PATH, kv_routes_on_req, sizeof(*h));
    h->s = s;
}
