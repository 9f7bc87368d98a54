/* SPDX-License-Identifier: MIT */
/*
 * client.c - libferry's caller: names a service, sends a REQUEST to ferryd
 * and hands the REPLY or ERROR back to the program.
 *
 * Calls are pipelined on one connection: each gets the next id from a
 * counter, goes into the call table and into the output buffer, and the
 * whole buffer leaves in one send per loop turn. Replies are matched by id
 * in whatever order they come. Every call ends exactly once: with ferryd's
 * answer, with FERRY_EDEADLINE when nothing came a little after its deadline
 * (the request is then cancelled), or with FERRY_ECONNECTION when the link
 * drops. A synchronous call is an asynchronous one plus a loop that runs
 * until it is done.
 */
#include "lib/client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output queued past this is written at once rather than at the next turn,
 * so that queuing many calls does not pile up memory. */
#define CLIENT_FLUSH_AT (64 * 1024)

ferry_err
ferry_client_new(const char *addr, const struct ferry_opts *opts,
                 struct ferry_client **out)
{
    struct ferry_client *c = calloc(1, sizeof(*c));
    ferry_err err;

    if (c == NULL) {
        return FERRY_ENOMEM;
    }
    /* A caller announces a heartbeat only when asked to: a synchronous
     * caller is idle between calls, and one that announced an interval but
     * is not driven meanwhile would be taken for dead. */
    err = ferry__conn_init(&c->conn, addr, opts, FRAME_ROLE_CALLER,
                           opts != NULL && opts->heartbeat_ms > 0);
    if (err != FERRY_OK) {
        free(c);
        return err;
    }
    ferry__calltab_init(&c->calls);
    c->next_id = 1;
    *out = c;
    return FERRY_OK;
}

/* Completes every call in flight with err and msg. Callbacks may issue new
 * calls; those are not affected. */
static void
client_fail_all(struct ferry_client *c, ferry_err err, const char *msg)
{
    char text[FERRY__ERRMSG_MAX];
    struct ferry__call **calls;
    size_t n;

    /* The message may live in the connection, which a callback can
     * overwrite by reconnecting. */
    snprintf(text, sizeof(text), "%s", msg);
    calls = ferry__calltab_take_all(&c->calls, &n);
    for (size_t i = 0; i < n; i++) {
        ferry_reply_cb cb = calls[i]->cb;
        void *arg = calls[i]->arg;

        ferry__calltab_put(&c->calls, calls[i]);
        cb(arg, err, text, strlen(text));
    }
    free(calls);
}

/* The connection is gone (already closed or to be closed now): every call
 * in flight fails with FERRY_ECONNECTION. */
static void
client_lose(struct ferry_client *c)
{
    ferry__conn_close(&c->conn, NULL);
    client_fail_all(c, FERRY_ECONNECTION, c->conn.errmsg);
}

void
ferry_client_free(struct ferry_client *c)
{
    if (c == NULL) {
        return;
    }
    c->closing = true;
    if (ferry__conn_is_open(&c->conn)) {
        (void)ferry__conn_flush(&c->conn);
        ferry__conn_close(&c->conn, NULL);
    }
    client_fail_all(c, FERRY_ECANCELLED, "client closed");
    ferry__calltab_release(&c->calls);
    ferry__conn_release(&c->conn);
    free(c);
}

/* Runs the call's callback and recycles its record first, so that the
 * callback may issue calls that reuse it. */
static void
client_complete(struct ferry_client *c, struct ferry__call *call, ferry_err err,
                const void *data, size_t len)
{
    ferry_reply_cb cb = call->cb;
    void *arg = call->arg;

    ferry__calltab_remove(&c->calls, call);
    ferry__calltab_put(&c->calls, call);
    cb(arg, err, data, len);
}

static void
client_on_error(struct ferry_client *c, const struct frame *f)
{
    struct frame_error e;
    struct ferry__call *call;
    ferry_err code;

    if (frame_parse_error(f, &e) != FERRY_OK) {
        ferry__conn_abort(&c->conn, FERRY_EPROTO, "malformed ERROR frame");
        client_lose(c);
        return;
    }
    if (f->id == 0) {
        ferry__conn_close(&c->conn,
                          "ferryd at '%s' closed the connection: "
                          "%s: %.*s",
                          c->conn.addr.text, ferry_errname((ferry_err)e.code),
                          (int)e.msg.len, (const char *)e.msg.p);
        client_lose(c);
        return;
    }
    call = ferry__calltab_find(&c->calls, f->id);
    if (call == NULL) {
        return; /* a call that already ended locally */
    }
    code = e.code != 0 ? (ferry_err)e.code : FERRY_EPROTO;
    client_complete(c, call, code, e.msg.p, e.msg.len);
}

