/* SPDX-License-Identifier: MIT */
/*
 * test_client.c - unit tests of libferry (src/lib/): the call table, the
 * caller and the worker.
 *
 * The caller and worker talk to a fake ferryd: a forked child on a Unix
 * socket that follows a fixed script written with the frame codec and
 * exits non-zero when the library sends anything the script does not
 * expect. So each test checks both sides: what the program sees through the
 * public API, and the frames that went over the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "ferry.h"
#include "ferry_servants.h"
#include "lib/calltab.h"
#include "lib/client.h"
#include "lib/conn.h"
#include "proto/frame.h"

/* ------------------------------------------------------- call table */

static void
test_calltab_order_and_lookup(void **state)
{
    struct ferry__calltab t;
    struct ferry__call *calls[1000], *c, **all;
    uint64_t x = 88172645463325252ull, last = 0;
    size_t n, removed = 0;

    ferry__calltab_init(&t);
    for (size_t i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        calls[i] = ferry__calltab_get(&t);
        assert_non_null(calls[i]);
        calls[i]->id = i + 1;
        assert_int_equal(ferry__calltab_insert(&t, calls[i], x % 5000),
                         FERRY_OK);
        assert_int_equal(ferry__calltab_deadline(calls[i]), x % 5000);
    }
    assert_int_equal(ferry__calltab_count(&t), 1000);
    for (size_t i = 0; i < 1000; i++) {
        assert_ptr_equal(ferry__calltab_find(&t, i + 1), calls[i]);
    }
    assert_null(ferry__calltab_find(&t, 1001));
    /* Remove every third call from the middle of the heap. */
    for (size_t i = 0; i < 1000; i += 3) {
        ferry__calltab_remove(&t, calls[i]);
        ferry__calltab_put(&t, calls[i]);
        removed++;
    }
    assert_int_equal(ferry__calltab_count(&t), 1000 - removed);
    assert_null(ferry__calltab_find(&t, 1));
    assert_ptr_equal(ferry__calltab_find(&t, 2), calls[1]);
    /* Half the rest leave in deadline order. */
    for (size_t i = 0; i < 300; i++) {
        c = ferry__calltab_first(&t);
        assert_non_null(c);
        assert_true(ferry__calltab_deadline(c) >= last);
        last = ferry__calltab_deadline(c);
        ferry__calltab_remove(&t, c);
        ferry__calltab_put(&t, c);
    }
    /* Pooled records come back. */
    c = ferry__calltab_get(&t);
    assert_non_null(c);
    ferry__calltab_put(&t, c);
    all = ferry__calltab_take_all(&t, &n);
    assert_int_equal(n, 1000 - removed - 300);
    assert_int_equal(ferry__calltab_count(&t), 0);
    assert_null(ferry__calltab_first(&t));
    for (size_t i = 0; i < n; i++) {
        assert_null(ferry__calltab_find(&t, all[i]->id));
        ferry__calltab_put(&t, all[i]);
    }
    free(all);
    ferry__calltab_release(&t);
}

/* ------------------------------------------------------- fake ferryd */

/* In the child a failed check exits non-zero; the parent asserts on it. */
#define FAKE_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fake ferryd: %s:%d: failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                          \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

struct fake {
    char path[108]; /* the Unix socket */
    char addr[120]; /* "unix:" + path */
    pid_t pid;      /* the child */
};

/* One accepted connection in the child. */
struct fake_conn {
    int fd;        /* the socket */
    struct buf in; /* bytes read, not yet decoded */
};

static void
fake_start(struct fake *f, void (*script)(int lfd))
{
    static int seq;
    struct sockaddr_un sun;
    int lfd;

    snprintf(f->path, sizeof(f->path), "/tmp/ferry-test-client-%d-%d.sock",
             (int)getpid(), seq++);
    snprintf(f->addr, sizeof(f->addr), "unix:%s", f->path);
    unlink(f->path);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, f->path, strlen(f->path) + 1);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    fflush(NULL);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        alarm(20); /* a stuck script must not hang the suite */
        script(lfd);
        _exit(0);
    }
    close(lfd);
}

