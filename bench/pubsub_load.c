/* SPDX-License-Identifier: MIT */
/*
 * pubsub_load.c - the peer's side of the fan-out benchmark: nats-server
 * (its text protocol: CONNECT, SUB, PUB, MSG, PING/PONG) under the
 * workload that ferry bench --pubsub puts on ferry.topic.
 * bench/pubsub_peers.sh starts the servers and runs this against NATS.
 *
 * N subscriber connections each SUB to the subject (and wait for the
 * PONG of a PING sent behind it, so the SUB is in place before any
 * publish); P publisher connections each keep at most D publishes
 * unconfirmed. NATS has no publish ack, so a publisher sends a PING after
 * every K = max(1, D / 4) PUBs and counts those K confirmed when its PONG
 * comes (the server answers a PING after it has processed, i.e. routed
 * to the subscribers' outbound buffers, every PUB before it); it sends
 * the next K once K more fit under D. That is D publishes in flight, as
 * ferry bench keeps D PUBLISHes in flight, refilled K at a time.
 * A message's payload opens with the publish's send time (CLOCK_MONOTONIC
 * ns, 8 bytes) and a sequence number (8 bytes), padded with 'x', so a
 * subscriber in this same process reads the publish-to-receipt latency
 * off the message.
 *
 * One thread, one epoll set, non-blocking sockets, each dirty connection
 * written with one send() per loop turn. Phases: warm-up (nothing
 * recorded), the window (messages arriving in it counted), then a drain
 * of at most PL_DRAIN_NS: no new publishes; once every publisher's PINGs
 * are answered, a PING on every subscriber, whose PONG comes behind every
 * message routed to it. NATS says nothing of what it drops (a slow
 * consumer's connection is closed), so "dropped" is what was confirmed
 * published times the subscribers, minus what they received, all phases.
 *
 *   bench_pubsub_load --addr HOST:PORT [--subject bench.pubsub]
 *       [--subscribers 100] [--publishers 1] [--depth 16] [--payload 64]
 *       [--seconds 5] [--warmup 1]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hist.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
#define PL_MAX_DEPTH 65536
#define PL_MAX_CONNS 5000
#define PL_MIN_PAYLOAD 16    /* the send time and the sequence number */
#define PL_MAX_PAYLOAD 65536 /* well under NATS's max_payload (1 MiB) */
#define PL_MAX_LINE 4096     /* longest protocol line accepted */
#define PL_READ_CHUNK (64 * 1024)
#define PL_DRAIN_NS (2 * NS_PER_S)
#define PL_SETUP_MS 3000 /* connect and the setup PING's PONG */
#define PL_MAX_EVENTS 256
#define PL_HIST_SUB_BITS 7
#define PL_CONNECT "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"

enum pl_phase {
    PHASE_WARMUP,  /* load on, nothing recorded */
    PHASE_MEASURE, /* load on, messages recorded */
    PHASE_DRAIN,   /* no new publishes; waiting for the PONGs */
    PHASE_DONE
};

/* A growable byte buffer: bytes [head, len) are live. */
struct pl_buf {
    char *p;     /* owned */
    size_t head; /* first live byte */
    size_t len;  /* end of the live bytes */
    size_t cap;  /* bytes of p */
};

/* One socket. Owned by struct pl. */
struct pl_conn {
    int fd;               /* -1 once closed */
    bool publisher;       /* else a subscriber */
    uint32_t index;       /* among its role, for messages */
    struct pl_buf in;     /* read, not yet parsed */
    struct pl_buf out;    /* queued, not yet sent */
    bool dirty;           /* on the dirty list */
    bool want_out;        /* EPOLLOUT armed */
    uint32_t unconfirmed; /* publisher: PUBs sent, their PONG not come */
    uint64_t *ping_sent;  /* publisher: owned ring of PING send times */
    uint32_t ping_head;   /* first PING outstanding in the ring */
    uint32_t pings;       /* PINGs outstanding */
    uint64_t last_seq;    /* subscriber: sequence last received, + 1 */
    bool drain_ping;      /* subscriber: the drain's PING is out */
};

