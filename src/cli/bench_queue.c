/* SPDX-License-Identifier: MIT */
/*
 * bench_queue.c - the queue workload of ferry bench (bench_queue.h): the
 * workload of bench/queue_load.c (Redis, beanstalkd) put on ferry.queue,
 * through bench.c's engine (its sockets, frames, phases, accounting).
 *
 * The first cfg->producers connections are producers: each keeps `depth`
 * PUSHes in flight, every answer sending the next. A job's payload opens
 * with the push's send time (CLOCK_MONOTONIC ns, 8 bytes, this host's
 * order) and a sequence number (8 bytes), padded with 'x', so a consumer
 * in this same process reads the push-to-consumer latency off the job.
 * The other connections are consumers: each keeps `depth` RESERVEs in
 * flight (each with a wait, and a deadline 5 s past it, as the CLI), and
 * answers every job with its ACK at once, pipelined with the RESERVE that
 * replaces the one answered; a job counts as consumed when its ACK's reply
 * comes. A consumer has 2 * depth + 1 slots: depth RESERVEs, acks beside
 * them, and one REDRIVE.
 *
 * Churn (cfg->churn): each job is acked, released with a delay, or buried
 * by chance in the given shares, and one consumer REDRIVEs the dead-letter
 * queue every cfg->redrive_ms, so that ready, delayed, reserved and dead
 * jobs mix; cfg->backlog holds the producers back while that many jobs
 * are pushed and not acked, and cfg->cycles ends the run after that many
 * jobs were acked, released or buried. The push-to-consumer latency is of
 * first deliveries only: a bit per sequence number marks the jobs
 * delivered (attempts do not tell, as a redrive sets them to 0).
 */
#include "cli/bench_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "queue/queue_codec.h"

#define BQ_STAMP 16              /* send time and sequence number */
#define BQ_PAD 'x'               /* the rest of a job */
#define BQ_RESERVE_SLACK_MS 5000 /* a RESERVE's deadline past its wait */
#define BQ_REASON "ferry bench"  /* of a bury */

/* A connection's part. One per connection, owned by struct bench_queue. */
struct bq_role {
    uint32_t index;    /* among its role, for messages */
    uint32_t reserves; /* consumer: RESERVEs in flight */
    uint32_t parked;   /* producer: pushes held back by the backlog */
};

/* The workload's state (b->wl). */
struct bench_queue {
    struct bq_role *roles;  /* owned: one per connection */
    uint8_t *job;           /* owned: one job, its padding kept */
    uint8_t *req;           /* owned: one request payload */
    uint8_t *delivered;     /* owned: a bit per seq, set once received */
    uint64_t delivered_cap; /* bits of room in delivered */
    struct slice key;       /* the queue's name: every routing key */
    uint64_t seq;           /* pushes sent */
    uint64_t alive;         /* pushes sent, not failed and not acked */
    uint64_t parked;        /* pushes held back, all producers */
    uint64_t rng;           /* xorshift64 state of the churn */
    struct hist push_hist;  /* push send to reply, window, ns */
    struct hist e2e_hist;   /* push send to receipt, window, ns */
    uint64_t pushes;        /* pushes acknowledged in the window */
    uint64_t received;      /* first deliveries received in the window */
    uint64_t consumed;      /* acks answered in the window */
    uint64_t pushes_all;    /* pushes acknowledged, all phases */
    uint64_t received_all;  /* first deliveries, all phases */
    uint64_t consumed_all;  /* acks answered, all phases */
    uint64_t released;      /* releases answered */
    uint64_t buried;        /* buries answered */
    uint64_t redriven;      /* jobs moved back by REDRIVE */
    uint64_t redelivered;   /* deliveries after the first */
    uint64_t nomem;         /* pushes not sent: no room for their bit */
    uint64_t empty;         /* RESERVEs answered EMPTY */
    uint64_t cycles;        /* jobs acked, released or buried */
    uint64_t next_progress; /* cycles of the next progress line */
    uint64_t t_redrive;     /* when the last REDRIVE was sent */
    int64_t backlog_start;  /* pushed minus received, window start */
    int64_t backlog;        /* the same at its end */
    uint8_t seen;           /* phases seen by the tick: bit per phase */
    bool redriving;         /* a REDRIVE is in flight */
};

/* Queues the request r on c in a free slot; false when none is free or
 * c failed. */