/* Waits for the script to end; asserts it saw what it expected. */
static void
fake_finish(struct fake *f)
{
    int status = 0;

    assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
    unlink(f->path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static struct fake_conn
fake_accept(int lfd)
{
    struct fake_conn c;

    c.fd = accept(lfd, NULL, NULL);
    FAKE_CHECK(c.fd >= 0);
    buf_init(&c.in);
    return c;
}

static void
fake_close(struct fake_conn *c)
{
    close(c->fd);
    buf_release(&c->in);
}

/* The next frame, or false at end of stream. The body stays valid until
 * the next call. */
static bool
fake_read(struct fake_conn *c, struct frame *f)
{
    size_t consumed;
    ssize_t n;

    for (;;) {
        FAKE_CHECK(frame_decode(buf_head(&c->in), buf_len(&c->in),
                                FRAME_DEFAULT_MAX_BODY, f,
                                &consumed) == FERRY_OK);
        if (consumed > 0) {
            buf_consume(&c->in, consumed);
            return true;
        }
        FAKE_CHECK(buf_reserve(&c->in, 65536) == FERRY_OK);
        n = read(c->fd, buf_tail(&c->in), buf_room(&c->in));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        buf_commit(&c->in, (size_t)n);
    }
}

/* The next frame that is not a PING; counts the PINGs skipped. */
static bool
fake_read_skip_pings(struct fake_conn *c, struct frame *f, int *pings)
{
    while (fake_read(c, f)) {
        if (f->type != FRAME_PING) {
            return true;
        }
        if (pings != NULL) {
            (*pings)++;
        }
    }
    return false;
}

static void
fake_write(struct fake_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        FAKE_CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void
fake_send_reply(struct fake_conn *c, uint64_t id, const char *payload)
{
    uint8_t out[256];
    size_t n = strlen(payload);

    frame_write_reply_header(out, id, (uint32_t)n);
    memcpy(out + FRAME_HEADER_SIZE, payload, n);
    fake_write(c, out, FRAME_HEADER_SIZE + n);
}

static void
fake_send_error(struct fake_conn *c, uint64_t id, ferry_err code,
                const char *msg)
{
    uint8_t out[256];

    fake_write(c, out,
               frame_write_error(out, id, (uint16_t)code, slice_str(msg)));
}

static void
fake_send_empty(struct fake_conn *c, uint8_t type, uint64_t id)
{
    uint8_t out[FRAME_HEADER_SIZE];

    fake_write(c, out, frame_write_empty(out, type, id));
}

static void
fake_send_request(struct fake_conn *c, uint64_t id, const char *service,
                  const char *payload)
{
    uint8_t out[512];

    fake_write(c, out,
               frame_write_request(out, id, 0, 1000, slice_str(service),
                                   slice_str(""), slice_str(payload)));
}

/* Reads HELLO, checks the role and heartbeat, answers a version-2
 * HELLO_OK announcing ok_heartbeat_ms and these deadlines. */
static void
fake_hello_full(struct fake_conn *c, uint8_t role, uint32_t heartbeat_ms,
                uint32_t ok_heartbeat_ms, uint32_t max_deadline_ms,
                uint32_t default_deadline_ms)
{
    struct frame_hello h;
    struct frame f;
    uint8_t out[128];

    FAKE_CHECK(fake_read(c, &f));
    FAKE_CHECK(f.type == FRAME_HELLO);
    FAKE_CHECK(frame_parse_hello(&f, &h) == FERRY_OK);
    FAKE_CHECK(h.version == FERRY_PROTOCOL_VERSION);
    FAKE_CHECK(h.role == role);
    FAKE_CHECK(h.heartbeat_ms == heartbeat_ms);
    FAKE_CHECK(h.name.len > 0);
    /* libferry speaks version 2 and announces its own limit. */
    FAKE_CHECK(h.max_frame != 0);
    fake_write(c, out,
               frame_write_hello_ok(out, 2, ok_heartbeat_ms,
                                    FRAME_DEFAULT_MAX_BODY, max_deadline_ms,
                                    default_deadline_ms, slice_str("fake/0")));
}

/* As fake_hello_full() with ferryd's default deadlines. */
static void
fake_hello_v2(struct fake_conn *c, uint8_t role, uint32_t heartbeat_ms,
              uint32_t max_deadline_ms, uint32_t default_deadline_ms)
{
    fake_hello_full(c, role, heartbeat_ms, 0, max_deadline_ms,
                    default_deadline_ms);
}

/* As fake_hello_full(), announcing ok_heartbeat_ms. */
static void
fake_hello_hb(struct fake_conn *c, uint8_t role, uint32_t heartbeat_ms,
              uint32_t ok_heartbeat_ms)
{
    fake_hello_full(c, role, heartbeat_ms, ok_heartbeat_ms, 60000, 5000);
}

/* As fake_hello_hb(), for a ferryd that promises no PING. */
static void
fake_hello(struct fake_conn *c, uint8_t role, uint32_t heartbeat_ms)
{
    fake_hello_hb(c, role, heartbeat_ms, 0);
}

/* Reads frames until the peer closes; any REQUEST/REPLY/ERROR fails. */
static void
fake_expect_eof(struct fake_conn *c)
{
    struct frame f;

    while (fake_read(c, &f)) {
        FAKE_CHECK(f.type == FRAME_PING || f.type == FRAME_CANCEL ||
                   f.type == FRAME_DRAIN);
    }
}

/* ------------------------------------------------------------ caller */

/* What a callback saw. */
struct seen {
    int calls;     /* times the callback ran */
    ferry_err err; /* last code */
    char data[64]; /* last data, NUL-terminated */
};

static void
record_cb(void *arg, ferry_err err, const void *data, size_t len)
{
    struct seen *s = arg;

    s->calls++;
    s->err = err;
    if (len >= sizeof(s->data)) {
        len = sizeof(s->data) - 1;
    }
    memcpy(s->data, data, len);
    s->data[len] = '\0';
}

static void
async_call(struct ferry_client *c, const char *service, const char *payload,
           uint32_t deadline_ms, struct seen *s)
{
    struct ferry_request r = {.service = service,
                              .payload = payload,
                              .payload_len = strlen(payload),
                              .deadline_ms = deadline_ms};

    assert_int_equal(ferry_call_async(c, &r, record_cb, s), FERRY_OK);
}

static void
script_out_of_order(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame_request q;
    struct frame f;
    uint64_t ids[4];
    char payload[4][8];

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    for (int i = 0; i < 4; i++) {
        FAKE_CHECK(fake_read(&c, &f));
        FAKE_CHECK(f.type == FRAME_REQUEST);
        FAKE_CHECK(frame_parse_request(&f, &q) == FERRY_OK);
        FAKE_CHECK(slice_eq(q.service, slice_str("svc")));
        FAKE_CHECK(q.payload.len < sizeof(payload[i]));
        memcpy(payload[i], q.payload.p, q.payload.len);
        payload[i][q.payload.len] = '\0';
        ids[i] = f.id;
        for (int j = 0; j < i; j++) {
            FAKE_CHECK(ids[j] != f.id);
        }
    }
    fake_send_empty(&c, FRAME_PING, 0);
    fake_send_reply(&c, 999999, "unknown id is ignored");
    fake_send_error(&c, ids[3], FERRY_EINVALID_ARGUMENT, "nope");
    for (int i = 2; i >= 0; i--) {
        fake_send_reply(&c, ids[i], payload[i]);
    }
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_pipelined_replies_in_any_order(void **state)
{
    struct seen s[4] = {{0}};
    struct ferry_client *c;
    struct fake fk;
    const char *payloads[4] = {"a", "bb", "ccc", "dddd"};

    fake_start(&fk, script_out_of_order);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    assert_int_equal(ferry_client_fd(c), -1);
    for (int i = 0; i < 4; i++) {
        async_call(c, "svc", payloads[i], 2000, &s[i]);
    }
    assert_int_equal(ferry_client_pending(c), 4);
    assert_true(ferry_client_fd(c) >= 0);
    assert_int_equal(ferry_client_run(c, 5000), FERRY_OK);
    assert_int_equal(ferry_client_pending(c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].err, FERRY_OK);
        assert_string_equal(s[i].data, payloads[i]);
    }
    assert_int_equal(s[3].calls, 1);
    assert_int_equal(s[3].err, FERRY_EINVALID_ARGUMENT);
    assert_string_equal(s[3].data, "nope");
    ferry_client_free(c);
    fake_finish(&fk);
}

/* ferry_cluster(): a REQUEST of ferry.cluster with no key or payload and
 * the deadline asked for; answered with a document, then an error. */
static void
script_cluster(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame_request q;
    struct frame f;

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    for (int i = 0; i < 2; i++) {
        FAKE_CHECK(fake_read(&c, &f));
        FAKE_CHECK(f.type == FRAME_REQUEST);
        FAKE_CHECK(frame_parse_request(&f, &q) == FERRY_OK);
        FAKE_CHECK(slice_eq(q.service, slice_str("ferry.cluster")));
        FAKE_CHECK(q.key.len == 0 && q.payload.len == 0);
        /* 0: ferryd's default, which the client may send as it is. */
        FAKE_CHECK(i == 0 ? q.deadline_ms == 1500u
                          : q.deadline_ms == 0 || q.deadline_ms == 5000u);
        if (i == 0) {
            fake_send_reply(&c, f.id, "{\"enabled\":false}");
        } else {
            fake_send_error(&c, f.id, FERRY_EUNAUTHORIZED, "needs a token");
        }
    }
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_cluster(void **state)
{
    struct ferry_reply r;
    struct ferry_client *c;
    struct fake fk;

    fake_start(&fk, script_cluster);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    assert_int_equal(ferry_cluster(c, 1500, &r), FERRY_OK);
    assert_int_equal(r.len, strlen("{\"enabled\":false}"));
    assert_memory_equal(r.data, "{\"enabled\":false}", r.len);
    ferry_reply_release(&r);
    assert_int_equal(ferry_cluster(c, 0, &r), FERRY_EUNAUTHORIZED);
    assert_int_equal(r.err, FERRY_EUNAUTHORIZED);
    ferry_reply_release(&r);
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_drop_then_serve(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    fake_close(&c); /* both calls are lost */

    c = fake_accept(lfd);
    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    fake_send_reply(&c, f.id, "back");
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_connection_loss_and_backoff(void **state)
{
    struct ferry_opts opts = {.reconnect_min_ms = 300, .reconnect_max_ms = 600};
    struct ferry_request r = {
        .service = "svc", .payload = "x", .payload_len = 1};
    struct ferry_reply rep;
    struct seen s[2] = {{0}};
    struct ferry_client *c;
    struct fake fk;

    fake_start(&fk, script_drop_then_serve);
    assert_int_equal(ferry_client_new(fk.addr, &opts, &c), FERRY_OK);
    assert_int_equal(ferry_client_connects(c), 0);
    async_call(c, "svc", "1", 5000, &s[0]);
    assert_int_equal(ferry_client_connects(c), 1);
    async_call(c, "svc", "2", 5000, &s[1]);
    assert_int_equal(ferry_client_run(c, 5000), FERRY_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].err, FERRY_ECONNECTION);
    }
    assert_int_equal(ferry_client_fd(c), -1);
    /* Within the backoff an asynchronous call fails at once... */
    assert_int_equal(ferry_call_async(c, &r, record_cb, &s[0]),
                     FERRY_ECONNECTION);
    assert_int_equal(s[0].calls, 1);
    /* ...and a synchronous one waits for the backoff and reconnects. */
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_OK);
    assert_int_equal(rep.len, 4);
    assert_memory_equal(rep.data, "back", 4);
    ferry_reply_release(&rep);
    assert_int_equal(ferry_client_connects(c), 2);
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_hello_then_leave(int lfd)
{
    struct fake_conn c = fake_accept(lfd);

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    fake_close(&c);
    close(lfd); /* nobody listens from now on */
}

static void
test_client_call_gives_up_at_deadline(void **state)
{
    struct ferry_opts opts = {.reconnect_min_ms = 20, .reconnect_max_ms = 40};
    struct ferry_request r = {.service = "svc",
                              .payload = "x",
                              .payload_len = 1,
                              .deadline_ms = 300};
    struct ferry_reply rep;
    struct ferry_client *c;
    struct fake fk;
    uint64_t t0;

    /* Never connected: no ferryd there, so it fails at once. */
    assert_int_equal(ferry_client_new("unix:/nonexistent/ferry.sock", &opts,
                                      &c),
                     FERRY_OK);
    r.deadline_ms = 20000;
    t0 = ferry__now_ms();
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_ECONNECTION);
    assert_true(ferry__now_ms() - t0 < 10000);
    ferry_reply_release(&rep);
    assert_int_equal(ferry_client_connects(c), 0);
    ferry_client_free(c);

    /* Connected once, then ferryd is gone: the call keeps reconnecting
     * until its deadline only. */
    fake_start(&fk, script_hello_then_leave);
    assert_int_equal(ferry_client_new(fk.addr, &opts, &c), FERRY_OK);
    assert_int_equal(ferry_client_connect(c), FERRY_OK);
    fake_finish(&fk);
    r.deadline_ms = 300;
    t0 = ferry__now_ms();
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_ECONNECTION);
    assert_true(ferry__now_ms() - t0 >= 300);
    assert_true(rep.len > 0);
    ferry_reply_release(&rep);
    assert_int_equal(ferry_client_connects(c), 1);
    ferry_client_free(c);
}

static void
script_silent_then_cancel(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame_request q;
    struct frame f;
    uint64_t id;

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    FAKE_CHECK(frame_parse_request(&f, &q) == FERRY_OK);
    FAKE_CHECK(q.deadline_ms == 100);
    id = f.id;
    /* No answer: the caller gives up after its deadline and cancels. */
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_CANCEL);
    FAKE_CHECK(f.id == id);
    fake_send_error(&c, id, FERRY_ECANCELLED, "late answer is ignored");
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    FAKE_CHECK(f.id != id);
    fake_send_reply(&c, f.id, "fresh");
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_local_deadline_cancels(void **state)
{
    struct ferry_request r = {
        .service = "svc", .payload = "x", .payload_len = 1, .deadline_ms = 100};
    struct ferry_reply rep;
    struct ferry_client *c;
    struct fake fk;

    fake_start(&fk, script_silent_then_cancel);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_EDEADLINE);
    assert_int_equal(rep.err, FERRY_EDEADLINE);
    ferry_reply_release(&rep);
    assert_int_equal(ferry_client_pending(c), 0);
    /* The stale ERROR for the cancelled call comes first and must not
     * end the next call. */
    r.deadline_ms = 2000;
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_OK);
    assert_int_equal(rep.len, 5);
    assert_memory_equal(rep.data, "fresh", 5);
    ferry_reply_release(&rep);
    ferry_client_free(c);
    fake_finish(&fk);
}

