"""Dispatch faults of issue 4, each on a real ferryd with real workers on
loopback sockets, each bounded in time:

* workers SIGKILLed and restarted every 500 ms under `ferry bench` load:
  every request ends before its deadline, idempotent ones all succeed,
  the counts of bench and ferryd reconcile;
* a worker frozen with SIGSTOP: ejected on its deadlines, its traffic
  moves to the others within a bound computed from the settings;
* workers that start failing: ejection, then the circuit breaker opens
  and closes again, in /v1/services and /metrics;
* 5,000 idle connections held open: a new caller is served promptly, and
  ferryd's memory per idle connection is measured;
* callers that send half a frame and stall, and a caller that pipelines
  100,000 requests without reading: ferryd's memory stays bounded, the
  non-reader is paused, others are served meanwhile.

Each test prints its figures on a line starting with "FIGURE", so that a
test log can be read back for docs/reliability.md.
"""
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time

import promparse
from ferrytest import (ERROR, HELLO_OK, IDEMPOTENT, REPLY, Conn,
                       FerryTestCase, _env, binary, decode_frame, describe,
                       encode_hello, encode_request, errname, parse_error)


def figure(name, **values):
    """Prints one FIGURE line, in a form easy to grep from a test log."""
    text = " ".join(f"{k}={v}" for k, v in values.items())
    print(f"\nFIGURE {name}: {text}", flush=True)


def outcome(f):
    """REPLY, or the error's name, of an answer frame."""
    if f.type == REPLY:
        return "REPLY"
    if f.type == ERROR:
        return errname(parse_error(f.body)[0])
    return describe(f)


END_RE = re.compile(r"^ferry bench: end (.*)$", re.M)


def bench_end(stderr):
    """The key=value pairs of ferry bench's end line, as ints."""
    m = END_RE.findall(stderr)
    if not m:
        raise AssertionError(f"no end line in bench's stderr:\n{stderr}")
    return {k: int(v) for k, v in
            (kv.split("=", 1) for kv in m[-1].split())}


