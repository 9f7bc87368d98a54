#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/idle_conns.py - what an idle connection costs ferryd in memory.

Starts the release ferryd of BUILDDIR (default build) on a free loopback
port, with its data_dir in a temporary folder and HTTP off, reads its
resident set size (VmRSS in /proc/PID/status), opens N TCP connections
that each send HELLO (as callers, or as workers that then REGISTER one
service) and read the answer, waits for the RSS to settle, reads it
again and prints the difference per connection. Then it closes every
connection and stops ferryd by its PID. Python stdlib only; the frames
are built as docs/protocol.md describes them (and as
tests/lib/ferrytest.py does).

    bench/idle_conns.py [BUILDDIR] [--connections N] [--role caller|worker]
                        [--heartbeat-ms MS] [--calls K [--via-worker]]
                        [--repeat R]

With --calls K each caller first makes K calls, one at a time, so what a
caller keeps after it has been used is counted too: to the built-in echo
service, answered inside ferryd, or with --via-worker to a service
"idle_echo" served by one worker connection of this script (opened before
the first reading, so not counted), which is the path that fills the
caller's table of requests in flight. With --repeat R it starts a fresh
ferryd R times and prints each run and the median. The figures are for
docs/benchmarks.md ("Idle connections").
"""
import argparse
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HEADER = struct.Struct(">IBBHQ")  # body_len type flags reserved id
HELLO, HELLO_OK, REQUEST, REPLY, ERROR, REGISTER, REGISTERED = \
    1, 2, 3, 4, 5, 7, 8
ROLES = {"caller": 1, "worker": 2}


def frame(ftype, body=b"", fid=0):
    return HEADER.pack(len(body), ftype, 0, 0, fid) + body


def hello(role, heartbeat_ms, name):
    name = name.encode()
    body = struct.pack(">HBBIH", 1, role, 0, heartbeat_ms, len(name)) + \
        name + struct.pack(">H", 0)
    return frame(HELLO, body)


def register(service, credit, fid):
    service = service.encode()
    return frame(REGISTER, struct.pack(">IH", credit, len(service)) +
                 service, fid)


def request(fid, service, payload):
    service = service.encode()
    return frame(REQUEST, struct.pack(">IHH", 0, len(service), 0) +
                 service + payload, fid)


def recv_frame(sock):
    """Reads one whole frame; returns (type, id, body)."""
    head = recv_exact(sock, HEADER.size)
    body_len, ftype, _, _, fid = HEADER.unpack(head)
    return ftype, fid, recv_exact(sock, body_len)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("ferryd closed the connection")
        data += chunk
    return data


def vm_rss(pid):
    """ferryd's resident set size in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settled_rss(pid, timeout=10.0):
    """Polls RSS until three readings in a row agree within 8 KiB."""
    last = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = (last + [vm_rss(pid)])[-3:]
        if len(last) == 3 and max(last) - min(last) <= 8192:
            break
        time.sleep(0.25)
    return last[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        sys.exit(f"idle_conns.py: RLIMIT_NOFILE hard limit {hard} is below "
                 f"the {need} descriptors needed")


def connect(addr, role, heartbeat_ms, i, calls=0, service="echo"):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(hello(ROLES[role], heartbeat_ms, f"idle-{role}-{i}"))
    ftype, _, body = recv_frame(s)
    if ftype != HELLO_OK:
        raise RuntimeError(f"connection {i}: HELLO answered with type "
                           f"{ftype}: {body[4:]!r}")
    if role == "worker":
        s.sendall(register("idle", 1, 1))
        ftype, _, body = recv_frame(s)
        if ftype != REGISTERED:
            raise RuntimeError(f"connection {i}: REGISTER answered with "
                               f"type {ftype}: {body[4:]!r}")
    for n in range(1, calls + 1):
        s.sendall(request(n, service, b"ping"))
        ftype, fid, body = recv_frame(s)
        if ftype != REPLY or fid != n or body != b"ping":
            raise RuntimeError(f"connection {i}: echo call {n} answered "
                               f"with type {ftype}: {body!r}")
    return s


def echo_worker(addr):
    """A worker connection serving "idle_echo" from a thread: answers each
    REQUEST with its payload until ferryd closes the connection."""
    s = socket.create_connection(addr, timeout=10)
    s.sendall(hello(ROLES["worker"], 0, "idle-echo-worker"))
    if recv_frame(s)[0] != HELLO_OK:
        raise RuntimeError("echo worker: HELLO refused")
    s.sendall(register("idle_echo", 64, 1))
    if recv_frame(s)[0] != REGISTERED:
        raise RuntimeError("echo worker: REGISTER refused")
    s.settimeout(None)

    def serve():
        try:
            while True:
                ftype, fid, body = recv_frame(s)
                if ftype != REQUEST:
                    continue
                _, slen, klen = struct.unpack_from(">IHH", body)
                s.sendall(frame(REPLY, body[8 + slen + klen:], fid))
        except (ConnectionError, OSError):
            pass

    threading.Thread(target=serve, daemon=True).start()
    return s


def wait_listening(addr, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ferryd exited with {proc.returncode}")
        try:
            with socket.create_connection(addr, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("ferryd did not start listening")


def stop(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def run_once(args):
    """One fresh ferryd: returns (rss_before, rss_after)."""
    port = free_port()
    addr = ("127.0.0.1", port)
    socks = []
    service = "idle_echo" if args.via_worker else "echo"
    with tempfile.TemporaryDirectory(prefix="ferry-idle-") as tmp:
        log = open(os.path.join(tmp, "ferryd.log"), "w+b")
        proc = subprocess.Popen(
            [os.path.join(args.builddir, "ferryd"),
             "--listen", f"127.0.0.1:{port}", "--data-dir",
             os.path.join(tmp, "data"), "--http", "off",
             "--log-level", "warn",
             "--max-connections", str(args.connections + 100)],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(addr, proc)
            if args.via_worker:
                socks.append(echo_worker(addr))
            # One connection first, so what the first one alone sets up
            # (the shared read buffer, a service) is counted before.
            connect(addr, args.role, args.heartbeat_ms, 0, args.calls,
                    service).close()
            time.sleep(0.2)
            before = settled_rss(proc.pid)
            for i in range(1, args.connections + 1):
                socks.append(connect(addr, args.role, args.heartbeat_ms, i,
                                     args.calls, service))
            after = settled_rss(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"ferryd exited with {proc.returncode}")
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            for s in socks:
                s.close()
            stop(proc)
            log.close()
    return before, after


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("builddir", nargs="?", default="build")
    p.add_argument("--connections", "-n", type=int, default=5000)
    p.add_argument("--role", choices=sorted(ROLES), default="caller")
    p.add_argument("--heartbeat-ms", type=int, default=0,
                   help="interval announced in HELLO (0: none, so ferryd "
                        "never pings)")
    p.add_argument("--calls", type=int, default=0,
                   help="echo calls each caller makes before it idles")
    p.add_argument("--via-worker", action="store_true",
                   help="make the calls through a worker of this script")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    if args.connections < 1 or args.repeat < 1:
        p.error("--connections and --repeat must be at least 1")
    if args.calls < 0 or (args.calls > 0 and args.role != "caller"):
        p.error("--calls is for callers, and at least 0")
    if args.via_worker and args.calls == 0:
        p.error("--via-worker needs --calls")
    raise_nofile(args.connections + 256)

    per = []
    for r in range(args.repeat):
        before, after = run_once(args)
        per.append((after - before) / args.connections)
        what = f" after {args.calls} call{'s' if args.calls > 1 else ''}" \
            if args.calls else ""
        what += " through a worker" if args.via_worker else ""
        print(f"run {r + 1}: {args.connections} idle {args.role}s{what}: "
              f"ferryd VmRSS {before / 1048576:.1f} MiB -> "
              f"{after / 1048576:.1f} MiB, "
              f"{per[-1]:.0f} bytes ({per[-1] / 1024:.2f} KiB) per "
              f"connection", flush=True)
    if args.repeat > 1:
        m = statistics.median(per)
        print(f"median: {m:.0f} bytes ({m / 1024:.2f} KiB) per connection")


if __name__ == "__main__":
    main()
