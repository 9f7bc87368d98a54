/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the store on a real LMDB file in a temp folder with a
 * real uv loop: put/get/delete, group commit of batches queued together,
 * a failing condition refusing only its batch, data kept across a reopen,
 * NO_SPACE at a tiny store_max_bytes with reads still served and nothing
 * half-written, map growth, store_sync = N, a stale reader cleared at open,
 * revision counters and hooks (commit order, no gaps, kept across a
 * reopen, recomputed when a group is retried after the map grew), and
 * the journal of store_sync = always (replayed after a crash, with
 * LMDB's meta pages lost; a torn last record; store_sync = N after it).
 */
#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "servants/store_stats.h"
#include "store/store.h"

static const char *const tables[] = {"kv", "queues", "id"};

struct fx {
    char dir[64];
    uv_loop_t loop;
    struct store *s;
};

/* One batch's outcome, filled by done_cb. */
struct res {
    int calls;
    struct store_result r;
};

static void
done_cb(void *arg, const struct store_result *r)
{
    struct res *res = arg;

    res->calls++;
    res->r = *r;
}

static void
fx_open(struct fx *f, uint64_t max_bytes, uint32_t sync_ms)
{
    struct store_opts o = {f->dir, tables, 3, max_bytes, sync_ms, 0, 0};

    assert_int_equal(store_open(&f->s, &f->loop, &o), FERRY_OK);
}

static void
fx_close(struct fx *f)
{
    store_close(f->s);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "/tmp/ferry-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    if (f->s != NULL) {
        fx_close(f);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Runs the loop until every result in res[0..n) has its callback. */
static void
wait_all(struct fx *f, struct res *res, size_t n)
{
    for (int spins = 0; spins < 100000; spins++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++) {
            done += res[i].calls > 0;
        }
        if (done == n) {
            return;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    fail_msg("batches not done");
}

static void
put1(struct fx *f, const char *k, const char *v, struct res *res)
{
    struct store_batch *b = store_batch_new();

    assert_non_null(b);
    assert_int_equal(store_batch_put(b, 0, k, strlen(k), v, strlen(v)),
                     FERRY_OK);
    store_submit(f->s, b, done_cb, res);
}

/* The value of k in table 0 as a string, "" when missing (static). */
static const char *
get1(struct fx *f, const char *k)
{
    static char buf[256];
    struct store_val v;
    bool found = false;

    assert_int_equal(store_get(f->s, 0, k, strlen(k), &v, &found), FERRY_OK);
    if (!found) {
        return "";
    }
    assert_true(v.len < sizeof(buf));
    memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    return buf;
}

static void
test_put_get_delete(void **state)
{
    struct fx *f = *state;
    struct res r1 = {0}, r2 = {0};
    struct store_batch *b;

    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(store_table(f->s, "queues"), 1);
    assert_int_equal(store_table(f->s, "nope"), -1);
    put1(f, "alpha", "one", &r1);
    /* Never run inside store_submit. */
    assert_int_equal(r1.calls, 0);
    assert_string_equal(get1(f, "alpha"), "");
    wait_all(f, &r1, 1);
    assert_int_equal(r1.r.status, STORE_COMMITTED);
    assert_string_equal(get1(f, "alpha"), "one");

    /* Tables are separate. */
    {
        struct store_val v;
        bool found = true;
        assert_int_equal(store_get(f->s, 1, "alpha", 5, &v, &found), FERRY_OK);
        assert_false(found);
    }
    b = store_batch_new();
    assert_int_equal(store_batch_del(b, 0, "alpha", 5), FERRY_OK);
    assert_int_equal(store_batch_del(b, 0, "never", 5), FERRY_OK);
    assert_int_equal(store_batch_put(b, 1, "q", 1, "x", 1), FERRY_OK);
    assert_int_equal(store_batch_put(b, 0, "", 0, "x", 1),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(store_batch_len(b), 3);
    store_submit(f->s, b, done_cb, &r2);
    wait_all(f, &r2, 1);
    assert_int_equal(r2.r.status, STORE_COMMITTED);
    assert_string_equal(get1(f, "alpha"), "");

    /* A cursor walks the keys in order. */
    {
        struct res r[3] = {{0}};
        struct store_cursor *c;
        struct store_val k, v;
        bool found;
        put1(f, "p/b", "2", &r[0]);
        put1(f, "p/a", "1", &r[1]);
        put1(f, "q/a", "3", &r[2]);
        wait_all(f, r, 3);
        assert_int_equal(store_cursor_open(f->s, 0, &c), FERRY_OK);
        assert_int_equal(store_seek(c, "p/", 2, &k, &v, &found), FERRY_OK);
        assert_true(found);
        assert_memory_equal(k.data, "p/a", 3);
        assert_int_equal(store_next(c, &k, &v, &found), FERRY_OK);
        assert_memory_equal(k.data, "p/b", 3);
        assert_memory_equal(v.data, "2", 1);
        assert_int_equal(store_next(c, &k, &v, &found), FERRY_OK);
        assert_memory_equal(k.data, "q/a", 3);
        assert_int_equal(store_next(c, &k, &v, &found), FERRY_OK);
        assert_false(found);
        store_cursor_close(c);
    }
    assert_int_equal(store_stats(f->s)->batches, 5);
}

static void
test_group_commit(void **state)
{
    struct fx *f = *state;
    enum { N = 2000 };
    struct res *res = calloc(N, sizeof(*res));
    const struct store_stats *st;
    char k[32], v[32];

    fx_open(f, UINT64_C(1) << 30, 0);
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key%05d", i);
        snprintf(v, sizeof(v), "val%d", i);
        put1(f, k, v, &res[i]);
    }
    wait_all(f, res, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].r.status, STORE_COMMITTED);
    }
    st = store_stats(f->s);
    assert_int_equal(st->batches, N);
    assert_true(st->commits >= 1);
    /* Queued together, they share commits. */
    assert_true(st->commits < N);
    assert_true(st->max_group > 1);
    assert_int_equal(st->group_size.count, st->commits);
    assert_int_equal(st->group_size.sum, N);
    assert_int_equal(st->commit_us.count, st->commits);
    assert_string_equal(get1(f, "key01234"), "val1234");
    free(res);
}

static void
test_condition_refuses_its_batch_only(void **state)
{
    struct fx *f = *state;
    struct res r0 = {0}, r[4] = {{0}};
    struct store_batch *b;

    fx_open(f, UINT64_C(1) << 30, 0);
    put1(f, "cas", "rev1:hello", &r0);
    wait_all(f, &r0, 1);

    /* Queued together, one group: */
    /* 0: put-if-absent of an existing key: refused, its other op too. */
    b = store_batch_new();
    assert_int_equal(store_batch_put(b, 0, "side0", 5, "x", 1), FERRY_OK);
    assert_int_equal(
        store_batch_put_if(b, 0, "cas", 3, "new", 3, STORE_IF_ABSENT, NULL, 0),
        FERRY_OK);
    store_submit(f->s, b, done_cb, &r[0]);
    /* 1: CAS on the revision prefix: applies. */
    b = store_batch_new();
    assert_int_equal(store_batch_put_if(b, 0, "cas", 3, "rev2:world", 10,
                                        STORE_IF_PREFIX, "rev1:", 5),
                     FERRY_OK);
    assert_int_equal(store_batch_put(b, 0, "side1", 5, "y", 1), FERRY_OK);
    store_submit(f->s, b, done_cb, &r[1]);
    /* 2: the same CAS again sees batch 1's write: refused. */
    b = store_batch_new();
    assert_int_equal(store_batch_put(b, 0, "side2", 5, "z", 1), FERRY_OK);
    assert_int_equal(store_batch_put_if(b, 0, "cas", 3, "rev2:other", 10,
                                        STORE_IF_PREFIX, "rev1:", 5),
                     FERRY_OK);
    store_submit(f->s, b, done_cb, &r[2]);
    /* 3: delete if equal to the current value: applies. */
    b = store_batch_new();
    assert_int_equal(
        store_batch_del_if(b, 0, "cas", 3, STORE_IF_EQUALS, "rev2:world", 10),
        FERRY_OK);
    store_submit(f->s, b, done_cb, &r[3]);
    wait_all(f, r, 4);

    assert_int_equal(r[0].r.status, STORE_REFUSED);
    assert_int_equal(r[0].r.refused_op, 1);
    assert_int_equal(r[1].r.status, STORE_COMMITTED);
    assert_int_equal(r[2].r.status, STORE_REFUSED);
    assert_int_equal(r[2].r.refused_op, 1);
    assert_int_equal(r[3].r.status, STORE_COMMITTED);
    assert_string_equal(get1(f, "side0"), "");
    assert_string_equal(get1(f, "side1"), "y");
    assert_string_equal(get1(f, "side2"), "");
    assert_string_equal(get1(f, "cas"), "");
    assert_int_equal(store_stats(f->s)->batches_refused, 2);

    /* IF_PRESENT on a missing key. */
    memset(&r0, 0, sizeof(r0));
    b = store_batch_new();
    assert_int_equal(
        store_batch_del_if(b, 0, "cas", 3, STORE_IF_PRESENT, NULL, 0),
        FERRY_OK);
    store_submit(f->s, b, done_cb, &r0);
    wait_all(f, &r0, 1);
    assert_int_equal(r0.r.status, STORE_REFUSED);
}

static void
test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct res r[2] = {{0}};

    fx_open(f, UINT64_C(1) << 30, 0);
    put1(f, "durable", "yes", &r[0]);
    /* Queued and not waited for: the close drains it. */
    put1(f, "drained", "too", &r[1]);
    fx_close(f);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[1].r.status, STORE_COMMITTED);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_string_equal(get1(f, "durable"), "yes");
    assert_string_equal(get1(f, "drained"), "too");
}

