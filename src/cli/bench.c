/* SPDX-License-Identifier: MIT */
/*
 * bench.c - the closed-loop load generator behind ferry bench (bench.h).
 *
 * One thread, one epoll set, C non-blocking sockets. Each loop turn reads
 * everything available on every ready socket, decodes every whole frame,
 * answers each reply with the next request into the connection's output
 * buffer, and at the end of the turn writes each dirty connection's output
 * with one send(). Time comes from CLOCK_MONOTONIC, read once per
 * connection per turn; a request's latency runs from the turn that queued
 * it to the turn that read its reply.
 *
 * Request ids encode their slot: id = gen * slots + slot + 1, so a reply
 * finds its slot by division and is checked against the id the slot sent.
 * Phases: handshake (HELLO on every socket), warm-up, measurement window,
 * then drain (no new requests; wait, bounded, for the ones outstanding).
 * Every request sent ends in exactly one of the end line's counts
 * (replied, errors, bad, outstanding), so a run can be reconciled with the
 * server's own counters.
 *
 * What each connection sends, and what a reply must be, is its workload's
 * (bench_impl.h): here the echo workload, every request answered by the
 * next; bench_queue.c has the producers and consumers of ferry.queue,
 * bench_pubsub.c the publishers and subscribers of ferry.topic.
 */
#include "cli/bench.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_impl.h"
#include "cli/bench_pubsub.h"
#include "cli/bench_queue.h"
#include "cli/cli.h"

#define BENCH_READ_CHUNK (64 * 1024)
#define BENCH_HANDSHAKE_MS 5000
#define BENCH_DRAIN_DEFAULT_MS 5000
#define BENCH_DRAIN_SLACK_MS 1000
#define BENCH_MAX_EVENTS 256
#define BENCH_NAME "ferry-bench"

/* The echo workload's state. */
struct bench_echo {
    uint8_t *scratch; /* owned: one payload */
};

static uint64_t
bench_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void bench_update_phase(struct bench *b);

void
bench_note_error(struct bench *b, const char *fmt, const char *a, const char *c)
{
    if (b->first_error[0] == '\0') {
        snprintf(b->first_error, sizeof(b->first_error), fmt, a, c);
    }
}

/*
 * The payload of request id: the id itself, then words of a sequence
 * seeded from it, so two requests never carry the same bytes and a reply
 * meant for another request never passes the check.
 */
static uint64_t
bench_seed(uint64_t id)
{
    uint64_t z = id + 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
bench_fill(uint8_t *dst, size_t len, uint64_t id)
{
    uint64_t w = id, seed = bench_seed(id);
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(dst + i, &w, 8);
        seed += 0x9e3779b97f4a7c15ull;
        w = seed;
    }
    if (i < len) {
        memcpy(dst + i, &w, len - i);
    }
}

static bool
bench_check(const uint8_t *p, size_t len, uint64_t id)
{
    uint64_t w = id, seed = bench_seed(id);
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        if (memcmp(p + i, &w, 8) != 0) {
            return false;
        }
        seed += 0x9e3779b97f4a7c15ull;
        w = seed;
    }
    return i == len || memcmp(p + i, &w, len - i) == 0;
}

static void
bench_mark_dirty(struct bench *b, struct bench_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        b->dirty[b->n_dirty++] = (uint32_t)(c - b->conns);
    }
}

/* Closes a failed connection; its outstanding requests count as lost. */
static void
bench_conn_fail(struct bench *b, struct bench_conn *c, const char *why)
{
    char idx[32];

    if (c->st == BCONN_CLOSED) {
        return;
    }
    snprintf(idx, sizeof(idx), "%u", (unsigned)(c - b->conns));
    bench_note_error(b, "connection %s: %s", idx, why);
    b->conn_failures++;
    b->lost += c->in_flight;
    c->in_flight = 0;
    if (c->st == BCONN_READY) {
        b->n_ready--;
    }
    c->st = BCONN_CLOSED;
    epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    buf_clear(&c->out);
}

