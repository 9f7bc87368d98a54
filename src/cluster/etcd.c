/* SPDX-License-Identifier: MIT */
/*
 * etcd.c - the etcd v3 JSON gateway over libcurl's multi interface, on the
 * loop (see etcd.h).
 *
 * curl asks, through the socket callback, for a uv_poll_t per socket and,
 * through the timer callback, for one timer on the loop's heap; both hand
 * their events back with curl_multi_socket_action. Nothing that reaches
 * the user runs inside curl: the write callback only stores bytes, and
 * etcd_dispatch, after curl returns, splits watch bodies into objects,
 * delivers their events and ends finished calls. A call cancelled there
 * (or the whole client freed) is only marked, and freed once dispatch
 * unwinds, so no callback frees what an outer frame still uses.
 */
#include "cluster/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"

enum etcd_kind {
    ETCD_GRANT,
    ETCD_KEEPALIVE,
    ETCD_REVOKE,
    ETCD_PUT,
    ETCD_RANGE,
    ETCD_DELETE,
    ETCD_TXN,
    ETCD_WATCH
};

/* One socket curl asked us to watch; owned by its etcd, freed on close. */
struct etcd_sock {
    uv_poll_t poll;   /* its readiness */
    curl_socket_t fd; /* curl's socket */
    struct etcd *e;   /* borrowed: the client */
    struct list link; /* on e->socks */
};

/* Owned by whoever called etcd_new. */
struct etcd {
    struct loop *l;      /* borrowed */
    CURLM *multi;        /* owned: every call's transfer */
    char **endpoints;    /* owned: "http://h:p" each */
    size_t n_endpoints;  /* entries of endpoints */
    size_t cur;          /* the endpoint calls go to */
    uint32_t timeout_ms; /* of each call but a watch */
    struct timer timer;  /* curl's timeout, on the loop's heap */
    struct list calls;   /* every call not yet freed */
    struct list socks;   /* every etcd_sock not yet closing */
    unsigned busy;       /* etcd_dispatch frames running */
    bool dead;           /* etcd_free called while busy */
};

/* One POST; owned by its etcd. */
struct etcd_call {
    struct etcd *e;                /* borrowed */
    struct list link;              /* on e->calls */
    enum etcd_kind kind;           /* what it asks */
    CURL *easy;                    /* owned: its transfer */
    struct curl_slist *hdrs;       /* owned: Content-Type */
    const char *path;              /* "/v3/kv/put": static */
    char *body;                    /* owned: the JSON request */
    char *url;                     /* owned: endpoint + path */
    char *in;                      /* owned: the response so far */
    size_t in_len;                 /* bytes in in */
    size_t in_cap;                 /* room of in */
    size_t tries;                  /* endpoints tried */
    bool in_multi;                 /* easy added to e->multi */
    bool over;                     /* the response passed its bound */
    bool done;                     /* ended; freed when dispatch unwinds */
    etcd_cb cb;                    /* the end of a call but a watch */
    void *ud;                      /* of cb or the hooks */
    struct etcd_watch_hooks hooks; /* of a watch */
    struct etcd_splitter split;    /* of a watch's body */
    char errbuf[CURL_ERROR_SIZE];  /* curl's message */
};

static bool etcd_curl_ready;

static void etcd_dispatch(struct etcd *e);
static void etcd_call_free(struct etcd_call *c);

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

static void
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
static void
etcd_result_release(struct etcd_result *r)
{
    for (size_t i = 0; i < r->n_kvs; i++) {
        etcd_kv_release(&r->kvs[i]);
    }
    free(r->kvs);
}

static ferry_err
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

/* curl's side */

static void
etcd_sock_close_cb(uv_handle_t *h)
{
    free(container_of((uv_poll_t *)h, struct etcd_sock, poll));
}

static void
etcd_sock_close(struct etcd_sock *s)
{
    list_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, etcd_sock_close_cb);
}

static void
etcd_poll_cb(uv_poll_t *p, int status, int events)
{
    struct etcd_sock *s = container_of(p, struct etcd_sock, poll);
    struct etcd *e = s->e;
    int flags = 0, running;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    curl_multi_socket_action(e->multi, s->fd, flags, &running);
    etcd_dispatch(e);
}

