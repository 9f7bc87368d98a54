/* SPDX-License-Identifier: MIT */
/*
 * bench_pubsub.c - the fan-out workload of ferry bench (bench_pubsub.h):
 * publishers and subscribers of one subject of ferry.topic
 * (docs/topics.md), through bench.c's engine (its sockets, frames,
 * phases, accounting). bench/pubsub_load.c puts the same load on
 * nats-server.
 *
 * The other cfg->connections - cfg->producers connections are
 * subscribers: each SUBSCRIBEs to the subject (max_pending
 * cfg->max_pending, drop oldest), then keeps one POLL in flight (max_msgs
 * 1000, a wait of cfg->wait_ms, a deadline 5 s past it), every answer
 * sending the next. The first cfg->producers connections are publishers:
 * once every subscription is made, each keeps `depth` PUBLISHes in
 * flight, every answer sending the next. A message's payload opens with
 * the publish's send time (CLOCK_MONOTONIC ns, 8 bytes, this host's
 * order) and a sequence number (8 bytes), padded with 'x', so a
 * subscriber in this same process reads the publish-to-receipt latency
 * off the message.
 *
 * Nothing is lost unseen: a PUBLISH answer says how many subscriptions
 * the message went into (routed), a POLL answer how many were dropped for
 * its subscription (dropped), and the subscribers count what they
 * receive (delivered); what is left is still buffered when the run ends.
 * In the drain, once every PUBLISH is answered (so routed), each
 * subscriber POLLs without waiting until its buffer is empty, then
 * UNSUBSCRIBEs, so that every message routed is accounted
 * for (delivered or dropped) and a run leaves nothing behind in ferryd.
 */
#include "cli/bench_pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "topic/topic_codec.h"

#define BP_STAMP 16           /* send time and sequence number */
#define BP_PAD 'x'            /* the rest of a message */
#define BP_POLL_SLACK_MS 5000 /* a POLL's deadline past its wait */
#define BP_POLL_MSGS 1000     /* max_msgs of each POLL */

/* A connection's part. One per connection, owned by struct bench_pubsub. */
struct bp_role {
    uint32_t index;    /* among its role, for messages */
    uint64_t sub_id;   /* subscriber: its subscription, 0 until made */
    uint64_t last_seq; /* subscriber: the sequence last received, + 1 */
    bool started;      /* publisher: its first publishes were sent */
    bool polling;      /* subscriber: a POLL is in flight */
    bool gone;         /* subscriber: UNSUBSCRIBE sent */
};

/* The workload's state (b->wl). */
struct bench_pubsub {
    struct bp_role *roles;  /* owned: one per connection */
    uint8_t *msg;           /* owned: one message, its padding kept */
    uint8_t *req;           /* owned: one request payload */
    struct slice subject;   /* the subject: every routing key */
    uint32_t subscribers;   /* connections that subscribe */
    uint32_t subscribed;    /* of those, whose SUBSCRIBE was answered */
    uint64_t seq;           /* publishes sent */
    struct hist pub_hist;   /* publish send to reply, window, ns */
    struct hist e2e_hist;   /* publish send to receipt, window, ns */
    uint64_t published;     /* publishes answered in the window */
    uint64_t delivered;     /* messages received in the window */
    uint64_t dropped;       /* dropped told in the window */
    uint64_t published_all; /* publishes answered, all phases */
    uint64_t routed_all;    /* their receivers summed, all phases */
    uint64_t delivered_all; /* messages received, all phases */
    uint64_t dropped_all;   /* dropped told, all phases */
    uint64_t unreached;     /* publishes answered with fewer receivers */
    uint64_t disorder;      /* messages older than one received before */
    uint64_t foreign;       /* messages this run did not publish */
    uint64_t polls_empty;   /* POLLs answered EMPTY */
    uint64_t polls;         /* POLLs answered OK */
};

/* Queues the request r on c in a free slot, routing key key; false when
 * none is free or c failed. */
static bool
bp_send(struct bench *b, struct bench_conn *c, const struct topic_req *r,
        struct slice key, uint32_t timeout_ms)
{
    struct bench_pubsub *p = b->wl;
    struct bench_slot *slot = bench_slot_get(b, c);
    struct slice payload = {p->req, 0};

    if (slot == NULL) {
        return false;
    }
    payload.len = topic_codec_write_request(p->req, r);
    return bench_request(b, c, slot, r->op, key, payload, timeout_ms);
}

/* ---- publishers ---- */

