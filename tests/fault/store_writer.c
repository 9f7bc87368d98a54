/* SPDX-License-Identifier: MIT */
/*
 * store_writer.c - drives the store (src/store/) from outside ferryd, for
 * tests/fault/test_store_crash.py and a quick group-commit measurement.
 *
 *   store_writer write DIR INFLIGHT SYNC_MS COUNT [FIRST]
 *       keeps INFLIGHT one-put batches queued, key i -> value "v<i>"
 *       for i from FIRST (0),
 *       prints "ack <i>" on stdout once batch i is committed (SYNC_MS 0:
 *       on disk); COUNT 0 = until killed. At the end: writes/s and
 *       batches per commit on stderr.
 *   store_writer check DIR
 *       reads ids on stdin; prints "missing <i>" or "bad <i>" for each
 *       one not read back with its value, then "checked <n>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static const char *const tables[] = {"kv"};

struct writer {
    struct store *s;   /* borrowed */
    uint64_t next;     /* next id to write */
    uint64_t count;    /* ids to write; 0 = no end */
    uint64_t acked;    /* ids committed */
    uint64_t inflight; /* batches submitted, not decided */
};

static void writer_submit(struct writer *w);

static void
writer_done(void *arg, const struct store_result *r)
{
    struct writer *w = arg;
    (void)r;

    if (r->status != STORE_COMMITTED) {
        fprintf(stderr, "store_writer: batch failed: %s\n",
                ferry_errname(r->err));
        exit(1);
    }
    w->acked++;
    w->inflight--;
    writer_submit(w);
}

/* Per-batch state: the id, so the ack names it. */
struct one {
    struct writer *w; /* borrowed */
    uint64_t id;      /* written key */
};

static void
one_done(void *arg, const struct store_result *r)
{
    struct one *o = arg;
    struct writer *w = o->w;

    if (r->status == STORE_COMMITTED && w->count == 0) {
        printf("ack %llu\n", (unsigned long long)o->id);
        fflush(stdout);
    }
    free(o);
    writer_done(w, r);
}

static void
writer_submit(struct writer *w)
{
    char k[32], v[64];
    struct store_batch *b;
    struct one *o;
    int kl, vl;

    if (w->count != 0 && w->acked + w->inflight >= w->count) {
        return;
    }
    kl = snprintf(k, sizeof(k), "k%012llu", (unsigned long long)w->next);
    vl = snprintf(v, sizeof(v), "v%llu", (unsigned long long)w->next);
    b = store_batch_new();
    o = malloc(sizeof(*o));
    if (b == NULL || o == NULL ||
        store_batch_put(b, 0, k, (size_t)kl, v, (size_t)vl) != FERRY_OK) {
        fprintf(stderr, "store_writer: out of memory\n");
        exit(1);
    }
    o->w = w;
    o->id = w->next++;
    w->inflight++;
    store_submit(w->s, b, one_done, o);
}

static int
run_write(const char *dir, unsigned inflight, uint32_t sync_ms, uint64_t count,
          uint64_t first)
{
    struct store_opts opts = {dir, tables, 1, UINT64_C(1) << 32, sync_ms, 0, 0};
    struct writer w = {0};
    uv_loop_t loop;
    uint64_t t0;
    double secs;
    const struct store_stats *st;

    uv_loop_init(&loop);
    if (store_open(&w.s, &loop, &opts) != FERRY_OK) {
        return 1;
    }
    w.count = count;
    w.next = first;
    t0 = uv_hrtime();
    for (unsigned i = 0; i < inflight; i++) {
        writer_submit(&w);
    }
    while (count == 0 || w.acked < count) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    secs = (double)(uv_hrtime() - t0) / 1e9;
    st = store_stats(w.s);
    fprintf(stderr,
            "store_writer: %llu writes in %.2f s: %.0f writes/s, %llu "
            "commits, %.1f batches per commit, commit p50 %.0f us p99 %.0f "
            "us\n",
            (unsigned long long)w.acked, secs, (double)w.acked / secs,
            (unsigned long long)st->commits,
            st->commits ? (double)st->batches / (double)st->commits : 0.0,
            hist_percentile(&st->commit_us, 0.5),
            hist_percentile(&st->commit_us, 0.99));
    store_close(w.s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

static int
run_check(const char *dir)
{
    struct store_opts opts = {dir, tables, 1, UINT64_C(1) << 32, 0, 0, 0};
    struct store *s;
    uv_loop_t loop;
    unsigned long long id;
    uint64_t n = 0, bad = 0;

    uv_loop_init(&loop);
    if (store_open(&s, &loop, &opts) != FERRY_OK) {
        return 1;
    }
    while (scanf("%llu", &id) == 1) {
        char k[32], v[64];
        struct store_val val;
        bool found = false;
        int kl = snprintf(k, sizeof(k), "k%012llu", id);
        int vl = snprintf(v, sizeof(v), "v%llu", id);

        if (store_get(s, 0, k, (size_t)kl, &val, &found) != FERRY_OK ||
            !found) {
            printf("missing %llu\n", id);
            bad++;
        } else if (val.len != (size_t)vl || memcmp(val.data, v, val.len)) {
            printf("bad %llu\n", id);
            bad++;
        }
        n++;
    }
    printf("checked %llu\n", (unsigned long long)n);
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return bad == 0 ? 0 : 2;
}

int
main(int argc, char **argv)
{
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "write") == 0) {
        return run_write(argv[2], (unsigned)atoi(argv[3]),
                         (uint32_t)atoi(argv[4]), strtoull(argv[5], NULL, 10),
                         argc == 7 ? strtoull(argv[6], NULL, 10) : 0);
    }
    if (argc == 3 && strcmp(argv[1], "check") == 0) {
        return run_check(argv[2]);
    }
    fprintf(stderr,
            "usage: store_writer write DIR INFLIGHT SYNC_MS COUNT [FIRST]\n"
            "       store_writer check DIR < ids\n");
    return 64;
}
