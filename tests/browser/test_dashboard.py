# SPDX-License-Identifier: MIT
"""The dashboard, end to end: ferryd serves the embedded page and its
assets, and a real browser (Debian's chromium, driven by playwright-core
through dashboard_check.js) shows live figures while `ferry bench` loads
the echo service and fib_worker serves fib.

Processes are the harness's (stopped by PID, logs checked for sanitizer
reports); the node script is run in its own process group and that group
is killed if it overruns, so no browser outlives the test. The screenshot
is kept at build/artifacts/dashboard.png for a human to look at.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

from ferrytest import (ROOT, FerryTestCase, _env, binary,  # noqa: E402
                       ferryd_has_http, http_req_bytes, http_request)

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "dashboard_check.js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.path.join(ROOT, "build", "artifacts")
SCREENSHOT = os.path.join(ARTIFACTS, "dashboard.png")


class DashboardAssetsTest(FerryTestCase):
    """What ferryd answers on / and /assets/, without a browser."""

    def setUp(self):
        super().setUp()
        if not ferryd_has_http():
            self.fail("this ferryd has no --http")
        self.d = self.daemon()

    def get(self, path, headers=None):
        return http_request(self.d.http_addr, "GET", path, headers=headers)

    def test_page_and_assets(self):
        page = self.get("/")
        self.assertEqual(page.status, 200)
        self.assertTrue(page.headers["content-type"].startswith("text/html"),
                        page.headers)
        self.assertEqual(page.headers.get("cache-control"), "no-cache")
        text = page.body.decode()
        self.assertIn('id="throughput-chart"', text)
        # Every asset the page names is served, with its type, cacheable
        # for good because its URL carries its content hash.
        refs = re.findall(r'"/assets/([\w.-]+)\?v=([0-9a-f]+)"', text)
        self.assertEqual(sorted(n for n, _ in refs),
                         ["dashboard.css", "dashboard.js"])
        types = {"dashboard.js": "text/javascript",
                 "dashboard.css": "text/css"}
        for name, _ in refs:
            r = self.get(f"/assets/{name}")
            self.assertEqual(r.status, 200, name)
            self.assertTrue(
                r.headers["content-type"].startswith(types[name]), r.headers)
            self.assertIn("immutable", r.headers.get("cache-control", ""))
            self.assertGreater(len(r.body), 1000, name)
            self.assertEqual(int(r.headers["content-length"]), len(r.body))
        self.assertIn(b"uplot", self.get("/assets/dashboard.js").body)

    def test_revalidation(self):
        page = self.get("/")
        etag = page.headers.get("etag")
        self.assertTrue(etag and etag.startswith('"'), page.headers)
        again = self.get("/", {"If-None-Match": etag})
        self.assertEqual(again.status, 304)
        self.assertEqual(again.body, b"")
        other = self.get("/", {"If-None-Match": '"not-this-one"'})
        self.assertEqual(other.status, 200)

    def test_unknown_asset_is_404(self):
        for path in ("/assets/nope.js", "/assets/index.html", "/assets/",
                     "/assets/dashboard.js/x"):
            r = self.get(path)
            self.assertEqual(r.status, 404, path)

    def test_other_methods_refused(self):
        r = http_request(self.d.http_addr, "POST", "/", body=b"x")
        self.assertEqual(r.status, 405)
        self.assertIn("GET", r.headers.get("allow", ""))


class TopicLoad:
    """A subscriber reading GET /v1/topics/dash.>/stream and a publisher
    posting to dash.events every 100 ms, for the Topics card, until
    stopped."""

    def __init__(self, addr, headers=None):
        self.addr, self.headers = addr, dict(headers or {})
        self.stop = threading.Event()
        self.read = 0
        self.published = 0
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(http_req_bytes("GET", "/v1/topics/dash.>/stream",
                                         headers=self.headers))
        head = b""
        while b": subscribed" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"topic stream refused: {head!r}")
            head += chunk
        self.threads = [threading.Thread(target=self._reader, daemon=True),
                        threading.Thread(target=self._publisher, daemon=True)]
        for t in self.threads:
            t.start()

    def _reader(self):
        self.sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.read += chunk.count(b"event: message")

    def _publisher(self):
        while not self.stop.wait(0.1):
            r = http_request(self.addr, "POST", "/v1/topics/dash.events",
                             body=b"tick", headers=self.headers)
            if r.status == 200:
                self.published += 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        self.sock.close()


class DashboardBrowserTest(FerryTestCase):
    """The page in chromium, under load."""

    TIME_LIMIT = 150

    def setUp(self):
        super().setUp()
        self._node = None
        self._bench = None
        node = shutil.which("node")
        if node is None:
            self.fail("node is not installed (scripts/deps.sh)")
        if not os.access(CHROMIUM, os.X_OK):
            self.fail(f"no chromium at {CHROMIUM} (scripts/deps.sh)")
        if not os.path.isdir(os.path.join(ROOT, "web", "node_modules",
                                          "playwright-core")):
            self.fail("web/node_modules has no playwright-core: run make")
        if not ferryd_has_http():
            self.fail("this ferryd has no --http")
        self.node = node

    def tearDown(self):
        for p in (self._node, self._bench):
            if p is not None and p.poll() is None:
                self._stop_group(p)
        super().tearDown()

    @staticmethod
    def _stop_group(p):
        """Stops a process started in its own session, and everything it
        started (the browser), by its process group id."""
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        except ProcessLookupError:
            pass

    def test_live_dashboard(self):
        d = self.daemon()
        self._live_dashboard(d, d.http_url + "/")

    def test_live_dashboard_with_admin_token(self):
        """With admin_token set, the page opened as /#token=TOKEN sends it
        on every request, the stream too: no 401 anywhere, live data. A
        service disabled by an operator shows as such."""
        token = "dash-s3cret"
        d = self.daemon("--admin-token", token)
        r = http_request(d.http_addr, "GET", "/v1/stats/stream")
        self.assertEqual(r.status, 401, "the stream must need the token")
        r = http_request(d.http_addr, "POST", "/v1/admin/disable",
                         body=b'{"service":"fib"}',
                         headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r)
        seen = self._live_dashboard(
            d, d.http_url + "/#token=" + token,
            os.path.join(ARTIFACTS, "dashboard-token.png"),
            {"Authorization": "Bearer " + token})
        self.assertEqual(seen["states"].get("fib"), "disabled", seen)
        self.assertEqual(seen["states"].get("echo"), "built-in", seen)

    def _live_dashboard(self, d, url, shot=SCREENSHOT, headers=None):
        """Loads url in chromium under load; checks what it showed."""
        self.worker("fib_worker", "--addr", d.addr)
        # Two jobs pushed over HTTP, for the queues table.
        for body in (b"job 1", b"job 2"):
            r = http_request(d.http_addr, "POST", "/v1/queues/dash.jobs/jobs",
                             body=body, headers=headers)
            self.assertEqual(r.status, 201, r)
        self._bench = subprocess.Popen(
            [binary("ferry"), "--addr", d.addr, "bench", "--service", "echo",
             "--connections", "4", "--depth", "4", "--payload", "64",
             "--seconds", "8"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_env(), start_new_session=True)

        topics = TopicLoad(d.http_addr, headers)
        self.addCleanup(topics.finish)

        os.makedirs(ARTIFACTS, exist_ok=True)
        if os.path.exists(shot):
            os.unlink(shot)
        started = time.monotonic()
        self._node = subprocess.Popen(
            [self.node, CHECK, url, shot, "echo,fib",
             "30000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_env({"CHROMIUM": CHROMIUM}),
            cwd=ROOT, start_new_session=True)
        try:
            out, err = self._node.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self._stop_group(self._node)
            out, err = self._node.communicate()
            self.fail(f"dashboard_check.js still running after 90 s\n"
                      f"{err.decode(errors='replace')[-3000:]}")
        took = time.monotonic() - started
        lines = out.decode(errors="replace").strip().splitlines()
        if not lines:
            self.fail(f"dashboard_check.js printed nothing (exit "
                      f"{self._node.returncode})\n"
                      f"{err.decode(errors='replace')[-3000:]}")
        seen = json.loads(lines[-1])
        print(f"\n  dashboard in chromium after {took:.1f} s: "
              f"{seen.get('last_rps')} requests/s, services "
              f"{seen.get('services')}, {seen.get('workers')} worker rows, "
              f"uptime {seen.get('uptime')}, RSS {seen.get('rss')}\n"
              f"  screenshot: {shot}")

        bench_out, bench_err = self._bench.communicate(timeout=60)
        self.assertEqual(self._bench.returncode, 0,
                         f"ferry bench failed: {bench_err.decode()[-2000:]}")
        self.assertRegex(bench_out.decode(), r"rps=[1-9]")

        self.assertEqual(seen.get("errors"), [], seen)
        self.assertEqual(seen.get("status"), 200, seen)
        self.assertGreater(seen.get("last_rps", 0), 0, seen)
        self.assertIn("echo", seen.get("services", []), seen)
        self.assertIn("fib", seen.get("services", []), seen)
        self.assertGreaterEqual(seen.get("workers", 0), 1, seen)
        self.assertEqual(sorted(seen.get("charts", [])),
                         ["errors-chart", "heatmap-chart", "latency-chart",
                          "throughput-chart"], seen)
        self.assertRegex(seen.get("uptime", ""), r"^\d+[smhd]")
        self.assertRegex(seen.get("rss", ""), r"^\d+(\.\d)? (B|KiB|MiB|GiB)$")
        self.assertEqual(seen.get("stream"), "live", seen)
        # The cache panel: ferry.cache's memory against its 64 MiB cap.
        self.assertTrue(seen.get("cache_shown"), seen)
        self.assertRegex(seen.get("cache_memory", ""),
                         r"^\d+(\.\d)? (B|KiB|MiB) of 64(\.0)? MiB$", seen)
        self.assertTrue(seen.get("cache_chart"), seen)
        # The store panel: bytes used and the map of store_max_bytes.
        self.assertTrue(seen.get("store_shown"), seen)
        self.assertRegex(seen.get("store_size", ""),
                         r"^\d+(\.\d)? (B|KiB|MiB) used, map \d", seen)
        self.assertTrue(seen.get("store_chart"), seen)
        # The queues table: the queue the jobs were pushed to, both ready.
        self.assertTrue(seen.get("queues_shown"), seen)
        self.assertEqual(seen.get("queues", {}).get("dash.jobs"),
                         {"ready": 2, "dead": 0, "state": "delivering"}, seen)
        # The topics card: the one stream's subscription, the publisher's
        # ten messages a second published and delivered, none dropped.
        topics.finish()
        self.assertGreater(topics.read, 0, "the topic stream got nothing")
        self.assertTrue(seen.get("topics_shown"), seen)
        t = seen.get("topics", {})
        self.assertEqual((t.get("subscriptions"), t.get("dropped")), (1, 0),
                         seen)
        self.assertGreater(t.get("published") or 0, 0, seen)
        self.assertGreater(t.get("delivered") or 0, 0, seen)
        self.assertRegex(seen.get("topics_published", ""), r"/s$", seen)
        self.assertTrue(seen.get("topics_chart"), seen)
        # The cluster panel: this ferryd is a single node.
        self.assertTrue(seen.get("cluster_shown"), seen)
        self.assertEqual(seen.get("cluster_enabled"), "false", seen)
        self.assertEqual(seen.get("cluster_state"), "single node", seen)
        self.assertFalse(seen.get("cluster_table_shown"), seen)
        self.assertTrue(seen.get("ok"), seen)
        self.assertTrue(os.path.getsize(shot) > 10000, shot)
        return seen