static bool
bq_send(struct bench *b, struct bench_conn *c, const struct queue_req *r,
        uint32_t timeout_ms)
{
    struct bench_queue *q = b->wl;
    struct bench_slot *slot = bench_slot_get(b, c);
    struct slice payload = {q->req, 0};

    if (slot == NULL) {
        return false;
    }
    payload.len = queue_codec_write_request(q->req, r);
    return bench_request(b, c, slot, r->op, q->key, payload, timeout_ms);
}

/* ---- producers ---- */

/* Doubles the room of q->delivered; false when out of memory. */
static bool
bq_grow(struct bench_queue *q)
{
    uint64_t cap = q->delivered_cap ? 2 * q->delivered_cap : 1u << 20;
    uint8_t *d = realloc(q->delivered, cap / 8);

    if (d == NULL) {
        return false;
    }
    memset(d + q->delivered_cap / 8, 0, (cap - q->delivered_cap) / 8);
    q->delivered = d;
    q->delivered_cap = cap;
    return true;
}

/* The next push of c, or held back (parked) while the backlog is full. */
static void
bq_push(struct bench *b, struct bench_conn *c)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_queue *q = b->wl;
    struct bq_role *role = c->role;
    struct queue_req r = {.op = QUEUE_OP_PUSH};

    if (cfg->backlog != 0 && q->alive >= cfg->backlog) {
        role->parked++;
        q->parked++;
        return;
    }
    if (q->seq >= q->delivered_cap && !bq_grow(q)) {
        q->nomem++;
        bench_note_error(b, "%s: %s", "PUSH", "out of memory");
        return;
    }
    memcpy(q->job, &b->now, 8);
    memcpy(q->job + 8, &q->seq, 8);
    r.payload.p = q->job;
    r.payload.len = cfg->payload;
    if (bq_send(b, c, &r, cfg->timeout_ms)) {
        q->seq++;
        q->alive++;
    }
}

/* Sends the pushes held back, as far as the backlog has room. */
static void
bq_unpark(struct bench *b)
{
    struct bench_queue *q = b->wl;
    uint32_t i;

    for (i = 0; i < b->cfg->producers && q->parked > 0; i++) {
        struct bench_conn *c = &b->conns[i];
        struct bq_role *role = c->role;
        while (role->parked > 0 && q->alive < b->cfg->backlog) {
            role->parked--;
            q->parked--;
            bq_push(b, c);
        }
    }
}

static void
bq_producer_start(struct bench *b, struct bench_conn *c)
{
    uint32_t s;

    for (s = 0; s < b->cfg->depth; s++) {
        bq_push(b, c);
    }
}

static bool
bq_producer_reply(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done, const struct frame *f)
{
    struct bench_queue *q = b->wl;
    struct queue_reply rep;
    bool good =
        queue_codec_decode_reply(QUEUE_OP_PUSH, f->body, &rep) == FERRY_OK &&
        rep.status == QUEUE_ST_OK && !rep.dup;

    if (good) {
        q->pushes_all++;
        if (bench_is_measuring(b)) {
            q->pushes++;
            hist_record(&q->push_hist, b->now - done->sent_ns);
        }
    } else {
        q->alive--;
    }
    if (bench_is_loading(b)) {
        bq_push(b, c);
    }
    return good;
}

static void
bq_producer_error(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done)
{
    struct bench_queue *q = b->wl;

    (void)done;
    q->alive--;
    if (bench_is_loading(b)) {
        bq_push(b, c);
    }
}

static const struct bench_conn_ops bq_producer_ops = {
    .start = bq_producer_start,
    .reply = bq_producer_reply,
    .error = bq_producer_error,
};

/* ---- consumers ---- */

/* Another RESERVE on c, unless depth are in flight or no slot is free
 * (acks hold them; the next answer tries again). */
static void
bq_reserve(struct bench *b, struct bench_conn *c)
{
    const struct bench_config *cfg = b->cfg;
    struct bq_role *role = c->role;
    struct queue_req r = {.op = QUEUE_OP_RESERVE, .wait_ms = cfg->wait_ms};

    if (role->reserves < cfg->depth &&
        bq_send(b, c, &r, cfg->wait_ms + BQ_RESERVE_SLACK_MS)) {
        role->reserves++;
    }
}

static void
bq_consumer_start(struct bench *b, struct bench_conn *c)
{
    uint32_t s;

    for (s = 0; s < b->cfg->depth; s++) {
        bq_reserve(b, c);
    }
}

static uint64_t
bq_random(struct bench_queue *q)
{
    q->rng ^= q->rng << 13;
    q->rng ^= q->rng >> 7;
    q->rng ^= q->rng << 17;
    return q->rng;
}

