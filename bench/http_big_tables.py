#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/http_big_tables.py - does a big service table stall the loop?

Starts the ferryd of BUILDDIR (default build, the release build) with
4,093 services of 255-byte names (the default max_services with the
three built-ins), registered by worker connections of 200 services each,
then runs `ferry bench` (one connection, one echo request in flight,
--timeout 2000 so none expires) for 5 s beside each load: nothing, one
GET /metrics after another (curl), four at once, and 64 SSE clients of
/v1/stats/stream that never read. It prints the prober's requests, p99
and longest latency, the time one GET took, ferryd's RSS before and with
the stalled clients (VmRSS), and ferryd's exit status on SIGTERM. Uses
tests/lib (ferrytest) and curl. The figures are for docs/reliability.md
("HTTP peers").

    bench/http_big_tables.py [BUILDDIR]
"""
import os
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fault"))
os.environ["FERRY_BIN"] = os.path.abspath(
    sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))

from ferrytest import (ROLE_WORKER, Daemon, binary,  # noqa: E402
                       encode_register, http_req_bytes)
from test_http_peers import (PER_WORKER, service_name,  # noqa: E402
                             stalled_socket)

SERVICES = 4093


def bench(d, seconds=5):
    r = subprocess.run([binary("ferry"), "--addr", d.addr, "bench",
                        "--connections", "1", "--depth", "1", "--payload",
                        "16", "--seconds", str(seconds), "--warmup", "0",
                        "--timeout", "2000"], capture_output=True, text=True)
    m = re.findall(r"^ferry bench: end (.*)$", r.stderr, re.M)
    if not m:
        return "prober failed: " + r.stderr.strip()[-200:]
    end = dict(kv.split("=") for kv in m[-1].split())
    p99 = float(re.search(r"p99_us=([\d.]+)", r.stdout).group(1)) / 1000
    return (f"requests={end['sent']} p99_ms={p99:.1f} "
            f"max_ms={int(end['max_latency_us']) / 1000:.1f} "
            f"errors={end['errors']}")


def get_loop(d, path, stop, times):
    while not stop.is_set():
        t = time.monotonic()
        subprocess.run(["curl", "-s", "-o", "/dev/null", d.http_url + path])
        times.append(time.monotonic() - t)


def main():
    d = Daemon(["--log-level", "warn"]).start()
    workers = []
    try:
        for first in range(0, SERVICES, PER_WORKER):
            w = d.conn(ROLE_WORKER)
            workers.append(w)
            ids = range(first, min(SERVICES, first + PER_WORKER))
            w.send(b"".join(encode_register(i + 1, service_name(i), 1)
                            for i in ids))
            for _ in ids:
                w.recv_frame(60)
        print(f"idle: {bench(d)} rss={d.rss() >> 20} MiB")
        for par in (1, 4):
            stop, times = threading.Event(), []
            ts = [threading.Thread(target=get_loop,
                                   args=(d, "/metrics", stop, times))
                  for _ in range(par)]
            for t in ts:
                t.start()
            time.sleep(0.3)
            line = bench(d)
            stop.set()
            for t in ts:
                t.join()
            print(f"GET /metrics x{par}: {line} gets={len(times)} "
                  f"one_get_s={sum(times) / max(1, len(times)):.2f}")
        base = d.rss()
        socks = []
        for _ in range(64):
            s = stalled_socket(d.http_port)
            s.sendall(http_req_bytes("GET", "/v1/stats/stream"))
            socks.append(s)
        time.sleep(2)
        line = bench(d)
        print(f"64 stalled SSE: {line} rss={base >> 20} -> "
              f"{d.rss() >> 20} MiB")
    finally:
        for w in workers:
            w.close()
        print(f"exit status on SIGTERM: {d.stop()}")


if __name__ == "__main__":
    main()
