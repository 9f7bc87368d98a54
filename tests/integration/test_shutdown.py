# SPDX-License-Identifier: MIT
"""Stopping ferryd: SIGTERM lets calls in flight finish, then it exits 0."""
import signal
import time

from ferrytest import FerryTestCase, Conn, ConnClosed, REPLY


class TestShutdown(FerryTestCase):
    TIME_LIMIT = 60

    def test_sigterm_lets_in_flight_calls_finish(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--credit", "10", "--mode", "sleep:500")
        c = self.conn(d)
        n = 5
        for i in range(1, n + 1):
            c.send_request(i, "slow", b"in flight %d" % i, deadline_ms=10000)
        time.sleep(0.15)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        got = c.collect(range(1, n + 1), timeout=10)
        for i, (f, _) in got.items():
            self.assertReply(f, b"in flight %d" % i)
        rc = d.wait(15)
        self.assertIsNotNone(rc, "ferryd did not exit after SIGTERM")
        self.assertEqual(rc, 0, f"exit status {rc}\n{d.log_tail()}")
        self.assertLess(time.monotonic() - t0, 12)

    def test_sigterm_refuses_new_requests_or_closes(self):
        """After SIGTERM a new request on an open connection gets
        SHUTTING_DOWN (or the connection is closed), never silence."""
        d = self.daemon("--grace-ms", "3000")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--credit", "10", "--mode", "sleep:1500")
        c = self.conn(d)
        c.send_request(1, "slow", b"old", deadline_ms=10000)
        time.sleep(0.15)
        d.signal(signal.SIGTERM)
        time.sleep(0.2)
        try:
            c.send_request(2, "echo", b"new", deadline_ms=5000)
            got = c.collect([1, 2], timeout=8)
        except (ConnClosed, BrokenPipeError, ConnectionResetError):
            got = None
        if got is not None:
            self.assertReply(got[1][0], b"old")
            f = got[2][0]
            if f.type != REPLY:
                self.assertError(f, "SHUTTING_DOWN")
        rc = d.wait(15)
        self.assertEqual(rc, 0, f"exit status {rc}\n{d.log_tail()}")

    def test_sigterm_idle_exits_zero_quickly(self):
        d = self.daemon()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(10)
        self.assertEqual(rc, 0, d.log_tail())
        self.assertLess(time.monotonic() - t0, 5)
        with self.assertRaises(OSError):
            Conn(d.addr, timeout=2).hello()

    def test_sigterm_with_http_calls_in_flight(self):
        """HTTP calls in flight at SIGTERM get their 200, and their clients
        closing during the grace period does not crash ferryd (h2o 2.2.5
        asserted in h2o_context_dispose while its HTTP/2 graceful-shutdown
        timer was still armed)."""
        import socket
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--credit", "4", "--mode", "sleep:300")
        socks = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.http_port), 5)
            s.settimeout(5)
            s.sendall(b"POST /v1/call/slow HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Length: 2\r\n\r\nhi")
            socks.append(s)
        time.sleep(0.05)
        d.signal(signal.SIGTERM)
        for s in socks:
            head = s.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:80])
            s.close()
        rc = d.wait(15)
        self.assertIsNotNone(rc, "ferryd did not exit after SIGTERM")
        self.assertEqual(rc, 0, f"exit status {rc}\n{d.log_tail()}")
