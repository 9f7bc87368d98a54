# SPDX-License-Identifier: MIT
"""The points of docs/protocol.md a client writer relies on, checked
against a real ferryd over raw frames (tests/lib/ferrytest.py): what the
page says ferryd does is what it does.

Each test names the page's section it holds to.
"""
import struct
import time

from ferrytest import (HELLO_OK, MIN_CLIENT_MAX, PING, REGISTERED, REQUEST,
                       ROLE_WORKER, FerryTestCase, describe, encode_hello,
                       encode_register, parse_error, parse_hello_ok)


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


class TestVersions(FerryTestCase):
    """HELLO / HELLO_OK: a client sends the highest version it speaks;
    ferryd answers min(it, 2), in the layout of the version it answers."""

    TIME_LIMIT = 30

    def hello_raw(self, d, hello_bytes):
        c = self.raw(d.addr)
        c.send(hello_bytes)
        f = c.recv_frame(timeout=5)
        return c, f

    def test_v1_client_answered_in_v1_layout(self):
        d = self.daemon()
        c, f = self.hello_raw(d, encode_hello(version=1, name="old"))
        self.assertEqual(f.type, HELLO_OK, describe(f))
        # Version 1: version, reserved, heartbeat, max_frame, name: no
        # deadlines after the name.
        version, _, hb, max_frame, name_len = struct.unpack_from(
            ">HHIIH", f.body)
        self.assertEqual(version, 1)
        self.assertEqual(len(f.body), 14 + name_len)
        self.assertEqual(max_frame, 16 * 1024 * 1024)
        self.assertReply(c.call(1, "echo", b"v1"), b"v1")

    def test_v2_client_answered_in_v2_layout(self):
        d = self.daemon("--max-deadline-ms", "30000",
                        "--default-deadline-ms", "1234")
        c, f = self.hello_raw(d, encode_hello(version=2, name="new",
                                              max_frame=65536))
        self.assertEqual(f.type, HELLO_OK, describe(f))
        ok = parse_hello_ok(f.body)
        self.assertEqual(ok["version"], 2)
        self.assertEqual(ok["max_deadline_ms"], 30000)
        self.assertEqual(ok["default_deadline_ms"], 1234)
        self.assertEqual(len(f.body), 14 + len(ok["name"]) + 8)
        self.assertReply(c.call(1, "echo", b"v2"), b"v2")

    def test_v3_client_with_extra_bytes_answered_in_v2(self):
        d = self.daemon()
        c, f = self.hello_raw(d, encode_hello(version=3, max_frame=0,
                                              trailing=b"future fields"))
        self.assertEqual(f.type, HELLO_OK, describe(f))
        ok = parse_hello_ok(f.body)
        self.assertEqual(ok["version"], 2)
        self.assertIn("max_deadline_ms", ok)
        self.assertReply(c.call(1, "echo", b"v3"), b"v3")

    def test_v2_layout_is_exact(self):
        """Version 2 without max_frame, or with a byte after it, is PROTO
        and close; so is a version-1 HELLO with a trailing byte."""
        d = self.daemon()
        good = encode_hello(version=2, name="x", max_frame=4096)
        for name, frame in (
                ("v2 short", struct.pack(">I", len(good) - 20)
                 + good[4:-4]),
                ("v2 trailing", struct.pack(">I", len(good) - 15) + good[4:]
                 + b"\0"),
                ("v1 trailing", encode_hello(version=1, trailing=b"\0"))):
            with self.subTest(name):
                c = self.raw(d.addr)
                c.send(frame)
                frames = c.expect_closed(timeout=5)
                self.assertEqual(len(frames), 1)
                self.assertError(frames[0], "PROTO")

    def test_version_0_refused(self):
        d = self.daemon()
        for v in (1, 2):
            with self.subTest(layout=v):
                hello = bytearray(encode_hello(version=v))
                hello[16:18] = b"\0\0"
                c = self.raw(d.addr)
                c.send(bytes(hello))
                frames = c.expect_closed(timeout=5)
                self.assertEqual(len(frames), 1)
                self.assertEqual(frames[0].id, 0)
                self.assertError(frames[0], "VERSION")

    def test_max_frame_below_an_error_refused(self):
        d = self.daemon()
        c = self.raw(d.addr)
        c.send(encode_hello(version=2, max_frame=MIN_CLIENT_MAX - 1))
        frames = c.expect_closed(timeout=5)
        self.assertEqual(len(frames), 1)
        msg = self.assertError(frames[0], "INVALID_ARGUMENT")
        self.assertIn(b"1027", msg)
        ok = self.raw(d.addr).hello(version=2, max_frame=MIN_CLIENT_MAX)
        self.assertEqual(ok["version"], 2)


