/* SPDX-License-Identifier: MIT */
/*
 * echo_server.c - bench_echo_server, the no-broker baseline of ferry's
 * benchmarks: what a bare server speaking ferry frames does, with nothing
 * between caller and "worker".
 *
 *   bench_echo_server --listen HOST:PORT | unix:/path
 *
 * One thread, one epoll set. It answers HELLO with HELLO_OK and every
 * REQUEST with a REPLY carrying the request's payload, and ignores PING.
 * Each loop turn reads everything available on each ready socket, decodes
 * every whole frame, and writes each connection's replies with one send().
 * Prints READY on stdout once it listens; SIGINT or SIGTERM stop it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/buf.h"
#include "proto/frame.h"

#define ES_READ_CHUNK (64 * 1024)
#define ES_HIGH_WATER (4 * 1024 * 1024) /* stop reading above this output */
#define ES_MAX_EVENTS 256
#define ES_NAME "bench_echo_server"

/* One client. Owned by the event loop; freed by es_close(). */
struct es_conn {
    int fd;         /* the socket */
    bool hello;     /* HELLO received */
    bool dirty;     /* on the dirty list */
    bool want_out;  /* EPOLLOUT armed */
    bool reading;   /* EPOLLIN armed (off above the high-water mark) */
    struct buf in;  /* bytes read, not yet decoded */
    struct buf out; /* frames not yet written */
    struct es_conn *next_dirty; /* borrowed: dirty list link */
    struct es_conn *prev;       /* borrowed: list of open connections */
    struct es_conn *next;       /* borrowed: list of open connections */
};

struct es {
    int ep;                /* epoll fd */
    int lfd;               /* listening socket */
    struct es_conn *dirty; /* borrowed: connections to flush */
    struct es_conn *all;   /* owned: open connections */
};

static volatile sig_atomic_t es_stop;

static void
es_on_signal(int sig)
{
    es_stop = 1;
}

static void
es_close(struct es *s, struct es_conn *c)
{
    /* The dirty list may still point here; es_flush skips fd -1. */
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->all = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    buf_release(&c->in);
    buf_release(&c->out);
    if (!c->dirty) {
        free(c);
    }
}

static void
es_mark_dirty(struct es *s, struct es_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = s->dirty;
        s->dirty = c;
    }
}

/* Queues an ERROR for the connection, which is then closed after flush. */
static void
es_error(struct es_conn *c, ferry_err code, const char *msg)
{
    struct slice m = slice_str(msg);
    uint8_t *dst = buf_prepare(&c->out, frame_error_size(m.len));

    if (dst != NULL) {
        buf_commit(&c->out, frame_write_error(dst, 0, code, m));
    }
}

/* Handles one frame; false when the connection must close. */
static bool
es_on_frame(struct es_conn *c, const struct frame *f)
{
    struct frame_request req;
    struct frame_hello hello;
    uint16_t version;
    struct slice name = slice_str(ES_NAME);
    uint8_t *dst;

    if (!c->hello && f->type != FRAME_HELLO) {
        es_error(c, FERRY_EPROTO, "HELLO first");
        return false;
    }
    switch (f->type) {
    case FRAME_HELLO:
        if (c->hello || frame_parse_hello(f, &hello) != FERRY_OK) {
            es_error(c, FERRY_EPROTO, "bad HELLO");
            return false;
        }
        version = hello.version < FERRY_PROTOCOL_VERSION
                      ? hello.version
                      : FERRY_PROTOCOL_VERSION;
        dst = buf_prepare(&c->out, frame_hello_ok_size(version, name.len));
        if (dst == NULL) {
            return false;
        }
        buf_commit(&c->out,
                   frame_write_hello_ok(dst, version, 0, FRAME_DEFAULT_MAX_BODY,
                                        60000, 5000, name));
        c->hello = true;
        return true;
    case FRAME_REQUEST:
        if (frame_parse_request(f, &req) != FERRY_OK) {
            es_error(c, FERRY_EPROTO, "bad REQUEST");
            return false;
        }
        dst = buf_prepare(&c->out, FRAME_HEADER_SIZE + req.payload.len);
        if (dst == NULL) {
            return false;
        }
        frame_write_reply_header(dst, f->id, (uint32_t)req.payload.len);
        memcpy(dst + FRAME_HEADER_SIZE, req.payload.p, req.payload.len);
        buf_commit(&c->out, FRAME_HEADER_SIZE + req.payload.len);
        return true;
    case FRAME_PING:
        return true;
    default:
        es_error(c, FERRY_EPROTO, "unexpected frame");
        return false;
    }
}

