/* SPDX-License-Identifier: MIT */
/*
 * cache_shift.c - the cache (src/cache/) when value sizes shift, beside
 * memcached fed the same sequence over its text protocol; and the ns per
 * get hit and per set of the module alone. bench/cache_shift.sh runs it.
 *
 *   bench_cache_shift module [MiB]          the module, in this process
 *   bench_cache_shift memcached PORT PID    memcached on 127.0.0.1:PORT
 *                                           (PID: its process, for RSS)
 *   bench_cache_shift speed                 ns per get hit / per set
 *
 * The sequence (the same in both modes): three phases with values of 100
 * bytes, then 10 KiB, then 100 bytes again, each with its own keys
 * ("a:N", "b:N", "c:N"). A phase's key space holds 1.5 times the cap in
 * values; keys are drawn zipf(0.99) by rank (YCSB's generator, seeded
 * the same every run). Cache-aside in batches of 100: get the 100 keys
 * (one multi-key get), then set each one that missed. A phase runs 2 x
 * keys lookups, at least 200,000 (so the 10 KiB phase runs long enough
 * to reach its steady state); the hit ratio is that of its second half. After
 * each phase: the cache's own byte count, items, evictions, RSS.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"

#define BATCH 100

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double
uniform(void)
{
    return (double)(next_rand() >> 11) / (double)(1ull << 53);
}

/* YCSB's zipfian generator (Gray et al.): no tables, so it adds no RSS. */
struct zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow;
};

static void
zipf_init(struct zipf *z, uint64_t n, double theta)
{
    double zeta2 = 1.0 + pow(0.5, theta);

    z->n = n;
    z->theta = theta;
    z->zetan = 0;
    for (uint64_t i = 1; i <= n; i++) {
        z->zetan += 1.0 / pow((double)i, theta);
    }
    z->alpha = 1.0 / (1.0 - theta);
    z->eta =
        (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
    z->half_pow = pow(0.5, theta);
}

static uint64_t
zipf_next(const struct zipf *z)
{
    double u = uniform();
    double uz = u * z->zetan;
    uint64_t r;

    if (uz < 1.0) {
        return 0;
    }
    if (uz < 1.0 + z->half_pow) {
        return 1;
    }
    r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return r < z->n ? r : z->n - 1;
}

static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

/* The two back ends of the same sequence. */
struct target {
    /* Looks up n keys; sets hit[i]. */
    void (*get_batch)(struct target *t, char keys[][32], size_t n, bool *hit);
    void (*set_batch)(struct target *t, char keys[][32], size_t n,
                      const uint8_t *val, size_t vlen);
    void (*report)(struct target *t);
    struct cache *c;
    int fd;
    pid_t pid;
    char rbuf[1 << 16];
    size_t rlen, rpos;
    int64_t now;
};

static void
mod_get(struct target *t, char keys[][32], size_t n, bool *hit)
{
    for (size_t i = 0; i < n; i++) {
        struct cache_view v;

        hit[i] =
            cache_get(t->c, keys[i], strlen(keys[i]), t->now, &v) == CACHE_OK;
    }
}

static void
mod_set(struct target *t, char keys[][32], size_t n, const uint8_t *val,
        size_t vlen)
{
    for (size_t i = 0; i < n; i++) {
        enum cache_status st = cache_set(t->c, keys[i], strlen(keys[i]), val,
                                         vlen, 0, 0, t->now, NULL);

        if (st != CACHE_STORED) {
            fprintf(stderr, "set: %s\n", cache_status_name(st));
            exit(1);
        }
    }
    cache_reclaim(t->c, t->now, 16);
}

static void
mod_report(struct target *t)
{
    struct cache_stats st;
    struct mallinfo2 mi = mallinfo2();

    long rss = rss_kib(getpid());

    cache_stats_get(t->c, &st);
    /* malloc_trim(0) gives back the whole free pages inside the heap
     * (madvise): the RSS after it is what fragmentation really holds. */
    malloc_trim(0);
    printf(" cache_bytes=%.1fMiB items=%llu evictions=%llu"
           " malloc_in_use=%.1fMiB rss=%.1fMiB rss_after_trim=%.1fMiB\n",
           st.bytes / 1048576.0, (unsigned long long)st.items,
           (unsigned long long)st.evictions,
           (mi.uordblks + mi.hblkhd) / 1048576.0, rss / 1024.0,
           rss_kib(getpid()) / 1024.0);
}

static void
write_all(int fd, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        ssize_t w = write(fd, s, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        s += w;
        n -= (size_t)w;
    }
}

static void
fill(struct target *t)
{
    ssize_t r;

    if (t->rpos > 0) {
        memmove(t->rbuf, t->rbuf + t->rpos, t->rlen - t->rpos);
        t->rlen -= t->rpos;
        t->rpos = 0;
    }
    r = read(t->fd, t->rbuf + t->rlen, sizeof(t->rbuf) - t->rlen);
    if (r <= 0) {
        fprintf(stderr, "memcached closed the connection\n");
        exit(1);
    }
    t->rlen += (size_t)r;
}

/* The next line without its \r\n, in line (at most cap - 1 bytes). */
static void
read_line(struct target *t, char *line, size_t cap)
{
    for (;;) {
        char *e = memchr(t->rbuf + t->rpos, '\n', t->rlen - t->rpos);

        if (e != NULL) {
            size_t n = (size_t)(e - (t->rbuf + t->rpos));

            if (n > 0 && t->rbuf[t->rpos + n - 1] == '\r') {
                n--;
            }
            if (n >= cap) {
                n = cap - 1;
            }
            memcpy(line, t->rbuf + t->rpos, n);
            line[n] = '\0';
            t->rpos = (size_t)(e - t->rbuf) + 1;
            return;
        }
        fill(t);
    }
}

static void
skip_bytes(struct target *t, size_t n)
{
    while (n > 0) {
        size_t have = t->rlen - t->rpos;

        if (have == 0) {
            fill(t);
            continue;
        }
        if (have > n) {
            have = n;
        }
        t->rpos += have;
        n -= have;
    }
}

static void
mc_get(struct target *t, char keys[][32], size_t n, bool *hit)
{
    static char req[BATCH * 33 + 16];
    size_t len = 0;
    char line[512];

    len += (size_t)sprintf(req, "get");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(req + len, " %s", keys[i]);
        hit[i] = false;
    }
    len += (size_t)sprintf(req + len, "\r\n");
    write_all(t->fd, req, len);
    for (;;) {
        char key[256];
        unsigned flags;
        size_t bytes;

        read_line(t, line, sizeof(line));
        if (strcmp(line, "END") == 0) {
            return;
        }
        if (sscanf(line, "VALUE %255s %u %zu", key, &flags, &bytes) != 3) {
            fprintf(stderr, "memcached: %s\n", line);
            exit(1);
        }
        skip_bytes(t, bytes + 2);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(keys[i], key) == 0) {
                hit[i] = true;
            }
        }
    }
}