static int
etcd_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
               void *socketp)
{
    struct etcd *e = userp;
    struct etcd_sock *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            etcd_sock_close(s);
            curl_multi_assign(e->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            return -1;
        }
        if (uv_poll_init_socket(&e->l->uv, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->e = e;
        list_push_back(&e->socks, &s->link);
        curl_multi_assign(e->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    uv_poll_start(&s->poll, events, etcd_poll_cb);
    return 0;
}

static void
etcd_timer_cb(struct timer *t)
{
    struct etcd *e = container_of(t, struct etcd, timer);
    int running;

    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    etcd_dispatch(e);
}

static int
etcd_timerfn(CURLM *multi, long timeout_ms, void *userp)
{
    struct etcd *e = userp;

    if (timeout_ms < 0) {
        loop_timer_stop(e->l, &e->timer);
        return 0;
    }
    /* Never run curl from inside its own callback: a 0 fires next turn. */
    if (loop_timer_start(e->l, &e->timer,
                         loop_now(e->l) + (uint64_t)timeout_ms) != FERRY_OK) {
        return -1;
    }
    return 0;
}

static size_t
etcd_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct etcd_call *c = ud;
    size_t n = size * nmemb;
    /* A watch keeps at most one object and the next chunk pending. */
    size_t limit =
        c->kind == ETCD_WATCH ? 2 * ETCD_RESPONSE_MAX : ETCD_RESPONSE_MAX;

    if (n > limit || c->in_len > limit - n) {
        c->over = true;
        return 0;
    }
    if (c->in_len + n + 1 > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 1024;
        char *p;
        while (cap < c->in_len + n + 1) {
            cap *= 2;
        }
        p = realloc(c->in, cap);
        if (p == NULL) {
            return 0;
        }
        c->in = p;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    c->in[c->in_len] = '\0';
    return n;
}

/* Calls */

static void
etcd_call_detach(struct etcd_call *c)
{
    if (c->in_multi) {
        curl_multi_remove_handle(c->e->multi, c->easy);
        c->in_multi = false;
    }
}

static void
etcd_call_free(struct etcd_call *c)
{
    etcd_call_detach(c);
    list_remove(&c->link);
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->hdrs);
    free(c->body);
    free(c->url);
    free(c->in);
    free(c);
}

/* Points c at the current endpoint and adds it to the multi. */
static bool
etcd_call_send(struct etcd_call *c)
{
    struct etcd *e = c->e;
    const char *ep = e->endpoints[e->cur];
    size_t n = strlen(ep) + strlen(c->path) + 1;
    char *url = malloc(n);

    if (url == NULL) {
        return false;
    }
    snprintf(url, n, "%s%s", ep, c->path);
    free(c->url);
    c->url = url;
    c->in_len = 0;
    c->over = false;
    etcd_splitter_init(&c->split, ETCD_RESPONSE_MAX);
    curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
    if (curl_multi_add_handle(e->multi, c->easy) != CURLM_OK) {
        return false;
    }
    c->in_multi = true;
    return true;
}

static struct etcd_call *
etcd_call_new(struct etcd *e, enum etcd_kind kind, const char *path,
              json_t *body, etcd_cb cb, void *ud)
{
    struct etcd_call *c;
    uint32_t connect_ms = e->timeout_ms < 1000 ? e->timeout_ms : 1000;

    if (body == NULL) {
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_decref(body);
        return NULL;
    }
    list_init(&c->link);
    c->e = e;
    c->kind = kind;
    c->path = path;
    c->cb = cb;
    c->ud = ud;
    c->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    c->easy = curl_easy_init();
    c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (c->body == NULL || c->easy == NULL || c->hdrs == NULL) {
        goto out_free;
    }
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, etcd_write_cb);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    if (kind == ETCD_WATCH) {
        curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    } else {
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    }
    list_push_back(&e->calls, &c->link);
    if (!etcd_call_send(c)) {
        goto out_free;
    }
    return c;
out_free:
    etcd_call_free(c);
    return NULL;
}

static bool
etcd_is_connect_error(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
}

/* Splits and delivers what a watch has buffered; false when it ended. */
static bool
etcd_watch_pump(struct etcd_call *c)
{
    char msg[ETCD_MSG_SIZE];
    uint64_t compact;
    size_t used;
    ferry_err err;

    while (!c->done && !c->e->dead && c->in_len > 0) {
        enum etcd_split sp =
            etcd_split_next(&c->split, c->in, c->in_len, &used);
        if (sp == ETCD_SPLIT_MORE) {
            return true;
        }
        if (sp != ETCD_SPLIT_OBJECT) {
            etcd_msg(msg, "watch: %s",
                     sp == ETCD_SPLIT_TOO_BIG ? "an object passes the bound"
                                              : "the body is not objects");
            err = FERRY_EPROTO;
            compact = 0;
        } else {
            err =
                etcd_watch_decode(c->in, used, &c->hooks, c->ud, &compact, msg);
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            etcd_splitter_init(&c->split, ETCD_RESPONSE_MAX);
        }
        if (c->done || c->e->dead) {
            return false; /* cancelled by a hook */
        }
        if (err != FERRY_OK) {
            c->done = true;
            etcd_call_detach(c);
            if (c->hooks.ended) {
                c->hooks.ended(c->ud, err, msg, compact);
            }
            return false;
        }
    }
    return !c->done;
}

static void
etcd_call_end(struct etcd_call *c, CURLcode rc)
{
    struct etcd *e = c->e;
    char msg[ETCD_MSG_SIZE];
    struct etcd_result r;
    ferry_err err;
    long status = 0;

    if (c->done) {
        return;
    }
    if (etcd_is_connect_error(rc) && ++c->tries < e->n_endpoints) {
        etcd_call_detach(c);
        log_debug("etcd '%s': %s, trying the next endpoint",
                  e->endpoints[e->cur], curl_easy_strerror(rc));
        e->cur = (e->cur + 1) % e->n_endpoints;
        if (etcd_call_send(c)) {
            return;
        }
    }
    if (etcd_is_connect_error(rc) && e->n_endpoints > 1) {
        e->cur = (e->cur + 1) % e->n_endpoints;
    }
    if (c->kind == ETCD_WATCH && rc == CURLE_OK && !etcd_watch_pump(c)) {
        return;
    }
    c->done = true;
    etcd_call_detach(c);
    if (c->over) {
        etcd_msg(msg, "etcd: %s", "the response passes the bound");
        err = FERRY_EPROTO;
    } else if (rc != CURLE_OK) {
        etcd_msg(msg, "etcd: %s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
        err = rc == CURLE_OPERATION_TIMEDOUT ? FERRY_EDEADLINE
                                             : FERRY_ECONNECTION;
    } else {
        err = FERRY_OK;
    }
    if (c->kind == ETCD_WATCH) {
        if (err == FERRY_OK) {
            etcd_msg(msg, "%s", "etcd closed the watch");
        }
        if (c->hooks.ended) {
            c->hooks.ended(c->ud, err, msg, 0);
        }
        return;
    }
    if (err == FERRY_OK) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        err = etcd_result_decode(c->kind, c->in ? c->in : "", c->in_len, status,
                                 &r, msg);
        if (err == FERRY_OK) {
            c->cb(c->ud, FERRY_OK, NULL, &r);
            etcd_result_release(&r);
            return;
        }
    }
    c->cb(c->ud, err, msg, NULL);
}

static void
etcd_destroy(struct etcd *e)
{
    while (!list_is_empty(&e->calls)) {
        etcd_call_free(container_of(e->calls.next, struct etcd_call, link));
    }
    curl_multi_cleanup(e->multi);
    while (!list_is_empty(&e->socks)) {
        etcd_sock_close(container_of(e->socks.next, struct etcd_sock, link));
    }
    loop_timer_stop(e->l, &e->timer);
    for (size_t i = 0; i < e->n_endpoints; i++) {
        free(e->endpoints[i]);
    }
    free(e->endpoints);
    free(e);
}

/* Everything that reaches the user, after curl has returned. */
static void
etcd_dispatch(struct etcd *e)
{
    struct list *n, *next;
    CURLMsg *m;
    int left;

    e->busy++;
    for (n = e->calls.next; n != &e->calls && !e->dead; n = n->next) {
        struct etcd_call *c = container_of(n, struct etcd_call, link);
        if (c->kind == ETCD_WATCH && !c->done && c->in_len > 0) {
            etcd_watch_pump(c);
        }
    }
    while (!e->dead && (m = curl_multi_info_read(e->multi, &left)) != NULL) {
        struct etcd_call *c = NULL;
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        etcd_call_end(c, m->data.result);
    }
    if (--e->busy > 0) {
        return;
    }
    if (e->dead) {
        etcd_destroy(e);
        return;
    }
    for (n = e->calls.next; n != &e->calls; n = next) {
        struct etcd_call *c = container_of(n, struct etcd_call, link);
        next = n->next;
        if (c->done) {
            etcd_call_free(c);
        }
    }
}

/* The client */

struct etcd *
etcd_new(struct loop *l, const char *endpoints, uint32_t timeout_ms)
{
    struct etcd *e;
    const char *p = endpoints;

    if (!etcd_curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return NULL;
        }
        etcd_curl_ready = true;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->l = l;
    e->timeout_ms = timeout_ms ? timeout_ms : 1000;
    list_init(&e->calls);
    list_init(&e->socks);
    timer_init(&e->timer, etcd_timer_cb);
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char **eps;
        char *ep;

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '/')) {
            len--;
        }
        if (len <= 7 ||
            (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)) {
            goto out_free;
        }
        eps = realloc(e->endpoints, (e->n_endpoints + 1) * sizeof(*eps));
        if (eps == NULL) {
            goto out_free;
        }
        e->endpoints = eps;
        ep = strndup(p, len);
        if (ep == NULL) {
            goto out_free;
        }
        e->endpoints[e->n_endpoints++] = ep;
        p = end ? end + 1 : NULL;
    }
    if (e->n_endpoints == 0) {
        goto out_free;
    }
    e->multi = curl_multi_init();
    if (e->multi == NULL) {
        goto out_free;
    }
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, etcd_socket_cb);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, etcd_timerfn);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    return e;
out_free:
    for (size_t i = 0; i < e->n_endpoints; i++) {
        free(e->endpoints[i]);
    }
    free(e->endpoints);
    free(e);
    return NULL;
}

