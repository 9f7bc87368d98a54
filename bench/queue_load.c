/* SPDX-License-Identifier: MIT */
/*
 * queue_load.c - the peers' side of the durable-queue benchmark: Redis's
 * reliable-queue pattern (LPUSH / BLMOVE / LREM) and beanstalkd (put /
 * reserve-with-timeout / delete), under the workload that ferry bench
 * --queue puts on ferry. bench/queue_peers.sh starts the servers and runs
 * this against each.
 *
 * P producer connections each keep D pushes in flight (pipelined); C
 * consumer connections each keep D receives in flight and ack every job
 * they receive, the ack pipelined with the next receive. A job's payload
 * opens with the push's send time (CLOCK_MONOTONIC ns, 8 bytes) and a
 * sequence number (8 bytes), padded with 'x' to its size, so a consumer
 * in this same process reads the push-to-consumer latency off the job.
 *
 * One thread, one epoll set, non-blocking sockets. Each event reads what
 * the socket has, takes every whole reply in order (one queue of expected
 * replies per connection: what was sent and when), and answers each with
 * the next command into the connection's output; at the end of the loop
 * turn each dirty connection is written with one send(). Phases: warm-up
 * (nothing recorded), the measurement window (replies arriving in it are
 * counted), then a drain of at most QL_DRAIN_NS: no new pushes or
 * receives, jobs still arriving are acked, and the run ends when no push
 * or ack is outstanding (a receive still blocked in the server is left).
 * Latencies go to core's histograms (those of ferry bench: 1/128 of a
 * power of two), allocated once. The first unexpected reply is printed;
 * all are counted.
 *
 * Both servers answer a connection's commands in order, a blocking
 * receive included: while the queue is empty, the receive at the head
 * waits, and what is pipelined behind it on that connection (the other
 * receives, the acks) waits with it, until a job comes or the receive
 * times out (1 s; a timed-out receive is sent again, not an error). So D
 * pipelined receives behave as D receives in turn, which is all the
 * workload needs; only an ack's reply can come late, never a job, and a
 * job counts as consumed when its ack's reply comes.
 *
 *   bench_queue_load --peer redis|beanstalkd --addr HOST:PORT
 *       [--producers 4] [--consumers 4] [--depth 16] [--payload 128]
 *       [--seconds 5] [--warmup 1]
 */
#include <errno.h>
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
#define QL_MAX_DEPTH 1024
#define QL_MIN_PAYLOAD 16    /* the send time and the sequence number */
#define QL_MAX_PAYLOAD 65535 /* beanstalkd's default max-job-size */
#define QL_MAX_LINE 1024     /* longest reply line accepted */
#define QL_CMD_SLACK 128     /* a command's bytes beside its payload */
#define QL_MAX_NEST 4        /* deepest RESP array skipped */
#define QL_MAX_ELEMS 1024    /* most elements of a RESP array skipped */
#define QL_DRAIN_NS (2 * NS_PER_S)
#define QL_SETUP_MS 3000 /* connect and each setup round trip */
#define QL_MAX_EVENTS 64
#define QL_HIST_SUB_BITS 7
#define QL_ERR_SHOWN 120 /* bytes of the first bad reply printed */

/* The Redis keys: the queue and the reliable-queue pattern's list of jobs
 * handed out and not yet acked. */
#define QL_KEY "q"
#define QL_KEY_PROCESSING "q:processing"

enum ql_peer { PEER_REDIS, PEER_BEANSTALKD };

enum ql_role { ROLE_PRODUCER, ROLE_CONSUMER };

enum ql_phase {
    PHASE_WARMUP,  /* load on, nothing recorded */
    PHASE_MEASURE, /* load on, replies recorded */
    PHASE_DRAIN,   /* no new pushes or receives; acks still sent */
    PHASE_DONE
};

/* What a command sent waits for. */
enum ql_cmd {
    CMD_PUSH,    /* LPUSH -> :len; put -> INSERTED id */
    CMD_RECEIVE, /* BLMOVE -> $n job or null; reserve -> RESERVED, TIMED_OUT */
    CMD_ACK      /* LREM -> :1; delete -> DELETED */
};

/* One reply, parsed in place: its slices point into the input buffer. */
enum ql_reply_kind {
    REPLY_INT,       /* RESP :n */
    REPLY_BULK,      /* RESP $n, data is the string */
    REPLY_NULL,      /* RESP $-1 or *-1 (BLMOVE timed out) */
    REPLY_INSERTED,  /* beanstalkd INSERTED id */
    REPLY_RESERVED,  /* beanstalkd RESERVED id n, data is the job */
    REPLY_TIMED_OUT, /* beanstalkd TIMED_OUT */
    REPLY_DELETED,   /* beanstalkd DELETED */
    REPLY_OTHER      /* anything else that parses: RESP errors, words */
};

struct ql_reply {
    enum ql_reply_kind kind; /* see enum */
    long long num;           /* the integer, or the beanstalkd job id */
    const char *data;        /* borrowed: the string or job body */
    size_t len;              /* its length */
    const char *raw;         /* borrowed: the whole reply, for messages */
    size_t size;             /* bytes the whole reply takes */
};

