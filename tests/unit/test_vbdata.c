/* SPDX-License-Identifier: MIT */
/*
 * test_vbdata.c - a vbucket handover between two real stores
 * (servants/vbdata.h): two nodes (config, loop, broker and every servant
 * on LMDB files in a temp folder) in one process, the source filled with
 * kv keys and queues in many vbuckets (jobs ready, delayed, reserved and
 * dead, a dedup id, a value larger than a chunk), vbucket X exported in
 * small chunks and imported into the target, checked through ferry.kv
 * and ferry.queue calls on both; broken chunks refused with nothing
 * applied; a job id the target holds refused; then X dropped on the
 * source with the other vbuckets intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/icall.h"
#include "cluster/vbmap.h"
#include "core/be.h"
#include "core/config.h"
#include "core/loop.h"
#include "queue/queue_codec.h"
#include "servants/servants.h"
#include "servants/vbdata.h"
#include "servants/vbdata_codec.h"

struct node {
    struct config cfg;
    struct loop loop;
    struct broker b;
    struct servants sv;
};

struct fx {
    char dir[64];
    struct node a, b;
};

/* One call's answer. */
struct ans {
    struct icall ic;
    int n;
    ferry_err err;
    uint8_t *data; /* owned */
    size_t len;
};

static void
ans_cb(struct icall *ic, ferry_err err, const void *data, size_t len)
{
    struct ans *a = container_of(ic, struct ans, ic);

    a->n++;
    a->err = err;
    a->data = malloc(len + 1);
    assert_non_null(a->data);
    memcpy(a->data, data, len);
    a->data[len] = 0;
    a->len = len;
}

static void
run_until(struct fx *f, const int *n, int want)
{
    for (int i = 0; *n < want && i < 20000; i++) {
        uv_run(&f->a.loop.uv, UV_RUN_NOWAIT);
        uv_run(&f->b.loop.uv, UV_RUN_NOWAIT);
        if (*n < want) {
            usleep(200);
        }
    }
    assert_true(*n >= want);
}

