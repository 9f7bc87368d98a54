# SPDX-License-Identifier: MIT
"""Hostile HTTP peers against a real ferryd, each case bounded in count and
time and talking only to 127.0.0.1:

* `Upgrade: h2c` is refused: the answer is HTTP/1.1, never 101 (hole 9);
* SIGTERM while HTTP/1.1 and HTTP/2 clients have stopped reading (SSE
  streams, big answers, pipelined requests): ferryd flushes what it can,
  closes every connection and exits 0 within its grace time, with no
  sanitizer report (hole 4);
* big answers (/metrics, /v1/services, /v1/stats and the SSE snapshots
  with thousands of services of 255-byte names) do not stall the loop: an
  echo prober running beside four GET /metrics and 64 stalled SSE clients
  sees no DEADLINE, ferryd's RSS stays bounded, and /metrics is still
  whole and correct; stalled streams are closed past
  http_stall_timeout_ms and skipped events are counted (hole 8).

Each test prints its figures on a line starting with "FIGURE".
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import sys
import struct
import subprocess
import tempfile
import threading
import time

import promparse
from ferrytest import (BUILTIN_SERVICES, ERROR, REGISTERED, ROLE_WORKER, FerryTestCase, _env,
                       encode_register, http_req_bytes, parse_error)


def figure(name, **values):
    """Prints one FIGURE line, in a form easy to grep from a test log."""
    text = " ".join(f"{k}={v}" for k, v in values.items())
    print(f"\nFIGURE {name}: {text}", flush=True)


# Quarantine kept small so that freed memory does not count as growth.
SMALL_QUARANTINE = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                    "quarantine_size_mb=4"}

# Services one worker connection registers: below any per-connection
# limit a ferryd may set (max_services_per_worker is 256).
PER_WORKER = 200

# The echo prober, a process of its own (tests/lib/prober.py).
PROBER = os.path.join(os.path.dirname(os.path.abspath(promparse.__file__)),
                      "prober.py")

def service_name(i, length=255):
    """The i-th test service: distinct, sorted like i, length bytes."""
    return (f"svc{i:05d}-").ljust(length, "x")


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """One header field as an HPACK literal without indexing, new name
    (RFC 7541 6.2.2), without Huffman coding."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_get(stream, path, authority="127.0.0.1"):
    """A HEADERS frame (END_STREAM, END_HEADERS) for GET path."""
    block = (hpack_literal(":method", "GET") +
             hpack_literal(":scheme", "http") +
             hpack_literal(":path", path) +
             hpack_literal(":authority", authority))
    return h2_frame(1, 0x05, stream, block)