/* A command awaiting its reply. */
struct ql_pending {
    uint64_t sent_ns; /* when it was queued */
    uint64_t end;     /* the conn's bytes queued once it was */
    enum ql_cmd cmd;  /* what it was */
    bool counts;      /* an ack of a job of this run: counted when done */
};

/* One socket. Owned by struct ql. */
struct ql_conn {
    int fd;                  /* the socket, -1 once closed */
    enum ql_role role;       /* producer or consumer */
    unsigned index;          /* among its role, for messages */
    struct ql_pending *fifo; /* owned: ring of commands awaiting replies */
    unsigned fifo_cap;       /* entries in fifo */
    unsigned fifo_head;      /* oldest entry */
    unsigned fifo_len;       /* entries in use */
    unsigned receives;       /* of those, receives */
    char *in;                /* owned: bytes read, not yet parsed */
    size_t in_len;           /* bytes in in */
    size_t in_cap;           /* size of in */
    char *out;               /* owned: commands queued, not yet written */
    size_t out_off;          /* bytes of out already written */
    size_t out_len;          /* bytes in out */
    size_t out_cap;          /* size of out */
    uint64_t queued;         /* bytes ever queued on out */
    uint64_t written;        /* of those, bytes written */
    bool dirty;              /* on the dirty list */
    bool want_out;           /* EPOLLOUT armed: the socket was full */
};

struct ql_config {
    enum ql_peer peer;  /* which server */
    const char *addr;   /* HOST:PORT as given */
    char host[256];     /* its host */
    char port[16];      /* its port */
    unsigned producers; /* producer connections */
    unsigned consumers; /* consumer connections */
    unsigned depth;     /* commands in flight on each */
    unsigned payload;   /* bytes of each job */
    unsigned seconds;   /* measurement window */
    unsigned warmup;    /* seconds before it */
};

/* The whole run. No globals: everything hangs off this. */
struct ql {
    const struct ql_config *cfg; /* borrowed */
    int ep;                      /* epoll fd */
    struct ql_conn *conns;       /* owned: producers, then consumers */
    unsigned n_conns;            /* entries in conns */
    unsigned n_open;             /* of those, not closed */
    unsigned *dirty;             /* owned: indexes of dirty conns */
    unsigned n_dirty;            /* entries in dirty */
    enum ql_phase phase;         /* see enum */
    uint64_t now;                /* CLOCK_MONOTONIC ns, this event */
    uint64_t t_start;            /* load started */
    uint64_t t_measure;          /* start of the window */
    uint64_t t_end;              /* end of the window */
    uint64_t t_deadline;         /* end of the drain */
    uint64_t seq;                /* pushes queued so far */
    char *payload;               /* owned: one job, rewritten per push */
    char tube[64];               /* beanstalkd: this run's own tube */
    struct hist push_hist;       /* push send to ack, in the window, ns */
    struct hist e2e_hist;        /* push send to receipt, in the window */
    uint64_t pushes;             /* pushes acked in the window */
    uint64_t received;           /* jobs received in the window */
    uint64_t consumed;           /* acks answered in the window */
    uint64_t pushes_all;         /* pushes acked, all phases */
    uint64_t received_all;       /* jobs received, all phases */
    uint64_t consumed_all;       /* acks answered, all phases */
    int64_t backlog_start;       /* pushed minus received at window start */
    int64_t backlog;             /* the same at window end */
    uint64_t timeouts;           /* receives that came back empty */
    uint64_t errors;             /* unexpected replies, lost connections */
    uint64_t conn_failures;      /* connections lost */
    bool error_shown;            /* the first error was printed */
};

static const char *const ql_peer_names[] = {"redis", "beanstalkd"};
static const char *const ql_role_names[] = {"producer", "consumer"};
static const char *const ql_cmd_names[2][3] = {
    {"LPUSH", "BLMOVE", "LREM"},
    {"put", "reserve-with-timeout", "delete"},
};

static uint64_t
ql_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Writes up to max bytes of b to f, escaping what is not printable. */
static void
ql_print_escaped(FILE *f, const char *b, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\r') {
            fputs("\\r", f);
        } else if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch < 0x20 || ch >= 0x7f || ch == '\\') {
            fprintf(f, "\\x%02x", ch);
        } else {
            fputc(ch, f);
        }
    }
    if (n > max) {
        fputs("...", f);
    }
}

/*
 * Counts an error; the first of the run is printed, with the bytes that
 * caused it when there are any.
 */
static void
ql_error(struct ql *q, const struct ql_conn *c, const char *what,
         const char *bytes, size_t n)
{
    q->errors++;
    if (q->error_shown) {
        return;
    }
    q->error_shown = true;
    fprintf(stderr, "bench_queue_load: %s %u: %s", ql_role_names[c->role],
            c->index, what);
    if (bytes != NULL) {
        fputs(": '", stderr);
        ql_print_escaped(stderr, bytes, n, QL_ERR_SHOWN);
        fputc('\'', stderr);
    }
    fputs(" (further errors only counted)\n", stderr);
}

/* Finds the CRLF ending the line at b. 1: *line_len is the line's length
 * without it; 0: not all here yet; -1: longer than QL_MAX_LINE. */
static int
ql_line(const char *b, size_t n, size_t *line_len)
{
    size_t lim = n < QL_MAX_LINE ? n : QL_MAX_LINE;

    for (size_t i = 0; i + 1 < lim; i++) {
        if (b[i] == '\r' && b[i + 1] == '\n') {
            *line_len = i;
            return 1;
        }
    }
    return n >= QL_MAX_LINE ? -1 : 0;
}