class TestHeartbeats(FerryTestCase):
    """HELLO_OK.heartbeat_ms is ferryd's promise to this connection: it
    pings a client only if the client announced a heartbeat itself, and
    tells a client that announced 0 that it sends nothing (0)."""

    TIME_LIMIT = 30

    def test_client_without_heartbeat_told_0_and_never_pinged(self):
        d = self.daemon("--heartbeat-ms", "100")
        c = self.raw(d.addr)
        ok = c.hello(heartbeat_ms=0)
        self.assertEqual(ok["heartbeat_ms"], 0)
        # Ten of ferryd's intervals: no PING, and the client is not
        # timed out for its own silence either.
        with self.assertRaises(TimeoutError):
            f = c.recv_frame(timeout=1.0, skip_pings=False)
            self.fail(f"ferryd sent {describe(f)}")
        self.assertReply(c.call(1, "echo", b"still here"), b"still here")

    def test_client_with_heartbeat_told_ferryds_and_pinged(self):
        d = self.daemon("--heartbeat-ms", "100")
        c = self.raw(d.addr)
        ok = c.hello(heartbeat_ms=300)
        self.assertEqual(ok["heartbeat_ms"], 100)
        pings = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            c.send_ping()             # our promise: a frame every 300 ms
            try:
                f = c.recv_frame(timeout=0.1, skip_pings=False)
                self.assertEqual(f.type, PING, describe(f))
                self.assertEqual(f.id, 0)
                self.assertEqual(f.body, b"")
                pings += 1
            except TimeoutError:
                pass
        self.assertGreaterEqual(pings, 4, "too few PINGs for 100 ms")

    def test_heartbeat_off_in_ferryd_told_0(self):
        d = self.daemon("--heartbeat-ms", "0")
        c = self.raw(d.addr)
        self.assertEqual(c.hello(heartbeat_ms=200)["heartbeat_ms"], 0)


