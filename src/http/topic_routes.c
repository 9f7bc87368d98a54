/* SPDX-License-Identifier: MIT */
/*
 * topic_routes.c - ferry.topic over HTTP (docs/http.md):
 *   POST /v1/topics/{subject}          publish the body: {"receivers":N}
 *   GET  /v1/topics/{pattern}/stream   Server-Sent Events: one subscription
 *                                      and its messages as they come
 * topic_path.c parses the request. A publish is one PUBLISH call of
 * ferry.topic through icall_submit() with the subject as the routing
 * key, like any caller's: the same stats, access rule (caller_token) and
 * refusals (a subject under "ferry." is INVALID_ARGUMENT, 400).
 *
 * A stream is a SUBSCRIBE, then one POLL in flight at a time (held by the
 * service up to TOPIC_ROUTES_WAIT_MS), each answer written as SSE events
 * (the format is in docs/http.md). The next POLL is made only once every
 * byte of the last answer was taken by h2o, so a client that reads slowly
 * leaves its messages in the subscription's buffer, bounded by
 * max_pending (its policy drops the oldest, told as a gap, or closes the
 * subscription, told as an error), and ferryd holds one POLL answer
 * (at most about 1 MiB, the service's cap) for it, never more.
 *
 * Writes follow the admin streams' design (admin.c, and its stall bug):
 * h2o allows one send in progress per request, and proceed does nothing
 * but queue the stream's job (http_server_job_queue()), which formats at
 * most one piece of TOPIC_ROUTES_PIECE bytes (or one event, if bigger,
 * sent in slices of that size) and hands it to h2o. So however many
 * streams a fan-out wakes, they share the server's turn budget. A client
 * that takes nothing of a piece for http_stall_timeout_ms loses its
 * connection (http_watch), as on /v1/stats/stream.
 *
 * When the client leaves, the POLL is withdrawn and the subscription
 * dropped (UNSUBSCRIBE) at once: HTTP/2 resets and failed writes reach
 * the generator's stop; an HTTP/1.1 client, from which h2o reads nothing
 * while answering, is seen by polling its socket (http_server_watch_peer())
 * even while the stream is idle. A stream's state lives in the request's
 * pool; its dispose callback is the last word, whatever ended it.
 */
#include "http/topic_routes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/icall.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "http/auth.h"
#include "http/respond.h"
#include "http/topic_path.h"
#include "topic/topic.h"

/* The wait of each POLL, below topic_idle_ms's default of 30 s. */
#define TOPIC_ROUTES_WAIT_MS 25000
/* What a POLL's deadline gives beyond its wait (the CLI's too). */
#define TOPIC_ROUTES_MARGIN_MS 5000
/* Bytes of SSE text formatted and handed to h2o at once, and about as
 * many of payload read, at most, in one job. */
#define TOPIC_ROUTES_PIECE (64 * 1024)
/* Payload bytes checked or formatted in one step. */
#define TOPIC_ROUTES_CHUNK (16 * 1024)
/* Streams open at once; each holds a subscription. */
#define TOPIC_ROUTES_MAX_STREAMS 4096
/* An idle stream's buffers are cut back to this. */
#define TOPIC_ROUTES_KEEP 4096
/* Room for the message of an error event. */
#define TOPIC_ROUTES_MSG_SIZE 256

/* The state the /v1/topics handler keeps; owned by it. */
struct topic_routes {
    struct loop *loop;        /* borrowed */
    struct http_server *http; /* borrowed */
    struct list streams;      /* struct topic_routes_stream, not yet ended */
    size_t n_streams;         /* entries of streams */
};

struct topic_routes_handler {
    h2o_handler_t super;     /* first: h2o hands this back */
    struct topic_routes *tr; /* owned */
};

/* One publish and its call; in the request's pool. */
struct topic_routes_pub {
    struct icall ic;     /* the PUBLISH */
    h2o_generator_t gen; /* started early for HTTP/2 */
    h2o_req_t *req;      /* borrowed: alive until answered */
    struct broker *b;    /* borrowed */
};

/* The UNSUBSCRIBE of a stream that ended: it may outlive the stream, so
 * it is its own; freed by its callback. */
struct topic_routes_unsub {
    struct icall ic;    /* the call */
    uint8_t payload[9]; /* op, sub_id */
};

/* The message event being formatted; its slices borrow st->reply. */
struct topic_routes_msg {
    struct topic_msg_entry e; /* the POLL entry */
    size_t size;              /* its bytes in reply */
    size_t checked;           /* payload bytes found UTF-8 so far */
    size_t done;              /* payload bytes formatted */
    bool text;                /* as text so far (else base64) */
    bool head;                /* its head is formatted */
    bool active;              /* in work */
};