struct pl_config {
    const char *addr;     /* HOST:PORT as given */
    char host[256];       /* its host */
    char port[16];        /* its port */
    const char *subject;  /* borrowed */
    unsigned subscribers; /* subscribing connections */
    unsigned publishers;  /* publishing connections */
    unsigned depth;       /* publishes unconfirmed per publisher */
    unsigned payload;     /* bytes of a message */
    unsigned seconds;     /* the window */
    unsigned warmup;      /* before it */
};

/* The whole run. */
struct pl {
    const struct pl_config *cfg; /* borrowed */
    struct pl_conn *conns;       /* owned: publishers, then subscribers */
    unsigned n_conns;            /* publishers + subscribers */
    uint32_t *dirty;             /* owned: indexes of dirty conns */
    unsigned n_dirty;            /* entries in dirty */
    int ep;                      /* epoll fd */
    enum pl_phase phase;         /* see enum */
    unsigned batch;              /* K: PUBs per PING */
    uint64_t now;                /* CLOCK_MONOTONIC ns, this turn */
    uint64_t t_start;            /* the load started */
    uint64_t t_measure;          /* the window opens */
    uint64_t t_end;              /* it closes */
    uint64_t t_deadline;         /* the drain ends at the latest */
    char *msg;                   /* owned: one PUB command with payload */
    size_t msg_len;              /* its bytes */
    size_t msg_head;             /* bytes before the payload */
    uint64_t seq;                /* publishes sent */
    struct hist pub_hist;        /* PING send to PONG, window, ns */
    struct hist e2e_hist;        /* publish send to receipt, window, ns */
    uint64_t published;          /* publishes confirmed in the window */
    uint64_t delivered;          /* messages received in the window */
    uint64_t published_all;      /* publishes confirmed, all phases */
    uint64_t delivered_all;      /* messages received, all phases */
    uint64_t disorder;           /* messages older than one before */
    uint64_t foreign;            /* messages this run did not publish */
    uint64_t errors;             /* -ERR lines, bad lines, lost conns */
    uint64_t conn_failures;      /* connections lost */
    bool error_shown;            /* the first error was printed */
    bool drain_pinged;           /* the drain's PINGs were sent */
};

static uint64_t
pl_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Counts an error; the first of the run is printed. */
static void
pl_error(struct pl *q, const struct pl_conn *c, const char *what,
         const char *line, size_t n)
{
    q->errors++;
    if (q->error_shown) {
        return;
    }
    q->error_shown = true;
    fprintf(stderr,
            "bench_pubsub_load: %s %u: %s%s%.*s%s"
            " (further errors only counted)\n",
            c->publisher ? "publisher" : "subscriber", c->index, what,
            line != NULL ? ": '" : "",
            line != NULL ? (int)(n > 120 ? 120 : n) : 0,
            line != NULL ? line : "", line != NULL ? "'" : "");
}