/* A decimal integer filling all of s[0..n), optionally negative, of at
 * most 18 digits. */
static bool
ql_parse_ll(const char *s, size_t n, long long *v)
{
    bool neg = false;
    long long x = 0;
    size_t i = 0;

    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n - i > 18) {
        return false;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        x = x * 10 + (s[i] - '0');
    }
    *v = neg ? -x : x;
    return true;
}

/*
 * One RESP2 reply at b (n bytes, of which at most max_bulk in one bulk
 * string). 1: *r filled; 0: not all here yet; -1: the stream cannot be
 * parsed (nothing after it can be trusted). Arrays other than the null one
 * are skipped whole, as REPLY_OTHER.
 */
static int
ql_resp_parse(const char *b, size_t n, size_t max_bulk, unsigned nest,
              struct ql_reply *r)
{
    size_t ll;
    long long v;
    int rc = ql_line(b, n, &ll);

    if (rc <= 0) {
        return rc;
    }
    if (ll == 0) {
        return -1;
    }
    memset(r, 0, sizeof(*r));
    r->raw = b;
    r->size = ll + 2;
    r->data = b;
    r->len = ll;
    switch (b[0]) {
    case '+':
    case '-':
        r->kind = REPLY_OTHER;
        return 1;
    case ':':
        if (!ql_parse_ll(b + 1, ll - 1, &r->num)) {
            return -1;
        }
        r->kind = REPLY_INT;
        return 1;
    case '$':
        if (!ql_parse_ll(b + 1, ll - 1, &v) || v < -1 ||
            (v >= 0 && (uint64_t)v > max_bulk)) {
            return -1;
        }
        if (v == -1) {
            r->kind = REPLY_NULL;
            return 1;
        }
        if (n - r->size < (size_t)v + 2) {
            return 0;
        }
        if (b[r->size + (size_t)v] != '\r' ||
            b[r->size + (size_t)v + 1] != '\n') {
            return -1;
        }
        r->kind = REPLY_BULK;
        r->data = b + r->size;
        r->len = (size_t)v;
        r->size += (size_t)v + 2;
        return 1;
    case '*':
        if (!ql_parse_ll(b + 1, ll - 1, &v) || v < -1 || v > QL_MAX_ELEMS ||
            nest >= QL_MAX_NEST) {
            return -1;
        }
        if (v == -1) {
            r->kind = REPLY_NULL;
            return 1;
        }
        for (long long i = 0; i < v; i++) {
            struct ql_reply e;
            rc =
                ql_resp_parse(b + r->size, n - r->size, max_bulk, nest + 1, &e);
            if (rc <= 0) {
                return rc;
            }
            r->size += e.size;
        }
        r->kind = REPLY_OTHER;
        r->len = r->size;
        return 1;
    default:
        return -1;
    }
}

/* Whether the line b[0..n) is word, then a space and more when args. */
static bool
ql_word_is(const char *b, size_t n, const char *word, bool args)
{
    size_t wl = strlen(word);

    if (n < wl || memcmp(b, word, wl) != 0) {
        return false;
    }
    return args ? n > wl + 1 && b[wl] == ' ' : n == wl;
}

/*
 * One beanstalkd reply at b, as ql_resp_parse. A line other than those
 * the commands sent here expect is REPLY_OTHER, the line alone.
 */
static int
ql_bean_parse(const char *b, size_t n, size_t max_body, struct ql_reply *r)
{
    size_t ll;
    int rc = ql_line(b, n, &ll);

    if (rc <= 0) {
        return rc;
    }
    memset(r, 0, sizeof(*r));
    r->kind = REPLY_OTHER;
    r->raw = b;
    r->size = ll + 2;
    r->data = b;
    r->len = ll;
    if (ql_word_is(b, ll, "INSERTED", true)) {
        if (ql_parse_ll(b + 9, ll - 9, &r->num) && r->num >= 0) {
            r->kind = REPLY_INSERTED;
        }
    } else if (ql_word_is(b, ll, "RESERVED", true)) {
        const char *id = b + 9, *sp = memchr(id, ' ', ll - 9);
        long long body;
        if (sp == NULL || !ql_parse_ll(id, (size_t)(sp - id), &r->num) ||
            r->num < 0 ||
            !ql_parse_ll(sp + 1, (size_t)(b + ll - sp - 1), &body) ||
            body < 0 || (uint64_t)body > max_body) {
            return -1;
        }
        if (n - r->size < (size_t)body + 2) {
            return 0;
        }
        if (b[r->size + (size_t)body] != '\r' ||
            b[r->size + (size_t)body + 1] != '\n') {
            return -1;
        }
        r->kind = REPLY_RESERVED;
        r->data = b + r->size;
        r->len = (size_t)body;
        r->size += (size_t)body + 2;
    } else if (ql_word_is(b, ll, "TIMED_OUT", false)) {
        r->kind = REPLY_TIMED_OUT;
    } else if (ql_word_is(b, ll, "DELETED", false)) {
        r->kind = REPLY_DELETED;
    }
    return 1;
}

