# SPDX-License-Identifier: MIT
"""ferry.AsyncClient against a real ferryd: calls, pipelining, CANCEL on
task cancellation, local TOO_BIG, reconnection, heartbeats."""
import asyncio
import os
import signal
import time

import fhelp
import ferry

TW = os.path.join(fhelp.HERE, "tworker.py")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


class TestAsyncClient(fhelp.TestCase):
    def test_calls_and_pipelining(self):
        d = self.daemon("--worker-wait-ms", "100")

        async def main():
            async with ferry.AsyncClient(d.addr) as c:
                self.assertEqual(await c.call("echo", b"hi"), b"hi")
                ps = [b"%d" % i * (1 + i % 9) for i in range(3000)]
                rs = await asyncio.gather(*(c.call("echo", p) for p in ps))
                self.assertEqual(rs, ps)
                with self.assertRaises(ferry.UnknownServiceError):
                    await c.call("nope", deadline_ms=1000)
                self.assertEqual(c.connects, 1)
            async with ferry.AsyncClient(d.unix_addr) as c:
                self.assertEqual(await c.call("echo", b"u"), b"u")
        run(main())

    def test_call_many(self):
        d = self.daemon("--max-frame", "1024")
        self.pyproc([TW, d.addr])

        async def main():
            async with ferry.AsyncClient(d.addr) as c:
                ps = [b"%d" % i for i in range(3000)]
                self.assertEqual(await c.call_many("echo", ps), ps)
                got = await c.call_many("aecho", [b"a", "b"])
                self.assertEqual(got, [b"A", b"B"])
                errs = await c.call_many("boom", [b"1", b"2"],
                                         return_exceptions=True)
                self.assertTrue(all(isinstance(e, ferry.WorkerError)
                                    for e in errs))
                with self.assertRaises(ferry.TooBigError):
                    await c.call_many("echo", [b"a", b"x" * 2000])
                self.assertEqual(await c.call("echo", b"ok"), b"ok")
                with self.assertRaises(ferry.DeadlineError):
                    await c.call_many("hang", [b"", b""], deadline_ms=200)
        run(main())

    def test_task_cancel_sends_cancel(self):
        d = self.daemon()
        w = self.pyproc([TW, d.addr])

        async def main():
            async with ferry.AsyncClient(d.addr) as c:
                task = asyncio.ensure_future(
                    c.call("hang", b"", deadline_ms=20000))
                loop = asyncio.get_running_loop()
                start = await loop.run_in_executor(
                    None, w.wait_line, lambda l: l.startswith("START "))
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                await loop.run_in_executor(
                    None, w.wait_line,
                    lambda l: l == "CANCEL " + start.split()[1], 5)
                self.assertEqual(await c.call("aecho", b"x"), b"X")
        run(main())

    def test_too_big_local_and_deadline(self):
        d = self.daemon("--max-frame", "1024")
        self.pyproc([TW, d.addr])

        async def main():
            async with ferry.AsyncClient(d.addr) as c:
                with self.assertRaises(ferry.TooBigError):
                    await c.call("echo", b"x" * 1500)
                with self.assertRaises(ferry.DeadlineError):
                    await c.call("hang", b"", deadline_ms=200)
                self.assertEqual(await c.call("echo", b"ok"), b"ok")
                self.assertEqual(c.connects, 1)
        run(main())

    def test_reconnect_after_restart(self):
        d = self.daemon()

        async def main():
            loop = asyncio.get_running_loop()
            async with ferry.AsyncClient(d.addr) as c:
                self.assertEqual(await c.call("echo", b"a"), b"a")
                await loop.run_in_executor(None, d.stop)
                loop.call_later(0.5, lambda: loop.run_in_executor(
                    None, d.start))
                t0 = time.monotonic()
                self.assertEqual(await c.call("echo", b"b",
                                              deadline_ms=8000), b"b")
                self.assertGreater(time.monotonic() - t0, 0.3)
                self.assertEqual(c.connects, 2)
        run(main())

    def test_heartbeat_death(self):
        d = self.daemon("--heartbeat-ms", "200")

        async def main():
            async with ferry.AsyncClient(d.addr, heartbeat_ms=200) as c:
                await c.call("echo", b"x")
                d.signal(signal.SIGSTOP)
                try:
                    t0 = time.monotonic()
                    with self.assertRaises(ferry.ConnectionError):
                        await c.call("echo", b"y", deadline_ms=20000)
                    self.assertLess(time.monotonic() - t0, 5)
                finally:
                    d.signal(signal.SIGCONT)
                self.assertEqual(await c.call("echo", b"z",
                                              deadline_ms=5000), b"z")
        run(main())

    def test_bad_token(self):
        d = self.daemon("--caller-token", "t")

        async def main():
            with self.assertRaises(ferry.UnauthorizedError):
                await ferry.AsyncClient(d.addr, token="x").connect()
        run(main())


if __name__ == "__main__":
    import unittest
    unittest.main()