/* Answers a job: ack, or by the churn's shares release or bury. */
static void
bq_dispose(struct bench *b, struct bench_conn *c, const struct queue_reply *j)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_queue *q = b->wl;
    struct queue_req r = {.op = QUEUE_OP_ACK, .id = j->id, .token = j->token};
    unsigned pick = (unsigned)(bq_random(q) % 100);

    if (pick >= cfg->churn[0] && pick < cfg->churn[0] + cfg->churn[1]) {
        r.op = QUEUE_OP_RELEASE;
        r.delay_ms = cfg->release_ms;
    } else if (pick >= cfg->churn[0] + cfg->churn[1]) {
        r.op = QUEUE_OP_BURY;
        r.reason = slice_str(BQ_REASON);
    }
    bq_send(b, c, &r, cfg->timeout_ms);
}

/* Whether a job is one this run pushed; records its latency when it is
 * a first delivery in the window. */
static bool
bq_job(struct bench *b, const struct queue_reply *j)
{
    struct bench_queue *q = b->wl;
    const struct bench_config *cfg = b->cfg;
    uint64_t sent, seq;

    if (j->payload.len != cfg->payload) {
        bench_note_error(b, "%s: %s", "RESERVE", "a job of the wrong size");
        return false;
    }
    memcpy(&sent, j->payload.p, 8);
    memcpy(&seq, j->payload.p + 8, 8);
    if (sent < b->t_start || sent > b->now || seq >= q->seq ||
        memcmp(j->payload.p + BQ_STAMP, q->job + BQ_STAMP,
               cfg->payload - BQ_STAMP) != 0) {
        bench_note_error(b, "%s: %s", "RESERVE",
                         "a job this run did not push (use a new queue)");
        return false;
    }
    if (q->delivered[seq / 8] & (1u << (seq % 8))) {
        q->redelivered++;
        return true;
    }
    q->delivered[seq / 8] |= (uint8_t)(1u << (seq % 8));
    q->received_all++;
    if (bench_is_measuring(b)) {
        q->received++;
        hist_record(&q->e2e_hist, b->now - sent);
    }
    return true;
}

/* Prints a progress line every cfg->progress cycles. */
static void
bq_progress(struct bench *b)
{
    struct bench_queue *q = b->wl;
    double secs = (double)(b->now - b->t_start) / (double)NS_PER_S;

    if (b->cfg->progress == 0 || q->cycles < q->next_progress) {
        return;
    }
    q->next_progress += b->cfg->progress;
    printf("cycles=%llu elapsed_s=%.1f cycles_per_s=%.0f pushed=%llu "
           "acked=%llu released=%llu buried=%llu redriven=%llu alive=%llu\n",
           (unsigned long long)q->cycles, secs,
           secs > 0 ? (double)q->cycles / secs : 0.0,
           (unsigned long long)q->pushes_all,
           (unsigned long long)q->consumed_all, (unsigned long long)q->released,
           (unsigned long long)q->buried, (unsigned long long)q->redriven,
           (unsigned long long)q->alive);
    fflush(stdout);
}

/* A job's ack, release or bury was answered OK. */
static void
bq_cycle(struct bench *b)
{
    struct bench_queue *q = b->wl;

    q->cycles++;
    bq_progress(b);
    if (b->cfg->cycles != 0 && q->cycles >= b->cfg->cycles) {
        bench_stop(b);
    }
}

/* Judges a consumer's reply by what it answers; false when wrong. */
static bool
bq_consumer_answer(struct bench *b, struct bench_conn *c,
                   const struct bench_slot *done, const struct queue_reply *rep)
{
    struct bench_queue *q = b->wl;
    bool good;

    switch (done->kind) {
    case QUEUE_OP_RESERVE:
        if (rep->status == QUEUE_ST_EMPTY) {
            q->empty++;
            return true;
        }
        if (rep->status != QUEUE_ST_OK) {
            return false;
        }
        /* Answered even when foreign, so that no job stays reserved. */
        good = bq_job(b, rep);
        if (good) {
            bq_dispose(b, c, rep);
        } else {
            struct queue_req r = {
                .op = QUEUE_OP_ACK, .id = rep->id, .token = rep->token};
            bq_send(b, c, &r, b->cfg->timeout_ms);
        }
        return good;
    case QUEUE_OP_ACK:
        if (rep->status != QUEUE_ST_OK) {
            return false;
        }
        q->consumed_all++;
        q->consumed += bench_is_measuring(b);
        q->alive -= q->alive > 0;
        bq_cycle(b);
        bq_unpark(b);
        return true;
    case QUEUE_OP_RELEASE:
    case QUEUE_OP_BURY:
        if (rep->status != QUEUE_ST_OK) {
            return false;
        }
        if (done->kind == QUEUE_OP_RELEASE) {
            q->released++;
        } else {
            q->buried++;
        }
        bq_cycle(b);
        return true;
    case QUEUE_OP_REDRIVE:
        q->redriven += rep->count;
        return rep->status == QUEUE_ST_OK;
    default:
        return false;
    }
}

