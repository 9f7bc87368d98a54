# SPDX-License-Identifier: MIT
"""Load shedding: per-service limits on requests at workers
(service_max_in_flight) and waiting (queue_limit), and the global
connection limit (max_connections). Each answers OVERLOADED at once and
counts it. (The per-connection max_in_flight is in
tests/fault/test_dispatch_faults.py.)"""
import time

from ferrytest import Conn, FerryTestCase, ERROR, errname, parse_error


class TestShedding(FerryTestCase):
    TIME_LIMIT = 60

    def service(self, d, name):
        for s in d.http("GET", "/v1/services").json()["services"]:
            if s["name"] == name:
                return s
        self.fail(f"no service {name}")

    def test_service_max_in_flight_then_queue_limit(self):
        d = self.daemon("--service-max-in-flight", "2", "--queue-limit", "2")
        # Two workers with credit 10 each: without the limit all 5 requests
        # would be at workers at once.
        for _ in range(2):
            self.worker("tests/test_worker", "--addr", d.addr, "--service",
                        "db", "--mode", "never", "--credit", "10")
        c = self.conn(d)
        for i in range(1, 6):
            c.send_request(i, "db", b"q", deadline_ms=20000)
        f = c.recv_frame()
        self.assertEqual(f.id, 5)
        msg = self.assertError(f, "OVERLOADED")
        self.assertIn(b"queue is full", msg)
        s = self.service(d, "db")
        self.assertEqual(s["in_flight"], 2, s)
        self.assertEqual(s["queued"], 2, s)
        self.assertEqual(s["errors"].get("OVERLOADED"), 1, s)
        m = d.http("GET", "/metrics").body.decode()
        self.assertIn('ferry_errors_total{service="db",code="OVERLOADED"} 1',
                      m)
        # A request leaving a worker lets a queued one in, never more.
        c.send_cancel(1)
        self.assertError(c.recv_frame(), "CANCELLED")
        s = self.service(d, "db")
        self.assertEqual((s["in_flight"], s["queued"]), (2, 1), s)
        # Other services are not limited by db's limit.
        self.assertReply(c.call(9, "echo", b"free"), b"free")

    def test_service_max_in_flight_off_by_default(self):
        d = self.daemon("--queue-limit", "0")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "db", "--mode", "never", "--credit", "8")
        c = self.conn(d)
        for i in range(1, 9):
            c.send_request(i, "db", b"q", deadline_ms=20000)
        # All 8 fit the worker's credit: the 9th is the first refused.
        c.send_request(9, "db", b"q", deadline_ms=20000)
        f = c.recv_frame()
        self.assertEqual(f.id, 9)
        self.assertError(f, "OVERLOADED")
        self.assertEqual(self.service(d, "db")["in_flight"], 8)

    def test_max_connections(self):
        d = self.daemon("--max-connections", "3")
        held = [self.conn(d) for _ in range(3)]
        extra = Conn(d.addr)
        self.addCleanup(extra.close)
        frames = extra.expect_closed()
        self.assertEqual(len(frames), 1, frames)
        self.assertEqual(frames[0].type, ERROR)
        code, msg = parse_error(frames[0].body)
        self.assertEqual(errname(code), "OVERLOADED")
        self.assertIn(b"too many connections", msg)
        self.assertIn("refused, 3 connections open", d.log)
        m = d.http("GET", "/metrics").body.decode()
        self.assertIn('ferry_connections_refused_total{listener="binary"} 1\n',
                      m)
        self.assertEqual(
            d.http("GET", "/v1/stats").json()["connections"]["refused"], 1)
        # The held ones are served; a freed slot admits a new caller.
        self.assertReply(held[0].call(1, "echo", b"a"), b"a")
        held[1].close()
        for _ in range(50):
            c = None
            try:
                c = Conn(d.addr)
                c.hello()
                break
            except Exception:
                if c is not None:
                    c.close()
                time.sleep(0.05)
        else:
            self.fail("no connection admitted after one closed")
        self.addCleanup(c.close)
        self.assertReply(c.call(1, "echo", b"b"), b"b")