static void
bp_publish(struct bench *b, struct bench_conn *c)
{
    struct bench_pubsub *p = b->wl;
    struct topic_req r = {.op = TOPIC_OP_PUBLISH};

    memcpy(p->msg, &b->now, 8);
    memcpy(p->msg + 8, &p->seq, 8);
    r.message.p = p->msg;
    r.message.len = b->cfg->payload;
    if (bp_send(b, c, &r, p->subject, b->cfg->timeout_ms)) {
        p->seq++;
    }
}

/* Starts the publishers once every subscription is made (else the first
 * messages would reach only some subscribers). */
static void
bp_publishers_start(struct bench *b)
{
    struct bench_pubsub *p = b->wl;
    uint32_t i, s;

    if (p->subscribed < p->subscribers || !bench_is_loading(b)) {
        return;
    }
    for (i = 0; i < b->cfg->producers; i++) {
        struct bench_conn *c = &b->conns[i];
        struct bp_role *role = c->role;
        if (role->started) {
            continue;
        }
        role->started = true;
        for (s = 0; s < b->cfg->depth; s++) {
            bp_publish(b, c);
        }
    }
}

static void
bp_publisher_start(struct bench *b, struct bench_conn *c)
{
    (void)c;
    bp_publishers_start(b);
}

static bool
bp_publisher_reply(struct bench *b, struct bench_conn *c,
                   const struct bench_slot *done, const struct frame *f)
{
    struct bench_pubsub *p = b->wl;
    struct topic_reply rep;
    bool good =
        topic_codec_decode_reply(TOPIC_OP_PUBLISH, f->body, &rep) == FERRY_OK &&
        rep.status == TOPIC_ST_OK;

    if (good) {
        p->published_all++;
        p->routed_all += rep.receivers;
        p->unreached += rep.receivers < p->subscribers;
        if (bench_is_measuring(b)) {
            p->published++;
            hist_record(&p->pub_hist, b->now - done->sent_ns);
        }
    }
    if (bench_is_loading(b)) {
        bp_publish(b, c);
    }
    return good;
}

static void
bp_publisher_error(struct bench *b, struct bench_conn *c,
                   const struct bench_slot *done)
{
    (void)done;
    if (bench_is_loading(b)) {
        bp_publish(b, c);
    }
}

static const struct bench_conn_ops bp_publisher_ops = {
    .start = bp_publisher_start,
    .reply = bp_publisher_reply,
    .error = bp_publisher_error,
};

/* ---- subscribers ---- */

/* Whether a PUBLISH is still unanswered: its message may be routed yet. */
static bool
bp_is_publishing(const struct bench *b)
{
    uint32_t i;

    for (i = 0; i < b->cfg->producers; i++) {
        if (b->conns[i].in_flight > 0) {
            return true;
        }
    }
    return false;
}

/* The next POLL of c while the load is on. In the drain, once every
 * PUBLISH is answered, POLLs that do not wait take what is left
 * buffered, until one answers EMPTY (drained): then its UNSUBSCRIBE,
 * once. */
static void
bp_poll(struct bench *b, struct bench_conn *c, bool drained)
{
    struct bp_role *role = c->role;
    struct topic_req r = {.sub_id = role->sub_id};
    struct slice none = {NULL, 0};
    bool settled = !bench_is_loading(b) && !bp_is_publishing(b);

    if (role->sub_id == 0 || role->polling || role->gone) {
        return;
    }
    if (settled && drained) {
        r.op = TOPIC_OP_UNSUBSCRIBE;
        role->gone = bp_send(b, c, &r, none, b->cfg->timeout_ms);
        return;
    }
    r.op = TOPIC_OP_POLL;
    r.wait_ms = settled ? 0 : b->cfg->wait_ms;
    r.max_msgs = BP_POLL_MSGS;
    role->polling = bp_send(b, c, &r, none, b->cfg->wait_ms + BP_POLL_SLACK_MS);
}

static void
bp_subscriber_start(struct bench *b, struct bench_conn *c)
{
    struct bench_pubsub *p = b->wl;
    struct topic_req r = {.op = TOPIC_OP_SUBSCRIBE,
                          .max_pending = b->cfg->max_pending,
                          .policy = TOPIC_POLICY_DROP_OLDEST};

    bp_send(b, c, &r, p->subject, b->cfg->timeout_ms);
}

/* Takes the messages of a POLL answer; false when one is malformed or
 * not of this run. */
