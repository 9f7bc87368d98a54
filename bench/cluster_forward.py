#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forwarded calls against local ones (docs/benchmarks.md, "Cluster:
forwarded calls"): a 2-node cluster on a real etcd, each node in its own
network namespace (tests/lib/ferrycluster.py; needs root), an echo_worker
on node 2, and `ferry bench` run from inside node 2's namespace twice:
at node 2 (the worker is local) and at node 1 (every call crosses the
peer link to node 2 and back). Prints both and their ratio.

    bench/cluster_forward.py [BUILD_DIR] [ROUNDS] [call|cache] [far|near]
        (default build, 3, call, far)

call: the service `fwd` of an echo_worker on node 2, 64-byte payloads.
cache: a ferry.cache GET hit of a 64-byte value whose key's vbucket node
2 owns, every reply checked against the hit (as "Cache: GET through
ferryd" does on one node): at node 2 it is served there, at node 1 it is
forwarded to node 2.

far: `ferry bench` runs in node 2's namespace for both runs, so the load
reaches node 1 across the bridge. near: it runs in the namespace of the
node it calls (a caller beside its own ferryd), so only the peer link
crosses the bridge.
"""
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

build = sys.argv[1] if len(sys.argv) > 1 else "build"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
mode = sys.argv[3] if len(sys.argv) > 3 else "call"
where = sys.argv[4] if len(sys.argv) > 4 else "far"
if mode not in ("call", "cache") or where not in ("far", "near"):
    raise SystemExit("usage: cluster_forward.py [BUILD_DIR] [ROUNDS] "
                     "[call|cache] [far|near]")
os.environ["FERRY_BIN"] = os.path.join(ROOT, build)

from ferrycluster import Cluster, binary  # noqa: E402
import vbmap  # noqa: E402
from test_forwarding import CONFIG  # noqa: E402

LOAD = ["--connections", "16", "--depth", "16", "--seconds", "5",
        "--warmup", "1"]


def cache_args(c):
    """Sets a key node 2 owns; the bench's arguments for its GET hit."""
    key = vbmap.key_owned_by(c.node(2).name, [n.name for n in c], "bench:")
    value = "v" * 64
    r = c.ferry(2, ["cache", "set", key, value])
    m = re.search(r"cas=(\d+)", r.stdout.decode())
    if m is None:
        raise SystemExit(f"cache set printed {r.stdout!r}")
    expect = "00" * 5 + f"{int(m.group(1)):016x}" + value.encode().hex()
    return ["--service", "ferry.cache", "--key", key, "--payload-hex", "01",
            "--expect-hex", expect]


def bench(c, at, args):
    cmd = c.net.wrap(at if where == "near" else 2,
                     [binary("ferry"), "bench", "--addr",
                         c.node(at).addr] + LOAD + args)
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
        if mode == "call":
            c.worker(2, "echo_worker", "--service", "fwd")
            args = ["--service", "fwd", "--payload", "64"]
        else:
            args = cache_args(c)
        time.sleep(2)  # the directory (and the map) reach node 1
        local, fwd = [], []
        print(f"mode {mode}, load generator {where}")
        for i in range(rounds):
            lr, lp, _ = bench(c, 2, args)
            fr, fp, out = bench(c, 1, args)
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