static void
test_no_space(void **state)
{
    struct fx *f = *state;
    size_t big = 256 * 1024;
    char *val = malloc(big);
    struct res r = {0};
    int committed = 0, failed = 0;
    const struct store_stats *st;

    memset(val, 'v', big);
    fx_open(f, 2u << 20, 0); /* 2 MiB */
    put1(f, "small", "kept", &r);
    wait_all(f, &r, 1);
    /* 256 KiB values until the map is full. */
    for (int i = 0; i < 20 && failed == 0; i++) {
        struct store_batch *b = store_batch_new();
        char k[16];
        snprintf(k, sizeof(k), "big%02d", i);
        memset(&r, 0, sizeof(r));
        assert_int_equal(store_batch_put(b, 0, k, strlen(k), val, big),
                         FERRY_OK);
        store_submit(f->s, b, done_cb, &r);
        wait_all(f, &r, 1);
        if (r.r.status == STORE_COMMITTED) {
            committed++;
        } else {
            assert_int_equal(r.r.status, STORE_FAILED);
            assert_int_equal(r.r.err, FERRY_ENO_SPACE);
            failed++;
        }
    }
    assert_true(committed >= 1);
    assert_int_equal(failed, 1);
    st = store_stats(f->s);
    assert_true(st->map_bytes <= 2u << 20);
    /* A batch of a small put and a big one: nothing of it is written. */
    {
        struct store_batch *b = store_batch_new();
        memset(&r, 0, sizeof(r));
        assert_int_equal(store_batch_put(b, 0, "half", 4, "x", 1), FERRY_OK);
        assert_int_equal(store_batch_put(b, 0, "bigX", 4, val, big), FERRY_OK);
        store_submit(f->s, b, done_cb, &r);
        wait_all(f, &r, 1);
        assert_int_equal(r.r.status, STORE_FAILED);
        assert_int_equal(r.r.err, FERRY_ENO_SPACE);
    }
    /* Queued together at the limit: only the big one fails. */
    {
        struct res g[3] = {{0}};
        struct store_batch *b = store_batch_new();
        put1(f, "grpA", "a", &g[0]);
        assert_int_equal(store_batch_put(b, 0, "grpB", 4, val, big), FERRY_OK);
        store_submit(f->s, b, done_cb, &g[1]);
        put1(f, "grpC", "c", &g[2]);
        wait_all(f, g, 3);
        assert_int_equal(g[0].r.status, STORE_COMMITTED);
        assert_int_equal(g[1].r.status, STORE_FAILED);
        assert_int_equal(g[1].r.err, FERRY_ENO_SPACE);
        assert_int_equal(g[2].r.status, STORE_COMMITTED);
        assert_string_equal(get1(f, "grpA"), "a");
        assert_string_equal(get1(f, "grpB"), "");
        assert_string_equal(get1(f, "grpC"), "c");
    }
    /* Reads still served; small writes that fit still commit. */
    assert_string_equal(get1(f, "small"), "kept");
    assert_string_equal(get1(f, "half"), "");
    memset(&r, 0, sizeof(r));
    put1(f, "after", "ok", &r);
    wait_all(f, &r, 1);
    assert_int_equal(r.r.status, STORE_COMMITTED);
    assert_string_equal(get1(f, "after"), "ok");
    fx_close(f);
    /* And the file is sound after a reopen. */
    fx_open(f, 2u << 20, 0);
    assert_string_equal(get1(f, "small"), "kept");
    assert_string_equal(get1(f, "half"), "");
    assert_string_equal(get1(f, "after"), "ok");
    free(val);
}

