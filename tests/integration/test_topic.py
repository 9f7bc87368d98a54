# SPDX-License-Identifier: MIT
"""ferry.topic through a real ferryd: wildcard matching (a table), a
fan-out to 1,000 held POLLs, a subscriber that never polls staying bounded
(max_pending, and topic_max_bytes over all) with its drops counted and
told, policy close answering SLOW_CONSUMER once, a group of 3 sharing 300
messages, expiry of an idle subscription, ferryd's own events (a queue
push, ack and dead job, a kv write, a worker joining and leaving, a
circuit opening) reaching their subscribers, publishing under ferry.
refused, stats, /v1/stats and /metrics, and the CLI's pub and sub.
Payloads are encoded by tests/lib/topicwire.py, apart from the C codec."""
import json
import os
import signal
import struct
import subprocess
import threading
import time

import kvwire as kw
import topicwire as tw
from ferrytest import (ERROR, REQUEST, ROLE_WORKER, Conn, FerryTestCase,
                       _env, binary, encode_error, encode_request)

SVC = tw.SVC


def queue_push(payload=b""):
    """ferry.queue PUSH (docs/queues.md): priority 0, no delay, the
    queue's visibility and deliveries, no dedup id."""
    return struct.pack(">BhIIHB", 1, 0, 0, 0, 0, 0) + payload


def queue_reserve(wait_ms=0):
    return struct.pack(">BII", 2, wait_ms, 0)


def queue_ack(job_id, token):
    return struct.pack(">BQQ", 3, job_id, token)


def queue_bury(job_id, token):
    return struct.pack(">BQQ", 6, job_id, token)


class TopicCase(FerryTestCase):
    TIME_LIMIT = 90

    def setUp(self):
        super().setUp()
        self.fid = 0

    def next_id(self):
        self.fid += 1
        return self.fid

    def call(self, c, op, payload, key=b"", deadline_ms=0, timeout=10.0):
        if isinstance(key, str):
            key = key.encode()
        f = c.call(self.next_id(), SVC, payload, key=key,
                   deadline_ms=deadline_ms, timeout=timeout)
        self.assertReply(f)
        return tw.reply(op, f.body)

    def sub(self, c, pattern, **kw_):
        r = self.call(c, tw.SUBSCRIBE, tw.subscribe(**kw_), key=pattern)
        self.assertEqual(r["status"], tw.OK)
        return r["sub_id"]

    def pub(self, c, subject, message=b""):
        return self.call(c, tw.PUBLISH, tw.publish(message),
                         key=subject)["receivers"]

    def poll(self, c, sub_id, wait_ms=0, max_msgs=0):
        return self.call(c, tw.POLL, tw.poll(sub_id, wait_ms, max_msgs),
                         deadline_ms=wait_ms + 5000,
                         timeout=wait_ms / 1000 + 10)

    def stats(self, c, sub_id=None):
        r = self.call(c, tw.STATS, tw.stats(sub_id))
        return r.get("json")

    def assertError(self, frame, name, msg=None):
        m = super().assertError(frame, name, msg)
        return m.decode() if isinstance(m, bytes) else m


