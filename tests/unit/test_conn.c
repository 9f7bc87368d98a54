/* SPDX-License-Identifier: MIT */
/*
 * test_conn.c - a connection's buffers on a real loop and unix socket: a
 * conn holds a block of the loop's pool only while it has bytes pending
 * (output not yet written, a frame cut by a read) and puts it back once
 * they are gone, both halves of its output included; the pool keeps no
 * more free blocks than its bound however many conns held one at once;
 * and closing gives every block back (loop_release checks that).
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
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "proto/frame.h"

#define BURST_FRAME 1024 /* bytes of each frame a burst queues */
#define MAX_CLIENTS 8

struct fixture {
    struct config cfg;
    struct loop loop;
    char dir[64];        /* temporary folder of the socket */
    char path[128];      /* the unix socket */
    unsigned frames;     /* frames the conns handled */
    size_t got;          /* bytes client 0 has read */
    int fd[MAX_CLIENTS]; /* client sockets, -1 when none */
};

/* A PING with id n > 0 asks for a burst of n frames of BURST_FRAME bytes. */
static ferry_err
test_frame(struct conn *c, const struct frame *f)
{
    struct fixture *fx = container_of(c->loop, struct fixture, loop);

    fx->frames++;
    for (uint64_t i = 0; f->type == FRAME_PING && i < f->id; i++) {
        uint8_t *p = conn_out_prepare(c, BURST_FRAME);
        size_t n;
        if (p == NULL) {
            return FERRY_ENOMEM;
        }
        n = frame_write_reply_header(p, i + 1, BURST_FRAME - FRAME_HEADER_SIZE);
        memset(p + n, 'x', BURST_FRAME - n);
        conn_out_commit(c, BURST_FRAME);
    }
    return FERRY_OK;
}

static void
test_closing(struct conn *c)
{
}

static const struct conn_ops test_ops = {
    .role = "test",
    .pause_on_high = false,
    .frame = test_frame,
    .closing = test_closing,
};

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char addr[160];

    assert_non_null(fx);
    log_set_level(LOG_LVL_WARN);
    assert_int_equal(config_init(&fx->cfg), FERRY_OK);
    fx->cfg.handshake_timeout_ms = 60000;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ferry-test-conn-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/s.sock", fx->dir);
    assert_int_equal(loop_init(&fx->loop, &fx->cfg), FERRY_OK);
    fx->loop.accept_ops = &test_ops;
    snprintf(addr, sizeof(addr), "unix:%s", fx->path);
    assert_int_equal(loop_listen(&fx->loop, addr), FERRY_OK);
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        fx->fd[i] = -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;

    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (fx->fd[i] >= 0) {
            close(fx->fd[i]);
        }
    }
    loop_destroy_conns(&fx->loop);
    /* Runs the close callbacks; asserts every block came back. */
    loop_release(&fx->loop);
    config_release(&fx->cfg);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Runs loop turns, one at a time, until done(fx, arg) holds; false after
 * 10 s (a hang fails the test rather than blocking it). */
static bool
run_until(struct fixture *fx, bool (*done)(struct fixture *, size_t),
          size_t arg)
{
    uint64_t end = uv_hrtime() + UINT64_C(10000000000);

    while (!done(fx, arg)) {
        if (uv_hrtime() > end) {
            return false;
        }
        uv_run(&fx->loop.uv, UV_RUN_NOWAIT);
    }
    return true;
}

static bool
conns_open(struct fixture *fx, size_t n)
{
    return fx->loop.n_conns >= n;
}

static bool
frames_handled(struct fixture *fx, size_t n)
{
    return fx->frames >= n;
}

/* Connects client i; returns its conn in the loop (ids start at 1). */
static struct conn *
client(struct fixture *fx, size_t i)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, fx->path, strlen(fx->path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    fx->fd[i] = fd;
    assert_true(run_until(fx, conns_open, i + 1));
    assert_non_null(loop_conn(&fx->loop, i + 1));
    return loop_conn(&fx->loop, i + 1);
}

static void
send_all(int fd, const uint8_t *p, size_t n)
{
    assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
}

/* Sends PING(id) from client i, the first cut bytes only when cut > 0. */
static void
send_ping(struct fixture *fx, size_t i, uint64_t id, size_t cut)
{
    uint8_t f[FRAME_HEADER_SIZE];

    frame_write_empty(f, FRAME_PING, id);
    send_all(fx->fd[i], f, cut > 0 ? cut : sizeof(f));
}

/* Reads what client i has been sent, without waiting; returns the bytes. */
static size_t
drain_client(struct fixture *fx, size_t i)
{
    uint8_t scratch[65536];
    size_t got = 0;
    ssize_t n;

    while ((n = recv(fx->fd[i], scratch, sizeof(scratch), 0)) > 0) {
        got += (size_t)n;
    }
    assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    return got;
}