/* Room for n more bytes at the end of b (compacting, then growing). */
static void
pl_buf_reserve(struct pl_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 4096;

    if (b->head == b->len) {
        b->head = b->len = 0;
    }
    if (b->len + n <= b->cap) {
        return;
    }
    if (b->head > 0) {
        memmove(b->p, b->p + b->head, b->len - b->head);
        b->len -= b->head;
        b->head = 0;
    }
    while (b->len + n > cap) {
        cap *= 2;
    }
    if (cap != b->cap) {
        b->p = realloc(b->p, cap);
        if (b->p == NULL) {
            fprintf(stderr, "bench_pubsub_load: out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
}

static void
pl_buf_append(struct pl_buf *b, const void *p, size_t n)
{
    pl_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void
pl_mark_dirty(struct pl *q, struct pl_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        q->dirty[q->n_dirty++] = (uint32_t)(c - q->conns);
    }
}

static void
pl_out(struct pl *q, struct pl_conn *c, const void *p, size_t n)
{
    pl_buf_append(&c->out, p, n);
    pl_mark_dirty(q, c);
}

static bool
pl_loading(const struct pl *q)
{
    return q->phase == PHASE_WARMUP || q->phase == PHASE_MEASURE;
}

/* Sends K PUBs and their PING while K more fit under D. */
static void
pl_publish(struct pl *q, struct pl_conn *c)
{
    const struct pl_config *cfg = q->cfg;
    unsigned i;

    while (pl_loading(q) && c->fd >= 0 &&
           c->unconfirmed + q->batch <= cfg->depth) {
        for (i = 0; i < q->batch; i++) {
            memcpy(q->msg + q->msg_head, &q->now, 8);
            memcpy(q->msg + q->msg_head + 8, &q->seq, 8);
            pl_out(q, c, q->msg, q->msg_len);
            q->seq++;
        }
        c->unconfirmed += q->batch;
        c->ping_sent[(c->ping_head + c->pings) % (cfg->depth + 1)] = q->now;
        c->pings++;
        pl_out(q, c, "PING\r\n", 6);
    }
}

static void pl_close(struct pl *q, struct pl_conn *c, const char *why);

/* A PONG on c: a publisher's batch confirmed, or a subscriber drained. */
static void
pl_on_pong(struct pl *q, struct pl_conn *c)
{
    const struct pl_config *cfg = q->cfg;

    if (!c->publisher) {
        c->drain_ping = false;
        return;
    }
    if (c->pings == 0) {
        pl_error(q, c, "a PONG for no PING", NULL, 0);
        return;
    }
    if (q->phase == PHASE_MEASURE) {
        q->published += q->batch;
        hist_record(&q->pub_hist, q->now - c->ping_sent[c->ping_head]);
    }
    q->published_all += q->batch;
    c->ping_head = (c->ping_head + 1) % (cfg->depth + 1);
    c->pings--;
    c->unconfirmed -= q->batch;
    pl_publish(q, c);
}

/* One message received by subscriber c. */
static void
pl_on_msg(struct pl *q, struct pl_conn *c, const char *p, size_t n)
{
    uint64_t sent, seq;

    if (n != q->cfg->payload ||
        memcmp(p + 16, q->msg + q->msg_head + 16, n - 16) != 0) {
        q->foreign++;
        pl_error(q, c, "a message this run did not publish", NULL, 0);
        return;
    }
    memcpy(&sent, p, 8);
    memcpy(&seq, p + 8, 8);
    if (sent < q->t_start || sent > q->now || seq >= q->seq) {
        q->foreign++;
        pl_error(q, c, "a message this run did not publish", NULL, 0);
        return;
    }
    if (q->cfg->publishers == 1 && seq + 1 <= c->last_seq) {
        q->disorder++;
        pl_error(q, c, "a message out of order", NULL, 0);
    }
    c->last_seq = seq + 1;
    q->delivered_all++;
    if (q->phase == PHASE_MEASURE) {
        q->delivered++;
        hist_record(&q->e2e_hist, q->now - sent);
    }
}

/* The byte count of a MSG line: its last space-separated token. */
static bool
pl_msg_len(const char *line, size_t n, size_t *len)
{
    size_t i = n, v = 0;

    while (i > 0 && line[i - 1] != ' ') {
        i--;
    }
    if (i == n || n - i > 9) {
        return false;
    }
    for (; i < n; i++) {
        if (line[i] < '0' || line[i] > '9') {
            return false;
        }
        v = v * 10 + (size_t)(line[i] - '0');
    }
    *len = v;
    return true;
}

/* Parses every whole line (and MSG payload) read on c. */
static void
pl_parse(struct pl *q, struct pl_conn *c)
{
    struct pl_buf *b = &c->in;

    while (b->head < b->len && c->fd >= 0) {
        const char *p = b->p + b->head;
        size_t avail = b->len - b->head;
        const char *nl = memchr(p, '\n', avail);
        size_t line, len;

        if (nl == NULL) {
            if (avail > PL_MAX_LINE) {
                pl_close(q, c, "a line too long");
            }
            return;
        }
        line = (size_t)(nl - p) + 1;
        len = line >= 2 && p[line - 2] == '\r' ? line - 2 : line - 1;
        if (len >= 4 && memcmp(p, "MSG ", 4) == 0) {
            size_t bytes;
            if (!pl_msg_len(p, len, &bytes)) {
                pl_close(q, c, "a malformed MSG line");
                return;
            }
            if (avail < line + bytes + 2) {
                return;
            }
            pl_on_msg(q, c, p + line, bytes);
            b->head += line + bytes + 2;
            continue;
        }
        if (len == 4 && memcmp(p, "PING", 4) == 0) {
            pl_out(q, c, "PONG\r\n", 6);
        } else if (len == 4 && memcmp(p, "PONG", 4) == 0) {
            pl_on_pong(q, c);
        } else if (len >= 4 && memcmp(p, "-ERR", 4) == 0) {
            pl_error(q, c, "the server", p, len);
        } else if (!(len >= 5 && memcmp(p, "INFO ", 5) == 0) &&
                   !(len == 3 && memcmp(p, "+OK", 3) == 0)) {
            pl_error(q, c, "an unexpected line", p, len);
        }
        b->head += line;
    }
}

static void
pl_on_readable(struct pl *q, struct pl_conn *c)
{
    ssize_t n;

    for (;;) {
        pl_buf_reserve(&c->in, PL_READ_CHUNK);
        n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (n > 0) {
            c->in.len += (size_t)n;
            if ((size_t)n < PL_READ_CHUNK) {
                break;
            }
            continue;
        }
        if (n == 0) {
            pl_close(q, c, "closed by the server");
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            pl_close(q, c, strerror(errno));
            return;
        }
        break;
    }
    q->now = pl_clock();
    pl_parse(q, c);
}

static void
pl_flush(struct pl *q)
{
    struct epoll_event ev;
    unsigned i;
    ssize_t n;

    for (i = 0; i < q->n_dirty; i++) {
        struct pl_conn *c = &q->conns[q->dirty[i]];
        c->dirty = false;
        if (c->fd < 0 || c->out.len == c->out.head) {
            continue;
        }
        n = send(c->fd, c->out.p + c->out.head, c->out.len - c->out.head,
                 MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            pl_close(q, c, strerror(errno));
            continue;
        }
        if (n > 0) {
            c->out.head += (size_t)n;
        }
        if ((c->out.len > c->out.head) != c->want_out) {
            c->want_out = !c->want_out;
            ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
            ev.data.u32 = q->dirty[i];
            epoll_ctl(q->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    q->n_dirty = 0;
}

static void
pl_close(struct pl *q, struct pl_conn *c, const char *why)
{
    if (c->fd < 0) {
        return;
    }
    pl_error(q, c, why, NULL, 0);
    q->conn_failures++;
    epoll_ctl(q->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->pings = 0;
    c->drain_ping = false;
}

/* Whether the drain waits for something still: a publisher's PONG, or a
 * subscriber's. */
static bool
pl_draining(const struct pl *q)
{
    unsigned i;

    for (i = 0; i < q->n_conns; i++) {
        const struct pl_conn *c = &q->conns[i];
        if (c->fd >= 0 && (c->pings > 0 || c->drain_ping)) {
            return true;
        }
    }
    return false;
}

/* The drain's PING on every subscriber, once the publishers' PONGs are
 * all in: its PONG comes behind every message routed to it. */
static void
pl_drain_subscribers(struct pl *q)
{
    unsigned i;

    if (q->drain_pinged) {
        return;
    }
    for (i = 0; i < q->cfg->publishers; i++) {
        if (q->conns[i].fd >= 0 && q->conns[i].pings > 0) {
            return;
        }
    }
    q->drain_pinged = true;
    for (i = q->cfg->publishers; i < q->n_conns; i++) {
        struct pl_conn *c = &q->conns[i];
        if (c->fd >= 0) {
            c->drain_ping = true;
            pl_out(q, c, "PING\r\n", 6);
        }
    }
}

static void
pl_update_phase(struct pl *q)
{
    if (q->phase == PHASE_WARMUP && q->now >= q->t_measure) {
        q->phase = PHASE_MEASURE;
    }
    if (q->phase == PHASE_MEASURE && q->now >= q->t_end) {
        q->phase = PHASE_DRAIN;
        q->t_deadline = q->now + PL_DRAIN_NS;
    }
    if (q->phase == PHASE_DRAIN) {
        pl_drain_subscribers(q);
        if (!pl_draining(q) || q->now >= q->t_deadline) {
            q->phase = PHASE_DONE;
        }
    }
}

static int
pl_wait_ms(const struct pl *q)
{
    uint64_t until = q->phase == PHASE_WARMUP    ? q->t_measure
                     : q->phase == PHASE_MEASURE ? q->t_end
                                                 : q->t_deadline;

    if (until <= q->now) {
        return 0;
    }
    until = (until - q->now + NS_PER_MS - 1) / NS_PER_MS;
    return until > 1000 ? 1000 : (int)until;
}

static void
pl_run(struct pl *q)
{
    struct epoll_event events[PL_MAX_EVENTS];
    unsigned i;
    int n, k;

    q->now = pl_clock();
    q->t_start = q->now;
    q->t_measure = q->now + (uint64_t)q->cfg->warmup * NS_PER_S;
    q->t_end = q->t_measure + (uint64_t)q->cfg->seconds * NS_PER_S;
    q->phase = q->cfg->warmup > 0 ? PHASE_WARMUP : PHASE_MEASURE;
    for (i = 0; i < q->cfg->publishers; i++) {
        pl_publish(q, &q->conns[i]);
    }
    while (q->phase != PHASE_DONE) {
        pl_flush(q);
        n = epoll_wait(q->ep, events, PL_MAX_EVENTS, pl_wait_ms(q));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "bench_pubsub_load: epoll_wait: %s\n",
                    strerror(errno));
            exit(1);
        }
        for (k = 0; k < n; k++) {
            struct pl_conn *c = &q->conns[events[k].data.u32];
            if (c->fd < 0) {
                continue;
            }
            if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                pl_on_readable(q, c);
            }
            if (c->fd >= 0 && (events[k].events & EPOLLOUT)) {
                pl_mark_dirty(q, c);
            }
        }
        q->now = pl_clock();
        pl_update_phase(q);
    }
}

/* Connects to the configured address, blocking; exits 1 when it cannot. */
static int
pl_dial(const struct pl_config *cfg)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *a;
    int fd = -1, one = 1, rc;

    rc = getaddrinfo(cfg->host, cfg->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bench_pubsub_load: cannot resolve '%s': %s\n",
                cfg->host, gai_strerror(rc));
        exit(1);
    }
    for (a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "bench_pubsub_load: cannot connect to %s: %s\n",
                cfg->addr, strerror(errno));
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/*
 * Opens every connection: CONNECT, a SUB for subscribers, then a PING;
 * waits up to PL_SETUP_MS for each PONG (the SUB is in place when it
 * comes). Exits 1 on failure.
 */
static void
pl_setup(struct pl *q)
{
    const struct pl_config *cfg = q->cfg;
    char cmd[600];
    unsigned i;

    q->ep = epoll_create1(EPOLL_CLOEXEC);
    for (i = 0; i < q->n_conns; i++) {
        struct pl_conn *c = &q->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        int len;

        c->fd = pl_dial(cfg);
        len = snprintf(cmd, sizeof(cmd), "%s%s%s%sPING\r\n", PL_CONNECT,
                       c->publisher ? "" : "SUB ",
                       c->publisher ? "" : cfg->subject,
                       c->publisher ? "" : " 1\r\n");
        if (send(c->fd, cmd, (size_t)len, MSG_NOSIGNAL) != len) {
            fprintf(stderr, "bench_pubsub_load: send: %s\n", strerror(errno));
            exit(1);
        }
        for (;;) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            char buf[4096];
            ssize_t n;
            if (poll(&pfd, 1, PL_SETUP_MS) != 1 ||
                (n = read(c->fd, buf, sizeof(buf))) <= 0) {
                fprintf(stderr, "bench_pubsub_load: no PONG from %s\n",
                        cfg->addr);
                exit(1);
            }
            pl_buf_append(&c->in, buf, (size_t)n);
            if (memmem(c->in.p, c->in.len, "-ERR", 4) != NULL) {
                fprintf(stderr, "bench_pubsub_load: setup: %.*s\n",
                        (int)c->in.len, c->in.p);
                exit(1);
            }
            if (memmem(c->in.p, c->in.len, "PONG\r\n", 6) != NULL) {
                break;
            }
        }
        c->in.head = c->in.len = 0;
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0 ||
            epoll_ctl(q->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fprintf(stderr, "bench_pubsub_load: setup: %s\n", strerror(errno));
            exit(1);
        }
    }
}

static void
pl_alloc(struct pl *q)
{
    const struct pl_config *cfg = q->cfg;
    char head[300];
    unsigned i;
    int n;

    q->n_conns = cfg->publishers + cfg->subscribers;
    q->batch = cfg->depth / 4 > 0 ? cfg->depth / 4 : 1;
    q->conns = calloc(q->n_conns, sizeof(*q->conns));
    q->dirty = calloc(q->n_conns, sizeof(*q->dirty));
    n = snprintf(head, sizeof(head), "PUB %s %u\r\n", cfg->subject,
                 cfg->payload);
    q->msg_head = (size_t)n;
    q->msg_len = q->msg_head + cfg->payload + 2;
    q->msg = malloc(q->msg_len);
    if (q->conns == NULL || q->dirty == NULL || q->msg == NULL ||
        hist_init(&q->pub_hist, PL_HIST_SUB_BITS, 64) != 0 ||
        hist_init(&q->e2e_hist, PL_HIST_SUB_BITS, 64) != 0) {
        fprintf(stderr, "bench_pubsub_load: out of memory\n");
        exit(1);
    }
    memcpy(q->msg, head, q->msg_head);
    memset(q->msg + q->msg_head, 'x', cfg->payload);
    memcpy(q->msg + q->msg_head + cfg->payload, "\r\n", 2);
    for (i = 0; i < q->n_conns; i++) {
        struct pl_conn *c = &q->conns[i];
        c->fd = -1;
        c->publisher = i < cfg->publishers;
        c->index = c->publisher ? i : i - cfg->publishers;
        if (c->publisher) {
            c->ping_sent = calloc(cfg->depth + 1, sizeof(*c->ping_sent));
            if (c->ping_sent == NULL) {
                fprintf(stderr, "bench_pubsub_load: out of memory\n");
                exit(1);
            }
        }
    }
}

static void
pl_free(struct pl *q)
{
    unsigned i;

    for (i = 0; i < q->n_conns; i++) {
        struct pl_conn *c = &q->conns[i];
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c->in.p);
        free(c->out.p);
        free(c->ping_sent);
    }
    if (q->ep >= 0) {
        close(q->ep);
    }
    hist_release(&q->pub_hist);
    hist_release(&q->e2e_hist);
    free(q->conns);
    free(q->dirty);
    free(q->msg);
}

/* The line of ferry bench --pubsub on stdout; the details on stderr.
 * Returns the exit code: 1 when anything went wrong. */
static int
pl_report(const struct pl *q)
{
    const struct pl_config *cfg = q->cfg;
    double secs = (double)cfg->seconds;
    uint64_t expected = q->published_all * cfg->subscribers;
    uint64_t dropped =
        expected > q->delivered_all ? expected - q->delivered_all : 0;

    printf("peer=nats published_per_s=%.0f delivered_per_s=%.0f "
           "dropped=%llu e2e_p50_us=%.1f e2e_p99_us=%.1f e2e_p999_us=%.1f "
           "errors=%llu\n",
           (double)q->published / secs, (double)q->delivered / secs,
           (unsigned long long)dropped,
           hist_percentile(&q->e2e_hist, 0.50) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.99) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.999) / 1000.0,
           (unsigned long long)q->errors);
    fflush(stdout);
    fprintf(stderr,
            "bench_pubsub_load: nats %s subject=%s publishers=%u "
            "subscribers=%u depth=%u ping_every=%u payload=%u warmup=%us "
            "seconds=%u: window published=%llu delivered=%llu; all phases "
            "sent=%llu published=%llu expected=%llu delivered=%llu "
            "dropped=%llu foreign=%llu disorder=%llu "
            "connections_lost=%llu drained=%s publish_p50_us=%.1f "
            "publish_p99_us=%.1f e2e_max_us=%.1f\n",
            cfg->addr, cfg->subject, cfg->publishers, cfg->subscribers,
            cfg->depth, q->batch, cfg->payload, cfg->warmup, cfg->seconds,
            (unsigned long long)q->published, (unsigned long long)q->delivered,
            (unsigned long long)q->seq, (unsigned long long)q->published_all,
            (unsigned long long)expected, (unsigned long long)q->delivered_all,
            (unsigned long long)dropped, (unsigned long long)q->foreign,
            (unsigned long long)q->disorder,
            (unsigned long long)q->conn_failures, pl_draining(q) ? "no" : "yes",
            hist_percentile(&q->pub_hist, 0.50) / 1000.0,
            hist_percentile(&q->pub_hist, 0.99) / 1000.0,
            (double)q->e2e_hist.max / 1000.0);
    return q->errors > 0 || q->delivered == 0 ? 1 : 0;
}

