# SPDX-License-Identifier: MIT
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
from ferrytest import (ERROR, HELLO_OK, REPLY, Conn, FerryTestCase, _env,
                       binary, decode_frame, describe, encode_hello,
                       encode_request, errname, parse_error)


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


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to want (at most the hard
    limit); children started afterwards inherit it. Returns the old
    limits, for restore_nofile()."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = old[1]
    soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft > old[0]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return old


def proc_nofile(pid):
    """The soft 'Max open files' of process pid."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no Max open files")


class TestManyConnections(DispatchCase):
    """5,000 callers connect at once, say HELLO and stay idle; a new caller
    is then served at once, every held connection still works, and
    ferryd's RSS per idle connection is measured."""

    N = 5000
    PROMPT_S = 1.0            # a new caller's call must end within this
    MAX_PER_CONN = 64 << 10   # RSS per idle connection, generous (ASan)

    def open_all(self, d, socks):
        """Connects N sockets and says HELLO on each (all HELLOs go out
        before any answer is read, so the daemon sees them at once);
        returns the seconds until every HELLO_OK was read."""
        t0 = time.monotonic()
        hello = encode_hello(name="idle")
        for _ in range(self.N):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            socks.append(s)
            s.sendall(hello)
        sel = selectors.DefaultSelector()
        bufs = {}
        try:
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                bufs[s] = b""
            left = len(socks)
            deadline = time.monotonic() + 30
            while left and time.monotonic() < deadline:
                for key, _ in sel.select(1.0):
                    s = key.fileobj
                    data = s.recv(4096)
                    if not data:
                        raise AssertionError("an idle connection was closed")
                    bufs[s] += data
                    f, n = decode_frame(bufs[s])
                    if f is not None:
                        self.assertEqual(f.type, HELLO_OK, describe(f))
                        sel.unregister(s)
                        left -= 1
            self.assertEqual(left, 0, "HELLO_OK missing")
        finally:
            sel.close()
        for s in socks:
            s.setblocking(True)
            s.settimeout(10)
        return time.monotonic() - t0

    def test_5000_idle_connections(self):
        old = raise_nofile(self.N * 2 + 1000)
        socks = []
        try:
            if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < self.N + 500:
                self.skipTest("RLIMIT_NOFILE hard limit too low")
            # A small ASan quarantine, so freed memory does not count as
            # growth.
            d = self.daemon(env={"ASAN_OPTIONS":
                                 "detect_leaks=0:quarantine_size_mb=4"})
            self.assertGreaterEqual(proc_nofile(d.pid), self.N + 500,
                                    "ferryd did not inherit RLIMIT_NOFILE")
            self.worker("echo_worker", "--addr", d.addr, "--service", "mc")
            self.wait_workers(d, "mc", 1)
            warm = self.conn(d)
            for i in range(1, 50):
                self.assertReply(warm.call(i, "mc", b"w" * 100), b"w" * 100)
            time.sleep(0.2)
            before = d.rss()
            open_s = self.open_all(d, socks)
            time.sleep(0.5)
            after = d.rss()
            # A new caller, on a new connection, to a worker service and to
            # the built-in echo.
            t = time.monotonic()
            fresh = self.conn(d)
            self.assertReply(fresh.call(1, "mc", b"fresh", timeout=5),
                             b"fresh")
            self.assertReply(fresh.call(2, "echo", b"fresh", timeout=5),
                             b"fresh")
            prompt = time.monotonic() - t
            # Every held connection still works: each sends a request to
            # the built-in echo (5,000 at once to one worker would be
            # more than its credit and queue_limit), then every answer
            # is read.
            req = encode_request(7, "echo", b"held")
            for s in socks:
                s.sendall(req)
            bad = 0
            for s in socks:
                buf = b""
                while True:
                    f, n = decode_frame(buf)
                    if f is not None:
                        break
                    data = s.recv(4096)
                    if not data:
                        break
                    buf += data
                if f is None or f.type != REPLY or f.body != b"held" or \
                        f.id != 7:
                    bad += 1
                    if bad < 5:
                        print("held connection answered",
                              describe(f) if f else buf)
            s_json = self.service(d, "mc")
            conns = None
            if d.http_addr:
                conns = self.metrics(d).value("ferry_connections",
                                                   role="caller")
        finally:
            for s in socks:
                s.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, old)
        per_conn = (after - before) / self.N
        figure("5000-connections", connections=self.N,
               open_and_hello_s=round(open_s, 2),
               new_caller_ms=round(prompt * 1000, 1),
               rss_before_mib=round(before / 2**20, 1),
               rss_after_mib=round(after / 2**20, 1),
               rss_per_idle_conn_kib=round(per_conn / 1024, 2),
               held_calls_failed=bad)
        self.assertLess(prompt, self.PROMPT_S)
        self.assertEqual(bad, 0)
        self.assertEqual(s_json["errors"], {}, s_json)
        if conns is not None:
            self.assertGreaterEqual(conns, self.N)
        self.assertLess(per_conn, self.MAX_PER_CONN)
        self.assertReply(self.conn(d).call(3, "echo", b"after"), b"after")


