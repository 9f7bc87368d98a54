/* SPDX-License-Identifier: MIT */
/*
 * driver.c - libferry's conformance driver (tests/conformance/DRIVER.md):
 * what tests/conformance/run.py asks of a client, done with libferry's
 * public API, and reported as JSON lines.
 *
 *   ferry-conformance-driver caller
 *   ferry-conformance-driver worker --addr A --service S --credit N
 *       [--service S2 --credit N2] [--token T] [--name NAME]
 *       [--heartbeat-ms MS]
 *
 * The caller reads one command per stdin line and answers each with one
 * stdout line; between commands it keeps driving its client
 * (ferry_client_run) so heartbeats flow and sent calls make progress. The
 * worker drives ferry_worker_poll() itself so that delayed answers come
 * from its own timer list, and writes an event line for each thing that
 * happens. decode and encode use libferry's own codec (src/proto/frame.h),
 * the one thing taken from outside ferry.h. There is no ferry logic here:
 * error names come from ferry_errname() of the code libferry returned.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"
#include "ferry_servants.h"
#include "proto/frame.h"

#define DRV_MAX_TAGS 1024
#define DRV_IDLE_TURN_MS 20 /* drives an idle client this often */

static uint64_t
drv_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes one JSON line and flushes it; takes ownership of o. */
static void
drv_emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);

    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static char *
drv_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * n + 1);

    if (s == NULL) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

static void
drv_set_hex(json_t *o, const char *key, const void *p, size_t n)
{
    char *h = drv_hex(p, n);

    json_object_set_new(o, key, json_string(h));
    free(h);
}

static int
drv_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Owned bytes of a hex string (malloc'd, at least 1 byte); false when the
 * string is not hex. */
static bool
drv_unhex(const char *h, uint8_t **out, size_t *len)
{
    size_t n = strlen(h);
    uint8_t *p;

    if (n % 2 != 0) {
        return false;
    }
    p = malloc(n / 2 + 1);
    if (p == NULL) {
        abort();
    }
    for (size_t i = 0; i < n / 2; i++) {
        int a = drv_nibble(h[2 * i]), b = drv_nibble(h[2 * i + 1]);
        if (a < 0 || b < 0) {
            free(p);
            return false;
        }
        p[i] = (uint8_t)(a << 4 | b);
    }
    *out = p;
    *len = n / 2;
    return true;
}

/* A JSON string of bytes that may not be UTF-8 (then as \u00XX each). */
static json_t *
drv_jstr(struct slice s)
{
    json_t *j = json_stringn((const char *)s.p, s.len);

    if (j == NULL) {
        char *latin = malloc(s.len + 1);
        if (latin == NULL) {
            abort();
        }
        memcpy(latin, s.p, s.len);
        latin[s.len] = '\0';
        j = json_string_nocheck(latin);
        free(latin);
    }
    return j;
}

static json_t *
drv_fail(ferry_err err, const void *msg, size_t len)
{
    json_t *o = json_object();

    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", json_string(ferry_errname(err)));
    json_object_set_new(o, "code", json_integer(err));
    json_object_set_new(o, "message", drv_jstr((struct slice){msg, len}));
    return o;
}

/* A failure of the driver itself (a bad command), not of the client. */
static json_t *
drv_bad(const char *error, const char *msg)
{
    json_t *o = json_object();

    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", json_string(error));
    json_object_set_new(o, "message", json_string(msg));
    return o;
}

static json_t *
drv_ok(void)
{
    json_t *o = json_object();

    json_object_set_new(o, "ok", json_true());
    return o;
}

static const char *
drv_str(json_t *cmd, const char *key, const char *dflt)
{
    json_t *v = json_object_get(cmd, key);

    return json_is_string(v) ? json_string_value(v) : dflt;
}

static json_int_t
drv_int(json_t *cmd, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(cmd, key);

    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* ------------------------------------------------------- decode/encode */

static uint8_t
drv_type_by_name(const char *name)
{
    for (unsigned t = 1; t <= FRAME_TYPE_MAX; t++) {
        if (strcmp(frame_type_name((uint8_t)t), name) == 0) {
            return (uint8_t)t;
        }
    }
    return 0;
}

static json_t *
drv_decode(json_t *cmd)
{
    uint32_t max = (uint32_t)drv_int(cmd, "max_frame", FRAME_DEFAULT_MAX_BODY);
    json_t *o, *fields;
    size_t len, consumed = 0;
    ferry_err err = FERRY_OK;
    struct frame f;
    uint8_t *buf;
    char id[24];

    if (!drv_unhex(drv_str(cmd, "hex", ""), &buf, &len)) {
        return drv_bad("BAD_COMMAND", "hex is not hex");
    }
    err = frame_decode(buf, len, max, &f, &consumed);
    if (err == FERRY_OK && consumed == 0) {
        free(buf);
        return drv_bad("INCOMPLETE", "more bytes are needed");
    }
    fields = json_object();
    if (err == FERRY_OK) {
        switch (f.type) {
        case FRAME_HELLO: {
            struct frame_hello h;
            if ((err = frame_parse_hello(&f, &h)) == FERRY_OK) {
                json_object_set_new(fields, "version", json_integer(h.version));
                json_object_set_new(fields, "role", json_integer(h.role));
                json_object_set_new(fields, "heartbeat_ms",
                                    json_integer(h.heartbeat_ms));
                json_object_set_new(fields, "name", drv_jstr(h.name));
                json_object_set_new(fields, "token", drv_jstr(h.token));
                if (h.version >= FRAME_VERSION_2) {
                    json_object_set_new(fields, "max_frame",
                                        json_integer(h.max_frame));
                }
            }
            break;
        }
        case FRAME_HELLO_OK: {
            struct frame_hello_ok h;
            if ((err = frame_parse_hello_ok(&f, &h)) == FERRY_OK) {
                json_object_set_new(fields, "version", json_integer(h.version));
                json_object_set_new(fields, "heartbeat_ms",
                                    json_integer(h.heartbeat_ms));
                json_object_set_new(fields, "max_frame",
                                    json_integer(h.max_frame));
                json_object_set_new(fields, "name", drv_jstr(h.name));
                if (h.version >= FRAME_VERSION_2) {
                    json_object_set_new(fields, "max_deadline_ms",
                                        json_integer(h.max_deadline_ms));
                    json_object_set_new(fields, "default_deadline_ms",
                                        json_integer(h.default_deadline_ms));
                }
            }
            break;
        }
        case FRAME_REQUEST: {
            struct frame_request q;
            if ((err = frame_parse_request(&f, &q)) == FERRY_OK) {
                json_object_set_new(fields, "deadline_ms",
                                    json_integer(q.deadline_ms));
                json_object_set_new(fields, "service", drv_jstr(q.service));
                drv_set_hex(fields, "key_hex", q.key.p, q.key.len);
                drv_set_hex(fields, "payload_hex", q.payload.p, q.payload.len);
            }
            break;
        }
        case FRAME_REPLY:
            drv_set_hex(fields, "payload_hex", f.body.p, f.body.len);
            break;
        case FRAME_ERROR: {
            struct frame_error e;
            if ((err = frame_parse_error(&f, &e)) == FERRY_OK) {
                json_object_set_new(fields, "code", json_integer(e.code));
                json_object_set_new(
                    fields, "code_name",
                    json_string(ferry_errname((ferry_err)e.code)));
                json_object_set_new(fields, "message", drv_jstr(e.msg));
            }
            break;
        }
        case FRAME_REGISTER: {
            struct frame_register g;
            if ((err = frame_parse_register(&f, &g)) == FERRY_OK) {
                json_object_set_new(fields, "credit", json_integer(g.credit));
                json_object_set_new(fields, "service", drv_jstr(g.service));
            }
            break;
        }
        default:
            err = frame_check_empty(&f);
            break;
        }
    }
    if (err != FERRY_OK) {
        json_decref(fields);
        free(buf);
        return drv_fail(err, "", 0);
    }
    o = drv_ok();
    json_object_set_new(o, "type", json_string(frame_type_name(f.type)));
    json_object_set_new(o, "flags", json_integer(f.flags));
    snprintf(id, sizeof(id), "%" PRIu64, f.id);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "fields", fields);
    free(buf);
    return o;
}

/* Bytes of a hex field of fields (owned, "" when absent). */
static bool
drv_field_hex(json_t *fields, const char *key, uint8_t **p, size_t *n)
{
    const char *h = drv_str(fields, key, "");

    return drv_unhex(h, p, n);
}

static json_t *
drv_encode(json_t *cmd)
{
    uint8_t type = drv_type_by_name(drv_str(cmd, "type", ""));
    uint8_t flags = (uint8_t)drv_int(cmd, "flags", 0);
    uint64_t id = strtoull(drv_str(cmd, "id", "0"), NULL, 10);
    json_t *fl = json_object_get(cmd, "fields"), *o;
    uint16_t version = (uint16_t)drv_int(fl, "version", 1);
    struct slice a = slice_str(drv_str(fl, "name", "")), b;
    uint8_t *out = NULL, *key = NULL, *payload = NULL;
    size_t n = 0, klen = 0, plen = 0;
    char *h;

    if (type == 0) {
        return drv_bad("BAD_COMMAND", "unknown type");
    }
    switch (type) {
    case FRAME_HELLO:
        b = slice_str(drv_str(fl, "token", ""));
        /* The codec lays HELLO out by version. */
        out = malloc(frame_hello_size(version, a.len, b.len));
        n = frame_write_hello(out, version, (uint8_t)drv_int(fl, "role", 1),
                              (uint32_t)drv_int(fl, "heartbeat_ms", 0),
                              (uint32_t)drv_int(fl, "max_frame", 0), a, b);
        break;
    case FRAME_HELLO_OK:
        out = malloc(frame_hello_ok_size(version, a.len));
        n = frame_write_hello_ok(
            out, version, (uint32_t)drv_int(fl, "heartbeat_ms", 0),
            (uint32_t)drv_int(fl, "max_frame", 0),
            (uint32_t)drv_int(fl, "max_deadline_ms", 0),
            (uint32_t)drv_int(fl, "default_deadline_ms", 0), a);
        break;
    case FRAME_REQUEST:
        a = slice_str(drv_str(fl, "service", ""));
        if (!drv_field_hex(fl, "key_hex", &key, &klen) ||
            !drv_field_hex(fl, "payload_hex", &payload, &plen)) {
            free(key);
            return drv_bad("BAD_COMMAND", "bad hex");
        }
        out = malloc(frame_request_size(a.len, klen, plen));
        n = frame_write_request(
            out, id, flags, (uint32_t)drv_int(fl, "deadline_ms", 0), a,
            (struct slice){key, klen}, (struct slice){payload, plen});
        break;
    case FRAME_REPLY:
        if (!drv_field_hex(fl, "payload_hex", &payload, &plen)) {
            return drv_bad("BAD_COMMAND", "bad hex");
        }
        out = malloc(FRAME_HEADER_SIZE + plen);
        n = frame_write_reply_header(out, id, (uint32_t)plen);
        memcpy(out + n, payload, plen);
        n += plen;
        break;
    case FRAME_ERROR:
        a = slice_str(drv_str(fl, "message", ""));
        out = malloc(frame_error_size(a.len));
        n = frame_write_error(out, id, (uint16_t)drv_int(fl, "code", 0), a);
        break;
    case FRAME_REGISTER:
        a = slice_str(drv_str(fl, "service", ""));
        out = malloc(frame_register_size(a.len));
        n = frame_write_register(out, id, (uint32_t)drv_int(fl, "credit", 0),
                                 a);
        break;
    default:
        out = malloc(FRAME_HEADER_SIZE);
        n = frame_write_empty(out, type, id);
        break;
    }
    /* The writers of frames without flags write 0; the header's flags byte
     * is the same for every type. */
    out[5] = flags;
    h = drv_hex(out, n);
    o = drv_ok();
    json_object_set_new(o, "hex", json_string(h));
    free(h);
    free(out);
    free(key);
    free(payload);
    return o;
}

/* -------------------------------------------------------------- caller */

/* What a request carries, built from a command's fields. */
struct drv_req {
    struct ferry_request r; /* borrows the buffers below */
    uint8_t *payload;       /* owned */
    uint8_t *key;           /* owned */
    bool generated;         /* payload_gen: answer with reply_len/echo_ok */
    char *service;          /* owned */
};

static void
drv_req_release(struct drv_req *q)
{
    free(q->payload);
    free(q->key);
    free(q->service);
}

/* The payload_gen bytes: byte i is (i * 7 + seed) % 251. */
static uint8_t *
drv_gen(size_t size, uint64_t seed)
{
    uint8_t *p = malloc(size + 1);

    if (p == NULL) {
        abort();
    }
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t)(((uint64_t)i * 7 + seed) % 251);
    }
    return p;
}