static void
test_map_grows(void **state)
{
    struct fx *f = *state;
    enum { N = 64 };
    size_t big = 64 * 1024;
    char *val = malloc(big);
    struct res res[N] = {{0}};
    uint64_t first;

    memset(val, 'g', big);
    fx_open(f, UINT64_C(1) << 30, 0);
    first = store_stats(f->s)->map_bytes;
    assert_int_equal(first, STORE_MIN_MAP);
    for (int i = 0; i < N; i++) {
        struct store_batch *b = store_batch_new();
        char k[16];
        snprintf(k, sizeof(k), "g%02d", i);
        assert_int_equal(store_batch_put(b, 0, k, strlen(k), val, big),
                         FERRY_OK);
        store_submit(f->s, b, done_cb, &res[i]);
        /* Keep reading while the writer grows the map. */
        (void)get1(f, "g00");
    }
    wait_all(f, res, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].r.status, STORE_COMMITTED);
    }
    assert_true(store_stats(f->s)->map_bytes >= 4 * first);
    assert_true(store_stats(f->s)->grows >= 2);
    assert_true(store_stats(f->s)->used_bytes >= (uint64_t)N * big);
    {
        struct store_val v;
        bool found;
        assert_int_equal(store_get(f->s, 0, "g63", 3, &v, &found), FERRY_OK);
        assert_true(found);
        assert_int_equal(v.len, big);
    }
    free(val);
}

