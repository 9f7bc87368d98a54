# SPDX-License-Identifier: MIT
"""Deadlines and heartbeats: a request nobody answers ends with DEADLINE
on time; a worker that goes silent is dropped after three heartbeat
intervals and its requests fail with WORKER_LOST; one that keeps pinging
is kept; a caller that announced no heartbeat is never timed out."""
import time

from ferrytest import (FerryTestCase, REQUEST, ROLE_WORKER, describe)

# Scheduling slack allowed after a deadline: the machine is noisy and the
# daemon runs under ASan. Early answers are never allowed.
SLACK = 1.5


class TestTiming(FerryTestCase):
    TIME_LIMIT = 60

    def test_never_answering_worker_deadline(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "never", "--credit", "10", "--mode", "never")
        c = self.conn(d)
        sent = {}
        for i, ms in enumerate((300, 1000, 2000), start=1):
            sent[i] = (time.monotonic(), ms)
            c.send_request(i, "never", b"x", deadline_ms=ms)
        got = c.collect(sent, timeout=10)
        for i, (f, t) in got.items():
            t0, ms = sent[i]
            el = t - t0
            self.assertError(f, "DEADLINE", f"id {i}")
            self.assertGreaterEqual(el, ms / 1000 - 0.005,
                                    f"DEADLINE {ms} ms came early: {el:.3f}s")
            self.assertLess(el, ms / 1000 + SLACK,
                            f"DEADLINE {ms} ms came late: {el:.3f}s")

    def test_default_deadline(self):
        d = self.daemon("--default-deadline-ms", "700")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "never", "--mode", "never")
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "never", b"x", deadline_ms=0, timeout=10)
        el = time.monotonic() - t0
        self.assertError(f, "DEADLINE")
        self.assertGreaterEqual(el, 0.695)
        self.assertLess(el, 0.7 + SLACK)

    def test_deadline_reaches_worker_as_time_left(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("late", credit=1)
        c = self.conn(d)
        c.send_request(1, "late", b"a", deadline_ms=4000)
        c.send_request(2, "late", b"b", deadline_ms=4000)
        f1 = w.recv_frame(timeout=5)
        time.sleep(1.0)
        w.send_reply(f1.id, b"a")
        f2 = w.recv_frame(timeout=5)
        self.assertEqual(f2.type, REQUEST)
        from ferrytest import parse_request
        left = parse_request(f2.body)["deadline_ms"]
        # Request 2 waited about a second in the queue.
        self.assertLess(left, 3200, "queued time not deducted")
        self.assertGreater(left, 1500)
        w.send_reply(f2.id, b"b")
        got = c.collect([1, 2], timeout=5)
        self.assertReply(got[1][0], b"a")
        self.assertReply(got[2][0], b"b")

    def test_silent_worker_dropped_by_heartbeat(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER, heartbeat_ms=200)
        w.register("silent", credit=4)
        last_sent = time.monotonic()
        c = self.conn(d)
        c.send_request(1, "silent", b"x", deadline_ms=20000)
        c.send_request(2, "silent", b"y", deadline_ms=20000)
        for _ in range(2):
            f = w.recv_frame(timeout=5)
            self.assertEqual(f.type, REQUEST, describe(f))
        # From now on the worker sends nothing.
        got = c.collect([1, 2], timeout=10)
        for i, (f, t) in got.items():
            self.assertError(f, "WORKER_LOST", f"id {i}")
            el = t - last_sent
            self.assertGreaterEqual(el, 0.58, f"dropped after only {el:.3f}s"
                                    " of silence (3 x 200 ms allowed)")
            self.assertLess(el, 0.6 + SLACK, f"dropped only after {el:.3f}s")
        # ferryd closed the worker's connection.
        w.expect_closed(timeout=3)

    def test_pinging_worker_is_kept(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER, heartbeat_ms=200)
        w.register("alive", credit=2)
        c = self.conn(d)    # heartbeat 0: never timed out
        c.send_request(1, "alive", b"slow job", deadline_ms=10000)
        f = w.recv_frame(timeout=5)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            w.send_ping()
            time.sleep(0.1)
        w.send_reply(f.id, b"done")
        self.assertReply(c.recv_frame(timeout=5), b"done")
        # The idle caller (heartbeat 0) stays connected for 1.5 s more.
        time.sleep(1.5)
        self.assertReply(c.call(2, "echo", b"still"), b"still")

    def test_daemon_pings_idle_client(self):
        """A client that announced a heartbeat gets PINGs from ferryd when
        the connection is idle (HELLO_OK tells the interval)."""
        d = self.daemon("--heartbeat-ms", "200")
        w = self.conn(d, role=ROLE_WORKER, heartbeat_ms=200)
        self.assertEqual(w.hello_ok["heartbeat_ms"], 200)
        from ferrytest import PING
        pings = 0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            w.send_ping()
            try:
                f = w.recv_frame(timeout=0.1, skip_pings=False)
                if f.type == PING:
                    pings += 1
            except TimeoutError:
                pass
        self.assertGreaterEqual(pings, 3, "ferryd sent too few PINGs")