static bool
drv_req_build(json_t *cmd, struct drv_req *q)
{
    json_t *gen = json_object_get(cmd, "payload_gen");
    size_t n = 0;

    memset(q, 0, sizeof(*q));
    q->service = strdup(drv_str(cmd, "service", ""));
    if (json_is_object(gen)) {
        n = (size_t)drv_int(gen, "size", 0);
        q->payload = drv_gen(n, (uint64_t)drv_int(gen, "seed", 0));
        q->generated = true;
    } else if (!drv_unhex(drv_str(cmd, "payload_hex", ""), &q->payload, &n)) {
        return false;
    }
    q->r.payload = q->payload;
    q->r.payload_len = n;
    if (!drv_unhex(drv_str(cmd, "key_hex", ""), &q->key, &q->r.key_len)) {
        return false;
    }
    q->r.key = q->r.key_len > 0 ? q->key : NULL;
    q->r.service = q->service;
    q->r.deadline_ms = (uint32_t)drv_int(cmd, "deadline_ms", 0);
    q->r.flags =
        json_is_true(json_object_get(cmd, "idempotent")) ? FERRY_IDEMPOTENT : 0;
    return true;
}

/* The answer to a finished call. */
static json_t *
drv_outcome(const struct drv_req *q, ferry_err err, const void *data,
            size_t len)
{
    json_t *o;

    if (err != FERRY_OK) {
        return drv_fail(err, data, len);
    }
    o = drv_ok();
    if (q->generated) {
        json_object_set_new(o, "reply_len", json_integer((json_int_t)len));
        json_object_set_new(
            o, "echo_ok",
            json_boolean(len == q->r.payload_len &&
                         (len == 0 || memcmp(data, q->payload, len) == 0)));
    } else {
        drv_set_hex(o, "reply_hex", data, len);
    }
    return o;
}

/* A call made with send, awaited by tag. */
struct drv_tag {
    char *name;         /* owned: the tag */
    struct drv_req req; /* what was sent */
    uint64_t id;        /* libferry's request id */
    bool done;          /* the callback ran */
    json_t *outcome;    /* owned once done */
};

struct drv_caller {
    struct ferry_client *c;             /* owned, or NULL */
    struct drv_tag *tags[DRV_MAX_TAGS]; /* owned: calls by tag */
    size_t ntags;                       /* entries in tags */
};

static void
drv_tag_cb(void *arg, ferry_err err, const void *data, size_t len)
{
    struct drv_tag *t = arg;

    t->done = true;
    t->outcome = drv_outcome(&t->req, err, data, len);
}

static struct drv_tag *
drv_tag_find(struct drv_caller *dc, const char *name)
{
    for (size_t i = 0; i < dc->ntags; i++) {
        if (strcmp(dc->tags[i]->name, name) == 0) {
            return dc->tags[i];
        }
    }
    return NULL;
}

static void
drv_tag_free(struct drv_tag *t)
{
    drv_req_release(&t->req);
    json_decref(t->outcome);
    free(t->name);
    free(t);
}

