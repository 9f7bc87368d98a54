/* SPDX-License-Identifier: MIT */
/*
 * conn.c - libferry's connection to ferryd: non-blocking connect with a
 * time limit, the HELLO exchange, buffered reads and writes, and the
 * jittered exponential backoff between connect attempts.
 *
 * Everything here runs on the thread that owns the client or worker; the
 * only blocking waits are poll(2) calls bounded by connect_timeout_ms or by
 * the caller's own timeout.
 */
#include "lib/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/rand.h"

#define CONN_READ_CHUNK 65536
#define CONN_READ_BUDGET 16         /* reads per call at most */
#define CONN_IN_KEEP (1024 * 1024)  /* input buffer kept once empty */
#define CONN_OUT_KEEP (1024 * 1024) /* output buffer kept once empty */

uint64_t
ferry__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
ferry__ms_to_timeout(uint64_t ms)
{
    return ms > 1000000000 ? 1000000000 : (int)ms;
}

static char *
conn_strdup_checked(const char *s, ferry_err *err)
{
    char *copy;

    if (s == NULL || s[0] == '\0') {
        return NULL;
    }
    if (strlen(s) > FRAME_MAX_NAME) {
        *err = FERRY_EINVALID_ARGUMENT;
        return NULL;
    }
    copy = strdup(s);
    if (copy == NULL) {
        *err = FERRY_ENOMEM;
    }
    return copy;
}

ferry_err
ferry__conn_init(struct ferry__conn *c, const char *addr,
                 const struct ferry_opts *opts, uint8_t role,
                 bool announce_heartbeat)
{
    static const struct ferry_opts none;
    ferry_err err = FERRY_OK;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    buf_init(&c->in);
    buf_init(&c->out);
    if (opts == NULL) {
        opts = &none;
    }
    if (addr_parse(addr != NULL ? addr : addr_default(), &c->addr) !=
        FERRY_OK) {
        return FERRY_EINVALID_ARGUMENT;
    }
    c->name = conn_strdup_checked(opts->name, &err);
    c->token = conn_strdup_checked(opts->token, &err);
    if (err != FERRY_OK) {
        goto out_free;
    }
    c->role = role;
    c->heartbeat_ms = 0;
    if (announce_heartbeat) {
        c->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms
                                             : FERRY__DEFAULT_HEARTBEAT_MS;
    }
    c->connect_timeout_ms = opts->connect_timeout_ms
                                ? opts->connect_timeout_ms
                                : FERRY__DEFAULT_CONNECT_TIMEOUT_MS;
    c->reconnect_min_ms = opts->reconnect_min_ms
                              ? opts->reconnect_min_ms
                              : FERRY__DEFAULT_RECONNECT_MIN_MS;
    c->reconnect_max_ms = opts->reconnect_max_ms
                              ? opts->reconnect_max_ms
                              : FERRY__DEFAULT_RECONNECT_MAX_MS;
    if (c->reconnect_max_ms < c->reconnect_min_ms) {
        c->reconnect_max_ms = c->reconnect_min_ms;
    }
    /* ferryd refuses a max_frame below the largest ERROR body. */
    if (opts->max_frame != 0 && opts->max_frame < FRAME_MIN_CLIENT_MAX) {
        err = FERRY_EINVALID_ARGUMENT;
        goto out_free;
    }
    c->max_frame = opts->max_frame ? opts->max_frame : FRAME_DEFAULT_MAX_BODY;
    c->backoff_ms = c->reconnect_min_ms;
    rand_init(&c->rng, ferry__now_ms() ^ ((uint64_t)getpid() << 32) ^
                           (uint64_t)(uintptr_t)c);
    return FERRY_OK;

out_free:
    free(c->name);
    free(c->token);
    c->name = NULL;
    c->token = NULL;
    return err;
}

void
ferry__conn_release(struct ferry__conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    buf_release(&c->in);
    buf_release(&c->out);
    free(c->name);
    free(c->token);
    c->name = NULL;
    c->token = NULL;
}