/* Close right after a read, with a write queued that must grow the map:
 * the writer waits for the read txn, which close ends first. */
static void
test_close_while_reading_and_growing(void **state)
{
    struct fx *f = *state;
    size_t big = 3u << 20;
    char *val = malloc(big);
    struct res r = {0};

    memset(val, 'c', big);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_string_equal(get1(f, "x"), "");
    {
        struct store_batch *b = store_batch_new();
        assert_int_equal(store_batch_put(b, 0, "big", 3, val, big), FERRY_OK);
        store_submit(f->s, b, done_cb, &r);
    }
    assert_string_equal(get1(f, "x"), "");
    fx_close(f);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.r.status, STORE_COMMITTED);
    fx_open(f, UINT64_C(1) << 30, 0);
    {
        struct store_val v;
        bool found;
        assert_int_equal(store_get(f->s, 0, "big", 3, &v, &found), FERRY_OK);
        assert_true(found);
        assert_int_equal(v.len, big);
    }
    free(val);
}

static void
test_sync_interval(void **state)
{
    struct fx *f = *state;
    struct res r = {0};

    fx_open(f, UINT64_C(1) << 30, 20);
    put1(f, "nosync", "1", &r);
    wait_all(f, &r, 1);
    assert_int_equal(r.r.status, STORE_COMMITTED);
    assert_string_equal(get1(f, "nosync"), "1");
    /* Within a few intervals the writer syncs by itself. */
    for (int i = 0; i < 200 && store_stats(f->s)->syncs == 0; i++) {
        usleep(5000);
    }
    assert_true(store_stats(f->s)->syncs >= 1);
    fx_close(f);
    fx_open(f, UINT64_C(1) << 30, 20);
    assert_string_equal(get1(f, "nosync"), "1");
}

/* A child process that opens the environment, takes a reader when asked,
 * says so on the pipe and waits to be killed. */
static pid_t
spawn_holder(const char *dir, bool reader)
{
    int pipefd[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        close(pipefd[0]);
        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 4) != 0 ||
            mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0 ||
            (reader && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)) {
            _exit(1);
        }
        if (write(pipefd[1], "r", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(pipefd[1]);
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    close(pipefd[0]);
    return pid;
}

static void
test_stale_reader_cleared(void **state)
{
    struct fx *f = *state;
    pid_t keeper, reader;

    /* Create the environment. A live process keeps it open (else the
     * next open resets the reader table by itself), one that held a
     * reader is SIGKILLed. */
    fx_open(f, UINT64_C(1) << 30, 0);
    fx_close(f);
    keeper = spawn_holder(f->dir, false);
    reader = spawn_holder(f->dir, true);
    kill(reader, SIGKILL);
    assert_int_equal(waitpid(reader, NULL, 0), reader);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(store_stats(f->s)->stale_readers, 1);
    kill(keeper, SIGKILL);
    assert_int_equal(waitpid(keeper, NULL, 0), keeper);
}

static void
test_bad_opts(void **state)
{
    struct fx *f = *state;
    struct store_opts o = {f->dir, tables, 0, UINT64_C(1) << 30, 0, 0, 0};
    struct store *s;

    assert_int_equal(store_open(&s, &f->loop, &o), FERRY_EINVALID_ARGUMENT);
    o.n_tables = 3;
    o.max_bytes = 4096;
    assert_int_equal(store_open(&s, &f->loop, &o), FERRY_EINVALID_ARGUMENT);
    o.max_bytes = UINT64_C(1) << 30;
    o.dir = "/proc/ferry-no-such-store";
    assert_int_equal(store_open(&s, &f->loop, &o), FERRY_ESYS);
}

/* What a test hook does and saw; written in the writer thread. */
struct hk {
    enum store_hook_act act; /* what to return */
    size_t vlen;             /* PUT: bytes of value (>= 8) */
    int runs;                /* times run */
    uint64_t rev;            /* the revision it was given */
    bool had_old;            /* the key existed */
    uint64_t old_rev;        /* the first 8 bytes of the old value */
};

static uint64_t
be64(const void *p)
{
    const unsigned char *b = p;
    uint64_t n = 0;

    for (int i = 0; i < 8; i++) {
        n = n << 8 | b[i];
    }
    return n;
}

/* Writes rev (big-endian) and then 'h' up to vlen. */
static enum store_hook_act
test_hook(void *arg, const struct store_val *old, uint64_t rev,
          struct store_hook_ctx *ctx)
{
    struct hk *h = arg;
    unsigned char *p;

    h->runs++;
    h->rev = rev;
    h->had_old = old != NULL;
    h->old_rev = old != NULL && old->len >= 8 ? be64(old->data) : 0;
    if (h->act != STORE_HOOK_PUT) {
        return h->act;
    }
    p = store_hook_value(ctx, h->vlen);
    if (p == NULL) {
        return STORE_HOOK_PUT;
    }
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(rev >> (56 - 8 * i));
    }
    memset(p + 8, 'h', h->vlen - 8);
    return STORE_HOOK_PUT;
}

