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
import struct
import subprocess
import threading
import time

import promparse
from ferrytest import (ROLE_WORKER, Conn, FerryTestCase, _env, binary,
                       encode_hello, encode_register, parse_error, ERROR,
                       REGISTERED, http_req_bytes)


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

END_RE = re.compile(r"^ferry bench: end (.*)$", re.M)


def bench_end(stderr):
    """The key=value pairs of ferry bench's end line, as ints."""
    m = END_RE.findall(stderr)
    if not m:
        raise AssertionError(f"no end line in bench's stderr:\n{stderr}")
    return {k: int(v) for k, v in
            (kv.split("=", 1) for kv in m[-1].split())}


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