struct bench_slot *
bench_slot_get(struct bench *b, struct bench_conn *c)
{
    struct bench_slot *slot;
    uint32_t s;

    if (c->st != BCONN_READY || c->n_free == 0) {
        return NULL;
    }
    s = c->free[--c->n_free];
    slot = &c->slots[s];
    slot->id = slot->gen * b->slots + s + 1;
    slot->gen++;
    return slot;
}

bool
bench_request(struct bench *b, struct bench_conn *c, struct bench_slot *slot,
              uint8_t kind, struct slice key, struct slice payload,
              uint32_t timeout_ms)
{
    uint8_t *dst = buf_prepare(
        &c->out, frame_request_size(b->service.len, key.len, payload.len));

    if (dst == NULL) {
        bench_conn_fail(b, c, "out of memory");
        return false;
    }
    slot->sent_ns = b->now;
    slot->kind = kind;
    slot->busy = true;
    c->in_flight++;
    buf_commit(&c->out,
               frame_write_request(dst, slot->id,
                                   b->cfg->idempotent ? FERRY_IDEMPOTENT : 0,
                                   timeout_ms, b->service, key, payload));
    b->sent++;
    bench_mark_dirty(b, c);
    return true;
}

/* Finds the busy slot of a reply's id, or NULL. */
static struct bench_slot *
bench_slot_of(struct bench *b, struct bench_conn *c, uint64_t id)
{
    struct bench_slot *slot;

    if (id == 0) {
        return NULL;
    }
    slot = &c->slots[(id - 1) % b->slots];
    return slot->busy && slot->id == id ? slot : NULL;
}

/* Frees the slot of an answered request; returns what it held, for the
 * workload's hooks. */
static struct bench_slot
bench_slot_put(struct bench *b, struct bench_conn *c, struct bench_slot *slot)
{
    struct bench_slot done = *slot;
    uint64_t lat = b->now > slot->sent_ns ? b->now - slot->sent_ns : 0;

    slot->busy = false;
    c->in_flight--;
    c->free[c->n_free++] = (uint32_t)(slot - c->slots);
    if (lat > b->max_lat_ns) {
        b->max_lat_ns = lat;
    }
    return done;
}

static void
bench_on_error(struct bench *b, struct bench_conn *c, const struct frame *f)
{
    struct frame_error e;
    struct bench_slot *slot, done;
    char msg[FRAME_MAX_ERRMSG + 1];
    unsigned code;

    if (frame_parse_error(f, &e) != FERRY_OK) {
        bench_conn_fail(b, c, "malformed ERROR frame");
        return;
    }
    code = e.code < FERRY__ERR_COUNT ? e.code : FERRY__ERR_COUNT;
    memcpy(msg, e.msg.p, e.msg.len);
    msg[e.msg.len] = '\0';
    bench_note_error(b, "%s: %s", ferry_errname((ferry_err)e.code), msg);
    if (f->id == 0) {
        b->errors[code]++;
        bench_conn_fail(b, c, "closed by the server with an error");
        return;
    }
    slot = bench_slot_of(b, c, f->id);
    if (slot == NULL) {
        b->wrong++;
        return;
    }
    b->errors[code]++;
    b->req_errors[code]++;
    done = bench_slot_put(b, c, slot);
    c->ops->error(b, c, &done);
}

static void
bench_on_hello_ok(struct bench *b, struct bench_conn *c, const struct frame *f)
{
    struct frame_hello_ok h;

    if (c->st != BCONN_HELLO || frame_parse_hello_ok(f, &h) != FERRY_OK ||
        h.version != FERRY_PROTOCOL_VERSION) {
        bench_conn_fail(b, c, "bad HELLO_OK");
        return;
    }
    if (b->req_max > h.max_frame) {
        bench_conn_fail(b, c, "requests exceed the server's max_frame");
        return;
    }
    c->st = BCONN_READY;
    b->n_ready++;
}

/* Whether a REPLY carries the bytes its request should get back: the
 * echo of the derived payload, the --expect-hex bytes, or anything when
 * a fixed payload has no expected reply. */
