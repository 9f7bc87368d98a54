# SPDX-License-Identifier: MIT
"""Single calls through a real ferryd: the built-in echo, outside workers,
the Unix socket, unknown services, waiting for a worker, duplicate ids,
cancelling, errors from workers, credit, and ferry.services."""
import json
import time

from ferrytest import (ERROR, REGISTERED, REQUEST, ROLE_WORKER, CANCEL,
                       Conn, FerryTestCase, describe, parse_error,
                       parse_request, errname)


class TestCalls(FerryTestCase):
    TIME_LIMIT = 60

    def test_one_call_builtin_echo(self):
        d = self.daemon()
        c = self.conn(d)
        self.assertEqual(c.hello_ok["version"], 2)
        self.assertGreater(c.hello_ok["max_frame"], 0)
        self.assertReply(c.call(7, "echo", b"hi", deadline_ms=1000), b"hi")
        # Empty and binary payloads come back unchanged.
        self.assertReply(c.call(8, "echo", b""), b"")
        blob = bytes(range(256)) * 16
        self.assertReply(c.call(9, "echo", blob), blob)
        # A 4 MiB payload.
        big = bytes((i * 7) & 0xff for i in range(1 << 16)) * 64
        self.assertReply(c.call(10, "echo", big, timeout=30), big)
        # An id may be reused once its request has ended.
        self.assertReply(c.call(7, "echo", b"again"), b"again")

    def test_one_call_outside_worker(self):
        d = self.daemon()
        self.worker("echo_worker", "--addr", d.addr)
        c = self.conn(d)
        f = c.call(1, "echo_ext", b"through a worker", deadline_ms=5000)
        self.assertReply(f, b"through a worker")
        self.worker("echo_worker", "--addr", d.addr, "--service", "named")
        self.assertReply(c.call(2, "named", b"x" * 100000), b"x" * 100000)

    def test_unix_socket(self):
        d = self.daemon()
        c = self.conn(d, unix=True)
        self.assertReply(c.call(1, "echo", b"over unix"), b"over unix")
        # A worker on the Unix socket serves a caller on TCP.
        self.worker("echo_worker", "--addr", d.unix_addr, "--service", "ux")
        t = self.conn(d)
        self.assertReply(t.call(2, "ux", b"mixed"), b"mixed")

    def test_unknown_service_after_worker_wait(self):
        d = self.daemon("--worker-wait-ms", "300")
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "no.such.service", b"x", deadline_ms=5000, timeout=10)
        el = time.monotonic() - t0
        self.assertError(f, "UNKNOWN_SERVICE")
        self.assertGreaterEqual(el, 0.29, "answered before worker-wait-ms")
        self.assertLess(el, 2.5)
        # The connection is still usable.
        self.assertReply(c.call(2, "echo", b"ok"), b"ok")

    def test_unknown_service_default_worker_wait(self):
        """Default --worker-wait-ms is 2000 and default deadline 5000."""
        d = self.daemon()
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "nobody", b"x", timeout=10)
        el = time.monotonic() - t0
        self.assertError(f, "UNKNOWN_SERVICE")
        self.assertGreaterEqual(el, 1.99)
        self.assertLess(el, 3.5)

    def test_no_worker_after_workers_left(self):
        d = self.daemon("--worker-wait-ms", "300")
        w = self.worker("echo_worker", "--addr", d.addr, "--service", "gone")
        c = self.conn(d)
        self.assertReply(c.call(1, "gone", b"a"), b"a")
        w.stop()
        time.sleep(0.3)
        t0 = time.monotonic()
        f = c.call(2, "gone", b"b", deadline_ms=5000, timeout=10)
        self.assertError(f, "NO_WORKER")
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)

    def test_call_before_worker_exists(self):
        d = self.daemon("--worker-wait-ms", "8000")
        c = self.conn(d)
        t0 = time.monotonic()
        c.send_request(1, "late", b"waited", deadline_ms=10000)
        time.sleep(0.3)
        self.worker("echo_worker", "--addr", d.addr, "--service", "late")
        f = c.wait_for(1, timeout=12)
        self.assertReply(f, b"waited")
        self.assertLess(time.monotonic() - t0, 10.0)

    def test_duplicate_id(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--credit", "4", "--mode", "sleep:800")
        c = self.conn(d)
        """A REQUEST reusing an id in flight is a connection error: ERROR
        DUPLICATE_ID with id 0 (the message names the id), then close; no
        answer with that id is ever sent, so none is ambiguous."""
        c.send_request(5, "slow", b"first", deadline_ms=5000)
        time.sleep(0.1)
        c.send_request(5, "slow", b"second", deadline_ms=5000)
        frames = c.expect_closed(timeout=5)
        self.assertEqual(len(frames), 1, [describe(f) for f in frames])
        self.assertEqual(frames[0].id, 0)
        msg = self.assertError(frames[0], "DUPLICATE_ID")
        self.assertIn(b"5", msg)
        # The close ended the first one too; a new connection works.
        c2 = self.conn(d)
        self.assertReply(c2.call(5, "slow", b"again", deadline_ms=5000),
                         b"again")

    def test_raw_worker_sees_request_and_answers(self):
        """Deadline, key, payload and flags reach the worker; its reply
        reaches the caller under the caller's id."""
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER, name="raw-worker")
        w.register("raw", credit=4)
        c = self.conn(d)
        c.send_request(42, "raw", b"payload!", deadline_ms=3000,
                       key=b"user:1", flags=1)
        f = w.recv_frame(timeout=5)
        self.assertEqual(f.type, REQUEST, describe(f))
        q = parse_request(f.body)
        self.assertEqual(q["service"], b"raw")
        self.assertEqual(q["key"], b"user:1")
        self.assertEqual(q["payload"], b"payload!")
        self.assertGreater(q["deadline_ms"], 1500)
        self.assertLessEqual(q["deadline_ms"], 3000)
        self.assertEqual(f.flags & 1, 1, "IDEMPOTENT flag lost")
        w.send_reply(f.id, b"answer")
        r = c.recv_frame(timeout=5)
        self.assertEqual(r.id, 42)
        self.assertReply(r, b"answer")

    def test_worker_error_reaches_caller(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("failing", credit=2)
        c = self.conn(d)
        c.send_request(3, "failing", b"x", deadline_ms=3000)
        f = w.recv_frame(timeout=5)
        w.send_error(f.id, "INVALID_ARGUMENT", b"bad input here")
        r = c.recv_frame(timeout=5)
        self.assertEqual(r.id, 3)
        msg = self.assertError(r, "INVALID_ARGUMENT")
        self.assertIn(b"bad input here", msg)
        # The same worker keeps serving.
        c.send_request(4, "failing", b"y", deadline_ms=3000)
        f = w.recv_frame(timeout=5)
        w.send_reply(f.id, b"fine")
        self.assertReply(c.recv_frame(timeout=5), b"fine")

    def test_credit_is_respected(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("credit2", credit=2)
        c = self.conn(d)
        for i in range(1, 6):
            c.send_request(i, "credit2", b"%d" % i, deadline_ms=10000)
        got = [w.recv_frame(timeout=5), w.recv_frame(timeout=5)]
        with self.assertRaises(TimeoutError,
                               msg="worker got more than its credit"):
            extra = w.recv_frame(timeout=0.7)
            self.fail(f"third request beyond credit 2: {describe(extra)}")
        # Answering one frees one unit of credit.
        w.send_reply(got[0].id, b"r")
        got.append(w.recv_frame(timeout=5))
        self.assertEqual(got[2].type, REQUEST)
        with self.assertRaises(TimeoutError):
            w.recv_frame(timeout=0.5)
        for f in got[1:]:
            w.send_reply(f.id, b"r")
        for _ in range(2):
            f = w.recv_frame(timeout=5)
            w.send_reply(f.id, b"r")
        res = c.collect(range(1, 6), timeout=5)
        for fid, (f, _) in res.items():
            self.assertReply(f, b"r")
        ids = {f.id for f in got}
        self.assertEqual(len(ids), 3, "forwarded ids must be distinct")

    def test_register_again_changes_credit(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("recredit", credit=1, reg_id=1)
        w.register("recredit", credit=3, reg_id=2)
        c = self.conn(d)
        for i in range(1, 5):
            c.send_request(i, "recredit", b"x", deadline_ms=10000)
        got = [w.recv_frame(timeout=5) for _ in range(3)]
        self.assertTrue(all(f.type == REQUEST for f in got))
        with self.assertRaises(TimeoutError):
            w.recv_frame(timeout=0.5)

    def test_register_refused_for_bad_credit(self):
        """credit 0 is malformed (PROTO) per protocol.md; either way the
        worker must not be registered."""
        d = self.daemon()
        w = self.raw(d.addr)
        w.hello(ROLE_WORKER)
        from ferrytest import encode_frame, REGISTER
        import struct
        w.send(encode_frame(REGISTER, struct.pack(">IH", 0, 3) + b"bad", 9))
        f = w.recv_frame(timeout=5)
        self.assertEqual(f.type, ERROR, describe(f))
        self.assertIn(errname(parse_error(f.body)[0]),
                      ("PROTO", "INVALID_ARGUMENT"))

    def test_cancel(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("cancellable", credit=2)
        c = self.conn(d)
        c.send_request(11, "cancellable", b"x", deadline_ms=10000)
        fwd = w.recv_frame(timeout=5)
        self.assertEqual(fwd.type, REQUEST)
        c.send_cancel(11)
        r = c.recv_frame(timeout=5)
        self.assertEqual(r.id, 11)
        self.assertError(r, "CANCELLED")
        f = w.recv_frame(timeout=5)
        self.assertEqual(f.type, CANCEL, describe(f))
        self.assertEqual(f.id, fwd.id)
        # A late answer from the worker is dropped, not delivered, and
        # counted.
        w.send_reply(fwd.id, b"too late")
        with self.assertRaises(TimeoutError):
            f = c.recv_frame(timeout=0.5)
            self.fail(f"caller got {describe(f)} after CANCELLED")
        if d.http_addr:
            m = d.http("GET", "/metrics").body.decode()
            self.assertIn("\nferry_late_replies_total 1\n", m)
            self.assertEqual(d.http("GET", "/v1/stats").json()
                             ["late_replies"], 1)

    def test_caller_gone_sends_cancel_to_worker(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        w.register("orphan", credit=2)
        c = Conn(d.addr)
        c.hello()
        c.send_request(1, "orphan", b"x", deadline_ms=10000)
        fwd = w.recv_frame(timeout=5)
        c.close()
        f = w.recv_frame(timeout=5)
        self.assertEqual(f.type, CANCEL, describe(f))
        self.assertEqual(f.id, fwd.id)
        w.send_reply(fwd.id, b"nobody listens")
        # ferryd survives and serves.
        self.assertReply(self.conn(d).call(1, "echo", b"alive"), b"alive")

    def test_builtin_services_listing(self):
        d = self.daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "listed")
        c = self.conn(d)
        f = c.call(1, "ferry.services", b"")
        self.assertReply(f)
        doc = json.loads(f.body)
        services = {s["name"]: s for s in doc["services"]}
        self.assertIn("echo", services)
        self.assertIn("ferry.services", services)
        self.assertIn("listed", services)
        s = services["listed"]
        self.assertEqual(len(s["workers"]), 1, s)
        for field in ("credit", "in_flight", "queued"):
            self.assertIn(field, s)
        self.assertGreaterEqual(s["credit"], 1)
        self.assertEqual(s["in_flight"], 0)
        self.assertEqual(s["queued"], 0)

    def test_worker_registered_ack(self):
        d = self.daemon()
        w = self.conn(d, role=ROLE_WORKER)
        f = w.register("acked", credit=65535, reg_id=0xfedcba9876543210)
        self.assertEqual(f.type, REGISTERED)
        self.assertEqual(f.id, 0xfedcba9876543210)
        self.assertEqual(f.body, b"")

    def test_drain_stops_new_work_but_finishes_held(self):
        d = self.daemon()
        a = self.conn(d, role=ROLE_WORKER, name="draining")
        a.register("drained", credit=4)
        c = self.conn(d)
        c.send_request(1, "drained", b"held", deadline_ms=10000)
        held = a.recv_frame(timeout=5)
        self.assertEqual(held.type, REQUEST)
        a.send_drain()
        time.sleep(0.2)
        b = self.conn(d, role=ROLE_WORKER, name="fresh")
        b.register("drained", credit=4)
        for i in range(2, 6):
            c.send_request(i, "drained", b"new %d" % i, deadline_ms=10000)
        for _ in range(4):
            f = b.recv_frame(timeout=5)
            self.assertEqual(f.type, REQUEST, describe(f))
            b.send_reply(f.id, parse_request(f.body)["payload"])
        with self.assertRaises(TimeoutError):
            f = a.recv_frame(timeout=0.5)
            self.fail(f"draining worker got {describe(f)}")
        a.send_reply(held.id, b"held done")
        got = c.collect(range(1, 6), timeout=5)
        self.assertReply(got[1][0], b"held done")
        for i in range(2, 6):
            self.assertReply(got[i][0], b"new %d" % i)

    def test_max_frame_flag(self):
        d = self.daemon("--max-frame", "4096")
        c = self.conn(d)
        self.assertEqual(c.hello_ok["max_frame"], 4096)
        self.assertReply(c.call(1, "echo", b"a" * 4000), b"a" * 4000)
        from ferrytest import encode_header
        bad = self.conn(d)
        bad.send(encode_header(REQUEST, 0, 2, 4097))
        frames = bad.expect_closed(timeout=5)
        self.assertTrue(frames and frames[-1].type == ERROR, frames)
        self.assertEqual(errname(parse_error(frames[-1].body)[0]), "TOO_BIG")
        self.assertReply(c.call(3, "echo", b"ok"), b"ok")