static void
hook1(struct fx *f, const char *k, struct hk *h, struct res *res, bool rev)
{
    struct store_batch *b = store_batch_new();

    assert_non_null(b);
    if (rev) {
        assert_int_equal(store_batch_revision(b, 2, "rev", 3), FERRY_OK);
    }
    assert_int_equal(store_batch_hook(b, 0, k, strlen(k), test_hook, h),
                     FERRY_OK);
    store_submit(f->s, b, done_cb, res);
}

static uint64_t
counter(struct fx *f, unsigned table, const char *k)
{
    uint64_t n = 99;

    assert_int_equal(store_get_counter(f->s, table, k, strlen(k), &n),
                     FERRY_OK);
    return n;
}

static void
test_revisions_in_commit_order(void **state)
{
    struct fx *f = *state;
    struct hk h[6] = {{STORE_HOOK_PUT, 12, 0, 0, false, 0},
                      {STORE_HOOK_REFUSE, 0, 0, 0, false, 0},
                      {STORE_HOOK_PUT, 8, 0, 0, false, 0},
                      {STORE_HOOK_DELETE, 0, 0, 0, false, 0},
                      {STORE_HOOK_PUT, 9, 0, 0, false, 0},
                      {STORE_HOOK_PUT, 8, 0, 0, false, 0}};
    struct res r[7] = {{0}};
    struct store_batch *b;
    struct store_val v;
    bool found;

    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(counter(f, 2, "rev"), 0);
    /* Queued together: one or a few groups, decided in order. */
    hook1(f, "a", &h[0], &r[0], true);   /* rev 1 */
    hook1(f, "a", &h[1], &r[1], true);   /* refused: takes none */
    put1(f, "plain", "p", &r[2]);        /* no counter: rev 0 */
    hook1(f, "a", &h[2], &r[3], true);   /* rev 2, sees rev 1 */
    hook1(f, "a", &h[3], &r[4], true);   /* delete at rev 3 */
    hook1(f, "a", &h[4], &r[5], true);   /* rev 4, key was gone */
    hook1(f, "nc", &h[5], &r[6], false); /* hook without a counter */
    wait_all(f, r, 7);
    assert_int_equal(r[0].r.status, STORE_COMMITTED);
    assert_int_equal(r[0].r.rev, 1);
    assert_int_equal(r[1].r.status, STORE_REFUSED);
    assert_int_equal(r[1].r.refused_op, 0);
    assert_int_equal(r[1].r.rev, 0);
    assert_int_equal(r[2].r.rev, 0);
    assert_int_equal(r[3].r.rev, 2);
    assert_true(h[2].had_old);
    assert_int_equal(h[2].old_rev, 1);
    assert_int_equal(r[4].r.rev, 3);
    assert_int_equal(r[5].r.rev, 4);
    assert_false(h[4].had_old);
    assert_int_equal(r[6].r.status, STORE_COMMITTED);
    assert_int_equal(r[6].r.rev, 0);
    assert_int_equal(h[5].rev, 0);
    assert_int_equal(counter(f, 2, "rev"), 4);
    assert_int_equal(store_get(f->s, 0, "a", 1, &v, &found), FERRY_OK);
    assert_true(found);
    assert_int_equal(v.len, 9);
    assert_int_equal(be64(v.data), 4);

    /* A hook refusing in a batch with other writes: none of them land. */
    {
        struct hk no = {STORE_HOOK_REFUSE, 0, 0, 0, false, 0};
        struct res rr = {0};
        b = store_batch_new();
        assert_int_equal(store_batch_revision(b, 2, "rev", 3), FERRY_OK);
        assert_int_equal(store_batch_revision(b, 2, "rev", 3),
                         FERRY_EINVALID_ARGUMENT);
        assert_int_equal(store_batch_put(b, 0, "side", 4, "s", 1), FERRY_OK);
        assert_int_equal(store_batch_hook(b, 0, "a", 1, test_hook, &no),
                         FERRY_OK);
        assert_int_equal(store_batch_hook(b, 0, "a", 1, NULL, &no),
                         FERRY_EINVALID_ARGUMENT);
        store_submit(f->s, b, done_cb, &rr);
        wait_all(f, &rr, 1);
        assert_int_equal(rr.r.status, STORE_REFUSED);
        assert_int_equal(rr.r.refused_op, 1);
        assert_string_equal(get1(f, "side"), "");
        assert_int_equal(counter(f, 2, "rev"), 4);
    }
    /* Counters are per (table, key): another one starts at 1. */
    {
        struct hk q = {STORE_HOOK_PUT, 8, 0, 0, false, 0};
        struct res rq = {0};
        b = store_batch_new();
        assert_int_equal(store_batch_revision(b, 1, "seq/q1", 6), FERRY_OK);
        assert_int_equal(store_batch_hook(b, 1, "job", 3, test_hook, &q),
                         FERRY_OK);
        store_submit(f->s, b, done_cb, &rq);
        wait_all(f, &rq, 1);
        assert_int_equal(rq.r.rev, 1);
        assert_int_equal(counter(f, 1, "seq/q1"), 1);
        assert_int_equal(counter(f, 2, "rev"), 4);
    }
    /* A counter of the wrong size fails its batch, nothing written. */
    {
        struct res rb = {0}, rw = {0};
        struct hk x = {STORE_HOOK_PUT, 8, 0, 0, false, 0};
        b = store_batch_new();
        assert_int_equal(store_batch_put(b, 2, "bad", 3, "abc", 3), FERRY_OK);
        store_submit(f->s, b, done_cb, &rw);
        wait_all(f, &rw, 1);
        b = store_batch_new();
        assert_int_equal(store_batch_revision(b, 2, "bad", 3), FERRY_OK);
        assert_int_equal(store_batch_hook(b, 0, "x", 1, test_hook, &x),
                         FERRY_OK);
        store_submit(f->s, b, done_cb, &rb);
        wait_all(f, &rb, 1);
        assert_int_equal(rb.r.status, STORE_FAILED);
        assert_int_equal(rb.r.err, FERRY_ESYS);
        assert_int_equal(x.runs, 0);
        assert_int_equal(store_get_counter(f->s, 2, "bad", 3, &x.rev),
                         FERRY_ESYS);
    }
    /* Kept across a reopen: the next batch takes 5. */
    fx_close(f);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(counter(f, 2, "rev"), 4);
    {
        struct hk n = {STORE_HOOK_PUT, 8, 0, 0, false, 0};
        struct res rn = {0};
        hook1(f, "a", &n, &rn, true);
        wait_all(f, &rn, 1);
        assert_int_equal(rn.r.rev, 5);
        assert_int_equal(n.old_rev, 4);
    }
}

