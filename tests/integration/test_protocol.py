# SPDX-License-Identifier: MIT
"""The points of docs/protocol.md a client writer relies on, checked
against a real ferryd over raw frames (tests/lib/ferrytest.py): what the
page says ferryd does is what it does.

Each test names the page's section it holds to.
"""
import struct
import time

from ferrytest import (CANCEL, DRAIN, ERROR, HELLO, HELLO_OK, MIN_CLIENT_MAX,
                       PING, REGISTER, REGISTERED, REPLY, REQUEST,
                       ProtocolFailure, ROLE_CALLER, ROLE_PEER, ROLE_WORKER,
                       TYPE_NAMES, FerryTestCase, describe, encode_error,
                       encode_header, encode_hello, encode_register,
                       encode_request, frame_of, parse_error, parse_hello_ok,
                       parse_request)


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


class TestRoleTable(FerryTestCase):
    """Who may send what: every cell of the table in protocol.md that
    says PROTO-and-close or ignored."""

    TIME_LIMIT = 60

    CLOSE = {
        ROLE_CALLER: (HELLO, HELLO_OK, REPLY, REGISTERED, DRAIN),
        ROLE_WORKER: (HELLO, HELLO_OK, REGISTERED),
    }
    # Ignored: answers and cancels for ids this side has nothing under.
    IGNORED = {
        ROLE_CALLER: (ERROR, CANCEL),
        ROLE_WORKER: (REPLY, ERROR, CANCEL),
    }
    # The peer column is checked on a clustered node:
    # tests/cluster/test_peer_protocol.py.

    def test_peer_refused_when_not_clustered(self):
        d = self.daemon()
        c = self.raw(d.addr)
        with self.assertRaises(ProtocolFailure) as cm:
            c.hello(role=ROLE_PEER)
        self.assertIn("INVALID_ARGUMENT", str(cm.exception))
        self.assertIn("not in a cluster", str(cm.exception))

    def test_before_hello_only_hello(self):
        d = self.daemon()
        for t in (HELLO_OK, REQUEST, REPLY, ERROR, CANCEL, REGISTER,
                  REGISTERED, PING, DRAIN):
            with self.subTest(TYPE_NAMES[t]):
                c = self.raw(d.addr)
                c.send(frame_of(t))
                frames = c.expect_closed(timeout=5)
                self.assertEqual(len(frames), 1)
                self.assertEqual(frames[0].id, 0)
                self.assertError(frames[0], "PROTO")

    def test_proto_and_close(self):
        d = self.daemon()
        for role, types in self.CLOSE.items():
            for t in types:
                with self.subTest(role=role, type=TYPE_NAMES[t]):
                    c = self.raw(d.addr)
                    c.hello(role=role)
                    c.send(frame_of(t))
                    frames = c.expect_closed(timeout=5)
                    self.assertEqual(len(frames), 1,
                                     [describe(f) for f in frames])
                    self.assertEqual(frames[0].id, 0)
                    self.assertError(frames[0], "PROTO")

    def test_ignored(self):
        d = self.daemon()
        for role, types in self.IGNORED.items():
            for t in types:
                with self.subTest(role=role, type=TYPE_NAMES[t]):
                    c = self.raw(d.addr)
                    c.hello(role=role)
                    c.send(frame_of(t, fid=777))
                    # Nothing comes back, and the connection still works.
                    self.assertReply(c.call(1, "echo", b"alive"), b"alive")

    def test_error_id_0_closes_without_answer(self):
        d = self.daemon()
        for role in (ROLE_CALLER, ROLE_WORKER):
            with self.subTest(role=role):
                c = self.raw(d.addr)
                c.hello(role=role)
                c.send(encode_error(0, "SHUTTING_DOWN", "bye"))
                self.assertEqual(c.expect_closed(timeout=5), [])

    def test_register_from_caller_refused_kept(self):
        d = self.daemon()
        for role in (ROLE_CALLER,):
            with self.subTest(role=role):
                c = self.raw(d.addr)
                c.hello(role=role)
                c.send(encode_register(3, "mine", 1))
                f = c.recv_frame(timeout=5)
                self.assertEqual(f.id, 3)
                self.assertError(f, "INVALID_ARGUMENT")
                self.assertReply(c.call(1, "echo", b"ok"), b"ok")

    def test_worker_may_call(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        self.assertReply(w.call(1, "echo", b"from a worker"),
                         b"from a worker")


class TestDeadlineCancel(FerryTestCase):
    """CANCEL from ferryd to a worker: when the caller cancels, when the
    caller is gone, and when the deadline passes; the worker's credit
    comes back at that moment and a later answer for that id is dropped."""

    TIME_LIMIT = 30

    def setup_worker(self, d):
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        w.register("slow", credit=1)
        return w

    def test_cancel_at_deadline_gives_credit_back(self):
        d = self.daemon()
        w = self.setup_worker(d)
        c = self.conn(d)
        t0 = time.monotonic()
        c.send_request(1, "slow", b"one", deadline_ms=300)
        first = w.recv_frame(timeout=5)
        self.assertEqual(first.type, REQUEST)
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.id, 1)
        self.assertError(f, "DEADLINE")
        self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        f = w.recv_frame(timeout=5)
        self.assertEqual((f.type, f.id), (CANCEL, first.id), describe(f))
        # Credit 1, the first never answered: the second gets the slot.
        c.send_request(2, "slow", b"two", deadline_ms=5000)
        second = w.recv_frame(timeout=5)
        self.assertEqual(second.type, REQUEST, describe(second))
        self.assertEqual(parse_request(second.body)["payload"], b"two")
        # A late answer for the first is dropped; the second's arrives.
        w.send_reply(first.id, b"late")
        w.send_reply(second.id, b"two done")
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.id, 2)
        self.assertReply(f, b"two done")

    def test_cancel_by_caller(self):
        d = self.daemon()
        w = self.setup_worker(d)
        c = self.conn(d)
        c.send_request(1, "slow", b"x", deadline_ms=5000)
        held = w.recv_frame(timeout=5)
        c.send_cancel(1)
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.id, 1)
        self.assertError(f, "CANCELLED")
        f = w.recv_frame(timeout=5)
        self.assertEqual((f.type, f.id), (CANCEL, held.id))
        # A CANCEL for an id not in flight is ignored.
        c.send_cancel(12345)
        self.assertReply(c.call(2, "echo", b"e"), b"e")

    def test_cancel_when_caller_gone(self):
        d = self.daemon()
        w = self.setup_worker(d)
        c = self.raw(d.addr)
        c.hello()
        c.send_request(1, "slow", b"x", deadline_ms=5000)
        held = w.recv_frame(timeout=5)
        c.close()
        f = w.recv_frame(timeout=5)
        self.assertEqual((f.type, f.id), (CANCEL, held.id))