static void
pl_usage(void)
{
    fprintf(stderr,
            "usage: bench_pubsub_load --addr HOST:PORT [--subject S]\n"
            "           [--subscribers 100] [--publishers 1] [--depth 16]\n"
            "           [--payload 64] [--seconds 5] [--warmup 1]\n");
    exit(2);
}

/* A number in [lo, hi] for option name, or usage. */
static unsigned
pl_opt_num(const char *name, const char *s, unsigned lo, unsigned hi)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_pubsub_load: --%s wants %u..%u, not '%s'\n",
                name, lo, hi, s);
        pl_usage();
    }
    return (unsigned)v;
}

static void
pl_parse_args(struct pl_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"subject", required_argument, NULL, 'S'},
        {"subscribers", required_argument, NULL, 'n'},
        {"publishers", required_argument, NULL, 'p'},
        {"depth", required_argument, NULL, 'd'},
        {"payload", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *colon;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            cfg->addr = optarg;
            break;
        case 'S':
            cfg->subject = optarg;
            break;
        case 'n':
            cfg->subscribers =
                pl_opt_num("subscribers", optarg, 1, PL_MAX_CONNS);
            break;
        case 'p':
            cfg->publishers = pl_opt_num("publishers", optarg, 1, 1000);
            break;
        case 'd':
            cfg->depth = pl_opt_num("depth", optarg, 1, PL_MAX_DEPTH);
            break;
        case 'b':
            cfg->payload =
                pl_opt_num("payload", optarg, PL_MIN_PAYLOAD, PL_MAX_PAYLOAD);
            break;
        case 's':
            cfg->seconds = pl_opt_num("seconds", optarg, 1, 3600);
            break;
        case 'w':
            cfg->warmup = pl_opt_num("warmup", optarg, 0, 3600);
            break;
        default:
            pl_usage();
        }
    }
    if (optind != argc || cfg->addr == NULL || strlen(cfg->subject) == 0 ||
        strlen(cfg->subject) > 255 || strpbrk(cfg->subject, " \t\r\n")) {
        pl_usage();
    }
    colon = strrchr(cfg->addr, ':');
    if (colon == NULL || colon == cfg->addr || colon[1] == '\0' ||
        strlen(colon + 1) >= sizeof(cfg->port) ||
        (size_t)(colon - cfg->addr) >= sizeof(cfg->host)) {
        fprintf(stderr,
                "bench_pubsub_load: --addr wants HOST:PORT, not "
                "'%s'\n",
                cfg->addr);
        pl_usage();
    }
    snprintf(cfg->host, sizeof(cfg->host), "%.*s", (int)(colon - cfg->addr),
             cfg->addr);
    snprintf(cfg->port, sizeof(cfg->port), "%s", colon + 1);
}

int
main(int argc, char **argv)
{
    struct pl_config cfg = {
        .subject = "bench.pubsub",
        .subscribers = 100,
        .publishers = 1,
        .depth = 16,
        .payload = 64,
        .seconds = 5,
        .warmup = 1,
    };
    struct pl q = {.cfg = &cfg, .ep = -1};
    int rc;

    pl_parse_args(&cfg, argc, argv);
    pl_alloc(&q);
    pl_setup(&q);
    pl_run(&q);
    rc = pl_report(&q);
    pl_free(&q);
    return rc;
}
