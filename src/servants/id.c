/* SPDX-License-Identifier: MIT */
/*
 * id.c - ferry.id (see id.h): the core id_gen and the backend around it.
 *
 * The core. An id's millisecond is max(clock, last id's ms); within one
 * ms the sequence counts up, and when its 12 bits roll over the ids take
 * the next ms (running ahead of the clock for a while, which keeps them
 * strictly increasing). At start last_ms is the persisted mark with the
 * sequence at its top, so the first id lies above the mark whatever the
 * clock says. A clock reading below the latest one seen is the clock
 * stepping back: the core refuses (ID_GEN_BACK) and the service waits.
 *
 * The service. A request that can be answered now is answered inside
 * call(): the reply is written into the caller's output (prepare +
 * commit), no allocation. Otherwise it is held (bcall_hold) in a FIFO of
 * waiters with its count, and "pump" answers waiters front to back
 * whenever something changes: the mark's commit, or the timer armed for
 * a clock that went back (one check per ms of the gap, at most
 * id_clock_wait_ms in all, then OVERLOADED "clock moved back N ms").
 */
#include "servants/id.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/backend.h"
#include "broker/broker.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "servants/id_codec.h"
#include "store/store.h"

#define ID_MARK_KEY "mark"

/* ---------------------------------------------------------------- core */

void
id_gen_init(struct id_gen *g, unsigned node, uint64_t mark, uint64_t now)
{
    memset(g, 0, sizeof(*g));
    g->node = node & ID_NODE_MAX;
    g->last_ms = mark;
    g->seq = ID_SEQ_MAX;
    g->last_now = now;
    g->mark = mark;
}

/* Where the next id goes: its ms and sequence. */
static void
id_gen_start(const struct id_gen *g, uint64_t now, uint64_t *ms, uint32_t *seq)
{
    if (now > g->last_ms) {
        *ms = now;
        *seq = 0;
    } else if (g->seq < ID_SEQ_MAX) {
        *ms = g->last_ms;
        *seq = g->seq + 1;
    } else {
        *ms = g->last_ms + 1;
        *seq = 0;
    }
}

enum id_gen_rc
id_gen_check(const struct id_gen *g, uint64_t now, uint32_t count,
             uint64_t *behind)
{
    uint64_t ms, end;
    uint32_t seq;

    if (now < g->last_now) {
        *behind = g->last_now - now;
        return ID_GEN_BACK;
    }
    id_gen_start(g, now, &ms, &seq);
    end = ms + ((uint64_t)seq + count - 1) / (ID_SEQ_MAX + 1);
    if (end > ID_MS_MAX) {
        return ID_GEN_FULL;
    }
    return end > g->mark ? ID_GEN_MARK : ID_GEN_OK;
}

void
id_gen_fill(struct id_gen *g, uint64_t now, uint32_t count, uint8_t *out)
{
    uint64_t ms;
    uint32_t seq, i;

    id_gen_start(g, now, &ms, &seq);
    for (i = 0; i < count; i++) {
        if (seq > ID_SEQ_MAX) {
            ms++;
            seq = 0;
        }
        id_put_u64(out + 8u * (size_t)i, id_make(ms, g->node, seq));
        seq++;
    }
    g->last_ms = ms;
    g->seq = seq - 1;
    if (now > g->last_now) {
        g->last_now = now;
    }
}

bool
id_gen_wants_mark(const struct id_gen *g, uint64_t now, uint64_t *mark)
{
    uint64_t base = now > g->last_ms ? now : g->last_ms;

    if (base + ID_MARK_RENEW_MS < g->mark) {
        return false;
    }
    *mark = base + ID_MARK_AHEAD_MS;
    return true;
}

void
id_gen_set_mark(struct id_gen *g, uint64_t mark)
{
    if (mark > g->mark) {
        g->mark = mark;
    }
}

/* ------------------------------------------------------------- service */

struct id_waiter {
    uint64_t handle; /* bcall_hold's */
    uint32_t count;  /* ids asked for */
    uint64_t since;  /* loop ms it began waiting for the clock, or 0 */
};

