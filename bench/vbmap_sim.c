/* SPDX-License-Identifier: MIT */
/*
 * vbmap_sim.c - the simulation of the cluster's vbucket map that issue 13
 * asks for (docs/benchmarks.md, "Cluster: the vbucket map"): for N = 3, 5,
 * 10, 100 and 1000 members, the median time to build a map over several
 * runs, and the mean and the largest number of vbuckets moved over many
 * random leaves and joins, beside 1024/N. No daemon: src/cluster/vbmap.c
 * alone, as every node runs it on each membership change.
 *
 *   build/bench_vbmap_sim [builds] [changes]
 *
 * builds (default 21) maps are timed per N; changes (default 400) random
 * changes are made per N, one leave (a random member) then one join (a
 * fresh name) in turn, each compared with the map before it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/vbmap.h"
#include "core/rand.h"

#define SIM_MAX 1001

static char bufs[SIM_MAX][48];
static const char *names[SIM_MAX];

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void
build(struct vbmap *m, const char *const *v, size_t n)
{
    if (vbmap_init(m, v, n, 1) != FERRY_OK) {
        fprintf(stderr, "vbmap_sim: cannot build a map of %zu\n", n);
        exit(1);
    }
}

static void
sim(size_t n, int builds, int changes)
{
    const char *rest[SIM_MAX];
    uint64_t *t = calloc((size_t)builds, sizeof(*t));
    uint64_t s;
    struct vbmap base, other;
    double sum_leave = 0, sum_join = 0;
    unsigned max_leave = 0, max_join = 0;
    int leaves = 0, joins = 0;

    if (t == NULL) {
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "ferry-%zu.example", i);
        names[i] = bufs[i];
    }
    for (int r = 0; r < builds; r++) {
        uint64_t t0 = now_ns();

        build(&base, names, n);
        t[r] = now_ns() - t0;
        vbmap_release(&base);
    }
    qsort(t, (size_t)builds, sizeof(*t), u64_cmp);
    build(&base, names, n);
    rand_init(&s, n * 7919);
    for (int r = 0; r < changes; r++) {
        unsigned moved;

        if (r % 2 == 0) {
            size_t g = (size_t)(rand_next(&s) % n), k = 0;

            for (size_t i = 0; i < n; i++) {
                if (i != g) {
                    rest[k++] = names[i];
                }
            }
            build(&other, rest, n - 1);
            moved = vbmap_moved(&base, &other);
            sum_leave += moved;
            max_leave = moved > max_leave ? moved : max_leave;
            leaves++;
        } else {
            char fresh[48];

            snprintf(fresh, sizeof(fresh), "joiner-%d.example", r);
            memcpy(rest, names, n * sizeof(*names));
            rest[n] = fresh;
            build(&other, rest, n + 1);
            moved = vbmap_moved(&base, &other);
            sum_join += moved;
            max_join = moved > max_join ? moved : max_join;
            joins++;
        }
        vbmap_release(&other);
    }
    vbmap_release(&base);
    printf("| %zu | %.3f | %.1f | %.1f / %u | %.1f | %.1f / %u |\n", n,
           (double)t[builds / 2] / 1e6, 1024.0 / (double)n, sum_leave / leaves,
           max_leave, 1024.0 / (double)(n + 1), sum_join / joins, max_join);
    free(t);
}

int
main(int argc, char **argv)
{
    static const size_t ns[] = {3, 5, 10, 100, 1000};
    int builds = argc > 1 ? atoi(argv[1]) : 21;
    int changes = argc > 2 ? atoi(argv[2]) : 400;

    if (builds < 1 || changes < 2) {
        fprintf(stderr, "usage: bench_vbmap_sim [builds] [changes]\n");
        return 2;
    }
    printf("%d builds timed, %d changes (half leaves, half joins) per N\n\n",
           builds, changes);
    printf("| N | build, median ms | 1024/N | leave: moved mean / max | "
           "1024/(N+1) | join: moved mean / max |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        sim(ns[i], builds, changes);
    }
    return 0;
}