/* Frees the client; calls still in flight end (CANCELLED) into their
 * tags first, so the tags go after. */
static void
drv_close(struct drv_caller *dc)
{
    ferry_client_free(dc->c);
    dc->c = NULL;
    for (size_t i = 0; i < dc->ntags; i++) {
        drv_tag_free(dc->tags[i]);
    }
    dc->ntags = 0;
}

static json_t *
drv_connect(struct drv_caller *dc, json_t *cmd)
{
    struct ferry_opts opts = {0};
    ferry_err err;
    const char *m;

    drv_close(dc);
    opts.token = drv_str(cmd, "token", NULL);
    opts.name = drv_str(cmd, "name", "conformance-c");
    opts.heartbeat_ms = (uint32_t)drv_int(cmd, "heartbeat_ms", 0);
    opts.max_frame = (uint32_t)drv_int(cmd, "max_frame", 0);
    err = ferry_client_new(drv_str(cmd, "addr", NULL), &opts, &dc->c);
    if (err != FERRY_OK) {
        m = ferry_strerror(err);
        return drv_fail(err, m, strlen(m));
    }
    err = ferry_client_connect(dc->c);
    if (err != FERRY_OK) {
        json_t *o;
        m = ferry_client_errmsg(dc->c);
        o = drv_fail(err, m, strlen(m));
        ferry_client_free(dc->c);
        dc->c = NULL;
        return o;
    }
    return drv_ok();
}

static json_t *
drv_call(struct drv_caller *dc, json_t *cmd)
{
    struct ferry_reply rep;
    struct drv_req q;
    json_t *o;

    if (!drv_req_build(cmd, &q)) {
        drv_req_release(&q);
        return drv_bad("BAD_COMMAND", "bad hex");
    }
    ferry_call(dc->c, &q.r, &rep);
    o = drv_outcome(&q, rep.err, rep.data, rep.len);
    ferry_reply_release(&rep);
    drv_req_release(&q);
    return o;
}

static json_t *
drv_send(struct drv_caller *dc, json_t *cmd)
{
    const char *name = drv_str(cmd, "tag", "");
    struct drv_tag *t;
    ferry_err err;
    const char *m;

    if (drv_tag_find(dc, name) != NULL || dc->ntags == DRV_MAX_TAGS) {
        return drv_bad("BAD_COMMAND", "tag in use, or too many tags");
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        abort();
    }
    t->name = strdup(name);
    if (!drv_req_build(cmd, &t->req)) {
        drv_tag_free(t);
        return drv_bad("BAD_COMMAND", "bad hex");
    }
    err = ferry_call_start(dc->c, &t->req.r, drv_tag_cb, t, &t->id);
    if (err != FERRY_OK) {
        drv_tag_free(t);
        m = ferry_strerror(err);
        return drv_fail(err, m, strlen(m));
    }
    dc->tags[dc->ntags++] = t;
    return drv_ok();
}

static json_t *
drv_cancel(struct drv_caller *dc, json_t *cmd)
{
    struct drv_tag *t = drv_tag_find(dc, drv_str(cmd, "tag", ""));
    ferry_err err;
    const char *m;

    if (t == NULL) {
        return drv_bad("BAD_COMMAND", "no such tag");
    }
    if (t->done) {
        return drv_ok(); /* ended already: nothing to ask */
    }
    err = ferry_call_cancel(dc->c, t->id);
    if (err != FERRY_OK) {
        m = ferry_strerror(err);
        return drv_fail(err, m, strlen(m));
    }
    return drv_ok();
}

static json_t *
drv_await(struct drv_caller *dc, json_t *cmd)
{
    const char *name = drv_str(cmd, "tag", "");
    struct drv_tag *t = drv_tag_find(dc, name);
    uint64_t end = drv_now_ms() + (uint64_t)drv_int(cmd, "timeout_ms", 30000);
    json_t *o;

    if (t == NULL) {
        return drv_bad("BAD_COMMAND", "no such tag");
    }
    while (!t->done) {
        uint64_t now = drv_now_ms();
        if (now >= end) {
            return drv_bad("HUNG", "no outcome in time");
        }
        ferry_client_run(dc->c, (int)(end - now));
    }
    o = json_incref(t->outcome);
    /* The tag may be used again. */
    for (size_t i = 0; i < dc->ntags; i++) {
        if (dc->tags[i] == t) {
            dc->tags[i] = dc->tags[--dc->ntags];
            break;
        }
    }
    drv_tag_free(t);
    return o;
}

/* One request of a pipeline. */
struct drv_pipe {
    char *payload; /* owned */
    size_t len;    /* bytes in payload */
    bool done;     /* answered */
    bool match;    /* the reply was its own payload */
    ferry_err err; /* the outcome */
};

static void
drv_pipe_cb(void *arg, ferry_err err, const void *data, size_t len)
{
    struct drv_pipe *p = arg;

    p->done = true;
    p->err = err;
    p->match =
        err == FERRY_OK && len == p->len && memcmp(data, p->payload, len) == 0;
}