static bool
bp_messages(struct bench *b, struct bench_conn *c,
            const struct topic_reply *rep)
{
    struct bench_pubsub *p = b->wl;
    struct bp_role *role = c->role;
    struct slice rest = rep->messages;
    struct topic_msg_entry e;
    uint64_t sent, seq;
    bool good = true;
    uint32_t i;

    for (i = 0; i < rep->n; i++) {
        if (!topic_codec_next_msg(&rest, &e)) {
            return false;
        }
        if (e.payload.len != b->cfg->payload) {
            p->foreign++;
            good = false;
            continue;
        }
        memcpy(&sent, e.payload.p, 8);
        memcpy(&seq, e.payload.p + 8, 8);
        if (sent < b->t_start || sent > b->now || seq >= p->seq ||
            memcmp(e.payload.p + BP_STAMP, p->msg + BP_STAMP,
                   b->cfg->payload - BP_STAMP) != 0) {
            p->foreign++;
            good = false;
            continue;
        }
        /* One publisher's messages keep their order; several interleave. */
        if (b->cfg->producers == 1 && seq + 1 <= role->last_seq) {
            p->disorder++;
            good = false;
        }
        role->last_seq = seq + 1;
        p->delivered_all++;
        if (bench_is_measuring(b)) {
            p->delivered++;
            hist_record(&p->e2e_hist, b->now - sent);
        }
    }
    if (!good) {
        bench_note_error(b, "%s: %s", "POLL",
                         "a message this run did not publish, or out of "
                         "order (use a new subject)");
    }
    return good;
}

/* Judges a subscriber's reply by what it answers; false when wrong. */
static bool
bp_subscriber_answer(struct bench *b, struct bench_conn *c,
                     const struct bench_slot *done,
                     const struct topic_reply *rep)
{
    struct bench_pubsub *p = b->wl;
    struct bp_role *role = c->role;

    switch (done->kind) {
    case TOPIC_OP_SUBSCRIBE:
        if (rep->status != TOPIC_ST_OK || rep->sub_id == 0) {
            return false;
        }
        role->sub_id = rep->sub_id;
        p->subscribed++;
        bp_publishers_start(b);
        return true;
    case TOPIC_OP_POLL:
        if (rep->status != TOPIC_ST_OK && rep->status != TOPIC_ST_EMPTY) {
            return false;
        }
        p->dropped_all += rep->dropped;
        if (bench_is_measuring(b)) {
            p->dropped += rep->dropped;
        }
        if (rep->status == TOPIC_ST_EMPTY) {
            p->polls_empty++;
            return true;
        }
        p->polls++;
        return bp_messages(b, c, rep);
    case TOPIC_OP_UNSUBSCRIBE:
        return rep->status == TOPIC_ST_OK;
    default:
        return false;
    }
}

static bool
bp_subscriber_reply(struct bench *b, struct bench_conn *c,
                    const struct bench_slot *done, const struct frame *f)
{
    struct bp_role *role = c->role;
    struct topic_reply rep;
    bool good;

    if (done->kind == TOPIC_OP_POLL) {
        role->polling = false;
    }
    good = topic_codec_decode_reply(done->kind, f->body, &rep) == FERRY_OK &&
           bp_subscriber_answer(b, c, done, &rep);
    bp_poll(b, c, !good || rep.status != TOPIC_ST_OK);
    return good;
}

static void
bp_subscriber_error(struct bench *b, struct bench_conn *c,
                    const struct bench_slot *done)
{
    struct bp_role *role = c->role;

    if (done->kind == TOPIC_OP_POLL) {
        role->polling = false;
    }
    bp_poll(b, c, true);
}

static const struct bench_conn_ops bp_subscriber_ops = {
    .start = bp_subscriber_start,
    .reply = bp_subscriber_reply,
    .error = bp_subscriber_error,
};

/* ---- the workload ---- */

static ferry_err
bp_init(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_pubsub *p = calloc(1, sizeof(*p));
    size_t pub_max;
    uint32_t i;

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    b->wl = p;
    if (cfg->producers == 0 || cfg->producers >= cfg->connections ||
        cfg->payload < BP_STAMP) {
        return FERRY_EINVALID_ARGUMENT;
    }
    p->subject = slice_str(cfg->subject);
    p->subscribers = cfg->connections - cfg->producers;
    pub_max = topic_codec_write_request(
        NULL, &(struct topic_req){.op = TOPIC_OP_PUBLISH,
                                  .message = {NULL, cfg->payload}});
    p->roles = calloc(cfg->connections, sizeof(*p->roles));
    p->msg = malloc(cfg->payload);
    p->req = malloc(pub_max + 64);
    if (p->roles == NULL || p->msg == NULL || p->req == NULL ||
        hist_init(&p->pub_hist, BENCH_HIST_SUB_BITS, 64) != FERRY_OK ||
        hist_init(&p->e2e_hist, BENCH_HIST_SUB_BITS, 64) != FERRY_OK) {
        return FERRY_ENOMEM;
    }
    memset(p->msg, BP_PAD, cfg->payload);
    /* Publishers keep depth in flight; a subscriber has a SUBSCRIBE or a
     * POLL or an UNSUBSCRIBE out, and a POLL beside its SUBSCRIBE. */
    b->slots = cfg->depth > 2 ? cfg->depth : 2;
    b->req_max = frame_request_size(b->service.len, p->subject.len, pub_max) -
                 FRAME_HEADER_SIZE;
    b->drain_ms = (uint64_t)cfg->wait_ms + BP_POLL_SLACK_MS;
    for (i = 0; i < cfg->connections; i++) {
        bool publisher = i < cfg->producers;
        p->roles[i].index = publisher ? i : i - cfg->producers;
        b->conns[i].role = &p->roles[i];
        b->conns[i].ops = publisher ? &bp_publisher_ops : &bp_subscriber_ops;
    }
    return FERRY_OK;
}

