#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forwarded calls against local ones (docs/benchmarks.md, "Cluster:
forwarded calls"): a 2-node cluster on a real etcd, each node in its own
network namespace (tests/lib/ferrycluster.py; needs root), an echo_worker
on node 2, and `ferry bench` run from inside node 2's namespace twice:
at node 2 (the worker is local) and at node 1 (every call crosses the
peer link to node 2 and back). Prints both and their ratio.

    bench/cluster_forward.py [BUILD_DIR] [ROUNDS]   (default build, 3)
"""
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

build = sys.argv[1] if len(sys.argv) > 1 else "build"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
os.environ["FERRY_BIN"] = os.path.join(ROOT, build)

from ferrycluster import Cluster, binary  # noqa: E402
from test_forwarding import CONFIG  # noqa: E402

ARGS = ["--connections", "16", "--depth", "16", "--payload", "64",
        "--seconds", "5", "--warmup", "1", "--service", "fwd"]


def bench(c, at):
    cmd = c.net.wrap(2, [binary("ferry"), "bench", "--addr",
                         c.node(at).addr] + ARGS)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"bench at node {at}: {r.stderr}")
    m = re.search(r"rps=([\d.]+)", r.stdout)
    p99 = re.search(r"p99_us=([\d.]+)", r.stdout)
    if m is None or p99 is None:
        raise SystemExit(f"bench at node {at}: no rps= in {r.stdout!r}")
    return float(m.group(1)), p99.group(1) + " us", r.stdout


def main():
    c = Cluster(2, config=CONFIG + ["log_level = warn"])
    try:
        c.worker(2, "echo_worker", "--service", "fwd")
        import time
        time.sleep(2)  # the directory reaches node 1
        local, fwd = [], []
        for i in range(rounds):
            lr, lp, _ = bench(c, 2)
            fr, fp, out = bench(c, 1)
            local.append(lr)
            fwd.append(fr)
            print(f"round {i + 1}: local {lr:,.0f} req/s (p99 {lp}), "
                  f"forwarded {fr:,.0f} req/s (p99 {fp})")
        ml, mf = statistics.median(local), statistics.median(fwd)
        print(f"median: local {ml:,.0f} req/s, forwarded {mf:,.0f} req/s, "
              f"forwarded/local {mf / ml:.2f}")
        print("last forwarded run:\n" + out)
    finally:
        c.close()


main()
