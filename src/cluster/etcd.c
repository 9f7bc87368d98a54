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
etcd_swap(struct etcd *e, const char *key, size_t key_len, const char *old,
          size_t old_len, const char *value, size_t value_len, etcd_cb cb,
          void *ud)
{
    json_t *cmp = etcd_key_body(key, key_len, false);
    json_t *put = etcd_put_body(key, key_len, value, value_len, 0);
    json_t *b = NULL;
    bool ok = cmp != NULL && put != NULL;

    if (ok && old == NULL) {
        ok = etcd_set(cmp, "target", json_string("CREATE")) &&
             etcd_set(cmp, "create_revision", json_string("0"));
    } else if (ok) {
        ok = etcd_set(cmp, "target", json_string("VALUE")) &&
             etcd_set(cmp, "value", etcd_b64(old, old_len));
    }
    if (ok && etcd_set(cmp, "result", json_string("EQUAL"))) {
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
