# SPDX-License-Identifier: MIT
"""The admin endpoints on the HTTP port (issue 3): /healthz, /readyz,
/v1/services, /v1/stats (its JSON shape, and numbers that move under load),
/v1/stats/stream (Server-Sent Events), /metrics (strict Prometheus text),
and HTTP/2 with prior knowledge when curl is there."""
import json
import numbers
import shutil
import subprocess
import threading
import time

import promparse
from ferrytest import FerryTestCase, run_ferry


def is_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class AdminCase(FerryTestCase):
    TIME_LIMIT = 40

    def http_daemon(self, *args):
        d = self.daemon("--worker-wait-ms", "200", *args)
        if not d.http_addr:
            self.fail("ferryd has no --http flag (issue 3 not built?)")
        return d

    def calls(self, d, service, n, body=b"x"):
        for i in range(n):
            r = d.http("POST", f"/v1/call/{service}", body)
            self.assertEqual(r.status, 200, r)

    def stats(self, d):
        r = d.http("GET", "/v1/stats")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        return r.json()

    def service(self, stats, name):
        for s in stats["services"]:
            if s["name"] == name:
                return s
        self.fail(f"service {name!r} not in /v1/stats: "
                  f"{[s.get('name') for s in stats['services']]}")


class TestHealth(AdminCase):

    def test_healthz_readyz(self):
        d = self.http_daemon()
        for path in ("/healthz", "/readyz"):
            with self.subTest(path=path):
                r = d.http("GET", path)
                self.assertEqual(r.status, 200, r)


class TestServices(AdminCase):

    def test_lists_builtin_and_worker(self):
        d = self.http_daemon()
        w = self.worker("tests/test_worker", "--addr", d.addr, "--service",
                        "svc.a", "--name", "worker-a", "--credit", "3")
        r = d.http("GET", "/v1/services")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        text = json.dumps(doc)
        # Either a list of services or {"services": [...]}.
        svcs = doc["services"] if isinstance(doc, dict) else doc
        self.assertIsInstance(svcs, list, text)
        names = {s.get("name") for s in svcs}
        self.assertIn("echo", names, text)
        self.assertIn("svc.a", names, text)
        a = [s for s in svcs if s.get("name") == "svc.a"][0]
        self.assertIn("worker-a", json.dumps(a), f"worker not listed: {a}")
        # Gone when the worker leaves (or listed with no workers).
        w.stop()
        time.sleep(0.3)
        svcs = d.http("GET", "/v1/services").json()
        svcs = svcs["services"] if isinstance(svcs, dict) else svcs
        left = [s for s in svcs if s.get("name") == "svc.a"]
        if left:
            self.assertNotIn("worker-a", json.dumps(left[0]), left[0])


class TestStats(AdminCase):

    def check_latency(self, lat, where):
        for k in ("p50", "p90", "p99", "p999"):
            self.assertIn(k, lat, where)
            self.assertTrue(is_num(lat[k]) and lat[k] >= 0, where)
        self.assertLessEqual(lat["p50"], lat["p90"], where)
        self.assertLessEqual(lat["p90"], lat["p99"], where)
        self.assertLessEqual(lat["p99"], lat["p999"], where)

    def test_shape(self):
        d = self.http_daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "ext")
        self.calls(d, "echo", 5)
        self.calls(d, "ext", 3)
        self.assertEqual(d.http("POST", "/v1/call/nobody", b"x").status, 404)
        st = self.stats(d)
        for k in ("uptime_s", "rss_bytes", "cpu_user_s", "cpu_sys_s",
                  "requests"):
            self.assertIn(k, st)
            self.assertTrue(is_num(st[k]) and st[k] >= 0, (k, st[k]))
        self.assertGreater(st["rss_bytes"], 1 << 20)
        self.assertIsInstance(st["connections"], dict)
        self.assertGreaterEqual(st["requests"], 8)
        self.assertIsInstance(st["services"], list)
        for name, n in (("echo", 5), ("ext", 3)):
            s = self.service(st, name)
            where = f"{name}: {json.dumps(s)}"
            for k in ("requests", "replies", "errors_total", "in_flight",
                      "queued", "rps", "rps_60s", "errors_per_s"):
                self.assertIn(k, s, where)
                self.assertTrue(is_num(s[k]) and s[k] >= 0, where)
            self.assertGreaterEqual(s["requests"], n, where)
            self.assertGreaterEqual(s["replies"], n, where)
            self.assertEqual(s["errors_total"], 0, where)
            self.assertIsInstance(s["errors"], dict, where)
            self.assertIn("workers", s, where)
            self.check_latency(s["latency_us"]["window_60s"], where)
            self.check_latency(s["latency_us"]["total"], where)
            # Never 0 µs, even for the built-in echo that answers within
            # one loop turn (ferryd reads the clock for it).
            self.assertGreater(s["latency_us"]["total"]["p50"], 0, where)
            hm = s["heatmap"]
            self.assertIsInstance(hm["bounds_us"], list, where)
            self.assertIsInstance(hm["counts"], list, where)
            self.assertTrue(hm["bounds_us"], where)
            self.assertEqual(sorted(hm["bounds_us"]), hm["bounds_us"], where)
        ext = self.service(st, "ext")
        w = ext["workers"]
        self.assertEqual(w if is_num(w) else len(w), 1, ext)

    def test_errors_counted(self):
        d = self.http_daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "bad", "--mode", "fail:9")
        for _ in range(3):
            self.assertEqual(d.http("POST", "/v1/call/bad", b"x").status, 502)
        s = self.service(self.stats(d), "bad")
        self.assertEqual(s["errors_total"], 3, s)
        self.assertEqual(sum(s["errors"].values()), 3, s)
        self.assertIn("WORKER_ERROR", json.dumps(s["errors"]), s)

    def test_numbers_move_under_load(self):
        d = self.http_daemon()
        before = self.service(self.stats(d), "echo")["requests"]
        stop = threading.Event()

        def load():
            while not stop.is_set():
                run_ferry(["bench", "--service", "echo", "--connections",
                           "2", "--depth", "4", "--payload", "16",
                           "--seconds", "1"], addr=d.addr, timeout=20)

        t = threading.Thread(target=load, daemon=True)
        t.start()
        try:
            seen_rps = 0
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                s = self.service(self.stats(d), "echo")
                seen_rps = max(seen_rps, s["rps"])
                if s["requests"] > before and seen_rps > 0:
                    break
                time.sleep(0.3)
        finally:
            stop.set()
            t.join(25)
        self.assertGreater(s["requests"], before, s)
        self.assertGreater(seen_rps, 0, s)
        st = self.stats(d)
        self.assertGreaterEqual(st["requests"], s["requests"])


