# SPDX-License-Identifier: MIT
"""Retries of idempotent requests: a request marked IDEMPOTENT whose worker
is lost, or fails with WORKER_ERROR, OVERLOADED or SHUTTING_DOWN, is sent
again to another worker while retry_max, its deadline and its service's
retry budget allow; any other request is never retried. Attempts are
counted through the service's retries / retries_denied counters in the
ferry.services JSON."""
import json
import time

from ferrytest import (ERROR, IDEMPOTENT, REPLY, FerryTestCase, ROLE_WORKER,
                       describe, errname, parse_error, parse_request,
                       run_ferry)


class TestRetry(FerryTestCase):
    TIME_LIMIT = 60

    def tw(self, d, service, mode, credit=1):
        return self.worker("tests/test_worker", "--addr", d.addr,
                           "--service", service, "--mode", mode,
                           "--credit", str(credit))

    def service(self, d, name):
        f = self.conn(d).call(1, "ferry.services", b"")
        self.assertReply(f)
        services = {s["name"]: s for s in json.loads(f.body)["services"]}
        self.assertIn(name, services)
        return services[name]

    def wait_in_flight(self, d, name, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.service(d, name)["in_flight"] == n:
                return
            time.sleep(0.02)
        self.fail(f"service {name}: in_flight never {n}: "
                  f"{self.service(d, name)}")

    def lost_worker_case(self, flags):
        """A request held by a worker that is SIGKILLed while a second
        worker (tag:B) is ready. Returns (answer frame, service JSON)."""
        d = self.daemon()
        victim = self.tw(d, "rt", "sleep:20000")
        c = self.conn(d)
        c.send_request(7, "rt", b"job", deadline_ms=10000, flags=flags)
        # Only the victim is there: it holds the request.
        self.wait_in_flight(d, "rt", 1)
        self.tw(d, "rt", "tag:B")
        victim.kill()
        f = c.wait_for(7, timeout=10)
        return f, self.service(d, "rt")

    def test_lost_worker_idempotent_retried_on_other_worker(self):
        f, s = self.lost_worker_case(IDEMPOTENT)
        self.assertReply(f, b"B:job")
        self.assertEqual(s["retries"], 1, s)
        self.assertEqual(s["retries_denied"], 0, s)

    def test_lost_worker_not_idempotent_fails(self):
        f, s = self.lost_worker_case(0)
        self.assertError(f, "WORKER_LOST")
        self.assertEqual(s["retries"], 0, s)

    def test_worker_error_retried_only_when_idempotent(self):
        # Without ejection: the failing worker must still get requests
        # after its retried failures.
        d = self.daemon("--eject-failures", "0")
        # Registered first, the failing worker wins the tie for a request
        # when both are idle.
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "tag:B")
        c = self.conn(d)
        for i in range(1, 7):
            self.assertReply(c.call(i, "rt", b"x%d" % i, flags=IDEMPOTENT),
                             b"B:x%d" % i)
        retried = self.service(d, "rt")["retries"]
        self.assertGreaterEqual(retried, 1)
        errors = 0
        for i in range(10, 16):
            f = c.call(i, "rt", b"y")
            if f.type != REPLY:  # not a REPLY
                self.assertError(f, "WORKER_ERROR")
                errors += 1
            else:
                self.assertReply(f, b"B:y")
        self.assertGreaterEqual(errors, 1, "the failing worker got nothing")
        self.assertEqual(self.service(d, "rt")["retries"], retried,
                         "a request without IDEMPOTENT was retried")

    def test_invalid_argument_never_retried(self):
        d = self.daemon()
        self.tw(d, "rt", "fail:11")
        self.tw(d, "rt", "tag:B")
        c = self.conn(d)
        errors = 0
        for i in range(1, 7):
            f = c.call(i, "rt", b"x", flags=IDEMPOTENT)
            if f.type != REPLY:
                self.assertError(f, "INVALID_ARGUMENT")
                errors += 1
        self.assertGreaterEqual(errors, 1, "the failing worker got nothing")
        s = self.service(d, "rt")
        self.assertEqual(s["retries"], 0, s)
        self.assertEqual(s["errors"].get("INVALID_ARGUMENT"), errors, s)

    def test_retry_max_respected(self):
        for retry_max in (2, 0, 4):
            with self.subTest(retry_max=retry_max):
                args = [] if retry_max == 2 else ["--retry-max",
                                                  str(retry_max)]
                d = self.daemon(*args)
                self.tw(d, "rt", "fail:9")
                self.tw(d, "rt", "fail:9")
                c = self.conn(d)
                for i in range(1, 4):
                    self.assertError(c.call(i, "rt", b"x", flags=IDEMPOTENT,
                                            deadline_ms=10000),
                                     "WORKER_ERROR")
                s = self.service(d, "rt")
                self.assertEqual(s["retries"], 3 * retry_max, s)
                self.assertEqual(s["errors"].get("WORKER_ERROR"), 3, s)
                self.assertEqual(s["retries_denied"], 0, s)
                d.stop()

    def test_budget_exhausted_denies_retries(self):
        d = self.daemon("--retry-budget-percent", "0",
                        "--retry-budget-min-per-s", "0")
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "tag:B")
        c = self.conn(d)
        for i in range(1, 4):
            self.assertError(c.call(i, "rt", b"x", flags=IDEMPOTENT),
                             "WORKER_ERROR")
        s = self.service(d, "rt")
        self.assertEqual(s["retries"], 0, s)
        self.assertEqual(s["retries_denied"], 3, s)

    def test_budget_floor_per_second(self):
        """A floor of 1 retry per second allows 10 in the 10 s window;
        with no ratio every further retry is denied."""
        # Without the circuit breaker, which 30 failures would open.
        d = self.daemon("--retry-budget-percent", "0",
                        "--retry-budget-min-per-s", "1", "--retry-max", "1",
                        "--breaker-error-percent", "0")
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "fail:9")
        c = self.conn(d)
        for i in range(1, 21):
            self.assertError(c.call(i, "rt", b"x", flags=IDEMPOTENT),
                             "WORKER_ERROR")
        s = self.service(d, "rt")
        self.assertEqual(s["retries"], 10, s)
        self.assertEqual(s["retries_denied"], 10, s)
        if d.http_addr:
            text = d.http("GET", "/metrics").body.decode()
            self.assertIn('ferry_retries_total{service="rt"} 10', text)
            self.assertIn('ferry_retries_denied_total{service="rt"} 10',
                          text)
            v1 = {s["name"]: s for s in
                  d.http("GET", "/v1/services").json()["services"]}
            self.assertEqual(v1["rt"]["retries"], 10)
            self.assertEqual(v1["rt"]["retries_denied"], 10)

    def test_deadline_holds_while_retrying(self):
        d = self.daemon("--retry-max", "100", "--retry-backoff-ms", "20",
                        "--retry-backoff-max-ms", "40")
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "fail:9")
        c = self.conn(d)
        t0 = time.monotonic()
        f = c.call(1, "rt", b"x", deadline_ms=300, flags=IDEMPOTENT,
                   timeout=5)
        elapsed = time.monotonic() - t0
        self.assertEqual(f.type, ERROR, describe(f))
        self.assertIn(errname(parse_error(f.body)[0]),
                      ("WORKER_ERROR", "DEADLINE"), describe(f))
        self.assertLess(elapsed, 0.3 + 0.5, "retries outlived the deadline")
        self.assertGreater(elapsed, 0.15, "gave up long before the deadline")
        s = self.service(d, "rt")
        self.assertGreater(s["retries"], 2, s)

    def test_raw_worker_sees_every_attempt_with_flag(self):
        """Two raw workers: the attempt after a WORKER_ERROR reaches the
        other one, with the same payload, key and IDEMPOTENT flag."""
        d = self.daemon()
        a = self.conn(d, role=ROLE_WORKER, name="a")
        a.register("raw", credit=1)
        b = self.conn(d, role=ROLE_WORKER, name="b")
        b.register("raw", credit=1)
        c = self.conn(d)
        big = bytes(range(256)) * 64  # kept out of line (> REQ_INLINE)
        c.send_request(3, "raw", big, deadline_ms=5000, key=b"k1",
                       flags=IDEMPOTENT)
        f = a.recv_frame(timeout=5)
        self.assertEqual(f.flags & IDEMPOTENT, IDEMPOTENT)
        a.send_error(f.id, 10, b"busy")          # OVERLOADED: retryable
        g = b.recv_frame(timeout=5)
        self.assertEqual(g.flags & IDEMPOTENT, IDEMPOTENT)
        qa, qb = parse_request(f.body), parse_request(g.body)
        self.assertEqual(qb["payload"], big)
        self.assertEqual(qb["key"], b"k1")
        self.assertEqual(qa["payload"], qb["payload"])
        b.send_reply(g.id, b"done")
        self.assertReply(c.wait_for(3, timeout=5), b"done")

    def test_cancel_and_disconnect_while_waiting_to_retry(self):
        d = self.daemon("--retry-backoff-ms", "3000",
                        "--retry-backoff-max-ms", "3000", "--retry-max", "1")
        self.tw(d, "rt", "fail:9")
        c = self.conn(d)
        c.send_request(1, "rt", b"x", deadline_ms=20000, flags=IDEMPOTENT)
        time.sleep(0.05)
        c.send_cancel(1)
        f = c.wait_for(1, timeout=10)
        # Unless the jittered backoff was under 50 ms, it was waiting;
        # else its one retry failed too.
        self.assertEqual(f.type, ERROR, describe(f))
        self.assertIn(errname(parse_error(f.body)[0]),
                      ("CANCELLED", "WORKER_ERROR"), describe(f))
        gone = self.conn(d)
        gone.send_request(2, "rt", b"y", deadline_ms=20000,
                          flags=IDEMPOTENT)
        time.sleep(0.05)
        gone.close()
        time.sleep(0.1)
        self.assertReply(self.conn(d).call(9, "echo", b"alive"), b"alive")

    def test_cli_idempotent_flag(self):
        d = self.daemon()
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "tag:B")
        r = run_ferry(["call", "rt", "cli", "--idempotent"], addr=d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"B:cli\n")
        r = run_ferry(["call", "rt", "cli"], addr=d.addr)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(b"WORKER_ERROR", r.stderr)

    def test_http_idempotent_header(self):
        d = self.daemon()
        if not d.http_addr:
            self.skipTest("ferryd has no HTTP side")
        self.tw(d, "rt", "fail:9")
        self.tw(d, "rt", "tag:B")
        r = d.http("POST", "/v1/call/rt", b"web",
                   headers={"Ferry-Idempotent": "1"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"B:web")
        r = d.http("POST", "/v1/call/rt", b"web")
        self.assertHttpError(r, 502, "WORKER_ERROR")