static json_t *
drv_pipeline(struct drv_caller *dc, json_t *cmd)
{
    size_t count = (size_t)drv_int(cmd, "count", 0);
    size_t size = (size_t)drv_int(cmd, "payload_size", 0);
    struct drv_pipe *ps = calloc(count + 1, sizeof(*ps));
    struct ferry_request r = {0};
    size_t replied = 0, mismatched = 0;
    json_t *o, *errors;

    if (ps == NULL) {
        abort();
    }
    r.service = drv_str(cmd, "service", "");
    r.deadline_ms = (uint32_t)drv_int(cmd, "deadline_ms", 0);
    for (size_t i = 0; i < count; i++) {
        char num[24];
        int k = snprintf(num, sizeof(num), "%zu", i);
        ps[i].len = size > (size_t)k ? size : (size_t)k;
        ps[i].payload = malloc(ps[i].len + 1);
        memset(ps[i].payload, 'x', ps[i].len);
        memcpy(ps[i].payload, num, (size_t)k);
        r.payload = ps[i].payload;
        r.payload_len = ps[i].len;
        ferry_err err = ferry_call_async(dc->c, &r, drv_pipe_cb, &ps[i]);
        if (err != FERRY_OK) {
            ps[i].done = true;
            ps[i].err = err;
        }
    }
    /* Every call has a deadline and a lost link ends them all. */
    while (ferry_client_pending(dc->c) > 0) {
        ferry_client_run(dc->c, -1);
    }
    errors = json_object();
    for (size_t i = 0; i < count; i++) {
        if (ps[i].err == FERRY_OK) {
            replied++;
            mismatched += !ps[i].match;
        } else {
            const char *name = ferry_errname(ps[i].err);
            json_t *v = json_object_get(errors, name);
            json_object_set_new(
                errors, name,
                json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
        }
        free(ps[i].payload);
    }
    free(ps);
    o = drv_ok();
    json_object_set_new(o, "replied", json_integer((json_int_t)replied));
    json_object_set_new(o, "mismatched", json_integer((json_int_t)mismatched));
    json_object_set_new(o, "errors", errors);
    return o;
}

/* ------------------------------------------------------------ servants */

static void
drv_set_u64(json_t *o, const char *k, uint64_t v)
{
    char b[24];

    snprintf(b, sizeof(b), "%" PRIu64, v);
    json_object_set_new(o, k, json_string(b));
}

static uint64_t
drv_u64(json_t *a, const char *k, uint64_t dflt)
{
    const char *s = drv_str(a, k, NULL);

    return s ? strtoull(s, NULL, 10) : dflt;
}

/* Bytes of a hex field, kept in *own (freed by the caller). */
static size_t
drv_arg_bytes(json_t *a, const char *k, uint8_t **own, bool *has)
{
    size_t n = 0;
    const char *h = drv_str(a, k, NULL);

    *own = NULL;
    if (has != NULL) {
        *has = h != NULL;
    }
    if (h != NULL && !drv_unhex(h, own, &n)) {
        *own = NULL;
        n = 0;
    }
    return n;
}

static void
drv_set_entry(json_t *o, const struct ferry_kv_entry *e, bool with_key)
{
    if (with_key) {
        drv_set_hex(o, "key_hex", e->key, e->key_len);
    }
    drv_set_u64(o, "create_rev", e->create_rev);
    drv_set_u64(o, "mod_rev", e->mod_rev);
    drv_set_u64(o, "version", e->version);
    drv_set_hex(o, "value_hex", e->value, e->value_len);
}

static unsigned
drv_op_code(const char *const *names, unsigned n, const char *op)
{
    for (unsigned i = 1; i < n; i++) {
        if (strcmp(names[i], op) == 0) {
            return i;
        }
    }
    return 0;
}

/* The queue.* servant calls (DRIVER.md) through the ferry_queue_* calls:
 * the named ones, or ferry_queue_call for what they do not take (a
 * deadline, push's visibility and max_deliveries). NULL with *err set
 * when the call failed; BAD_COMMAND for an unknown op. */
static json_t *
drv_queue(struct drv_caller *dc, const char *op, json_t *a, uint32_t deadline,
          struct ferry_reply *raw, ferry_err *err)
{
    static const char *const ops[] = {
        "",      "push",   "reserve", "ack",    "release",
        "touch", "bury",   "peek",    "stats",  "redrive",
        "pause", "resume", "purge",   "delete", "configure"};
    static const char *const whichs[] = {"ready", "delayed", "dead",
                                         "reserved"};
    struct ferry_queue_req q = {0};
    struct ferry_queue_reply r;
    uint8_t *payload, *dedup, *reason;
    bool has_dedup;
    const char *which = drv_str(a, "which", "ready");
    char *settings = NULL;
    json_t *o = NULL;

    q.op = drv_op_code(ops, 15, op);
    if (q.op == 0) {
        return drv_bad("BAD_COMMAND", "unknown queue call");
    }
    q.queue = drv_str(a, "queue", NULL);
    q.payload_len = drv_arg_bytes(a, "payload_hex", &payload, NULL);
    q.payload = payload;
    q.dedup_len = drv_arg_bytes(a, "dedup_hex", &dedup, &has_dedup);
    q.dedup = has_dedup ? dedup : NULL;
    q.reason_len = drv_arg_bytes(a, "reason_hex", &reason, NULL);
    q.reason = reason;
    q.priority = (int16_t)drv_int(a, "priority", 0);
    q.delay_ms = json_is_true(json_object_get(a, "backoff"))
                     ? FERRY_QUEUE_RELEASE_BACKOFF
                     : (uint32_t)drv_int(a, "delay_ms", 0);
    q.visibility_ms = (uint32_t)drv_int(a, "visibility_ms", 0);
    q.max_deliveries = (uint16_t)drv_int(a, "max_deliveries", 0);
    q.wait_ms = (uint32_t)drv_int(a, "wait_ms", 0);
    q.id = drv_u64(a, "id", 0);
    q.token = drv_u64(a, "token", 0);
    q.which = 4; /* unknown: the encoder refuses it */
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(which, whichs[i]) == 0) {
            q.which = i;
        }
    }
    q.limit = (uint32_t)drv_int(a, "limit", q.op == FERRY_QUEUE_PEEK ? 10 : 0);
    if (json_object_get(a, "settings") != NULL) {
        settings = json_dumps(json_object_get(a, "settings"),
                              JSON_COMPACT | JSON_PRESERVE_ORDER);
        q.settings = settings;
    }
    switch (deadline != 0 ? 0 : q.op) {
    case FERRY_QUEUE_PUSH:
        if (q.visibility_ms != 0 || q.max_deliveries != 0) {
            *err = ferry_queue_call(dc->c, &q, 0, raw, &r);
            break;
        }
        *err = ferry_queue_push(dc->c, q.queue, q.payload, q.payload_len,
                                q.priority, q.delay_ms, q.dedup, q.dedup_len,
                                raw, &r);
        break;
    case FERRY_QUEUE_RESERVE:
        *err = ferry_queue_reserve(dc->c, q.queue, q.wait_ms, q.visibility_ms,
                                   raw, &r);
        break;
    case FERRY_QUEUE_ACK:
        *err = ferry_queue_ack(dc->c, q.queue, q.id, q.token, raw, &r);
        break;
    case FERRY_QUEUE_RELEASE:
        *err = ferry_queue_release(dc->c, q.queue, q.id, q.token, q.delay_ms,
                                   raw, &r);
        break;
    case FERRY_QUEUE_TOUCH:
        *err = ferry_queue_touch(dc->c, q.queue, q.id, q.token, q.visibility_ms,
                                 raw, &r);
        break;
    case FERRY_QUEUE_BURY:
        *err = ferry_queue_bury(dc->c, q.queue, q.id, q.token, q.reason,
                                q.reason_len, raw, &r);
        break;
    case FERRY_QUEUE_PEEK:
        *err = ferry_queue_peek(dc->c, q.queue, q.which, q.limit, raw, &r);
        break;
    case FERRY_QUEUE_STATS:
        *err = ferry_queue_stats(dc->c, q.queue, raw, &r);
        break;
    case FERRY_QUEUE_REDRIVE:
        *err = ferry_queue_redrive(dc->c, q.queue, q.limit, raw, &r);
        break;
    case FERRY_QUEUE_PAUSE:
        *err = ferry_queue_pause(dc->c, q.queue, raw, &r);
        break;
    case FERRY_QUEUE_RESUME:
        *err = ferry_queue_resume(dc->c, q.queue, raw, &r);
        break;
    case FERRY_QUEUE_PURGE:
        *err = ferry_queue_purge(dc->c, q.queue, raw, &r);
        break;
    case FERRY_QUEUE_DELETE:
        *err = ferry_queue_delete(dc->c, q.queue, raw, &r);
        break;
    case FERRY_QUEUE_CONFIGURE:
        *err = ferry_queue_configure(dc->c, q.queue, q.settings, raw, &r);
        break;
    default:
        *err = ferry_queue_call(dc->c, &q, deadline, raw, &r);
    }
    if (*err == FERRY_OK) {
        o = drv_ok();
        json_object_set_new(o, "status",
                            json_string(ferry_queue_status_name(r.status)));
    }
    if (*err == FERRY_OK && r.status == FERRY_QUEUE_OK) {
        switch (q.op) {
        case FERRY_QUEUE_PUSH:
            drv_set_u64(o, "id", r.id);
            json_object_set_new(o, "dup", json_boolean(r.dup));
            break;
        case FERRY_QUEUE_RESERVE:
            drv_set_u64(o, "id", r.id);
            drv_set_u64(o, "token", r.token);
            json_object_set_new(o, "attempts", json_integer(r.attempts));
            json_object_set_new(o, "priority", json_integer(r.priority));
            drv_set_hex(o, "payload_hex", r.payload, r.payload_len);
            break;
        case FERRY_QUEUE_TOUCH:
            json_object_set_new(o, "visibility_ms",
                                json_integer(r.visibility_ms));
            break;
        case FERRY_QUEUE_PEEK: {
            json_t *list = json_array();
            struct ferry_queue_entry e;
            size_t pos = 0;
            while (ferry_queue_next(&r, &pos, &e)) {
                json_t *i = json_object();
                drv_set_u64(i, "id", e.id);
                json_object_set_new(i, "attempts", json_integer(e.attempts));
                json_object_set_new(i, "priority", json_integer(e.priority));
                json_object_set_new(
                    i, "state", json_string(ferry_queue_state_name(e.state)));
                drv_set_u64(i, "age_ms", e.age_ms);
                drv_set_hex(i, "reason_hex", e.reason, e.reason_len);
                drv_set_hex(i, "payload_hex", e.payload, e.payload_len);
                json_array_append_new(list, i);
            }
            json_object_set_new(o, "entries", list);
            break;
        }
        case FERRY_QUEUE_STATS:
        case FERRY_QUEUE_CONFIGURE: {
            json_t *doc = json_loadb(r.json, r.json_len, 0, NULL);
            if (doc == NULL) {
                json_decref(o);
                o = NULL;
                *err = FERRY_EINVALID_ARGUMENT;
                break;
            }
            json_object_set_new(
                o, q.op == FERRY_QUEUE_STATS ? "stats" : "settings", doc);
            break;
        }
        case FERRY_QUEUE_REDRIVE:
            drv_set_u64(o, "moved", r.count);
            break;
        case FERRY_QUEUE_PURGE:
            drv_set_u64(o, "removed", r.count);
            break;
        default:
            break;
        }
    }
    free(settings);
    free(payload);
    free(dedup);
    free(reason);
    return o;
}