/* One reply of c's peer at b (n bytes), as ql_resp_parse. */
static int
ql_parse(const struct ql *q, const struct ql_conn *c, const char *b, size_t n,
         struct ql_reply *r)
{
    size_t max = c->in_cap - QL_MAX_LINE;

    if (q->cfg->peer == PEER_REDIS) {
        return ql_resp_parse(b, n, max, 0, r);
    }
    return ql_bean_parse(b, n, max, r);
}

static void
ql_mark_dirty(struct ql *q, struct ql_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        q->dirty[q->n_dirty++] = (unsigned)(c - q->conns);
    }
}

/* Appends n bytes to c's output; the buffer is sized for every command
 * that can be in flight at once (a reply to a command not yet written
 * closes the connection, so what waits here is in flight). */
static void
ql_out(struct ql_conn *c, const void *b, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > c->out_cap) {
        fprintf(stderr, "bench_queue_load: output overflow (a bug)\n");
        abort();
    }
    memcpy(c->out + c->out_len, b, n);
    c->out_len += n;
    c->queued += n;
}

static void
ql_expect(struct ql *q, struct ql_conn *c, enum ql_cmd cmd, bool counts)
{
    struct ql_pending *p;

    if (c->fifo_len == c->fifo_cap) {
        fprintf(stderr, "bench_queue_load: reply queue overflow (a bug)\n");
        abort();
    }
    p = &c->fifo[(c->fifo_head + c->fifo_len++) % c->fifo_cap];
    p->sent_ns = q->now;
    p->end = c->queued;
    p->cmd = cmd;
    p->counts = counts;
    if (cmd == CMD_RECEIVE) {
        c->receives++;
    }
    ql_mark_dirty(q, c);
}

/* Queues one push: a job stamped with now and the next sequence number. */
static void
ql_push(struct ql *q, struct ql_conn *c)
{
    unsigned n = q->cfg->payload;
    char head[64];
    int hl;

    memcpy(q->payload, &q->now, 8);
    memcpy(q->payload + 8, &q->seq, 8);
    q->seq++;
    if (q->cfg->peer == PEER_REDIS) {
        hl = snprintf(head, sizeof(head),
                      "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%u\r\n",
                      strlen(QL_KEY), QL_KEY, n);
    } else {
        hl = snprintf(head, sizeof(head), "put 0 0 60 %u\r\n", n);
    }
    ql_out(c, head, (size_t)hl);
    ql_out(c, q->payload, n);
    ql_out(c, "\r\n", 2);
    ql_expect(q, c, CMD_PUSH, false);
}

static void
ql_receive(struct ql *q, struct ql_conn *c)
{
    static const char blmove[] = "*6\r\n$6\r\nBLMOVE\r\n$1\r\n" QL_KEY "\r\n"
                                 "$12\r\n" QL_KEY_PROCESSING "\r\n"
                                 "$5\r\nRIGHT\r\n$4\r\nLEFT\r\n$1\r\n1\r\n";
    static const char reserve[] = "reserve-with-timeout 1\r\n";

    if (q->cfg->peer == PEER_REDIS) {
        ql_out(c, blmove, sizeof(blmove) - 1);
    } else {
        ql_out(c, reserve, sizeof(reserve) - 1);
    }
    ql_expect(q, c, CMD_RECEIVE, false);
}

/* Queues the ack of a job received: LREM of its payload from the
 * processing list, or delete of its id; counts says whether its reply
 * makes the job consumed (not for a job this run did not push). */
static void
ql_ack(struct ql *q, struct ql_conn *c, const struct ql_reply *r, bool counts)
{
    char head[96];
    int hl;

    if (q->cfg->peer == PEER_REDIS) {
        hl = snprintf(head, sizeof(head),
                      "*4\r\n$4\r\nLREM\r\n$12\r\n" QL_KEY_PROCESSING
                      "\r\n$1\r\n1\r\n$%zu\r\n",
                      r->len);
        ql_out(c, head, (size_t)hl);
        ql_out(c, r->data, r->len);
        ql_out(c, "\r\n", 2);
    } else {
        hl = snprintf(head, sizeof(head), "delete %lld\r\n", r->num);
        ql_out(c, head, (size_t)hl);
    }
    ql_expect(q, c, CMD_ACK, counts);
}

static bool
ql_in_window(const struct ql *q)
{
    return q->now >= q->t_measure && q->now < q->t_end;
}

static bool
ql_loading(const struct ql *q)
{
    return q->phase == PHASE_WARMUP || q->phase == PHASE_MEASURE;
}

/* Checks a job received (false when it is not one of this run's) and
 * records its push-to-consumer latency. */
static bool
ql_job(struct ql *q, struct ql_conn *c, const struct ql_reply *r)
{
    uint64_t sent, seq;

    if (r->len != q->cfg->payload) {
        ql_error(q, c, "job of the wrong size", r->raw, r->size);
        return false;
    }
    memcpy(&sent, r->data, 8);
    memcpy(&seq, r->data + 8, 8);
    if (sent < q->t_start || sent > q->now || seq >= q->seq ||
        memcmp(r->data + 16, q->payload + 16, r->len - 16) != 0) {
        ql_error(q, c, "job not pushed by this run", r->raw, r->size);
        return false;
    }
    q->received_all++;
    if (ql_in_window(q)) {
        q->received++;
        hist_record(&q->e2e_hist, q->now - sent);
    }
    return true;
}

