/* SPDX-License-Identifier: MIT */
/*
 * etcd_codec.c - what ferryd reads from etcd's v3 JSON gateway, and the
 * base64 it speaks (see etcd.h): the watch stream's splitter, the watch
 * object and the answers of calls. Pure: no curl, no loop, so the fuzz
 * target (tests/fuzz/fuzz_etcd_stream.c) links this file alone.
 */
#include "cluster/etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* Base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
etcd_b64_encode(const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    size_t o = 0, i;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

bool
etcd_b64_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    uint32_t acc = 0;
    size_t o = 0, bits = 0, i;

    while (len > 0 && in[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return false;
    }
    for (i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0) {
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    *out_len = o;
    return true;
}

/* The splitter */

void
etcd_splitter_init(struct etcd_splitter *s, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap;
}

enum etcd_split
etcd_split_next(struct etcd_splitter *s, const char *buf, size_t len,
                size_t *used)
{
    while (s->pos < len) {
        char ch = buf[s->pos++];

        if (s->pos > s->cap) {
            return ETCD_SPLIT_TOO_BIG;
        }
        if (!s->started) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
                continue;
            }
            if (ch != '{') {
                return ETCD_SPLIT_BAD;
            }
            s->started = true;
            s->depth = 1;
            continue;
        }
        if (s->in_str) {
            if (s->esc) {
                s->esc = false;
            } else if (ch == '\\') {
                s->esc = true;
            } else if (ch == '"') {
                s->in_str = false;
            }
            continue;
        }
        if (ch == '"') {
            s->in_str = true;
        } else if (ch == '{' || ch == '[') {
            s->depth++;
        } else if (ch == '}' || ch == ']') {
            if (--s->depth == 0) {
                *used = s->pos;
                return ETCD_SPLIT_OBJECT;
            }
        }
    }
    return ETCD_SPLIT_MORE;
}

/* Decoding what etcd answers */

void
etcd_msg(char msg[ETCD_MSG_SIZE], const char *fmt, const char *arg)
{
    /* Messages are cut at ETCD_MSG_SIZE: curl's may be longer. */
    if (snprintf(msg, ETCD_MSG_SIZE, fmt, arg) < 0) {
        msg[0] = '\0';
    }
}

