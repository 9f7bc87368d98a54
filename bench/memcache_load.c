/* SPDX-License-Identifier: MIT */
/*
 * memcache_load.c - a load generator for the memcached text protocol, the
 * same for Debian's memcached and ferry's memcached face: C connections,
 * each keeping D commands in flight (pipelined), a mix of get and set on
 * K keys with V-byte values, for S seconds after a fill of every key.
 * One thread, epoll. Prints one line: commands/s and the counts.
 *
 *   memcache_load HOST:PORT [-c C] [-d D] [-k K] [-v V] [-s S] [-g GET%]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 256
#define RBUF (1 << 20)

struct lconn {
    int fd;
    unsigned inflight;
    size_t rlen;
    char *rbuf;
};

static unsigned C = 16, D = 16, K = 10000, V = 64, S = 5, GETP = 90;
static uint64_t rng = 88172645463325252ull;

static uint64_t
xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
dial(const char *host, int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static char value[65536];

/* Appends one command to b; returns its length. */
static size_t
command(char *b, int set, unsigned key)
{
    if (set) {
        size_t n = (size_t)sprintf(b, "set key:%u 0 0 %u\r\n", key, V);
        memcpy(b + n, value, V);
        memcpy(b + n + V, "\r\n", 2);
        return n + V + 2;
    }
    return (size_t)sprintf(b, "get key:%u\r\n", key);
}

static void
send_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            perror("write");
            exit(1);
        }
        b += w;
        n -= (size_t)w;
    }
}

static void
send_batch(struct lconn *c, unsigned n)
{
    static char out[64 * (65536 + 64)];
    size_t len = 0;

    for (unsigned i = 0; i < n; i++) {
        len += command(out + len, (unsigned)(xr() % 100) >= GETP,
                       (unsigned)(xr() % K));
    }
    send_all(c->fd, out, len);
    c->inflight += n;
}

/* Counts whole answers (lines END or STORED) at the head of c's buffer
 * and drops them. */
static unsigned
take_answers(struct lconn *c)
{
    unsigned got = 0;
    size_t i = 0, start = 0;

    while (i + 1 < c->rlen) {
        char *nl = memchr(c->rbuf + i, '\n', c->rlen - i);
        size_t len;
        if (nl == NULL) {
            break;
        }
        len = (size_t)(nl - (c->rbuf + i)) + 1;
        if ((len == 5 && memcmp(c->rbuf + i, "END\r\n", 5) == 0) ||
            (len == 8 && memcmp(c->rbuf + i, "STORED\r\n", 8) == 0)) {
            got++;
            start = i + len;
        }
        i += len;
    }
    memmove(c->rbuf, c->rbuf + start, c->rlen - start);
    c->rlen -= start;
    return got;
}

int
main(int argc, char **argv)
{
    struct lconn conns[MAXC];
    char host[64];
    int port, ep, opt;
    uint64_t done = 0;
    double t0, t1;

    if (argc < 2 || sscanf(argv[1], "%63[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "usage: memcache_load HOST:PORT [-c C] [-d D] "
                        "[-k K] [-v V] [-s S] [-g GET%%]\n");
        return 2;
    }
    optind = 2;
    while ((opt = getopt(argc, argv, "c:d:k:v:s:g:")) != -1) {
        unsigned v = (unsigned)strtoul(optarg, NULL, 10);
        switch (opt) {
        case 'c': C = v > MAXC ? MAXC : v; break;
        case 'd': D = v > 64 ? 64 : v; break;
        case 'k': K = v; break;
        case 'v': V = v > 65536 ? 65536 : v; break;
        case 's': S = v; break;
        case 'g': GETP = v; break;
        default: return 2;
        }
    }
    memset(value, 'x', sizeof(value));
    ep = epoll_create1(0);
    for (unsigned i = 0; i < C; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        conns[i].fd = dial(host, port);
        conns[i].inflight = 0;
        conns[i].rlen = 0;
        conns[i].rbuf = malloc(RBUF);
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    /* Fill: every key once, on the first conn, in batches. */
    for (unsigned k = 0; k < K; k += D) {
        static char out[64 * (65536 + 64)];
        size_t len = 0;
        unsigned n = K - k < D ? K - k : D;
        for (unsigned j = 0; j < n; j++) {
            len += command(out + len, 1, k + j);
        }
        send_all(conns[0].fd, out, len);
        conns[0].inflight = n;
        while (conns[0].inflight > 0) {
            ssize_t r = read(conns[0].fd, conns[0].rbuf + conns[0].rlen,
                             RBUF - conns[0].rlen);
            if (r <= 0) {
                fprintf(stderr, "fill: connection closed\n");
                return 1;
            }
            conns[0].rlen += (size_t)r;
            conns[0].inflight -= take_answers(&conns[0]);
        }
    }
    for (unsigned i = 0; i < C; i++) {
        send_batch(&conns[i], D);
    }
    t0 = now_s();
    t1 = t0 + S;
    while (now_s() < t1) {
        struct epoll_event evs[MAXC];
        int n = epoll_wait(ep, evs, MAXC, 100);
        for (int e = 0; e < n; e++) {
            struct lconn *c = &conns[evs[e].data.u32];
            ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
            unsigned got;
            if (r <= 0) {
                fprintf(stderr, "connection closed\n");
                return 1;
            }
            c->rlen += (size_t)r;
            got = take_answers(c);
            c->inflight -= got;
            done += got;
            if (got > 0) {
                send_batch(c, got);
            }
        }
    }
    t1 = now_s();
    printf("memcache_load %s c=%u d=%u keys=%u value=%u get=%u%%: "
           "%.0f commands/s (%llu in %.2f s)\n",
           argv[1], C, D, K, V, GETP, (double)done / (t1 - t0),
           (unsigned long long)done, t1 - t0);
    return 0;
}
