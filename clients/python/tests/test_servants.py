# SPDX-License-Identifier: MIT
"""ferry.servants (client.cache / kv / id / queue / topic): the
codec against tests/vectors/client_payloads.json, shared with every
client, and the helpers on Client and AsyncClient through a stub call."""
import asyncio
import json
import os
import struct
import unittest

import fhelp
import ferry
from ferry import servants as S

with open(os.path.join(fhelp.ROOT, "tests", "vectors",
                       "client_payloads.json"), encoding="utf-8") as f:
    VEC = json.load(f)


def hx(b):
    return bytes.fromhex(b)


def encode(service, op, a):
    if service == "cache":
        kw = {k: a[k] for k in ("flags", "ttl_ms", "delay_ms") if k in a}
        for k in ("cas", "delta"):
            if k in a:
                kw[k] = int(a[k])
        if "keys_hex" in a:
            kw["keys"] = [hx(k) for k in a["keys_hex"]]
        return S.encode_cache(op, key=hx(a.get("key_hex", "")),
                              value=hx(a.get("value_hex", "")), **kw)
    if service == "kv":
        kw = {k: a[k] for k in ("cond", "limit", "keys_only", "prefix",
                                "wait_ms", "max_events") if k in a}
        for k in ("rev", "from_rev"):
            if k in a:
                kw[k] = int(a[k])
        if "end_hex" in a:
            kw["end"] = hx(a["end_hex"])
        return S.encode_kv(op, hx(a["key_hex"]),
                           value=hx(a.get("value_hex", "")), **kw)
    if service == "queue":
        kw = {k: a[k] for k in ("priority", "delay_ms", "visibility_ms",
                                "max_deliveries", "wait_ms", "backoff",
                                "which", "limit", "settings") if k in a}
        for k in ("id", "token"):
            if k in a:
                kw[k] = int(a[k])
        for k in ("payload", "dedup", "reason"):
            if k + "_hex" in a:
                kw[k] = hx(a[k + "_hex"])
        return S.encode_queue(op, a.get("queue"), **kw)
    if service == "topic":
        kw = {k: a[k] for k in ("subject", "pattern", "group",
                                "max_pending", "policy", "wait_ms",
                                "max_msgs") if k in a}
        if "sub_id" in a:
            kw["sub_id"] = int(a["sub_id"])
        if "message_hex" in a:
            kw["payload"] = hx(a["message_hex"])
        return S.encode_topic(op, **kw)
    if op == "next":
        return S.encode_id("next", count=a["count"])
    return S.encode_id("decode", id=int(a["id"]))


def queue_canonical(op, r):
    """A decoded ferry.queue reply as client_payloads.json writes it."""
    if op == "push":
        return {"status": "OK", "id": str(r.id), "dup": r.dup}
    if op == "reserve":
        if r is None:
            return {"status": "EMPTY"}
        return {"status": "OK", "id": str(r.id), "token": str(r.token),
                "attempts": r.attempts, "priority": r.priority,
                "payload_hex": r.payload.hex()}
    if isinstance(r, S.JobOutcome):
        d = {"status": r.status}
        if op == "touch" and r:
            d["visibility_ms"] = r.visibility_ms
        return d
    if op in ("pause", "resume", "delete"):
        return {"status": "OK" if r else "NOT_FOUND"}
    if r is None:
        return {"status": "NOT_FOUND"}
    if op == "peek":
        return {"status": "OK", "entries": [
            {"id": str(e.id), "attempts": e.attempts,
             "priority": e.priority, "state": e.state,
             "age_ms": str(e.age_ms), "reason_hex": e.reason.hex(),
             "payload_hex": e.payload.hex()} for e in r]}
    if op in ("stats", "configure"):
        return {"status": "OK", "stats" if op == "stats" else "settings": r}
    return {"status": "OK", "moved" if op == "redrive" else "removed": str(r)}


def topic_canonical(op, r):
    """A decoded ferry.topic reply as client_payloads.json writes it."""
    if op == "publish":
        return {"status": "OK", "receivers": r}
    if op == "subscribe":
        return {"status": "OK", "sub_id": str(r)}
    if op == "unsubscribe":
        return {"status": "OK" if r else "NOT_FOUND"}
    if r is None:
        return {"status": "NOT_FOUND"}
    if op == "stats":
        return {"status": "OK", "stats": r}
    d = {"status": "OK" if r.messages else "EMPTY",
         "dropped": str(r.dropped)}
    if r.messages:
        d["messages"] = [{"seq": str(m.seq), "subject": m.subject,
                          "payload_hex": m.payload.hex()}
                         for m in r.messages]
    return d


def item(i):
    if i is None:
        return {"status": "NOT_FOUND"}
    return {"status": "OK", "flags": i.flags, "cas": str(i.cas),
            "value_hex": i.value.hex()}