def stalled_socket(port, rcvbuf=4096):
    """A connected socket with a small receive buffer, never read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


class PeersCase(FerryTestCase):
    TIME_LIMIT = 240

    def setUp(self):
        super().setUp()
        self._socks = []
        self._subprocs = []

    def tearDown(self):
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        for p in self._subprocs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        super().tearDown()

    def sock(self, s):
        self._socks.append(s)
        return s

    def register_services(self, d, n, length=255):
        """n services of length-byte names, registered by worker
        connections of PER_WORKER each; the connections stay open (and
        are closed after the test)."""
        for first in range(0, n, PER_WORKER):
            w = self.conn(d, ROLE_WORKER, name=f"reg{first}")
            ids = range(first, min(n, first + PER_WORKER))
            w.send(b"".join(encode_register(i + 1, service_name(i, length),
                                            1) for i in ids))
            for _ in ids:
                f = w.recv_frame(timeout=60)
                if f.type == ERROR:
                    code, msg = parse_error(f.body)
                    self.fail(f"REGISTER refused: {code} {msg!r}")
                self.assertEqual(f.type, REGISTERED)

    def curl(self):
        c = shutil.which("curl")
        if c is None:
            self.skipTest("curl is not installed (scripts/deps.sh)")
        return c


class TestH2cUpgrade(PeersCase):
    """docs/http.md: no HTTP/1.1 `Upgrade: h2c`. A request asking for it
    is answered in HTTP/1.1 (RFC 9110 7.8: a server may ignore Upgrade),
    with `Connection: close` as h2o does for every upgrade it does not
    make, and nothing follows: no HTTP/2 frame. Prior knowledge still
    gives HTTP/2."""

    def test_upgrade_h2c_is_answered_in_http1(self):
        d = self.daemon()
        settings = base64.urlsafe_b64encode(
            struct.pack(">HI", 3, 100)).rstrip(b"=").decode()
        c = self.rawhttp(d)
        c.send(http_req_bytes("GET", "/healthz", headers={
            "Connection": "Upgrade, HTTP2-Settings",
            "Upgrade": "h2c", "HTTP2-Settings": settings}))
        r = c.read_response(timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("upgrade", r.headers)
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(r.json(), {"status": "ok"})
        # No SETTINGS frame nor anything else after the answer.
        self.assertEqual(c.wait_closed(timeout=10), b"")
        # The same request without Connection: Upgrade keeps the
        # connection, and is still HTTP/1.1 (read_response checks the
        # status line).
        c2 = self.rawhttp(d)
        c2.send(http_req_bytes("GET", "/healthz", headers={
            "Upgrade": "h2c"}))
        self.assertEqual(c2.read_response(timeout=10).status, 200)
        c2.send(http_req_bytes("GET", "/readyz"))
        r2 = c2.read_response(timeout=10)
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json(), {"status": "ready"})

    def test_curl_upgrade_stays_http1_prior_knowledge_is_http2(self):
        curl = self.curl()
        d = self.daemon()

        def version(*flags):
            out = subprocess.run(
                [curl, "-s", *flags, "-o", "/dev/null", "-w",
                 "%{http_version} %{http_code}",
                 f"{d.http_url}/healthz"], stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL, timeout=15).stdout
            return out.decode()

        self.assertEqual(version("--http2"), "1.1 200")
        self.assertEqual(version("--http2-prior-knowledge"), "2 200")

    def test_half_preface_and_silence_closed_after_header_timeout(self):
        """The first bytes are read by ferryd before h2o sees them: a
        client that sends half of the HTTP/2 preface, or nothing, is
        still closed after http_header_timeout_ms, without an answer."""
        d = self.daemon("--http-header-timeout-ms", "1000")
        half = self.sock(socket.create_connection(
            ("127.0.0.1", d.http_port), timeout=10))
        half.sendall(H2_PREFACE[:10])
        silent = self.sock(socket.create_connection(
            ("127.0.0.1", d.http_port), timeout=10))
        for s in (half, silent):
            s.settimeout(10)
            self.assertEqual(s.recv(100), b"")
        # A whole preface in two pieces is HTTP/2.
        h2 = self.sock(socket.create_connection(
            ("127.0.0.1", d.http_port), timeout=10))
        h2.sendall(H2_PREFACE[:7])
        time.sleep(0.1)
        h2.sendall(H2_PREFACE[7:] + h2_frame(4, 0, 0))
        h2.settimeout(10)
        head = h2.recv(9)
        self.assertEqual(len(head), 9)
        self.assertEqual(head[3], 4, f"not a SETTINGS frame: {head!r}")


class TestShutdownStalled(PeersCase):
    """config.md: on SIGTERM "every connection is flushed and closed, exit
    status 0". Here the HTTP clients have stopped reading, in every way a
    peer can: SSE streams and big answers over HTTP/1.1 and HTTP/2,
    pipelined HTTP/1.1 requests, and a slow HTTP/2 reader. ferryd used to
    abort in uv_close (hole 4)."""

    SERVICES = 1000
    GRACE_MS = 3000

    def test_sigterm_with_stalled_http_clients_exits_zero(self):
        d = self.daemon("--grace-ms", str(self.GRACE_MS), "--log-level",
                        "warn")
        self.register_services(d, self.SERVICES)
        port = d.http_port
        kinds = {}
        # HTTP/1.1 clients that send a request and never read.
        for i in range(8):
            s = self.sock(stalled_socket(port))
            s.sendall(http_req_bytes("GET", "/v1/stats/stream"))
            kinds.setdefault("h1_sse", []).append(s)
        for i in range(4):
            s = self.sock(stalled_socket(port))
            s.sendall(http_req_bytes("GET", "/metrics"))
            kinds.setdefault("h1_metrics", []).append(s)
        # Pipelined: 20 requests at once, none read.
        for i in range(2):
            s = self.sock(stalled_socket(port))
            s.sendall(b"".join(http_req_bytes("GET", p) for p in
                               ["/v1/services", "/metrics", "/v1/stats"]
                               * 7)[:])
            kinds.setdefault("h1_pipelined", []).append(s)
        # HTTP/2 with prior knowledge, frames written by hand: preface,
        # an empty SETTINGS, three streams; then nothing is read.
        for i in range(2):
            s = self.sock(stalled_socket(port))
            s.sendall(H2_PREFACE + h2_frame(4, 0, 0) +
                      h2_get(1, "/metrics") +
                      h2_get(3, "/v1/stats/stream") +
                      h2_get(5, "/v1/services"))
            kinds.setdefault("h2_stalled", []).append(s)
        # A slow HTTP/2 reader (1 KiB/s) and an HTTP/1.1 SSE reader that
        # keeps up: the latter must see its stream end whole.
        curl = shutil.which("curl")
        if curl:
            p = subprocess.Popen(
                [curl, "-s", "--http2-prior-knowledge", "--limit-rate",
                 "1k", "-o", "/dev/null", f"{d.http_url}/metrics"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            self._subprocs.append(p)
        reader = self.rawhttp(d, timeout=30)
        reader.send(http_req_bytes("GET", "/v1/stats/stream"))
        got = {"chunks": [], "ended": False}
        first = threading.Event()

        def read_stream():
            # The stream by hand (chunked): the first event tells the
            # test it is established, the zero chunk that it ended whole.
            try:
                deadline = time.monotonic() + 60
                got["status"] = reader._line(deadline)
                while reader._line(deadline):
                    pass
                while True:
                    size = int(reader._line(deadline).split(b";")[0], 16)
                    if size == 0:
                        got["ended"] = True
                        break
                    got["chunks"].append(reader._take(size, deadline))
                    reader._take(2, deadline)
                    first.set()
            except Exception as e:     # noqa: BLE001 - reported below
                got["error"] = repr(e)
            first.set()

        t = threading.Thread(target=read_stream, daemon=True)
        t.start()
        self.assertTrue(first.wait(60), "no first event")
        self.assertNotIn("error", got)
        # Let the answers fill the sockets and the streams tick.
        time.sleep(2.5)
        self.assertIsNone(d.proc.poll(), d.log_tail())
        sent = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(self.GRACE_MS / 1000 + 10)
        took = time.monotonic() - sent
        t.join(10)
        figure("sigterm_stalled_http", exit=rc, seconds=f"{took:.2f}",
               clients=sum(len(v) for v in kinds.values()) + 2)
        self.assertEqual(rc, 0, f"ferryd exit status {rc}:\n"
                         f"{d.log_tail(20)}")
        # The stream that was read ended with its last chunk, not a reset.
        self.assertNotIn("error", got)
        self.assertEqual(got["status"], b"HTTP/1.1 200 OK")
        self.assertTrue(got["ended"], "the stream did not end whole")
        events = b"".join(got["chunks"])
        self.assertTrue(events.startswith(b"data: {"), events[:100])
        self.assertTrue(events.endswith(b"\n\n"), events[-100:])
        doc = json.loads(events.split(b"\n\n")[0][len(b"data: "):])
        self.assertGreaterEqual(len(doc["services"]), self.SERVICES)


def read_until_closed(s, limit, timeout):
    """Reads s until the peer closes it; the bytes read, or None when it
    is still open after timeout (or sent more than limit bytes)."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk
    return None


