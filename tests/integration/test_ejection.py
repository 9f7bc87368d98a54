# SPDX-License-Identifier: MIT
"""Outlier ejection: a worker whose requests fail eject_failures times in a
row (its own WORKER_ERROR, OVERLOADED, SHUTTING_DOWN, or DEADLINE after it
held the request for half of its deadline: not overload's queueing) gets no new request for eject_base_ms x its ejections,
then exactly one probe request decides whether it comes back. At most
eject_max_percent of a service's workers are ejected at once, and a
service's only worker never is. Checked through which worker answers and
the per-worker "ejected" / "ejections" of the ferry.services JSON.

The circuit breaker per service: past breaker_min_requests outcomes, a
failure rate of breaker_error_percent, or every worker ejected, opens it;
requests then fail fast with CIRCUIT_OPEN (the worker sees none) until
breaker_open_ms, when breaker_probes probes decide. Checked through the
"circuit" / "circuit_opens" JSON and ferry_circuit_state in /metrics."""
import json
import os
import signal
import time

from ferrytest import REPLY, FerryTestCase


class TestEjection(FerryTestCase):
    TIME_LIMIT = 60

    def tw(self, d, service, mode, name=None):
        args = ["--addr", d.addr, "--service", service, "--mode", mode,
                "--credit", "1"]
        if name is not None:
            args += ["--name", name]
        return self.worker("tests/test_worker", *args)

    def service(self, d, name):
        f = self.conn(d).call(1, "ferry.services", b"")
        self.assertReply(f)
        services = {s["name"]: s for s in json.loads(f.body)["services"]}
        self.assertIn(name, services)
        return services[name]

    def worker_json(self, d, svc, name):
        s = self.service(d, svc)
        for w in s["workers"]:
            if w["name"] == name:
                return w
        self.fail(f"no worker {name} in {s}")

    def wait_workers(self, d, svc, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.service(d, svc)["workers"]) == n:
                    return
            except AssertionError:
                pass
            time.sleep(0.02)
        self.fail(f"service {svc}: never {n} workers")

    def test_failing_worker_ejected_then_probed(self):
        d = self.daemon("--eject-failures", "3", "--eject-base-ms", "2000")
        # Registered first, the failing worker wins every tie while idle.
        self.tw(d, "ej", "fail:9", name="bad")
        self.wait_workers(d, "ej", 1)
        self.tw(d, "ej", "tag:B", name="good")
        self.wait_workers(d, "ej", 2)
        c = self.conn(d)
        failures = 0
        for i in range(1, 4):
            f = c.call(i, "ej", b"x")
            if f.type != REPLY:
                self.assertError(f, "WORKER_ERROR")
                failures += 1
        self.assertEqual(failures, 3, "the failing worker did not win ties")
        bad = self.worker_json(d, "ej", "bad")
        self.assertTrue(bad["ejected"], bad)
        self.assertEqual(bad["ejections"], 1, bad)
        t0 = time.monotonic()
        for i in range(10, 30):
            self.assertReply(c.call(i, "ej", b"y%d" % i), b"B:y%d" % i)
        self.assertEqual(self.service(d, "ej")["ejections"], 1)
        # Past the ejection: one probe goes to the bad worker, fails, and
        # ejects it again, for 4 s this time.
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
        answers = [c.call(i, "ej", b"z") for i in range(40, 50)]
        errors = [f for f in answers if f.type != REPLY]
        self.assertEqual(len(errors), 1, answers)
        self.assertError(errors[0], "WORKER_ERROR")
        self.assertError(answers[0], "WORKER_ERROR")
        for f in answers[1:]:
            self.assertReply(f, b"B:z")
        bad = self.worker_json(d, "ej", "bad")
        self.assertTrue(bad["ejected"], bad)
        self.assertFalse(bad["probing"], bad)
        self.assertEqual(bad["ejections"], 2, bad)
        self.assertFalse(self.worker_json(d, "ej", "good")["ejected"])

    def test_stopped_worker_ejected_on_deadlines(self):
        d = self.daemon("--eject-failures", "3")
        frozen = self.tw(d, "ej", "echo", name="frozen")
        self.wait_workers(d, "ej", 1)
        self.tw(d, "ej", "tag:B", name="good")
        self.wait_workers(d, "ej", 2)
        c = self.conn(d)
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            deadlines = 0
            for i in range(1, 20):
                f = c.call(i, "ej", b"x", deadline_ms=300)
                if f.type != REPLY:
                    self.assertError(f, "DEADLINE")
                    deadlines += 1
            self.assertEqual(deadlines, 3, "not ejected after 3 deadlines")
            w = self.worker_json(d, "ej", "frozen")
            self.assertTrue(w["ejected"], w)
            self.assertEqual(w["ejections"], 1, w)
            for i in range(20, 40):
                t = time.monotonic()
                self.assertReply(c.call(i, "ej", b"y", deadline_ms=300),
                                 b"B:y")
                self.assertLess(time.monotonic() - t, 0.25)
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        frozen.stop()

    def test_overload_deadlines_do_not_eject_healthy_workers(self):
        """Requests that spend their deadline in the queue and expire soon
        after reaching a worker are overload, not a sick worker. Waves of
        20 requests with one deadline, 2 workers x credit 2 x 30 ms: 12
        are answered, 4 reach a worker with about 10 of their 100 ms left
        and expire there, 2 per worker in a row (eject_failures 2 would
        eject one if those counted), 4 expire in the queue."""
        d = self.daemon("--eject-failures", "2", "--breaker-error-percent",
                        "0")
        for name in ("w1", "w2"):
            self.worker("tests/test_worker", "--addr", d.addr, "--service",
                        "busy", "--mode", "sleep:30", "--credit", "2",
                        "--name", name)
        self.wait_workers(d, "busy", 2)
        c = self.conn(d)
        errors = {}
        for wave in range(4):
            ids = range(wave * 100 + 1, wave * 100 + 21)
            for i in ids:
                c.send_request(i, "busy", b"x", deadline_ms=100)
            for _ in ids:
                f = c.recv_frame(timeout=5)
                if f.type != REPLY:
                    self.assertError(f, "DEADLINE")
                    errors["DEADLINE"] = errors.get("DEADLINE", 0) + 1
            time.sleep(0.05)
        s = self.service(d, "busy")
        self.assertGreater(errors.get("DEADLINE", 0), 0,
                           "the load did not overload the service")
        self.assertEqual(s["ejections"], 0, s)
        self.assertFalse(any(w["ejected"] for w in s["workers"]), s)
        # A worker that really holds requests past half their deadline is
        # still ejected (test_stopped_worker_ejected_on_deadlines).

    def test_successful_probe_brings_worker_back(self):
        d = self.daemon("--eject-failures", "2", "--eject-base-ms", "1000")
        self.tw(d, "ej", "sleep:400", name="slow")
        self.wait_workers(d, "ej", 1)
        self.tw(d, "ej", "tag:B", name="good")
        self.wait_workers(d, "ej", 2)
        c = self.conn(d)
        # Deadlines shorter than the slow worker's 400 ms eject it.
        for i in range(1, 3):
            self.assertError(c.call(i, "ej", b"x", deadline_ms=200),
                             "DEADLINE")
        w = self.worker_json(d, "ej", "slow")
        self.assertTrue(w["ejected"], w)
        t0 = time.monotonic()
        for i in range(3, 8):
            self.assertReply(c.call(i, "ej", b"y", deadline_ms=200), b"B:y")
        time.sleep(max(0.0, 1.2 - (time.monotonic() - t0)))
        # The probe: the slow worker, given time, answers it.
        self.assertReply(c.call(10, "ej", b"p", deadline_ms=5000), b"p")
        w = self.worker_json(d, "ej", "slow")
        self.assertFalse(w["ejected"], w)
        self.assertFalse(w["probing"], w)
        self.assertEqual(w["ejections"], 1, w)
        # Healthy again: it wins the tie once more.
        self.assertReply(c.call(11, "ej", b"q", deadline_ms=5000), b"q")

    def test_single_worker_never_ejected(self):
        d = self.daemon("--eject-failures", "2", "--eject-base-ms", "60000")
        self.tw(d, "ej", "fail:9", name="only")
        self.wait_workers(d, "ej", 1)
        c = self.conn(d)
        for i in range(1, 11):
            self.assertError(c.call(i, "ej", b"x", deadline_ms=2000),
                             "WORKER_ERROR")
        w = self.worker_json(d, "ej", "only")
        self.assertFalse(w["ejected"], w)
        self.assertEqual(w["ejections"], 0, w)

    def test_max_percent_keeps_half_in_service(self):
        d = self.daemon("--eject-failures", "2", "--eject-base-ms", "60000")
        self.tw(d, "ej", "fail:9", name="f1")
        self.wait_workers(d, "ej", 1)
        self.tw(d, "ej", "fail:9", name="f2")
        self.wait_workers(d, "ej", 2)
        c = self.conn(d)
        for i in range(1, 11):
            self.assertError(c.call(i, "ej", b"x", deadline_ms=2000),
                             "WORKER_ERROR")
        s = self.service(d, "ej")
        ejected = [w for w in s["workers"] if w["ejected"]]
        self.assertEqual(len(ejected), 1, s)
        self.assertEqual(s["ejections"], 1, s)

    def test_ejections_in_metrics(self):
        d = self.daemon("--eject-failures", "2", "--eject-base-ms", "60000")
        if not d.http_addr:
            self.skipTest("no --http")
        self.tw(d, "ej", "fail:9", name="bad")
        self.wait_workers(d, "ej", 1)
        self.tw(d, "ej", "echo", name="good")
        self.wait_workers(d, "ej", 2)
        c = self.conn(d)
        for i in range(1, 3):
            self.assertError(c.call(i, "ej", b"x"), "WORKER_ERROR")
        body = d.http("GET", "/metrics").body.decode()
        self.assertIn('ferry_ejections_total{service="ej"} 1', body)

    def test_breaker_opens_fails_fast_then_closes(self):
        d = self.daemon("--breaker-min-requests", "10",
                        "--breaker-window-ms", "5000",
                        "--breaker-open-ms", "1000",
                        "--eject-failures", "0")
        bad = self.tw(d, "br", "fail:9", name="bad")
        self.wait_workers(d, "br", 1)
        c = self.conn(d)
        for i in range(1, 11):
            self.assertError(c.call(i, "br", b"x"), "WORKER_ERROR")
        s = self.service(d, "br")
        self.assertEqual(s["circuit"], "open", s)
        self.assertEqual(s["circuit_opens"], 1, s)
        t = time.monotonic()
        for i in range(20, 30):
            self.assertError(c.call(i, "br", b"x"), "CIRCUIT_OPEN")
        self.assertLess(time.monotonic() - t, 0.9)
        s = self.service(d, "br")
        # The worker saw none of them.
        self.assertEqual(s["errors"].get("WORKER_ERROR"), 10, s)
        self.assertEqual(s["errors"].get("CIRCUIT_OPEN"), 10, s)
        if d.http_addr:
            body = d.http("GET", "/metrics").body.decode()
            self.assertIn('ferry_circuit_state{service="br"} 1', body)
            self.assertIn('ferry_circuit_opens_total{service="br"} 1', body)
            v1 = {s["name"]: s for s in
                  d.http("GET", "/v1/services").json()["services"]}
            self.assertEqual(v1["br"]["circuit"], "open")
            self.assertEqual(v1["br"]["circuit_opens"], 1)
        bad.stop()
        self.tw(d, "br", "tag:G", name="good")
        self.wait_workers(d, "br", 1)
        time.sleep(1.1)
        for i in range(40, 50):
            self.assertReply(c.call(i, "br", b"y"), b"G:y")
        s = self.service(d, "br")
        self.assertEqual(s["circuit"], "closed", s)
        self.assertEqual(s["circuit_opens"], 1, s)
        if d.http_addr:
            body = d.http("GET", "/metrics").body.decode()
            self.assertIn('ferry_circuit_state{service="br"} 0', body)

    def test_failed_probe_opens_again(self):
        d = self.daemon("--breaker-min-requests", "4",
                        "--breaker-open-ms", "500", "--eject-failures", "0")
        self.tw(d, "br", "fail:9", name="bad")
        self.wait_workers(d, "br", 1)
        c = self.conn(d)
        for i in range(1, 5):
            self.assertError(c.call(i, "br", b"x"), "WORKER_ERROR")
        self.assertError(c.call(5, "br", b"x"), "CIRCUIT_OPEN")
        time.sleep(0.6)
        self.assertError(c.call(6, "br", b"x"), "WORKER_ERROR")
        s = self.service(d, "br")
        self.assertEqual(s["circuit"], "open", s)
        self.assertEqual(s["circuit_opens"], 2, s)
        self.assertError(c.call(7, "br", b"x"), "CIRCUIT_OPEN")

    def test_all_workers_ejected_opens_circuit(self):
        d = self.daemon("--eject-failures", "2", "--eject-max-percent", "100",
                        "--eject-base-ms", "60000",
                        "--breaker-min-requests", "1000")
        self.tw(d, "br", "fail:9", name="f1")
        self.wait_workers(d, "br", 1)
        self.tw(d, "br", "fail:9", name="f2")
        self.wait_workers(d, "br", 2)
        c = self.conn(d)
        for i in range(1, 5):
            self.assertError(c.call(i, "br", b"x", deadline_ms=2000),
                             "WORKER_ERROR")
        s = self.service(d, "br")
        self.assertEqual(len([w for w in s["workers"] if w["ejected"]]), 2, s)
        self.assertEqual(s["circuit"], "open", s)
        self.assertError(c.call(10, "br", b"x"), "CIRCUIT_OPEN")

    def test_caller_errors_do_not_open_circuit(self):
        d = self.daemon("--breaker-min-requests", "4", "--eject-failures", "0")
        self.tw(d, "br", "fail:11", name="inv")
        self.wait_workers(d, "br", 1)
        c = self.conn(d)
        for i in range(1, 11):
            self.assertError(c.call(i, "br", b"x"), "INVALID_ARGUMENT")
        self.assertEqual(self.service(d, "br")["circuit"], "closed")