/* A consumer's request was answered (or failed): what it held ends. */
static void
bq_consumer_done(struct bench *b, struct bench_conn *c,
                 const struct bench_slot *done)
{
    struct bench_queue *q = b->wl;
    struct bq_role *role = c->role;

    if (done->kind == QUEUE_OP_RESERVE) {
        role->reserves--;
    }
    if (done->kind == QUEUE_OP_REDRIVE) {
        q->redriving = false;
    }
}

static bool
bq_consumer_reply(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done, const struct frame *f)
{
    struct queue_reply rep;
    bool good;

    bq_consumer_done(b, c, done);
    good = queue_codec_decode_reply(done->kind, f->body, &rep) == FERRY_OK &&
           bq_consumer_answer(b, c, done, &rep);
    if (bench_is_loading(b)) {
        bq_reserve(b, c);
    }
    return good;
}

static void
bq_consumer_error(struct bench *b, struct bench_conn *c,
                  const struct bench_slot *done)
{
    bq_consumer_done(b, c, done);
    if (bench_is_loading(b)) {
        bq_reserve(b, c);
    }
}

static const struct bench_conn_ops bq_consumer_ops = {
    .start = bq_consumer_start,
    .reply = bq_consumer_reply,
    .error = bq_consumer_error,
};

/* ---- the workload ---- */

/* Each loop turn: notes the backlog as the window opens and closes, and
 * sends the churn's REDRIVE when its time has come. */
static void
bq_tick(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_queue *q = b->wl;
    struct bench_conn *c = &b->conns[cfg->producers];
    struct queue_req r = {.op = QUEUE_OP_REDRIVE};
    int64_t backlog = (int64_t)q->pushes_all - (int64_t)q->received_all;

    if (b->phase >= PHASE_MEASURE && !(q->seen & 1u << PHASE_MEASURE)) {
        q->seen |= 1u << PHASE_MEASURE;
        q->backlog_start = backlog;
    }
    if (b->phase >= PHASE_DRAIN && !(q->seen & 1u << PHASE_DRAIN)) {
        q->seen |= 1u << PHASE_DRAIN;
        q->backlog = backlog;
    }
    if (cfg->churn[2] == 0 || !bench_is_loading(b) || q->redriving ||
        b->now < q->t_redrive + (uint64_t)cfg->redrive_ms * NS_PER_MS) {
        return;
    }
    if (bq_send(b, c, &r, cfg->timeout_ms)) {
        q->redriving = true;
        q->t_redrive = b->now;
    }
}