def dechunk(data):
    """The body of an HTTP/1.1 answer with chunked encoding, head
    included in data: the payload of every whole chunk received."""
    if b"\r\n\r\n" not in data:
        return b""
    body = data.split(b"\r\n\r\n", 1)[1]
    out = bytearray()
    while True:
        line_end = body.find(b"\r\n")
        if line_end < 0:
            return bytes(out)
        size = int(body[:line_end].split(b";")[0], 16)
        start = line_end + 2
        if size == 0 or len(body) < start + size + 2:
            return bytes(out)
        out += body[start:start + size]
        body = body[start + size + 2:]


def sse_events(data):
    """The JSON documents of the whole SSE events in data (an HTTP/1.1
    answer with its head)."""
    return [json.loads(e) for e in
            re.findall(rb"data: (\{.*?\})\n\n", dechunk(data))]


def metric(m, name, **labels):
    """The value of the one sample of family name with these labels."""
    fam = m.families[name]
    for s in fam.samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {name}{labels}")


class TestBigAnswers(PeersCase):
    """With 4,090 services of 255-byte names (the default max_services
    with the six built-ins), GET /metrics is about 36 MB. Four of them at
    once, GET /v1/services and /v1/stats, and 64 SSE clients that do not
    read, must not hold the loop: an echo prober beside them (ferry bench,
    one request at a time, 200 ms deadline) gets every answer in time, and
    ferryd's RSS grows by less than RSS_BOUND (hole 8)."""

    SERVICES = 4096 - len(BUILTIN_SERVICES)
    STREAMS = 64
    PROBE_SECONDS = 12
    DEADLINE_MS = 200
    RSS_BOUND = 64 << 20

    def test_big_tables_do_not_stall_the_loop(self):
        curl = self.curl()
        d = self.daemon("--log-level", "warn", env=SMALL_QUARANTINE)
        self.register_services(d, self.SERVICES)
        # One echo call of its own: the documents of the first round may
        # be rendered before the prober's first call (a loaded machine
        # starts it late), and they must show echo's requests.
        self.assertReply(self.conn(d).call(1, "echo", b"x"), b"x")
        for path in ("/metrics", "/v1/stats", "/v1/services"):
            self.assertEqual(d.http("GET", path, timeout=120).status, 200)
        base = d.rss()
        for _ in range(self.STREAMS):
            s = self.sock(stalled_socket(d.http_port))
            s.sendall(http_req_bytes("GET", "/v1/stats/stream"))
        bench = subprocess.Popen(
            [sys.executable, PROBER, d.addr, str(self.PROBE_SECONDS),
             str(self.DEADLINE_MS)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_env(), text=True)
        self._subprocs.append(bench)
        out = {}
        rss = [base]
        rounds = 0
        with tempfile.TemporaryDirectory(prefix="big-") as tmp:
            while bench.poll() is None or rounds == 0:
                gets = []
                for i, path in enumerate(["/metrics"] * 4 +
                                         ["/v1/services", "/v1/stats"]):
                    f = os.path.join(tmp, f"{i}.out")
                    gets.append((path, f, subprocess.Popen(
                        [curl, "-s", "-o", f, "-w", "%{http_code}",
                         f"{d.http_url}{path}"], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, text=True)))
                    self._subprocs.append(gets[-1][2])
                for path, f, p in gets:
                    while p.poll() is None:
                        rss.append(d.rss())
                        time.sleep(0.2)
                    code = p.stdout.read()
                    self.assertEqual(code, "200", f"{path}: {code}")
                    out.setdefault(path, [])
                    with open(f, "rb") as fh:
                        out[path].append(fh.read())
                    os.unlink(f)
                rounds += 1
                # Keep only the last round's documents.
                for k in out:
                    out[k] = out[k][-4:]
            probe_out, err = bench.communicate(timeout=60)
        self.assertEqual(bench.returncode, 0, err[-2000:])
        end = json.loads(probe_out)
        growth = max(rss) - base
        figure("big_tables", services=self.SERVICES, streams=self.STREAMS,
               rounds=rounds, metrics_bytes=len(out["/metrics"][-1]),
               probes=end["sent"], probe_late=end["DEADLINE"],
               probe_max_ms=end["max_ms"],
               rss_base_mib=f"{base / 2**20:.1f}",
               rss_growth_mib=f"{growth / 2**20:.1f}")
        # Every probe answered, right and before its deadline.
        self.assertEqual((end["DEADLINE"], end["errors"]), (0, {}), end)
        self.assertEqual(end["ok"], end["sent"], end)
        self.assertGreater(end["sent"], 0)
        self.assertLess(growth, self.RSS_BOUND,
                        f"RSS grew {growth >> 20} MiB (base {base >> 20})")
        # The documents are whole and right.
        names = {service_name(i) for i in range(self.SERVICES)} | \
            set(BUILTIN_SERVICES)
        for text in out["/metrics"]:
            m = promparse.parse(text.decode())
            for fam in ("ferry_requests_total", "ferry_workers",
                        "ferry_request_duration_seconds"):
                got = {s.labels["service"] for s in
                       m.families[fam].samples}
                self.assertEqual(got, names, fam)
            for i in (0, self.SERVICES - 1):
                self.assertEqual(metric(m, "ferry_workers",
                                        service=service_name(i)), 1)
            self.assertGreater(metric(m, "ferry_requests_total",
                                      service="echo"), 0)
            self.assertIn("process_resident_memory_bytes", m.families)
        svcs = json.loads(out["/v1/services"][-1])["services"]
        self.assertEqual([s["name"] for s in svcs], sorted(names))
        self.assertEqual(svcs[-1]["workers"][0]["credit"], 1)
        stats = json.loads(out["/v1/stats"][-1])
        self.assertEqual([s["name"] for s in stats["services"]],
                         sorted(names))
        self.assertEqual(stats["requests"],
                         sum(s["requests"] for s in stats["services"]))
        self.assertIn("uptime_s", stats)


class TestStalledStreams(PeersCase):
    """What a client that stops reading a stream or a big answer may hold:
    one event of /v1/stats/stream (newer ones are skipped and counted), one
    slice of a big answer, and that for http_stall_timeout_ms; then its
    connection is closed. A client that keeps reading is never closed."""

    SERVICES = 1000
    STALL_MS = 1500

    def test_stalled_clients_closed_readers_kept(self):
        d = self.daemon("--log-level", "warn", "--http-stall-timeout-ms",
                        str(self.STALL_MS))
        self.register_services(d, self.SERVICES)
        port = d.http_port
        sse = self.sock(stalled_socket(port))
        sse.sendall(http_req_bytes("GET", "/v1/stats/stream"))
        big = self.sock(stalled_socket(port))
        big.sendall(http_req_bytes("GET", "/metrics"))
        h2 = self.sock(stalled_socket(port))
        h2.sendall(H2_PREFACE + h2_frame(4, 0, 0) + h2_get(1, "/metrics") +
                   h2_get(3, "/v1/stats/stream"))
        reader = self.rawhttp(d, timeout=30)
        reader.send(http_req_bytes("GET", "/v1/stats/stream"))
        buf = b""

        def read_for(seconds):
            nonlocal buf
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                reader.sock.settimeout(max(0.01, until - time.monotonic()))
                try:
                    chunk = reader.sock.recv(1 << 20)
                except socket.timeout:
                    continue
                self.assertTrue(chunk, "the reading client was closed")
                buf += chunk

        # The reader reads all along; the others not at all until the
        # bound (checked once a second) has passed for them.
        read_for(self.STALL_MS / 1000 + 2.5)
        # A stalled SSE client stalls only once the kernel's buffers hold
        # the events it did not read, so its close can come a few seconds
        # after the others: wait for three (reading one would unstall
        # it), then one more sweep, which must count none twice.
        wait_end = time.monotonic() + 20
        while True:
            m = promparse.parse(d.http("GET", "/metrics", timeout=60)
                                .body.decode())
            stalled = metric(m, "ferry_http_stalled_closed_total")
            if stalled >= 3 or time.monotonic() > wait_end:
                break
            read_for(0.3)
        read_for(1.2)
        m = promparse.parse(d.http("GET", "/metrics", timeout=60)
                            .body.decode())
        stalled = metric(m, "ferry_http_stalled_closed_total")
        # Each stalled one was closed: reading what it was sent ends at
        # EOF (or a reset).
        for name, s in (("sse", sse), ("metrics", big), ("h2", h2)):
            got = read_until_closed(s, 64 << 20, timeout=30)
            self.assertIsNotNone(got, f"{name}: still open")
        # The reader kept its stream: events came, each whole, and go on.
        deadline = time.monotonic() + 20
        reader.sock.settimeout(20)
        n0 = len(sse_events(buf))
        while len(sse_events(buf)) < n0 + 2 and \
                time.monotonic() < deadline:
            chunk = reader.sock.recv(1 << 20)
            self.assertTrue(chunk, "the reading client was closed")
            buf += chunk
        events = sse_events(buf)
        self.assertGreaterEqual(len(events), n0 + 2)
        self.assertEqual(len(events[-1]["services"]), self.SERVICES + len(BUILTIN_SERVICES))
        figure("stalled_closed", stall_ms=self.STALL_MS,
               closed=int(stalled), reader_events=len(events))
        # One per stalled connection (the HTTP/2 one had two streams).
        self.assertEqual(stalled, 3)

    def test_slow_sse_client_skips_events_and_they_are_counted(self):
        """Stalled for 8 s (under the 10 s bound): the kernel's buffers
        take the first events, then ferryd's send of one waits; the ticks
        meanwhile are skipped, counted, and the client next gets the
        newest event, seconds after the one before."""
        d = self.daemon("--log-level", "warn")
        self.register_services(d, self.SERVICES)
        s = self.sock(stalled_socket(d.http_port))
        s.sendall(http_req_bytes("GET", "/v1/stats/stream"))
        time.sleep(8)
        buf = b""
        deadline = time.monotonic() + 20
        s.settimeout(20)
        events = []
        gaps = []
        parsed = 0
        while time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, "the slow client was closed")
            buf += chunk
            if len(buf) - parsed < 256 << 10:
                continue
            parsed = len(buf)
            events = sse_events(buf)
            gaps = [b["uptime_s"] - a["uptime_s"]
                    for a, b in zip(events, events[1:])]
            if gaps and max(gaps) >= 1.9 and len(events) >= 8:
                break
        m = promparse.parse(d.http("GET", "/metrics", timeout=60)
                            .body.decode())
        dropped = metric(m, "ferry_http_sse_dropped_events_total")
        figure("sse_dropped", dropped=int(dropped), events=len(events),
               largest_gap_s=f"{max(gaps):.2f}")
        self.assertGreaterEqual(dropped, 1)
        self.assertGreaterEqual(max(gaps), 1.9, gaps)
        self.assertEqual(len(events[-1]["services"]), self.SERVICES + len(BUILTIN_SERVICES))