class TestDrain(FerryTestCase):
    """DRAIN does not close the connection: the worker finishes what it
    holds, gets nothing new, and may go on calling."""

    TIME_LIMIT = 30

    def test_drain_keeps_connection(self):
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        w.register("dr", credit=4)
        c = self.conn(d)
        c.send_request(1, "dr", b"held", deadline_ms=5000)
        held = w.recv_frame(timeout=5)
        w.send_drain()
        time.sleep(0.1)
        c.send_request(2, "dr", b"new", deadline_ms=400)
        with self.assertRaises(TimeoutError):
            f = w.recv_frame(timeout=0.6)
            self.fail(f"draining worker got {describe(f)}")
        w.send_reply(held.id, b"held done")
        got = c.collect([1, 2], timeout=5)
        self.assertReply(got[1][0], b"held done")
        self.assertEqual(got[2][0].type, ERROR)
        # Still open: a second DRAIN is harmless and the worker can call.
        w.send_drain()
        self.assertReply(w.call(3, "echo", b"after drain"), b"after drain")


class TestWaitingForAService(FerryTestCase):
    """A request for a service no worker has registered waits
    worker_wait_ms for one, within its deadline; the answer is then
    UNKNOWN_SERVICE (not DEADLINE). ferry.* names and echo never wait."""

    TIME_LIMIT = 30

    def test_waits_worker_wait_ms(self):
        d = self.daemon("--worker-wait-ms", "500")
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "nobody", b"x", deadline_ms=5000)
        el = time.monotonic() - t0
        self.assertError(f, "UNKNOWN_SERVICE")
        self.assertGreaterEqual(el, 0.45)
        self.assertLess(el, 4.0)

    def test_shorter_deadline_still_unknown_service(self):
        d = self.daemon("--worker-wait-ms", "3000")
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "nobody", b"x", deadline_ms=200)
        self.assertError(f, "UNKNOWN_SERVICE")
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)

    def test_worker_arriving_in_the_wait_gets_it(self):
        d = self.daemon("--worker-wait-ms", "3000")
        c = self.conn(d)
        c.send_request(1, "late", b"waited", deadline_ms=5000)
        time.sleep(0.2)
        w = self.raw(d.addr)
        w.hello(role=ROLE_WORKER)
        w.register("late", credit=1)
        f = w.recv_frame(timeout=5)
        w.send_reply(f.id, b"answered")
        self.assertReply(c.wait_for(1, timeout=5), b"answered")

    def test_ferry_names_fail_at_once(self):
        d = self.daemon("--worker-wait-ms", "3000")
        c = self.conn(d)
        t0 = time.monotonic()
        self.assertError(c.call(1, "ferry.nothing", b"", deadline_ms=5000),
                         "UNKNOWN_SERVICE")
        self.assertLess(time.monotonic() - t0, 1.0)