/* The topic.* servant calls (DRIVER.md) through the ferry_topic_* calls,
 * or ferry_topic_call when a deadline is given. NULL with *err set when
 * the call failed; BAD_COMMAND for an unknown op. */
static json_t *
drv_topic(struct drv_caller *dc, const char *op, json_t *a, uint32_t deadline,
          struct ferry_reply *raw, ferry_err *err)
{
    static const char *const ops[] = {"",     "publish",     "subscribe",
                                      "poll", "unsubscribe", "stats"};
    const char *policy = drv_str(a, "policy", "drop_oldest");
    struct ferry_topic_req q = {0};
    struct ferry_topic_reply r;
    uint8_t *payload;
    json_t *o = NULL;

    q.op = drv_op_code(ops, 6, op);
    if (q.op == 0) {
        return drv_bad("BAD_COMMAND", "unknown topic call");
    }
    q.subject = drv_str(a, "subject", "");
    q.pattern = drv_str(a, "pattern", "");
    q.group = drv_str(a, "group", NULL);
    q.payload_len = drv_arg_bytes(a, "message_hex", &payload, NULL);
    q.payload = payload;
    q.max_pending = (uint32_t)drv_int(a, "max_pending", 0);
    q.policy = strcmp(policy, "close") == 0         ? FERRY_TOPIC_CLOSE
               : strcmp(policy, "drop_oldest") == 0 ? FERRY_TOPIC_DROP_OLDEST
                                                    : 2; /* refused */
    q.sub_id = drv_u64(a, "sub_id", 0);
    q.wait_ms = (uint32_t)drv_int(a, "wait_ms", 0);
    q.max_msgs = (uint32_t)drv_int(a, "max_msgs", 0);
    switch (deadline != 0 ? 0 : q.op) {
    case FERRY_TOPIC_PUBLISH:
        *err = ferry_topic_publish(dc->c, q.subject, q.payload, q.payload_len,
                                   raw, &r);
        break;
    case FERRY_TOPIC_SUBSCRIBE:
        *err = ferry_topic_subscribe(dc->c, q.pattern, q.group, q.max_pending,
                                     q.policy, raw, &r);
        break;
    case FERRY_TOPIC_POLL:
        *err =
            ferry_topic_poll(dc->c, q.sub_id, q.wait_ms, q.max_msgs, raw, &r);
        break;
    case FERRY_TOPIC_UNSUBSCRIBE:
        *err = ferry_topic_unsubscribe(dc->c, q.sub_id, raw, &r);
        break;
    case FERRY_TOPIC_STATS:
        *err = ferry_topic_stats(dc->c, q.sub_id, raw, &r);
        break;
    default:
        *err = ferry_topic_call(dc->c, &q, deadline, raw, &r);
    }
    free(payload);
    if (*err != FERRY_OK) {
        return NULL;
    }
    o = drv_ok();
    json_object_set_new(o, "status",
                        json_string(ferry_topic_status_name(r.status)));
    switch (q.op) {
    case FERRY_TOPIC_PUBLISH:
        json_object_set_new(o, "receivers", json_integer(r.receivers));
        break;
    case FERRY_TOPIC_SUBSCRIBE:
        drv_set_u64(o, "sub_id", r.sub_id);
        break;
    case FERRY_TOPIC_POLL:
        if (r.status != FERRY_TOPIC_NOT_FOUND) {
            drv_set_u64(o, "dropped", r.dropped);
        }
        if (r.status == FERRY_TOPIC_OK) {
            json_t *list = json_array();
            struct ferry_topic_msg m;
            size_t pos = 0;
            while (ferry_topic_next(&r, &pos, &m)) {
                json_t *i = json_object();
                drv_set_u64(i, "seq", m.seq);
                json_object_set_new(i, "subject",
                                    json_stringn(m.subject, m.subject_len));
                drv_set_hex(i, "payload_hex", m.payload, m.payload_len);
                json_array_append_new(list, i);
            }
            json_object_set_new(o, "messages", list);
        }
        break;
    case FERRY_TOPIC_STATS:
        if (r.status == FERRY_TOPIC_OK) {
            json_t *doc = json_loadb(r.json, r.json_len, 0, NULL);
            if (doc == NULL) {
                json_decref(o);
                *err = FERRY_EINVALID_ARGUMENT;
                return NULL;
            }
            json_object_set_new(o, "stats", doc);
        }
        break;
    default:
        break;
    }
    return o;
}

/* op cluster: ferry_cluster(), its JSON document's fields beside ok; a
 * reply that is not a JSON object is INVALID_ARGUMENT. */
static json_t *
drv_cluster(struct drv_caller *dc)
{
    struct ferry_reply raw = {0};
    ferry_err err = ferry_cluster(dc->c, 0, &raw);
    json_t *doc, *o;

    if (err != FERRY_OK) {
        o = drv_fail(err, raw.data, raw.len);
        ferry_reply_release(&raw);
        return o;
    }
    doc = json_loadb((const char *)raw.data, raw.len, 0, NULL);
    ferry_reply_release(&raw);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return drv_fail(FERRY_EINVALID_ARGUMENT, "not a JSON object", 17);
    }
    o = drv_ok();
    json_object_update(o, doc);
    json_decref(doc);
    return o;
}