class Prober(threading.Thread):
    """Another caller, calling every 50 ms on its own connection while a
    fault is under way; records how long each call took."""

    def __init__(self, addr, services):
        super().__init__(daemon=True)
        self.addr, self.services = addr, services
        self.stop = threading.Event()
        self.times = []
        self.calls = {svc: 0 for svc in services}
        self.problems = []

    def run(self):
        try:
            with Conn(self.addr, timeout=10) as c:
                c.hello(name="prober")
                i = 0
                while not self.stop.is_set():
                    for svc in self.services:
                        i += 1
                        t = time.monotonic()
                        f = c.call(i, svc, b"probe-%d" % i,
                                   deadline_ms=5000, timeout=6)
                        if f.type != REPLY or f.body != b"probe-%d" % i:
                            self.problems.append(describe(f))
                        self.times.append(time.monotonic() - t)
                        self.calls[svc] += 1
                    time.sleep(0.05)
        except Exception as e:  # reported by the test
            self.problems.append(repr(e))

    def finish(self):
        self.stop.set()
        self.join(15)
        return self.times


def pipe_send(sock, data, off, stall_s, limit_s):
    """Sends data[off:] on the non-blocking sock until all is sent, or
    nothing more was taken for stall_s, or limit_s have passed. Returns
    the new offset."""
    view = memoryview(data)
    last = time.monotonic()
    end = last + limit_s
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_WRITE)
    try:
        while off < len(data):
            now = time.monotonic()
            if now - last > stall_s or now > end:
                break
            if not sel.select(0.1):
                continue
            try:
                n = sock.send(view[off:off + (256 << 10)])
            except BlockingIOError:
                continue
            if n > 0:
                off += n
                last = time.monotonic()
    finally:
        sel.close()
    return off