static bool
bench_echo_is_good(const struct bench *b, const struct frame *f)
{
    const struct bench_config *cfg = b->cfg;

    if (cfg->fixed == NULL) {
        return f->body.len == cfg->payload &&
               bench_check(f->body.p, f->body.len, f->id);
    }
    if (cfg->expect == NULL) {
        return true;
    }
    return f->body.len == cfg->expect_len &&
           (cfg->expect_len == 0 ||
            memcmp(f->body.p, cfg->expect, cfg->expect_len) == 0);
}

/* Handles one frame; false when the connection was closed. */
static bool
bench_on_frame(struct bench *b, struct bench_conn *c, const struct frame *f)
{
    struct bench_slot *slot, done;

    switch (f->type) {
    case FRAME_REPLY:
        slot = bench_slot_of(b, c, f->id);
        if (slot == NULL) {
            b->wrong++;
            break;
        }
        done = bench_slot_put(b, c, slot);
        if (c->ops->reply(b, c, &done, f)) {
            b->replies++;
        } else {
            b->wrong++;
            b->bad++;
        }
        break;
    case FRAME_ERROR:
        bench_on_error(b, c, f);
        break;
    case FRAME_HELLO_OK:
        bench_on_hello_ok(b, c, f);
        break;
    case FRAME_PING:
        break;
    default:
        bench_conn_fail(b, c, "unexpected frame from the server");
        break;
    }
    return c->st != BCONN_CLOSED;
}

/* Reads everything available, then handles every whole frame. */
static void
bench_on_readable(struct bench *b, struct bench_conn *c)
{
    struct frame f;
    size_t used;
    ssize_t n;
    ferry_err err;

    for (;;) {
        if (buf_reserve(&c->in, BENCH_READ_CHUNK) != FERRY_OK) {
            bench_conn_fail(b, c, "out of memory");
            return;
        }
        n = read(c->fd, buf_tail(&c->in), buf_room(&c->in));
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
            if ((size_t)n < BENCH_READ_CHUNK) {
                break;
            }
            continue;
        }
        if (n == 0) {
            bench_conn_fail(b, c, "closed by the server");
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        bench_conn_fail(b, c, strerror(errno));
        return;
    }
    b->now = bench_clock();
    bench_update_phase(b);
    for (;;) {
        err = frame_decode(buf_head(&c->in), buf_len(&c->in),
                           FRAME_DEFAULT_MAX_BODY, &f, &used);
        if (err != FERRY_OK) {
            bench_conn_fail(b, c, ferry_strerror(err));
            return;
        }
        if (used == 0) {
            break;
        }
        if (!bench_on_frame(b, c, &f)) {
            return;
        }
        buf_consume(&c->in, used);
    }
}

/* One send() per dirty connection; arms EPOLLOUT when the socket fills. */
static void
bench_flush(struct bench *b)
{
    struct epoll_event ev;
    struct bench_conn *c;
    uint32_t i;
    ssize_t n;

    for (i = 0; i < b->n_dirty; i++) {
        c = &b->conns[b->dirty[i]];
        c->dirty = false;
        if (c->st == BCONN_CLOSED || buf_len(&c->out) == 0) {
            continue;
        }
        n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            bench_conn_fail(b, c, strerror(errno));
            continue;
        }
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
        }
        if ((buf_len(&c->out) > 0) != c->want_out) {
            c->want_out = !c->want_out;
            ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
            ev.data.u32 = b->dirty[i];
            epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    b->n_dirty = 0;
}