class DispatchCase(FerryTestCase):
    TIME_LIMIT = 120

    def services(self, d):
        f = self.conn(d).call(1, "ferry.services", b"", timeout=10)
        self.assertReply(f)
        return {s["name"]: s for s in json.loads(f.body)["services"]}

    def service(self, d, name):
        s = self.services(d)
        self.assertIn(name, s)
        return s[name]

    def v1_service(self, d, name):
        r = d.http("GET", "/v1/services")
        self.assertEqual(r.status, 200, r)
        s = {x["name"]: x for x in r.json()["services"]}
        self.assertIn(name, s)
        return s[name]

    def metrics(self, d):
        r = d.http("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return promparse.parse(r.body.decode())

    def wait_workers(self, d, name, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.services(d).get(name)
            if s is not None and len(s["workers"]) == n:
                return s
            time.sleep(0.02)
        self.fail(f"service {name}: never {n} workers")

    def worker_json(self, d, svc, wname):
        for w in self.service(d, svc)["workers"]:
            if w["name"] == wname:
                return w
        self.fail(f"no worker {wname} in service {svc}")


class TestKillLoop(DispatchCase):
    """Four echo_workers; every 500 ms one of them is SIGKILLed and a new
    one started in its place, while two `ferry bench` runs load the
    service, one with --idempotent and one without."""

    SECONDS = 9            # measured seconds of each bench
    TIMEOUT_MS = 1000      # deadline of every request
    PERIOD = 0.5           # one SIGKILL every PERIOD seconds
    SLACK_MS = 250         # scheduling slack above the deadline (ASan)

    def bench(self, d, *extra):
        cmd = [binary("ferry"), "--addr", d.addr, "bench", "--service",
               "kl", "--connections", "2", "--depth", "16", "--payload",
               "64", "--seconds", str(self.SECONDS), "--warmup", "0",
               "--timeout", str(self.TIMEOUT_MS)] + list(extra)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=_env())
        self._benches.append(p)
        return p

    def tearDown(self):
        for p in getattr(self, "_benches", []):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        super().tearDown()

    def test_kill_loop_under_bench(self):
        self._benches = []
        d = self.daemon()
        workers = [self.worker("echo_worker", "--addr", d.addr, "--service",
                               "kl") for _ in range(4)]
        self.wait_workers(d, "kl", 4)
        idem = self.bench(d, "--idempotent")
        plain = self.bench(d)
        t0 = time.monotonic()
        kills = 0
        restart_s = []
        # Kill until the benches stop sending (their window ends SECONDS
        # after they start; both started within a few ms).
        while time.monotonic() - t0 < self.SECONDS - self.PERIOD:
            k = kills % len(workers)
            workers[k].kill()
            t = time.monotonic()
            workers[k] = self.worker("echo_worker", "--addr", d.addr,
                                     "--service", "kl")
            restart_s.append(time.monotonic() - t)
            kills += 1
            time.sleep(max(0.0, t0 + kills * self.PERIOD -
                           time.monotonic()))
        out_i, err_i = idem.communicate(timeout=60)
        out_p, err_p = plain.communicate(timeout=60)
        err_i, err_p = err_i.decode(), err_p.decode()
        ei, ep = bench_end(err_i), bench_end(err_p)
        figure("kill-loop", kills=kills,
               restart_ms_max=round(max(restart_s) * 1000),
               idem_sent=ei["sent"], idem_ok=ei["replied"],
               idem_failed=ei["errors"] + ei["bad"] + ei["outstanding"],
               idem_max_latency_ms=round(ei["max_latency_us"] / 1000, 1),
               plain_sent=ep["sent"], plain_ok=ep["replied"],
               plain_failed=ep["errors"] + ep["bad"] + ep["outstanding"],
               plain_worker_lost=ep.get("WORKER_LOST", 0),
               plain_max_latency_ms=round(ep["max_latency_us"] / 1000, 1))
        self.assertGreaterEqual(kills, int(self.SECONDS / self.PERIOD) - 3,
                                "the kill loop fell behind")
        for name, e, err in (("idempotent", ei, err_i), ("plain", ep, err_p)):
            with self.subTest(bench=name):
                # Every request sent ended with exactly one answer.
                self.assertEqual(e["outstanding"], 0, err)
                self.assertEqual(e["bad"], 0, err)
                self.assertEqual(e["stray"], 0, err)
                self.assertEqual(e["sent"], e["replied"] + e["errors"], err)
                self.assertGreater(e["replied"], 1000, err)
                # ... before its deadline.
                self.assertLess(e["max_latency_us"],
                                (self.TIMEOUT_MS + self.SLACK_MS) * 1000, err)
        # Idempotent requests all succeed: ferryd retried them elsewhere.
        self.assertEqual(ei["errors"], 0, err_i)
        self.assertEqual(idem.returncode, 0, err_i)
        self.assertRegex(out_i.decode(), r"^rps=\d+ p50_us=[\d.]+ "
                         r"p99_us=[\d.]+ p999_us=[\d.]+\n$")
        # The others may fail, only because their worker was lost, and
        # some did: the kills hit requests in flight.
        others = {k: v for k, v in ep.items() if k.isupper()}
        self.assertEqual(set(others), {"WORKER_LOST"}, err_p)
        self.assertGreater(ep["errors"], 0, err_p)
        self.assertEqual(plain.returncode, 1, err_p)
        # ferryd's own counters say the same.
        s = self.service(d, "kl")
        self.assertEqual(s["requests"], ei["sent"] + ep["sent"], s)
        self.assertEqual(s["replies"], ei["replied"] + ep["replied"], s)
        self.assertEqual(s["errors"], {"WORKER_LOST": ep["errors"]}, s)
        self.assertEqual(s["in_flight"], 0, s)
        self.assertEqual(s["queued"], 0, s)
        self.assertGreater(s["retries"], 0, s)
        self.assertEqual(s["circuit"], "closed", s)
        figure("kill-loop-ferryd", requests=s["requests"],
               replies=s["replies"], worker_lost=ep["errors"],
               retries=s["retries"], retries_denied=s["retries_denied"])
        if d.http_addr:
            m = self.metrics(d)
            self.assertEqual(m.value("ferry_requests_total", service="kl"),
                             s["requests"])
            self.assertEqual(m.value("ferry_replies_total", service="kl"),
                             s["replies"])


class Load:
    """Caller threads, each with its own connection, making one call
    after another until stopped; every call is recorded as (sent, ended,
    outcome, body) with monotonic times."""

    def __init__(self, addr, service, callers, deadline_ms, timeout=5.0):
        self.addr, self.service = addr, service
        self.deadline_ms, self.timeout = deadline_ms, timeout
        self.stop = threading.Event()
        self.calls = []
        self.problems = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(k,),
                                         daemon=True)
                        for k in range(callers)]

    def run(self, k):
        try:
            with Conn(self.addr, timeout=self.timeout + 5) as c:
                c.hello(name=f"load-{k}")
                i = 0
                while not self.stop.is_set():
                    i += 1
                    payload = b"%d-%d" % (k, i)
                    t = time.monotonic()
                    f = c.call(i, self.service, payload,
                               deadline_ms=self.deadline_ms,
                               timeout=self.timeout)
                    e = time.monotonic()
                    with self.lock:
                        self.calls.append((t, e, outcome(f), f.body,
                                           payload))
        except Exception as ex:  # reported by the test
            self.problems.append(f"caller {k}: {ex!r}")

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(self.timeout + 10)
        return sorted(self.calls)