/* ferryd says (HELLO_OK version 2): deadline 0 means 100 ms, and no
 * deadline is above 150 ms. Nothing is answered. */
static void
script_short_deadlines(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;
    uint64_t id;

    fake_hello_v2(&c, FRAME_ROLE_CALLER, 0, 150, 100);
    for (int i = 0; i < 2; i++) {
        FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
        id = f.id;
        FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_CANCEL);
        FAKE_CHECK(f.id == id);
    }
    fake_expect_eof(&c);
    fake_close(&c);
}

/*
 * libferry's safety timer follows HELLO_OK's deadlines: deadline_ms 0 is
 * ferryd's default_deadline_ms, and a longer one is cut to
 * max_deadline_ms, plus the slack. With its own default (5000 ms) or the
 * asked 60000 ms, each call would wait seconds, not a fraction of one.
 */
static void
test_client_deadlines_from_hello_ok(void **state)
{
    struct ferry_request r = {
        .service = "svc", .payload = "x", .payload_len = 1, .deadline_ms = 0};
    struct ferry_reply rep;
    struct ferry_client *c;
    struct fake fk;
    struct timespec t0, t1;

    (void)state;
    fake_start(&fk, script_short_deadlines);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_EDEADLINE);
    ferry_reply_release(&rep);
    r.deadline_ms = 60000;
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_EDEADLINE);
    ferry_reply_release(&rep);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 4);
    assert_int_equal(c->conn.peer_default_deadline_ms, 100);
    assert_int_equal(c->conn.peer_max_deadline_ms, 150);
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_silent_daemon(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;
    int pings = 0;

    /* A caller that asks for heartbeats announces them; this ferryd
     * promises a PING every 100 ms and then sends nothing at all. */
    fake_hello_hb(&c, FRAME_ROLE_CALLER, 100, 100);
    FAKE_CHECK(fake_read_skip_pings(&c, &f, &pings) &&
               f.type == FRAME_REQUEST);
    while (fake_read(&c, &f)) {
        FAKE_CHECK(f.type == FRAME_PING);
        pings++;
    }
    FAKE_CHECK(pings >= 1); /* the caller kept its promise meanwhile */
    fake_close(&c);
}