static json_t *
drv_servant(struct drv_caller *dc, json_t *cmd)
{
    static const char *const cache_ops[] = {
        "", "get", "get_many", "set", "add", "replace", "append", "prepend",
        "cas", "delete", "incr", "decr", "touch", "gat", "flush"};
    static const char *const kv_ops[] = {"",      "get",   "put",  "delete",
                                         "range", "count", "watch"};
    const char *call = drv_str(cmd, "call", "");
    json_t *a = json_object_get(cmd, "args");
    uint32_t deadline = (uint32_t)drv_int(cmd, "deadline_ms", 0);
    struct ferry_reply raw = {0};
    uint8_t *key, *value, *end;
    bool has_end;
    size_t klen, vlen, elen;
    ferry_err err = FERRY_OK;
    json_t *o = NULL;

    if (!json_is_object(a)) {
        a = json_object();
    } else {
        json_incref(a);
    }
    klen = drv_arg_bytes(a, "key_hex", &key, NULL);
    vlen = drv_arg_bytes(a, "value_hex", &value, NULL);
    elen = drv_arg_bytes(a, "end_hex", &end, &has_end);
    if (strncmp(call, "cache.", 6) == 0 &&
        drv_op_code(cache_ops, 15, call + 6) != 0) {
        struct ferry_cache_req q = {0};
        struct ferry_cache_reply r;
        json_t *ks = json_object_get(a, "keys_hex");
        size_t nk = json_array_size(ks);
        struct ferry_bytes *keys = calloc(nk + 1, sizeof(*keys));
        uint8_t **kown = calloc(nk + 1, sizeof(*kown));

        if (keys == NULL || kown == NULL) {
            abort();
        }
        for (size_t i = 0; i < nk; i++) {
            size_t n = 0;
            if (!drv_unhex(json_string_value(json_array_get(ks, i)), &kown[i],
                           &n)) {
                kown[i] = NULL;
            }
            keys[i].data = kown[i];
            keys[i].len = n;
        }
        q.op = drv_op_code(cache_ops, 15, call + 6);
        q.key = key;
        q.key_len = klen;
        q.value = value;
        q.value_len = vlen;
        q.flags = (uint32_t)drv_int(a, "flags", 0);
        q.ttl_ms = (uint32_t)drv_int(a, "ttl_ms", 0);
        q.delay_ms = (uint32_t)drv_int(a, "delay_ms", 0);
        q.cas = drv_u64(a, "cas", 0);
        q.delta = drv_u64(a, "delta", 1);
        q.keys = keys;
        q.n_keys = nk;
        /* The named calls where they exist (they take ferryd's default
         * deadline), ferry_cache_call for the rest. */
        switch (deadline != 0 ? 0 : q.op) {
        case FERRY_CACHE_GET:
            err = ferry_cache_get(dc->c, key, klen, &raw, &r);
            break;
        case FERRY_CACHE_SET:
            err = ferry_cache_set(dc->c, key, klen, value, vlen, q.flags,
                                  q.ttl_ms, &raw, &r);
            break;
        case FERRY_CACHE_ADD:
            err = ferry_cache_add(dc->c, key, klen, value, vlen, q.flags,
                                  q.ttl_ms, &raw, &r);
            break;
        case FERRY_CACHE_CAS:
            err = ferry_cache_cas(dc->c, key, klen, value, vlen, q.flags,
                                  q.ttl_ms, q.cas, &raw, &r);
            break;
        case FERRY_CACHE_DELETE:
            err = ferry_cache_delete(dc->c, key, klen, &raw, &r);
            break;
        case FERRY_CACHE_INCR:
            err = ferry_cache_incr(dc->c, key, klen, q.delta, &raw, &r);
            break;
        case FERRY_CACHE_DECR:
            err = ferry_cache_decr(dc->c, key, klen, q.delta, &raw, &r);
            break;
        case FERRY_CACHE_TOUCH:
            err = ferry_cache_touch(dc->c, key, klen, q.ttl_ms, &raw, &r);
            break;
        case FERRY_CACHE_FLUSH:
            err = ferry_cache_flush(dc->c, q.delay_ms, &raw, &r);
            break;
        default:
            err = ferry_cache_call(dc->c, &q, deadline, &raw, &r);
        }
        if (err == FERRY_OK) {
            bool hit = r.status == FERRY_SV_OK;
            o = drv_ok();
            json_object_set_new(o, "status",
                                json_string(ferry_sv_status_name(r.status)));
            if (q.op == FERRY_CACHE_GET || q.op == FERRY_CACHE_GAT) {
                if (hit) {
                    json_object_set_new(o, "flags", json_integer(r.flags));
                    drv_set_u64(o, "cas", r.cas);
                    drv_set_hex(o, "value_hex", r.value, r.value_len);
                }
            } else if (q.op == FERRY_CACHE_GET_MANY) {
                json_t *items = json_array();
                struct ferry_cache_item it;
                size_t pos = 0;
                while (ferry_cache_next(&r, &pos, &it)) {
                    json_t *i = json_object();
                    json_object_set_new(
                        i, "status",
                        json_string(ferry_sv_status_name(it.status)));
                    if (it.status == FERRY_SV_OK) {
                        json_object_set_new(i, "flags",
                                            json_integer(it.flags));
                        drv_set_u64(i, "cas", it.cas);
                        drv_set_hex(i, "value_hex", it.value, it.value_len);
                    }
                    json_array_append_new(items, i);
                }
                json_object_set_new(o, "items", items);
            } else if (q.op == FERRY_CACHE_INCR || q.op == FERRY_CACHE_DECR) {
                if (hit) {
                    drv_set_u64(o, "value", r.number);
                }
            } else if (q.op != FERRY_CACHE_DELETE &&
                       q.op != FERRY_CACHE_TOUCH &&
                       q.op != FERRY_CACHE_FLUSH && hit) {
                drv_set_u64(o, "cas", r.cas);
            }
        }
        for (size_t i = 0; i < nk; i++) {
            free(kown[i]);
        }
        free(kown);
        free(keys);
    } else if (strncmp(call, "kv.", 3) == 0 &&
               drv_op_code(kv_ops, 7, call + 3) != 0) {
        struct ferry_kv_req q = {0};
        struct ferry_kv_reply r;
        const char *cond = drv_str(a, "cond", "any");

        q.op = drv_op_code(kv_ops, 7, call + 3);
        q.key = key;
        q.key_len = klen;
        q.value = value;
        q.value_len = vlen;
        q.cond = strcmp(cond, "absent") == 0    ? FERRY_KV_IF_ABSENT
                 : strcmp(cond, "mod_rev") == 0 ? FERRY_KV_IF_MOD_REV
                                                : FERRY_KV_ANY;
        q.rev = drv_u64(a, "rev", 0);
        q.has_end = has_end;
        q.end = end;
        q.end_len = elen;
        q.limit = (uint32_t)drv_int(a, "limit", 0);
        q.keys_only = json_is_true(json_object_get(a, "keys_only"));
        q.prefix = json_is_true(json_object_get(a, "prefix"));
        q.from_rev = drv_u64(a, "from_rev", 0);
        q.wait_ms = (uint32_t)drv_int(a, "wait_ms", 0);
        q.max_events = (uint32_t)drv_int(a, "max_events", 0);
        switch (deadline != 0 ? 0 : q.op) {
        case FERRY_KV_GET:
            err = ferry_kv_get(dc->c, key, klen, &raw, &r);
            break;
        case FERRY_KV_PUT:
            err = ferry_kv_put(dc->c, key, klen, value, vlen, q.cond, q.rev,
                               &raw, &r);
            break;
        case FERRY_KV_DELETE:
            err = ferry_kv_delete(dc->c, key, klen, q.cond, q.rev, &raw, &r);
            break;
        case FERRY_KV_COUNT:
            err = ferry_kv_count(dc->c, key, klen, has_end ? end : NULL, elen,
                                 &raw, &r);
            break;
        case FERRY_KV_RANGE:
            if (!q.keys_only) {
                err = ferry_kv_range(dc->c, key, klen,
                                     has_end ? (const void *)end : NULL, elen,
                                     q.limit, &raw, &r);
                break;
            }
            err = ferry_kv_call(dc->c, &q, deadline, &raw, &r);
            break;
        case FERRY_KV_WATCH:
            if (q.max_events == 0) {
                err = ferry_kv_watch(dc->c, key, klen, q.prefix, q.from_rev,
                                     q.wait_ms, &raw, &r);
                break;
            }
            err = ferry_kv_call(dc->c, &q, q.wait_ms + 5000, &raw, &r);
            break;
        default:
            err = ferry_kv_call(dc->c, &q, deadline, &raw, &r);
        }
        if (err == FERRY_OK) {
            o = drv_ok();
            json_object_set_new(o, "status",
                                json_string(ferry_sv_status_name(r.status)));
            if (q.op != FERRY_KV_COUNT) {
                drv_set_u64(o, "rev", r.rev);
            }
            if (q.op == FERRY_KV_GET && r.status == FERRY_SV_OK) {
                drv_set_entry(o, &r.entry, false);
            } else if (q.op == FERRY_KV_COUNT) {
                drv_set_u64(o, "count", r.count);
            } else if (q.op == FERRY_KV_RANGE || q.op == FERRY_KV_WATCH) {
                json_t *list = json_array();
                struct ferry_kv_entry e;
                size_t pos = 0;
                if (q.op == FERRY_KV_RANGE) {
                    json_object_set_new(o, "more", json_boolean(r.more));
                }
                while (ferry_kv_next(&r, &pos, &e)) {
                    json_t *i = json_object();
                    if (q.op == FERRY_KV_WATCH) {
                        json_object_set_new(
                            i, "type", json_string(e.type ? "delete" : "put"));
                    }
                    drv_set_entry(i, &e, true);
                    json_array_append_new(list, i);
                }
                json_object_set_new(
                    o, q.op == FERRY_KV_RANGE ? "items" : "events", list);
            }
        }
    } else if (strncmp(call, "queue.", 6) == 0) {
        o = drv_queue(dc, call + 6, a, deadline, &raw, &err);
    } else if (strncmp(call, "topic.", 6) == 0) {
        o = drv_topic(dc, call + 6, a, deadline, &raw, &err);
    } else if (strcmp(call, "id.next") == 0) {
        struct ferry_id_reply r;
        err = ferry_id_next(dc->c, (uint32_t)drv_int(a, "count", 1), &raw, &r);
        if (err == FERRY_OK) {
            json_t *ids = json_array();
            char b[24];
            o = drv_ok();
            json_object_set_new(o, "status",
                                json_string(ferry_sv_status_name(r.status)));
            for (uint32_t i = 0; i < r.n; i++) {
                snprintf(b, sizeof(b), "%" PRIu64, ferry_id_at(&r, i));
                json_array_append_new(ids, json_string(b));
            }
            json_object_set_new(o, "ids", ids);
        }
    } else if (strcmp(call, "id.decode") == 0) {
        struct ferry_id_reply r;
        err = ferry_id_decode(dc->c, drv_u64(a, "id", 0), &raw, &r);
        if (err == FERRY_OK) {
            o = drv_ok();
            json_object_set_new(o, "status",
                                json_string(ferry_sv_status_name(r.status)));
            drv_set_u64(o, "unix_ms", r.unix_ms);
            json_object_set_new(o, "node", json_integer(r.node));
            json_object_set_new(o, "seq", json_integer(r.seq));
        }
    } else {
        o = drv_bad("BAD_COMMAND", "unknown servant call");
    }
    if (o == NULL) {
        /* ferryd's error with its message, or a malformed reply. */
        if (raw.err != FERRY_OK && raw.data != NULL) {
            o = drv_fail(err, raw.data, raw.len);
        } else {
            const char *m = ferry_strerror(err);
            o = drv_fail(err, m, strlen(m));
        }
    }
    ferry_reply_release(&raw);
    free(key);
    free(value);
    free(end);
    json_decref(a);
    return o;
}