class TestHeaderChecks(FerryTestCase):
    """The header is checked as soon as its 16 bytes are in, before the
    body: TOO_BIG first, then UNKNOWN_TYPE; each ERROR id 0 and close."""

    TIME_LIMIT = 30

    def test_too_big_before_unknown_type(self):
        d = self.daemon("--max-frame", "4096")
        c = self.raw(d.addr)
        c.hello()
        c.send(encode_header(99, 0, 1, 4097))
        frames = c.expect_closed(timeout=5)
        self.assertEqual(len(frames), 1)
        self.assertError(frames[0], "TOO_BIG")

    def test_unknown_type_before_body(self):
        d = self.daemon()
        c = self.raw(d.addr)
        c.hello()
        c.send(encode_header(11, 0, 1, 100))     # the body never comes
        frames = c.expect_closed(timeout=5)
        self.assertEqual(len(frames), 1)
        self.assertEqual(frames[0].id, 0)
        self.assertError(frames[0], "UNKNOWN_TYPE")

    def test_too_big_before_hello(self):
        d = self.daemon()
        c = self.raw(d.addr)
        c.send(encode_header(HELLO, 0, 0, 0xffffffff))
        frames = c.expect_closed(timeout=5)
        self.assertError(frames[0], "TOO_BIG")


class TestReservedFields(FerryTestCase):
    """Reserved fields are sent as 0 and ignored on receipt."""

    TIME_LIMIT = 30

    def test_reserved_set_is_ignored(self):
        d = self.daemon()
        c = self.raw(d.addr)
        hello = bytearray(encode_hello(version=2, name="r"))
        hello[6:8] = b"\xff\xff"                 # header reserved
        hello[16 + 3] = 0xff                     # HELLO reserved byte
        c.send(bytes(hello))
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.type, HELLO_OK, describe(f))
        self.assertEqual(f.body[2:4], b"\0\0")   # sent as 0
        req = bytearray(encode_request(1, "echo", b"res"))
        req[6:8] = b"\xab\xcd"
        c.send(bytes(req))
        self.assertReply(c.wait_for(1, timeout=5), b"res")