static void
test_client_heartbeat_gives_up_silent_daemon(void **state)
{
    struct ferry_opts opts = {.heartbeat_ms = 100};
    struct ferry_request r = {.service = "svc",
                              .payload = "x",
                              .payload_len = 1,
                              .deadline_ms = 20000};
    struct ferry_reply rep;
    struct ferry_client *c;
    struct fake fk;
    uint64_t t0;

    fake_start(&fk, script_silent_daemon);
    assert_int_equal(ferry_client_new(fk.addr, &opts, &c), FERRY_OK);
    t0 = ferry__now_ms();
    /* Three of ferryd's 100 ms intervals of silence end the call, not its
     * 20 s deadline. */
    assert_int_equal(ferry_call(c, &r, &rep), FERRY_ECONNECTION);
    assert_true(ferry__now_ms() - t0 < 10000);
    assert_non_null(strstr((const char *)rep.data, "no sign of life"));
    ferry_reply_release(&rep);
    assert_int_equal(ferry_client_fd(c), -1);
    assert_int_equal(ferry_client_connects(c), 1);
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_cancel(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;
    uint64_t id;

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    id = f.id;
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_CANCEL);
    FAKE_CHECK(f.id == id);
    fake_send_error(&c, id, FERRY_ECANCELLED, "cancelled by the caller");
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_cancel(void **state)
{
    struct ferry_request r = {.service = "svc",
                              .payload = "x",
                              .payload_len = 1,
                              .deadline_ms = 10000};
    struct ferry_client *c;
    struct seen s = {0};
    struct fake fk;
    uint64_t id = 0;

    fake_start(&fk, script_cancel);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    assert_int_equal(ferry_call_start(c, &r, record_cb, &s, &id), FERRY_OK);
    assert_true(id != 0);
    assert_int_equal(ferry_call_cancel(c, id + 1), FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_client_run(c, 50), FERRY_EDEADLINE);
    assert_int_equal(s.calls, 0);
    /* The call ends with ferryd's answer to the CANCEL. */
    assert_int_equal(ferry_call_cancel(c, id), FERRY_OK);
    assert_int_equal(ferry_client_run(c, 5000), FERRY_OK);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, FERRY_ECANCELLED);
    assert_string_equal(s.data, "cancelled by the caller");
    assert_int_equal(ferry_call_cancel(c, id), FERRY_EINVALID_ARGUMENT);
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_refuse_hello(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame_hello h;
    struct frame f;

    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_HELLO);
    FAKE_CHECK(frame_parse_hello(&f, &h) == FERRY_OK);
    FAKE_CHECK(slice_eq(h.token, slice_str("wrong")));
    FAKE_CHECK(slice_eq(h.name, slice_str("tester")));
    fake_send_error(&c, 0, FERRY_EUNAUTHORIZED, "bad token");
    fake_close(&c);
}