void
etcd_free(struct etcd *e)
{
    if (e == NULL) {
        return;
    }
    if (e->busy > 0) {
        e->dead = true;
        return;
    }
    etcd_destroy(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
    return e->endpoints[e->cur];
}

void
etcd_cancel(struct etcd_call *c)
{
    if (c == NULL) {
        return;
    }
    if (c->e->busy > 0) {
        c->done = true;
        etcd_call_detach(c);
        return;
    }
    etcd_call_free(c);
}

/* Request bodies */

static json_t *
etcd_b64(const char *p, size_t len)
{
    char *s = malloc(4 * ((len + 2) / 3) + 1);
    json_t *v;

    if (s == NULL) {
        return NULL;
    }
    etcd_b64_encode(p, len, s);
    v = json_string(s);
    free(s);
    return v;
}

static json_t *
etcd_i64(int64_t v)
{
    char s[32];

    snprintf(s, sizeof(s), "%lld", (long long)v);
    return json_string(s);
}

/* The end of the range of every key starting with key. */
static json_t *
etcd_prefix_end(const char *key, size_t len)
{
    char *end = malloc(len + 1);
    json_t *v;

    if (end == NULL) {
        return NULL;
    }
    memcpy(end, key, len);
    while (len > 0 && (unsigned char)end[len - 1] == 0xff) {
        len--;
    }
    if (len == 0) {
        end[0] = '\0';
        len = 1; /* "\0": every key */
    } else {
        end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
    }
    v = etcd_b64(end, len);
    free(end);
    return v;
}

/* Sets name to v, taking v; false (and body freed) when v is NULL. */
static bool
etcd_set(json_t *body, const char *name, json_t *v)
{
    return v != NULL && json_object_set_new(body, name, v) == 0;
}

static json_t *
etcd_key_body(const char *key, size_t key_len, bool prefix)
{
    json_t *b = json_object();

    if (b == NULL || !etcd_set(b, "key", etcd_b64(key, key_len)) ||
        (prefix && !etcd_set(b, "range_end", etcd_prefix_end(key, key_len)))) {
        json_decref(b);
        return NULL;
    }
    return b;
}

struct etcd_call *
etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_GRANT, "/v3/lease/grant",
                         json_pack("{sI}", "TTL", (json_int_t)ttl_s), cb, ud);
}

