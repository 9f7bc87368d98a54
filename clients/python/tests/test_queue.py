# SPDX-License-Identifier: MIT
"""client.queue against a real ferryd: the helpers on Client and
AsyncClient, and consume (credit reserves in flight, ack on success,
release on an exception, max_jobs, stop)."""
import asyncio
import threading
import time

import fhelp
import ferry


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


class TestQueue(fhelp.TestCase):
    def test_helpers(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c:
            q = c.queue
            a = q.push("t.jobs", b"a", priority=1, dedup="x")
            self.assertEqual(q.push("t.jobs", b"b", dedup="x"),
                             ferry.PushResult(a.id, True))
            j = q.reserve("t.jobs")
            self.assertEqual((j.id, j.attempts, j.priority, j.payload,
                              j.queue), (a.id, 1, 1, b"a", "t.jobs"))
            self.assertEqual(q.touch("t.jobs", j.id, j.token,
                                     visibility_ms=9000),
                             ferry.JobOutcome("OK", 9000))
            self.assertEqual(q.ack("t.jobs", j.id, j.token + 1).status,
                             "STALE")
            self.assertTrue(q.ack("t.jobs", j.id, j.token))
            self.assertEqual(q.ack("t.jobs", j.id, j.token).status,
                             "NOT_FOUND")
            t0 = time.monotonic()
            self.assertIsNone(q.reserve("t.jobs", wait_ms=200))
            self.assertGreaterEqual(time.monotonic() - t0, 0.15)
            b = q.push("t.jobs", "c").id
            j = q.reserve("t.jobs")
            self.assertTrue(q.bury("t.jobs", b, j.token, "because"))
            dead = q.peek("t.jobs", "dead")
            self.assertEqual([(e.id, e.reason, e.state) for e in dead],
                             [(b, b"because", "ready")])
            self.assertEqual(q.stats("t.jobs")["dead"], 1)
            self.assertEqual(q.redrive("t.jobs"), 1)
            self.assertEqual(q.purge("t.jobs"), 1)
            self.assertIsNone(q.peek("t.none"))
            self.assertIsNone(q.stats("t.none"))
            self.assertIn("t.jobs", [x["name"] for x in
                                     q.stats()["queues"]])
            self.assertEqual(q.configure("t.jobs", max_deliveries=3,
                                         backoff_ms=[10])["max_deliveries"],
                             3)
            self.assertTrue(q.pause("t.jobs"))
            self.assertTrue(q.resume("t.jobs"))
            with self.assertRaises(ferry.InvalidArgumentError):
                q.configure("t.jobs", nonsense=1)
            self.assertTrue(q.delete("t.jobs"))
            self.assertFalse(q.delete("t.jobs"))

    def test_consume(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c:
            for i in range(6):
                c.queue.push("t.work", b"%d" % i)
            c.queue.push("t.work", b"fail")
            seen = []

            def handler(job):
                seen.append((job.payload, job.attempts))
                if job.payload == b"fail" and job.attempts == 1:
                    raise RuntimeError("try again")

            errors = []
            n = c.queue.consume("t.work", handler, credit=3, wait_ms=1000,
                                max_jobs=8,
                                on_error=lambda j, e: errors.append(
                                    (j.payload, str(e))))
            self.assertEqual(n, 8)
            self.assertEqual(sorted(seen), sorted(
                [(b"%d" % i, 1) for i in range(6)]
                + [(b"fail", 1), (b"fail", 2)]))
            self.assertEqual(errors, [(b"fail", "try again")])
            st = c.queue.stats("t.work")
            self.assertEqual((st["ready"], st["reserved"], st["acks"],
                              st["releases"]), (0, 0, 7, 1))

            # stop: the reserves still waiting are withdrawn.
            stop = threading.Event()
            t = threading.Thread(target=c.queue.consume,
                                 args=("t.idle", lambda j: None),
                                 kwargs={"credit": 2, "wait_ms": 5000,
                                         "stop": stop})
            t.start()
            for _ in range(100):
                s = c.queue.stats("t.idle")
                if s and s["waiters"] == 2:
                    break
                time.sleep(0.02)
            self.assertEqual(c.queue.stats("t.idle")["waiters"], 2)
            stop.set()
            t.join(5)
            self.assertFalse(t.is_alive())
            for _ in range(100):
                if c.queue.stats("t.idle")["waiters"] == 0:
                    break
                time.sleep(0.02)
            self.assertEqual(c.queue.stats("t.idle")["waiters"], 0)

    def test_async(self):
        d = self.daemon()

        async def main():
            async with ferry.AsyncClient(d.addr) as c:
                q = c.queue
                for i in range(8):
                    await q.push("t.async", b"%d" % i)
                self.assertEqual((await q.stats("t.async"))["ready"], 8)
                busy, top = [0], [0]

                async def handler(job):
                    busy[0] += 1
                    top[0] = max(top[0], busy[0])
                    await asyncio.sleep(0.05)
                    busy[0] -= 1
                    if job.payload == b"3" and job.attempts == 1:
                        raise ValueError("once")

                with self.assertLogs("ferry.queue", "WARNING") as logs:
                    n = await q.consume("t.async", handler, credit=4,
                                        wait_ms=1000, max_jobs=9)
                self.assertIn("ValueError('once'); released",
                              "".join(logs.output))
                self.assertEqual(n, 9)
                self.assertEqual(top[0], 4)
                st = await q.stats("t.async")
                self.assertEqual((st["ready"], st["reserved"], st["acks"],
                                  st["releases"]), (0, 0, 8, 1))
                j = await q.reserve("t.async", wait_ms=100)
                self.assertIsNone(j)

                stop = asyncio.Event()
                task = asyncio.ensure_future(q.consume(
                    "t.idle", handler, credit=3, wait_ms=5000, stop=stop))
                for _ in range(100):
                    s = await q.stats("t.idle")
                    if s and s["waiters"] == 3:
                        break
                    await asyncio.sleep(0.02)
                self.assertEqual((await q.stats("t.idle"))["waiters"], 3)
                stop.set()
                self.assertEqual(await asyncio.wait_for(task, 5), 0)
                for _ in range(100):
                    if (await q.stats("t.idle"))["waiters"] == 0:
                        break
                    await asyncio.sleep(0.02)
                self.assertEqual((await q.stats("t.idle"))["waiters"], 0)
        run(main())


if __name__ == "__main__":
    import unittest
    unittest.main()