class TestTopic(TopicCase):

    def test_wildcard_table(self):
        """Each pattern gets exactly the subjects it matches: "*" one
        token, a last ">" one or more, literals exactly."""
        d = self.daemon()
        c = self.conn(d)
        subjects = ["a", "a.b", "a.c", "a.b.c", "a.b.c.d", "b.b", "x.b.c",
                    "ab", "a.bc"]
        table = {
            "a": {"a"},
            "a.b": {"a.b"},
            "a.*": {"a.b", "a.c", "a.bc"},
            "*.b": {"a.b", "b.b"},
            "a.>": {"a.b", "a.c", "a.b.c", "a.b.c.d", "a.bc"},
            "a.*.c": {"a.b.c"},
            "*.*.c": {"a.b.c", "x.b.c"},
            "a.b.>": {"a.b.c", "a.b.c.d"},
            ">": set(subjects),
            "*": {"a", "ab"},
            "*.>": set(subjects) - {"a", "ab"},
            "a.*.>": {"a.b.c", "a.b.c.d"},
            "nomatch.>": set(),
        }
        ids = {p: self.sub(c, p) for p in table}
        for s in subjects:
            want = sum(1 for p in table if s in table[p])
            self.assertEqual(self.pub(c, s, s.encode()), want, s)
        for p, want in table.items():
            r = self.poll(c, ids[p])
            got = {m[1].decode() for m in r["messages"]}
            self.assertEqual(got, want, p)
            # The subject is the payload here; seq counts from 1.
            for i, (seq, subj, payload) in enumerate(r["messages"]):
                self.assertEqual(seq, i + 1)
                self.assertEqual(subj, payload)
        st = self.stats(c)
        self.assertEqual(st["subscriptions"], len(table))
        self.assertEqual(st["patterns"], len(table))

    def test_fanout_to_1000_held_polls(self):
        """1,000 subscriptions, each with a POLL held, all get the one
        message published on a matching subject, once."""
        d = self.daemon()
        c = self.conn(d)
        pats = ["fan.out", "fan.*", "*.out", "fan.>", "*.*"]
        ids = []
        first = self.fid + 1
        for i in range(1000):
            c.send_request(first + i, SVC, tw.subscribe(),
                           key=pats[i % len(pats)].encode())
        got = c.collect(range(first, first + 1000), timeout=30)
        self.fid += 1000
        for fid in range(first, first + 1000):
            ids.append(tw.reply(tw.SUBSCRIBE, got[fid][0].body)["sub_id"])
        self.assertEqual(len(set(ids)), 1000)
        # An unmatched publish reaches none.
        p = self.conn(d)
        self.assertEqual(self.pub(p, "fan", b"no"), 0)
        first = self.fid + 1
        for i, sid in enumerate(ids):
            c.send_request(first + i, SVC, tw.poll(sid, 20000),
                           deadline_ms=25000)
        self.fid += 1000
        deadline = time.monotonic() + 20
        while self.stats(p)["polls_waiting"] < 1000:
            self.assertLess(time.monotonic(), deadline, "polls not held")
            time.sleep(0.05)
        self.assertEqual(self.pub(p, "fan.out", b"hello"), 1000)
        got = c.collect(range(first, first + 1000), timeout=30)
        for fid, (f, _) in got.items():
            self.assertReply(f)
            r = tw.reply(tw.POLL, f.body)
            self.assertEqual(r["status"], tw.OK)
            self.assertEqual(r["messages"], [(1, b"fan.out", b"hello")])
        st = self.stats(p)
        self.assertEqual(st["routed"], 1000)
        self.assertEqual(st["delivered"], 1000)
        self.assertEqual(st["polls_waiting"], 0)
        # Stored once, and gone once every subscriber took it.
        self.assertEqual(st["messages"], 0)
        self.assertEqual(st["pending"], 0)

    def test_never_polls_stays_bounded(self):
        """max_pending bounds what one subscriber holds: the oldest go,
        each drop counted, and the next POLL tells the gap."""
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "tick", max_pending=10)
        for i in range(100):
            self.assertEqual(self.pub(c, "tick", b"%d" % i), 1)
            if i % 10 == 9:
                s = self.stats(c, sid)
                self.assertLessEqual(s["pending"], 10)
        s = self.stats(c, sid)
        self.assertEqual((s["pending"], s["dropped"], s["queued"]),
                         (10, 90, 100))
        r = self.poll(c, sid)
        self.assertEqual(r["dropped"], 90)
        self.assertEqual([m[0] for m in r["messages"]], list(range(91, 101)))
        self.assertEqual([m[2] for m in r["messages"]],
                         [b"%d" % i for i in range(90, 100)])
        # Told once.
        self.pub(c, "tick", b"next")
        r = self.poll(c, sid)
        self.assertEqual(r["dropped"], 0)
        self.assertEqual(r["messages"], [(101, b"tick", b"next")])
        st = self.stats(c)
        self.assertEqual(st["dropped"], 90)
        self.assertEqual(st["dropped_full"], 90)
        # A buffer of one keeps the newest.
        sid2 = self.sub(c, "tock", max_pending=1)
        for i in range(3):
            self.pub(c, "tock", b"%d" % i)
        r = self.poll(c, sid2, max_msgs=1)
        self.assertEqual((r["dropped"], r["messages"]),
                         (2, [(3, b"tock", b"2")]))

    def test_byte_cap_drops_oldest_everywhere(self):
        """topic_max_bytes bounds every message stored together: the
        oldest is dropped from every buffer holding it, counted per
        subscriber and in total."""
        d = self.daemon("--topic-max-bytes", "65536")
        c = self.conn(d)
        a = self.sub(c, "big.>", max_pending=10000)
        b = self.sub(c, "big.*", max_pending=10000)
        early = self.sub(c, "early")
        self.assertEqual(self.pub(c, "early", b"e" * 1000), 1)
        for i in range(200):
            self.assertEqual(self.pub(c, "big.x", bytes([i % 256]) * 1000),
                             2)
            if i % 20 == 19:
                self.assertLessEqual(self.stats(c)["bytes"], 65536)
        st = self.stats(c)
        kept = st["messages"]
        self.assertLess(kept, 66)
        self.assertGreater(kept, 50)
        self.assertEqual(st["dropped_bytes"], 2 * (200 - kept) + 1)
        # A gap alone is told at once, as EMPTY with the count.
        t0 = time.monotonic()
        r = self.poll(c, early, wait_ms=5000)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(r, {"status": tw.EMPTY, "dropped": 1,
                             "messages": []})
        for sid in (a, b):
            r = self.poll(c, sid)
            self.assertEqual(r["dropped"], 200 - kept)
            self.assertEqual(len(r["messages"]), kept)
            self.assertEqual(r["messages"][0][0], 200 - kept + 1)
            self.assertEqual(r["messages"][-1][0], 200)
        self.assertEqual(self.stats(c)["messages"], 0)
        # One message above the cap alone is refused.
        f = c.call(self.next_id(), SVC, tw.publish(b"x" * 70000),
                   key=b"big.x")
        self.assertIn("topic_max_bytes", self.assertError(f, "TOO_BIG"))
        # Whether or not anyone listens on the subject.
        f = c.call(self.next_id(), SVC, tw.publish(b"x" * 70000),
                   key=b"nobody.listens.here")
        self.assertIn("topic_max_bytes", self.assertError(f, "TOO_BIG"))

    def test_policy_close_overloaded_once(self):
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "slow", max_pending=5, policy=tw.CLOSE)
        other = self.sub(c, "slow")
        for i in range(5):
            self.assertEqual(self.pub(c, "slow", b"%d" % i), 2)
        # The sixth finds it full: it is closed, the other still gets it.
        self.assertEqual(self.pub(c, "slow", b"5"), 1)
        self.assertEqual(self.pub(c, "slow", b"6"), 1)
        s = self.stats(c, sid)
        self.assertTrue(s["closed"])
        self.assertEqual(s["pending"], 0)
        f = c.call(self.next_id(), SVC, tw.poll(sid))
        msg = self.assertError(f, "SLOW_CONSUMER")
        self.assertIn("slow subscriber: 5 messages pending, the limit", msg)
        r = self.poll(c, sid)
        self.assertEqual(r["status"], tw.NOT_FOUND)
        self.assertEqual(len(self.poll(c, other)["messages"]), 7)
        st = self.stats(c)
        self.assertEqual(st["slow_closed"], 1)
        self.assertEqual(st["dropped_closed"], 6)
        self.assertEqual(st["subscriptions"], 1)

    def test_policy_close_wakes_a_held_poll(self):
        """A burst that overflows a subscriber within one loop turn, while
        its POLL is held, ends that POLL with SLOW_CONSUMER."""
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "burst", max_pending=3, policy=tw.CLOSE)
        c.send_request(100, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        p = self.conn(d)
        deadline = time.monotonic() + 10
        while self.stats(p)["polls_waiting"] < 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        # Five publishes in one write: one read, one turn.
        p.send(b"".join(encode_request(200 + i, SVC, tw.publish(b"%d" % i),
                                       key=b"burst") for i in range(5)))
        p.collect(range(200, 205), timeout=10)
        f = c.wait_for(100, timeout=10)
        if f.type == ERROR:
            self.assertIn("slow subscriber", self.assertError(f, "SLOW_CONSUMER"))
        else:
            # The POLL was answered before the burst filled it: the rest
            # closed it then.
            r = tw.reply(tw.POLL, f.body)
            self.assertEqual(r["status"], tw.OK)
            f = c.call(101, SVC, tw.poll(sid))
            self.assertError(f, "SLOW_CONSUMER")

    def test_group_of_3_spreads_300(self):
        """Three members of one (pattern, group) share 300 messages: each
        gets some, none twice, 300 in all; a subscriber outside the group
        gets all 300."""
        d = self.daemon()
        setup = self.conn(d)
        members = [self.sub(setup, "jobs.>", group="workers")
                   for _ in range(3)]
        # Another group of the same pattern and one of another pattern
        # are separate.
        alone = self.sub(setup, "jobs.>")
        self.sub(setup, "jobs.*", group="workers")
        st = self.stats(setup)
        self.assertEqual(st["groups"], 2)
        self.assertEqual(st["patterns"], 2)
        got = [[] for _ in members]
        stop = threading.Event()
        errors = []

        def consume(k):
            try:
                cc = Conn(d.addr)
                cc.hello()
                fid = 0
                while not stop.is_set():
                    fid += 1
                    f = cc.call(fid, SVC, tw.poll(members[k], 300, 7),
                                deadline_ms=5000, timeout=10)
                    r = tw.reply(tw.POLL, f.body)
                    got[k].extend(m[2] for m in r["messages"])
                cc.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=consume, args=(k,))
                   for k in range(3)]
        for t in threads:
            t.start()
        pubc = self.conn(d)
        for i in range(300):
            # One of the group, and the one alone.
            self.assertEqual(self.pub(pubc, "jobs.a.b", b"%d" % i), 2)
            if i % 50 == 0:
                time.sleep(0.01)
        deadline = time.monotonic() + 20
        while sum(len(g) for g in got) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(10)
        self.assertEqual(errors, [])
        every = [m for g in got for m in g]
        self.assertEqual(len(every), 300)
        self.assertEqual(sorted(every), sorted(b"%d" % i for i in range(300)))
        for k, g in enumerate(got):
            self.assertGreater(len(g), 0, f"member {k} got nothing")
        r = self.poll(setup, alone)
        self.assertEqual(len(r["messages"]), 300)

    def test_group_round_robin_without_polls(self):
        """With no POLL waiting, members take turns exactly."""
        d = self.daemon()
        c = self.conn(d)
        members = [self.sub(c, "rr", group="g") for _ in range(3)]
        for i in range(30):
            self.pub(c, "rr", b"%d" % i)
        counts = [len(self.poll(c, m)["messages"]) for m in members]
        self.assertEqual(counts, [10, 10, 10])

    def test_idle_subscription_expires(self):
        d = self.daemon("--topic-idle-ms", "300")
        c = self.conn(d)
        gone = self.sub(c, "idle")
        kept = self.sub(c, "idle")
        # kept always has a POLL outstanding: it lives on.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            self.poll(c, kept, wait_ms=250)
        r = self.poll(c, gone)
        self.assertEqual(r["status"], tw.NOT_FOUND)
        self.assertEqual(self.stats(c, gone), None)
        self.assertEqual(self.pub(c, "idle", b"x"), 1)
        self.assertEqual(self.poll(c, kept)["messages"][0][2], b"x")
        st = self.stats(c)
        self.assertEqual(st["expired"], 1)
        self.assertEqual(st["idle_ms"], 300)
        # Its expiry clock starts again after each POLL.
        time.sleep(0.1)
        self.assertEqual(self.poll(c, kept)["status"], tw.EMPTY)
        time.sleep(0.5)
        self.assertEqual(self.poll(c, kept)["status"], tw.NOT_FOUND)

    def test_poll_waits_and_cancel(self):
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "w")
        t0 = time.monotonic()
        r = self.poll(c, sid, wait_ms=300)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(r, {"status": tw.EMPTY, "dropped": 0,
                             "messages": []})
        # A held POLL cancelled: the message waits for the next one.
        c.send_request(50, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        time.sleep(0.1)
        c.send_cancel(50)
        f = c.wait_for(50)
        self.assertError(f, "CANCELLED")
        self.assertEqual(self.stats(c)["polls_waiting"], 0)
        self.pub(c, "w", b"kept")
        self.assertEqual(self.poll(c, sid)["messages"], [(1, b"w", b"kept")])
        # A second POLL takes the place of one held: that one ends EMPTY.
        c.send_request(60, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        time.sleep(0.1)
        c.send_request(61, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        self.assertEqual(tw.reply(tw.POLL, c.wait_for(60).body)["status"],
                         tw.EMPTY)
        self.pub(c, "w", b"two")
        self.assertEqual(tw.reply(tw.POLL, c.wait_for(61).body)["messages"],
                         [(2, b"w", b"two")])
        # UNSUBSCRIBE ends a held POLL with NOT_FOUND.
        c.send_request(70, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        time.sleep(0.1)
        self.assertEqual(self.call(c, tw.UNSUBSCRIBE,
                                   tw.unsubscribe(sid))["status"], tw.OK)
        self.assertEqual(tw.reply(tw.POLL, c.wait_for(70).body)["status"],
                         tw.NOT_FOUND)
        self.assertEqual(self.call(c, tw.UNSUBSCRIBE,
                                   tw.unsubscribe(sid))["status"],
                         tw.NOT_FOUND)
        # A caller that leaves with a POLL held leaves nothing held.
        sid = self.sub(c, "w")
        c2 = self.conn(d)
        c2.send_request(1, SVC, tw.poll(sid, 10000), deadline_ms=15000)
        time.sleep(0.1)
        c2.close()
        deadline = time.monotonic() + 5
        while self.stats(c)["polls_waiting"] != 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)

    def test_publish_under_ferry_refused(self):
        d = self.daemon()
        c = self.conn(d)
        for subject in (b"ferry.x", b"ferry", b"ferry.queue.q.pushed"):
            f = c.call(self.next_id(), SVC, tw.publish(b"x"), key=subject)
            self.assertIn("only ferryd publishes",
                          self.assertError(f, "INVALID_ARGUMENT"))
        for subject in (b"a.*", b"a.>", b"a..b", b"", b"a b"):
            f = c.call(self.next_id(), SVC, tw.publish(b"x"), key=subject)
            self.assertError(f, "INVALID_ARGUMENT")
        f = c.call(self.next_id(), SVC, tw.subscribe(), key=b"a.>.b")
        self.assertError(f, "INVALID_ARGUMENT")
        f = c.call(self.next_id(), SVC, b"\x09")
        self.assertIn("unknown op 9", self.assertError(f, "INVALID_ARGUMENT"))
        # Names like "ferryx" are anyone's.
        self.assertEqual(self.pub(c, "ferryx.a", b"x"), 0)
        self.assertEqual(self.stats(c)["bad"], 10)


class TestTopicEvents(TopicCase):

    def test_queue_events(self):
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "ferry.queue.>")
        f = c.call(self.next_id(), "ferry.queue", queue_push(b"job"),
                   key=b"work")
        self.assertReply(f)
        self.assertEqual(f.body[0], 0)
        (job,) = struct.unpack_from(">Q", f.body, 1)
        r = self.poll(c, sid, wait_ms=5000)
        self.assertEqual(r["messages"],
                         [(1, b"ferry.queue.work.pushed", str(job).encode())])
        f = c.call(self.next_id(), "ferry.queue", queue_reserve(), key=b"work")
        self.assertReply(f)
        got, token = struct.unpack_from(">QQ", f.body, 1)
        self.assertEqual(got, job)
        f = c.call(self.next_id(), "ferry.queue", queue_ack(job, token),
                   key=b"work")
        self.assertReply(f, b"\x00")
        r = self.poll(c, sid, wait_ms=5000)
        self.assertEqual(r["messages"],
                         [(2, b"ferry.queue.work.acked", str(job).encode())])
        # A buried job goes to the dead-letter queue: "dead".
        f = c.call(self.next_id(), "ferry.queue", queue_push(b"bad"),
                   key=b"work")
        (job2,) = struct.unpack_from(">Q", f.body, 1)
        f = c.call(self.next_id(), "ferry.queue", queue_reserve(), key=b"work")
        _, token = struct.unpack_from(">QQ", f.body, 1)
        f = c.call(self.next_id(), "ferry.queue", queue_bury(job2, token),
                   key=b"work")
        self.assertReply(f, b"\x00")
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            seen += self.poll(c, sid, wait_ms=1000)["messages"]
        self.assertEqual([m[1:] for m in seen],
                         [(b"ferry.queue.work.pushed", str(job2).encode()),
                          (b"ferry.queue.work.dead", str(job2).encode())])
        # A narrower pattern sees only its own.
        only = self.sub(c, "ferry.queue.*.acked")
        f = c.call(self.next_id(), "ferry.queue", queue_push(b"x"),
                   key=b"other")
        self.assertEqual(self.poll(c, only)["status"], tw.EMPTY)
        self.assertGreater(self.stats(c)["events"], 3)

    def test_kv_events(self):
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "ferry.kv.>")
        f = c.call(self.next_id(), "ferry.kv", kw.put(b"v"), key=b"app.color")
        self.assertReply(f)
        rev = kw.reply(kw.PUT, f.body)["rev"]
        f = c.call(self.next_id(), "ferry.kv", kw.delete(), key=b"app.color")
        self.assertReply(f)
        # A key that is no subject ("a b", "x..y") makes no event.
        c.call(self.next_id(), "ferry.kv", kw.put(b"v"), key=b"a b")
        f = c.call(self.next_id(), "ferry.kv", kw.put(b"v"), key=b"last")
        rev3 = kw.reply(kw.PUT, f.body)["rev"]
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            seen += self.poll(c, sid, wait_ms=1000)["messages"]
        self.assertEqual([m[1:] for m in seen], [
            (b"ferry.kv.app.color", b"put %d" % rev),
            (b"ferry.kv.app.color", b"delete %d" % (rev + 1)),
            (b"ferry.kv.last", b"put %d" % rev3),
        ])

    def test_worker_and_circuit_events(self):
        d = self.daemon("--breaker-min-requests", "2",
                        "--breaker-error-percent", "50",
                        "--breaker-open-ms", "60000")
        c = self.conn(d)
        workers = self.sub(c, "ferry.worker.>")
        circuits = self.sub(c, "ferry.circuit.flaky.*")
        w = self.conn(d, ROLE_WORKER, name="w1")
        w.register("flaky", credit=4)
        r = self.poll(c, workers, wait_ms=5000)
        self.assertEqual(len(r["messages"]), 1)
        _, subject, payload = r["messages"][0]
        self.assertEqual(subject, b"ferry.worker.flaky.joined")
        self.assertTrue(payload.startswith(b"workers=1 peer="), payload)
        self.assertTrue(payload.endswith(b" name=w1"), payload)
        # Its requests fail: the circuit opens.
        for i in range(2):
            c.send_request(500 + i, "flaky", b"x", deadline_ms=5000)
            f = w.recv_frame()
            self.assertEqual(f.type, REQUEST)
            w.send(encode_error(f.id, "WORKER_ERROR", b"boom"))
            self.assertError(c.wait_for(500 + i), "WORKER_ERROR")
        r = self.poll(c, circuits, wait_ms=5000)
        self.assertEqual(len(r["messages"]), 1)
        self.assertEqual(r["messages"][0][1], b"ferry.circuit.flaky.open")
        self.assertIn(b"error rate", r["messages"][0][2])
        w.close()
        r = self.poll(c, workers, wait_ms=5000)
        self.assertEqual([m[1] for m in r["messages"]],
                         [b"ferry.worker.flaky.left"])
        self.assertTrue(r["messages"][0][2].startswith(b"workers=0 "))


class TestTopicStats(TopicCase):

    def test_stats_and_metrics(self):
        d = self.daemon()
        c = self.conn(d)
        sid = self.sub(c, "m.*", group="g", max_pending=7, policy=tw.CLOSE)
        self.pub(c, "m.a", b"1")
        s = self.stats(c, sid)
        self.assertEqual(s, {"id": sid, "pattern": "m.*", "group": "g",
                             "max_pending": 7, "policy": "close",
                             "pending": 1, "queued": 1, "delivered": 0,
                             "dropped": 0, "gap": 0, "polling": False,
                             "closed": False})
        st = self.stats(c)
        self.assertTrue(st["subs_complete"])
        self.assertEqual([x["id"] for x in st["subs"]], [sid])
        for k in ("subscriptions", "patterns", "groups", "published",
                  "delivered", "dropped", "max_bytes", "idle_ms", "ops"):
            self.assertIn(k, st)
        self.assertEqual(st["max_bytes"], 64 << 20)
        self.assertEqual(st["idle_ms"], 30000)
        self.assertEqual(self.stats(c, 12345), None)
        if d.http_addr is None:
            return
        doc = d.http("GET", "/v1/stats").json()
        topic = doc["servants"]["topic"]
        self.assertEqual(topic["subscriptions"], 1)
        self.assertEqual(topic["published"], 1)
        text = d.http("GET", "/metrics").body.decode()
        self.assertIn("ferry_topic_subscriptions 1\n", text)
        self.assertIn("ferry_topic_published_total 1\n", text)
        self.assertIn('ferry_topic_requests_total{op="subscribe"} 1\n', text)
        self.assertIn('ferry_topic_dropped_total{cause="full"} 0\n', text)
        # ferry.services names its backend.
        f = c.call(self.next_id(), "ferry.services", b"")
        svcs = {s["name"]: s for s in json.loads(f.body)["services"]}
        self.assertEqual(svcs["ferry.topic"]["backend"], "topic")
        self.assertEqual(svcs["ferry.topic"]["subscriptions"], 1)


    def test_sub_ids_listed_to_internals_only(self):
        """A sub_id is what a POLL needs: STATS lists them only to callers
        who may see internals (here the admin token)."""
        d = self.daemon("--caller-token", "calls", "--admin-token", "boss")
        caller = self.conn(d, token="calls")
        sid = self.sub(caller, "secret.>")
        st = self.stats(caller)
        self.assertEqual(st["subscriptions"], 1)
        self.assertNotIn("subs", st)
        admin = self.conn(d, token="boss")
        self.assertEqual([x["id"] for x in self.stats(admin)["subs"]], [sid])
        # Its owner, who knows the id, sees its own.
        self.assertEqual(self.stats(caller, sid)["pattern"], "secret.>")


class TestTopicCli(TopicCase):

    def ferry(self, *args, timeout=20):
        return subprocess.run([binary("ferry")] + list(args),
                              capture_output=True, timeout=timeout,
                              env=_env())

    def start_sub(self, d, *args):
        p = subprocess.Popen([binary("ferry"), "--addr", d.addr, "sub"] +
                             list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=_env())
        self.addCleanup(self._reap, p)
        c = self.conn(d)
        deadline = time.monotonic() + 10
        while True:
            st = self.stats(c)
            if st["polls_waiting"] >= 1:
                return p, c
            self.assertLess(time.monotonic(), deadline, "sub never polled")
            self.assertIsNone(p.poll(), "sub exited early")
            time.sleep(0.02)

    def _reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait(10)

    def test_pub_and_sub(self):
        d = self.daemon()
        p, c = self.start_sub(d, "cli.>", "--count", "3")
        r = self.ferry("--addr", d.addr, "pub", "cli.a", "hello world")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"receivers=1\n")
        r = self.ferry("--addr", d.addr, "pub", "other", "x")
        self.assertEqual(r.stdout, b"receivers=0\n")
        self.ferry("--addr", d.addr, "pub", "cli.b.c", "two")
        r = subprocess.run([binary("ferry"), "--addr", d.addr, "pub",
                            "cli.z", "-"], input=b"from stdin",
                           capture_output=True, timeout=20, env=_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"cli.a hello world\ncli.b.c two\n"
                              b"cli.z from stdin\n")
        # It unsubscribed on its way out.
        self.assertEqual(self.stats(c)["subscriptions"], 0)
        r = self.ferry("--addr", d.addr, "pub", "ferry.x", "no")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"INVALID_ARGUMENT", r.stderr)
        r = self.ferry("--addr", d.addr, "pub", "a.*", "no")
        self.assertEqual(r.returncode, 2)
        r = self.ferry("--addr", d.addr, "sub", "a.>.b")
        self.assertEqual(r.returncode, 2)

    def test_sub_reports_a_gap_and_stops_on_sigint(self):
        d = self.daemon()
        p, c = self.start_sub(d, "gap", "--max-pending", "2", "--group", "g")
        # Ten publishes in one write are handled in one loop turn: the
        # held POLL is answered after them, with two and a gap of eight.
        c.send(b"".join(encode_request(900 + i, SVC, tw.publish(b"%d" % i),
                                       key=b"gap") for i in range(10)))
        c.collect(range(900, 910))
        deadline = time.monotonic() + 10
        while self.stats(c)["delivered"] < 2:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"# dropped 8\ngap 8\ngap 9\n")
        self.assertEqual(self.stats(c)["subscriptions"], 0)