static void
test_client_hello_refused(void **state)
{
    struct ferry_opts opts = {.name = "tester", .token = "wrong"};
    struct ferry_client *c;
    struct fake fk;

    fake_start(&fk, script_refuse_hello);
    assert_int_equal(ferry_client_new(fk.addr, &opts, &c), FERRY_OK);
    assert_string_equal(ferry_client_errmsg(c), "");
    assert_int_equal(ferry_client_connect(c), FERRY_EUNAUTHORIZED);
    assert_int_equal(ferry_client_fd(c), -1);
    assert_non_null(strstr(ferry_client_errmsg(c), "UNAUTHORIZED: bad token"));
    ferry_client_free(c);
    fake_finish(&fk);
}

static void
script_hold(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;

    fake_hello(&c, FRAME_ROLE_CALLER, 0);
    FAKE_CHECK(fake_read(&c, &f) && f.type == FRAME_REQUEST);
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_client_free_cancels_pending(void **state)
{
    struct ferry_client *c;
    struct seen s = {0};
    struct fake fk;

    fake_start(&fk, script_hold);
    assert_int_equal(ferry_client_new(fk.addr, NULL, &c), FERRY_OK);
    async_call(c, "svc", "x", 5000, &s);
    assert_int_equal(ferry_client_run(c, 50), FERRY_EDEADLINE);
    assert_int_equal(s.calls, 0);
    ferry_client_free(c);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.err, FERRY_ECANCELLED);
    fake_finish(&fk);
}