class TestBuiltinNames(FerryTestCase):
    """Built-in services: 'echo' and every 'ferry.' name are ferryd's
    own; a REGISTER of one is refused, the connection stays."""

    TIME_LIMIT = 30

    def test_register_builtin_refused_connection_kept(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        for i, name in enumerate(("echo", "ferry.services", "ferry.admin",
                                  "ferry.x", "ferry."), start=10):
            with self.subTest(name):
                w.send(encode_register(i, name, 4))
                f = w.recv_frame(timeout=5)
                self.assertEqual(f.id, i)
                msg = self.assertError(f, "INVALID_ARGUMENT")
                self.assertIn(b"built-in service", msg)
        # Still connected and usable: an ordinary name registers.
        w.register("mine", credit=1, reg_id=99)
        # echo is still ferryd's own.
        c = self.conn(d)
        self.assertReply(c.call(1, "echo", b"own"), b"own")
        with self.assertRaises(TimeoutError):
            f = w.recv_frame(timeout=0.3)
            self.fail(f"worker got {describe(f)}")


class TestBadRegister(FerryTestCase):
    """REGISTER: credit 0 or above 65535 and service_len 0 are well-formed
    frames with bad values: ERROR INVALID_ARGUMENT with the registration
    id, the connection stays (vectors register_credit_0,
    register_credit_65536, register_service_len_0)."""

    TIME_LIMIT = 30

    def test_bad_values_refused_connection_kept(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        cases = ((4, "fib", 0), (5, "fib", 65536), (6, "", 16),
                 (7, "fib", 0xffffffff))
        for rid, service, credit in cases:
            with self.subTest(rid=rid):
                w.send(encode_register(rid, service, credit))
                f = w.recv_frame(timeout=5)
                self.assertEqual(f.id, rid)
                self.assertError(f, "INVALID_ARGUMENT")
        w.register("fib", credit=65535, reg_id=8)

    def test_malformed_register_is_proto(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        good = encode_register(1, "fib", 1)
        w.send(good + b"")
        self.assertEqual(w.recv_frame(timeout=5).type, REGISTERED)
        bad = struct.pack(">I", len(good) - 16 + 1) + good[4:] + b"\0"
        w.send(bad)
        frames = w.expect_closed(timeout=5)
        self.assertEqual(frames[-1].id, 0)
        self.assertError(frames[-1], "PROTO")


class TestMaxFrame(FerryTestCase):
    """Version 2: ferryd never sends a client a body above the max_frame
    it announced in HELLO."""

    TIME_LIMIT = 30

    def test_reply_above_callers_max_frame_is_too_big(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        w.register("big", credit=4)
        c = self.raw(d.addr)
        c.hello(max_frame=2048)
        c.send_request(1, "big", b"x", deadline_ms=5000)
        f = w.recv_frame(timeout=5)
        w.send_reply(f.id, b"r" * 5000)
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.id, 1)
        msg = self.assertError(f, "TOO_BIG")
        self.assertIn(b"5000", msg)
        self.assertIn(b"2048", msg)
        # The connection stays; a reply that fits (exactly 2048) comes.
        c.send_request(2, "big", b"y", deadline_ms=5000)
        f = w.recv_frame(timeout=5)
        w.send_reply(f.id, b"s" * 2048)
        self.assertReply(c.wait_for(2, timeout=5), b"s" * 2048)
        # Built-in replies too: echo of 3000 bytes.
        self.assertError(c.call(3, "echo", b"e" * 3000), "TOO_BIG")
        self.assertReply(c.call(4, "echo", b"e" * 100), b"e" * 100)

    def test_request_above_workers_max_frame_not_given_to_it(self):
        d = self.daemon()
        small = self.raw(d.addr)
        small.hello(role=ROLE_WORKER, max_frame=2048, name="small")
        small.register("svc", credit=8)
        c = self.conn(d)
        # Only the small worker: a 5000-byte request cannot go anywhere.
        f = c.call(1, "svc", b"p" * 5000, deadline_ms=5000)
        self.assertEqual(f.id, 1)
        msg = self.assertError(f, "TOO_BIG")
        self.assertIn(b"max_frame", msg)
        # With a worker without a limit, big requests go to it only.
        large = self.raw(d.addr)
        large.hello(role=ROLE_WORKER, name="large")
        large.register("svc", credit=8)
        for i in range(2, 6):
            c.send_request(i, "svc", b"q" * 5000, deadline_ms=5000)
        for _ in range(4):
            f = large.recv_frame(timeout=5)
            self.assertEqual(f.type, REQUEST, describe(f))
            large.send_reply(f.id, b"ok")
        got = c.collect(range(2, 6), timeout=5)
        for i in range(2, 6):
            self.assertReply(got[i][0], b"ok")
        with self.assertRaises(TimeoutError):
            f = small.recv_frame(timeout=0.3)
            self.fail(f"small worker got {describe(f)}")
        # Small requests still reach the small worker.
        c.send_request(9, "svc", b"tiny", deadline_ms=5000)
        seen = None
        for conn in (small, large):
            try:
                seen = (conn, conn.recv_frame(timeout=1))
                break
            except TimeoutError:
                pass
        self.assertIsNotNone(seen)
        seen[0].send_reply(seen[1].id, b"t")
        self.assertReply(c.wait_for(9, timeout=5), b"t")
