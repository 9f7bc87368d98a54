# SPDX-License-Identifier: MIT
"""ferry.queue's semantics over the binary protocol (docs/queues.md),
against a real ferryd: priority then FIFO order, delays, visibility
timeouts and re-delivery with stale tokens refused, touch, release with
a backoff list, max deliveries to the dead-letter queue with its reason,
bury, peek, redrive, the dedup window, pause and resume, a long poll
woken by a push, credit (reserves in flight) respected, competing
consumers, a consumer that leaves mid-wait, a restart, and bad input."""
import os
import threading
import time

import queuewire as qw
from ferrytest import ERRORS, FerryTestCase

INVALID_ARGUMENT = ERRORS["INVALID_ARGUMENT"]


class QueueCase(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        self.d = self.daemon()
        self.q = qw.Queues(self.conn(self.d))

    def reserve_ok(self, queue, **kw):
        r = self.q.reserve(queue, **kw)
        self.assertEqual(r.get("status"), qw.OK, r)
        return r


class TestOrder(QueueCase):
    def test_priority_then_push_order(self):
        ids = {}
        for name, prio in [(b"a", 0), (b"b", 5), (b"c", 0), (b"d", -2),
                           (b"e", 5)]:
            r = self.q.push("ord", name, priority=prio)
            self.assertEqual(r["status"], qw.OK, r)
            self.assertFalse(r["dup"])
            ids[name] = r["id"]
        got = [self.reserve_ok("ord")["payload"] for _ in range(5)]
        self.assertEqual(got, [b"b", b"e", b"a", b"c", b"d"])
        self.assertEqual(self.q.reserve("ord")["status"], qw.EMPTY)
        # Ids are unique and increasing in push order.
        self.assertEqual(sorted(ids.values()),
                         [ids[n] for n in (b"a", b"b", b"c", b"d", b"e")])

    def test_delay(self):
        self.q.push("dl", b"later", delay_ms=400)
        self.q.push("dl", b"now")
        self.assertEqual(self.reserve_ok("dl")["payload"], b"now")
        t0 = time.monotonic()
        self.assertEqual(self.q.reserve("dl")["status"], qw.EMPTY)
        peek = self.q.peek("dl", qw.DELAYED)
        self.assertEqual([j["payload"] for j in peek["jobs"]], [b"later"])
        r = self.reserve_ok("dl", wait_ms=3000)
        self.assertEqual(r["payload"], b"later")
        self.assertGreater(time.monotonic() - t0, 0.25)


class TestReservations(QueueCase):
    def test_timeout_redelivers_and_old_token_is_stale(self):
        self.q.push("vis", b"job")
        r1 = self.reserve_ok("vis", visibility_ms=200)
        self.assertEqual(r1["attempts"], 1)
        self.assertEqual(self.q.reserve("vis")["status"], qw.EMPTY)
        r2 = self.reserve_ok("vis", wait_ms=3000)
        self.assertEqual(r2["id"], r1["id"])
        self.assertEqual(r2["attempts"], 2)
        self.assertNotEqual(r2["token"], r1["token"])
        self.assertEqual(self.q.ack("vis", r1["id"], r1["token"])["status"],
                         qw.STALE)
        self.assertEqual(self.q.ack("vis", r2["id"], r2["token"])["status"],
                         qw.OK)
        self.assertEqual(self.q.ack("vis", r2["id"], r2["token"])["status"],
                         qw.NOT_FOUND)
        st = self.q.stats("vis")["json"]
        self.assertEqual((st["ready"], st["reserved"], st["expired"],
                          st["acks"]), (0, 0, 1, 1))

    def test_touch_extends(self):
        self.q.push("tch", b"job")
        r = self.reserve_ok("tch", visibility_ms=300)
        time.sleep(0.15)
        t = self.q.touch("tch", r["id"], r["token"], visibility_ms=2000)
        self.assertEqual(t, {"status": qw.OK, "visibility_ms": 2000})
        time.sleep(0.4)   # past the first 300 ms
        self.assertEqual(self.q.reserve("tch")["status"], qw.EMPTY)
        self.assertEqual(self.q.ack("tch", r["id"], r["token"])["status"],
                         qw.OK)

    def test_release_delay_and_backoff(self):
        self.assertEqual(self.q.configure("rel", backoff_ms=[300])["status"],
                         qw.OK)
        self.q.push("rel", b"job")
        r = self.reserve_ok("rel")
        self.assertEqual(
            self.q.release("rel", r["id"], r["token"], qw.BACKOFF)["status"],
            qw.OK)
        self.assertEqual(self.q.reserve("rel")["status"], qw.EMPTY)
        t0 = time.monotonic()
        r2 = self.reserve_ok("rel", wait_ms=3000)
        self.assertGreater(time.monotonic() - t0, 0.15)
        self.assertEqual((r2["id"], r2["attempts"]), (r["id"], 2))
        # A released job's old token is stale; release at once is ready.
        self.assertEqual(self.q.release("rel", r["id"], r["token"])["status"],
                         qw.STALE)
        self.assertEqual(self.q.release("rel", r2["id"], r2["token"])
                         ["status"], qw.OK)
        self.assertEqual(self.reserve_ok("rel")["attempts"], 3)

    def test_max_deliveries_dead_letter_and_redrive(self):
        self.q.configure("md", max_deliveries=2)
        self.q.push("md", b"poison")
        for n in (1, 2):
            r = self.reserve_ok("md", wait_ms=3000, visibility_ms=150)
            self.assertEqual(r["attempts"], n)
        # The second timeout moves it to md.dead with the reason.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            dead = self.q.peek("md", qw.DEAD)["jobs"]
            if dead:
                break
            time.sleep(0.05)
        self.assertEqual(len(dead), 1, dead)
        self.assertEqual(dead[0]["id"], r["id"])
        self.assertEqual(dead[0]["payload"], b"poison")
        self.assertIn(b"max_deliveries 2", dead[0]["reason"])
        self.assertEqual(self.q.reserve("md")["status"], qw.EMPTY)
        st = self.q.stats("md")["json"]
        self.assertEqual((st["dead"], st["dead_lettered"]), (1, 1))
        # The dead-letter queue is a queue: its job can be peeked there.
        self.assertEqual(len(self.q.peek("md.dead")["jobs"]), 1)
        self.assertEqual(self.q.redrive("md"), {"status": qw.OK, "count": 1})
        r = self.reserve_ok("md")
        self.assertEqual((r["payload"], r["attempts"]), (b"poison", 1))

    def test_bury_with_reason(self):
        self.q.push("bq", b"bad")
        r = self.reserve_ok("bq")
        self.assertEqual(self.q.bury("bq", r["id"], r["token"],
                                     b"cannot parse")["status"], qw.OK)
        dead = self.q.peek("bq", qw.DEAD)["jobs"]
        self.assertEqual([(j["id"], j["reason"]) for j in dead],
                         [(r["id"], b"cannot parse")])
        self.assertEqual(self.q.ack("bq", r["id"], r["token"])["status"],
                         qw.NOT_FOUND)
        # A dead-letter queue has none of its own to bury into.
        rd = self.reserve_ok("bq.dead")
        e = self.q.bury("bq.dead", rd["id"], rd["token"])
        self.assertEqual(e["error"][0], INVALID_ARGUMENT, e)


    def test_redrive_takes_only_its_own_dead_jobs(self):
        for name in ("sa", "sb"):
            self.q.configure(name, dead_letter="shared.dead")
            self.q.push(name, name.encode())
            r = self.reserve_ok(name)
            self.assertEqual(self.q.bury(name, r["id"], r["token"])["status"],
                             qw.OK)
        self.assertEqual(len(self.q.peek("shared.dead")["jobs"]), 2)
        self.assertEqual(self.q.redrive("sa"), {"status": qw.OK, "count": 1})
        self.assertEqual(self.reserve_ok("sa")["payload"], b"sa")
        left = self.q.peek("shared.dead")["jobs"]
        self.assertEqual([j["payload"] for j in left], [b"sb"])


class TestPushOptions(QueueCase):
    def test_dedup_window(self):
        self.q.configure("dd", dedup_window_ms=400)
        a = self.q.push("dd", b"one", dedup=b"order-7")
        b = self.q.push("dd", b"two", dedup=b"order-7")
        self.assertEqual((b["id"], b["dup"]), (a["id"], True))
        other = self.q.push("dd", b"three", dedup=b"order-8")
        self.assertNotEqual(other["id"], a["id"])
        st = self.q.stats("dd")["json"]
        self.assertEqual((st["ready"], st["dedup_hits"]), (2, 1))
        time.sleep(0.6)
        c = self.q.push("dd", b"four", dedup=b"order-7")
        self.assertFalse(c["dup"])
        self.assertNotEqual(c["id"], a["id"])

    def test_dedup_of_pipelined_pushes(self):
        # The second push of one dedup id comes before the first commits.
        c = self.conn(self.d)
        for fid in (1, 2):
            c.send_request(fid, qw.SVC, qw.push(b"x", dedup=b"k"), key=b"pp")
        r1 = qw.reply(qw.PUSH, c.wait_for(1, 10).body)
        r2 = qw.reply(qw.PUSH, c.wait_for(2, 10).body)
        self.assertEqual((r2["id"], r2["dup"], r1["dup"]),
                         (r1["id"], True, False))
        self.assertEqual(self.q.stats("pp")["json"]["ready"], 1)


class TestConsumers(QueueCase):
    def test_pause_and_resume(self):
        self.q.push("pz", b"job")
        self.assertEqual(self.q.op("pz", qw.PAUSE)["status"], qw.OK)
        self.assertEqual(self.q.reserve("pz", wait_ms=200)["status"],
                         qw.EMPTY)
        c = self.conn(self.d)
        c.send_request(1, qw.SVC, qw.reserve(5000), key=b"pz",
                       deadline_ms=15000)
        time.sleep(0.2)
        self.assertTrue(self.q.stats("pz")["json"]["paused"])
        self.assertEqual(self.q.op("pz", qw.RESUME)["status"], qw.OK)
        r = qw.reply(qw.RESERVE, c.wait_for(1, 5).body)
        self.assertEqual(r["payload"], b"job")

    def test_long_poll_woken_by_push(self):
        c = self.conn(self.d)
        c.send_request(1, qw.SVC, qw.reserve(10000), key=b"lp",
                       deadline_ms=20000)
        time.sleep(0.2)
        t0 = time.monotonic()
        self.q.push("lp", b"wake")
        r = qw.reply(qw.RESERVE, c.wait_for(1, 5).body)
        self.assertEqual(r["payload"], b"wake")
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_credit_is_respected(self):
        c = self.conn(self.d)
        for fid in (1, 2, 3):
            c.send_request(fid, qw.SVC, qw.reserve(8000), key=b"cr",
                           deadline_ms=20000)
        time.sleep(0.2)
        for i in range(5):
            self.q.push("cr", b"j%d" % i)
        got = [qw.reply(qw.RESERVE, c.wait_for(fid, 5).body)["payload"]
               for fid in (1, 2, 3)]
        self.assertEqual(got, [b"j0", b"j1", b"j2"])
        st = self.q.stats("cr")["json"]
        self.assertEqual((st["ready"], st["reserved"]), (2, 3))

    def test_competing_consumers_get_each_job_once(self):
        n_jobs, seen, lock = 300, [], threading.Lock()
        for i in range(n_jobs):
            self.q.push("cc", b"%d" % i)

        def consumer():
            q = qw.Queues(self.conn(self.d))
            while True:
                r = q.reserve("cc")
                if r["status"] != qw.OK:
                    return
                self.assertEqual(q.ack("cc", r["id"], r["token"])["status"],
                                 qw.OK)
                with lock:
                    seen.append(r["payload"])

        ts = [threading.Thread(target=consumer) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(seen), sorted(b"%d" % i
                                              for i in range(n_jobs)))

    def test_consumer_leaving_mid_wait_loses_nothing(self):
        c = self.conn(self.d)
        c.send_request(1, qw.SVC, qw.reserve(10000), key=b"gone",
                       deadline_ms=20000)
        time.sleep(0.2)
        c.close()
        time.sleep(0.2)
        self.q.push("gone", b"kept")
        self.assertEqual(self.reserve_ok("gone")["payload"], b"kept")


class TestAdmin(QueueCase):
    def test_purge_delete_and_listing(self):
        for i in range(3):
            self.q.push("pg", b"%d" % i)
        self.q.push("pg", b"d", delay_ms=60000)
        r = self.reserve_ok("pg")
        e = self.q.op("pg", qw.DELETE)
        self.assertEqual(e["error"][0], INVALID_ARGUMENT, e)
        self.assertEqual(self.q.op("pg", qw.PURGE),
                         {"status": qw.OK, "count": 3})
        self.assertEqual(self.q.ack("pg", r["id"], r["token"])["status"],
                         qw.OK)
        names = [q["name"] for q in self.q.stats()["json"]["queues"]]
        self.assertIn("pg", names)
        self.assertEqual(self.q.op("pg", qw.DELETE)["status"], qw.OK)
        names = [q["name"] for q in self.q.stats()["json"]["queues"]]
        self.assertNotIn("pg", names)
        self.assertEqual(self.q.stats("pg")["status"], qw.NOT_FOUND)

    def test_bad_input_gets_invalid_argument(self):
        for key, payload in [(b"bad name!", qw.push(b"x")),
                             (b"", qw.push(b"x")),
                             (b"q", b""),
                             (b"q", bytes([99])),
                             (b"q", qw.push(b"")[:5]),
                             (b"q", qw.ack(1, 2)[:9]),
                             (b"q", qw.peek(limit=5000)),
                             (b"q", qw.configure(visibility_ms=0)),
                             (b"q", qw.configure(nope=1)),
                             (b"q", bytes([qw.CONFIGURE]) + b"{bad")]:
            r = self.q.call(key, payload)
            self.assertIn("error", r, (key, payload))
            self.assertEqual(r["error"][0], INVALID_ARGUMENT, (key, r))
            self.assertTrue(r["error"][1], "an error says why")
        # ferryd still serves.
        self.assertEqual(self.q.push("q", b"fine")["status"], qw.OK)

    def test_metrics_and_stats(self):
        self.q.push("mt", b"x")
        text = self.d.http("GET", "/metrics").body.decode()
        self.assertIn('ferry_queue_jobs{queue="mt",state="ready"} 1', text)
        st = self.d.http("GET", "/v1/stats").json()
        qs = st["servants"]["queue"]
        self.assertEqual(qs["pushes"], 1)
        self.assertEqual([q["name"] for q in qs["queues"]], ["mt"])


class TestRestart(FerryTestCase):
    TIME_LIMIT = 60

    def test_reserved_jobs_are_ready_again_after_a_restart(self):
        d = self.daemon()
        q = qw.Queues(self.conn(d))
        ids = [q.push("rs", b"%d" % i)["id"] for i in range(3)]
        q.push("rs", b"later", delay_ms=60000)
        r = q.reserve("rs")
        self.assertEqual(r["id"], ids[0])
        r2 = q.reserve("rs")
        self.assertEqual(q.ack("rs", r2["id"], r2["token"])["status"], qw.OK)
        d.stop()
        d.start()
        q = qw.Queues(self.conn(d))
        st = q.stats("rs")["json"]
        self.assertEqual((st["ready"], st["delayed"], st["reserved"]),
                         (2, 1, 0))
        again = q.reserve("rs")
        self.assertEqual((again["id"], again["attempts"]), (ids[0], 2))
        self.assertEqual(q.ack("rs", r["id"], r["token"])["status"],
                         qw.STALE)
        # New ids never reuse old ones, acked ones included.
        self.assertGreater(q.push("rs", b"new")["id"], max(ids) + 1)
        self.assertTrue(os.path.isdir(os.path.join(d.tmp, "store")))
