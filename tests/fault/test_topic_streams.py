# SPDX-License-Identifier: MIT
"""Topic streams under load (GET /v1/topics/{pattern}/stream, docs/http.md):
a fan-out of big messages to many SSE streams, half of them read as fast
as they come, half never read. Every piece of every stream is a job of
the HTTP server within its turn budget, so the loop keeps turning: an
echo prober beside them (its own process, one request at a time, 200 ms
deadline) gets every answer in time, the readers get every message, and
the streams nobody reads cost their subscription's buffer and one POLL
answer each, not what was published (the admin streams' stall bug,
admin.c, is the model)."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import promparse
import topicwire as tw
from ferrytest import FerryTestCase, _env, http_req_bytes

PROBER = os.path.join(os.path.dirname(os.path.abspath(promparse.__file__)),
                      "prober.py")


def figure(name, **values):
    """Prints one FIGURE line, in a form easy to grep from a test log."""
    text = " ".join(f"{k}={v}" for k, v in values.items())
    print(f"\nFIGURE {name}: {text}", flush=True)


class Reader:
    """A stream read as fast as it comes, in a thread: its bytes."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(http_req_bytes("GET", path))
        self.got = 0
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                b = self.sock.recv(1 << 20)
            except OSError:
                return
            if not b:
                return
            self.got += len(b)

    def close(self):
        self.sock.close()
        self.t.join(5)


class TestFanout(FerryTestCase):
    TIME_LIMIT = 240
    FAST = 48
    STALLED = 48
    SIZE = 512 << 10
    PROBE_SECONDS = 10
    DEADLINE_MS = 200

    def test_fanout_keeps_the_loop_turning(self):
        d = self.daemon("--log-level", "warn",
                        "--http-stall-timeout-ms", "120000")
        c = self.conn(d)
        readers = [Reader(d.http_port, "/v1/topics/fan.*/stream")
                   for _ in range(self.FAST)]
        stalled = []
        for _ in range(self.STALLED):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", d.http_port))
            s.sendall(http_req_bytes("GET",
                                     "/v1/topics/fan.*/stream?max_pending=8"))
            stalled.append(s)
        self.addCleanup(lambda: [s.close() for s in stalled])
        self.addCleanup(lambda: [r.close() for r in readers])
        fid = 0

        def call(op, payload, key=b""):
            nonlocal fid
            fid += 1
            f = c.call(fid, tw.SVC, payload, key=key, timeout=30)
            self.assertReply(f)
            return tw.reply(op, f.body)

        end = time.monotonic() + 10
        while call(tw.STATS, tw.stats())["json"]["subscriptions"] < \
                self.FAST + self.STALLED:
            self.assertLess(time.monotonic(), end, "streams not subscribed")
            time.sleep(0.05)
        used0 = self.metric(d, "ferry_memory_used_bytes")
        prober = subprocess.Popen(
            [sys.executable, PROBER, d.addr, str(self.PROBE_SECONDS),
             str(self.DEADLINE_MS)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_env(), text=True)
        self.addCleanup(lambda: prober.poll() is None and prober.kill())
        # One message at a time, the next once every reader has this one:
        # a fan-out as big as the readers take, for as long as the
        # prober runs.
        body = b"m" * self.SIZE
        sent, used_max = 0, used0
        while prober.poll() is None:
            self.assertEqual(call(tw.PUBLISH, tw.publish(body),
                                  b"fan.out")["receivers"],
                             self.FAST + self.STALLED)
            sent += 1
            end = time.monotonic() + 30
            while min(r.got for r in readers) < sent * self.SIZE:
                self.assertLess(time.monotonic(), end,
                                f"readers stuck at message {sent}")
                time.sleep(0.01)
            used_max = max(used_max, self.metric(d, "ferry_memory_used_bytes"))
        out, err = prober.communicate(timeout=60)
        self.assertEqual(prober.returncode, 0, err[-2000:])
        probe = json.loads(out)
        st = call(tw.STATS, tw.stats())["json"]
        pending = sorted(s["pending"] for s in st["subs"])
        growth = used_max - used0
        figure("topic_fanout", fast=self.FAST, stalled=self.STALLED,
               size_kib=self.SIZE >> 10, messages=sent,
               sse_mib=sent * self.SIZE * self.FAST >> 20,
               probes=probe["sent"], probe_late=probe["DEADLINE"],
               probe_max_ms=probe["max_ms"],
               used_growth_mib=f"{growth / 2**20:.1f}")
        self.assertGreater(sent, 2)
        # Every probe answered, right and in time.
        self.assertEqual((probe["DEADLINE"], probe["errors"]), (0, {}), probe)
        self.assertEqual(probe["ok"], probe["sent"], probe)
        # The streams nobody reads: at most their max_pending buffered
        # (each message stored once for all). Every stream, read or not,
        # holds one POLL answer while it sends it (here one message, in a
        # buffer of twice its size at most) and its piece in formatting.
        self.assertLessEqual(pending[-1], 8)
        per_stream = 2 * self.SIZE + (256 << 10)
        bound = (self.FAST + self.STALLED) * per_stream + 8 * self.SIZE + \
            (32 << 20)
        self.assertLess(growth, bound,
                        f"live bytes grew {growth >> 20} MiB for "
                        f"{sent * self.SIZE * self.STALLED >> 20} MiB "
                        f"published to streams nobody reads")

    def metric(self, d, name):
        r = d.http("GET", "/metrics")
        return int(promparse.parse(r.body.decode()).value(name))