bool
ferry__conn_may_connect(const struct ferry__conn *c, uint64_t now)
{
    return now >= c->retry_at_ms;
}

/* A delay in [d/2, d], so that many clients losing one daemon do not all
 * come back at the same instant. */
static uint64_t
conn_jitter(struct ferry__conn *c, uint32_t d)
{
    uint64_t x = rand_next(&c->rng);

    if (d < 2) {
        return d;
    }
    return d / 2 + x % (d / 2 + 1);
}

static void
conn_schedule_retry(struct ferry__conn *c)
{
    uint32_t next;

    c->retry_at_ms = ferry__now_ms() + conn_jitter(c, c->backoff_ms);
    next = c->backoff_ms > c->reconnect_max_ms / 2 ? c->reconnect_max_ms
                                                   : c->backoff_ms * 2;
    c->backoff_ms = next;
}

static void
conn_vsetmsg(struct ferry__conn *c, const char *fmt, va_list ap)
{
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
}

static void conn_setmsg(struct ferry__conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conn_setmsg(struct ferry__conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conn_vsetmsg(c, fmt, ap);
    va_end(ap);
}

void
ferry__conn_close(struct ferry__conn *c, const char *why, ...)
{
    va_list ap;

    if (c->fd < 0) {
        return;
    }
    if (why != NULL) {
        va_start(ap, why);
        conn_vsetmsg(c, why, ap);
        va_end(ap);
    }
    close(c->fd);
    c->fd = -1;
    buf_clear(&c->in);
    buf_clear(&c->out);
    buf_shrink(&c->in, CONN_IN_KEEP);
    buf_shrink(&c->out, CONN_OUT_KEEP);
    conn_schedule_retry(c);
}

ferry_err
ferry__conn_wait(struct ferry__conn *c, int wake_fd, int timeout_ms,
                 bool *readable, bool *woken)
{
    struct pollfd pfd[2];
    nfds_t n = 0;
    int r;

    *readable = false;
    *woken = false;
    if (c->fd >= 0) {
        pfd[n].fd = c->fd;
        pfd[n].events = POLLIN;
        if (buf_len(&c->out) > 0) {
            pfd[n].events |= POLLOUT;
        }
        pfd[n].revents = 0;
        n++;
    }
    if (wake_fd >= 0) {
        pfd[n].fd = wake_fd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;
    }
    r = poll(n ? pfd : NULL, n, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) {
            return FERRY_OK;
        }
        c->sys_err = errno;
        return FERRY_ESYS;
    }
    for (nfds_t i = 0; i < n; i++) {
        if (pfd[i].fd == wake_fd) {
            *woken = pfd[i].revents != 0;
        } else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            *readable = true;
        }
    }
    return FERRY_OK;
}