static void ql_close(struct ql *q, struct ql_conn *c, const char *why);

/* Handles one reply, the answer to c's oldest command; false when there
 * was no command written that it can answer (the stream is out of step:
 * c must close). */
static bool
ql_on_reply(struct ql *q, struct ql_conn *c, const struct ql_reply *r)
{
    bool redis = q->cfg->peer == PEER_REDIS;
    struct ql_pending p;
    char what[64];

    if (c->fifo_len == 0 || c->fifo[c->fifo_head].end > c->written) {
        ql_error(q, c, "reply to no command sent", r->raw, r->size);
        return false;
    }
    p = c->fifo[c->fifo_head];
    c->fifo_head = (c->fifo_head + 1) % c->fifo_cap;
    c->fifo_len--;
    snprintf(what, sizeof(what), "unexpected reply to %s",
             ql_cmd_names[q->cfg->peer][p.cmd]);
    switch (p.cmd) {
    case CMD_PUSH:
        if ((redis && r->kind == REPLY_INT && r->num >= 1) ||
            (!redis && r->kind == REPLY_INSERTED)) {
            q->pushes_all++;
            if (ql_in_window(q)) {
                q->pushes++;
                hist_record(&q->push_hist, q->now - p.sent_ns);
            }
        } else {
            ql_error(q, c, what, r->raw, r->size);
        }
        if (ql_loading(q)) {
            ql_push(q, c);
        }
        break;
    case CMD_RECEIVE:
        c->receives--;
        if ((redis && r->kind == REPLY_BULK) ||
            (!redis && r->kind == REPLY_RESERVED)) {
            /* Acked even when wrong, so that no job stays handed out. */
            ql_ack(q, c, r, ql_job(q, c, r));
        } else if ((redis && r->kind == REPLY_NULL) ||
                   (!redis && r->kind == REPLY_TIMED_OUT)) {
            q->timeouts++;
        } else {
            ql_error(q, c, what, r->raw, r->size);
        }
        if (ql_loading(q)) {
            ql_receive(q, c);
        }
        break;
    case CMD_ACK:
        if ((redis && r->kind == REPLY_INT && r->num == 1) ||
            (!redis && r->kind == REPLY_DELETED)) {
            if (p.counts) {
                q->consumed_all++;
                q->consumed += ql_in_window(q);
            }
        } else {
            ql_error(q, c, what, r->raw, r->size);
        }
        break;
    }
    return true;
}