/* Opens every socket and queues its HELLO. */
static int
bench_connect(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    struct slice name = slice_str(BENCH_NAME);
    struct slice token = slice_str(cfg->token != NULL ? cfg->token : "");
    struct epoll_event ev;
    struct bench_conn *c;
    const char *why;
    uint8_t *dst;
    uint32_t i;
    int one = 1;

    for (i = 0; i < cfg->connections; i++) {
        c = &b->conns[i];
        c->fd = socket(cfg->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            fprintf(stderr, "SYS: socket: %s\n", strerror(errno));
            return CLI_EXIT_FERRY;
        }
        if (connect(c->fd, (const struct sockaddr *)&cfg->addr.ss,
                    cfg->addr.len) != 0) {
            why = strerror(errno);
            fprintf(stderr, "CONNECTION: %c%s (%s)\n", tolower(why[0]), why + 1,
                    cfg->addr.text);
            close(c->fd);
            c->fd = -1;
            return CLI_EXIT_CONN;
        }
        if (!addr_is_unix(&cfg->addr)) {
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) {
            fprintf(stderr, "SYS: fcntl: %s\n", strerror(errno));
            return CLI_EXIT_FERRY;
        }
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fprintf(stderr, "SYS: epoll_ctl: %s\n", strerror(errno));
            return CLI_EXIT_FERRY;
        }
        dst = buf_prepare(&c->out, frame_hello_size(FERRY_PROTOCOL_VERSION,
                                                    name.len, token.len));
        if (dst == NULL) {
            fprintf(stderr, "NOMEM: out of memory\n");
            return CLI_EXIT_FERRY;
        }
        buf_commit(&c->out,
                   frame_write_hello(dst, FERRY_PROTOCOL_VERSION,
                                     FRAME_ROLE_CALLER, 0, 0, name, token));
        c->st = BCONN_HELLO;
        bench_mark_dirty(b, c);
    }
    return CLI_EXIT_OK;
}

/* Moves to the next phase when its time has come. */
static void
bench_update_phase(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    uint64_t drain_ms;

    if (b->phase == PHASE_WARMUP && b->now >= b->t_measure) {
        b->phase = PHASE_MEASURE;
    }
    if (b->phase == PHASE_MEASURE && b->now >= b->t_end) {
        drain_ms = cfg->timeout_ms ? cfg->timeout_ms : BENCH_DRAIN_DEFAULT_MS;
        if (b->drain_ms > drain_ms) {
            drain_ms = b->drain_ms;
        }
        b->phase = PHASE_DRAIN;
        b->t_deadline = b->now + (drain_ms + BENCH_DRAIN_SLACK_MS) * NS_PER_MS;
    }
}

void
bench_stop(struct bench *b)
{
    if (b->t_measure > b->now) {
        b->t_measure = b->now;
    }
    if (b->t_end > b->now) {
        b->t_end = b->now;
    }
    bench_update_phase(b);
}

/* Starts the load once every connection is past HELLO_OK. */
static void
bench_start(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    uint32_t i;

    b->t_start = b->now;
    b->t_measure = b->now + (uint64_t)cfg->warmup_s * NS_PER_S;
    b->t_end = b->t_measure + (uint64_t)cfg->seconds * NS_PER_S;
    b->phase = cfg->warmup_s > 0 ? PHASE_WARMUP : PHASE_MEASURE;
    for (i = 0; i < cfg->connections; i++) {
        b->conns[i].ops->start(b, &b->conns[i]);
    }
}

/* Requests in flight on all connections. */
static uint64_t
bench_in_flight(const struct bench *b)
{
    uint64_t n = 0;
    uint32_t i;

    for (i = 0; i < b->cfg->connections; i++) {
        n += b->conns[i].in_flight;
    }
    return n;
}

/* Milliseconds epoll may sleep before the next phase change. */
static int
bench_wait_ms(const struct bench *b)
{
    uint64_t until;

    switch (b->phase) {
    case PHASE_WARMUP:
        until = b->t_measure;
        break;
    case PHASE_MEASURE:
        until = b->t_end;
        break;
    default:
        until = b->t_deadline;
        break;
    }
    if (until <= b->now) {
        return 0;
    }
    until = (until - b->now + NS_PER_MS - 1) / NS_PER_MS;
    return until > 1000 ? 1000 : (int)until;
}

/*
 * The event loop, until the drain ends or the handshake fails. Returns
 * CLI_EXIT_OK when the load ran to its end (errors are counted in b).
 */