struct id_service {
    struct backend be;       /* registered as ferry.id */
    struct broker *b;        /* borrowed */
    struct loop *loop;       /* borrowed */
    struct store *store;     /* borrowed */
    int table;               /* "id" */
    struct id_gen gen;       /* the core */
    int64_t clock_offset_ms; /* test builds: FERRY_TEST_CLOCK_OFFSET_MS */
    const char *offset_file; /* test builds: FERRY_TEST_CLOCK_OFFSET_FILE
                                (borrowed from the environment) */
    uint32_t clock_wait_ms;  /* id_clock_wait_ms */
    bool mark_busy;          /* a mark is being committed */
    bool closing;            /* closed while a mark was on its way: freed
                                by its callback (store_close runs it) */
    uint64_t mark_pending;   /* the one being committed */
    struct id_waiter *wait;  /* FIFO of held callers, [head, n) */
    size_t wait_head, wait_n, wait_cap;
    struct timer clock_timer;   /* re-checks a clock that went back */
    struct buf out;             /* a held caller's reply, reused */
    uint64_t issued;            /* ids handed out */
    uint64_t requests;          /* NEXT requests answered with ids */
    uint64_t decodes;           /* DECODE requests */
    uint64_t invalid;           /* malformed requests */
    uint64_t held;              /* requests that waited */
    uint64_t clock_back;        /* times a request found the clock back */
    uint64_t clock_back_errors; /* OVERLOADED "clock moved back" */
    bool no_node;               /* clustered with no node id leased now:
                                   NEXT answers UNAVAILABLE */
    uint64_t marks;             /* marks committed */
    uint64_t mark_failures;     /* mark commits that failed */
};

#ifdef FERRY_TESTING
/* Test builds: the offset in the file, read at every clock reading, so a
 * test can step the clock of a running ferryd; 0 when unreadable. */
static int64_t
id_service_file_offset(const char *path)
{
    char text[32];
    size_t n;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        return 0;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return strtoll(text, NULL, 10);
}
#endif

int64_t
id_service_wall_ms(const struct id_service *is)
{
    struct timespec ts;
    int64_t off = is->clock_offset_ms;

#ifdef FERRY_TESTING
    if (is->offset_file != NULL) {
        off += id_service_file_offset(is->offset_file);
    }
#endif
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + off;
}

/* The clock as the core takes it: ms since the epoch, 0 before it. */
static uint64_t
id_service_now(const struct id_service *is)
{
    int64_t ms = id_service_wall_ms(is) - ID_EPOCH_UNIX_MS;

    return ms > 0 ? (uint64_t)ms : 0;
}

static void id_service_pump(struct id_service *is);
static void id_service_free(struct id_service *is);

static void
id_service_mark_done(void *arg, const struct store_result *r)
{
    struct id_service *is = arg;

    is->mark_busy = false;
    if (is->closing) {
        /* The broker has answered every held caller already. */
        id_service_free(is);
        return;
    }
    if (r->status == STORE_COMMITTED) {
        id_gen_set_mark(&is->gen, is->mark_pending);
        is->marks++;
    } else {
        is->mark_failures++;
        log_error("'%s': high-water mark not persisted: %s", ID_SERVICE_NAME,
                  ferry_strerror(r->err));
        /* The waiters for it get the error; later requests try again. */
        while (is->wait_head < is->wait_n) {
            broker_answer_error(is->b, is->wait[is->wait_head++].handle,
                                r->status == STORE_FAILED ? r->err : FERRY_ESYS,
                                "ferry.id: high-water mark not persisted");
        }
    }
    id_service_pump(is);
}

/* Starts the commit of the next mark when one is due and none is on its
 * way. */
static void
id_service_renew(struct id_service *is, uint64_t now)
{
    struct store_batch *batch;
    uint64_t mark;
    uint8_t v[8];

    if (is->mark_busy || !id_gen_wants_mark(&is->gen, now, &mark)) {
        return;
    }
    batch = store_batch_new();
    id_put_u64(v, mark);
    if (batch == NULL ||
        store_batch_put(batch, (unsigned)is->table, ID_MARK_KEY,
                        sizeof(ID_MARK_KEY) - 1, v, sizeof(v)) != FERRY_OK) {
        store_batch_free(batch);
        return; /* tried again on the next request */
    }
    is->mark_busy = true;
    is->mark_pending = mark;
    store_submit(is->store, batch, id_service_mark_done, is);
}