static json_t *
etcd_id_body(int64_t id)
{
    json_t *b = json_object();

    if (b == NULL || !etcd_set(b, "ID", etcd_i64(id))) {
        json_decref(b);
        return NULL;
    }
    return b;
}

struct etcd_call *
etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_KEEPALIVE, "/v3/lease/keepalive",
                         etcd_id_body(id), cb, ud);
}

struct etcd_call *
etcd_lease_revoke(struct etcd *e, int64_t id, etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_REVOKE, "/v3/lease/revoke", etcd_id_body(id),
                         cb, ud);
}

static json_t *
etcd_put_body(const char *key, size_t key_len, const char *value,
              size_t value_len, int64_t lease)
{
    json_t *b = etcd_key_body(key, key_len, false);

    if (b == NULL || !etcd_set(b, "value", etcd_b64(value, value_len)) ||
        (lease != 0 && !etcd_set(b, "lease", etcd_i64(lease)))) {
        json_decref(b);
        return NULL;
    }
    return b;
}

struct etcd_call *
etcd_put(struct etcd *e, const char *key, size_t key_len, const char *value,
         size_t value_len, int64_t lease, etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_PUT, "/v3/kv/put",
                         etcd_put_body(key, key_len, value, value_len, lease),
                         cb, ud);
}