/* An int64 field: a string of digits, a JSON integer, or absent (0). */
static bool
etcd_get_i64(const json_t *o, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    const char *s;
    char *end;
    long long n;

    *out = 0;
    if (v == NULL) {
        return true;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (!json_is_string(v)) {
        return false;
    }
    s = json_string_value(v);
    if (*s == '\0') {
        return false;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (int64_t)n;
    return true;
}

static bool
etcd_get_u64(const json_t *o, const char *name, uint64_t *out)
{
    int64_t v;

    if (!etcd_get_i64(o, name, &v) || v < 0) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* A bytes field (base64) into a new NUL-terminated copy; absent: "". */
static bool
etcd_get_bytes(const json_t *o, const char *name, char **out, size_t *len)
{
    const json_t *v = json_object_get(o, name);
    const char *s = "";
    size_t n = 0;
    char *p;

    if (v != NULL) {
        if (!json_is_string(v)) {
            return false;
        }
        s = json_string_value(v);
        n = json_string_length(v);
    }
    p = malloc(3 * (n / 4) + 4);
    if (p == NULL) {
        return false;
    }
    if (!etcd_b64_decode(s, n, p, len)) {
        free(p);
        return false;
    }
    p[*len] = '\0';
    *out = p;
    return true;
}

static void
etcd_kv_release(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static bool
etcd_kv_decode(const json_t *o, struct etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o)) {
        return false;
    }
    if (!etcd_get_bytes(o, "key", &kv->key, &kv->key_len)) {
        return false;
    }
    if (!etcd_get_bytes(o, "value", &kv->value, &kv->value_len) ||
        !etcd_get_u64(o, "create_revision", &kv->create_revision) ||
        !etcd_get_u64(o, "mod_revision", &kv->mod_revision) ||
        !etcd_get_i64(o, "lease", &kv->lease)) {
        etcd_kv_release(kv);
        return false;
    }
    return true;
}

static bool
etcd_get_revision(const json_t *o, uint64_t *rev)
{
    const json_t *h = json_object_get(o, "header");

    *rev = 0;
    if (h == NULL) {
        return true;
    }
    return json_is_object(h) && etcd_get_u64(h, "revision", rev);
}

/* An error object of the gateway: {"error":"..","message":".."} or
 * {"error":{"message":".."}}; true when o is one. */
static bool
etcd_error_of(const json_t *o, char msg[ETCD_MSG_SIZE])
{
    const json_t *err = json_object_get(o, "error");
    const json_t *m;

    if (err == NULL) {
        return false;
    }
    m = json_is_object(err) ? json_object_get(err, "message")
                            : json_object_get(o, "message");
    if (!json_is_string(m)) {
        m = json_is_string(err) ? err : NULL;
    }
    etcd_msg(msg, "etcd: %s", m != NULL ? json_string_value(m) : "error");
    return true;
}

ferry_err
etcd_watch_decode(const char *obj, size_t len,
                  const struct etcd_watch_hooks *hooks, void *ud,
                  uint64_t *compact, char msg[ETCD_MSG_SIZE])
{
    json_t *o, *r, *evs, *ev;
    json_error_t jerr;
    ferry_err err = FERRY_OK;
    size_t i;

    *compact = 0;
    o = json_loadb(obj, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        etcd_msg(msg, "watch: not JSON: %s", jerr.text);
        return FERRY_EPROTO;
    }
    if (etcd_error_of(o, msg)) {
        err = FERRY_EPROTO;
        goto out;
    }
    r = json_object_get(o, "result");
    if (!json_is_object(r)) {
        etcd_msg(msg, "watch: %s", "an object without a result");
        err = FERRY_EPROTO;
        goto out;
    }
    if (json_is_true(json_object_get(r, "created")) && hooks->created) {
        hooks->created(ud);
    }
    evs = json_object_get(r, "events");
    if (evs != NULL && !json_is_array(evs)) {
        etcd_msg(msg, "watch: %s", "events is not an array");
        err = FERRY_EPROTO;
        goto out;
    }
    json_array_foreach(evs, i, ev)
    {
        struct etcd_event e;
        const json_t *t = json_object_get(ev, "type");

        if (!json_is_object(ev) || (t != NULL && !json_is_string(t))) {
            etcd_msg(msg, "watch: %s", "an event is not an object");
            err = FERRY_EPROTO;
            goto out;
        }
        /* PUT is 0, omitted; DELETE named. */
        if (t == NULL || strcmp(json_string_value(t), "PUT") == 0) {
            e.type = ETCD_EVENT_PUT;
        } else if (strcmp(json_string_value(t), "DELETE") == 0) {
            e.type = ETCD_EVENT_DELETE;
        } else {
            etcd_msg(msg, "watch: unknown event type '%s'",
                     json_string_value(t));
            err = FERRY_EPROTO;
            goto out;
        }
        if (!etcd_kv_decode(json_object_get(ev, "kv"), &e.kv)) {
            etcd_msg(msg, "watch: %s", "an event's kv is malformed");
            err = FERRY_EPROTO;
            goto out;
        }
        if (hooks->event) {
            hooks->event(ud, &e);
        }
        etcd_kv_release(&e.kv);
    }
    if (json_is_true(json_object_get(r, "canceled"))) {
        const json_t *reason = json_object_get(r, "cancel_reason");
        if (!etcd_get_u64(r, "compact_revision", compact)) {
            *compact = 0;
        }
        etcd_msg(msg, "watch canceled: %s",
                 json_is_string(reason) ? json_string_value(reason)
                                        : "by etcd");
        err = FERRY_ECANCELLED;
    }
out:
    json_decref(o);
    return err;
}

/* Decodes the body of a call but a watch into r (released by the caller
 * with etcd_result_release). */
void
etcd_result_release(struct etcd_result *r)
{
    for (size_t i = 0; i < r->n_kvs; i++) {
        etcd_kv_release(&r->kvs[i]);
    }
    free(r->kvs);
}

ferry_err
etcd_result_decode(enum etcd_kind kind, const char *body, size_t len,
                   long status, struct etcd_result *r, char msg[ETCD_MSG_SIZE])
{
    json_t *o, *top, *kvs;
    json_error_t jerr;
    ferry_err err = FERRY_EPROTO;

    memset(r, 0, sizeof(*r));
    top = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (top == NULL || !json_is_object(top)) {
        char st[32];
        snprintf(st, sizeof(st), "%ld", status);
        etcd_msg(msg, "etcd answered %s with no JSON object", st);
        json_decref(top);
        return FERRY_EPROTO;
    }
    if (etcd_error_of(top, msg)) {
        goto out;
    }
    if (status != 200) {
        char st[32];
        snprintf(st, sizeof(st), "%ld", status);
        etcd_msg(msg, "etcd answered status %s", st);
        goto out;
    }
    /* A streaming call's single reply comes as {"result":{...}}. */
    o = json_object_get(top, "result");
    if (!json_is_object(o)) {
        o = top;
    }
    if (!etcd_get_revision(o, &r->revision)) {
        etcd_msg(msg, "etcd: %s", "malformed header");
        goto out;
    }
    switch (kind) {
    case ETCD_GRANT:
    case ETCD_KEEPALIVE:
        if (!etcd_get_i64(o, "ID", &r->id) ||
            !etcd_get_i64(o, "TTL", &r->ttl)) {
            etcd_msg(msg, "etcd: %s", "malformed lease");
            goto out;
        }
        if (kind == ETCD_GRANT && (r->id == 0 || r->ttl <= 0)) {
            etcd_msg(msg, "etcd: %s", "lease grant without an ID or a TTL");
            goto out;
        }
        break;
    case ETCD_TXN:
        r->succeeded = json_is_true(json_object_get(o, "succeeded"));
        break;
    case ETCD_DELETE:
        if (!etcd_get_u64(o, "deleted", &r->deleted)) {
            etcd_msg(msg, "etcd: %s", "malformed deleted");
            goto out;
        }
        break;
    case ETCD_RANGE:
        kvs = json_object_get(o, "kvs");
        if (kvs != NULL && !json_is_array(kvs)) {
            etcd_msg(msg, "etcd: %s", "kvs is not an array");
            goto out;
        }
        if (json_array_size(kvs) > ETCD_KVS_MAX) {
            etcd_msg(msg, "etcd: %s", "too many kvs in one range");
            goto out;
        }
        if (json_array_size(kvs) > 0) {
            r->kvs = calloc(json_array_size(kvs), sizeof(*r->kvs));
            if (r->kvs == NULL) {
                etcd_msg(msg, "etcd: %s", "out of memory");
                err = FERRY_ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < json_array_size(kvs); i++) {
            if (!etcd_kv_decode(json_array_get(kvs, i), &r->kvs[i])) {
                etcd_msg(msg, "etcd: %s", "a kv is malformed");
                goto out;
            }
            r->n_kvs++;
        }
        break;
    default:
        break;
    }
    err = FERRY_OK;
out:
    if (err != FERRY_OK) {
        etcd_result_release(r);
        memset(r, 0, sizeof(*r));
    }
    json_decref(top);
    return err;
}