static void
id_service_clock_error(struct id_service *is, uint64_t handle, struct bcall *c,
                       uint64_t behind)
{
    char msg[64];

    is->clock_back_errors++;
    snprintf(msg, sizeof(msg), "clock moved back %llu ms",
             (unsigned long long)behind);
    if (c != NULL) {
        bcall_error(c, FERRY_EOVERLOADED, msg);
    } else {
        broker_answer_error(is->b, handle, FERRY_EOVERLOADED, msg);
    }
}

/* Answers waiters front to back until one must wait on. */
#define ID_NO_NODE_MSG                                                      \
    "this node holds no node id in etcd now (it is fenced or joining): "   \
    "ids could repeat another node's; try again or another node"

void
id_service_set_node(struct id_service *is, int node)
{
    if (node < 0) {
        is->no_node = true;
        return;
    }
    if ((unsigned)node != is->gen.node) {
        log_info("ferry.id: node id %d (leased in etcd), was %u", node,
                 is->gen.node);
    }
    /* The ms and sequence go on: ids with another node id cannot repeat
     * this node's earlier ones. */
    is->gen.node = (unsigned)node;
    is->no_node = false;
}

static void
id_service_pump(struct id_service *is)
{
    uint64_t now, behind, lnow;
    struct id_waiter *w;
    enum id_gen_rc rc;

    while (is->wait_head < is->wait_n) {
        w = &is->wait[is->wait_head];
        if (!broker_is_waiting(is->b, w->handle)) {
            is->wait_head++;
            continue;
        }
        if (is->no_node) {
            broker_answer_error(is->b, w->handle, FERRY_EUNAVAILABLE,
                                ID_NO_NODE_MSG);
            is->wait_head++;
            continue;
        }
        now = id_service_now(is);
        id_service_renew(is, now);
        rc = id_gen_check(&is->gen, now, w->count, &behind);
        if (rc == ID_GEN_MARK) {
            return; /* the commit's callback pumps again */
        }
        if (rc == ID_GEN_BACK) {
            lnow = loop_now(is->loop);
            if (w->since == 0) {
                w->since = lnow == 0 ? 1 : lnow;
                is->clock_back++;
            }
            if (lnow - w->since >= is->clock_wait_ms) {
                id_service_clock_error(is, w->handle, NULL, behind);
                is->wait_head++;
                continue;
            }
            if (behind > is->clock_wait_ms - (lnow - w->since)) {
                behind = is->clock_wait_ms - (lnow - w->since);
            }
            if (loop_timer_start(is->loop, &is->clock_timer, lnow + behind) !=
                FERRY_OK) {
                id_service_clock_error(is, w->handle, NULL, behind);
                is->wait_head++;
                continue;
            }
            return;
        }
        if (rc == ID_GEN_FULL) {
            broker_answer_error(is->b, w->handle, FERRY_EOVERLOADED,
                                "ferry.id: the id space is used up");
            is->wait_head++;
            continue;
        }
        buf_clear(&is->out);
        if (buf_reserve(&is->out, ID_NEXT_REPLY_LEN(w->count)) != FERRY_OK) {
            broker_answer_error(is->b, w->handle, FERRY_ENOMEM, NULL);
            is->wait_head++;
            continue;
        }
        id_encode_next_head(buf_tail(&is->out), w->count);
        id_gen_fill(&is->gen, now, w->count, buf_tail(&is->out) + 5);
        is->issued += w->count;
        is->requests++;
        broker_answer(is->b, w->handle, FERRY_OK, buf_tail(&is->out),
                      ID_NEXT_REPLY_LEN(w->count));
        is->wait_head++;
    }
    is->wait_head = is->wait_n = 0;
}

static void
id_service_tick(struct timer *t)
{
    id_service_pump(container_of(t, struct id_service, clock_timer));
}