/* Hook values big enough to grow the map: a group retried after a growth
 * runs its hooks again, and the revisions still come out 1..N in order. */
static void
test_revisions_across_growth(void **state)
{
    struct fx *f = *state;
    enum { N = 48 };
    struct hk h[N];
    struct res res[N] = {{0}};
    int reran = 0;

    fx_open(f, UINT64_C(1) << 30, 0);
    for (int i = 0; i < N; i++) {
        char k[16];
        h[i] = (struct hk){STORE_HOOK_PUT, 64 * 1024, 0, 0, false, 0};
        snprintf(k, sizeof(k), "g%02d", i);
        hook1(f, k, &h[i], &res[i], true);
    }
    wait_all(f, res, N);
    for (int i = 0; i < N; i++) {
        char k[16];
        struct store_val v;
        bool found;
        assert_int_equal(res[i].r.status, STORE_COMMITTED);
        assert_int_equal(res[i].r.rev, (uint64_t)i + 1);
        assert_int_equal(h[i].rev, (uint64_t)i + 1);
        reran += h[i].runs > 1;
        snprintf(k, sizeof(k), "g%02d", i);
        assert_int_equal(store_get(f->s, 0, k, strlen(k), &v, &found),
                         FERRY_OK);
        assert_true(found);
        assert_int_equal(v.len, 64 * 1024);
        assert_int_equal(be64(v.data), (uint64_t)i + 1);
    }
    assert_true(store_stats(f->s)->grows >= 1);
    assert_true(reran >= 1);
    assert_int_equal(counter(f, 2, "rev"), N);
    /* The counters as /v1/stats and /metrics show them. */
    {
        json_t *o = store_stats_json(f->s);
        char *text = NULL, want[96];
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        const struct store_stats *st = store_stats(f->s);

        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "batches")), N);
        assert_non_null(
            json_object_get(json_object_get(o, "commit_us"), "p99"));
        json_decref(o);
        store_stats_metrics(f->s, m);
        fclose(m);
        snprintf(want, sizeof(want),
                 "ferry_store_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)st->commits);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof(want),
                 "ferry_store_batches_total{status=\"committed\"} %d\n", N);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, "# TYPE ferry_store_map_bytes gauge"));
        free(text);
    }
}