ferry_err
ferry__conn_read(struct ferry__conn *c)
{
    ssize_t n;
    uint8_t *dst;

    for (int i = 0; i < CONN_READ_BUDGET; i++) {
        dst = buf_prepare(&c->in, CONN_READ_CHUNK);
        if (dst == NULL) {
            conn_setmsg(c, "out of memory reading from '%s'", c->addr.text);
            return FERRY_ECONNECTION;
        }
        n = recv(c->fd, dst, buf_room(&c->in), 0);
        if (n > 0) {
            buf_commit(&c->in, (size_t)n);
            c->last_recv_ms = ferry__now_ms();
            if ((size_t)n < CONN_READ_CHUNK) {
                break; /* a short read: the socket is drained */
            }
            continue;
        }
        if (n == 0) {
            conn_setmsg(c, "ferryd at '%s' closed the connection",
                        c->addr.text);
            return FERRY_ECONNECTION;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        c->sys_err = errno;
        conn_setmsg(c, "reading from '%s': %s", c->addr.text, strerror(errno));
        return FERRY_ECONNECTION;
    }
    return FERRY_OK;
}

ferry_err
ferry__conn_next(struct ferry__conn *c, struct frame *f, bool *got)
{
    size_t consumed = 0;
    ferry_err err;

    *got = false;
    err = frame_decode(buf_head(&c->in), buf_len(&c->in), c->max_frame, f,
                       &consumed);
    if (err != FERRY_OK) {
        return err;
    }
    if (consumed == 0) {
        if (buf_len(&c->in) == 0) {
            /* One large frame must not pin a large buffer for good. */
            buf_shrink(&c->in, CONN_IN_KEEP);
        }
        return FERRY_OK;
    }
    /* Consuming only moves the read position: the body stays in place
     * until the next read into the buffer. */
    buf_consume(&c->in, consumed);
    *got = true;
    return FERRY_OK;
}

bool
ferry__conn_process(struct ferry__conn *c, ferry__frame_cb on_frame, void *arg)
{
    struct frame f;
    bool got;

    while (ferry__conn_is_open(c)) {
        ferry_err err = ferry__conn_next(c, &f, &got);
        if (err != FERRY_OK) {
            ferry__conn_abort(c, err, "bad frame header");
            return false;
        }
        if (!got) {
            break;
        }
        on_frame(arg, &f);
    }
    return true;
}

ferry_err
ferry__conn_flush(struct ferry__conn *c)
{
    ssize_t n;

    if (c->fd < 0 || buf_len(&c->out) == 0) {
        return FERRY_OK;
    }
    for (;;) {
        n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n >= 0) {
            buf_consume(&c->out, (size_t)n);
            c->last_send_ms = ferry__now_ms();
            if (buf_len(&c->out) == 0) {
                buf_shrink(&c->out, CONN_OUT_KEEP);
            }
            return FERRY_OK;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return FERRY_OK;
        }
        c->sys_err = errno;
        conn_setmsg(c, "writing to '%s': %s", c->addr.text, strerror(errno));
        return FERRY_ECONNECTION;
    }
}

ferry_err
ferry__conn_send_empty(struct ferry__conn *c, uint8_t type, uint64_t id)
{
    uint8_t *p = buf_prepare(&c->out, FRAME_HEADER_SIZE);

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    buf_commit(&c->out, frame_write_empty(p, type, id));
    return FERRY_OK;
}

ferry_err
ferry__conn_send_error(struct ferry__conn *c, uint64_t id, uint16_t code,
                       const char *msg)
{
    struct slice m = slice_str(msg != NULL ? msg : "");
    uint8_t *p = buf_prepare(&c->out, frame_error_size(m.len));

    if (p == NULL) {
        return FERRY_ENOMEM;
    }
    buf_commit(&c->out, frame_write_error(p, id, code, m));
    return FERRY_OK;
}

void
ferry__conn_abort(struct ferry__conn *c, ferry_err code, const char *why)
{
    if (c->fd < 0) {
        return;
    }
    /* Whatever was queued is lost anyway; say why, then go. */
    buf_clear(&c->out);
    if (ferry__conn_send_error(c, 0, (uint16_t)code, why) == FERRY_OK) {
        (void)ferry__conn_flush(c);
    }
    ferry__conn_close(c, "protocol error from ferryd at '%s': %s: %s",
                      c->addr.text, ferry_errname(code), why);
}

/* ferryd's PINGs are owed only to a connection that announced an interval
 * (docs/protocol.md, Connection life), so only such a one may take ferryd's
 * silence for its death. */
static bool
conn_watches_peer(const struct ferry__conn *c)
{
    return c->heartbeat_ms > 0 && c->peer_heartbeat_ms > 0;
}

int
ferry__conn_timeout(const struct ferry__conn *c, int timeout_ms)
{
    uint64_t now = ferry__now_ms(), due, t;

    t = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms;
    if (c->fd < 0) {
        return timeout_ms;
    }
    if (c->heartbeat_ms > 0 && buf_len(&c->out) == 0) {
        /* With output queued, writability wakes us instead. */
        due = c->last_send_ms + c->heartbeat_ms;
        t = due <= now ? 0 : (due - now < t ? due - now : t);
    }
    if (conn_watches_peer(c)) {
        due = c->last_recv_ms + 3 * (uint64_t)c->peer_heartbeat_ms + 1;
        t = due <= now ? 0 : (due - now < t ? due - now : t);
    }
    return t == UINT64_MAX ? -1 : ferry__ms_to_timeout(t);
}