/* Handles one frame from ferryd. */
static void
client_on_frame(struct ferry_client *c, const struct frame *f)
{
    struct ferry__call *call;
    char why[64];

    switch (f->type) {
    case FRAME_REPLY:
        call = ferry__calltab_find(&c->calls, f->id);
        if (call != NULL) {
            client_complete(c, call, FERRY_OK, f->body.p, f->body.len);
        }
        return;
    case FRAME_ERROR:
        client_on_error(c, f);
        return;
    case FRAME_PING:
        return;
    default:
        snprintf(why, sizeof(why), "unexpected %s frame for a caller",
                 frame_type_name(f->type));
        ferry__conn_abort(&c->conn, FERRY_EPROTO, why);
        client_lose(c);
        return;
    }
}

static void
client_frame_cb(void *arg, const struct frame *f)
{
    client_on_frame(arg, f);
}

/* Handles every whole frame in the input buffer. */
static void
client_process(struct ferry_client *c)
{
    if (!ferry__conn_process(&c->conn, client_frame_cb, c)) {
        client_lose(c);
    }
}

/* Reads what is there and handles it; frames that arrived before the peer
 * closed are handled before the loss. */
static void
client_read(struct ferry_client *c)
{
    ferry_err err = ferry__conn_read(&c->conn);

    client_process(c);
    if (err != FERRY_OK) {
        client_lose(c);
    }
}

/* Fails the calls whose local deadline has passed and cancels them. */
static void
client_expire(struct ferry_client *c)
{
    uint64_t now = ferry__now_ms();
    struct ferry__call *call;
    char msg[ADDR_MAX_TEXT + 64];

    while ((call = ferry__calltab_first(&c->calls)) != NULL &&
           ferry__calltab_deadline(call) <= now) {
        if (ferry__conn_is_open(&c->conn)) {
            (void)ferry__conn_send_empty(&c->conn, FRAME_CANCEL, call->id);
        }
        snprintf(msg, sizeof(msg), "no reply from ferryd at '%s' in time",
                 c->conn.addr.text);
        client_complete(c, call, FERRY_EDEADLINE, msg, strlen(msg));
    }
}

/* Pings when we owe one and gives up a silent ferryd, failing what is in
 * flight with FERRY_ECONNECTION. */
static void
client_keepalive(struct ferry_client *c)
{
    if (!ferry__conn_keepalive(&c->conn)) {
        client_lose(c);
    }
}

/* One loop turn: write, wait up to timeout_ms (bounded by the next
 * deadline), read and handle replies, expire calls. */
static void
client_turn(struct ferry_client *c, int timeout_ms)
{
    struct ferry__call *first;
    bool readable = false, woken;
    uint64_t now;
    int t = timeout_ms;

    if (ferry__conn_flush(&c->conn) != FERRY_OK) {
        client_lose(c);
    }
    first = ferry__calltab_first(&c->calls);
    if (first != NULL) {
        now = ferry__now_ms();
        uint64_t at = ferry__calltab_deadline(first);
        uint64_t left = at > now ? at - now : 0;
        if (t < 0 || (uint64_t)t > left) {
            t = ferry__ms_to_timeout(left);
        }
    }
    if (!ferry__conn_is_open(&c->conn)) {
        /* Calls live only on an open connection; never leave one behind. */
        client_fail_all(c, FERRY_ECONNECTION, c->conn.errmsg);
    } else {
        t = ferry__conn_timeout(&c->conn, t);
        if (ferry__conn_wait(&c->conn, -1, t, &readable, &woken) != FERRY_OK) {
            ferry__conn_close(&c->conn, "poll: %s", strerror(c->conn.sys_err));
            client_lose(c);
        }
        if (readable) {
            client_read(c);
        }
    }
    client_expire(c);
    client_keepalive(c);
}

/*
 * Makes sure the connection is up before a call: connects when closed and
 * the backoff allows, and checks an idle connection for a peer that left
 * meanwhile (ferryd restarted), reconnecting at once in that case.
 */
static ferry_err
client_ensure_open(struct ferry_client *c)
{
    if (ferry__conn_is_open(&c->conn) && ferry__calltab_count(&c->calls) == 0) {
        client_read(c);
        if (!ferry__conn_is_open(&c->conn)) {
            c->conn.retry_at_ms = 0;
        }
    }
    if (ferry__conn_is_open(&c->conn)) {
        return FERRY_OK;
    }
    return ferry_client_connect(c);
}