/* store_journal_max_bytes of the stores child_commits opens (0: the
 * default). */
static uint64_t child_journal_max;

/*
 * The journal (store_sync = always). A child process opens the store with
 * checkpoints far apart, commits COUNT puts of "jk%04d" (then deletes the
 * odd ones below DELS), and _exits without closing: a crash after the
 * answers. What LMDB wrote is in the kernel's cache then, so to stand for
 * a power cut too the parent may zero LMDB's two meta pages (LMDB alone
 * would refuse the file); reopening must bring back every committed
 * write from the checkpoint's meta pages and the journal's records.
 */
static void
child_commits(const char *dir, int count, int dels)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        uv_loop_t loop;
        struct store *s;
        struct store_opts o = {dir,    tables, 3, UINT64_C(1) << 30,
                               0,      600000,
                               child_journal_max};
        struct res *res = calloc((size_t)(count + dels), sizeof(*res));
        int n = 0;

        if (res == NULL || uv_loop_init(&loop) != 0 ||
            store_open(&s, &loop, &o) != FERRY_OK) {
            _exit(2);
        }
        for (int i = 0; i < count + dels; i++) {
            struct store_batch *b = store_batch_new();
            char k[32], v[32];

            snprintf(k, sizeof(k), "jk%04d", i < count ? i : 2 * (i - count) + 1);
            snprintf(v, sizeof(v), "value-%d", i);
            if (b == NULL ||
                (i < count ? store_batch_put(b, 0, k, strlen(k), v, strlen(v))
                           : store_batch_del(b, 0, k, strlen(k))) != FERRY_OK) {
                _exit(3);
            }
            store_submit(s, b, done_cb, &res[i]);
            /* Several commits: every 50th waits for the ones before. */
            if (i % 50 == 49) {
                while (res[i].calls == 0) {
                    uv_run(&loop, UV_RUN_ONCE);
                }
            }
        }
        for (int spins = 0; n < count + dels && spins < 1000000; spins++) {
            n = 0;
            for (int i = 0; i < count + dels; i++) {
                n += res[i].calls > 0 && res[i].r.status == STORE_COMMITTED;
            }
            if (n < count + dels) {
                uv_run(&loop, UV_RUN_ONCE);
            }
        }
        _exit(n == count + dels && store_stats(s)->journal_bytes > 0 ? 0 : 4);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
zero_metas(const char *dir)
{
    char path[128], zero[8192] = {0};
    FILE *fp;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fwrite(zero, 1, 2 * (size_t)sysconf(_SC_PAGESIZE), fp),
                     2 * (size_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(fclose(fp), 0);
}

static void
check_commits(struct fx *f, int count, int dels)
{
    char k[32], v[32];

    for (int i = 0; i < count; i++) {
        bool deleted = i % 2 == 1 && i < 2 * dels;

        snprintf(k, sizeof(k), "jk%04d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        assert_string_equal(get1(f, k), deleted ? "" : v);
    }
}

static void
test_journal_replays_after_a_crash(void **state)
{
    struct fx *f = *state;
    struct res r = {0};

    child_commits(f->dir, 400, 100);
    zero_metas(f->dir);
    fx_open(f, UINT64_C(1) << 30, 0);
    /* Every commit after the checkpoint came back from the journal. */
    assert_true(store_stats(f->s)->journal_replayed >= 2);
    check_commits(f, 400, 100);
    /* It goes on from there, and a clean close leaves nothing to replay. */
    put1(f, "after", "yes", &r);
    wait_all(f, &r, 1);
    assert_int_equal(r.r.status, STORE_COMMITTED);
    fx_close(f);
    zero_metas(f->dir);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(store_stats(f->s)->journal_replayed, 0);
    assert_string_equal(get1(f, "after"), "yes");
    check_commits(f, 400, 100);
}

/* Flips a byte in the payload of the journal's last record (the last
 * "FJR1" magic, little-endian, in the file). */
static void
tear_last_record(const char *path, size_t size)
{
    unsigned char *buf = malloc(size);
    FILE *fp = fopen(path, "r+b");
    size_t at = 0;

    assert_non_null(buf);
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, size, fp), size);
    for (size_t i = 0; i + 40 <= size; i++) {
        if (memcmp(buf + i, "1RJF", 4) == 0) {
            at = i;
        }
    }
    assert_true(at > 0);
    assert_int_equal(fseek(fp, (long)(at + 30), SEEK_SET), 0);
    assert_int_equal(fputc(buf[at + 30] ^ 0xff, fp), buf[at + 30] ^ 0xff);
    assert_int_equal(fclose(fp), 0);
    free(buf);
}