/* Reads everything available and answers every whole frame. */
static bool
es_on_readable(struct es_conn *c)
{
    struct frame f;
    size_t used;
    ssize_t n;
    ferry_err err;

    for (;;) {
        if (buf_reserve(&c->in, ES_READ_CHUNK) != FERRY_OK) {
            return false;
        }
        n = read(c->fd, buf_tail(&c->in), buf_room(&c->in));
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
            if ((size_t)n < ES_READ_CHUNK) {
                break;
            }
        } else if (n == 0) {
            return false;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else if (errno != EINTR) {
            return false;
        }
    }
    for (;;) {
        err = frame_decode(buf_head(&c->in), buf_len(&c->in),
                           FRAME_DEFAULT_MAX_BODY, &f, &used);
        if (err != FERRY_OK) {
            es_error(c, err, ferry_strerror(err));
            return false;
        }
        if (used == 0) {
            return true;
        }
        if (!es_on_frame(c, &f)) {
            return false;
        }
        buf_consume(&c->in, used);
    }
}

/* Sets the events watched to match the connection's state. */
static void
es_watch(struct es *s, struct es_conn *c)
{
    bool want_out = buf_len(&c->out) > 0;
    bool reading = buf_len(&c->out) < ES_HIGH_WATER;
    struct epoll_event ev;

    if (want_out == c->want_out && reading == c->reading) {
        return;
    }
    c->want_out = want_out;
    c->reading = reading;
    ev.events = (reading ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* One send() per dirty connection. */
static void
es_flush(struct es *s)
{
    struct es_conn *c, *next;
    ssize_t n;

    for (c = s->dirty; c != NULL; c = next) {
        next = c->next_dirty;
        c->dirty = false;
        if (c->fd < 0) {
            free(c);
            continue;
        }
        if (buf_len(&c->out) > 0) {
            n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                errno != EINTR) {
                es_close(s, c);
                continue;
            }
            if (n > 0) {
                buf_consume(&c->out, (size_t)n);
            }
        }
        es_watch(s, c);
    }
    s->dirty = NULL;
}

static void
es_accept(struct es *s)
{
    struct epoll_event ev;
    struct es_conn *c;
    int fd, one = 1;

    for (;;) {
        fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->reading = true;
        buf_init(&c->in);
        buf_init(&c->out);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = s->all;
        if (s->all != NULL) {
            s->all->prev = c;
        }
        s->all = c;
    }
}

static int
es_listen(const struct addr *a)
{
    int fd, one = 1;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (addr_is_unix(a)) {
        unlink(((const struct sockaddr_un *)&a->ss)->sun_path);
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
        listen(fd, 1024) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    struct epoll_event events[ES_MAX_EVENTS], ev;
    struct sigaction sa;
    struct es s = {-1, -1, NULL, NULL};
    struct es_conn *c;
    struct addr a;
    int i, n;

    if (argc != 3 || strcmp(argv[1], "--listen") != 0) {
        fprintf(stderr, "usage: bench_echo_server --listen HOST:PORT | "
                        "unix:/path\n");
        return 2;
    }
    if (addr_parse(argv[2], &a) != FERRY_OK) {
        fprintf(stderr, "bench_echo_server: bad address '%s'\n", argv[2]);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = es_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.lfd = es_listen(&a);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (s.lfd < 0 || s.ep < 0) {
        fprintf(stderr, "bench_echo_server: listen '%s': %s\n", a.text,
                strerror(errno));
        return 1;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &ev);
    printf("READY\n");
    fflush(stdout);

    while (!es_stop) {
        es_flush(&s);
        n = epoll_wait(s.ep, events, ES_MAX_EVENTS, -1);
        for (i = 0; i < n; i++) {
            c = events[i].data.ptr;
            if (c == NULL) {
                es_accept(&s);
                continue;
            }
            if (c->fd < 0) {
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!es_on_readable(c)) {
                    /* Send what was queued (an ERROR, say), then close. */
                    if (buf_len(&c->out) > 0) {
                        send(c->fd, buf_head(&c->out), buf_len(&c->out),
                             MSG_NOSIGNAL);
                    }
                    es_close(&s, c);
                    continue;
                }
            }
            es_mark_dirty(&s, c);
        }
    }
    es_flush(&s);
    while (s.all != NULL) {
        es_close(&s, s.all);
    }
    if (addr_is_unix(&a)) {
        unlink(((const struct sockaddr_un *)&a.ss)->sun_path);
    }
    close(s.lfd);
    close(s.ep);
    return 0;
}