class TestFrozenWorker(DispatchCase):
    """A worker frozen with SIGSTOP under load from 8 callers.

    Settings and the bound they give: the frozen worker has credit 1, so
    it holds at most one request at a time; each ends with DEADLINE
    DEADLINE_MS after it was sent (ferryd frees the credit slot then, and
    the least-loaded choice hands the idle-looking frozen worker the next
    request at once); EJECT_FAILURES such deadlines in a row eject it.
    So it is ejected at the latest EJECT_FAILURES x DEADLINE_MS = 600 ms
    after SIGSTOP, plus scheduling. The test asserts the last failed
    request ended within 1 s + DEADLINE_MS of the SIGSTOP, and that every
    request after that is served by the other three."""

    DEADLINE_MS = 200
    EJECT_FAILURES = 3

    def test_sigstopped_worker_ejected_traffic_moves(self):
        d = self.daemon("--eject-failures", str(self.EJECT_FAILURES),
                        "--eject-base-ms", "30000")
        frozen = self.worker("tests/test_worker", "--addr", d.addr,
                             "--service", "fz", "--credit", "1", "--mode",
                             "tag:w0", "--name", "w0")
        self.wait_workers(d, "fz", 1)
        for k in range(1, 4):
            self.worker("tests/test_worker", "--addr", d.addr, "--service",
                        "fz", "--credit", "8", "--mode", f"tag:w{k}",
                        "--name", f"w{k}")
        self.wait_workers(d, "fz", 4)
        load = Load(d.addr, "fz", 8, self.DEADLINE_MS).start()
        stopped = False
        try:
            time.sleep(0.7)
            t_stop = time.monotonic()
            os.kill(frozen.pid, signal.SIGSTOP)
            stopped = True
            time.sleep(2.0)
            calls = load.finish()
            w0 = self.worker_json(d, "fz", "w0")
            s = self.service(d, "fz")
        finally:
            load.stop.set()
            if stopped:
                os.kill(frozen.pid, signal.SIGCONT)
        self.assertEqual(load.problems, [])
        before = [c for c in calls if c[1] < t_stop]
        after = [c for c in calls if c[0] >= t_stop]
        failed = [c for c in calls if c[2] != "REPLY"]
        self.assertTrue(any(c[3].startswith(b"w0:") for c in before),
                        "the frozen worker served nothing before SIGSTOP")
        self.assertEqual({c[2] for c in failed} - {"DEADLINE"}, set(),
                         failed[:5])
        self.assertEqual(len(failed), self.EJECT_FAILURES,
                         [(round(c[0] - t_stop, 3), c[2]) for c in failed])
        for c in failed:
            self.assertGreaterEqual(c[1] - c[0], self.DEADLINE_MS / 1000 -
                                    0.01)
            self.assertLess(c[1] - c[0], self.DEADLINE_MS / 1000 + 0.2)
        recovery = max(c[1] for c in failed) - t_stop
        served = [c for c in after if c[1] > t_stop + recovery]
        wrong = [c for c in served if c[2] != "REPLY" or
                 c[3] != c[3][:3] + c[4] or c[3][:3] == b"w0:"]
        figure("sigstop", sent=len(calls), sent_after_stop=len(after),
               ok=len(calls) - len(failed), failed=len(failed),
               failed_by=",".join(sorted({c[2] for c in failed})),
               recovery_ms=round(recovery * 1000),
               bound_ms=1000 + self.DEADLINE_MS,
               served_after_recovery=len(served))
        self.assertLessEqual(recovery, 1.0 + self.DEADLINE_MS / 1000)
        self.assertEqual(wrong, [])
        self.assertGreater(len(served), 100)
        self.assertTrue(w0["ejected"], w0)
        self.assertEqual(w0["ejections"], 1, w0)
        self.assertEqual(s["errors"], {"DEADLINE": self.EJECT_FAILURES}, s)
        self.assertEqual(s["ejections"], 1, s)
        self.assertEqual(s["circuit"], "closed", s)
        self.assertEqual(s["requests"], len(calls), s)
        frozen.stop()