/* Reads what c's socket has and handles every whole reply in it. */
static void
ql_on_readable(struct ql *q, struct ql_conn *c)
{
    struct ql_reply r;
    size_t off = 0;
    ssize_t n;
    int rc;

    n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        ql_close(q, c, n == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    c->in_len += (size_t)n;
    q->now = ql_clock();
    /* Replies are slices of c->in: it moves only once all are handled. */
    while ((rc = ql_parse(q, c, c->in + off, c->in_len - off, &r)) == 1) {
        off += r.size;
        if (!ql_on_reply(q, c, &r)) {
            ql_close(q, c, NULL);
            return;
        }
    }
    if (rc < 0 || (off == 0 && c->in_len == c->in_cap)) {
        ql_error(q, c, "reply that cannot be parsed", c->in + off,
                 c->in_len - off);
        ql_close(q, c, NULL);
        return;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

/* Writes what c has queued; arms EPOLLOUT while the socket is full. */
static void
ql_flush_conn(struct ql *q, struct ql_conn *c)
{
    struct epoll_event ev = {.data.u32 = (uint32_t)(c - q->conns)};
    bool full = false;

    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            full = true;
            break;
        }
        if (w < 0) {
            ql_close(q, c, strerror(errno));
            return;
        }
        c->out_off += (size_t)w;
        c->written += (size_t)w;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (full != c->want_out) {
        ev.events = EPOLLIN | (full ? EPOLLOUT : 0);
        epoll_ctl(q->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = full;
    }
}

static void
ql_flush(struct ql *q)
{
    for (unsigned i = 0; i < q->n_dirty; i++) {
        struct ql_conn *c = &q->conns[q->dirty[i]];
        c->dirty = false;
        if (c->fd >= 0) {
            ql_flush_conn(q, c);
        }
    }
    q->n_dirty = 0;
}

/* Closes c; what it had in flight is forgotten. why, when given, counts
 * as an error (a parse failure was counted already). */
static void
ql_close(struct ql *q, struct ql_conn *c, const char *why)
{
    if (c->fd < 0) {
        return;
    }
    if (why != NULL) {
        char what[128];
        snprintf(what, sizeof(what), "connection lost: %s", why);
        ql_error(q, c, what, NULL, 0);
    }
    epoll_ctl(q->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->fifo_len = 0;
    c->receives = 0;
    q->n_open--;
    q->conn_failures++;
}

/* Pushes and acks outstanding on open connections (a receive still
 * blocked in the server does not hold the drain). */
static uint64_t
ql_outstanding(const struct ql *q)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < q->n_conns; i++) {
        const struct ql_conn *c = &q->conns[i];
        if (c->fd >= 0) {
            n += c->fifo_len - c->receives;
        }
    }
    return n;
}

static void
ql_update_phase(struct ql *q)
{
    if (q->phase == PHASE_WARMUP && q->now >= q->t_measure) {
        q->phase = PHASE_MEASURE;
        q->backlog_start = (int64_t)q->pushes_all - (int64_t)q->received_all;
    }
    if (q->phase == PHASE_MEASURE && q->now >= q->t_end) {
        q->phase = PHASE_DRAIN;
        q->t_deadline = q->t_end + QL_DRAIN_NS;
        q->backlog = (int64_t)q->pushes_all - (int64_t)q->received_all;
    }
    if (q->phase == PHASE_DRAIN &&
        (ql_outstanding(q) == 0 || q->now >= q->t_deadline)) {
        q->phase = PHASE_DONE;
    }
    if (q->n_open == 0) {
        q->phase = PHASE_DONE;
    }
}

static int
ql_wait_ms(const struct ql *q)
{
    uint64_t until = q->phase == PHASE_WARMUP    ? q->t_measure
                     : q->phase == PHASE_MEASURE ? q->t_end
                                                 : q->t_deadline;

    if (until <= q->now) {
        return 0;
    }
    until = (until - q->now + NS_PER_MS - 1) / NS_PER_MS;
    return until > 100 ? 100 : (int)until;
}

static void
ql_run(struct ql *q)
{
    struct epoll_event events[QL_MAX_EVENTS];

    q->now = q->t_start = ql_clock();
    q->t_measure = q->t_start + q->cfg->warmup * NS_PER_S;
    q->t_end = q->t_measure + q->cfg->seconds * NS_PER_S;
    q->phase = q->cfg->warmup > 0 ? PHASE_WARMUP : PHASE_MEASURE;
    for (unsigned i = 0; i < q->n_conns; i++) {
        struct ql_conn *c = &q->conns[i];
        for (unsigned d = 0; d < q->cfg->depth; d++) {
            if (c->role == ROLE_PRODUCER) {
                ql_push(q, c);
            } else {
                ql_receive(q, c);
            }
        }
    }
    while (q->phase != PHASE_DONE) {
        int n;
        ql_flush(q);
        n = epoll_wait(q->ep, events, QL_MAX_EVENTS, ql_wait_ms(q));
        if (n < 0 && errno != EINTR) {
            perror("bench_queue_load: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct ql_conn *c = &q->conns[events[i].data.u32];
            if (c->fd >= 0 &&
                (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                ql_on_readable(q, c);
            }
            if (c->fd >= 0 && (events[i].events & EPOLLOUT)) {
                ql_mark_dirty(q, c);
            }
        }
        q->now = ql_clock();
        ql_update_phase(q);
    }
    ql_flush(q);
}

/* Connects to the configured address within QL_SETUP_MS; -1 with errno. */
static int
ql_dial(const struct ql_config *cfg)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *a;
    int fd = -1, one = 1, err = ECONNREFUSED, rc;

    rc = getaddrinfo(cfg->host, cfg->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bench_queue_load: cannot resolve '%s': %s\n",
                cfg->host, gai_strerror(rc));
        exit(1);
    }
    for (a = res; a != NULL; a = a->ai_next) {
        struct pollfd pfd;
        socklen_t len = sizeof(err);
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                err = errno;
                goto next;
            }
            pfd.fd = fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, QL_SETUP_MS) != 1) {
                err = ETIMEDOUT;
                goto next;
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
                err != 0) {
                goto next;
            }
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        freeaddrinfo(res);
        return fd;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    errno = err;
    return -1;
}

/*
 * Sends cmd (name, for messages) on c before the load starts and waits,
 * up to QL_SETUP_MS, for one reply; exits 1 unless it is the line want
 * (or, when want is NULL, any RESP integer).
 */
static void
ql_setup_call(struct ql *q, struct ql_conn *c, const char *name,
              const char *cmd, const char *want)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    size_t len = strlen(cmd), off = 0;
    uint64_t deadline = ql_clock() + QL_SETUP_MS * NS_PER_MS;
    struct ql_reply r = {0};
    int rc = 0;

    while (off < len) {
        ssize_t w = send(c->fd, cmd + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            goto fail;
        }
        off += w > 0 ? (size_t)w : 0;
    }
    while ((rc = ql_parse(q, c, c->in, c->in_len, &r)) == 0) {
        uint64_t now = ql_clock();
        ssize_t n;
        if (now >= deadline ||
            poll(&pfd, 1, (int)((deadline - now) / NS_PER_MS) + 1) < 0) {
            goto fail;
        }
        n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            goto fail;
        }
        c->in_len += n > 0 ? (size_t)n : 0;
    }
    if (rc == 1 && (want == NULL ? r.kind == REPLY_INT
                                 : r.len == strlen(want) &&
                                       memcmp(r.data, want, r.len) == 0)) {
        memmove(c->in, c->in + r.size, c->in_len - r.size);
        c->in_len -= r.size;
        return;
    }
fail:
    fprintf(stderr, "bench_queue_load: %s at %s: setup command '%s' ",
            ql_peer_names[q->cfg->peer], q->cfg->addr, name);
    if (rc == 1) {
        fputs("answered '", stderr);
        ql_print_escaped(stderr, r.raw, r.size, QL_ERR_SHOWN);
        fputs("'\n", stderr);
    } else if (rc < 0) {
        fputs("answered what cannot be parsed: '", stderr);
        ql_print_escaped(stderr, c->in, c->in_len, QL_ERR_SHOWN);
        fputs("'\n", stderr);
    } else {
        fputs("got no answer\n", stderr);
    }
    exit(1);
}