class TestStalledCallers(DispatchCase):
    """Callers that stop halfway: half a frame, and a caller that
    pipelines 100,000 requests without reading its socket."""

    PROMPT_S = 1.0            # another caller's call ends within this
    MAX_GROWTH = 64 << 20     # ferryd RSS growth allowed while stalled

    def small_quarantine(self):
        # A small ASan quarantine, so freed memory does not count as growth.
        return {"ASAN_OPTIONS": "detect_leaks=0:quarantine_size_mb=4"}

    def test_half_frames_stall(self):
        """100 connections send half a HELLO header and stall: closed at
        handshake_timeout_ms. 8 callers send a REQUEST header announcing
        2 MiB and 1 MiB of its body, then stall: ferryd keeps them (a
        caller that announced no heartbeat is never timed out), holds at
        most their frames in memory, serves others meanwhile, and
        answers each once the rest of its frame arrives."""
        hs_ms = 1000
        d = self.daemon("--handshake-timeout-ms", str(hs_ms),
                        env=self.small_quarantine())
        self.worker("echo_worker", "--addr", d.addr, "--service", "hf")
        self.wait_workers(d, "hf", 1)
        warm = self.conn(d)
        for i in range(1, 20):
            self.assertReply(warm.call(i, "echo", b"z" * 100000))
        time.sleep(0.2)
        before = d.rss()
        prober = Prober(d.addr, ("echo", "hf"))
        prober.start()
        pre = []
        half_hello = encode_hello(name="half")[:10]
        t0 = time.monotonic()
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(half_hello)
            pre.append(s)
        size = 2 << 20
        payloads = [os.urandom(size) for _ in range(8)]
        frames = [encode_request(1, "echo", p, deadline_ms=60000)
                  for p in payloads]
        stalled = []
        for fr in frames:
            c = Conn(d.addr, timeout=10)
            self._conns.append(c)
            c.hello(name="half-request")
            c.send(fr[:len(fr) - size // 2])
            stalled.append(c)
        time.sleep(0.3)
        grown = d.rss() - before
        # The half HELLOs are closed at the handshake time-out.
        closed_at = []
        for s in pre:
            s.settimeout(max(0.1, t0 + hs_ms / 1000 + 2 - time.monotonic()))
            try:
                while s.recv(4096):
                    pass
            except (socket.timeout, TimeoutError):
                self.fail("a half HELLO was not closed in time")
            except ConnectionResetError:
                pass
            closed_at.append(time.monotonic() - t0)
            s.close()
        # The stalled requests are still there, unanswered.
        time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
        for c in stalled:
            with self.assertRaises(TimeoutError):
                c.recv_frame(timeout=0.01)
        times = prober.finish()
        # The rest of each frame: each gets its reply.
        for c, fr in zip(stalled, frames):
            c.send(fr[len(fr) - size // 2:])
        for c, p in zip(stalled, payloads):
            self.assertReply(c.recv_frame(timeout=20), p)
        figure("half-frames", half_hellos=len(pre),
               closed_after_ms_min=round(min(closed_at) * 1000),
               closed_after_ms_max=round(max(closed_at) * 1000),
               handshake_timeout_ms=hs_ms, half_requests=len(stalled),
               rss_growth_mib=round(grown / 2**20, 1),
               prober_calls=len(times),
               prober_max_ms=round(max(times) * 1000, 1))
        self.assertEqual(prober.problems, [])
        self.assertGreater(len(times), 10)
        self.assertLess(max(times), self.PROMPT_S)
        self.assertGreaterEqual(min(closed_at), hs_ms / 1000 - 0.05)
        self.assertLess(max(closed_at), hs_ms / 1000 + 1.0)
        self.assertLess(grown, self.MAX_GROWTH)

    N_PIPE = 100000

    def pipeliner(self, d, service, payload_size):
        """A caller socket with small kernel buffers (so that what ferryd
        holds shows) and the encoded bytes of N_PIPE requests."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
        s.connect(("127.0.0.1", d.port))
        c = Conn.__new__(Conn)
        c.addr, c.sock, c.buf, c.eof = d.addr, s, bytearray(), False
        c.hello_ok, c.send_lock = None, threading.Lock()
        self._conns.append(c)
        s.settimeout(10)
        c.hello(name="pipeliner")
        s.setblocking(False)
        frames = [encode_request(i, service,
                                 (b"%d:" % i).ljust(payload_size, b"p"),
                                 deadline_ms=60000)
                  for i in range(1, self.N_PIPE + 1)]
        self.assertEqual(len({len(f) for f in frames}), 1)
        return c, b"".join(frames), len(frames[0])

    def test_pipeliner_that_never_reads_paused_by_high_water(self):
        """100,000 requests of 512 bytes to a fast worker, pipelined by a
        caller that reads nothing: the replies fill its output to
        high_water, ferryd stops reading it, the caller's sends stall
        with most requests not taken. ferryd's RSS stays bounded, others
        are served, and once the caller reads, every request gets its
        reply."""
        d = self.daemon("--high-water", "1m", "--low-water", "256k",
                        env=self.small_quarantine())
        self.worker("echo_worker", "--addr", d.addr, "--service", "pp")
        self.wait_workers(d, "pp", 1)
        warm = self.conn(d)
        for i in range(1, 200):
            self.assertReply(warm.call(i, "pp", b"w" * 600), b"w" * 600)
        time.sleep(0.2)
        before = d.rss()
        c, data, flen = self.pipeliner(d, "pp", 512)
        prober = Prober(d.addr, ("echo", "pp"))
        prober.start()
        t0 = time.monotonic()
        off = pipe_send(c.sock, data, 0, stall_s=1.5, limit_s=30)
        stall_s = time.monotonic() - t0
        taken = off // flen
        times = prober.finish()
        # Paused: with the prober stopped, the service's count of
        # requests stands still while the caller does not read.
        req1 = self.service(d, "pp")["requests"]
        ferryd_took = req1 - 199 - prober.calls["pp"]
        time.sleep(0.5)
        s = self.service(d, "pp")
        grown = d.rss() - before
        # Now the caller reads: every request it sent gets one reply, and
        # the rest of the requests go through.
        c.sock.setblocking(True)
        got = {}
        reader_err = []

        def read_all():
            try:
                while len(got) < self.N_PIPE:
                    f = c.recv_frame(timeout=60)
                    got[f.id] = f
            except Exception as e:
                reader_err.append(repr(e))

        t = threading.Thread(target=read_all, daemon=True)
        t.start()
        c.sock.settimeout(60)
        c.sock.sendall(memoryview(data)[off:])
        t.join(90)
        t_all = time.monotonic() - t0
        bad = [i for i in range(1, self.N_PIPE + 1)
               if i not in got or got[i].type != REPLY or
               got[i].body != (b"%d:" % i).ljust(512, b"p")]
        figure("pipeliner-high-water", requests=self.N_PIPE,
               sent_before_stall=taken, ferryd_took=ferryd_took,
               stalled_after_s=round(stall_s, 2),
               rss_growth_mib=round(grown / 2**20, 1),
               prober_calls=len(times),
               prober_max_ms=round(max(times) * 1000, 1),
               replies=len(got), failed=len(bad),
               all_done_s=round(t_all, 1))
        self.assertEqual(prober.problems, [])
        self.assertEqual(reader_err, [])
        self.assertLess(off, len(data), "ferryd took every request from a "
                        "caller that reads nothing")
        self.assertLess(taken, self.N_PIPE // 2)
        # Paused: no request of it came in while it was stalled.
        self.assertEqual(s["requests"], req1, s)
        self.assertLess(grown, self.MAX_GROWTH)
        self.assertGreater(len(times), 5)
        self.assertLess(max(times), self.PROMPT_S)
        self.assertEqual(bad[:5], [])

    def test_pipeliner_paused_by_max_in_flight(self):
        """100,000 requests pipelined to a slow worker (credit 64, 200 ms
        a request) with max_in_flight 256: ferryd takes 256 of them, then
        one more per answer; the service never holds more than 256 of
        the caller's requests (at the worker and queued)."""
        mif = 256
        d = self.daemon("--max-in-flight", str(mif),
                        env=self.small_quarantine())
        self.worker("tests/test_worker", "--addr", d.addr, "--service", "pm",
                    "--credit", "64", "--mode", "sleep:200")
        self.wait_workers(d, "pm", 1)
        before = d.rss()
        c, data, flen = self.pipeliner(d, "pm", 64)
        prober = Prober(d.addr, ("echo",))
        prober.start()
        t0 = time.monotonic()
        off = pipe_send(c.sock, data, 0, stall_s=1.0, limit_s=30)
        held = []
        for _ in range(10):
            s = self.service(d, "pm")
            held.append(s["in_flight"] + s["queued"])
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        s = self.service(d, "pm")
        grown = d.rss() - before
        times = prober.finish()
        # 64 answers per 200 ms at most: what ferryd took is bounded by the
        # window plus what the worker answered meanwhile.
        bound = mif + 64 * (int(elapsed / 0.2) + 2)
        figure("pipeliner-max-in-flight", requests=self.N_PIPE,
               taken=s["requests"], bound=bound,
               held_max=max(held), max_in_flight=mif,
               rss_growth_mib=round(grown / 2**20, 1),
               prober_max_ms=round(max(times) * 1000, 1))
        self.assertEqual(prober.problems, [])
        self.assertLess(off, len(data))
        self.assertEqual(max(held), mif, held)
        self.assertLessEqual(s["requests"], bound, s)
        self.assertLess(grown, self.MAX_GROWTH)
        self.assertLess(max(times), self.PROMPT_S)
        # The caller goes: its requests leave the queue and the worker.
        c.close()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            s = self.service(d, "pm")
            if s["queued"] == 0 and s["in_flight"] == 0:
                break
            time.sleep(0.05)
        self.assertEqual((s["queued"], s["in_flight"]), (0, 0), s)