struct etcd_call *
etcd_range(struct etcd *e, const char *key, size_t key_len, bool prefix,
           etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_RANGE, "/v3/kv/range",
                         etcd_key_body(key, key_len, prefix), cb, ud);
}

struct etcd_call *
etcd_delete(struct etcd *e, const char *key, size_t key_len, bool prefix,
            etcd_cb cb, void *ud)
{
    return etcd_call_new(e, ETCD_DELETE, "/v3/kv/deleterange",
                         etcd_key_body(key, key_len, prefix), cb, ud);
}

struct etcd_call *
etcd_claim(struct etcd *e, const char *key, size_t key_len, const char *value,
           size_t value_len, int64_t lease, etcd_cb cb, void *ud)
{
    json_t *cmp = etcd_key_body(key, key_len, false);
    json_t *put = etcd_put_body(key, key_len, value, value_len, lease);
    json_t *b = NULL;

    if (cmp != NULL && put != NULL &&
        json_object_set_new(cmp, "target", json_string("CREATE")) == 0 &&
        json_object_set_new(cmp, "result", json_string("EQUAL")) == 0 &&
        json_object_set_new(cmp, "create_revision", json_string("0")) == 0) {
        b = json_pack("{s:[o],s:[{s:o}]}", "compare", cmp, "success",
                      "request_put", put);
        cmp = put = NULL;
    }
    json_decref(cmp);
    json_decref(put);
    return etcd_call_new(e, ETCD_TXN, "/v3/kv/txn", b, cb, ud);
}

struct etcd_call *
etcd_watch(struct etcd *e, const char *prefix, size_t prefix_len,
           uint64_t start_revision, const struct etcd_watch_hooks *hooks,
           void *ud)
{
    json_t *req = etcd_key_body(prefix, prefix_len, true);
    json_t *b = NULL;
    struct etcd_call *c;

    if (req != NULL && start_revision > 0 &&
        !etcd_set(req, "start_revision", etcd_i64((int64_t)start_revision))) {
        json_decref(req);
        req = NULL;
    }
    if (req != NULL) {
        b = json_pack("{so}", "create_request", req);
    }
    c = etcd_call_new(e, ETCD_WATCH, "/v3/watch", b, NULL, ud);
    if (c != NULL) {
        c->hooks = *hooks;
    }
    return c;
}