/* Holds c in the FIFO. */
static void
id_service_hold(struct id_service *is, struct bcall *c, uint32_t count,
                bool clock_back)
{
    struct id_waiter *w;
    uint64_t handle;
    size_t cap;

    if (is->wait_head > 0 && is->wait_n == is->wait_cap) {
        memmove(is->wait, is->wait + is->wait_head,
                (is->wait_n - is->wait_head) * sizeof(*is->wait));
        is->wait_n -= is->wait_head;
        is->wait_head = 0;
    }
    if (is->wait_n == is->wait_cap) {
        cap = is->wait_cap == 0 ? 64 : is->wait_cap * 2;
        w = realloc(is->wait, cap * sizeof(*w));
        if (w == NULL) {
            bcall_error(c, FERRY_ENOMEM, NULL);
            return;
        }
        is->wait = w;
        is->wait_cap = cap;
    }
    handle = bcall_hold(c);
    if (handle == 0) {
        return;
    }
    w = &is->wait[is->wait_n++];
    w->handle = handle;
    w->count = count;
    w->since = 0;
    if (clock_back) {
        is->clock_back++;
        w->since = loop_now(is->loop);
        if (w->since == 0) {
            w->since = 1;
        }
    }
    is->held++;
}

static void
id_service_call(struct backend *be, struct bcall *c)
{
    struct id_service *is = container_of(be, struct id_service, be);
    char err[ID_CODEC_ERR_SIZE];
    struct id_parts parts;
    uint64_t now, behind;
    enum id_gen_rc rc;
    struct id_req r;
    uint8_t *out;

    if (id_decode_request(c->payload.p, c->payload.len, &r, err, sizeof(err)) !=
        FERRY_OK) {
        is->invalid++;
        bcall_error(c, FERRY_EINVALID_ARGUMENT, err);
        return;
    }
    if (r.op == ID_OP_DECODE) {
        uint8_t rep[ID_DECODE_REPLY_LEN];

        is->decodes++;
        id_split(r.id, &parts);
        id_encode_decode_reply(rep, &parts);
        bcall_reply(c, rep, sizeof(rep));
        return;
    }
    if (is->no_node) {
        bcall_error(c, FERRY_EUNAVAILABLE, ID_NO_NODE_MSG);
        return;
    }
    now = id_service_now(is);
    id_service_renew(is, now);
    if (is->wait_head < is->wait_n) {
        id_service_hold(is, c, r.count, false); /* keep the order */
        return;
    }
    rc = id_gen_check(&is->gen, now, r.count, &behind);
    switch (rc) {
    case ID_GEN_OK:
        out = bcall_reply_prepare(c, ID_NEXT_REPLY_LEN(r.count));
        if (out == NULL) {
            return;
        }
        id_encode_next_head(out, r.count);
        id_gen_fill(&is->gen, now, r.count, out + 5);
        bcall_reply_commit(c);
        is->issued += r.count;
        is->requests++;
        return;
    case ID_GEN_MARK:
        id_service_hold(is, c, r.count, false);
        return;
    case ID_GEN_BACK:
        if (is->clock_wait_ms == 0) {
            is->clock_back++;
            id_service_clock_error(is, 0, c, behind);
            return;
        }
        id_service_hold(is, c, r.count, true);
        id_service_pump(is);
        return;
    case ID_GEN_FULL:
    default:
        bcall_error(c, FERRY_EOVERLOADED, "ferry.id: the id space is used up");
        return;
    }
}

static int
id_service_describe(struct backend *be, const struct service *svc, json_t *obj)
{
    struct id_service *is = container_of(be, struct id_service, be);
    json_t *st = id_service_stats_json(is);

    return st == NULL || json_object_set_new(obj, "id", st) != 0 ? -1 : 0;
}

static const struct backend_ops id_service_ops = {
    .kind = "id",
    .call = id_service_call,
    .cancelled = NULL, /* the pump skips requests no longer waiting */
    .describe = id_service_describe,
};