/* Runs one command; NULL answer means quit. */
static json_t *
drv_command(struct drv_caller *dc, json_t *cmd, bool *quit)
{
    const char *op = drv_str(cmd, "op", "");
    json_t *o;

    if (strcmp(op, "decode") == 0) {
        return drv_decode(cmd);
    }
    if (strcmp(op, "encode") == 0) {
        return drv_encode(cmd);
    }
    if (strcmp(op, "connect") == 0) {
        return drv_connect(dc, cmd);
    }
    if (strcmp(op, "quit") == 0) {
        *quit = true;
        return drv_ok();
    }
    if (strcmp(op, "close") == 0) {
        drv_close(dc);
        return drv_ok();
    }
    if (dc->c == NULL) {
        return drv_bad("BAD_COMMAND", "not connected");
    }
    if (strcmp(op, "call") == 0) {
        return drv_call(dc, cmd);
    }
    if (strcmp(op, "send") == 0) {
        return drv_send(dc, cmd);
    }
    if (strcmp(op, "cancel") == 0) {
        return drv_cancel(dc, cmd);
    }
    if (strcmp(op, "await") == 0) {
        return drv_await(dc, cmd);
    }
    if (strcmp(op, "pipeline") == 0) {
        return drv_pipeline(dc, cmd);
    }
    if (strcmp(op, "servant") == 0) {
        return drv_servant(dc, cmd);
    }
    if (strcmp(op, "cluster") == 0) {
        return drv_cluster(dc);
    }
    if (strcmp(op, "stats") == 0) {
        o = drv_ok();
        json_object_set_new(
            o, "connects",
            json_integer((json_int_t)ferry_client_connects(dc->c)));
        return o;
    }
    return drv_bad("BAD_COMMAND", "unknown op");
}

static int
drv_caller_main(void)
{
    struct drv_caller dc = {0};
    char *line = NULL;
    size_t cap = 0, have = 0;
    bool quit = false;

    while (!quit) {
        char *nl = have > 0 ? memchr(line, '\n', have) : NULL;
        if (nl != NULL) {
            json_error_t jerr;
            size_t n = (size_t)(nl - line);
            json_t *cmd = json_loadb(line, n, 0, &jerr), *o;
            o = json_is_object(cmd) ? drv_command(&dc, cmd, &quit)
                                    : drv_bad("BAD_COMMAND", "not JSON");
            drv_emit(o);
            json_decref(cmd);
            memmove(line, nl + 1, have - n - 1);
            have -= n + 1;
            continue;
        }
        /* Between commands the client keeps being driven. */
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int r = poll(&pfd, 1, dc.c != NULL ? DRV_IDLE_TURN_MS : -1);
        if (dc.c != NULL) {
            ferry_client_run(dc.c, 0);
        }
        if (r <= 0) {
            continue;
        }
        if (have + 65536 > cap) {
            cap = (have + 65536) * 2;
            line = realloc(line, cap);
            if (line == NULL) {
                abort();
            }
        }
        ssize_t got = read(0, line + have, cap - have);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break; /* stdin closed: as quit */
        }
        have += (size_t)got;
    }
    drv_close(&dc);
    free(line);
    return 0;
}

/* -------------------------------------------------------------- worker */

/* A job answered later (sleep:MS:REST). */
struct drv_later {
    struct ferry_job *job; /* held */
    uint64_t due_ms;       /* when to answer */
    uint8_t *rest;         /* owned: the answer */
    size_t len;            /* bytes in rest */
};

struct drv_worker {
    struct ferry_worker *w;  /* owned */
    const char *name;        /* borrowed from argv */
    struct drv_later *later; /* owned: delayed answers */
    size_t nlater;           /* entries in later */
    size_t caplater;         /* entries allocated */
    struct ferry_job **hung; /* owned array: hang jobs held */
    size_t nhung;            /* entries in hung */
    size_t caphung;          /* entries allocated */
    size_t held;             /* jobs held now */
    uint64_t handled;        /* jobs answered */
};

static struct drv_worker dw;
static volatile sig_atomic_t drv_stopping;

static void
drv_on_term(int sig)
{
    (void)sig;
    drv_stopping = 1;
    if (dw.w != NULL) {
        ferry_worker_stop(dw.w);
    }
}

static void
drv_event_id(const char *event, uint64_t id, bool with_held)
{
    json_t *o = json_object();
    char s[24];

    snprintf(s, sizeof(s), "%" PRIu64, id);
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "id", json_string(s));
    if (with_held) {
        json_object_set_new(o, "held", json_integer((json_int_t)dw.held));
    }
    drv_emit(o);
}

/* Answers job (reply, or an error when code is not FERRY_OK) and says so. */
static void
drv_answer(struct ferry_job *job, ferry_err code, const void *data, size_t len)
{
    uint64_t id = ferry_job_id(job);

    if (code == FERRY_OK) {
        ferry_job_reply(job, data, len);
    } else {
        char *msg = malloc(len + 1);
        if (msg == NULL) {
            abort();
        }
        memcpy(msg, data, len);
        msg[len] = '\0';
        ferry_job_fail(job, code, msg);
        free(msg);
    }
    dw.held--;
    dw.handled++;
    drv_event_id("end", id, true);
}

static bool
drv_prefix(const uint8_t *p, size_t len, const char *pre)
{
    size_t n = strlen(pre);

    return len >= n && memcmp(p, pre, n) == 0;
}