bool
ferry__conn_keepalive(struct ferry__conn *c)
{
    uint64_t now = ferry__now_ms();

    if (c->fd < 0) {
        return true;
    }
    if (conn_watches_peer(c) &&
        now - c->last_recv_ms > 3 * (uint64_t)c->peer_heartbeat_ms) {
        ferry__conn_close(c, "no sign of life from ferryd at '%s' for %llu ms",
                          c->addr.text,
                          (unsigned long long)(now - c->last_recv_ms));
        return false;
    }
    if (c->heartbeat_ms > 0 && buf_len(&c->out) == 0 &&
        now - c->last_send_ms >= c->heartbeat_ms) {
        (void)ferry__conn_send_empty(c, FRAME_PING, 0);
    }
    return true;
}

/* Milliseconds left until end, at least 0. */
static int
conn_left(uint64_t end)
{
    uint64_t now = ferry__now_ms();

    return now >= end ? 0 : ferry__ms_to_timeout(end - now);
}

/* Waits for the non-blocking connect to finish; FERRY_OK when it did. */
static ferry_err
conn_wait_connected(struct ferry__conn *c, int wake_fd, uint64_t end)
{
    struct pollfd pfd[2];
    socklen_t len = sizeof(int);
    int r, soerr = 0;

    for (;;) {
        pfd[0].fd = c->fd;
        pfd[0].events = POLLOUT;
        pfd[0].revents = 0;
        pfd[1].fd = wake_fd;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        r = poll(pfd, wake_fd >= 0 ? 2 : 1, conn_left(end));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            conn_setmsg(c, "connecting to '%s': poll: %s", c->addr.text,
                        strerror(errno));
            return FERRY_ECONNECTION;
        }
        if (wake_fd >= 0 && pfd[1].revents != 0) {
            conn_setmsg(c, "connecting to '%s': interrupted", c->addr.text);
            return FERRY_ECONNECTION;
        }
        if (r == 0) {
            conn_setmsg(c, "connecting to '%s': timed out", c->addr.text);
            return FERRY_ECONNECTION;
        }
        break;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        c->sys_err = soerr;
        conn_setmsg(c, "connecting to '%s': %s", c->addr.text, strerror(soerr));
        return FERRY_ECONNECTION;
    }
    return FERRY_OK;
}

/* Maps ferryd's refusal of our HELLO to what ferry__conn_open returns. */
static ferry_err
conn_hello_refused(struct ferry__conn *c, const struct frame *f)
{
    struct frame_error e;

    if (frame_parse_error(f, &e) != FERRY_OK) {
        conn_setmsg(c, "ferryd at '%s' sent a malformed ERROR", c->addr.text);
        return FERRY_ECONNECTION;
    }
    conn_setmsg(c, "ferryd at '%s' refused the connection: %s: %.*s",
                c->addr.text, ferry_errname((ferry_err)e.code), (int)e.msg.len,
                (const char *)e.msg.p);
    if (e.code == FERRY_EVERSION || e.code == FERRY_EUNAUTHORIZED) {
        return (ferry_err)e.code;
    }
    return FERRY_ECONNECTION;
}