static void
test_client_rejects_bad_requests(void **state)
{
    struct ferry_request r = {.service = ""};
    struct ferry_client *c;
    struct seen s = {0};
    char name[300];

    struct ferry_opts small = {.max_frame = 1027};

    assert_int_equal(ferry_client_new("no-port", NULL, &c),
                     FERRY_EINVALID_ARGUMENT);
    /* ferryd would refuse it: the largest ERROR body must fit. */
    assert_int_equal(ferry_client_new("unix:/nonexistent/ferry.sock", &small,
                                      &c),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_client_new("unix:/nonexistent/ferry.sock", NULL, &c),
                     FERRY_OK);
    assert_int_equal(ferry_call_async(c, &r, record_cb, &s),
                     FERRY_EINVALID_ARGUMENT);
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    r.service = name;
    assert_int_equal(ferry_call_async(c, &r, record_cb, &s),
                     FERRY_EINVALID_ARGUMENT);
    r.service = "svc";
    r.key_len = 2000;
    r.key = name;
    assert_int_equal(ferry_call_async(c, &r, record_cb, &s),
                     FERRY_EINVALID_ARGUMENT);
    r.key_len = 0;
    assert_int_equal(ferry_call_async(c, &r, record_cb, &s), FERRY_ECONNECTION);
    assert_int_equal(s.calls, 0);
    ferry_client_free(c);
}

/* ------------------------------------------------------------ worker */

/* The program side of the worker tests. */
struct wstate {
    struct ferry_worker *w;    /* the worker under test */
    struct ferry_job *held[4]; /* jobs answered later */
    int nheld;                 /* entries in held */
    uint64_t cancelled_id;     /* the job ferryd cancelled */
    bool stop_seen;            /* the "stop" request came */
    bool x_seen;               /* the "x" request came */
};

