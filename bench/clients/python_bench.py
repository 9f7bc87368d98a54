#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python client beside redis-py, in one run on one machine.

    /usr/bin/python3 bench/clients/python_bench.py [--seconds S] [--rounds R]
        [--batch N] [--payload BYTES] [--ferryd PATH]

Starts a ferryd (build/ferryd unless --ferryd) and a redis-server (no
persistence), each on a free loopback port, and measures the same round
trips through both clients, one connection each:

  sync loop       one call at a time: ferry Client.call("echo", p) and
                  redis-py r.echo(p)
  sync batch      N calls in flight, sent in one write: Client.call_many
                  and a redis-py pipeline of N ECHO (no MULTI)
  asyncio batch   the same on asyncio: AsyncClient.call_many and a
                  redis.asyncio pipeline of N ECHO
  asyncio gather  N tasks each awaiting AsyncClient.call (ferry only:
                  redis.asyncio would open a connection per task)

Rounds alternate ferry and redis so that load from elsewhere hits both
alike; the table gives the median calls per second of the rounds and the
ratio ferry / redis. Needs Debian's python3-redis and redis-server.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import ferry  # noqa: E402

try:
    import redis  # noqa: E402
    import redis.asyncio as aredis  # noqa: E402
except ImportError:
    sys.exit("python3-redis is needed (Debian: apt-get install python3-redis;"
             " run with /usr/bin/python3)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited at start ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} not listening after 10 s")


def timed(fn, seconds: float) -> float:
    """Calls fn() (which makes `n` calls and returns n) until seconds
    pass; calls per second."""
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        n += fn()
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


async def atimed(fn, seconds: float) -> float:
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        n += await fn()
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--payload", type=int, default=16)
    ap.add_argument("--ferryd", default=os.path.join(ROOT, "build", "ferryd"))
    a = ap.parse_args()
    if not shutil.which("redis-server"):
        sys.exit("redis-server is needed (Debian: apt-get install "
                 "redis-server)")
    tmp = tempfile.mkdtemp(prefix="pybench-")
    fport, rport = free_port(), free_port()
    fproc = subprocess.Popen([a.ferryd, "--listen", f"127.0.0.1:{fport}",
                              "--data-dir", tmp, "--http", "off",
                              "--log-level", "warn"],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    rproc = subprocess.Popen(["redis-server", "--port", str(rport),
                              "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", tmp],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_port(fport, fproc, "ferryd")
        wait_port(rport, rproc, "redis-server")
        return run(a, f"127.0.0.1:{fport}", rport)
    finally:
        for p in (fproc, rproc):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, faddr: str, rport: int) -> int:
    payload = b"x" * a.payload
    batch = a.batch
    fc = ferry.Client(faddr)
    rc = redis.Redis(host="127.0.0.1", port=rport)
    assert fc.call("echo", payload) == payload
    assert rc.echo(payload) == payload

    def f_sync() -> int:
        call = fc.call
        for _ in range(100):
            call("echo", payload)
        return 100

    def r_sync() -> int:
        echo = rc.echo
        for _ in range(100):
            echo(payload)
        return 100

    payloads = [payload] * batch

    def f_sbatch() -> int:
        fc.call_many("echo", payloads)
        return batch

    def r_sbatch() -> int:
        p = rc.pipeline(transaction=False)
        for _ in range(batch):
            p.echo(payload)
        p.execute()
        return batch

    results: dict[str, dict[str, list[float]]] = {
        k: {"ferry": [], "redis": []}
        for k in ("sync loop", "sync batch", "asyncio batch",
                  "asyncio gather")}

    async def arounds() -> None:
        fa = ferry.AsyncClient(faddr)
        await fa.connect()
        ra = aredis.Redis(host="127.0.0.1", port=rport)
        await ra.echo(payload)

        async def f_abatch() -> int:
            await fa.call_many("echo", payloads)
            return batch

        async def f_gather() -> int:
            call = fa.call
            await asyncio.gather(*[call("echo", payload)
                                   for _ in range(batch)])
            return batch

        async def r_abatch() -> int:
            p = ra.pipeline(transaction=False)
            for _ in range(batch):
                p.echo(payload)
            await p.execute()
            return batch

        for _ in range(a.rounds):
            results["asyncio batch"]["ferry"].append(
                await atimed(f_abatch, a.seconds))
            results["asyncio batch"]["redis"].append(
                await atimed(r_abatch, a.seconds))
            results["asyncio gather"]["ferry"].append(
                await atimed(f_gather, a.seconds))
        await fa.close()
        await ra.close()

    for _ in range(a.rounds):
        results["sync loop"]["ferry"].append(timed(f_sync, a.seconds))
        results["sync loop"]["redis"].append(timed(r_sync, a.seconds))
        results["sync batch"]["ferry"].append(timed(f_sbatch, a.seconds))
        results["sync batch"]["redis"].append(timed(r_sbatch, a.seconds))
    asyncio.run(arounds())
    fc.close()
    rc.close()

    print(f"python {sys.version.split()[0]}, redis-py {redis.__version__}, "
          f"payload {a.payload} B, batch {batch}, {a.rounds} rounds of "
          f"{a.seconds:g} s, load {os.getloadavg()[0]:.2f}")
    print(f"| {'test':<14} | {'ferry calls/s':>13} | {'redis-py calls/s':>16}"
          f" | {'ferry / redis':>13} |")
    print(f"| {'-' * 14} | {'-' * 13}: | {'-' * 16}: | {'-' * 13}: |")
    for k, v in results.items():
        f = statistics.median(v["ferry"])
        if not v["redis"]:
            print(f"| {k:<14} | {f:>13,.0f} | {'-':>16} | {'-':>13} |")
            continue
        r = statistics.median(v["redis"])
        print(f"| {k:<14} | {f:>13,.0f} | {r:>16,.0f} | {f / r:>13.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
