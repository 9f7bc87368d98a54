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