class TestStream(AdminCase):

    def test_two_events(self):
        d = self.http_daemon()
        c = self.rawhttp(d, timeout=10)
        c.send(b"GET /v1/stats/stream HTTP/1.1\r\nHost: x\r\n"
               b"Accept: text/event-stream\r\n\r\n")
        # Read the head by hand: the body never ends.
        t0 = time.monotonic()
        buf = b""
        while b"\r\n\r\n" not in buf:
            c.sock.settimeout(5)
            chunk = c.sock.recv(65536)
            self.assertTrue(chunk, "closed before the head")
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        self.assertRegex(head.split(b"\r\n")[0], rb"^HTTP/1\.1 200")
        self.assertIn(b"text/event-stream", head.lower())
        chunked = b"transfer-encoding: chunked" in head.lower()
        events = []
        while len(events) < 2 and time.monotonic() - t0 < 5:
            c.sock.settimeout(max(0.1, 5 - (time.monotonic() - t0)))
            try:
                chunk = c.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            text = buf
            if chunked:
                text = dechunk_partial(buf)
            events = [e for e in text.split(b"\n\n")[:-1]
                      if b"data:" in e]
        self.assertGreaterEqual(len(events), 2, f"events: {buf[:500]!r}")
        self.assertLess(time.monotonic() - t0, 4.5)
        for ev in events[:2]:
            data = b"\n".join(line[5:].lstrip(b" ") for line in
                              ev.split(b"\n") if line.startswith(b"data:"))
            doc = json.loads(data)
            self.assertIsInstance(doc, dict)


def dechunk_partial(buf):
    """The data of the whole chunks at the start of a chunked body."""
    out, i = b"", 0
    while True:
        j = buf.find(b"\r\n", i)
        if j < 0:
            return out
        size = int(buf[i:j].split(b";")[0] or b"0", 16)
        if size == 0 or len(buf) < j + 2 + size + 2:
            return out
        out += buf[j + 2:j + 2 + size]
        i = j + 2 + size + 2


class TestMetrics(AdminCase):

    def test_strict_and_counts_echo(self):
        d = self.http_daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "ext")
        self.calls(d, "echo", 4)
        self.calls(d, "ext", 2)
        r = d.http("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        ctype = r.headers.get("content-type", "")
        self.assertIn("text/plain", ctype)
        self.assertIn("version=0.0.4", ctype)
        try:
            m = promparse.parse(r.body)
        except promparse.PromError as e:
            self.fail(f"/metrics is not valid Prometheus text: {e}\n"
                      f"{r.body[:3000].decode(errors='replace')}")
        fam = m.families.get("ferry_requests_total")
        self.assertIsNotNone(fam, sorted(m.families))
        self.assertEqual(fam.type, "counter")
        echo = [s for s in fam.samples if "echo" in s.labels.values()]
        self.assertTrue(echo, fam.samples)
        self.assertGreaterEqual(sum(s.value for s in echo), 4, echo)
        ext = [s for s in fam.samples if "ext" in s.labels.values()]
        self.assertGreaterEqual(sum(s.value for s in ext), 2, ext)
        # More calls, and the counter goes up.
        self.calls(d, "echo", 3)
        m2 = promparse.parse(d.http("GET", "/metrics").body)
        echo2 = [s for s in m2.families["ferry_requests_total"].samples
                 if "echo" in s.labels.values()]
        self.assertGreaterEqual(sum(s.value for s in echo2),
                                sum(s.value for s in echo) + 3)


class TestHttp2(AdminCase):

    def test_h2c_prior_knowledge(self):
        """HTTP/2 over cleartext with prior knowledge (h2o does it out of
        the box); through curl when it is installed, else a raw preface
        and SETTINGS exchange."""
        d = self.http_daemon()
        curl = shutil.which("curl")
        if curl:
            out = subprocess.run(
                [curl, "-s", "--http2-prior-knowledge", "-X", "POST",
                 "--data-binary", "h2 body", "-o", "-", "-w",
                 "\n%{http_version} %{http_code}",
                 f"{d.http_url}/v1/call/echo"],
                stdout=subprocess.PIPE, timeout=15).stdout
            self.assertEqual(out, b"h2 body\n2 200")
            return
        c = self.rawhttp(d)
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
               b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        c.sock.settimeout(5)
        data = c.sock.recv(9)
        self.assertEqual(len(data), 9)
        self.assertEqual(data[3], 4, f"first frame is not SETTINGS: {data}")