static void
mc_set(struct target *t, char keys[][32], size_t n, const uint8_t *val,
       size_t vlen)
{
    static uint8_t buf[BATCH * (10240 + 64)];
    size_t len = 0;
    char line[512];

    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf((char *)buf + len, "set %s 0 0 %zu\r\n", keys[i],
                               vlen);
        memcpy(buf + len, val, vlen);
        len += vlen;
        memcpy(buf + len, "\r\n", 2);
        len += 2;
    }
    write_all(t->fd, buf, len);
    for (size_t i = 0; i < n; i++) {
        read_line(t, line, sizeof(line));
        if (strcmp(line, "STORED") != 0) {
            fprintf(stderr, "memcached set: %s\n", line);
            exit(1);
        }
    }
}

static void
mc_report(struct target *t)
{
    char line[512];
    unsigned long long bytes = 0, items = 0, evictions = 0, limit = 0;

    write_all(t->fd, "stats\r\n", 7);
    for (;;) {
        read_line(t, line, sizeof(line));
        if (strcmp(line, "END") == 0) {
            break;
        }
        sscanf(line, "STAT bytes %llu", &bytes);
        sscanf(line, "STAT curr_items %llu", &items);
        sscanf(line, "STAT evictions %llu", &evictions);
        sscanf(line, "STAT limit_maxbytes %llu", &limit);
    }
    printf(" mc_bytes=%.1fMiB items=%llu evictions=%llu rss=%.1fMiB\n",
           bytes / 1048576.0, items, evictions, rss_kib(t->pid) / 1024.0);
}