def entry(e, with_key=True):
    d = {"key_hex": e.key.hex()} if with_key else {}
    d.update({"create_rev": str(e.create_rev), "mod_rev": str(e.mod_rev),
              "version": str(e.version), "value_hex": e.value.hex()})
    return d


def canonical(service, op, r):
    """A decoded reply as client_payloads.json writes it."""
    if service == "cache":
        if op in ("get", "gat"):
            return item(r)
        if op == "get_many":
            return {"status": "OK", "items": [item(i) for i in r]}
        if isinstance(r, S.CacheWrite):
            return {"status": r.status, **({"cas": str(r.cas)}
                                           if r.status == "OK" else {})}
        if op in ("incr", "decr"):
            return ({"status": "NOT_FOUND"} if r is None
                    else {"status": "OK", "value": str(r)})
        return {"status": "OK" if r else "NOT_FOUND"}
    if service == "kv":
        if op == "get":
            d = {"status": "OK" if r.entry else "NOT_FOUND",
                 "rev": str(r.rev)}
            if r.entry:
                d.update(entry(r.entry, False))
            return d
        if op in ("put", "delete"):
            return {"status": r.status, "rev": str(r.rev)}
        if op == "count":
            return {"status": "OK", "rev": str(r[0]), "count": str(r[1])}
        if op == "range":
            return {"status": "OK", "rev": str(r.rev), "more": r.more,
                    "items": [entry(e) for e in r.items]}
        return {"status": "OK", "rev": str(r.rev),
                "events": [{"type": e.type, **entry(e)} for e in r.events]}
    if service == "queue":
        return queue_canonical(op, r)
    if service == "topic":
        return topic_canonical(op, r)
    if op == "next":
        return {"status": "OK", "ids": [str(i) for i in r]}
    return {"status": "OK", "unix_ms": str(r.unix_ms), "node": r.node,
            "seq": r.seq}


DECODE = {"cache": S.decode_cache, "kv": S.decode_kv, "id": S.decode_id,
          "queue": S.decode_queue, "topic": S.decode_topic}


class Vectors(unittest.TestCase):
    def test_requests(self):
        self.assertGreater(len(VEC["requests"]), 20)
        for v in VEC["requests"]:
            with self.subTest(v=v):
                key, payload = encode(v["service"], v["op"], v["args"])
                self.assertEqual(payload.hex(), v["payload_hex"])
                self.assertEqual(key.hex(), v["key_hex"])

    def test_replies(self):
        self.assertGreater(len(VEC["replies"]), 40)
        for v in VEC["replies"]:
            with self.subTest(v=v):
                dec = DECODE[v["service"]]
                if "error" in v:
                    with self.assertRaises(ferry.InvalidArgumentError) as e:
                        dec(v["op"], hx(v["reply_hex"]))
                    self.assertEqual(e.exception.name, v["error"])
                else:
                    got = canonical(v["service"], v["op"],
                                    dec(v["op"], hx(v["reply_hex"])))
                    self.assertEqual(got, v["result"])

    def test_every_truncation_refused_or_decoded(self):
        # No prefix of a reply crashes the decoder with anything but
        # InvalidArgumentError.
        for v in VEC["replies"]:
            b = hx(v["reply_hex"])
            for n in range(len(b)):
                try:
                    DECODE[v["service"]](v["op"], b[:n])
                except ferry.InvalidArgumentError:
                    pass

    def test_out_of_range_args(self):
        with self.assertRaises(ValueError):
            S.encode_cache("incr", key=b"k", delta=1 << 64)
        with self.assertRaises(ValueError):
            S.encode_kv("put", b"k", cond="mod_rev", rev=-1)
        with self.assertRaises(ValueError):
            S.encode_queue("push", "q", priority=32768)
        with self.assertRaises(ValueError):
            S.encode_queue("push", "q", dedup=b"x" * 256)
        with self.assertRaises(ValueError):
            S.encode_queue("ack", "q", id=-1)
        with self.assertRaises(ValueError):
            S.encode_queue("peek", "q", which="buried")

    def test_every_queue_op_has_vectors(self):
        ops = set(S.QUEUE_OPS)
        self.assertEqual({v["op"] for v in VEC["requests"]
                          if v["service"] == "queue"}, ops)
        self.assertEqual({v["op"] for v in VEC["replies"]
                          if v["service"] == "queue"}, ops)
        statuses = {v["result"]["status"] for v in VEC["replies"]
                    if v["service"] == "queue" and "result" in v}
        self.assertEqual(statuses, {"OK", "EMPTY", "STALE", "NOT_FOUND"})


    def test_every_topic_op_has_vectors(self):
        ops = set(S.TOPIC_OPS)
        self.assertEqual({v["op"] for v in VEC["requests"]
                          if v["service"] == "topic"}, ops)
        self.assertEqual({v["op"] for v in VEC["replies"]
                          if v["service"] == "topic"}, ops)
        statuses = {v["result"]["status"] for v in VEC["replies"]
                    if v["service"] == "topic" and "result" in v}
        self.assertEqual(statuses, {"OK", "EMPTY", "NOT_FOUND"})

    def test_topic_out_of_range_args(self):
        with self.assertRaises(ValueError):
            S.encode_topic("subscribe", pattern="a", group="g" * 256)
        with self.assertRaises(ValueError):
            S.encode_topic("subscribe", pattern="a", policy="block")
        with self.assertRaises(ValueError):
            S.encode_topic("subscribe", pattern="a", max_pending=1 << 32)
        with self.assertRaises(ValueError):
            S.encode_topic("poll", sub_id=-1)
        with self.assertRaises(ValueError):
            S.encode_topic("poll", sub_id=1, wait_ms=1 << 32)
        self.assertEqual(S.encode_topic("stats", sub_id=0)[1].hex(),
                         "050000000000000000")
        for op in S.TOPIC_OPS:  # 2 (STALE) answers nothing of ferry.topic
            with self.assertRaises(ferry.InvalidArgumentError):
                S.decode_topic(op, hx("02"))