ferry_err
id_service_open(struct id_service **out, struct broker *b, struct loop *l,
                const struct config *cfg, struct store *st)
{
    struct id_service *is;
    struct store_val v;
    uint64_t mark = 0;
    bool found = false;
    ferry_err err;
    int table;

    table = store_table(st, "id");
    if (table < 0) {
        return FERRY_EINVALID_ARGUMENT;
    }
    err = store_get(st, (unsigned)table, ID_MARK_KEY, sizeof(ID_MARK_KEY) - 1,
                    &v, &found);
    if (err != FERRY_OK) {
        return err;
    }
    if (found) {
        if (v.len != 8) {
            log_error("'%s': the stored mark has %zu bytes, not 8",
                      ID_SERVICE_NAME, v.len);
            return FERRY_ESYS;
        }
        mark = id_get(v.data, 0);
    }
    is = calloc(1, sizeof(*is));
    if (is == NULL) {
        return FERRY_ENOMEM;
    }
    is->be.ops = &id_service_ops;
    is->b = b;
    is->loop = l;
    is->store = st;
    is->table = table;
    is->clock_wait_ms = cfg->id_clock_wait_ms;
#ifdef FERRY_TESTING
    {
        const char *off = getenv("FERRY_TEST_CLOCK_OFFSET_MS");

        if (off != NULL && off[0] != '\0') {
            is->clock_offset_ms = strtoll(off, NULL, 10);
            log_warn("'%s': test build, clock offset %lld ms", ID_SERVICE_NAME,
                     (long long)is->clock_offset_ms);
        }
        off = getenv("FERRY_TEST_CLOCK_OFFSET_FILE");
        if (off != NULL && off[0] != '\0') {
            is->offset_file = off;
            log_warn("'%s': test build, clock offset also from '%s'",
                     ID_SERVICE_NAME, off);
        }
    }
#endif
    buf_init(&is->out);
    timer_init(&is->clock_timer, id_service_tick);
    id_gen_init(&is->gen, cfg->node_id, mark, id_service_now(is));
    err = broker_add_backend(b, ID_SERVICE_NAME, &is->be);
    if (err != FERRY_OK) {
        buf_release(&is->out);
        free(is);
        return err;
    }
    /* The first mark now, so the first caller rarely waits for it. */
    id_service_renew(is, id_service_now(is));
    *out = is;
    return FERRY_OK;
}

void
id_service_close(struct id_service *is)
{
    if (is == NULL) {
        return;
    }
    /* Held callers were answered by the broker when it stopped. */
    loop_timer_stop(is->loop, &is->clock_timer);
    if (is->mark_busy) {
        /* Its batch's callback still points here: store_close runs it. */
        is->closing = true;
        return;
    }
    id_service_free(is);
}

static void
id_service_free(struct id_service *is)
{
    free(is->wait);
    buf_release(&is->out);
    free(is);
}

static int
id_service_set_u64(json_t *obj, const char *key, uint64_t v)
{
    return json_object_set_new(obj, key, json_integer((json_int_t)v));
}

json_t *
id_service_stats_json(const struct id_service *is)
{
    json_t *o = json_object();
    int rc = 0;

    if (o == NULL) {
        return NULL;
    }
    rc |= id_service_set_u64(o, "node_id", is->gen.node);
    rc |= id_service_set_u64(o, "issued", is->issued);
    rc |= id_service_set_u64(o, "requests", is->requests);
    rc |= id_service_set_u64(o, "decodes", is->decodes);
    rc |= id_service_set_u64(o, "invalid", is->invalid);
    rc |= id_service_set_u64(o, "held", is->held);
    rc |= id_service_set_u64(o, "waiting", is->wait_n - is->wait_head);
    rc |= id_service_set_u64(o, "clock_back", is->clock_back);
    rc |= id_service_set_u64(o, "clock_back_errors", is->clock_back_errors);
    rc |= id_service_set_u64(o, "marks", is->marks);
    rc |= id_service_set_u64(o, "mark_failures", is->mark_failures);
    rc |= id_service_set_u64(o, "mark_unix_ms",
                             is->gen.mark + (uint64_t)ID_EPOCH_UNIX_MS);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void
id_service_metrics(const struct id_service *is, FILE *f)
{
    fprintf(f,
            "# HELP ferry_id_issued_total Ids handed out by ferry.id.\n"
            "# TYPE ferry_id_issued_total counter\n"
            "ferry_id_issued_total %llu\n",
            (unsigned long long)is->issued);
    fprintf(f,
            "# HELP ferry_id_clock_back_total Requests of ferry.id that found "
            "the clock moved back.\n"
            "# TYPE ferry_id_clock_back_total counter\n"
            "ferry_id_clock_back_total %llu\n",
            (unsigned long long)is->clock_back);
    fprintf(f,
            "# HELP ferry_id_clock_back_errors_total Requests of ferry.id "
            "refused: the clock stayed behind past id_clock_wait_ms.\n"
            "# TYPE ferry_id_clock_back_errors_total counter\n"
            "ferry_id_clock_back_errors_total %llu\n",
            (unsigned long long)is->clock_back_errors);
}
