# SPDX-License-Identifier: MIT
"""ferry.servants (client.cache / client.kv / client.id): the codec against
tests/vectors/client_payloads.json, shared with every client, and
the helpers on Client and AsyncClient through a stub call."""
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
    if op == "next":
        return S.encode_id("next", count=a["count"])
    return S.encode_id("decode", id=int(a["id"]))


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
    if op == "next":
        return {"status": "OK", "ids": [str(i) for i in r]}
    return {"status": "OK", "unix_ms": str(r.unix_ms), "node": r.node,
            "seq": r.seq}


DECODE = {"cache": S.decode_cache, "kv": S.decode_kv, "id": S.decode_id}


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

    def test_real_clients_have_helpers(self):
        for cls in (ferry.Client, ferry.AsyncClient):
            for name in ("cache", "kv", "id"):
                self.assertTrue(hasattr(cls, name))


if __name__ == "__main__":
    unittest.main()