class Stub:
    """A Client stand-in: records calls, answers with canned replies."""

    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    def call(self, service, payload, **kw):
        self.calls.append((service, payload, kw))
        return self.replies.pop(0)


class StubHelpers(ferry.servants.ServantsMixin, Stub):
    pass


class AsyncStub(ferry.servants.ServantsMixin):
    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    async def call(self, service, payload, **kw):
        self.calls.append((service, payload, kw))
        return self.replies.pop(0)


class Helpers(unittest.TestCase):
    def test_cache(self):
        c = StubHelpers([struct.pack(">BQ", 0, 5),
                         struct.pack(">BIQ", 0, 9, 42) + b"v", hx("01"),
                         hx("01"), hx("02")])
        w = c.cache.set("k", b"v", ttl_ms=10)
        self.assertTrue(w)
        self.assertEqual(w.cas, 5)
        self.assertEqual(c.calls[0][0], "ferry.cache")
        self.assertEqual(c.calls[0][2]["key"], b"k")
        self.assertEqual(c.cache.get(b"k"), ferry.CacheItem(b"v", 9, 42))
        self.assertIsNone(c.cache.get(b"k"))
        self.assertFalse(c.cache.delete(b"k"))
        self.assertEqual(c.cache.add(b"k", b"v").status, "NOT_STORED")

    def test_kv_and_id(self):
        c = StubHelpers([hx("00000000000000000b"), hx("03000000000000000b"),
                         struct.pack(">BQQQQ", 0, 3, 1, 1, 1),
                         struct.pack(">BIQQ", 0, 2, 1, 2),
                         hx("010000000000000004")])
        self.assertEqual(c.kv.put(b"a", b"1").rev, 11)
        w = c.kv.put(b"a", b"2", if_mod_rev=10)
        self.assertFalse(w)
        self.assertEqual((w.status, w.rev), ("EXISTS", 11))
        e = c.kv.get(b"a")
        self.assertEqual((e.key, e.value, e.mod_rev), (b"a", b"", 1))
        self.assertEqual(c.id.next(2), [1, 2])
        self.assertIsNone(c.kv.get(b"zz"))

    def test_cluster(self):
        c = StubHelpers([b'{"enabled":true,"epoch":3,"members":[]}',
                         b"[1]", b"{no"])
        self.assertEqual(c.cluster(), {"enabled": True, "epoch": 3,
                                       "members": []})
        self.assertEqual(c.calls[0][0], "ferry.cluster")
        self.assertEqual(c.calls[0][1], b"")
        for _ in range(2):
            with self.assertRaises(ferry.InvalidArgumentError):
                c.cluster()

    def test_async(self):
        c = AsyncStub([struct.pack(">BIQ", 0, 0, 1) + b"x",
                       struct.pack(">BQQ", 0, 5, 6)])
        async def go():
            i = await c.cache.get(b"k")
            n = await c.kv.count(b"p/")
            return i, n
        i, n = asyncio.run(go())
        self.assertEqual(i.value, b"x")
        self.assertEqual(n, 6)

    def test_queue(self):
        job = struct.pack(">BQQIh", 0, 7, 99, 2, -1) + b"work"
        c = StubHelpers([struct.pack(">BQB", 0, 7, 0), job, hx("02"),
                         hx("00"), struct.pack(">BI", 0, 500), hx("01"),
                         hx("00") + b'{"queues":[]}', hx("03"),
                         hx("00") + b'{"max_deliveries":2}'])
        self.assertEqual(c.queue.push("jobs", b"work", priority=-1),
                         ferry.PushResult(7, False))
        self.assertEqual(c.calls[0][0], "ferry.queue")
        self.assertEqual(c.calls[0][2]["key"], b"jobs")
        j = c.queue.reserve("jobs", wait_ms=1000)
        self.assertEqual(j, ferry.QueueJob(7, 99, 2, -1, b"work", "jobs"))
        self.assertEqual(c.calls[1][2]["deadline_ms"], 6000)
        stale = c.queue.ack("jobs", j.id, j.token)
        self.assertFalse(stale)
        self.assertEqual(stale.status, "STALE")
        self.assertTrue(c.queue.release("jobs", j.id, j.token, backoff=True))
        self.assertEqual(c.calls[3][1][-4:], b"\xff\xff\xff\xff")
        self.assertEqual(c.queue.touch("jobs", 7, 99).visibility_ms, 500)
        self.assertIsNone(c.queue.reserve("jobs"))
        self.assertEqual(c.calls[5][2]["deadline_ms"], 5000)
        self.assertEqual(c.queue.stats(), {"queues": []})
        self.assertNotIn("key", c.calls[6][2])
        self.assertFalse(c.queue.pause("nope"))
        self.assertEqual(c.queue.configure("jobs", max_deliveries=2),
                         {"max_deliveries": 2})
        self.assertEqual(c.calls[8][1], b'\x0e{"max_deliveries":2}')

    def test_queue_async(self):
        c = AsyncStub([struct.pack(">BQB", 0, 1, 1), hx("01")])

        async def go():
            return (await c.queue.push("q", b"x", dedup="d"),
                    await c.queue.reserve("q", wait_ms=10))
        p, j = asyncio.run(go())
        self.assertEqual(p, ferry.PushResult(1, True))
        self.assertIsNone(j)
        self.assertIsInstance(c.queue, S.AsyncQueue)

    def test_topic(self):
        msgs = (struct.pack(">BQI", 0, 2, 2)
                + struct.pack(">QH", 3, 3) + b"a.b" + struct.pack(">I", 1)
                + b"x" + struct.pack(">QH", 4, 3) + b"a.c"
                + struct.pack(">I", 0))
        c = StubHelpers([struct.pack(">BI", 0, 2), struct.pack(">BQ", 0, 9),
                         msgs, struct.pack(">BQ", 1, 5), hx("03"), hx("00"),
                         hx("03"), hx("00") + b'{"subscriptions":1}',
                         hx("03")])
        self.assertEqual(c.topic.publish("a.b", b"x"), 2)
        self.assertEqual(c.calls[0][0], "ferry.topic")
        self.assertEqual(c.calls[0][2]["key"], b"a.b")
        self.assertEqual(c.calls[0][1], b"\x01x")
        self.assertEqual(c.topic.subscribe("a.*", group="g", max_pending=2,
                                           policy="close"), 9)
        self.assertEqual(c.calls[1][2]["key"], b"a.*")
        self.assertEqual(c.calls[1][1], b"\x02\x01g\x00\x00\x00\x02\x01")
        got = c.topic.poll(9, wait_ms=1000, max_msgs=10)
        self.assertEqual(got, ferry.TopicPoll(
            [ferry.TopicMessage(3, "a.b", b"x"),
             ferry.TopicMessage(4, "a.c", b"")], 2))
        messages, dropped = got
        self.assertEqual((len(messages), dropped), (2, 2))
        self.assertNotIn("key", c.calls[2][2])
        self.assertEqual(c.calls[2][2]["deadline_ms"], 6000)
        self.assertEqual(c.topic.poll(9), ferry.TopicPoll([], 5))
        self.assertEqual(c.calls[3][2]["deadline_ms"], 5000)
        self.assertIsNone(c.topic.poll(9))
        self.assertTrue(c.topic.unsubscribe(9))
        self.assertFalse(c.topic.unsubscribe(9))
        self.assertEqual(c.topic.stats(), {"subscriptions": 1})
        self.assertEqual(c.calls[7][1], b"\x05")
        self.assertIsNone(c.topic.stats(9))
        self.assertEqual(len(c.calls[8][1]), 9)

    def test_topic_async(self):
        c = AsyncStub([struct.pack(">BQ", 0, 4), struct.pack(">BQ", 1, 0)])

        async def go():
            return (await c.topic.subscribe("x"),
                    await c.topic.poll(4, wait_ms=10))
        sub, got = asyncio.run(go())
        self.assertEqual((sub, got), (4, ferry.TopicPoll([], 0)))
        self.assertIsInstance(c.topic, S.AsyncTopic)

    def test_real_clients_have_helpers(self):
        for cls in (ferry.Client, ferry.AsyncClient):
            for name in ("cache", "kv", "id", "queue", "topic"):
                self.assertTrue(hasattr(cls, name))


if __name__ == "__main__":
    unittest.main()