static ferry_err
bq_init(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_queue *q = calloc(1, sizeof(*q));
    size_t push_max;
    uint32_t i;

    if (q == NULL) {
        return FERRY_ENOMEM;
    }
    b->wl = q;
    if (cfg->producers == 0 || cfg->producers >= cfg->connections ||
        cfg->payload < BQ_STAMP) {
        return FERRY_EINVALID_ARGUMENT;
    }
    q->key = slice_str(cfg->queue);
    push_max = queue_codec_write_request(
        NULL, &(struct queue_req){.op = QUEUE_OP_PUSH,
                                  .payload = {NULL, cfg->payload}});
    q->roles = calloc(cfg->connections, sizeof(*q->roles));
    q->job = malloc(cfg->payload);
    q->req = malloc(push_max + QUEUE_REASON_MAX + 64);
    if (q->roles == NULL || q->job == NULL || q->req == NULL ||
        hist_init(&q->push_hist, BENCH_HIST_SUB_BITS, 64) != FERRY_OK ||
        hist_init(&q->e2e_hist, BENCH_HIST_SUB_BITS, 64) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    memset(q->job, BQ_PAD, cfg->payload);
    q->rng = 0x9e3779b97f4a7c15ull;
    q->next_progress = cfg->progress;
    b->slots = 2 * cfg->depth + 1;
    b->req_max = frame_request_size(b->service.len, q->key.len, push_max) -
                 FRAME_HEADER_SIZE;
    b->drain_ms = (uint64_t)cfg->wait_ms + BQ_RESERVE_SLACK_MS;
    for (i = 0; i < cfg->connections; i++) {
        bool producer = i < cfg->producers;
        q->roles[i].index = producer ? i : i - cfg->producers;
        b->conns[i].role = &q->roles[i];
        b->conns[i].ops = producer ? &bq_producer_ops : &bq_consumer_ops;
    }
    return FERRY_OK;
}

static void
bq_release(struct bench *b)
{
    struct bench_queue *q = b->wl;

    if (q == NULL) {
        return;
    }
    hist_release(&q->push_hist);
    hist_release(&q->e2e_hist);
    free(q->roles);
    free(q->job);
    free(q->req);
    free(q->delivered);
    free(q);
}

static void
bq_print_latency(const char *name, const struct hist *h)
{
    fprintf(stderr,
            "ferry bench: %s latency us p50=%.1f p90=%.1f p99=%.1f "
            "p999=%.1f max=%.1f count=%llu\n",
            name, hist_percentile(h, 0.50) / 1000.0,
            hist_percentile(h, 0.90) / 1000.0,
            hist_percentile(h, 0.99) / 1000.0,
            hist_percentile(h, 0.999) / 1000.0, (double)h->max / 1000.0,
            (unsigned long long)h->count);
}

/*
 * The line of bench/queue_load.c (so the three compare in one table) on
 * stdout, the details on stderr, then the engine's accounting line.
 */
static int
bq_report(struct bench *b, uint64_t missing)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_queue *q = b->wl;
    double secs = (double)(b->t_end - b->t_measure) / (double)NS_PER_S;
    uint64_t errors = bench_request_errors(b) + b->wrong + missing +
                      b->conn_failures + q->nomem;
    bool failed;

    if (secs <= 0) {
        secs = 1e-9;
    }
    printf("peer=ferry pushes_per_s=%.0f consumed_per_s=%.0f "
           "push_p50_us=%.1f push_p99_us=%.1f e2e_p50_us=%.1f "
           "e2e_p99_us=%.1f e2e_p999_us=%.1f errors=%llu backlog=%lld\n",
           (double)q->pushes / secs, (double)q->consumed / secs,
           hist_percentile(&q->push_hist, 0.50) / 1000.0,
           hist_percentile(&q->push_hist, 0.99) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.50) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.99) / 1000.0,
           hist_percentile(&q->e2e_hist, 0.999) / 1000.0,
           (unsigned long long)errors, (long long)q->backlog);
    fflush(stdout);
    fprintf(stderr,
            "ferry bench: %s queue=%s producers=%u consumers=%u depth=%u "
            "payload=%u wait_ms=%u warmup=%us seconds=%u "
            "churn=%u/%u/%u release_ms=%u redrive_ms=%u backlog_max=%u "
            "cycles_max=%llu\n",
            cfg->addr.text, cfg->queue, cfg->producers,
            cfg->connections - cfg->producers, cfg->depth, cfg->payload,
            cfg->wait_ms, cfg->warmup_s, cfg->seconds, cfg->churn[0],
            cfg->churn[1], cfg->churn[2], cfg->release_ms, cfg->redrive_ms,
            cfg->backlog, (unsigned long long)cfg->cycles);
    fprintf(stderr,
            "ferry bench: window %.3fs pushed=%llu received=%llu "
            "consumed=%llu backlog_start=%lld; all phases pushed=%llu "
            "received=%llu consumed=%llu released=%llu buried=%llu "
            "redriven=%llu redelivered=%llu empty_reserves=%llu "
            "cycles=%llu\n",
            secs, (unsigned long long)q->pushes,
            (unsigned long long)q->received, (unsigned long long)q->consumed,
            (long long)q->backlog_start, (unsigned long long)q->pushes_all,
            (unsigned long long)q->received_all,
            (unsigned long long)q->consumed_all,
            (unsigned long long)q->released, (unsigned long long)q->buried,
            (unsigned long long)q->redriven, (unsigned long long)q->redelivered,
            (unsigned long long)q->empty, (unsigned long long)q->cycles);
    bq_print_latency("push", &q->push_hist);
    bq_print_latency("push-to-consumer", &q->e2e_hist);
    bench_report_errors(b);
    failed = errors > 0 || q->pushes == 0 || q->consumed == 0;
    if (failed) {
        fprintf(stderr, "ferry bench: FAILED\n");
    }
    bench_report_end(b, missing);
    return failed ? CLI_EXIT_FERRY : CLI_EXIT_OK;
}

const struct bench_workload bench_queue_workload = {
    .init = bq_init,
    .tick = bq_tick,
    .report = bq_report,
    .release = bq_release,
};