static void
worker_handler(struct ferry_job *job, void *arg)
{
    struct wstate *st = arg;
    size_t len;
    const char *p = ferry_job_payload(job, &len);

    assert_string_equal(ferry_job_service(job), "svc");
    assert_true(ferry_job_remaining_ms(job) <= 1000);
    if ((len == 5 && memcmp(p, "later", 5) == 0) ||
        (len == 8 && memcmp(p, "cancelme", 8) == 0) ||
        (len == 4 && memcmp(p, "hold", 4) == 0)) {
        assert_true(st->nheld < 4);
        st->held[st->nheld++] = job;
        return;
    }
    assert_int_equal(ferry_job_reply(job, p, len), FERRY_OK);
    if (len == 4 && memcmp(p, "stop", 4) == 0) {
        st->stop_seen = true;
        ferry_worker_stop(st->w);
    }
    if (len == 1 && p[0] == 'x') {
        st->x_seen = true;
        /* A job from the lost connection: answering drops it. */
        while (st->nheld > 0) {
            assert_int_equal(ferry_job_reply(st->held[--st->nheld], "old", 3),
                             FERRY_OK);
        }
    }
}

static void
worker_cancel_cb(struct ferry_job *job, void *arg)
{
    struct wstate *st = arg;

    /* Told once, with the job still held. */
    assert_int_equal(st->cancelled_id, 0);
    st->cancelled_id = ferry_job_id(job);
}

/* Reads REGISTER for "svc" with credit 2 and accepts it. */
static void
fake_register(struct fake_conn *c)
{
    struct frame_register g;
    struct frame f;

    FAKE_CHECK(fake_read_skip_pings(c, &f, NULL));
    FAKE_CHECK(f.type == FRAME_REGISTER);
    FAKE_CHECK(frame_parse_register(&f, &g) == FERRY_OK);
    FAKE_CHECK(slice_eq(g.service, slice_str("svc")));
    FAKE_CHECK(g.credit == 2);
    fake_send_empty(c, FRAME_REGISTERED, f.id);
}