ferry_err
ferry_client_connect(struct ferry_client *c)
{
    uint64_t now = ferry__now_ms();

    if (ferry__conn_is_open(&c->conn)) {
        return FERRY_OK;
    }
    if (c->closing) {
        snprintf(c->conn.errmsg, sizeof(c->conn.errmsg), "client closed");
        return FERRY_ECONNECTION;
    }
    if (!ferry__conn_may_connect(&c->conn, now)) {
        /* Keep the reason of the last failure, which says more than
         * "backing off". */
        return FERRY_ECONNECTION;
    }
    return ferry__conn_open(&c->conn, -1);
}

static ferry_err
client_check_request(const struct ferry_request *req)
{
    size_t n;

    if (req == NULL || req->service == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    n = strlen(req->service);
    if (n == 0 || n > FRAME_MAX_NAME || req->key_len > FRAME_MAX_KEY ||
        (req->key == NULL && req->key_len > 0) ||
        (req->payload == NULL && req->payload_len > 0) ||
        req->flags > UINT8_MAX) {
        return FERRY_EINVALID_ARGUMENT;
    }
    return FERRY_OK;
}

/*
 * The deadline ferryd applies to a request of deadline_ms: the one asked,
 * or ferryd's default for 0, cut to ferryd's cap, as HELLO_OK (version 2)
 * told them; a version-1 ferryd tells neither, so its documented default
 * is assumed.
 */
static uint32_t
client_deadline(const struct ferry__conn *c, uint32_t deadline_ms)
{
    uint32_t d = deadline_ms;

    if (d == 0) {
        d = c->peer_default_deadline_ms != 0 ? c->peer_default_deadline_ms
                                             : FERRY__DEFAULT_DEADLINE_MS;
    }
    if (c->peer_max_deadline_ms != 0 && d > c->peer_max_deadline_ms) {
        d = c->peer_max_deadline_ms;
    }
    return d;
}

ferry_err
ferry_call_start(struct ferry_client *c, const struct ferry_request *req,
                 ferry_reply_cb cb, void *arg, uint64_t *id)
{
    struct slice service, key, payload;
    struct ferry__call *call;
    uint32_t deadline;
    uint64_t deadline_at;
    ferry_err err;
    uint8_t *p;
    size_t size;

    if (cb == NULL || (err = client_check_request(req)) != FERRY_OK) {
        return FERRY_EINVALID_ARGUMENT;
    }
    err = client_ensure_open(c);
    if (err != FERRY_OK) {
        return err;
    }
    if (!frame_request_fits(strlen(req->service), req->key_len,
                            req->payload_len, c->conn.peer_max_frame)) {
        return FERRY_ETOO_BIG;
    }
    call = ferry__calltab_get(&c->calls);
    if (call == NULL) {
        return FERRY_ENOMEM;
    }
    deadline = client_deadline(&c->conn, req->deadline_ms);
    deadline_at = ferry__now_ms() + deadline + FERRY__CALL_SLACK_MS;
    call->id = c->next_id++;
    call->cb = cb;
    call->arg = arg;

    service = slice_str(req->service);
    key.p = req->key;
    key.len = req->key_len;
    payload.p = req->payload;
    payload.len = req->payload_len;
    size = frame_request_size(service.len, key.len, payload.len);
    p = buf_prepare(&c->conn.out, size);
    if (p == NULL) {
        ferry__calltab_put(&c->calls, call);
        return FERRY_ENOMEM;
    }
    if (ferry__calltab_insert(&c->calls, call, deadline_at) != FERRY_OK) {
        ferry__calltab_put(&c->calls, call);
        return FERRY_ENOMEM;
    }
    buf_commit(&c->conn.out,
               frame_write_request(p, call->id, (uint8_t)req->flags,
                                   req->deadline_ms, service, key, payload));
    if (id != NULL) {
        *id = call->id;
    }
    if (buf_len(&c->conn.out) >= CLIENT_FLUSH_AT) {
        /* A failed send fails again at the next turn, which then ends the
         * calls in flight: callbacks never run from here. */
        (void)ferry__conn_flush(&c->conn);
    }
    return FERRY_OK;
}

ferry_err
ferry_call_async(struct ferry_client *c, const struct ferry_request *req,
                 ferry_reply_cb cb, void *arg)
{
    return ferry_call_start(c, req, cb, arg, NULL);
}

ferry_err
ferry_call_cancel(struct ferry_client *c, uint64_t id)
{
    if (ferry__calltab_find(&c->calls, id) == NULL) {
        return FERRY_EINVALID_ARGUMENT;
    }
    /* Calls live only on an open connection, so this one is on it. The
     * call ends with ferryd's answer to the CANCEL (or the reply that was
     * already on its way), or locally at its deadline. */
    return ferry__conn_send_empty(&c->conn, FRAME_CANCEL, id);
}

/* Where a synchronous call waits for its own completion. */
struct client_sync {
    bool done;               /* the callback ran */
    struct ferry_reply *out; /* borrowed: the caller's reply */
};

static void
client_sync_cb(void *arg, ferry_err err, const void *data, size_t len)
{
    struct client_sync *s = arg;

    s->done = true;
    s->out->err = err;
    s->out->data = malloc(len + 1);
    if (s->out->data == NULL) {
        s->out->err = FERRY_ENOMEM;
        s->out->len = 0;
        return;
    }
    if (len > 0) {
        memcpy(s->out->data, data, len);
    }
    s->out->data[len] = '\0'; /* a convenience; len excludes it */
    s->out->len = len;
}

/*
 * Starts a synchronous call. When a client that was connected cannot reach
 * ferryd again, waits for the backoff and tries again until the call's
 * deadline, since a caller that waits anyway is better served by a reply
 * after ferryd's restart than by FERRY_ECONNECTION at once. A client that
 * never connected (no ferryd there, a wrong address) fails at once.
 */
static ferry_err
client_call_connecting(struct ferry_client *c, const struct ferry_request *req,
                       struct client_sync *s)
{
    /* The deadline as the last HELLO_OK said ferryd would apply it. */
    uint32_t d = client_deadline(&c->conn, req != NULL ? req->deadline_ms : 0);
    uint64_t end = ferry__now_ms() + d, now;
    ferry_err err;

    for (;;) {
        err = ferry_call_async(c, req, client_sync_cb, s);
        now = ferry__now_ms();
        if (err != FERRY_ECONNECTION || c->closing || now >= end ||
            c->conn.epoch == 0) {
            return err;
        }
        /* Other calls in flight fail with the connection, so the wait
         * holds nothing up. */
        uint64_t at = c->conn.retry_at_ms > now ? c->conn.retry_at_ms : now + 1;
        if (at > end) {
            at = end;
        }
        (void)poll(NULL, 0, ferry__ms_to_timeout(at - now));
    }
}

ferry_err
ferry_call(struct ferry_client *c, const struct ferry_request *req,
           struct ferry_reply *out)
{
    struct client_sync s = {false, out};
    const char *msg;
    ferry_err err;

    out->err = FERRY_OK;
    out->data = NULL;
    out->len = 0;
    err = client_call_connecting(c, req, &s);
    if (err != FERRY_OK) {
        msg = err == FERRY_ECONNECTION ? c->conn.errmsg : ferry_strerror(err);
        client_sync_cb(&s, err, msg, strlen(msg));
        if (out->err == FERRY_ENOMEM && err != FERRY_ENOMEM) {
            out->err = err; /* the failure matters more than its message */
        }
        return out->err;
    }
    /* The call is in the table with a deadline, and a lost connection
     * fails it, so this loop always ends. */
    while (!s.done) {
        client_turn(c, -1);
    }
    return out->err;
}

void
ferry_reply_release(struct ferry_reply *reply)
{
    if (reply == NULL) {
        return;
    }
    free(reply->data);
    reply->data = NULL;
    reply->len = 0;
}

ferry_err
ferry_client_run(struct ferry_client *c, int timeout_ms)
{
    uint64_t end = 0, now;
    int t = timeout_ms;

    if (timeout_ms >= 0) {
        end = ferry__now_ms() + (uint64_t)timeout_ms;
    }
    if (ferry__calltab_count(&c->calls) == 0) {
        /* Nothing to wait for, but a program watching the socket expects
         * progress: send what is queued, take in what came (a close) and
         * keep the heartbeat. */
        if (ferry__conn_flush(&c->conn) != FERRY_OK) {
            client_lose(c);
        } else if (ferry__conn_is_open(&c->conn)) {
            client_read(c);
            client_keepalive(c);
            if (ferry__conn_flush(&c->conn) != FERRY_OK) {
                client_lose(c);
            }
        }
        return FERRY_OK;
    }
    for (;;) {
        client_turn(c, t);
        if (ferry__calltab_count(&c->calls) == 0) {
            return FERRY_OK;
        }
        if (timeout_ms >= 0) {
            now = ferry__now_ms();
            if (now >= end) {
                return FERRY_EDEADLINE;
            }
            t = ferry__ms_to_timeout(end - now);
        }
    }
}

int
ferry_client_fd(const struct ferry_client *c)
{
    return c->conn.fd;
}

size_t
ferry_client_pending(const struct ferry_client *c)
{
    return ferry__calltab_count(&c->calls);
}

uint64_t
ferry_client_connects(const struct ferry_client *c)
{
    /* The connection's epoch is bumped by every HELLO_OK. */
    return c->conn.epoch;
}

const char *
ferry_client_errmsg(const struct ferry_client *c)
{
    return c->conn.errmsg;
}
