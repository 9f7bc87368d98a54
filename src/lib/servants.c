/* SPDX-License-Identifier: MIT */
/*
 * servants.c - libferry's helpers for ferry.cache, ferry.kv and ferry.id
 * (include/ferry_servants.h): request encoders, reply decoders that check
 * every length first, and synchronous calls. Tested against
 * tests/vectors/client_payloads.json (tests/unit/test_servants.c)
 * and fuzzed (tests/fuzz/fuzz_servant_replies.c).
 */
#include "ferry_servants.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- byte helpers */

struct wr {
    uint8_t *dst;
    size_t cap, n;
};

static void
put(struct wr *w, const void *p, size_t len)
{
    if (len && w->n + len <= w->cap) {
        memcpy(w->dst + w->n, p, len);
    }
    w->n += len;
}

static void
put_be(struct wr *w, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++) {
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    }
    put(w, b, bytes);
}

struct rd {
    const uint8_t *p;
    size_t len, i;
    bool bad;
};

static uint64_t
get_be(struct rd *r, unsigned bytes)
{
    if (r->bad || r->len - r->i < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned k = 0; k < bytes; k++) {
        v = (v << 8) | r->p[r->i + k];
    }
    r->i += bytes;
    return v;
}

static const uint8_t *
get_bytes(struct rd *r, size_t n)
{
    if (r->bad || r->len - r->i < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->i;
    r->i += n;
    return p;
}

static bool
status_ok(struct rd *r, unsigned *status)
{
    *status = (unsigned)get_be(r, 1);
    if (*status > FERRY_SV_EXISTS) {
        r->bad = true;
    }
    return !r->bad;
}

static ferry_err
finish(const struct rd *r)
{
    return r->bad || r->i != r->len ? FERRY_EINVALID_ARGUMENT : FERRY_OK;
}

const char *
ferry_sv_status_name(unsigned status)
{
    static const char *const names[] = {"OK", "NOT_FOUND", "NOT_STORED",
                                        "EXISTS"};
    return status < 4 ? names[status] : "?";
}

/* ------------------------------------------------------------ ferry.cache */

size_t
ferry_cache_encode(const struct ferry_cache_req *q, uint8_t *dst, size_t cap)
{
    struct wr w = {dst, cap, 0};
    put_be(&w, q->op, 1);
    switch (q->op) {
    case FERRY_CACHE_GET:
    case FERRY_CACHE_DELETE:
        break;
    case FERRY_CACHE_GET_MANY:
        if (q->n_keys > 0xffff) {
            return 0;
        }
        put_be(&w, q->n_keys, 2);
        for (size_t i = 0; i < q->n_keys; i++) {
            if (q->keys[i].len > 0xffff) {
                return 0;
            }
            put_be(&w, q->keys[i].len, 2);
            put(&w, q->keys[i].data, q->keys[i].len);
        }
        break;
    case FERRY_CACHE_SET:
    case FERRY_CACHE_ADD:
    case FERRY_CACHE_REPLACE:
    case FERRY_CACHE_CAS:
        put_be(&w, q->flags, 4);
        put_be(&w, q->ttl_ms, 4);
        if (q->op == FERRY_CACHE_CAS) {
            put_be(&w, q->cas, 8);
        }
        put(&w, q->value, q->value_len);
        break;
    case FERRY_CACHE_APPEND:
    case FERRY_CACHE_PREPEND:
        put(&w, q->value, q->value_len);
        break;
    case FERRY_CACHE_INCR:
    case FERRY_CACHE_DECR:
        put_be(&w, q->delta, 8);
        break;
    case FERRY_CACHE_TOUCH:
    case FERRY_CACHE_GAT:
        put_be(&w, q->ttl_ms, 4);
        break;
    case FERRY_CACHE_FLUSH:
        put_be(&w, q->delay_ms, 4);
        break;
    default:
        return 0;
    }
    return w.n;
}

static void
cache_item(struct rd *r, unsigned status, bool with_len, uint32_t *flags,
           uint64_t *cas, const uint8_t **value, size_t *value_len)
{
    (void)status;
    *flags = (uint32_t)get_be(r, 4);
    *cas = get_be(r, 8);
    size_t n =
        with_len ? (size_t)get_be(r, 4) : r->len - (r->bad ? r->len : r->i);
    *value = get_bytes(r, n);
    *value_len = r->bad ? 0 : n;
}

ferry_err
ferry_cache_decode(unsigned op, const void *reply, size_t len,
                   struct ferry_cache_reply *out)
{
    struct rd r = {reply, len, 0, false};
    memset(out, 0, sizeof(*out));
    if (!status_ok(&r, &out->status)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    bool ok = out->status == FERRY_SV_OK;
    switch (op) {
    case FERRY_CACHE_GET:
    case FERRY_CACHE_GAT:
        if (ok) {
            cache_item(&r, out->status, false, &out->flags, &out->cas,
                       &out->value, &out->value_len);
        }
        break;
    case FERRY_CACHE_GET_MANY: {
        out->n_items = (uint16_t)get_be(&r, 2);
        size_t start = r.i;
        for (unsigned i = 0; i < out->n_items && !r.bad; i++) {
            unsigned s;
            uint32_t f;
            uint64_t c;
            const uint8_t *v;
            size_t vl;
            if (status_ok(&r, &s) && s == FERRY_SV_OK) {
                cache_item(&r, s, true, &f, &c, &v, &vl);
            }
        }
        out->items = r.bad ? NULL : r.p + start;
        out->items_len = r.bad ? 0 : r.i - start;
        break;
    }
    case FERRY_CACHE_SET:
    case FERRY_CACHE_ADD:
    case FERRY_CACHE_REPLACE:
    case FERRY_CACHE_APPEND:
    case FERRY_CACHE_PREPEND:
    case FERRY_CACHE_CAS:
        if (ok) {
            out->cas = get_be(&r, 8);
        }
        break;
    case FERRY_CACHE_INCR:
    case FERRY_CACHE_DECR:
        if (ok) {
            out->number = get_be(&r, 8);
        }
        break;
    case FERRY_CACHE_DELETE:
    case FERRY_CACHE_TOUCH:
    case FERRY_CACHE_FLUSH:
        break;
    default:
        return FERRY_EINVALID_ARGUMENT;
    }
    ferry_err e = finish(&r);
    if (e != FERRY_OK) {
        memset(out, 0, sizeof(*out));
    }
    return e;
}

bool
ferry_cache_next(const struct ferry_cache_reply *r, size_t *pos,
                 struct ferry_cache_item *it)
{
    struct rd d = {r->items, r->items_len, *pos, false};
    if (r->items == NULL || *pos >= r->items_len) {
        return false;
    }
    memset(it, 0, sizeof(*it));
    if (!status_ok(&d, &it->status)) {
        return false;
    }
    if (it->status == FERRY_SV_OK) {
        cache_item(&d, it->status, true, &it->flags, &it->cas, &it->value,
                   &it->value_len);
    }
    if (d.bad) {
        return false;
    }
    *pos = d.i;
    return true;
}

/* ---------------------------------------------------------------- ferry.kv */

size_t
ferry_kv_encode(const struct ferry_kv_req *q, uint8_t *dst, size_t cap)
{
    struct wr w = {dst, cap, 0};
    put_be(&w, q->op, 1);
    switch (q->op) {
    case FERRY_KV_GET:
        break;
    case FERRY_KV_PUT:
    case FERRY_KV_DELETE:
        if (q->cond > FERRY_KV_IF_MOD_REV) {
            return 0;
        }
        put_be(&w, q->cond, 1);
        put_be(&w, q->rev, 8);
        if (q->op == FERRY_KV_PUT) {
            put(&w, q->value, q->value_len);
        }
        break;
    case FERRY_KV_RANGE:
    case FERRY_KV_COUNT: {
        size_t elen = q->has_end ? q->end_len : 0;
        if (elen > 0xffff) {
            return 0;
        }
        put_be(&w, q->has_end ? 1 : 0, 1);
        put_be(&w, elen, 2);
        put(&w, q->end, elen);
        if (q->op == FERRY_KV_RANGE) {
            put_be(&w, q->limit, 4);
            put_be(&w, q->keys_only ? 1 : 0, 1);
        }
        break;
    }
    case FERRY_KV_WATCH:
        put_be(&w, q->prefix ? 1 : 0, 1);
        put_be(&w, q->from_rev, 8);
        put_be(&w, q->wait_ms, 4);
        put_be(&w, q->max_events, 4);
        break;
    default:
        return 0;
    }
    return w.n;
}

/* One range item or watch event (type first when events). */
static bool
kv_entry(struct rd *r, bool event, struct ferry_kv_entry *e)
{
    memset(e, 0, sizeof(*e));
    if (event) {
        e->type = (unsigned)get_be(r, 1);
        if (e->type > 1) {
            r->bad = true;
        }
    }
    e->key_len = (size_t)get_be(r, 2);
    e->key = get_bytes(r, e->key_len);
    e->create_rev = get_be(r, 8);
    e->mod_rev = get_be(r, 8);
    e->version = get_be(r, 8);
    e->value_len = (size_t)get_be(r, 4);
    e->value = get_bytes(r, e->value_len);
    return !r->bad;
}

ferry_err
ferry_kv_decode(unsigned op, const void *reply, size_t len,
                struct ferry_kv_reply *out)
{
    struct rd r = {reply, len, 0, false};
    memset(out, 0, sizeof(*out));
    out->op = op;
    if (!status_ok(&r, &out->status)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    bool ok = out->status == FERRY_SV_OK;
    if (op == FERRY_KV_DELETE && out->status == FERRY_SV_NOT_FOUND &&
        r.i == len) {
        return FERRY_OK;
    }
    out->rev = get_be(&r, 8);
    switch (op) {
    case FERRY_KV_GET:
        if (ok) {
            out->entry.create_rev = get_be(&r, 8);
            out->entry.mod_rev = get_be(&r, 8);
            out->entry.version = get_be(&r, 8);
            if (!r.bad) {
                out->entry.value = r.p + r.i;
                out->entry.value_len = r.len - r.i;
                r.i = r.len;
            }
        }
        break;
    case FERRY_KV_PUT:
    case FERRY_KV_DELETE:
        break;
    case FERRY_KV_COUNT:
        out->count = get_be(&r, 8);
        break;
    case FERRY_KV_RANGE:
    case FERRY_KV_WATCH: {
        if (op == FERRY_KV_RANGE) {
            out->more = get_be(&r, 1) != 0;
        }
        out->n = (uint32_t)get_be(&r, 4);
        if (!r.bad && out->n > r.len - r.i) {
            r.bad = true;
        }
        size_t start = r.i;
        struct ferry_kv_entry e;
        for (uint32_t i = 0; i < out->n && !r.bad; i++) {
            kv_entry(&r, op == FERRY_KV_WATCH, &e);
        }
        out->list = r.bad ? NULL : r.p + start;
        out->list_len = r.bad ? 0 : r.i - start;
        break;
    }
    default:
        return FERRY_EINVALID_ARGUMENT;
    }
    ferry_err e = finish(&r);
    if (e != FERRY_OK) {
        memset(out, 0, sizeof(*out));
    }
    return e;
}

bool
ferry_kv_next(const struct ferry_kv_reply *r, size_t *pos,
              struct ferry_kv_entry *e)
{
    struct rd d = {r->list, r->list_len, *pos, false};
    if (r->list == NULL || *pos >= r->list_len) {
        return false;
    }
    if (!kv_entry(&d, r->op == FERRY_KV_WATCH, e)) {
        return false;
    }
    *pos = d.i;
    return true;
}

/* ---------------------------------------------------------------- ferry.id */

size_t
ferry_id_encode(unsigned op, uint32_t count, uint64_t id, uint8_t *dst,
                size_t cap)
{
    struct wr w = {dst, cap, 0};
    put_be(&w, op, 1);
    if (op == FERRY_ID_NEXT) {
        put_be(&w, count, 4);
    } else if (op == FERRY_ID_DECODE) {
        put_be(&w, id, 8);
    } else {
        return 0;
    }
    return w.n;
}

ferry_err
ferry_id_decode_reply(unsigned op, const void *reply, size_t len,
                      struct ferry_id_reply *out)
{
    struct rd r = {reply, len, 0, false};
    memset(out, 0, sizeof(*out));
    if (!status_ok(&r, &out->status)) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (op == FERRY_ID_NEXT) {
        out->n = (uint32_t)get_be(&r, 4);
        if (!r.bad && (r.len - r.i) / 8 < out->n) {
            r.bad = true;
        }
        out->ids = get_bytes(&r, (size_t)out->n * 8);
    } else if (op == FERRY_ID_DECODE) {
        out->unix_ms = get_be(&r, 8);
        out->node = (uint16_t)get_be(&r, 2);
        out->seq = (uint16_t)get_be(&r, 2);
    } else {
        return FERRY_EINVALID_ARGUMENT;
    }
    ferry_err e = finish(&r);
    if (e != FERRY_OK) {
        memset(out, 0, sizeof(*out));
    }
    return e;
}

uint64_t
ferry_id_at(const struct ferry_id_reply *r, uint32_t i)
{
    if (i >= r->n || r->ids == NULL) {
        return 0;
    }
    struct rd d = {r->ids + (size_t)i * 8, 8, 0, false};
    return get_be(&d, 8);
}

/* ------------------------------------------------------------------ calls */

/* Calls service with the payload encode() writes (into a stack buffer when
 * it fits, else one malloc). */
typedef size_t (*encode_fn)(const void *req, uint8_t *dst, size_t cap);

static ferry_err
sv_call(struct ferry_client *c, const char *service, const void *key,
        size_t key_len, encode_fn enc, const void *req, uint32_t deadline_ms,
        struct ferry_reply *raw)
{
    uint8_t small[512];
    uint8_t *buf = small;
    memset(raw, 0, sizeof(*raw));
    size_t n = enc(req, small, sizeof(small));
    if (n == 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    if (n > sizeof(small)) {
        buf = malloc(n);
        if (buf == NULL) {
            return FERRY_ENOMEM;
        }
        enc(req, buf, n);
    }
    struct ferry_request q = {.service = service,
                              .key = key,
                              .key_len = key_len,
                              .payload = buf,
                              .payload_len = n,
                              .deadline_ms = deadline_ms};
    ferry_err e = ferry_call(c, &q, raw);
    if (buf != small) {
        free(buf);
    }
    return e;
}

static size_t
enc_cache(const void *q, uint8_t *dst, size_t cap)
{
    return ferry_cache_encode(q, dst, cap);
}

static size_t
enc_kv(const void *q, uint8_t *dst, size_t cap)
{
    return ferry_kv_encode(q, dst, cap);
}

struct id_req {
    unsigned op;
    uint32_t count;
    uint64_t id;
};

static size_t
enc_id(const void *q, uint8_t *dst, size_t cap)
{
    const struct id_req *r = q;
    return ferry_id_encode(r->op, r->count, r->id, dst, cap);
}

ferry_err
ferry_cache_call(struct ferry_client *c, const struct ferry_cache_req *req,
                 uint32_t deadline_ms, struct ferry_reply *raw,
                 struct ferry_cache_reply *out)
{
    bool keyless =
        req->op == FERRY_CACHE_GET_MANY || req->op == FERRY_CACHE_FLUSH;
    ferry_err e =
        sv_call(c, "ferry.cache", keyless ? NULL : req->key,
                keyless ? 0 : req->key_len, enc_cache, req, deadline_ms, raw);
    if (e != FERRY_OK) {
        return e;
    }
    return ferry_cache_decode(req->op, raw->data, raw->len, out);
}

ferry_err
ferry_cache_get(struct ferry_client *c, const void *key, size_t key_len,
                struct ferry_reply *raw, struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {
        .op = FERRY_CACHE_GET, .key = key, .key_len = key_len};
    return ferry_cache_call(c, &q, 0, raw, out);
}

static ferry_err
cache_store(struct ferry_client *c, unsigned op, const void *key,
            size_t key_len, const void *value, size_t value_len, uint32_t flags,
            uint32_t ttl_ms, uint64_t cas, struct ferry_reply *raw,
            struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {.op = op,
                                .key = key,
                                .key_len = key_len,
                                .value = value,
                                .value_len = value_len,
                                .flags = flags,
                                .ttl_ms = ttl_ms,
                                .cas = cas};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_cache_set(struct ferry_client *c, const void *key, size_t key_len,
                const void *value, size_t value_len, uint32_t flags,
                uint32_t ttl_ms, struct ferry_reply *raw,
                struct ferry_cache_reply *out)
{
    return cache_store(c, FERRY_CACHE_SET, key, key_len, value, value_len,
                       flags, ttl_ms, 0, raw, out);
}

ferry_err
ferry_cache_add(struct ferry_client *c, const void *key, size_t key_len,
                const void *value, size_t value_len, uint32_t flags,
                uint32_t ttl_ms, struct ferry_reply *raw,
                struct ferry_cache_reply *out)
{
    return cache_store(c, FERRY_CACHE_ADD, key, key_len, value, value_len,
                       flags, ttl_ms, 0, raw, out);
}

ferry_err
ferry_cache_cas(struct ferry_client *c, const void *key, size_t key_len,
                const void *value, size_t value_len, uint32_t flags,
                uint32_t ttl_ms, uint64_t cas, struct ferry_reply *raw,
                struct ferry_cache_reply *out)
{
    return cache_store(c, FERRY_CACHE_CAS, key, key_len, value, value_len,
                       flags, ttl_ms, cas, raw, out);
}

ferry_err
ferry_cache_delete(struct ferry_client *c, const void *key, size_t key_len,
                   struct ferry_reply *raw, struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {
        .op = FERRY_CACHE_DELETE, .key = key, .key_len = key_len};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_cache_incr(struct ferry_client *c, const void *key, size_t key_len,
                 uint64_t delta, struct ferry_reply *raw,
                 struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {
        .op = FERRY_CACHE_INCR, .key = key, .key_len = key_len, .delta = delta};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_cache_decr(struct ferry_client *c, const void *key, size_t key_len,
                 uint64_t delta, struct ferry_reply *raw,
                 struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {
        .op = FERRY_CACHE_DECR, .key = key, .key_len = key_len, .delta = delta};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_cache_touch(struct ferry_client *c, const void *key, size_t key_len,
                  uint32_t ttl_ms, struct ferry_reply *raw,
                  struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {.op = FERRY_CACHE_TOUCH,
                                .key = key,
                                .key_len = key_len,
                                .ttl_ms = ttl_ms};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_cache_flush(struct ferry_client *c, uint32_t delay_ms,
                  struct ferry_reply *raw, struct ferry_cache_reply *out)
{
    struct ferry_cache_req q = {.op = FERRY_CACHE_FLUSH, .delay_ms = delay_ms};
    return ferry_cache_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_call(struct ferry_client *c, const struct ferry_kv_req *req,
              uint32_t deadline_ms, struct ferry_reply *raw,
              struct ferry_kv_reply *out)
{
    ferry_err e = sv_call(c, "ferry.kv", req->key, req->key_len, enc_kv, req,
                          deadline_ms, raw);
    if (e != FERRY_OK) {
        return e;
    }
    return ferry_kv_decode(req->op, raw->data, raw->len, out);
}

ferry_err
ferry_kv_get(struct ferry_client *c, const void *key, size_t key_len,
             struct ferry_reply *raw, struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {
        .op = FERRY_KV_GET, .key = key, .key_len = key_len};
    return ferry_kv_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_put(struct ferry_client *c, const void *key, size_t key_len,
             const void *value, size_t value_len, unsigned cond, uint64_t rev,
             struct ferry_reply *raw, struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {.op = FERRY_KV_PUT,
                             .key = key,
                             .key_len = key_len,
                             .value = value,
                             .value_len = value_len,
                             .cond = cond,
                             .rev = rev};
    return ferry_kv_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_delete(struct ferry_client *c, const void *key, size_t key_len,
                unsigned cond, uint64_t rev, struct ferry_reply *raw,
                struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {.op = FERRY_KV_DELETE,
                             .key = key,
                             .key_len = key_len,
                             .cond = cond,
                             .rev = rev};
    return ferry_kv_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_range(struct ferry_client *c, const void *key, size_t key_len,
               const void *end, size_t end_len, uint32_t limit,
               struct ferry_reply *raw, struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {.op = FERRY_KV_RANGE,
                             .key = key,
                             .key_len = key_len,
                             .has_end = end != NULL,
                             .end = end,
                             .end_len = end_len,
                             .limit = limit};
    return ferry_kv_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_count(struct ferry_client *c, const void *key, size_t key_len,
               const void *end, size_t end_len, struct ferry_reply *raw,
               struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {.op = FERRY_KV_COUNT,
                             .key = key,
                             .key_len = key_len,
                             .has_end = end != NULL,
                             .end = end,
                             .end_len = end_len};
    return ferry_kv_call(c, &q, 0, raw, out);
}

ferry_err
ferry_kv_watch(struct ferry_client *c, const void *key, size_t key_len,
               bool prefix, uint64_t from_rev, uint32_t wait_ms,
               struct ferry_reply *raw, struct ferry_kv_reply *out)
{
    struct ferry_kv_req q = {.op = FERRY_KV_WATCH,
                             .key = key,
                             .key_len = key_len,
                             .prefix = prefix,
                             .from_rev = from_rev,
                             .wait_ms = wait_ms};
    uint32_t deadline =
        wait_ms > UINT32_MAX - 5000 ? UINT32_MAX : wait_ms + 5000;
    return ferry_kv_call(c, &q, deadline, raw, out);
}

ferry_err
ferry_id_next(struct ferry_client *c, uint32_t count, struct ferry_reply *raw,
              struct ferry_id_reply *out)
{
    struct id_req q = {FERRY_ID_NEXT, count, 0};
    ferry_err e = sv_call(c, "ferry.id", NULL, 0, enc_id, &q, 0, raw);
    if (e != FERRY_OK) {
        return e;
    }
    return ferry_id_decode_reply(FERRY_ID_NEXT, raw->data, raw->len, out);
}

ferry_err
ferry_id_decode(struct ferry_client *c, uint64_t id, struct ferry_reply *raw,
                struct ferry_id_reply *out)
{
    struct id_req q = {FERRY_ID_DECODE, 0, id};
    ferry_err e = sv_call(c, "ferry.id", NULL, 0, enc_id, &q, 0, raw);
    if (e != FERRY_OK) {
        return e;
    }
    return ferry_id_decode_reply(FERRY_ID_DECODE, raw->data, raw->len, out);
}

ferry_err
ferry_cluster(struct ferry_client *c, uint32_t deadline_ms,
              struct ferry_reply *out)
{
    struct ferry_request req = {.service = "ferry.cluster",
                                .deadline_ms = deadline_ms};

    return ferry_call(c, &req, out);
}