/* Sends HELLO and waits for the answer until end. */
static ferry_err
conn_hello(struct ferry__conn *c, int wake_fd, uint64_t end)
{
    char pid[32];
    struct slice name, token = slice_str(c->token ? c->token : "");
    struct frame_hello_ok ok;
    struct frame f;
    bool readable, woken, got;
    ferry_err err;
    uint8_t *p;

    if (c->name != NULL) {
        name = slice_str(c->name);
    } else {
        snprintf(pid, sizeof(pid), "%ld", (long)getpid());
        name = slice_str(pid);
    }
    p = buf_prepare(&c->out, frame_hello_size(FERRY_PROTOCOL_VERSION,
                                              name.len, token.len));
    if (p == NULL) {
        conn_setmsg(c, "out of memory");
        return FERRY_ECONNECTION;
    }
    /* Version 2: ferryd then never sends a body above our max_frame. */
    buf_commit(&c->out, frame_write_hello(p, FERRY_PROTOCOL_VERSION, c->role,
                                          c->heartbeat_ms, c->max_frame, name,
                                          token));
    for (;;) {
        if (ferry__conn_flush(c) != FERRY_OK) {
            return FERRY_ECONNECTION;
        }
        err = ferry__conn_next(c, &f, &got);
        if (err != FERRY_OK) {
            conn_setmsg(c, "ferryd at '%s' answered HELLO with a bad frame",
                        c->addr.text);
            return FERRY_ECONNECTION;
        }
        if (got) {
            break;
        }
        if (conn_left(end) == 0) {
            conn_setmsg(c, "'%s' did not answer HELLO in time", c->addr.text);
            return FERRY_ECONNECTION;
        }
        if (ferry__conn_wait(c, wake_fd, conn_left(end), &readable, &woken) !=
            FERRY_OK) {
            conn_setmsg(c, "poll: %s", strerror(c->sys_err));
            return FERRY_ECONNECTION;
        }
        if (woken) {
            conn_setmsg(c, "connecting to '%s': interrupted", c->addr.text);
            return FERRY_ECONNECTION;
        }
        if (readable && ferry__conn_read(c) != FERRY_OK) {
            return FERRY_ECONNECTION;
        }
    }
    if (f.type == FRAME_ERROR) {
        return conn_hello_refused(c, &f);
    }
    if (f.type != FRAME_HELLO_OK || frame_parse_hello_ok(&f, &ok) != FERRY_OK) {
        conn_setmsg(c, "'%s' answered HELLO with %s, not HELLO_OK",
                    c->addr.text, frame_type_name(f.type));
        return FERRY_ECONNECTION;
    }
    if (ok.version == 0 || ok.version > FERRY_PROTOCOL_VERSION) {
        conn_setmsg(c, "ferryd at '%s' chose protocol version %u", c->addr.text,
                    (unsigned)ok.version);
        return FERRY_EVERSION;
    }
    c->peer_heartbeat_ms = ok.heartbeat_ms;
    c->peer_max_frame = ok.max_frame ? ok.max_frame : FRAME_DEFAULT_MAX_BODY;
    c->peer_max_deadline_ms = ok.max_deadline_ms;
    c->peer_default_deadline_ms = ok.default_deadline_ms;
    return FERRY_OK;
}

ferry_err
ferry__conn_open(struct ferry__conn *c, int wake_fd)
{
    uint64_t end = ferry__now_ms() + c->connect_timeout_ms;
    int one = 1, family = c->addr.ss.ss_family;
    ferry_err err = FERRY_ECONNECTION;

    if (c->fd >= 0) {
        return FERRY_OK;
    }
    buf_clear(&c->in);
    buf_clear(&c->out);
    c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->sys_err = errno;
        conn_setmsg(c, "socket: %s", strerror(errno));
        conn_schedule_retry(c);
        return FERRY_ECONNECTION;
    }
    if (family == AF_INET || family == AF_INET6) {
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(c->fd, (const struct sockaddr *)&c->addr.ss, c->addr.len) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            c->sys_err = errno;
            conn_setmsg(c, "connecting to '%s': %s", c->addr.text,
                        strerror(errno));
            goto out_close;
        }
        if (conn_wait_connected(c, wake_fd, end) != FERRY_OK) {
            goto out_close;
        }
    }
    err = conn_hello(c, wake_fd, end);
    if (err != FERRY_OK) {
        goto out_close;
    }
    c->backoff_ms = c->reconnect_min_ms;
    c->last_send_ms = c->last_recv_ms = ferry__now_ms();
    c->epoch++;
    return FERRY_OK;

out_close:
    ferry__conn_close(c, NULL);
    return err;
}