static bool
holds_nothing(const struct conn *c)
{
    return c->in.data == NULL && c->out[0].data == NULL &&
           c->out[1].data == NULL;
}

/* A burst that the socket takes at once: the block goes back to the pool
 * in the flush that wrote it, and the next burst gets the same block. */
static void
test_output_block_back_after_write(void **state)
{
    struct fixture *fx = *state;
    struct conn *c = client(fx, 0);
    uint8_t *block;

    /* After HELLO a real conn is like this: nothing pending, no buffer. */
    assert_true(holds_nothing(c));
    assert_int_equal(fx->loop.bufs.n_held, 0);

    send_ping(fx, 0, 16, 0);
    assert_true(run_until(fx, frames_handled, 1));
    /* Queued, not yet flushed (the prepare hook runs before the next
     * poll): the collecting half holds a block. */
    assert_int_equal(conn_out_pending(c), 16 * BURST_FRAME);
    block = c->out[c->out_cur].data;
    assert_non_null(block);
    assert_int_equal(fx->loop.bufs.n_held, 1);

    uv_run(&fx->loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(conn_out_pending(c), 0);
    assert_true(holds_nothing(c));
    assert_int_equal(fx->loop.bufs.n_held, 0);
    assert_int_equal(fx->loop.bufs.n_free, 1);
    assert_int_equal(drain_client(fx, 0), 16 * BURST_FRAME);

    send_ping(fx, 0, 1, 0);
    assert_true(run_until(fx, frames_handled, 2));
    assert_ptr_equal(c->out[c->out_cur].data, block);
    assert_int_equal(fx->loop.bufs.n_free, 0);
}

/* Reads client 0; whether it has want bytes and its conn wrote them. */
static bool
out_drained(struct fixture *fx, size_t want)
{
    struct conn *c = loop_conn(&fx->loop, 1);

    fx->got += drain_client(fx, 0);
    return fx->got >= want && conn_out_pending(c) == 0 && !c->writing;
}

/*
 * A burst larger than the socket takes: while the client does not read,
 * the conn holds its output, and frames queued meanwhile go to the other
 * half, which takes a block of its own; once the client has read it all,
 * the conn holds no buffer at all (the grown one freed, not pooled).
 */
static void
test_pending_output_then_nothing(void **state)
{
    struct fixture *fx = *state;
    struct conn *c = client(fx, 0);

    send_ping(fx, 0, 1024, 0);
    assert_true(run_until(fx, frames_handled, 1));
    for (int i = 0; i < 4; i++) {
        uv_run(&fx->loop.uv, UV_RUN_NOWAIT);
    }
    assert_true(c->writing);
    assert_true(conn_out_pending(c) > 0);
    assert_non_null(c->out[c->out_cur ^ 1].data);

    send_ping(fx, 0, 4, 0);
    assert_true(run_until(fx, frames_handled, 2));
    assert_non_null(c->out[c->out_cur].data);
    assert_int_equal(fx->loop.bufs.n_held, 2);

    assert_true(run_until(fx, out_drained, 1028 * BURST_FRAME));
    assert_int_equal(fx->got, 1028 * BURST_FRAME);
    assert_true(holds_nothing(c));
    assert_int_equal(fx->loop.bufs.n_held, 0);
    assert_true(fx->loop.bufs.n_free <= fx->loop.bufs.max_free);
}

static bool
in_holds(struct fixture *fx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (loop_conn(&fx->loop, i + 1)->in.data == NULL) {
            return false;
        }
    }
    return true;
}

/*
 * Frames cut by a read: each conn keeps the cut bytes in a block of its
 * own until the rest arrives, then puts it back; with more conns than the
 * pool's bound holding one at once, the pool keeps only its bound.
 */
static void
test_cut_frames_and_bound(void **state)
{
    struct fixture *fx = *state;
    const size_t n = 6;

    fx->loop.bufs.max_free = 2;
    for (size_t i = 0; i < n; i++) {
        struct conn *c = client(fx, i);
        assert_true(holds_nothing(c));
        send_ping(fx, i, 0, 10);
    }
    assert_true(run_until(fx, in_holds, n));
    assert_int_equal(fx->frames, 0);
    assert_int_equal(fx->loop.bufs.n_held, n);
    assert_int_equal(fx->loop.bufs.n_free, 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t f[FRAME_HEADER_SIZE];
        frame_write_empty(f, FRAME_PING, 0);
        send_all(fx->fd[i], f + 10, sizeof(f) - 10);
    }
    assert_true(run_until(fx, frames_handled, n));
    for (size_t i = 0; i < n; i++) {
        assert_true(holds_nothing(loop_conn(&fx->loop, i + 1)));
    }
    assert_int_equal(fx->loop.bufs.n_held, 0);
    assert_int_equal(fx->loop.bufs.n_free, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output_block_back_after_write,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_output_then_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cut_frames_and_bound, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
