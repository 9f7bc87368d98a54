# SPDX-License-Identifier: MIT
"""ferry.Worker in real processes against a real ferryd: credit, replies
after the handler returns, async handlers, SIGTERM (DRAIN, finish, exit),
reconnection and registering again, refused tokens."""
import os
import signal
import time

import fhelp
import ferry

TW = os.path.join(fhelp.HERE, "tworker.py")


class TestWorker(fhelp.TestCase):
    def test_credit_is_never_passed(self):
        d = self.daemon()
        w = self.pyproc([TW, d.addr, "2"])
        with ferry.Client(d.addr) as c:
            futs = [c.submit("held", b"%d" % i, deadline_ms=15000)
                    for i in range(8)]
            self.assertEqual([f.result(15) for f in futs],
                             [b"done:%d" % i for i in range(8)])
        held = [int(l.split()[1]) for l in w.lines if l.startswith("HELD")]
        self.assertEqual(len(held), 8)
        self.assertLessEqual(max(held), 2)
        self.assertEqual(max(held), 2)

    def test_sigterm_drains_and_finishes_held_jobs(self):
        d = self.daemon()
        w = self.pyproc([TW, d.addr])
        with ferry.Client(d.addr) as c:
            futs = [c.submit("slow", b"%d" % i, deadline_ms=10000)
                    for i in range(3)]
            for i in range(3):
                w.wait_line(lambda l: l.startswith("START"), 5)
            while sum(l.startswith("START") for l in w.lines) < 3:
                time.sleep(0.01)
            w.signal(signal.SIGTERM)
            self.assertEqual([f.result(10) for f in futs],
                             [b"done:0", b"done:1", b"done:2"])
            self.assertEqual(w.wait(10), 0)
            self.assertIn("EXIT 3", w.lines)

    def test_reconnects_and_registers_again(self):
        d = self.daemon()
        w = self.pyproc([TW, d.addr])
        with ferry.Client(d.addr, heartbeat_ms=0) as c:
            self.assertEqual(c.call("aecho", b"one"), b"ONE")
            d.stop()
            d.start()
            w.wait_line(lambda l: l == "READY",
                        10, start=w.lines.index("READY") + 1)
            self.assertEqual(c.call("aecho", b"two", deadline_ms=5000),
                             b"TWO")

    def test_bad_token_fails_run(self):
        d = self.daemon("--worker-token", "good")
        p = fhelp.PyProc([TW, d.addr, "1", "bad"],
                         ready=lambda l: l.startswith("FAILED"))
        self.addCleanup(p.stop)
        p.start()
        self.assertIn("FAILED UNAUTHORIZED", p.lines)
        self.assertEqual(p.wait(10), 1)

    def test_refused_register_fails_run(self):
        d = self.daemon()
        w = ferry.Worker(d.addr, handle_signals=False)
        w.register("echo", lambda job: b"mine")  # a built-in: refused
        with self.assertRaises(ferry.InvalidArgumentError) as cm:
            w.run()
        self.assertIn("built-in", cm.exception.message)
        with ferry.Client(d.addr) as c:
            self.assertEqual(c.call("echo", b"ferryd's"), b"ferryd's")

    def test_in_process_worker_and_job_api(self):
        d = self.daemon()
        w = ferry.Worker(d.addr, handle_signals=False)
        seen = []

        @w.service("mixed", credit=4)
        def mixed(job):
            seen.append((job.service, job.key, job.idempotent,
                         job.deadline_ms > 0))
            if job.payload == b"inv":
                raise ferry.InvalidArgumentError(message="no")
            if job.payload == b"fail":
                job.fail(ferry.OverloadedError(message="busy"))
                return None
            return "str:" + job.payload.decode()

        import threading
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        with ferry.Client(d.addr) as c:
            deadline = time.monotonic() + 5
            while w.connects == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(c.call("mixed", b"a", key=b"k",
                                    idempotent=True, deadline_ms=3000),
                             b"str:a")
            with self.assertRaises(ferry.InvalidArgumentError) as cm:
                c.call("mixed", b"inv")
            self.assertEqual(cm.exception.message, "no")
            with self.assertRaises(ferry.OverloadedError):
                c.call("mixed", b"fail")
        w.stop()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(seen[0], ("mixed", b"k", True, True))
        self.assertEqual(w.handled, 3)


if __name__ == "__main__":
    import unittest
    unittest.main()