/*
 * Connects every connection and readies the server: Redis empties the
 * two lists (a previous run's leftovers would skew the latencies);
 * beanstalkd gets a tube of this run's own, used by the producers and the
 * only one the consumers watch.
 */
static void
ql_setup(struct ql *q)
{
    const struct ql_config *cfg = q->cfg;
    char cmd[128];

    for (unsigned i = 0; i < q->n_conns; i++) {
        struct ql_conn *c = &q->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        c->fd = ql_dial(cfg);
        if (c->fd < 0) {
            fprintf(stderr, "bench_queue_load: cannot connect to %s (%s): %s\n",
                    cfg->addr, ql_peer_names[cfg->peer], strerror(errno));
            exit(1);
        }
        q->n_open++;
        if (epoll_ctl(q->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            perror("bench_queue_load: epoll_ctl");
            exit(1);
        }
    }
    if (cfg->peer == PEER_REDIS) {
        ql_setup_call(q, &q->conns[0], "DEL " QL_KEY " " QL_KEY_PROCESSING,
                      "*3\r\n$3\r\nDEL\r\n$1\r\n" QL_KEY
                      "\r\n$12\r\n" QL_KEY_PROCESSING "\r\n",
                      NULL);
        return;
    }
    snprintf(q->tube, sizeof(q->tube), "qload.%d.%llu", (int)getpid(),
             (unsigned long long)(ql_clock() / NS_PER_MS));
    for (unsigned i = 0; i < q->n_conns; i++) {
        struct ql_conn *c = &q->conns[i];
        char want[96];
        if (c->role == ROLE_PRODUCER) {
            snprintf(cmd, sizeof(cmd), "use %s\r\n", q->tube);
            snprintf(want, sizeof(want), "USING %s", q->tube);
            ql_setup_call(q, c, "use", cmd, want);
        } else {
            snprintf(cmd, sizeof(cmd), "watch %s\r\n", q->tube);
            ql_setup_call(q, c, "watch", cmd, "WATCHING 2");
            ql_setup_call(q, c, "ignore default", "ignore default\r\n",
                          "WATCHING 1");
        }
    }
}

static void
ql_alloc(struct ql *q)
{
    const struct ql_config *cfg = q->cfg;
    size_t cmd_max = cfg->payload + QL_CMD_SLACK;

    q->n_conns = cfg->producers + cfg->consumers;
    q->conns = calloc(q->n_conns, sizeof(*q->conns));
    q->dirty = calloc(q->n_conns, sizeof(*q->dirty));
    q->payload = malloc(cfg->payload);
    q->ep = epoll_create1(0);
    if (q->conns == NULL || q->dirty == NULL || q->payload == NULL ||
        hist_init(&q->push_hist, QL_HIST_SUB_BITS, 64) != FERRY_OK ||
        hist_init(&q->e2e_hist, QL_HIST_SUB_BITS, 64) != FERRY_OK ||
        q->ep < 0) {
        fprintf(stderr, "bench_queue_load: out of memory\n");
        exit(1);
    }
    memset(q->payload, 'x', cfg->payload);
    for (unsigned i = 0; i < q->n_conns; i++) {
        struct ql_conn *c = &q->conns[i];
        c->fd = -1;
        c->role = i < cfg->producers ? ROLE_PRODUCER : ROLE_CONSUMER;
        c->index = c->role == ROLE_PRODUCER ? i : i - cfg->producers;
        /*
         * A producer has depth pushes in flight. A consumer has depth
         * receives and at most one ack between two of them, so 2 * depth
         * commands, which the drain (acks, no new receives) keeps; 3 *
         * depth is slack. Replies arrive in any split, so the input holds
         * two of the largest at least.
         */
        c->fifo_cap = 3 * cfg->depth;
        c->fifo = calloc(c->fifo_cap, sizeof(*c->fifo));
        c->out_cap = c->fifo_cap * cmd_max;
        c->out = malloc(c->out_cap);
        c->in_cap = 64 * 1024 + 2 * (cmd_max + QL_MAX_LINE);
        c->in = malloc(c->in_cap);
        if (c->fifo == NULL || c->out == NULL || c->in == NULL) {
            fprintf(stderr, "bench_queue_load: out of memory\n");
            exit(1);
        }
    }
}

static void
ql_free(struct ql *q)
{
    for (unsigned i = 0; i < q->n_conns; i++) {
        struct ql_conn *c = &q->conns[i];
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c->fifo);
        free(c->out);
        free(c->in);
    }
    hist_release(&q->push_hist);
    hist_release(&q->e2e_hist);
    close(q->ep);
    free(q->payload);
    free(q->dirty);
    free(q->conns);
}