/* One stream; in the request's pool (shared, with a dispose callback). */
struct topic_routes_stream {
    h2o_generator_t gen;         /* ours once the stream is on (HTTP/2:
                                    from the start) */
    struct topic_routes *tr;     /* borrowed */
    h2o_req_t *req;              /* borrowed: valid until disposed */
    struct broker *b;            /* borrowed */
    struct list node;            /* on tr->streams until closed */
    struct topic_path tp;        /* the request; name and group in the
                                    pool */
    struct icall sub;            /* the SUBSCRIBE */
    struct icall poll;           /* the POLL in flight, if any */
    uint64_t sub_id;             /* 0 until subscribed, and once dropped */
    uint32_t wait_ms;            /* of each POLL */
    uint32_t deadline_ms;        /* of each POLL */
    struct buf reply;            /* owned: POLL entries not yet formatted */
    uint32_t left;               /* entries in reply */
    struct topic_routes_msg msg; /* the entry being formatted */
    uint64_t gap;                /* messages dropped, to tell */
    ferry_err fail;              /* a POLL's error to tell, then end */
    bool gone;                   /* the subscription is gone (NOT_FOUND),
                                    to tell, then end */
    struct buf out;              /* owned: the SSE text being sent */
    size_t off;                  /* bytes of out handed to h2o */
    struct http_job job;         /* formats and sends the next piece */
    struct http_watch watch;     /* the stall bound */
    struct http_peer_watch peer; /* HTTP/1.1: the client's end */
    struct timer ka;             /* the keepalive comment when idle */
    bool started;                /* subscribed: 200 and the events */
    bool sending;                /* h2o_send in progress, no proceed yet */
    bool ka_due;                 /* a keepalive is to be sent */
    bool ending;                 /* end once what is formatted is sent */
    bool closed;                 /* the subscription was let go */
    bool finished;               /* h2o has our last word (or stopped) */
    char fail_msg[TOPIC_ROUTES_MSG_SIZE]; /* the error's message */
};

/* ---- publish ---- */

static void
topic_routes_pub_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    /* The answer is sent whole. */
}

/* The HTTP/2 stream went away before the answer: withdraw the call. */
static void
topic_routes_pub_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct topic_routes_pub *pc =
        container_of(gen, struct topic_routes_pub, gen);

    icall_cancel(pc->b, &pc->ic);
}

static void
topic_routes_pub_dispose(void *p)
{
    struct topic_routes_pub *pc = p;

    icall_cancel(pc->b, &pc->ic);
}