static void
drv_handler(struct ferry_job *job, void *arg)
{
    size_t len;
    const uint8_t *p = ferry_job_payload(job, &len);
    json_t *o = json_object();
    char id[24];

    (void)arg;
    dw.held++;
    snprintf(id, sizeof(id), "%" PRIu64, ferry_job_id(job));
    json_object_set_new(o, "event", json_string("start"));
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "service", json_string(ferry_job_service(job)));
    /* Cut for big payloads (DRIVER.md); payload_len has the whole size. */
    drv_set_hex(o, "payload_hex", p, len > 1024 ? 1024 : len);
    json_object_set_new(o, "payload_len", json_integer((json_int_t)len));
    json_object_set_new(o, "held", json_integer((json_int_t)dw.held));
    drv_emit(o);

    if (drv_prefix(p, len, "sleep:")) {
        const uint8_t *colon = memchr(p + 6, ':', len - 6);
        char ms[16] = {0};
        size_t k = colon != NULL ? (size_t)(colon - (p + 6)) : len - 6;
        struct drv_later *l;

        memcpy(ms, p + 6, k < sizeof(ms) - 1 ? k : sizeof(ms) - 1);
        if (dw.nlater == dw.caplater) {
            dw.caplater = dw.caplater ? 2 * dw.caplater : 16;
            dw.later = realloc(dw.later, dw.caplater * sizeof(*dw.later));
            if (dw.later == NULL) {
                abort();
            }
        }
        l = &dw.later[dw.nlater++];
        l->job = job;
        l->due_ms = drv_now_ms() + strtoull(ms, NULL, 10);
        l->len = colon != NULL ? len - (size_t)(colon + 1 - p) : 0;
        l->rest = malloc(l->len + 1);
        if (l->rest == NULL) {
            abort();
        }
        if (l->len > 0) {
            memcpy(l->rest, colon + 1, l->len);
        }
        return;
    }
    if (drv_prefix(p, len, "fail:")) {
        drv_answer(job, FERRY_EWORKER_ERROR, p + 5, len - 5);
        return;
    }
    if (drv_prefix(p, len, "invalid:")) {
        drv_answer(job, FERRY_EINVALID_ARGUMENT, p + 8, len - 8);
        return;
    }
    if (len == 4 && memcmp(p, "hang", 4) == 0) {
        if (dw.nhung == dw.caphung) {
            dw.caphung = dw.caphung ? 2 * dw.caphung : 16;
            dw.hung = realloc(dw.hung, dw.caphung * sizeof(*dw.hung));
            if (dw.hung == NULL) {
                abort();
            }
        }
        dw.hung[dw.nhung++] = job;
        return;
    }
    if (len == 4 && memcmp(p, "exit", 4) == 0) {
        fflush(stdout);
        _exit(3); /* a lost worker: nothing answered, nothing said */
    }
    if (len == 4 && memcmp(p, "name", 4) == 0) {
        drv_answer(job, FERRY_OK, dw.name, strlen(dw.name));
        return;
    }
    if (drv_prefix(p, len, "size:")) {
        char num[16] = {0};
        size_t n;
        uint8_t *x;

        memcpy(num, p + 5, len - 5 < sizeof(num) - 1 ? len - 5 : 15);
        n = strtoull(num, NULL, 10);
        x = malloc(n + 1);
        if (x == NULL) {
            abort();
        }
        memset(x, 'x', n);
        drv_answer(job, FERRY_OK, x, n);
        free(x);
        return;
    }
    drv_answer(job, FERRY_OK, p, len);
}

static void
drv_on_cancel(struct ferry_job *job, void *arg)
{
    (void)arg;
    drv_event_id("cancel", ferry_job_id(job), false);
    /* A cancelled job is dropped at once: libferry sends nothing for it. */
    for (size_t i = 0; i < dw.nhung; i++) {
        if (dw.hung[i] == job) {
            dw.hung[i] = dw.hung[--dw.nhung];
            drv_answer(job, FERRY_ECANCELLED, "cancelled", 9);
            return;
        }
    }
    for (size_t i = 0; i < dw.nlater; i++) {
        if (dw.later[i].job == job) {
            free(dw.later[i].rest);
            dw.later[i] = dw.later[--dw.nlater];
            drv_answer(job, FERRY_ECANCELLED, "cancelled", 9);
            return;
        }
    }
}

/* Answers the delayed jobs that are due; returns ms to the next one. */
static int
drv_fire(void)
{
    uint64_t now = drv_now_ms(), next = UINT64_MAX;

    for (size_t i = 0; i < dw.nlater;) {
        struct drv_later l = dw.later[i];
        if (l.due_ms <= now) {
            dw.later[i] = dw.later[--dw.nlater];
            drv_answer(l.job, FERRY_OK, l.rest, l.len);
            free(l.rest);
            continue;
        }
        if (l.due_ms < next) {
            next = l.due_ms;
        }
        i++;
    }
    if (next == UINT64_MAX) {
        return 100;
    }
    return next - now > 100 ? 100 : (int)(next - now);
}

static void
drv_failed(ferry_err err)
{
    json_t *o = json_object();
    const char *m = dw.w != NULL ? ferry_worker_errmsg(dw.w) : "";

    json_object_set_new(o, "event", json_string("failed"));
    json_object_set_new(o, "error", json_string(ferry_errname(err)));
    json_object_set_new(o, "code", json_integer(err));
    json_object_set_new(o, "message",
                        drv_jstr(slice_str(m[0] ? m : ferry_strerror(err))));
    drv_emit(o);
}

static int
drv_worker_main(int argc, char **argv)
{
    struct ferry_opts opts = {0};
    const char *addr = NULL, *service = NULL;
    struct sigaction sa;
    bool ready = false;
    uint64_t stop_end = 0;
    ferry_err err;
    json_t *o;
    int rc = 0;

    dw.name = "conformance-c-worker";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--addr") == 0) {
            addr = argv[i + 1];
        } else if (strcmp(argv[i], "--token") == 0) {
            opts.token = argv[i + 1];
        } else if (strcmp(argv[i], "--name") == 0) {
            dw.name = argv[i + 1];
        } else if (strcmp(argv[i], "--heartbeat-ms") == 0) {
            opts.heartbeat_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        }
    }
    opts.name = dw.name;
    if (ferry_worker_new(addr, &opts, &dw.w) != FERRY_OK) {
        drv_failed(FERRY_EINVALID_ARGUMENT);
        return 1;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--service") == 0) {
            service = argv[i + 1];
        } else if (strcmp(argv[i], "--credit") == 0 && service != NULL) {
            err = ferry_worker_register(
                dw.w, service, (uint32_t)strtoul(argv[i + 1], NULL, 10),
                drv_handler, NULL);
            if (err != FERRY_OK) {
                drv_failed(err);
                ferry_worker_free(dw.w);
                return 1;
            }
            service = NULL;
        }
    }
    ferry_worker_on_cancel(dw.w, drv_on_cancel, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = drv_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    for (;;) {
        int t = drv_fire();
        if (drv_stopping) {
            if (stop_end == 0) {
                stop_end = drv_now_ms() + 10000;
            }
            /* Held jobs answered (a hung one never is): flush and go. */
            if (dw.nlater == 0 || drv_now_ms() >= stop_end) {
                ferry_worker_poll(dw.w, 0);
                ferry_worker_poll(dw.w, 0);
                break;
            }
        }
        err = ferry_worker_poll(dw.w, t);
        if (err != FERRY_OK) {
            drv_failed(err);
            rc = 1;
            break;
        }
        if (ferry_worker_is_ready(dw.w) != ready) {
            ready = !ready;
            if (ready) {
                o = json_object();
                json_object_set_new(o, "event", json_string("ready"));
                drv_emit(o);
            }
        }
    }
    if (rc == 0) {
        o = json_object();
        json_object_set_new(o, "event", json_string("exit"));
        json_object_set_new(o, "handled", json_integer((json_int_t)dw.handled));
        drv_emit(o);
    }
    ferry_worker_free(dw.w);
    for (size_t i = 0; i < dw.nlater; i++) {
        free(dw.later[i].rest);
    }
    free(dw.later);
    free(dw.hung);
    return rc;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "caller") == 0) {
        return drv_caller_main();
    }
    if (argc >= 2 && strcmp(argv[1], "worker") == 0) {
        return drv_worker_main(argc, argv);
    }
    fprintf(stderr,
            "usage: %s caller | worker --addr A --service S "
            "--credit N [--token T] [--name NAME] "
            "[--heartbeat-ms MS]\n",
            argv[0]);
    return 2;
}