static void
bp_release(struct bench *b)
{
    struct bench_pubsub *p = b->wl;

    if (p == NULL) {
        return;
    }
    hist_release(&p->pub_hist);
    hist_release(&p->e2e_hist);
    free(p->roles);
    free(p->msg);
    free(p->req);
    free(p);
}

static void
bp_print_latency(const char *name, const struct hist *h)
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
 * The line of bench/pubsub_load.c (so ferry and NATS compare in one
 * table) on stdout, the details on stderr, then the engine's accounting
 * line. Its dropped is of the whole run, warm-up and drain included, as
 * NATS's can only be (what was published and never received).
 */
static int
bp_report(struct bench *b, uint64_t missing)
{
    const struct bench_config *cfg = b->cfg;
    struct bench_pubsub *p = b->wl;
    double secs = (double)(b->t_end - b->t_measure) / (double)NS_PER_S;
    uint64_t errors =
        bench_request_errors(b) + b->wrong + missing + b->conn_failures;
    uint64_t accounted = p->delivered_all + p->dropped_all;
    bool failed;

    if (secs <= 0) {
        secs = 1e-9;
    }
    printf("peer=ferry published_per_s=%.0f delivered_per_s=%.0f "
           "dropped=%llu e2e_p50_us=%.1f e2e_p99_us=%.1f e2e_p999_us=%.1f "
           "errors=%llu\n",
           (double)p->published / secs, (double)p->delivered / secs,
           (unsigned long long)p->dropped_all,
           hist_percentile(&p->e2e_hist, 0.50) / 1000.0,
           hist_percentile(&p->e2e_hist, 0.99) / 1000.0,
           hist_percentile(&p->e2e_hist, 0.999) / 1000.0,
           (unsigned long long)errors);
    fflush(stdout);
    fprintf(stderr,
            "ferry bench: %s subject=%s publishers=%u subscribers=%u "
            "depth=%u payload=%u wait_ms=%u max_pending=%u warmup=%us "
            "seconds=%u\n",
            cfg->addr.text, cfg->subject, cfg->producers, p->subscribers,
            cfg->depth, cfg->payload, cfg->wait_ms, cfg->max_pending,
            cfg->warmup_s, cfg->seconds);
    fprintf(stderr,
            "ferry bench: window %.3fs published=%llu delivered=%llu "
            "dropped=%llu; all phases published=%llu routed=%llu "
            "delivered=%llu dropped=%llu left_buffered=%llu "
            "unreached=%llu polls=%llu polls_empty=%llu foreign=%llu "
            "disorder=%llu\n",
            secs, (unsigned long long)p->published,
            (unsigned long long)p->delivered, (unsigned long long)p->dropped,
            (unsigned long long)p->published_all,
            (unsigned long long)p->routed_all,
            (unsigned long long)p->delivered_all,
            (unsigned long long)p->dropped_all,
            (unsigned long long)(p->routed_all > accounted
                                     ? p->routed_all - accounted
                                     : 0),
            (unsigned long long)p->unreached, (unsigned long long)p->polls,
            (unsigned long long)p->polls_empty, (unsigned long long)p->foreign,
            (unsigned long long)p->disorder);
    bp_print_latency("publish", &p->pub_hist);
    bp_print_latency("publish-to-receipt", &p->e2e_hist);
    bench_report_errors(b);
    failed = errors > 0 || p->published == 0 || p->delivered == 0;
    if (failed) {
        fprintf(stderr, "ferry bench: FAILED\n");
    }
    bench_report_end(b, missing);
    return failed ? CLI_EXIT_FERRY : CLI_EXIT_OK;
}

const struct bench_workload bench_pubsub_workload = {
    .init = bp_init,
    .report = bp_report,
    .release = bp_release,
};