static void
topic_routes_published(struct icall *ic, ferry_err err, const void *data,
                       size_t len)
{
    struct topic_routes_pub *pc = container_of(ic, struct topic_routes_pub, ic);
    h2o_req_t *req = pc->req;
    struct topic_reply rep;
    char *body;
    int n;

    if (err != FERRY_OK) {
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    if (topic_codec_decode_reply(TOPIC_OP_PUBLISH, (struct slice){data, len},
                                 &rep) != FERRY_OK) {
        http_respond_error(req, FERRY_EPROTO, "ferry.topic: malformed reply");
        return;
    }
    body = h2o_mem_alloc_pool(&req->pool, 32);
    n = snprintf(body, 32, "{\"receivers\":%" PRIu32 "}", rep.receivers);
    http_respond_json(req, 200, body, (size_t)n);
}

static void
topic_routes_publish(struct topic_routes *tr, h2o_req_t *req,
                     const struct topic_path *tp)
{
    struct topic_routes_pub *pc;
    struct topic_req r;
    uint8_t *payload;
    size_t n;

    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_PUBLISH;
    r.message = (struct slice){(const uint8_t *)req->entity.base,
                               req->entity.base != NULL ? req->entity.len : 0};
    n = topic_codec_write_request(NULL, &r);
    payload = h2o_mem_alloc_pool(&req->pool, n);
    topic_codec_write_request(payload, &r);
    pc =
        h2o_mem_alloc_shared(&req->pool, sizeof(*pc), topic_routes_pub_dispose);
    memset(pc, 0, sizeof(*pc));
    pc->req = req;
    pc->b = tr->loop->broker;
    pc->ic.internals = auth_may_see_internals(req, tr->loop->cfg);
    if (req->version >= 0x200) {
        pc->gen.proceed = topic_routes_pub_proceed;
        pc->gen.stop = topic_routes_pub_stop;
        h2o_start_response(req, &pc->gen);
    }
    icall_submit(pc->b, &pc->ic, slice_str(TOPIC_SERVICE_NAME), tp->name,
                 (struct slice){payload, n}, 0, 0, topic_routes_published);
}

/* ---- the end of a subscription ---- */

static void
topic_routes_unsubscribed(struct icall *ic, ferry_err err, const void *data,
                          size_t len)
{
    free(container_of(ic, struct topic_routes_unsub, ic));
}

/* Drops subscription sub_id (its POLL withdrawn already); nothing when
 * the broker has stopped: ferry.topic then closes with every
 * subscription. Out of memory leaves it to expire (topic_idle_ms). */
static void
topic_routes_unsubscribe(struct broker *b, uint64_t sub_id)
{
    struct topic_routes_unsub *u;
    struct topic_req r;

    if (b == NULL || b->stopped) {
        return;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        log_warn("ferry.topic over http: out of memory, subscription %llu "
                 "left to expire",
                 (unsigned long long)sub_id);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_UNSUBSCRIBE;
    r.sub_id = sub_id;
    topic_codec_write_request(u->payload, &r);
    icall_submit(b, &u->ic, slice_str(TOPIC_SERVICE_NAME),
                 (struct slice){NULL, 0},
                 (struct slice){u->payload, sizeof(u->payload)}, 0, 0,
                 topic_routes_unsubscribed);
}

/* Lets the subscription go: the calls in flight withdrawn, UNSUBSCRIBE,
 * the watches and the keepalive off. What is being sent stays until h2o
 * is done with it (the dispose callback frees it). Idempotent. */
static void
topic_routes_stream_close(struct topic_routes_stream *st)
{
    if (st->closed) {
        return;
    }
    st->closed = true;
    list_remove(&st->node);
    st->tr->n_streams--;
    http_server_unwatch_peer(&st->peer);
    loop_timer_stop(st->tr->loop, &st->ka);
    icall_cancel(st->b, &st->sub);
    icall_cancel(st->b, &st->poll);
    if (st->sub_id != 0) {
        topic_routes_unsubscribe(st->b, st->sub_id);
        st->sub_id = 0;
    }
    buf_release(&st->reply);
    st->left = 0;
    st->msg.active = false;
}

/* h2o frees the request's pool: whatever ended the stream, nothing of it
 * is left. */
static void
topic_routes_stream_dispose(void *p)
{
    struct topic_routes_stream *st = p;

    topic_routes_stream_close(st);
    http_server_job_cancel(&st->job);
    http_server_unwatch(&st->watch);
    buf_release(&st->out);
}

/* ---- sending ---- */

static void topic_routes_stream_ka_cb(struct timer *t);
static void topic_routes_stream_trim(struct topic_routes_stream *st);

/* The keepalive comes keepalive_ms after the last piece. Out of memory
 * for the timer: no keepalive this time, the next piece tries again. */
static void
topic_routes_stream_arm_ka(struct topic_routes_stream *st)
{
    struct loop *l = st->tr->loop;

    (void)loop_timer_start(l, &st->ka, loop_now(l) + st->tp.keepalive_ms);
}

/* Hands h2o the next slice of out. Nothing of st is used after h2o_send,
 * which may call back at once. */
static void
topic_routes_stream_send(struct topic_routes_stream *st)
{
    size_t n = buf_len(&st->out) - st->off;
    h2o_iovec_t v;

    if (n > TOPIC_ROUTES_PIECE) {
        n = TOPIC_ROUTES_PIECE;
    }
    v = h2o_iovec_init(buf_head(&st->out) + st->off, n);
    st->off += n;
    st->sending = true;
    st->ka_due = false;
    http_watch_sent(st->tr->http, &st->watch);
    if (!st->closed) {
        topic_routes_stream_arm_ka(st);
    }
    h2o_send(st->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* The last chunk: h2o calls neither proceed nor stop after it. */
static void
topic_routes_stream_finish(struct topic_routes_stream *st)
{
    topic_routes_stream_close(st);
    st->finished = true;
    http_server_unwatch(&st->watch);
    h2o_send(st->req, NULL, 0, H2O_SEND_STATE_FINAL);
}

#define TOPIC_ROUTES_ONES UINT64_C(0x0101010101010101)
#define TOPIC_ROUTES_HIGH UINT64_C(0x8080808080808080)

/* Whether none of the eight bytes at p needs a JSON escape (below 0x20,
 * '"' or '\\'): the classic tests for a byte below n and a zero byte,
 * exact for "any". */
static inline bool
topic_routes_is_plain(const uint8_t *p)
{
    uint64_t w, q, b;

    memcpy(&w, p, 8);
    q = w ^ (TOPIC_ROUTES_ONES * '"');
    b = w ^ (TOPIC_ROUTES_ONES * '\\');
    return ((((w - TOPIC_ROUTES_ONES * 0x20) & ~w) |
             ((q - TOPIC_ROUTES_ONES) & ~q) | ((b - TOPIC_ROUTES_ONES) & ~b)) &
            TOPIC_ROUTES_HIGH) == 0;
}

/* Escapes the UTF-8 text s for a JSON string, without the quotes, into
 * dst (room for 6 * s.len); returns the bytes written. */
static size_t
topic_routes_escape(char *dst, struct slice s)
{
    static const char hex[] = "0123456789abcdef";
    char *d = dst;

    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.p[i];
        size_t run = i;

        /* A run of bytes that need no escape goes in one copy; it is
         * looked for eight bytes at a time. */
        while (run + 8 <= s.len && topic_routes_is_plain(s.p + run)) {
            run += 8;
        }
        while (run < s.len && s.p[run] >= 0x20 && s.p[run] != '"' &&
               s.p[run] != '\\') {
            run++;
        }
        if (run > i) {
            memcpy(d, s.p + i, run - i);
            d += run - i;
            i = run - 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = (char)c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else if (c == '\r') {
            *d++ = '\\';
            *d++ = 'r';
        } else if (c == '\t') {
            *d++ = '\\';
            *d++ = 't';
        } else {
            memcpy(d, "\\u00", 4);
            d[4] = hex[c >> 4];
            d[5] = hex[c & 15];
            d += 6;
        }
    }
    return (size_t)(d - dst);
}

/* The end of the step of payload p from off: at most
 * TOPIC_ROUTES_CHUNK bytes, cut before a UTF-8 continuation byte (as
 * far as three back) so that text is never split inside a character. */
static size_t
topic_routes_cut(struct slice p, size_t off)
{
    size_t end = off + TOPIC_ROUTES_CHUNK;

    if (end >= p.len) {
        return p.len;
    }
    for (int i = 0; i < 3 && (p.p[end] & 0xc0) == 0x80; i++) {
        end--;
    }
    return end;
}

/*
 * One step of the message event in work (st->msg), reading at most
 * TOPIC_ROUTES_CHUNK bytes of its payload, so that a big payload takes
 * as many jobs as it needs (and out holds a piece of it, not all):
 *   id: SEQ / event: message / data: {"subject","seq","payload"}
 * "payload" when the payload is UTF-8 (checked a chunk a step first),
 * else (or with encoding=base64) "payload_base64". *work counts the
 * payload bytes the step read.
 */
static ferry_err
topic_routes_stream_msg_step(struct topic_routes_stream *st, size_t *work)
{
    struct topic_routes_msg *m = &st->msg;
    struct slice pl = m->e.payload;
    size_t end, n;
    char *p;

    if (m->text && m->checked < pl.len) {
        end = topic_routes_cut(pl, m->checked);
        *work += end - m->checked;
        if (!http_is_utf8(pl.p + m->checked, end - m->checked)) {
            m->text = false;
        } else {
            m->checked = end;
        }
        return FERRY_OK;
    }
    if (!m->head) {
        p = (char *)buf_prepare(
            &st->out, 96 + 2 * 20 + HTTP_JSON_ESCAPED_MAX(m->e.subject.len));
        if (p == NULL) {
            return FERRY_ENOMEM;
        }
        n = (size_t)sprintf(p,
                            "id: %" PRIu64 "\nevent: message\ndata: "
                            "{\"subject\":",
                            m->e.seq);
        n += http_json_escape(p + n, m->e.subject.p, m->e.subject.len);
        n += (size_t)sprintf(p + n, ",\"seq\":%" PRIu64 ",\"%s\":\"", m->e.seq,
                             m->text ? "payload" : "payload_base64");
        buf_commit(&st->out, n);
        m->head = true;
        return FERRY_OK;
    }
    if (m->done < pl.len) {
        struct slice c;

        /* Base64 in steps of a multiple of 3 bytes joins up seamlessly. */
        end = m->text ? topic_routes_cut(pl, m->done)
                      : (pl.len - m->done > TOPIC_ROUTES_CHUNK / 3 * 3
                             ? m->done + TOPIC_ROUTES_CHUNK / 3 * 3
                             : pl.len);
        c = (struct slice){pl.p + m->done, end - m->done};
        p = (char *)buf_prepare(
            &st->out, m->text ? 6 * c.len : h2o_base64_encode_capacity(c.len));
        if (p == NULL) {
            return FERRY_ENOMEM;
        }
        n = m->text ? topic_routes_escape(p, c)
                    : h2o_base64_encode(p, c.p, c.len, 0);
        buf_commit(&st->out, n);
        m->done = end;
        *work += c.len;
        return FERRY_OK;
    }
    if (buf_append(&st->out, "\"}\n\n", 4) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    buf_consume(&st->reply, m->size);
    st->left--;
    m->active = false;
    return FERRY_OK;
}

/* Starts the next message of the last POLL answer; false when none. */
static bool
topic_routes_stream_msg_next(struct topic_routes_stream *st)
{
    struct topic_routes_msg *m = &st->msg;
    struct slice rest = {buf_head(&st->reply), buf_len(&st->reply)};

    /* The entries were checked by topic_codec_decode_reply(). */
    if (st->left == 0 || !topic_codec_next_msg(&rest, &m->e)) {
        st->left = 0;
        return false;
    }
    m->size = buf_len(&st->reply) - rest.len;
    m->checked = 0;
    m->done = 0;
    m->text = !st->tp.base64;
    m->head = false;
    m->active = true;
    return true;
}

/* The error event that ends a stream:
 *   event: error / data: {"error","code","message"} */
static ferry_err
topic_routes_stream_add_error(struct topic_routes_stream *st)
{
    const char *name = st->gone ? "NOT_FOUND" : ferry_errname(st->fail);
    int code = st->gone ? 0 : (int)st->fail;
    size_t mlen = strlen(st->fail_msg);
    size_t cap = 96 + strlen(name) + HTTP_JSON_ESCAPED_MAX(mlen);
    char *p = (char *)buf_prepare(&st->out, cap);
    size_t n;

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    n = (size_t)sprintf(p,
                        "event: error\ndata: {\"error\":\"%s\",\"code\":%d,"
                        "\"message\":",
                        name, code);
    n += http_json_escape(p + n, st->fail_msg, mlen);
    memcpy(p + n, "}\n\n", 3);
    buf_commit(&st->out, n + 3);
    return FERRY_OK;
}

/* The next piece into out (empty): the gap, then messages until a piece
 * is full; when nothing else, the error that ends the stream or a
 * keepalive. */
static ferry_err
topic_routes_stream_format(struct topic_routes_stream *st)
{
    size_t work = 0;
    ferry_err err;

    if (st->gap > 0) {
        char ev[64];
        int n = snprintf(ev, sizeof(ev),
                         "event: gap\ndata: {\"dropped\":%" PRIu64 "}\n\n",
                         st->gap);
        if (buf_append(&st->out, ev, (size_t)n) != FERRY_OK) {
            return FERRY_ENOMEM;
        }
        st->gap = 0;
    }
    while (work < TOPIC_ROUTES_PIECE &&
           buf_len(&st->out) < TOPIC_ROUTES_PIECE) {
        if (!st->msg.active && !topic_routes_stream_msg_next(st)) {
            break;
        }
        err = topic_routes_stream_msg_step(st, &work);
        if (err != FERRY_OK) {
            return err;
        }
    }
    if (st->left == 0) {
        buf_clear(&st->reply);
    }
    if (buf_len(&st->out) == 0 && (st->gone || st->fail != FERRY_OK)) {
        err = topic_routes_stream_add_error(st);
        if (err != FERRY_OK) {
            return err;
        }
        st->ending = true;
    }
    if (buf_len(&st->out) == 0 && st->ka_due) {
        static const char ka[] = ": keepalive\n\n";
        if (buf_append(&st->out, ka, sizeof(ka) - 1) != FERRY_OK) {
            return FERRY_ENOMEM;
        }
    }
    return FERRY_OK;
}

static void topic_routes_stream_poll(struct topic_routes_stream *st);
static void topic_routes_stream_queue(struct topic_routes_stream *st);

/*
 * The stream's job, run within the server's turn budget: the next slice
 * of what is formatted, else the next piece formatted and its first slice
 * sent, else (all of the last POLL answer sent) the next POLL, or the
 * last chunk when the stream ends. One h2o_send at most.
 */
static void
topic_routes_stream_job(struct http_job *j)
{
    struct topic_routes_stream *st =
        container_of(j, struct topic_routes_stream, job);

    if (st->sending || st->finished) {
        return;
    }
    if (st->off < buf_len(&st->out)) {
        topic_routes_stream_send(st);
        return;
    }
    buf_clear(&st->out);
    st->off = 0;
    /* Once closed, only what is to be told is left: a gap, the error. */
    if (!st->ending && topic_routes_stream_format(st) != FERRY_OK) {
        log_warn("ferry.topic over http: out of memory, stream of "
                 "subscription %llu ended",
                 (unsigned long long)st->sub_id);
        buf_clear(&st->out);
        st->ending = true;
    }
    if (buf_len(&st->out) > 0) {
        topic_routes_stream_send(st);
        return;
    }
    if (st->left > 0) {
        /* A big payload was checked, nothing written yet: on with it at
         * the next turn of jobs. */
        topic_routes_stream_queue(st);
        return;
    }
    if (st->ending || st->closed) {
        topic_routes_stream_finish(st);
        return;
    }
    topic_routes_stream_poll(st);
}

static void
topic_routes_stream_queue(struct topic_routes_stream *st)
{
    http_server_job_queue(st->tr->http, &st->job);
}

/* h2o took the last slice. Nothing sent from here: the job does it. */
static void
topic_routes_stream_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct topic_routes_stream *st =
        container_of(gen, struct topic_routes_stream, gen);

    st->sending = false;
    http_watch_taken(&st->watch);
    topic_routes_stream_queue(st);
}

/* The client went away (HTTP/2 reset, a failed write, the connection
 * closed): the request is disposed right after. */
static void
topic_routes_stream_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct topic_routes_stream *st =
        container_of(gen, struct topic_routes_stream, gen);

    st->finished = true;
    st->sending = false;
    topic_routes_stream_close(st);
}

static void
topic_routes_stream_ka_cb(struct timer *t)
{
    struct topic_routes_stream *st =
        container_of(t, struct topic_routes_stream, ka);

    if (st->closed || st->finished) {
        return;
    }
    if (st->sending) {
        /* The client is still taking a piece: that is traffic enough. */
        topic_routes_stream_arm_ka(st);
        return;
    }
    st->ka_due = true;
    topic_routes_stream_trim(st);
    topic_routes_stream_queue(st);
}

/* ---- POLL ---- */

/*
 * Gives back what the buffers grew to, once the stream is idle (an empty
 * POLL answer, a keepalive due) and nothing of them is in h2o's hands.
 * Not after each answer: a stream that messages keep busy reuses its
 * buffers, so that an answer of many a stream woken by one publish is a
 * copy, not a fresh mapping and its page faults, in the loop turn that
 * answers them all.
 */
static void
topic_routes_stream_trim(struct topic_routes_stream *st)
{
    if (!st->sending && buf_len(&st->out) == 0) {
        buf_shrink(&st->out, TOPIC_ROUTES_KEEP);
    }
    if (buf_len(&st->reply) == 0) {
        buf_shrink(&st->reply, TOPIC_ROUTES_KEEP);
    }
}

static void
topic_routes_stream_set_fail(struct topic_routes_stream *st, ferry_err err,
                             const void *msg, size_t len)
{
    if (len >= sizeof(st->fail_msg)) {
        len = sizeof(st->fail_msg) - 1;
    }
    if (len == 0) {
        msg = ferry_strerror(err);
        len = strlen(msg);
    }
    memcpy(st->fail_msg, msg, len);
    st->fail_msg[len] = '\0';
    st->fail = err;
}

static void
topic_routes_stream_polled(struct icall *ic, ferry_err err, const void *data,
                           size_t len)
{
    struct topic_routes_stream *st =
        container_of(ic, struct topic_routes_stream, poll);
    struct topic_reply rep;

    if (err != FERRY_OK) {
        /* SLOW_CONSUMER: closed by policy close, and gone with it;
         * SHUTTING_DOWN ... */
        topic_routes_stream_set_fail(st, err, data, len);
        if (err == FERRY_ESLOW_CONSUMER) {
            st->sub_id = 0;
        }
    } else if (topic_codec_decode_reply(TOPIC_OP_POLL,
                                        (struct slice){data, len},
                                        &rep) != FERRY_OK) {
        topic_routes_stream_set_fail(st, FERRY_EPROTO, NULL, 0);
    } else if (rep.status == TOPIC_ST_NOT_FOUND) {
        static const char gone[] =
            "the subscription is gone: it expired (not polled for "
            "topic_idle_ms: its client took too long) or was unsubscribed";
        st->gone = true;
        memcpy(st->fail_msg, gone, sizeof(gone));
        st->sub_id = 0;
    } else {
        st->gap += rep.dropped;
        if (rep.status == TOPIC_ST_EMPTY) {
            topic_routes_stream_trim(st);
        }
        if (rep.status == TOPIC_ST_OK) {
            if (buf_append(&st->reply, rep.messages.p, rep.messages.len) !=
                FERRY_OK) {
                /* The messages were handed out: the client is told. */
                topic_routes_stream_set_fail(
                    st, FERRY_ENOMEM, "out of memory: messages lost", 28);
            } else {
                st->left = rep.n;
            }
        }
    }
    topic_routes_stream_queue(st);
}

/* The next POLL, unless one is in flight. */
static void
topic_routes_stream_poll(struct topic_routes_stream *st)
{
    uint8_t payload[17];
    struct topic_req r;

    if (st->poll.id != 0 || st->sub_id == 0 || st->closed) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_POLL;
    r.sub_id = st->sub_id;
    r.wait_ms = st->wait_ms;
    topic_codec_write_request(payload, &r);
    icall_submit(st->b, &st->poll, slice_str(TOPIC_SERVICE_NAME),
                 (struct slice){NULL, 0},
                 (struct slice){payload, sizeof(payload)}, st->deadline_ms, 0,
                 topic_routes_stream_polled);
}

/* ---- SUBSCRIBE ---- */

static void
topic_routes_stream_subscribed(struct icall *ic, ferry_err err,
                               const void *data, size_t len)
{
    static const char hello[] = ": subscribed\n\n";
    struct topic_routes_stream *st =
        container_of(ic, struct topic_routes_stream, sub);
    h2o_req_t *req = st->req;
    struct topic_reply rep;

    if (err == FERRY_OK &&
        topic_codec_decode_reply(TOPIC_OP_SUBSCRIBE, (struct slice){data, len},
                                 &rep) != FERRY_OK) {
        err = FERRY_EPROTO;
        data = "ferry.topic: malformed reply";
        len = strlen(data);
    }
    if (err != FERRY_OK) {
        topic_routes_stream_close(st);
        st->finished = true;
        http_respond_error(req, err, h2o_strdup(&req->pool, data, len).base);
        return;
    }
    st->sub_id = rep.sub_id;
    st->started = true;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    /* Proxies that buffer answers (nginx) pass this one on as it comes. */
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("x-accel-buffering"), 0, NULL,
                          H2O_STRLIT("no"));
    if (req->version < 0x200) {
        /* HTTP/1.1 starts here, once the status is known (h2o picks its
         * chunked encoding when the response starts). */
        st->gen.proceed = topic_routes_stream_proceed;
        st->gen.stop = topic_routes_stream_stop;
        h2o_start_response(req, &st->gen);
    }
    http_server_watch(st->tr->http, &st->watch, req);
    if (buf_append(&st->out, hello, sizeof(hello) - 1) != FERRY_OK) {
        st->ending = true;
    }
    topic_routes_stream_queue(st);
}

/* An HTTP/1.1 client left: its subscription goes at once, and the
 * stream ends (after the piece h2o has, if any) so that h2o closes. */
static void
topic_routes_stream_peer_gone(struct http_peer_watch *w)
{
    struct topic_routes_stream *st =
        container_of(w, struct topic_routes_stream, peer);

    if (!st->started) {
        topic_routes_stream_close(st);
        st->finished = true;
        http_respond_error(st->req, FERRY_ECANCELLED,
                           "the client went away before it was subscribed");
        return;
    }
    topic_routes_stream_close(st);
    topic_routes_stream_queue(st);
}

static void
topic_routes_stream_start(struct topic_routes *tr, h2o_req_t *req,
                          const struct topic_path *tp)
{
    const struct config *cfg = tr->loop->cfg;
    struct broker *b = tr->loop->broker;
    struct topic_routes_stream *st;
    struct topic_req r;
    uint8_t payload[1 + 1 + TOPIC_GROUP_MAX + 4 + 1];
    uint32_t maxd = cfg->max_deadline_ms, margin;
    size_t n;

    if (b == NULL || b->shutting_down) {
        http_respond_error(req, FERRY_ESHUTTING_DOWN, NULL);
        return;
    }
    if (tr->n_streams >= TOPIC_ROUTES_MAX_STREAMS) {
        http_respond_error(req, FERRY_EOVERLOADED,
                           "too many topic streams open (4096)");
        return;
    }
    st = h2o_mem_alloc_shared(&req->pool, sizeof(*st),
                              topic_routes_stream_dispose);
    memset(st, 0, sizeof(*st));
    st->tr = tr;
    st->req = req;
    st->b = b;
    st->tp = *tp;
    st->fail = FERRY_OK;
    buf_init(&st->reply);
    buf_init(&st->out);
    list_init(&st->watch.node);
    timer_init(&st->ka, topic_routes_stream_ka_cb);
    st->job.run = topic_routes_stream_job;
    st->sub.internals = auth_may_see_internals(req, cfg);
    st->poll.internals = st->sub.internals;
    /* The POLL's deadline must outlast its wait, within max_deadline_ms. */
    margin =
        maxd / 2 < TOPIC_ROUTES_MARGIN_MS ? maxd / 2 : TOPIC_ROUTES_MARGIN_MS;
    st->wait_ms = TOPIC_ROUTES_WAIT_MS < maxd - margin ? TOPIC_ROUTES_WAIT_MS
                                                       : maxd - margin;
    st->deadline_ms = st->wait_ms + margin;
    list_push_back(&tr->streams, &st->node);
    tr->n_streams++;
    if (req->version >= 0x200) {
        st->gen.proceed = topic_routes_stream_proceed;
        st->gen.stop = topic_routes_stream_stop;
        h2o_start_response(req, &st->gen);
    } else {
        http_server_watch_peer(tr->http, &st->peer, req,
                               topic_routes_stream_peer_gone);
    }
    memset(&r, 0, sizeof(r));
    r.op = TOPIC_OP_SUBSCRIBE;
    r.group = tp->group;
    r.max_pending = tp->max_pending;
    r.policy = tp->policy;
    n = topic_codec_write_request(payload, &r);
    icall_submit(b, &st->sub, slice_str(TOPIC_SERVICE_NAME), tp->name,
                 (struct slice){payload, n}, 0, 0,
                 topic_routes_stream_subscribed);
}

/* ---- the handler ---- */

static int
topic_routes_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct topic_routes *tr = ((struct topic_routes_handler *)self)->tr;
    const struct config *cfg = tr->loop->cfg;
    struct topic_path tp;
    const char *allow = NULL;
    char err[TOPIC_PATH_ERR_SIZE];
    uint8_t *scratch;
    int st;

    if (!auth_is_allowed(req, cfg->caller_token, cfg->admin_token)) {
        auth_refuse(req);
        return 0;
    }
    if (req->entity.len > http_server_max_body(tr->http)) {
        http_respond_error(req, FERRY_ETOO_BIG, "request body too large");
        return 0;
    }
    scratch = h2o_mem_alloc_pool(&req->pool, req->path.len + 1);
    st = topic_path_parse(
        (struct slice){(const uint8_t *)req->method.base, req->method.len},
        (struct slice){(const uint8_t *)req->path.base, req->path.len}, scratch,
        &tp, &allow, err);
    if (st == 405) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       allow, strlen(allow));
        http_respond_status(req, 405, "METHOD_NOT_ALLOWED", err);
        return 0;
    }
    if (st == 404) {
        http_respond_status(req, 404, "NOT_FOUND", err);
        return 0;
    }
    if (st != 0) {
        http_respond_error(req, FERRY_EINVALID_ARGUMENT, err);
        return 0;
    }
    if (tp.route == TOPIC_PATH_PUBLISH) {
        topic_routes_publish(tr, req, &tp);
    } else {
        topic_routes_stream_start(tr, req, &tp);
    }
    return 0;
}

