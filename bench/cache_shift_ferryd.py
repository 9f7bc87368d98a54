#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/cache_shift_ferryd.py - the shift of value sizes of
bench/cache_shift.c, through a running ferryd and ferry.cache: fill with
100-byte values (1.5x the cap in keys), then with 10-KiB values (1.5x
the cap), then read back the newest 10-KiB keys; print ferryd's RSS
(VmRSS of /proc/PID/status) and the cache's stats after each phase, and
again 2 s after the last write, when the reclaim timer has had time to
malloc_trim. Rows for docs/benchmarks.md ("Cache: RSS after the shift,
through ferryd").

    python3 bench/cache_shift_ferryd.py [BUILDDIR] [CAP_MIB]
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import cachewire as cw  # noqa: E402
import ferrytest as ft  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CAP_MIB = int(sys.argv[2]) if len(sys.argv) > 2 else 64
BATCH = 500


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Pipe:
    """One caller connection sending batches of requests."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.s.sendall(ft.encode_hello())
        f = self.frames(1)[0]
        assert f.type == ft.HELLO_OK, f
        self.fid = 0

    def frames(self, n):
        out = []
        while len(out) < n:
            f, used = ft.decode_frame(self.buf)
            if f is None:
                data = self.s.recv(1 << 20)
                if not data:
                    raise EOFError("ferryd closed the connection")
                self.buf += data
                continue
            del self.buf[:used]
            if f.type != ft.PING:
                out.append(f)
        return out

    def batch(self, reqs):
        """reqs: [(key, payload)]; returns the reply bodies in order."""
        first = self.fid + 1
        out = bytearray()
        for key, payload in reqs:
            self.fid += 1
            out += ft.encode_request(self.fid, cw.SERVICE, payload, key=key)
        self.s.sendall(out)
        got = {f.id: f for f in self.frames(len(reqs))}
        bodies = []
        for i in range(first, self.fid + 1):
            f = got[i]
            assert f.type == ft.REPLY, ft.describe(f)
            bodies.append(f.body)
        return bodies


def stats(addr):
    r = ft.http_request(addr, "GET", "/v1/stats")
    return r.json()["servants"]["cache"]


def main():
    tmp = tempfile.mkdtemp(prefix="ferry-shift-")
    port, hport = ft.free_port(), ft.free_port()
    addr, haddr = f"127.0.0.1:{port}", f"127.0.0.1:{hport}"
    log = open(os.path.join(tmp, "ferryd.log"), "wb")
    d = subprocess.Popen([os.path.join(BUILD, "ferryd"), "--listen", addr,
                          "--http", haddr, "--data-dir", tmp,
                          "--cache-max-bytes", f"{CAP_MIB}m"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                p = Pipe(addr)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("ferryd did not start")
        cap = CAP_MIB << 20
        print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
              f"{os.uname().machine}, {os.cpu_count()} cores, load "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])}; "
              f"ferryd {BUILD}/ferryd --cache-max-bytes {CAP_MIB}m")
        print(f"start: RSS {rss_mib(d.pid):.1f} MiB")
        rows = []

        def row(name):
            st = stats(haddr)
            r = {"phase": name, "rss_mib": round(rss_mib(d.pid), 1),
                 "bytes_mib": round(st["bytes"] / 1048576, 1),
                 "items": st["items"], "evictions": st["evictions"],
                 "trims": st["trims"], "hit_ratio": st["hit_ratio"]}
            rows.append(r)
            print(json.dumps(r))

        for phase, prefix, size in (("100 B", b"a", 100),
                                    ("10 KiB", b"b", 10240)):
            charge = ((size + 62 + 12 + 8 + 15) // 16) * 16 + 8
            n = int(1.5 * cap / charge)
            val = b"x" * size
            t0 = time.monotonic()
            for start in range(0, n, BATCH):
                reqs = [(b"%s:%d" % (prefix, i), cw.set_(val))
                        for i in range(start, min(n, start + BATCH))]
                p.batch(reqs)
            took = time.monotonic() - t0
            print(f"phase {phase}: {n} sets in {took:.1f} s")
            row(f"after {phase} sets")
        # The newest 10-KiB keys: how many of the last 6,000 are held.
        keys = [b"b:%d" % i for i in range(n - 6000, n)]
        hits = 0
        for start in range(0, len(keys), BATCH):
            for body in p.batch([(k, cw.get()) for k in
                                 keys[start:start + BATCH]]):
                hits += cw.parse_hit(body) is not None
        print(f"newest 6000 10-KiB keys: {hits} held")
        time.sleep(2.0)
        row("2 s later (reclaim timer)")
    finally:
        d.terminate()
        d.wait(10)
        log.close()
    print(open(os.path.join(tmp, "ferryd.log")).read()[-2000:], end="")


if __name__ == "__main__":
    main()