static int
bench_loop(struct bench *b)
{
    struct epoll_event events[BENCH_MAX_EVENTS];
    struct bench_conn *c;
    int i, n;

    b->now = bench_clock();
    b->t_deadline = b->now + BENCH_HANDSHAKE_MS * NS_PER_MS;
    while (b->phase != PHASE_DONE) {
        bench_flush(b);
        n = epoll_wait(b->ep, events, BENCH_MAX_EVENTS, bench_wait_ms(b));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "SYS: epoll_wait: %s\n", strerror(errno));
            return CLI_EXIT_FERRY;
        }
        for (i = 0; i < n; i++) {
            c = &b->conns[events[i].data.u32];
            if (c->st == BCONN_CLOSED) {
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                bench_on_readable(b, c);
            }
            if (c->st != BCONN_CLOSED && (events[i].events & EPOLLOUT)) {
                bench_mark_dirty(b, c);
            }
        }
        b->now = bench_clock();
        if (b->phase == PHASE_HANDSHAKE) {
            if (b->conn_failures > 0) {
                fprintf(stderr, "ferry bench: handshake failed: %s\n",
                        b->first_error);
                return CLI_EXIT_FERRY;
            }
            if (b->n_ready == b->cfg->connections) {
                bench_start(b);
            } else if (b->now >= b->t_deadline) {
                fprintf(stderr, "CONNECTION: no HELLO_OK within %d ms (%s)\n",
                        BENCH_HANDSHAKE_MS, b->cfg->addr.text);
                return CLI_EXIT_CONN;
            }
            continue;
        }
        bench_update_phase(b);
        if (b->wk->tick != NULL) {
            b->wk->tick(b);
        }
        if (b->phase == PHASE_DRAIN &&
            (bench_in_flight(b) == 0 || b->now >= b->t_deadline)) {
            b->phase = PHASE_DONE;
        }
    }
    return CLI_EXIT_OK;
}

uint64_t
bench_request_errors(const struct bench *b)
{
    uint64_t n = 0;
    unsigned i;

    for (i = 0; i <= FERRY__ERR_COUNT; i++) {
        n += b->req_errors[i];
    }
    return n;
}

/*
 * The accounting line (bench.h): every request sent is replied, errors,
 * bad or outstanding; then the request errors by name.
 */
void
bench_report_end(const struct bench *b, uint64_t outstanding)
{
    unsigned i;

    fprintf(stderr,
            "ferry bench: end sent=%llu replied=%llu errors=%llu bad=%llu "
            "outstanding=%llu stray=%llu max_latency_us=%llu",
            (unsigned long long)b->sent, (unsigned long long)b->replies,
            (unsigned long long)bench_request_errors(b),
            (unsigned long long)b->bad, (unsigned long long)outstanding,
            (unsigned long long)(b->wrong - b->bad),
            (unsigned long long)((b->max_lat_ns + 999) / 1000));
    for (i = 0; i <= FERRY__ERR_COUNT; i++) {
        if (b->req_errors[i] > 0) {
            fprintf(stderr, " %s=%llu",
                    i < FERRY__ERR_COUNT ? ferry_errname((ferry_err)i)
                                         : "UNKNOWN_CODE",
                    (unsigned long long)b->req_errors[i]);
        }
    }
    fputc('\n', stderr);
}

void
bench_report_errors(const struct bench *b)
{
    uint64_t missing = bench_in_flight(b) + b->lost;
    unsigned i;

    for (i = 0; i <= FERRY__ERR_COUNT; i++) {
        if (b->errors[i] > 0) {
            fprintf(stderr, "ferry bench: errors %s=%llu\n",
                    i < FERRY__ERR_COUNT ? ferry_errname((ferry_err)i)
                                         : "UNKNOWN_CODE",
                    (unsigned long long)b->errors[i]);
        }
    }
    fprintf(stderr,
            "ferry bench: wrong=%llu missing=%llu connection_failures=%llu\n",
            (unsigned long long)b->wrong, (unsigned long long)missing,
            (unsigned long long)b->conn_failures);
    if (b->first_error[0] != '\0') {
        fprintf(stderr, "ferry bench: first error: %s\n", b->first_error);
    }
}

/* ---- the echo workload ---- */

/* Queues the next echo request on c, its payload derived from its id
 * unless the payload is fixed. */