static void
ql_report(const struct ql *q)
{
    const struct ql_config *cfg = q->cfg;
    double secs = (double)cfg->seconds;

    printf("peer=%s pushes_per_s=%.0f consumed_per_s=%.0f push_p50_us=%.1f "
           "push_p99_us=%.1f e2e_p50_us=%.1f e2e_p99_us=%.1f "
           "e2e_p999_us=%.1f errors=%llu backlog=%lld\n",
           ql_peer_names[cfg->peer], (double)q->pushes / secs,
           (double)q->consumed / secs,
           hist_percentile(&q->push_hist, 0.50) / 1000.0,
           hist_percentile(&q->push_hist, 0.99) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.50) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.99) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.999) / 1000.0,
           (unsigned long long)q->errors, (long long)q->backlog);
    fflush(stdout);
    fprintf(
        stderr,
        "bench_queue_load: %s %s producers=%u consumers=%u depth=%u "
        "payload=%u warmup=%us seconds=%u: window pushed=%llu "
        "received=%llu consumed=%llu backlog_start=%lld; all phases "
        "pushed=%llu received=%llu consumed=%llu receive_timeouts=%llu; "
        "outstanding=%llu connections_lost=%llu e2e_max_us=%.1f\n",
        ql_peer_names[cfg->peer], cfg->addr, cfg->producers, cfg->consumers,
        cfg->depth, cfg->payload, cfg->warmup, cfg->seconds,
        (unsigned long long)q->pushes, (unsigned long long)q->received,
        (unsigned long long)q->consumed, (long long)q->backlog_start,
        (unsigned long long)q->pushes_all, (unsigned long long)q->received_all,
        (unsigned long long)q->consumed_all, (unsigned long long)q->timeouts,
        (unsigned long long)ql_outstanding(q),
        (unsigned long long)q->conn_failures, (double)q->e2e_hist.max / 1000.0);
}

static void
ql_usage(void)
{
    fprintf(stderr,
            "usage: bench_queue_load --peer redis|beanstalkd --addr HOST:PORT\n"
            "           [--producers 4] [--consumers 4] [--depth 16]\n"
            "           [--payload 128] [--seconds 5] [--warmup 1]\n");
    exit(2);
}

/* A number in [lo, hi] for option name, or usage. */
static unsigned
ql_opt_num(const char *name, const char *s, unsigned lo, unsigned hi)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_queue_load: --%s wants %u..%u, not '%s'\n", name,
                lo, hi, s);
        ql_usage();
    }
    return (unsigned)v;
}

static void
ql_parse_args(struct ql_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"peer", required_argument, NULL, 'P'},
        {"addr", required_argument, NULL, 'a'},
        {"producers", required_argument, NULL, 'p'},
        {"consumers", required_argument, NULL, 'c'},
        {"depth", required_argument, NULL, 'd'},
        {"payload", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *peer = NULL, *colon;
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'P':
            peer = optarg;
            break;
        case 'a':
            cfg->addr = optarg;
            break;
        case 'p':
            cfg->producers = ql_opt_num("producers", optarg, 1, 128);
            break;
        case 'c':
            cfg->consumers = ql_opt_num("consumers", optarg, 1, 128);
            break;
        case 'd':
            cfg->depth = ql_opt_num("depth", optarg, 1, QL_MAX_DEPTH);
            break;
        case 'b':
            cfg->payload =
                ql_opt_num("payload", optarg, QL_MIN_PAYLOAD, QL_MAX_PAYLOAD);
            break;
        case 's':
            cfg->seconds = ql_opt_num("seconds", optarg, 1, 3600);
            break;
        case 'w':
            cfg->warmup = ql_opt_num("warmup", optarg, 0, 3600);
            break;
        default:
            ql_usage();
        }
    }
    if (optind != argc || peer == NULL || cfg->addr == NULL) {
        ql_usage();
    }
    if (strcmp(peer, "redis") == 0) {
        cfg->peer = PEER_REDIS;
    } else if (strcmp(peer, "beanstalkd") == 0) {
        cfg->peer = PEER_BEANSTALKD;
    } else {
        fprintf(stderr, "bench_queue_load: unknown peer '%s'\n", peer);
        ql_usage();
    }
    /* HOST:PORT, the host of an IPv6 address in brackets. */
    colon = strrchr(cfg->addr, ':');
    if (colon == NULL || colon == cfg->addr || colon[1] == '\0' ||
        strlen(colon + 1) >= sizeof(cfg->port) ||
        (size_t)(colon - cfg->addr) >= sizeof(cfg->host)) {
        fprintf(stderr, "bench_queue_load: --addr wants HOST:PORT, not '%s'\n",
                cfg->addr);
        ql_usage();
    }
    if (cfg->addr[0] == '[' && colon[-1] == ']') {
        snprintf(cfg->host, sizeof(cfg->host), "%.*s",
                 (int)(colon - cfg->addr - 2), cfg->addr + 1);
    } else {
        snprintf(cfg->host, sizeof(cfg->host), "%.*s", (int)(colon - cfg->addr),
                 cfg->addr);
    }
    snprintf(cfg->port, sizeof(cfg->port), "%s", colon + 1);
}

int
main(int argc, char **argv)
{
    struct ql_config cfg = {
        .producers = 4,
        .consumers = 4,
        .depth = 16,
        .payload = 128,
        .seconds = 5,
        .warmup = 1,
    };
    struct ql q = {.cfg = &cfg};

    ql_parse_args(&cfg, argc, argv);
    ql_alloc(&q);
    ql_setup(&q);
    ql_run(&q);
    ql_report(&q);
    ql_free(&q);
    return 0;
}
