# SPDX-License-Identifier: MIT
"""client.topic against a real ferryd: the helpers on Client and
AsyncClient (publish, subscribe with a wildcard and a group, poll with
its gap notice, policy close, unsubscribe, stats), and messages(): the
messages as they come, a gap notice, a subscription made again after it
expired, stop, and the async iterator."""
import asyncio
import contextlib
import threading
import time

import fhelp
import ferry


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 25))


class TestTopic(fhelp.TestCase):
    def test_helpers(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c, ferry.Client(d.addr) as p:
            t = c.topic
            a = t.subscribe("t.orders.*")
            b = t.subscribe("t.orders.>", max_pending=2)
            self.assertEqual(p.topic.publish("t.orders.eu", b"o1"), 2)
            self.assertEqual(p.topic.publish("t.orders.eu.vip", "o2"), 1)
            self.assertEqual(p.topic.publish("t.none", b"x"), 0)
            got = t.poll(a, wait_ms=1000)
            self.assertEqual(got, ferry.TopicPoll(
                [ferry.TopicMessage(1, "t.orders.eu", b"o1")], 0))
            self.assertEqual(t.poll(a), ([], 0))
            for i in range(3):
                p.topic.publish("t.orders.x.y", b"%d" % i)
            msgs, dropped = t.poll(b, max_msgs=10)
            self.assertEqual(dropped, 3)
            self.assertEqual([(m.seq, m.payload) for m in msgs],
                             [(4, b"1"), (5, b"2")])
            g1 = t.subscribe("t.jobs", group="w")
            g2 = p.topic.subscribe("t.jobs", group="w")
            for i in range(4):
                self.assertEqual(p.topic.publish("t.jobs", b"%d" % i), 1)
            self.assertEqual(
                [m.payload for m in t.poll(g1, max_msgs=10).messages]
                + [m.payload for m in p.topic.poll(g2).messages],
                [b"0", b"2", b"1", b"3"])
            one = t.stats(g1)
            self.assertEqual((one["pattern"], one["group"], one["delivered"]),
                             ("t.jobs", "w", 2))
            self.assertEqual(t.stats()["subscriptions"], 4)
            slow = t.subscribe("t.slow", max_pending=1, policy="close")
            p.topic.publish("t.slow", b"1")
            self.assertEqual(p.topic.publish("t.slow", b"2"), 0)
            with self.assertRaises(ferry.SlowConsumerError) as e:
                t.poll(slow)
            self.assertIn("slow subscriber", e.exception.message)
            self.assertIsNone(t.poll(slow))
            self.assertTrue(t.unsubscribe(a))
            self.assertFalse(t.unsubscribe(a))
            self.assertIsNone(t.poll(a))
            self.assertIsNone(t.stats(a))
            with self.assertRaises(ferry.InvalidArgumentError):
                p.topic.publish("ferry.x", b"no")
            with self.assertRaises(ferry.InvalidArgumentError):
                t.subscribe("t.>.x")
            # A held poll woken by another caller's publish.
            w = t.subscribe("t.wake")
            fut = []
            th = threading.Thread(target=lambda: fut.append(
                t.poll(w, wait_ms=10000)))
            th.start()
            for _ in range(100):
                if t.stats(w)["polling"]:
                    break
                time.sleep(0.02)
            t0 = time.monotonic()
            p.topic.publish("t.wake", b"now")
            th.join(5)
            self.assertLess(time.monotonic() - t0, 4)
            self.assertEqual(fut[0].messages[0].payload, b"now")

    def test_messages(self):
        d = self.daemon("--topic-idle-ms", "500")
        with ferry.Client(d.addr) as c, ferry.Client(d.addr) as p:
            it = c.topic.messages("t.feed.*", max_pending=2, wait_ms=200)
            subs = []
            for _ in range(100):  # the generator subscribes on first next()
                if not subs:
                    th = threading.Thread(target=lambda: subs.append(
                        next(it)))
                    th.start()
                if c.topic.stats()["subscriptions"] == 1:
                    break
                time.sleep(0.02)
            p.topic.publish("t.feed.a", b"first")
            th.join(5)
            self.assertEqual(subs, [ferry.TopicMessage(1, "t.feed.a",
                                                       b"first")])
            # Slow: five while nobody polls (less than topic_idle_ms).
            for i in range(5):
                p.topic.publish("t.feed.b", b"%d" % i)
            self.assertEqual(next(it), ferry.TopicGap(3))
            self.assertEqual([next(it).payload, next(it).payload],
                             [b"3", b"4"])
            # Paused past topic_idle_ms: ferryd forgets it, the loop
            # subscribes again and says so.
            time.sleep(1.2)
            self.assertEqual(c.topic.stats()["expired"], 1)
            self.assertEqual(next(it), ferry.TopicGap(0, resubscribed=True))
            got = []
            th = threading.Thread(target=lambda: got.append(next(it)))
            th.start()
            for _ in range(100):
                if c.topic.stats()["subscriptions"] == 1:
                    break
                time.sleep(0.02)
            p.topic.publish("t.feed.c", b"again")
            th.join(5)
            self.assertEqual(got[0].payload, b"again")
            self.assertEqual(got[0].seq, 1)
            it.close()
            self.assertEqual(c.topic.stats()["subscriptions"], 0)

    def test_messages_stop(self):
        d = self.daemon()
        with ferry.Client(d.addr) as c:
            stop = threading.Event()
            seen = []

            def loop():
                for m in c.topic.messages("t.stop", wait_ms=20000,
                                          stop=stop):
                    seen.append(m)
            th = threading.Thread(target=loop)
            th.start()
            for _ in range(100):
                if c.topic.stats()["polls_waiting"] == 1:
                    break
                time.sleep(0.02)
            self.assertEqual(c.topic.stats()["polls_waiting"], 1)
            c.topic.publish("t.stop", b"x")
            t0 = time.monotonic()
            for _ in range(100):
                if seen and c.topic.stats()["polls_waiting"] == 1:
                    break
                time.sleep(0.02)
            stop.set()
            th.join(5)
            self.assertFalse(th.is_alive())
            self.assertLess(time.monotonic() - t0, 4)
            self.assertEqual([m.payload for m in seen], [b"x"])
            st = c.topic.stats()
            self.assertEqual((st["subscriptions"], st["polls_waiting"]),
                             (0, 0))
            with self.assertRaises(ValueError):
                next(c.topic.messages("t.x", wait_ms=0))

    def test_async(self):
        d = self.daemon("--topic-idle-ms", "500")

        async def main():
            async with ferry.AsyncClient(d.addr) as c, \
                    ferry.AsyncClient(d.addr) as p:
                t = c.topic
                s = await t.subscribe("t.a.>")
                self.assertEqual(await p.topic.publish("t.a.b.c", b"1"), 1)
                got = await t.poll(s, wait_ms=1000)
                self.assertEqual(got.messages[0].subject, "t.a.b.c")
                self.assertTrue(await t.unsubscribe(s))
                self.assertIsNone(await t.poll(s))

                out = []

                async def consume():
                    async with contextlib.aclosing(t.messages(
                            "t.feed", max_pending=1, wait_ms=200)) as it:
                        async for m in it:
                            out.append(m)
                            if len(out) == 1:
                                # Slow past topic_idle_ms: made again.
                                await asyncio.sleep(1.2)
                            if len(out) == 3:
                                break
                task = asyncio.ensure_future(consume())
                for _ in range(100):
                    if (await t.stats())["polls_waiting"] == 1:
                        break
                    await asyncio.sleep(0.02)
                await p.topic.publish("t.feed", b"one")
                for _ in range(100):
                    if len(out) == 1:
                        break
                    await asyncio.sleep(0.01)
                await p.topic.publish("t.feed", b"lost")  # expires with it
                for _ in range(200):
                    if (await t.stats())["polls_waiting"] == 1 and \
                            len(out) == 2:
                        break
                    await asyncio.sleep(0.02)
                await p.topic.publish("t.feed", b"a")
                await asyncio.wait_for(task, 10)
                self.assertEqual(out, [
                    ferry.TopicMessage(1, "t.feed", b"one"),
                    ferry.TopicGap(0, resubscribed=True),
                    ferry.TopicMessage(1, "t.feed", b"a")])
                self.assertEqual((await t.stats())["subscriptions"], 0)

                stop = asyncio.Event()

                async def idle():
                    async for _ in t.messages("t.idle", stop=stop):
                        pass
                task = asyncio.ensure_future(idle())
                for _ in range(100):
                    if (await t.stats())["polls_waiting"] == 1:
                        break
                    await asyncio.sleep(0.02)
                stop.set()
                await asyncio.wait_for(task, 5)
                st = await t.stats()
                self.assertEqual((st["subscriptions"], st["polls_waiting"]),
                                 (0, 0))
        run(main())


if __name__ == "__main__":
    import unittest
    unittest.main()