static void
bench_echo_send(struct bench *b, struct bench_conn *c)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_echo *e = b->wl;
    struct bench_slot *slot = bench_slot_get(b, c);
    struct slice payload = {cfg->fixed != NULL ? cfg->fixed : e->scratch,
                            cfg->payload};
    struct slice key = {cfg->key, cfg->key_len};

    if (slot == NULL) {
        return;
    }
    if (cfg->fixed == NULL) {
        bench_fill(e->scratch, cfg->payload, slot->id);
    }
    bench_request(b, c, slot, 0, key, payload, cfg->timeout_ms);
}

static void
bench_echo_start(struct bench *b, struct bench_conn *c)
{
    uint32_t s;

    for (s = 0; s < b->cfg->depth; s++) {
        bench_echo_send(b, c);
    }
}

/* Checks and records a reply, then sends the next request unless the
 * load is over. */
static bool
bench_echo_reply(struct bench *b, struct bench_conn *c,
                 const struct bench_slot *done, const struct frame *f)
{
    bool good = bench_echo_is_good(b, f);

    if (good && bench_is_measuring(b)) {
        hist_record(&b->hist, b->now - done->sent_ns);
        b->measured++;
        c->measured++;
    }
    if (bench_is_loading(b)) {
        bench_echo_send(b, c);
    }
    return good;
}

static void
bench_echo_error(struct bench *b, struct bench_conn *c,
                 const struct bench_slot *done)
{
    (void)done;
    if (bench_is_loading(b)) {
        bench_echo_send(b, c);
    }
}

static const struct bench_conn_ops bench_echo_ops = {
    .start = bench_echo_start,
    .reply = bench_echo_reply,
    .error = bench_echo_error,
};

static ferry_err
bench_echo_init(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_echo *e = calloc(1, sizeof(*e));
    uint32_t i;

    if (e == NULL) {
        return FERRY_ENOMEM;
    }
    b->wl = e;
    e->scratch = malloc(cfg->payload > 0 ? cfg->payload : 1);
    if (e->scratch == NULL) {
        return FERRY_ENOMEM;
    }
    b->slots = cfg->depth;
    b->req_max =
        frame_request_size(b->service.len, cfg->key_len, cfg->payload) -
        FRAME_HEADER_SIZE;
    for (i = 0; i < cfg->connections; i++) {
        b->conns[i].ops = &bench_echo_ops;
    }
    return FERRY_OK;
}

static void
bench_echo_release(struct bench *b)
{
    struct bench_echo *e = b->wl;

    if (e != NULL) {
        free(e->scratch);
        free(e);
    }
}

/* Prints the result line and the details; returns the exit code. */
static int
bench_echo_report(struct bench *b, uint64_t missing)
{
    const struct bench_config *cfg = b->cfg;
    uint64_t n_errors = 0, min = UINT64_MAX, max = 0, m;
    double rps = (double)b->measured / (double)cfg->seconds;
    bool failed;
    unsigned i;

    printf("rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n", rps,
           hist_percentile(&b->hist, 0.50) / 1000.0,
           hist_percentile(&b->hist, 0.99) / 1000.0,
           hist_percentile(&b->hist, 0.999) / 1000.0);
    fflush(stdout);

    fprintf(stderr,
            "ferry bench: %s service=%s connections=%u depth=%u "
            "payload=%u%s warmup=%us seconds=%u key_bytes=%u check=%s\n",
            cfg->addr.text, cfg->service, cfg->connections, cfg->depth,
            cfg->payload, cfg->fixed != NULL ? "(fixed)" : "", cfg->warmup_s,
            cfg->seconds, cfg->key_len,
            cfg->fixed == NULL    ? "echo"
            : cfg->expect != NULL ? "expect"
                                  : "none");
    for (i = 0; i < cfg->connections; i++) {
        m = b->conns[i].measured;
        min = m < min ? m : min;
        max = m > max ? m : max;
    }
    fprintf(stderr,
            "ferry bench: sent=%llu replies=%llu measured=%llu "
            "per connection min=%llu max=%llu\n",
            (unsigned long long)b->sent, (unsigned long long)b->replies,
            (unsigned long long)b->measured, (unsigned long long)min,
            (unsigned long long)max);
    fprintf(stderr,
            "ferry bench: latency us min=%.1f p50=%.1f p90=%.1f p99=%.1f "
            "p999=%.1f max=%.1f\n",
            b->hist.count ? (double)b->hist.min / 1000.0 : 0.0,
            hist_percentile(&b->hist, 0.50) / 1000.0,
            hist_percentile(&b->hist, 0.90) / 1000.0,
            hist_percentile(&b->hist, 0.99) / 1000.0,
            hist_percentile(&b->hist, 0.999) / 1000.0,
            (double)b->hist.max / 1000.0);
    bench_report_errors(b);
    for (i = 0; i <= FERRY__ERR_COUNT; i++) {
        n_errors += b->errors[i];
    }
    failed = n_errors > 0 || b->wrong > 0 || missing > 0 ||
             b->conn_failures > 0 || b->measured == 0;
    if (failed) {
        fprintf(stderr, "ferry bench: FAILED\n");
    }
    bench_report_end(b, missing);
    return failed ? CLI_EXIT_FERRY : CLI_EXIT_OK;
}