static void
run_phase(struct target *t, const char *name, char prefix, size_t vlen,
          size_t cap)
{
    static char keys[BATCH][32];
    static bool hit[BATCH];
    static char miss[BATCH][32];
    static uint8_t val[10240];
    uint64_t nkeys = (uint64_t)(1.5 * (double)cap / (double)vlen);
    uint64_t ops = 2 * nkeys < 200000 ? 200000 : 2 * nkeys;
    uint64_t hits = 0, looked = 0;
    struct zipf z;
    struct timespec t0, t1;

    memset(val, prefix, sizeof(val));
    zipf_init(&z, nkeys, 0.99);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t done = 0; done < ops; done += BATCH) {
        size_t nm = 0;

        for (size_t i = 0; i < BATCH; i++) {
            snprintf(keys[i], sizeof(keys[i]), "%c:%llu", prefix,
                     (unsigned long long)zipf_next(&z));
        }
        t->get_batch(t, keys, BATCH, hit);
        for (size_t i = 0; i < BATCH; i++) {
            if (!hit[i]) {
                memcpy(miss[nm++], keys[i], sizeof(keys[i]));
            }
        }
        if (done >= ops / 2) {
            hits += BATCH - nm;
            looked += BATCH;
        }
        if (nm > 0) {
            t->set_batch(t, miss, nm, val, vlen);
        }
        t->now++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%-7s value=%-5zu keys=%-8llu lookups=%-8llu hit_ratio=%.3f"
           " (%.1fs)",
           name, vlen, (unsigned long long)nkeys, (unsigned long long)ops,
           looked ? (double)hits / (double)looked : 0.0,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    t->report(t);
    fflush(stdout);
}

static void
run_shift(struct target *t, size_t cap)
{
    run_phase(t, "100B", 'a', 100, cap);
    run_phase(t, "10KiB", 'b', 10240, cap);
    run_phase(t, "100B", 'c', 100, cap);
}

static double
elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 +
           (double)(b->tv_nsec - a->tv_nsec);
}

/* ns per get hit and per set with 64-byte values, keys drawn uniformly
 * from `keys` of them: 1,000 fit in the CPU's caches, 100,000 do not. */
static void
run_speed(int KEYS)
{
    enum { OPS = 2000000 };
    struct cache_config cfg = {.seed = {1, 2}};
    struct cache *c = cache_new(&cfg);
    static char keys[100000][16];
    uint32_t *order = malloc(OPS * sizeof(*order));
    uint8_t val[64];
    struct timespec t0, t1;
    uint64_t sum = 0;

    if (c == NULL || order == NULL) {
        exit(1);
    }
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < KEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key:%d", i);
        cache_set(c, keys[i], strlen(keys[i]), val, sizeof(val), 0, 0, 0, NULL);
    }
    for (int i = 0; i < OPS; i++) {
        order[i] = (uint32_t)(next_rand() % KEYS);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < OPS; i++) {
        struct cache_view v;
        const char *k = keys[order[i]];

        if (cache_get(c, k, strlen(k), 0, &v) != CACHE_OK) {
            exit(1);
        }
        sum += v.len;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("get hit: %.0f ns/op (%d keys, 64 B values, %d gets)\n",
           elapsed_ns(&t0, &t1) / OPS, KEYS, OPS);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < OPS; i++) {
        const char *k = keys[order[i]];

        cache_set(c, k, strlen(k), val, sizeof(val), 0, 0, 0, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("set (replace): %.0f ns/op (%d sets)\n", elapsed_ns(&t0, &t1) / OPS,
           OPS);
    cache_free(c);
    free(order);
    if (sum != (uint64_t)OPS * 64) {
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    static struct target t;

    if (argc >= 2 && strcmp(argv[1], "module") == 0) {
        size_t mib = argc >= 3 ? (size_t)atoi(argv[2]) : 64;
        struct cache_config cfg = {.max_bytes = mib << 20, .seed = {1, 2}};

        printf("module rss_at_start=%.1fMiB\n", rss_kib(getpid()) / 1024.0);
        t.c = cache_new(&cfg);
        if (t.c == NULL) {
            return 1;
        }
        t.get_batch = mod_get;
        t.set_batch = mod_set;
        t.report = mod_report;
        run_shift(&t, mib << 20);
        cache_free(t.c);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "memcached") == 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET};

        sa.sin_port = htons((uint16_t)atoi(argv[2]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        t.pid = (pid_t)atoi(argv[3]);
        t.fd = socket(AF_INET, SOCK_STREAM, 0);
        if (t.fd < 0 || connect(t.fd, (struct sockaddr *)&sa, sizeof(sa))) {
            perror("connect");
            return 1;
        }
        printf("memcached rss_at_start=%.1fMiB\n", rss_kib(t.pid) / 1024.0);
        t.get_batch = mc_get;
        t.set_batch = mc_set;
        t.report = mc_report;
        run_shift(&t, (size_t)(argc >= 5 ? atoi(argv[4]) : 64) << 20);
        close(t.fd);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "speed") == 0) {
        run_speed(1000);
        run_speed(100000);
        return 0;
    }
    fprintf(stderr, "usage: bench_cache_shift module [MiB] | memcached PORT"
                    " PID [MiB] | speed\n");
    return 2;
}