static void
script_worker(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;
    bool now = false, later = false, stop = false, drain = false;
    int pings = 0;

    fake_hello(&c, FRAME_ROLE_WORKER, 100);
    fake_register(&c);
    fake_send_request(&c, 10, "svc", "now");
    fake_send_request(&c, 11, "svc", "later");
    fake_send_request(&c, 12, "svc", "cancelme");
    fake_send_empty(&c, FRAME_CANCEL, 12);
    while (!drain && fake_read_skip_pings(&c, &f, &pings)) {
        if (f.type == FRAME_DRAIN) {
            FAKE_CHECK(stop);
            drain = true;
            continue;
        }
        FAKE_CHECK(f.type == FRAME_REPLY);
        FAKE_CHECK(f.id != 12); /* cancelled: the answer is dropped */
        if (f.id == 10) {
            FAKE_CHECK(slice_eq(f.body, slice_str("now")));
            now = true;
        } else if (f.id == 11) {
            FAKE_CHECK(now);
            FAKE_CHECK(slice_eq(f.body, slice_str("later")));
            later = true;
            fake_send_request(&c, 13, "svc", "stop");
        } else {
            FAKE_CHECK(f.id == 13 && later);
            stop = true;
        }
    }
    FAKE_CHECK(drain);
    FAKE_CHECK(pings >= 1); /* idle for more than 100 ms */
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_worker_replies_now_later_and_drains(void **state)
{
    struct ferry_opts opts = {.heartbeat_ms = 100};
    struct wstate st = {0};
    bool was_ready = false;
    struct fake fk;
    int turns = 0, held_at = 0;

    fake_start(&fk, script_worker);
    assert_int_equal(ferry_worker_new(fk.addr, &opts, &st.w), FERRY_OK);
    assert_int_equal(ferry_worker_poll(st.w, 0), FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_worker_register(st.w, "svc", 0, worker_handler, &st),
                     FERRY_EINVALID_ARGUMENT);
    assert_int_equal(ferry_worker_register(st.w, "svc", 2, worker_handler, &st),
                     FERRY_OK);
    ferry_worker_on_cancel(st.w, worker_cancel_cb, &st);
    while (!st.stop_seen && turns++ < 500) {
        assert_int_equal(ferry_worker_poll(st.w, 10), FERRY_OK);
        was_ready = was_ready || ferry_worker_is_ready(st.w);
        if (st.nheld == 2 && held_at == 0) {
            held_at = turns;
        }
        if (held_at > 0 && turns == held_at + 25) {
            /* After ~250 ms, with pings in between: answer the held jobs,
             * outside any handler. The cancelled one is dropped. */
            assert_int_equal(ferry_job_id(st.held[0]), 11);
            assert_int_equal(ferry_job_id(st.held[1]), 12);
            assert_int_equal(st.cancelled_id, 12);
            assert_int_equal(ferry_job_reply(st.held[0], "later", 5), FERRY_OK);
            assert_int_equal(
                ferry_job_fail(st.held[1], FERRY_EWORKER_ERROR, "too late"),
                FERRY_OK);
            st.nheld = 0;
        }
    }
    assert_true(was_ready);
    assert_true(st.stop_seen);
    /* Stopped: the next turns say DRAIN and flush. */
    assert_int_equal(ferry_worker_poll(st.w, 0), FERRY_OK);
    assert_int_equal(ferry_worker_poll(st.w, 0), FERRY_OK);
    ferry_worker_free(st.w);
    fake_finish(&fk);
}

static void
script_refuse_register(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;

    fake_hello(&c, FRAME_ROLE_WORKER, FERRY__DEFAULT_HEARTBEAT_MS);
    FAKE_CHECK(fake_read_skip_pings(&c, &f, NULL));
    FAKE_CHECK(f.type == FRAME_REGISTER);
    fake_send_error(&c, f.id, FERRY_EINVALID_ARGUMENT, "bad name");
    fake_expect_eof(&c);
    fake_close(&c);
}

static void
test_worker_registration_refused(void **state)
{
    struct ferry_worker *w;
    struct wstate st = {0};
    struct fake fk;

    fake_start(&fk, script_refuse_register);
    assert_int_equal(ferry_worker_new(fk.addr, NULL, &w), FERRY_OK);
    st.w = w;
    assert_int_equal(ferry_worker_register(w, "svc", 2, worker_handler, &st),
                     FERRY_OK);
    assert_int_equal(ferry_worker_run(w, NULL, NULL), FERRY_EINVALID_ARGUMENT);
    assert_non_null(strstr(ferry_worker_errmsg(w), "refused service 'svc'"));
    assert_non_null(strstr(ferry_worker_errmsg(w), "bad name"));
    ferry_worker_free(w);
    fake_finish(&fk);
}

static void
script_reconnect(int lfd)
{
    struct fake_conn c = fake_accept(lfd);
    struct frame f;

    fake_hello(&c, FRAME_ROLE_WORKER, FERRY__DEFAULT_HEARTBEAT_MS);
    fake_register(&c);
    fake_send_request(&c, 5, "svc", "hold");
    usleep(100 * 1000);
    fake_close(&c); /* ferryd would fail request 5 with WORKER_LOST */

    c = fake_accept(lfd);
    fake_hello(&c, FRAME_ROLE_WORKER, FERRY__DEFAULT_HEARTBEAT_MS);
    fake_register(&c);
    fake_send_request(&c, 6, "svc", "x");
    FAKE_CHECK(fake_read_skip_pings(&c, &f, NULL));
    FAKE_CHECK(f.type == FRAME_REPLY && f.id == 6);
    fake_expect_eof(&c); /* no answer for 5 on this connection */
    fake_close(&c);
}

static void
test_worker_reconnects_and_drops_old_jobs(void **state)
{
    struct ferry_opts opts = {.reconnect_min_ms = 20};
    struct wstate st = {0};
    struct fake fk;
    int turns = 0;

    fake_start(&fk, script_reconnect);
    assert_int_equal(ferry_worker_new(fk.addr, &opts, &st.w), FERRY_OK);
    assert_int_equal(ferry_worker_register(st.w, "svc", 2, worker_handler, &st),
                     FERRY_OK);
    while (!st.x_seen && turns++ < 500) {
        assert_int_equal(ferry_worker_poll(st.w, 10), FERRY_OK);
    }
    assert_true(st.x_seen);
    assert_int_equal(st.nheld, 0);
    assert_int_equal(ferry_worker_poll(st.w, 0), FERRY_OK);
    ferry_worker_free(st.w);
    fake_finish(&fk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calltab_order_and_lookup),
        cmocka_unit_test(test_client_pipelined_replies_in_any_order),
        cmocka_unit_test(test_client_cluster),
        cmocka_unit_test(test_client_connection_loss_and_backoff),
        cmocka_unit_test(test_client_call_gives_up_at_deadline),
        cmocka_unit_test(test_client_local_deadline_cancels),
        cmocka_unit_test(test_client_deadlines_from_hello_ok),
        cmocka_unit_test(test_client_heartbeat_gives_up_silent_daemon),
        cmocka_unit_test(test_client_cancel),
        cmocka_unit_test(test_client_hello_refused),
        cmocka_unit_test(test_client_free_cancels_pending),
        cmocka_unit_test(test_client_rejects_bad_requests),
        cmocka_unit_test(test_worker_replies_now_later_and_drains),
        cmocka_unit_test(test_worker_registration_refused),
        cmocka_unit_test(test_worker_reconnects_and_drops_old_jobs),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