static const struct bench_workload bench_echo_workload = {
    .init = bench_echo_init,
    .report = bench_echo_report,
    .release = bench_echo_release,
};

int
bench_run(const struct bench_config *cfg)
{
    struct bench *b;
    uint32_t i, s;
    int rc = CLI_EXIT_FERRY;
    ferry_err err;

    signal(SIGPIPE, SIG_IGN);
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        fprintf(stderr, "NOMEM: out of memory\n");
        return CLI_EXIT_FERRY;
    }
    b->cfg = cfg;
    b->wk = cfg->queue != NULL     ? &bench_queue_workload
            : cfg->subject != NULL ? &bench_pubsub_workload
                                   : &bench_echo_workload;
    b->ep = -1;
    b->service = slice_str(cfg->service);
    b->conns = calloc(cfg->connections, sizeof(*b->conns));
    b->dirty = calloc(cfg->connections, sizeof(*b->dirty));
    if (b->conns == NULL || b->dirty == NULL ||
        hist_init(&b->hist, BENCH_HIST_SUB_BITS, 64) != FERRY_OK) {
        fprintf(stderr, "NOMEM: out of memory\n");
        goto out_free;
    }
    for (i = 0; i < cfg->connections; i++) {
        b->conns[i].fd = -1;
        b->conns[i].st = BCONN_CLOSED;
        buf_init(&b->conns[i].in);
        buf_init(&b->conns[i].out);
    }
    err = b->wk->init(b);
    if (err != FERRY_OK) {
        fprintf(stderr, "%s: %s\n", ferry_errname(err), ferry_strerror(err));
        goto out_free;
    }
    for (i = 0; i < cfg->connections; i++) {
        struct bench_conn *c = &b->conns[i];
        c->slots = calloc(b->slots, sizeof(*c->slots));
        c->free = calloc(b->slots, sizeof(*c->free));
        if (c->slots == NULL || c->free == NULL) {
            fprintf(stderr, "NOMEM: out of memory\n");
            goto out_free;
        }
        /* Popped from the end: slot 0 first. */
        for (s = 0; s < b->slots; s++) {
            c->free[s] = b->slots - 1 - s;
        }
        c->n_free = b->slots;
    }
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (b->ep < 0) {
        fprintf(stderr, "SYS: epoll_create1: %s\n", strerror(errno));
        goto out_free;
    }
    rc = bench_connect(b);
    if (rc == CLI_EXIT_OK) {
        rc = bench_loop(b);
    }
    if (rc == CLI_EXIT_OK) {
        rc = b->wk->report(b, bench_in_flight(b) + b->lost);
    }

out_free:
    if (b->conns != NULL) {
        for (i = 0; i < cfg->connections; i++) {
            if (b->conns[i].fd >= 0) {
                close(b->conns[i].fd);
            }
            buf_release(&b->conns[i].in);
            buf_release(&b->conns[i].out);
            free(b->conns[i].slots);
            free(b->conns[i].free);
        }
    }
    if (b->ep >= 0) {
        close(b->ep);
    }
    if (b->wk->release != NULL) {
        b->wk->release(b);
    }
    free(b->conns);
    free(b->dirty);
    hist_release(&b->hist);
    free(b);
    return rc;
}