static void
node_open(struct node *nd, const char *dir)
{
    assert_int_equal(config_init(&nd->cfg), FERRY_OK);
    free(nd->cfg.data_dir);
    nd->cfg.data_dir = strdup(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    nd->cfg.store_sync_ms = 1000;
    nd->cfg.store_max_bytes = UINT64_C(256) << 20;
    assert_int_equal(loop_init(&nd->loop, &nd->cfg), FERRY_OK);
    assert_int_equal(broker_init(&nd->b, &nd->loop), FERRY_OK);
    assert_int_equal(servants_open(&nd->sv, &nd->b), FERRY_OK);
}

static void
node_close(struct node *nd)
{
    servants_close(&nd->sv);
    uv_run(&nd->loop.uv, UV_RUN_NOWAIT);
    broker_release(&nd->b);
    uv_run(&nd->loop.uv, UV_RUN_NOWAIT);
    loop_release(&nd->loop);
    config_release(&nd->cfg);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char d[96];

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vbdata.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(d, sizeof(d), "%s/a", f->dir);
    node_open(&f->a, d);
    snprintf(d, sizeof(d), "%s/b", f->dir);
    node_open(&f->b, d);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    node_close(&f->a);
    node_close(&f->b);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A call of svc on nd; the answer's payload (owned) in *a. */
static void
call(struct fx *f, struct node *nd, struct ans *a, const char *svc,
     struct slice key, const void *payload, size_t len)
{
    memset(a, 0, sizeof(*a));
    icall_submit(&nd->b, &a->ic, slice_str(svc), key,
                 (struct slice){payload, len}, 30000, 0, ans_cb);
    run_until(f, &a->n, 1);
}

static void
ans_free(struct ans *a)
{
    free(a->data);
    a->data = NULL;
}

/* ---- ferry.kv ---- */

static uint64_t
kv_put(struct fx *f, struct node *nd, const char *key, const void *val,
       size_t vlen, uint8_t cond, uint64_t rev, uint8_t want_status)
{
    uint8_t *p = malloc(10 + vlen);
    struct ans a;
    uint64_t got;

    p[0] = 2;
    p[1] = cond;
    be_put_u64(p + 2, rev);
    memcpy(p + 10, val, vlen);
    call(f, nd, &a, "ferry.kv", slice_str(key), p, 10 + vlen);
    free(p);
    assert_int_equal(a.err, FERRY_OK);
    assert_int_equal(a.len, 9);
    assert_int_equal(a.data[0], want_status);
    got = be_get_u64(a.data + 1);
    ans_free(&a);
    return got;
}

/* GET: the reply (owned) in *a. */
static void
kv_get(struct fx *f, struct node *nd, const char *key, struct ans *a)
{
    uint8_t op = 1;

    call(f, nd, a, "ferry.kv", slice_str(key), &op, 1);
    assert_int_equal(a->err, FERRY_OK);
}

/* ---- ferry.queue ---- */

static void
q_call(struct fx *f, struct node *nd, struct ans *a, const char *q,
       const struct queue_req *r)
{
    size_t n = queue_codec_write_request(NULL, r);
    uint8_t *p = malloc(n);

    queue_codec_write_request(p, r);
    call(f, nd, a, "ferry.queue", slice_str(q), p, n);
    free(p);
    assert_int_equal(a->err, FERRY_OK);
}

static uint64_t
q_push(struct fx *f, struct node *nd, const char *q, const char *payload,
       uint32_t delay_ms, const char *dedup, bool *dup)
{
    struct queue_req r = {.op = QUEUE_OP_PUSH, .delay_ms = delay_ms};
    struct queue_reply rep;
    struct ans a;
    uint64_t id;

    r.payload = slice_str(payload);
    r.dedup = dedup != NULL ? slice_str(dedup) : (struct slice){NULL, 0};
    q_call(f, nd, &a, q, &r);
    assert_int_equal(queue_codec_decode_reply(QUEUE_OP_PUSH,
                                              (struct slice){a.data, a.len},
                                              &rep),
                     FERRY_OK);
    assert_int_equal(rep.status, QUEUE_ST_OK);
    id = rep.id;
    if (dup != NULL) {
        *dup = rep.dup;
    }
    ans_free(&a);
    return id;
}

static void
q_reserve(struct fx *f, struct node *nd, const char *q, uint64_t *id,
          uint64_t *token)
{
    struct queue_req r = {.op = QUEUE_OP_RESERVE, .visibility_ms = 600000};
    struct queue_reply rep;
    struct ans a;

    q_call(f, nd, &a, q, &r);
    assert_int_equal(queue_codec_decode_reply(QUEUE_OP_RESERVE,
                                              (struct slice){a.data, a.len},
                                              &rep),
                     FERRY_OK);
    assert_int_equal(rep.status, QUEUE_ST_OK);
    *id = rep.id;
    *token = rep.token;
    ans_free(&a);
}

/* ACK, BURY: the status. */
static uint8_t
q_job_op(struct fx *f, struct node *nd, const char *q, uint8_t op, uint64_t id,
         uint64_t token)
{
    struct queue_req r = {.op = op, .id = id, .token = token};
    struct ans a;
    uint8_t st;

    r.reason = slice_str(op == QUEUE_OP_BURY ? "bad job" : "");
    q_call(f, nd, &a, q, &r);
    assert_true(a.len >= 1);
    st = a.data[0];
    ans_free(&a);
    return st;
}

/* PEEK which: the entries without their ages, as text. */
static char *
q_peek(struct fx *f, struct node *nd, const char *q, uint8_t which)
{
    struct queue_req r = {.op = QUEUE_OP_PEEK, .which = which, .limit = 100};
    struct queue_reply rep;
    struct queue_peek_entry e;
    struct slice rest;
    struct ans a;
    char *out = calloc(1, 65536);
    size_t off = 0;

    q_call(f, nd, &a, q, &r);
    assert_int_equal(queue_codec_decode_reply(QUEUE_OP_PEEK,
                                              (struct slice){a.data, a.len},
                                              &rep),
                     FERRY_OK);
    rest = rep.entries;
    for (uint32_t i = 0; i < rep.n; i++) {
        assert_true(queue_codec_next_peek_entry(&rest, &e));
        off += (size_t)snprintf(out + off, 65536 - off,
                                "%llu/%u/%d/%u/%.*s/%.*s;",
                                (unsigned long long)e.id, e.attempts,
                                e.priority, e.state, (int)e.reason.len,
                                (const char *)e.reason.p, (int)e.payload.len,
                                (const char *)e.payload.p);
    }
    ans_free(&a);
    return out;
}

/* STATS of q: a few of its fields as text. */
static char *
q_stats(struct fx *f, struct node *nd, const char *q)
{
    struct queue_req r = {.op = QUEUE_OP_STATS};
    static const char *const keys[] = {"ready",  "delayed", "reserved",
                                       "dead",   "pushes",  "buries",
                                       "reserves", "dedup_hits"};
    struct ans a;
    json_t *o, *set;
    char *out = calloc(1, 4096), *s;
    size_t off = 0;

    q_call(f, nd, &a, q, &r);
    assert_int_equal(a.data[0], QUEUE_ST_OK);
    o = json_loadb((const char *)a.data + 1, a.len - 1, 0, NULL);
    assert_non_null(o);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        off += (size_t)snprintf(
            out + off, 4096 - off, "%s=%lld ", keys[i],
            (long long)json_integer_value(json_object_get(o, keys[i])));
    }
    set = json_object_get(o, "settings");
    s = json_dumps(set, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out + off, 4096 - off, "%s", s);
    free(s);
    json_decref(o);
    ans_free(&a);
    return out;
}

/* ---- handover ---- */

struct done {
    int n;
    ferry_err err;
    char msg[256];
};

static void
done_cb(void *ud, ferry_err err, const char *msg)
{
    struct done *d = ud;

    d->n++;
    d->err = err;
    snprintf(d->msg, sizeof(d->msg), "%s", msg != NULL ? msg : "");
}

static ferry_err
import(struct fx *f, struct node *nd, uint16_t vb, const void *chunk,
       size_t len, char *msg)
{
    struct done d = {0};

    vbdata_import(&nd->sv, vb, chunk, len, done_cb, &d);
    run_until(f, &d.n, 1);
    assert_int_equal(d.n, 1);
    if (msg != NULL) {
        snprintf(msg, 256, "%s", d.msg);
    }
    return d.err;
}

static struct vbdata_count
count(struct node *nd, uint16_t vb)
{
    struct vbdata_count c;

    assert_int_equal(vbdata_count(&nd->sv, vb, &c), FERRY_OK);
    return c;
}

/* A name with a prefix in vb (or, want_vb false, not in it). */
static void
name_in(char *out, size_t cap, const char *prefix, uint16_t vb, bool in,
        int *seq)
{
    for (;;) {
        snprintf(out, cap, "%s%d", prefix, (*seq)++);
        if ((vb_of_key(out, strlen(out)) == vb) == in) {
            return;
        }
    }
}

#define MAX_CHUNKS 256

static void
test_handover(void **state)
{
    struct fx *f = *state;
    const char *Q = "orders";
    uint16_t X = vb_of_key(Q, strlen(Q));
    char xkeys[6][32], okeys[20][32], oq[4][32], bq[32], msg[256];
    static uint8_t big[300 * 1024];
    struct buf chunks[MAX_CHUNKS];
    size_t n_chunks = 0, first_job_chunk = SIZE_MAX;
    struct vbdata_cursor cur;
    uint64_t ids[8], res_id, res_token, dead_id, dead_token, dedup_id;
    uint64_t max_a_id = 0, a_rev, x_mod_rev;
    struct vbdata_count ca, cb, cb_other_before;
    bool done = false, dup = false;
    int seq = 0;
    struct ans a1, a2;
    uint16_t bvb;

    /* Source: kv keys in X and elsewhere, one of them larger than a
     * chunk. */
    for (int i = 0; i < 6; i++) {
        name_in(xkeys[i], sizeof(xkeys[i]), "user:", X, true, &seq);
        kv_put(f, &f->a, xkeys[i], xkeys[i], strlen(xkeys[i]), 0, 0, 0);
    }
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7);
    }
    kv_put(f, &f->a, xkeys[5], big, sizeof(big), 0, 0, 0);
    for (int i = 0; i < 20; i++) {
        name_in(okeys[i], sizeof(okeys[i]), "other:", X, false, &seq);
        kv_put(f, &f->a, okeys[i], "o", 1, 0, 0, 0);
    }
    x_mod_rev = kv_put(f, &f->a, xkeys[0], "v2", 2, 0, 0, 0);
    a_rev = kv_put(f, &f->a, okeys[0], "last", 4, 0, 0, 0);

    /* Queues of other vbuckets, then Q's jobs in every state. */
    for (int i = 0; i < 4; i++) {
        name_in(oq[i], sizeof(oq[i]), "jobs-", X, false, &seq);
        (void)q_push(f, &f->a, oq[i], "elsewhere", 0, NULL, NULL);
    }
    for (int i = 0; i < 8; i++) {
        char p[16];
        snprintf(p, sizeof(p), "job%d", i);
        ids[i] = q_push(f, &f->a, Q, p, i == 7 ? 600000 : 0,
                        i == 0 ? "dd-1" : NULL, NULL);
        max_a_id = ids[i] > max_a_id ? ids[i] : max_a_id;
    }
    dedup_id = ids[0];
    q_reserve(f, &f->a, Q, &res_id, &res_token);
    q_reserve(f, &f->a, Q, &dead_id, &dead_token);
    assert_int_equal(q_job_op(f, &f->a, Q, QUEUE_OP_BURY, dead_id, dead_token),
                     QUEUE_ST_OK);
    {
        /* Settings of its own travel too. */
        struct queue_req r = {.op = QUEUE_OP_CONFIGURE};
        struct ans a;
        r.settings = slice_str("{\"max_deliveries\": 5, \"backoff_ms\": [10]}");
        q_call(f, &f->a, &a, Q, &r);
        ans_free(&a);
    }

    /* Target: its own kv and a queue whose job ids cover the source's. */
    name_in(bq, sizeof(bq), "local-", X, false, &seq);
    bvb = vb_of_key(bq, strlen(bq));
    kv_put(f, &f->b, okeys[1], "b", 1, 0, 0, 0);
    for (uint64_t i = 0; i <= max_a_id; i++) {
        (void)q_push(f, &f->b, bq, "mine", 0, NULL, NULL);
    }
    cb_other_before = count(&f->b, bvb);
    assert_int_equal(count(&f->b, X).records, 0);

    /* Export X in small chunks. */
    vbdata_cursor_init(&cur);
    while (!done) {
        struct vbdata_reader r;
        struct vbdata_rec rec;
        bool end = false;

        assert_true(n_chunks < MAX_CHUNKS);
        buf_init(&chunks[n_chunks]);
        assert_int_equal(vbdata_export_next(&f->a.sv, X, &cur,
                                            &chunks[n_chunks], 512, &done),
                         FERRY_OK);
        assert_int_equal(vbdata_reader_init(&r, buf_head(&chunks[n_chunks]),
                                            buf_len(&chunks[n_chunks]), msg),
                         FERRY_OK);
        /* Bounded, but for a record alone that is larger. */
        if (r.n > 1) {
            assert_true(buf_len(&chunks[n_chunks]) <= 512);
        }
        while (vbdata_reader_next(&r, &rec, &end, msg) == FERRY_OK && !end) {
            if (rec.type == VBDATA_JOB && first_job_chunk == SIZE_MAX) {
                first_job_chunk = n_chunks;
            }
        }
        assert_true(end);
        n_chunks++;
    }
    ca = count(&f->a, X);
    /* 6 keys, Q's name record, 8 jobs (one dead in Q.dead), a dedup id. */
    assert_int_equal(ca.records, 6 + 1 + 8 + 1);
    assert_int_equal(cur.records, ca.records);
    assert_true(n_chunks >= 4);
    assert_true(first_job_chunk != SIZE_MAX);

    /* Broken chunks: refused, nothing applied. */
    {
        struct buf *c0 = &chunks[0];
        uint8_t *copy = malloc(buf_len(c0));
        struct buf bad;
        size_t head;
        char other[32];

        assert_int_equal(import(f, &f->b, X, buf_head(c0), buf_len(c0) - 1,
                                msg),
                         FERRY_EPROTO);
        assert_int_equal(import(f, &f->b, (uint16_t)((X + 1) % VB_COUNT),
                                buf_head(c0), buf_len(c0), msg),
                         FERRY_EINVALID_ARGUMENT);
        memcpy(copy, buf_head(c0), buf_len(c0));
        copy[4] = 2; /* version */
        assert_int_equal(import(f, &f->b, X, copy, buf_len(c0), msg),
                         FERRY_EPROTO);
        free(copy);
        /* A good record of X, then one of another vbucket. */
        buf_init(&bad);
        assert_int_equal(vbdata_write_head(&bad, X, &head), FERRY_OK);
        assert_int_equal(vbdata_write_kv(&bad, head, slice_str(xkeys[1]),
                                         (struct slice){buf_head(c0) + 100, 0}),
                         FERRY_OK);
        buf_clear(&bad);
        assert_int_equal(vbdata_write_head(&bad, X, &head), FERRY_OK);
        {
            uint8_t stored[24 + 1] = {0};
            be_put_u64(stored, 1);
            be_put_u64(stored + 8, 1);
            be_put_u64(stored + 16, 1);
            assert_int_equal(vbdata_write_kv(&bad, head, slice_str(xkeys[1]),
                                             (struct slice){stored, 25}),
                             FERRY_OK);
            name_in(other, sizeof(other), "zz", X, false, &seq);
            assert_int_equal(vbdata_write_kv(&bad, head, slice_str(other),
                                             (struct slice){stored, 25}),
                             FERRY_OK);
        }
        assert_int_equal(import(f, &f->b, X, buf_head(&bad), buf_len(&bad),
                                msg),
                         FERRY_EPROTO);
        assert_non_null(strstr(msg, "vbucket"));
        buf_release(&bad);
        assert_int_equal(count(&f->b, X).records, 0);
    }

    /* The chunks before the first job's, then that one refused: the
     * target holds jobs of the same ids. */
    for (size_t i = 0; i < first_job_chunk; i++) {
        assert_int_equal(import(f, &f->b, X, buf_head(&chunks[i]),
                                buf_len(&chunks[i]), msg),
                         FERRY_OK);
    }
    cb = count(&f->b, X);
    assert_int_equal(import(f, &f->b, X, buf_head(&chunks[first_job_chunk]),
                            buf_len(&chunks[first_job_chunk]), msg),
                     FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(msg, "holds a job of that id"));
    assert_int_equal(count(&f->b, X).records, cb.records);
    {
        struct queue_req r = {.op = QUEUE_OP_PURGE};
        struct ans a;
        q_call(f, &f->b, &a, bq, &r);
        ans_free(&a);
    }
    for (size_t i = first_job_chunk; i < n_chunks; i++) {
        assert_int_equal(import(f, &f->b, X, buf_head(&chunks[i]),
                                buf_len(&chunks[i]), msg),
                         FERRY_OK);
    }
    cb = count(&f->b, X);
    assert_int_equal(cb.records, ca.records);
    assert_int_equal(cb.bytes, ca.bytes);
    /* The target's own vbucket has only lost its purged jobs. */
    assert_true(count(&f->b, bvb).records < cb_other_before.records);
    assert_int_equal(count(&f->b, bvb).records, 1); /* bq's name record */

    /* kv: every key of X as on the source; none of the others. */
    for (int i = 0; i < 6; i++) {
        kv_get(f, &f->a, xkeys[i], &a1);
        kv_get(f, &f->b, xkeys[i], &a2);
        assert_int_equal(a1.data[0], 0);
        assert_int_equal(a1.len, a2.len);
        assert_memory_equal(a1.data + 9, a2.data + 9, a1.len - 9);
        ans_free(&a1);
        ans_free(&a2);
    }
    for (int i = 2; i < 20; i++) {
        kv_get(f, &f->b, okeys[i], &a2);
        assert_int_equal(a2.data[0], 1 /* NOT_FOUND */);
        ans_free(&a2);
    }
    /* A mod_rev read on the source compares on the target, and the next
     * revision is above every revision of the source. */
    assert_int_equal(kv_put(f, &f->b, xkeys[0], "v3", 2, 2, x_mod_rev + 1, 3),
                     x_mod_rev);
    assert_true(kv_put(f, &f->b, xkeys[0], "v3", 2, 2, x_mod_rev, 0) > a_rev);

    /* Queues: the same stats, jobs and dead letters. */
    {
        char *s1 = q_stats(f, &f->a, Q), *s2 = q_stats(f, &f->b, Q);
        assert_string_equal(s1, s2);
        assert_non_null(strstr(s1, "ready=5 delayed=1 reserved=1 dead=1 "
                                   "pushes=8 buries=1 reserves=2"));
        free(s1);
        free(s2);
        for (uint8_t w = 0; w <= QUEUE_PEEK_RESERVED; w++) {
            s1 = q_peek(f, &f->a, Q, w);
            s2 = q_peek(f, &f->b, Q, w);
            assert_string_equal(s1, s2);
            assert_true(strlen(s1) > 0);
            free(s1);
            free(s2);
        }
    }
    /* A reservation taken before the move is acked with its token. */
    assert_int_equal(q_job_op(f, &f->b, Q, QUEUE_OP_ACK, res_id, res_token + 1),
                     QUEUE_ST_STALE);
    assert_int_equal(q_job_op(f, &f->b, Q, QUEUE_OP_ACK, res_id, res_token),
                     QUEUE_ST_OK);
    /* The dedup id is remembered; new ids are above the source's. */
    assert_int_equal(q_push(f, &f->b, Q, "again", 0, "dd-1", &dup), dedup_id);
    assert_true(dup);
    assert_true(q_push(f, &f->b, Q, "new", 0, NULL, NULL) > max_a_id);
    /* The dead job redrives into Q on the target. */
    {
        struct queue_req r = {.op = QUEUE_OP_REDRIVE};
        struct queue_reply rep;
        struct ans a;
        q_call(f, &f->b, &a, Q, &r);
        assert_int_equal(queue_codec_decode_reply(QUEUE_OP_REDRIVE,
                                                  (struct slice){a.data,
                                                                 a.len},
                                                  &rep),
                         FERRY_OK);
        assert_int_equal(rep.count, 1);
        ans_free(&a);
    }

    /* Drop X on the source: nothing of X left, the rest intact. */
    {
        struct vbdata_count before[4], kvo = count(&f->a,
                                                   vb_of_key(okeys[3],
                                                             strlen(okeys[3])));
        struct done d = {0};
        for (int i = 0; i < 4; i++) {
            before[i] = count(&f->a, vb_of_key(oq[i], strlen(oq[i])));
        }
        vbdata_drop(&f->a.sv, X, done_cb, &d);
        run_until(f, &d.n, 1);
        assert_int_equal(d.err, FERRY_OK);
        assert_int_equal(count(&f->a, X).records, 0);
        for (int i = 0; i < 4; i++) {
            struct vbdata_count c =
                count(&f->a, vb_of_key(oq[i], strlen(oq[i])));
            assert_int_equal(c.records, before[i].records);
            assert_true(c.records >= 2);
        }
        assert_int_equal(count(&f->a, vb_of_key(okeys[3], strlen(okeys[3])))
                             .records,
                         kvo.records);
        kv_get(f, &f->a, xkeys[1], &a1);
        assert_int_equal(a1.data[0], 1 /* NOT_FOUND */);
        ans_free(&a1);
        kv_get(f, &f->a, okeys[3], &a1);
        assert_int_equal(a1.data[0], 0);
        ans_free(&a1);
        /* Its queue is forgotten in memory too. */
        {
            char *s = q_peek(f, &f->a, Q, QUEUE_PEEK_READY);
            assert_string_equal(s, "");
            free(s);
        }
    }
    for (size_t i = 0; i < n_chunks; i++) {
        buf_release(&chunks[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handover, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