/*
 * The HTTP side shuts down (after the broker has answered everything, so
 * every POLL was answered and its stream is ending already): each stream
 * still open ends with its last chunk, at once or after the piece h2o is
 * sending, so that h2o can close its connection.
 */
static void
topic_routes_shutdown(void *arg)
{
    struct topic_routes *tr = arg;

    while (!list_is_empty(&tr->streams)) {
        struct topic_routes_stream *st =
            container_of(tr->streams.next, struct topic_routes_stream, node);
        topic_routes_stream_close(st);
        if (st->started) {
            if (st->fail == FERRY_OK && !st->gone) {
                topic_routes_stream_set_fail(st, FERRY_ESHUTTING_DOWN, NULL, 0);
            }
            topic_routes_stream_queue(st);
        } else if (!st->finished) {
            /* Its SUBSCRIBE, withdrawn, will never answer. */
            st->finished = true;
            http_respond_error(st->req, FERRY_ESHUTTING_DOWN, NULL);
        }
    }
}

static void
topic_routes_dispose(h2o_handler_t *self)
{
    struct topic_routes_handler *h = (struct topic_routes_handler *)self;

    free(h->tr);
    h->tr = NULL;
}

void
topic_routes_register(struct http_server *s)
{
    struct topic_routes_handler *h;
    struct topic_routes *tr = calloc(1, sizeof(*tr));

    if (tr == NULL) {
        log_error("http: /v1/topics: out of memory");
        return;
    }
    tr->loop = http_server_loop(s);
    tr->http = s;
    list_init(&tr->streams);
    h = (struct topic_routes_handler *)http_server_add_path(
        s, TOPIC_PATH_PREFIX, topic_routes_on_req, sizeof(*h));
    h->tr = tr;
    h->super.dispose = topic_routes_dispose;
    http_server_on_shutdown(s, topic_routes_shutdown, tr);
}
