# SPDX-License-Identifier: MIT
"""ferry.Client against a real ferryd: calls, threads sharing one
connection, futures and CANCEL, deadlines (ferryd's and the local timer),
heartbeats, reconnection, local TOO_BIG, tokens."""
import asyncio
import concurrent.futures
import os
import signal
import threading
import time

import fhelp
import ferry

TW = os.path.join(fhelp.HERE, "tworker.py")


class TestClient(fhelp.TestCase):
    def test_call_errors_and_connects(self):
        d = self.daemon("--worker-wait-ms", "100")
        with ferry.Client(d.addr) as c:
            self.assertEqual(c.call("echo", b"hello"), b"hello")
            self.assertEqual(c.call("echo", "text"), b"text")
            self.assertEqual(c.call("echo", b""), b"")
            big = os.urandom(1 << 20)
            self.assertEqual(c.call("echo", big), big)
            with self.assertRaises(ferry.UnknownServiceError) as cm:
                c.call("no-such-service", b"x", deadline_ms=2000)
            e = cm.exception
            self.assertEqual((e.code, e.name), (5, "UNKNOWN_SERVICE"))
            self.assertIsInstance(e, ferry.FerryError)
            self.assertEqual(c.connects, 1)
            self.assertEqual(c.server.max_frame, 16777216)
        with ferry.Client(d.unix_addr) as c:
            self.assertEqual(c.call("echo", b"unix"), b"unix")

    def test_cluster_on_a_single_node(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c:
            self.assertEqual(c.cluster(), {"enabled": False})
        d2 = self.daemon("--admin-token", "at-s3cret")
        with ferry.Client(d2.addr, token="at-s3cret") as c:
            self.assertEqual(c.cluster(deadline_ms=5000), {"enabled": False})

        async def aio():
            async with ferry.AsyncClient(d.addr) as c:
                return await c.cluster()
        self.assertEqual(asyncio.run(aio()), {"enabled": False})

    def test_threads_share_one_connection(self):
        d = self.daemon()
        c = ferry.Client(d.addr)
        self.addCleanup(c.close)
        bad = []

        def run(t):
            for i in range(300):
                p = f"{t}:{i}".encode() * (1 + i % 7)
                r = c.call("echo", p)
                if r != p:
                    bad.append((p, r))
        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(25)
        self.assertEqual(bad, [])
        self.assertEqual(c.connects, 1)

    def test_futures_pipelined(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c:
            ps = [b"%d" % i * (i % 5 + 1) for i in range(3000)]
            futs = [c.submit("echo", p) for p in ps]
            self.assertEqual([f.result(20) for f in futs], ps)
            self.assertIs(ferry.Client.call_async, ferry.Client.submit)

    def test_call_many(self):
        d = self.daemon("--max-frame", "1024", "--worker-wait-ms", "100")
        self.pyproc([TW, d.addr])
        with ferry.Client(d.addr) as c:
            ps = [b"%d" % i for i in range(2000)]
            self.assertEqual(c.call_many("echo", ps), ps)
            self.assertEqual(c.call_many("echo", []), [])
            got = c.call_many("boom", [b"a", b"b"], return_exceptions=True)
            self.assertEqual([type(e) for e in got],
                             [ferry.WorkerError, ferry.WorkerError])
            with self.assertRaises(ferry.WorkerError):
                c.call_many("boom", [b"a"])
            with self.assertRaises(ferry.TooBigError):
                c.call_many("echo", [b"a", b"x" * 2000])
            self.assertEqual(c.call("echo", b"ok"), b"ok")
            self.assertEqual(c.connects, 1)

    def test_cancel_sends_cancel(self):
        d = self.daemon()
        w = self.pyproc([TW, d.addr])
        with ferry.Client(d.addr) as c:
            fut = c.submit("hang", b"", deadline_ms=20000)
            start = w.wait_line(lambda l: l.startswith("START "))
            jid = start.split()[1]
            self.assertTrue(fut.cancel())
            w.wait_line(lambda l: l == f"CANCEL {jid}", 5)
            with self.assertRaises(ferry.CancelledError) as cm:
                fut.result(1)
            self.assertIsInstance(cm.exception,
                                  concurrent.futures.CancelledError)
            self.assertEqual(cm.exception.code, 12)
            # The connection is still good.
            self.assertEqual(c.call("echo", b"after"), b"after")

    def test_deadline_from_ferryd(self):
        d = self.daemon()
        self.pyproc([TW, d.addr])
        with ferry.Client(d.addr) as c:
            t0 = time.monotonic()
            with self.assertRaises(ferry.DeadlineError):
                c.call("hang", b"", deadline_ms=200)
            self.assertLess(time.monotonic() - t0, 5)

    def test_local_timer_when_ferryd_is_stopped(self):
        d = self.daemon("--heartbeat-ms", "0")
        c = ferry.Client(d.addr, heartbeat_ms=0)
        self.addCleanup(c.close)
        self.assertEqual(c.call("echo", b"x"), b"x")
        d.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with self.assertRaises(ferry.DeadlineError) as cm:
                c.call("echo", b"y", deadline_ms=300)
            took = time.monotonic() - t0
            self.assertIn("no answer from ferryd", cm.exception.message)
            self.assertGreaterEqual(took, 0.3)
            self.assertLess(took, 5)
        finally:
            d.signal(signal.SIGCONT)
        self.assertEqual(c.call("echo", b"z"), b"z")

    def test_heartbeat_takes_silent_ferryd_for_dead(self):
        d = self.daemon("--heartbeat-ms", "200")
        c = ferry.Client(d.addr, heartbeat_ms=200)
        self.addCleanup(c.close)
        self.assertEqual(c.server.heartbeat_ms, 200)
        self.assertEqual(c.call("echo", b"x"), b"x")
        d.signal(signal.SIGSTOP)
        try:
            fut = c.submit("echo", b"y", deadline_ms=20000)
            t0 = time.monotonic()
            with self.assertRaises(ferry.ConnectionError) as cm:
                fut.result(10)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertIn("silent", cm.exception.message)
        finally:
            d.signal(signal.SIGCONT)
        self.assertEqual(c.call("echo", b"again", deadline_ms=5000),
                         b"again")
        self.assertEqual(c.connects, 2)

    def test_idle_client_pings(self):
        """A client that promised a heartbeat keeps its idle connection
        open past three of its intervals (its PINGs count)."""
        d = self.daemon("--heartbeat-ms", "100")
        with ferry.Client(d.addr, heartbeat_ms=100) as c:
            time.sleep(1.0)
            self.assertEqual(c.call("echo", b"still"), b"still")
            self.assertEqual(c.connects, 1)

    def test_call_during_restart_succeeds(self):
        d = self.daemon()
        c = ferry.Client(d.addr, heartbeat_ms=0)
        self.addCleanup(c.close)
        self.assertEqual(c.call("echo", b"before"), b"before")
        d.stop()
        restarted = threading.Timer(0.7, d.start)
        restarted.start()
        try:
            t0 = time.monotonic()
            self.assertEqual(c.call("echo", b"during", deadline_ms=8000),
                             b"during")
            self.assertGreater(time.monotonic() - t0, 0.5)
        finally:
            restarted.join()
        self.assertEqual(c.connects, 2)

    def test_too_big_refused_locally(self):
        d = self.daemon("--max-frame", "1024")
        with ferry.Client(d.addr) as c:
            self.assertEqual(c.server.max_frame, 1024)
            with self.assertRaises(ferry.TooBigError):
                c.call("echo", b"x" * 2000)
            self.assertEqual(c.call("echo", b"small"), b"small")
            fut = c.submit("echo", b"x" * 1100)
            with self.assertRaises(ferry.TooBigError):
                fut.result(1)
            self.assertEqual(c.connects, 1)

    def test_own_max_frame(self):
        """A reply larger than the max_frame the client announced comes
        back as TOO_BIG from ferryd, and the connection stays."""
        d = self.daemon()
        with ferry.Client(d.addr, max_frame=2048) as c:
            self.assertEqual(c.call("echo", b"y" * 2000), b"y" * 2000)
            with self.assertRaises(ferry.TooBigError):
                c.call("echo", b"y" * 3000)
            self.assertEqual(c.call("echo", b"ok"), b"ok")
            self.assertEqual(c.connects, 1)
        with self.assertRaises(ValueError):
            ferry.Client(d.addr, max_frame=1000)

    def test_mixed_threads_futures_and_cancels(self):
        d = self.daemon()
        self.pyproc([TW, d.addr, "64"])
        c = ferry.Client(d.addr)
        self.addCleanup(c.close)
        bad = []

        def sync_caller(t):
            for i in range(200):
                p = b"%d-%d" % (t, i)
                if c.call("echo", p) != p:
                    bad.append(p)

        def future_caller():
            for i in range(20):
                hang = c.submit("hang", b"", deadline_ms=20000)
                futs = [c.submit("echo", b"f%d" % j) for j in range(50)]
                hang.cancel()
                if [f.result(10) for f in futs] != \
                        [b"f%d" % j for j in range(50)]:
                    bad.append(i)
                if c.call_many("aecho", [b"a", b"b"]) != [b"A", b"B"]:
                    bad.append(("many", i))
        ts = [threading.Thread(target=sync_caller, args=(t,))
              for t in range(4)] + [threading.Thread(target=future_caller)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(25)
        self.assertEqual(bad, [])
        self.assertEqual(c.connects, 1)

    def test_dropped_client_is_collected(self):
        """A client dropped without close() is collected: its background
        thread ends and its socket is closed."""
        import gc
        d = self.daemon()
        before = threading.active_count()
        for _ in range(5):
            c = ferry.Client(d.addr)
            c.submit("echo", b"x").result(5)
            del c
        gc.collect()
        deadline = time.monotonic() + 5
        while threading.active_count() > before and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(threading.active_count(), before)

    def test_tokens(self):
        d = self.daemon("--caller-token", "s3cret")
        with self.assertRaises(ferry.UnauthorizedError) as cm:
            ferry.Client(d.addr, token="wrong")
        self.assertEqual(cm.exception.code, 15)
        with ferry.Client(d.addr, token="s3cret") as c:
            self.assertEqual(c.call("echo", b"ok"), b"ok")

    def test_refused_connection(self):
        port = fhelp.ferrytest.free_port()
        t0 = time.monotonic()
        with self.assertRaises(ferry.ConnectionError) as cm:
            ferry.Client(f"127.0.0.1:{port}")
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(cm.exception.code, 16)
        self.assertIn(f"127.0.0.1:{port}", cm.exception.message)
        with self.assertRaises(ValueError):
            ferry.Client("no-port")

    def test_worker_errors_reach_the_caller(self):
        d = self.daemon()
        self.pyproc([TW, d.addr])
        with ferry.Client(d.addr) as c:
            with self.assertRaises(ferry.WorkerError) as cm:
                c.call("boom", b"")
            self.assertIn("boom", cm.exception.message)
            with self.assertRaises(ferry.WorkerError) as cm:
                c.call("boom", b"int")
            self.assertIn("not int", cm.exception.message)
            self.assertEqual(c.call("aecho", b"abc"), b"ABC")
            self.assertEqual(c.call("slow", b"s"), b"done:s")


if __name__ == "__main__":
    import unittest
    unittest.main()