class TestFailingWorkers(DispatchCase):
    """Two test_worker --mode flaky:9 (echo; WORKER_ERROR after SIGUSR1,
    echo again after SIGUSR2). One turns bad: ejected after EJECT
    failures. The other turns bad too: it cannot be ejected (at most half
    of the workers are), so its failures open the circuit (error rate
    >= 50% over >= 10 outcomes). Both heal: after BREAKER_OPEN_MS the
    half-open circuit's probes succeed and close it; after EJECT_BASE_MS
    the ejected worker's probe succeeds and brings it back. Each step is
    checked in ferry.services, /v1/services and /metrics."""

    EJECT = 3
    EJECT_BASE_MS = 3000
    BREAKER_OPEN_MS = 500
    BREAKER_MIN = 10

    def state(self, d):
        """(JSON of /v1/services for fl, /metrics parsed)."""
        return self.v1_service(d, "fl"), self.metrics(d)

    def test_errors_eject_then_breaker_opens_and_closes(self):
        d = self.daemon("--eject-failures", str(self.EJECT),
                        "--eject-base-ms", str(self.EJECT_BASE_MS),
                        "--breaker-min-requests", str(self.BREAKER_MIN),
                        "--breaker-error-percent", "50",
                        "--breaker-window-ms", "10000",
                        "--breaker-open-ms", str(self.BREAKER_OPEN_MS),
                        "--breaker-probes", "3")
        if not d.http_addr:
            self.skipTest("ferryd has no HTTP side")
        # Registered first, fa wins every tie while both are idle.
        fa = self.worker("tests/test_worker", "--addr", d.addr, "--service",
                         "fl", "--mode", "flaky:9", "--name", "fa")
        self.wait_workers(d, "fl", 1)
        fb = self.worker("tests/test_worker", "--addr", d.addr, "--service",
                         "fl", "--mode", "flaky:9", "--name", "fb")
        self.wait_workers(d, "fl", 2)
        c = self.conn(d)
        ids = iter(range(1, 1 << 30))

        def call():
            i = next(ids)
            t = time.monotonic()
            f = c.call(i, "fl", b"p%d" % i, deadline_ms=2000, timeout=5)
            if f.type == REPLY:
                self.assertEqual(f.body, b"p%d" % i)
            return outcome(f), time.monotonic() - t

        # 1. fa fails: ejected after EJECT failures, fb serves the rest.
        os.kill(fa.pid, signal.SIGUSR1)
        time.sleep(0.1)
        phase1 = [call()[0] for _ in range(10)]
        self.assertEqual(phase1, ["WORKER_ERROR"] * self.EJECT +
                         ["REPLY"] * (10 - self.EJECT))
        v1, m = self.state(d)
        wa = {w["name"]: w for w in v1["workers"]}
        self.assertTrue(wa["fa"]["ejected"], v1)
        self.assertFalse(wa["fb"]["ejected"], v1)
        self.assertEqual(v1["ejections"], 1, v1)
        self.assertEqual(v1["circuit"], "closed", v1)
        self.assertEqual(m.value("ferry_ejections_total", service="fl"), 1)
        self.assertEqual(m.value("ferry_circuit_state", service="fl"), 0)
        t_eject = time.monotonic()
        # 2. fb fails too. It is not ejected (one of two is the most);
        # window: 3 + k failures of 10 + k outcomes reach 50% at k = 4.
        os.kill(fb.pid, signal.SIGUSR1)
        time.sleep(0.1)
        phase2 = []
        while len(phase2) < 50:
            phase2.append(call())
            if phase2[-1][0] == "CIRCUIT_OPEN":
                break
        names = [o for o, _ in phase2]
        self.assertEqual(names, ["WORKER_ERROR"] * 4 + ["CIRCUIT_OPEN"])
        t_open = time.monotonic()
        fast = [call() for _ in range(10)]
        self.assertEqual({o for o, _ in fast}, {"CIRCUIT_OPEN"})
        fast_ms = max(t for _, t in fast) * 1000
        self.assertLess(fast_ms, 100, "CIRCUIT_OPEN was not fast")
        v1, m = self.state(d)
        self.assertEqual(v1["circuit"], "open", v1)
        self.assertEqual(v1["circuit_opens"], 1, v1)
        self.assertFalse({w["name"]: w for w in v1["workers"]}["fb"]
                         ["ejected"], v1)
        self.assertEqual(m.value("ferry_circuit_state", service="fl"), 1)
        self.assertEqual(m.value("ferry_circuit_opens_total", service="fl"),
                         1)
        # 3. Both heal. Calls every 20 ms: CIRCUIT_OPEN until the circuit
        # is half open, then its 3 probes (to fb: fa is still ejected)
        # succeed and close it.
        os.kill(fa.pid, signal.SIGUSR2)
        os.kill(fb.pid, signal.SIGUSR2)
        time.sleep(0.1)
        t_heal = time.monotonic()
        phase3 = []
        while time.monotonic() - t_heal < 3 * self.BREAKER_OPEN_MS / 1000:
            o, _ = call()
            phase3.append((o, time.monotonic()))
            if o == "REPLY":
                break
            time.sleep(0.02)
        self.assertEqual(phase3[-1][0], "REPLY", phase3)
        self.assertEqual({o for o, _ in phase3[:-1]}, {"CIRCUIT_OPEN"})
        t_first_ok = phase3[-1][1]
        for _ in range(5):
            self.assertEqual(call()[0], "REPLY")
        v1, m = self.state(d)
        self.assertEqual(v1["circuit"], "closed", v1)
        self.assertEqual(v1["circuit_opens"], 1, v1)
        self.assertEqual(m.value("ferry_circuit_state", service="fl"), 0)
        closed_after = t_first_ok - t_open
        self.assertGreaterEqual(closed_after, self.BREAKER_OPEN_MS / 1000
                                - 0.05)
        self.assertLess(closed_after, self.BREAKER_OPEN_MS / 1000 + 0.5)
        # 4. fa's ejection ends EJECT_BASE_MS after it began; its probe
        # succeeds and it is back.
        time.sleep(max(0.0, t_eject + self.EJECT_BASE_MS / 1000 + 0.1 -
                       time.monotonic()))
        back = [call()[0] for _ in range(10)]
        self.assertEqual(set(back), {"REPLY"})
        v1, m = self.state(d)
        wa = {w["name"]: w for w in v1["workers"]}
        self.assertFalse(wa["fa"]["ejected"], v1)
        self.assertFalse(wa["fa"]["probing"], v1)
        self.assertEqual(wa["fa"]["ejections"], 1, v1)
        self.assertEqual(v1["ejections"], 1, v1)
        self.assertEqual(m.value("ferry_ejections_total", service="fl"), 1)
        # fa is really back in rotation: failing again, it gets the next
        # call (it wins ties) and fails it.
        os.kill(fa.pid, signal.SIGUSR1)
        time.sleep(0.1)
        self.assertEqual(call()[0], "WORKER_ERROR")
        v1, m = self.state(d)
        n = 10 + len(phase2) + len(fast) + len(phase3) + 5 + 10 + 1
        opened = 1 + len(fast) + len(phase3) - 1
        self.assertEqual(v1["requests"], n, v1)
        self.assertEqual(v1["errors"], {"WORKER_ERROR": self.EJECT + 4 + 1,
                                        "CIRCUIT_OPEN": opened}, v1)
        self.assertEqual(m.value("ferry_errors_total", service="fl",
                                 code="CIRCUIT_OPEN"), opened)
        figure("failing-workers", sent=n, ok=v1["replies"],
               failed=n - v1["replies"],
               worker_error=self.EJECT + 4 + 1, circuit_open=opened,
               open_to_first_ok_ms=round(closed_after * 1000),
               heal_to_first_ok_ms=round((t_first_ok - t_heal) * 1000),
               breaker_open_ms=self.BREAKER_OPEN_MS,
               fast_fail_max_ms=round(fast_ms, 1))
