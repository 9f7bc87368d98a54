# SPDX-License-Identifier: MIT
"""The points of docs/protocol.md a client writer relies on, checked
against a real ferryd over raw frames (tests/lib/ferrytest.py): what the
page says ferryd does is what it does.

Each test names the page's section it holds to.
"""
import socket
import time

from ferrytest import (ERROR, FerryTestCase, encode_hello, parse_error,
                       errname, describe)


class TestSilentCloses(FerryTestCase):
    """Connection life: ferryd never closes for silence without saying
    so: ERROR TIMED_OUT (22) with id 0 comes first."""

    TIME_LIMIT = 30

    def test_handshake_timeout_sends_timed_out(self):
        d = self.daemon("--handshake-timeout-ms", "300")
        c = self.raw(d.addr)
        t0 = time.monotonic()
        frames = c.expect_closed(timeout=5)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(len(frames), 1, [describe(f) for f in frames])
        f = frames[0]
        self.assertEqual(f.id, 0)
        msg = self.assertError(f, "TIMED_OUT")
        self.assertEqual(parse_error(f.body)[0], 22)
        self.assertIn(b"no HELLO within 300 ms", msg)

    def test_heartbeat_timeout_sends_timed_out(self):
        d = self.daemon()
        c = self.raw(d.addr)
        c.hello(heartbeat_ms=200)
        t0 = time.monotonic()
        frames = c.expect_closed(timeout=5)
        el = time.monotonic() - t0
        self.assertGreaterEqual(el, 0.55, "closed before 3 x 200 ms")
        self.assertEqual(frames[-1].id, 0)
        msg = self.assertError(frames[-1], "TIMED_OUT")
        self.assertIn(b"3 x heartbeat 200 ms", msg)
        # Only PINGs (skipped by expect_closed) came before it.
        self.assertEqual(len(frames), 1, [describe(f) for f in frames])