static void
test_journal_torn_tail(void **state)
{
    struct fx *f = *state;
    char path[128];
    struct stat st;

    /* A torn last append (its answers never went): the records before
     * it replay, the torn one does not, and the store opens. */
    child_commits(f->dir, 200, 0);
    snprintf(path, sizeof(path), "%s/journal", f->dir);
    assert_int_equal(stat(path, &st), 0);
    tear_last_record(path, (size_t)st.st_size);
    zero_metas(f->dir);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_true(store_stats(f->s)->journal_replayed >= 1);
    assert_string_equal(get1(f, "jk0000"), "value-0");
    assert_string_equal(get1(f, "jk0199"), "");
}

static void
test_journal_then_sync_interval(void **state)
{
    struct fx *f = *state;
    char path[128];
    struct stat st;

    /* Reopened with store_sync = N: the journal is replayed, then gone
     * (nothing may replay over what N writes later). */
    child_commits(f->dir, 150, 20);
    fx_open(f, UINT64_C(1) << 30, 20);
    check_commits(f, 150, 20);
    snprintf(path, sizeof(path), "%s/journal", f->dir);
    assert_int_equal(stat(path, &st), -1);
}

static void
test_journal_not_for_another_file(void **state)
{
    struct fx *f = *state;
    char cmd[512];

    /* data.mdb replaced by a copy (another inode): the journal's saved
     * pages are not written into it, nothing is replayed, and the copy
     * opens as it is. */
    child_commits(f->dir, 100, 0);
    snprintf(cmd, sizeof(cmd),
             "cp '%s/data.mdb' '%s/copy' && mv '%s/copy' '%s/data.mdb'",
             f->dir, f->dir, f->dir, f->dir);
    assert_int_equal(system(cmd), 0);
    fx_open(f, UINT64_C(1) << 30, 0);
    assert_int_equal(store_stats(f->s)->journal_replayed, 0);
    assert_string_equal(get1(f, "jk0099"), "value-99");
}

static off_t
journal_file_size(const char *dir)
{
    char path[128];
    struct stat st;

    snprintf(path, sizeof(path), "%s/journal", dir);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void
test_journal_size_setting(void **state)
{
    struct fx *f = *state;
    struct store_opts o = {f->dir, tables, 3, UINT64_C(1) << 30, 0, 0,
                           UINT64_C(1) << 20};
    struct res r = {0};
    off_t slots = 64 << 10; /* the two header slots take less */

    /* store_journal_max_bytes = 1 MiB: the ring is 1 MiB (the disk has
     * far more than 16 MiB free), and a crash with it replays. */
    child_journal_max = UINT64_C(1) << 20;
    child_commits(f->dir, 300, 50);
    child_journal_max = 0;
    assert_true(journal_file_size(f->dir) > (1 << 20));
    assert_true(journal_file_size(f->dir) <= (1 << 20) + slots);
    zero_metas(f->dir);
    assert_int_equal(store_open(&f->s, &f->loop, &o), FERRY_OK);
    assert_true(store_stats(f->s)->journal_replayed >= 1);
    check_commits(f, 300, 50);
    fx_close(f);

    /* A smaller setting cuts the file once its records are replayed. */
    o.journal_max_bytes = UINT64_C(256) << 10;
    assert_int_equal(store_open(&f->s, &f->loop, &o), FERRY_OK);
    assert_true(journal_file_size(f->dir) > (256 << 10));
    assert_true(journal_file_size(f->dir) <= (256 << 10) + slots);
    check_commits(f, 300, 50);
    put1(f, "small", "ring", &r);
    wait_all(f, &r, 1);
    assert_int_equal(r.r.status, STORE_COMMITTED);
    fx_close(f);

    /* Below the least ring (256 KiB) is read as the least. */
    o.journal_max_bytes = 4096;
    assert_int_equal(store_open(&f->s, &f->loop, &o), FERRY_OK);
    assert_true(journal_file_size(f->dir) > (256 << 10));
    assert_string_equal(get1(f, "small"), "ring");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_refuses_its_batch_only,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_while_reading_and_growing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_reader_cleared, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revisions_in_commit_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revisions_across_growth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_replays_after_a_crash,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_torn_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_then_sync_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_size_setting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_not_for_another_file,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
