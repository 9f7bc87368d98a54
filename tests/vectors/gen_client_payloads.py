#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes client_payloads.json: the payloads of ferry.cache, ferry.kv and
ferry.id (docs/services.md, issue 11's tables) that every client's servant
helpers are tested against. Built with struct here, independently of any
client's codec.

    python3 tests/vectors/gen_client_payloads.py

"requests": op + args (canonical JSON: bytes as *_hex, u64 as decimal
strings) -> the request's key_hex and payload_hex.
"replies": op + reply_hex -> result (canonical JSON, "status" first), or
"error": "INVALID_ARGUMENT" for a malformed reply the decoder must refuse.
"""
import json
import os
import struct

B = struct.pack
OK, NF, NS, EX = 0, 1, 2, 3
ST = {0: "OK", 1: "NOT_FOUND", 2: "NOT_STORED", 3: "EXISTS"}
req, rep = [], []


def q(service, op, args, key, payload):
    req.append({"service": service, "op": op, "args": args,
                "key_hex": key.hex(), "payload_hex": payload.hex()})


def r(service, op, reply, result=None, error=None):
    e = {"service": service, "op": op, "reply_hex": reply.hex()}
    if error:
        e["error"] = error
    else:
        e["result"] = result
    rep.append(e)


def bad(service, op, reply):
    r(service, op, reply, error="INVALID_ARGUMENT")


U64 = 0xfedcba9876543210
# ---------------------------------------------------------------- cache
q("cache", "get", {"key_hex": b"k1".hex()}, b"k1", B(">B", 1))
q("cache", "gat", {"key_hex": b"k1".hex(), "ttl_ms": 5000}, b"k1",
  B(">BI", 13, 5000))
q("cache", "get_many", {"keys_hex": [b"a".hex(), b"bc".hex()]}, b"",
  B(">BH", 2, 2) + B(">H", 1) + b"a" + B(">H", 2) + b"bc")
q("cache", "set", {"key_hex": b"k".hex(), "value_hex": b"hello".hex(),
                   "flags": 7, "ttl_ms": 1000}, b"k",
  B(">BII", 3, 7, 1000) + b"hello")
q("cache", "set", {"key_hex": b"k".hex(), "value_hex": ""}, b"k",
  B(">BII", 3, 0, 0))
q("cache", "add", {"key_hex": b"k".hex(), "value_hex": b"v".hex(),
                   "flags": 1, "ttl_ms": 2}, b"k", B(">BII", 4, 1, 2) + b"v")
q("cache", "replace", {"key_hex": b"k".hex(), "value_hex": b"v".hex()},
  b"k", B(">BII", 5, 0, 0) + b"v")
q("cache", "append", {"key_hex": b"k".hex(), "value_hex": b"xy".hex()},
  b"k", B(">B", 6) + b"xy")
q("cache", "prepend", {"key_hex": b"k".hex(), "value_hex": b"xy".hex()},
  b"k", B(">B", 7) + b"xy")
q("cache", "cas", {"key_hex": b"k".hex(), "value_hex": b"new".hex(),
                   "cas": str(U64), "flags": 3, "ttl_ms": 4}, b"k",
  B(">BIIQ", 8, 3, 4, U64) + b"new")
q("cache", "delete", {"key_hex": b"k".hex()}, b"k", B(">B", 9))
q("cache", "incr", {"key_hex": b"n".hex(), "delta": "5"}, b"n",
  B(">BQ", 10, 5))
q("cache", "decr", {"key_hex": b"n".hex(), "delta": str(2**64 - 1)}, b"n",
  B(">BQ", 11, 2**64 - 1))
q("cache", "touch", {"key_hex": b"k".hex(), "ttl_ms": 60000}, b"k",
  B(">BI", 12, 60000))
q("cache", "flush", {"delay_ms": 0}, b"", B(">BI", 14, 0))

item = B(">BIQ", OK, 9, 77) + b"value"
r("cache", "get", item, {"status": "OK", "flags": 9, "cas": "77",
                         "value_hex": b"value".hex()})
r("cache", "get", B(">BIQ", OK, 0, U64), {"status": "OK", "flags": 0,
                                         "cas": str(U64), "value_hex": ""})
r("cache", "get", B(">B", NF), {"status": "NOT_FOUND"})
r("cache", "gat", item, {"status": "OK", "flags": 9, "cas": "77",
                         "value_hex": b"value".hex()})
bad("cache", "get", b"")
bad("cache", "get", B(">BI", OK, 1))
bad("cache", "get", B(">B", 9))
r("cache", "get_many",
  B(">BH", OK, 3) + B(">BIQI", OK, 1, 2, 3) + b"abc" + B(">B", NF)
  + B(">BIQI", OK, 0, 5, 0),
  {"status": "OK", "items": [
      {"status": "OK", "flags": 1, "cas": "2", "value_hex": b"abc".hex()},
      {"status": "NOT_FOUND"},
      {"status": "OK", "flags": 0, "cas": "5", "value_hex": ""}]})
bad("cache", "get_many", B(">BH", OK, 2) + B(">B", NF))
bad("cache", "get_many", B(">BH", OK, 1) + B(">BIQI", OK, 1, 2, 30) + b"abc")
bad("cache", "get_many", B(">BH", OK, 1) + B(">B", NF) + b"x")
for op in ("set", "add", "replace", "append", "prepend", "cas"):
    r("cache", op, B(">BQ", OK, 12345), {"status": "OK", "cas": "12345"})
r("cache", "add", B(">B", NS), {"status": "NOT_STORED"})
r("cache", "cas", B(">B", EX), {"status": "EXISTS"})
r("cache", "cas", B(">B", NF), {"status": "NOT_FOUND"})
bad("cache", "set", B(">BI", OK, 1))
bad("cache", "set", B(">BQB", OK, 1, 0))
r("cache", "delete", B(">B", OK), {"status": "OK"})
r("cache", "delete", B(">B", NF), {"status": "NOT_FOUND"})
r("cache", "touch", B(">B", OK), {"status": "OK"})
r("cache", "flush", B(">B", OK), {"status": "OK"})
r("cache", "incr", B(">BQ", OK, 2**64 - 1),
  {"status": "OK", "value": str(2**64 - 1)})
r("cache", "decr", B(">B", NF), {"status": "NOT_FOUND"})
bad("cache", "incr", B(">BH", OK, 1))

# ------------------------------------------------------------------- kv
q("kv", "get", {"key_hex": b"a/b".hex()}, b"a/b", B(">B", 1))
q("kv", "put", {"key_hex": b"a".hex(), "value_hex": b"v1".hex()}, b"a",
  B(">BBQ", 2, 0, 0) + b"v1")
q("kv", "put", {"key_hex": b"a".hex(), "value_hex": b"v1".hex(),
                "cond": "absent"}, b"a", B(">BBQ", 2, 1, 0) + b"v1")
q("kv", "put", {"key_hex": b"a".hex(), "value_hex": "", "cond": "mod_rev",
                "rev": str(U64)}, b"a", B(">BBQ", 2, 2, U64))
q("kv", "delete", {"key_hex": b"a".hex()}, b"a", B(">BBQ", 3, 0, 0))
q("kv", "delete", {"key_hex": b"a".hex(), "cond": "mod_rev", "rev": "9"},
  b"a", B(">BBQ", 3, 2, 9))
q("kv", "range", {"key_hex": b"p/".hex()}, b"p/",
  B(">BBH", 4, 0, 0) + B(">IB", 0, 0))
q("kv", "range", {"key_hex": b"a".hex(), "end_hex": b"c".hex(),
                  "limit": 10, "keys_only": True}, b"a",
  B(">BBH", 4, 1, 1) + b"c" + B(">IB", 10, 1))
q("kv", "count", {"key_hex": b"p/".hex()}, b"p/", B(">BBH", 5, 0, 0))
q("kv", "count", {"key_hex": b"a".hex(), "end_hex": b"zz".hex()}, b"a",
  B(">BBH", 5, 1, 2) + b"zz")
q("kv", "watch", {"key_hex": b"p/".hex(), "prefix": True, "from_rev": "3",
                  "wait_ms": 1000, "max_events": 5}, b"p/",
  B(">BBQII", 6, 1, 3, 1000, 5))
q("kv", "watch", {"key_hex": b"k".hex()}, b"k", B(">BBQII", 6, 0, 0, 0, 0))

r("kv", "get", B(">BQ", OK, 10) + B(">QQQ", 2, 9, 4) + b"val",
  {"status": "OK", "rev": "10", "create_rev": "2", "mod_rev": "9",
   "version": "4", "value_hex": b"val".hex()})
r("kv", "get", B(">BQ", NF, 10), {"status": "NOT_FOUND", "rev": "10"})
bad("kv", "get", B(">BQ", OK, 10) + B(">QQ", 2, 9))
bad("kv", "get", B(">BI", NF, 10))
r("kv", "put", B(">BQ", OK, 11), {"status": "OK", "rev": "11"})
r("kv", "put", B(">BQ", EX, 7), {"status": "EXISTS", "rev": "7"})
r("kv", "put", B(">BQ", EX, 0), {"status": "EXISTS", "rev": "0"})
bad("kv", "put", B(">B", OK))
r("kv", "delete", B(">BQ", OK, 12), {"status": "OK", "rev": "12"})
r("kv", "delete", B(">BQ", NF, 12), {"status": "NOT_FOUND", "rev": "12"})
r("kv", "delete", B(">B", NF), {"status": "NOT_FOUND", "rev": "0"})
r("kv", "delete", B(">BQ", EX, 5), {"status": "EXISTS", "rev": "5"})
ent = lambda k, c, m, v, val: (B(">H", len(k)) + k + B(">QQQI", c, m, v, len(val))
                               + val)
r("kv", "range", B(">BQBI", OK, 20, 1, 2) + ent(b"a", 1, 2, 3, b"x")
  + ent(b"b", 4, 5, 1, b""),
  {"status": "OK", "rev": "20", "more": True, "items": [
      {"key_hex": b"a".hex(), "create_rev": "1", "mod_rev": "2",
       "version": "3", "value_hex": b"x".hex()},
      {"key_hex": b"b".hex(), "create_rev": "4", "mod_rev": "5",
       "version": "1", "value_hex": ""}]})
r("kv", "range", B(">BQBI", OK, 20, 0, 0),
  {"status": "OK", "rev": "20", "more": False, "items": []})
bad("kv", "range", B(">BQBI", OK, 20, 0, 1))
bad("kv", "range", B(">BQBI", OK, 20, 0, 1) + B(">H", 5) + b"ab")
bad("kv", "range", B(">BQBI", OK, 20, 0, 1) + ent(b"a", 1, 2, 3, b"x")[:-2])
r("kv", "count", B(">BQQ", OK, 20, 3), {"status": "OK", "rev": "20",
                                       "count": "3"})
bad("kv", "count", B(">BQ", OK, 20))
r("kv", "watch", B(">BQI", OK, 30, 2) + B(">B", 0) + ent(b"k", 1, 30, 2, b"v")
  + B(">B", 1) + ent(b"k", 0, 31, 0, b""),
  {"status": "OK", "rev": "30", "events": [
      {"type": "put", "key_hex": b"k".hex(), "create_rev": "1",
       "mod_rev": "30", "version": "2", "value_hex": b"v".hex()},
      {"type": "delete", "key_hex": b"k".hex(), "create_rev": "0",
       "mod_rev": "31", "version": "0", "value_hex": ""}]})
r("kv", "watch", B(">BQI", OK, 30, 0), {"status": "OK", "rev": "30",
                                       "events": []})
bad("kv", "watch", B(">BQI", OK, 30, 1) + B(">B", 2) + ent(b"k", 1, 1, 1, b""))
bad("kv", "watch", B(">BQI", OK, 30, 70000))

# ------------------------------------------------------------------- id
q("id", "next", {"count": 1}, b"", B(">BI", 1, 1))
q("id", "next", {"count": 10000}, b"", B(">BI", 1, 10000))
q("id", "decode", {"id": str(2**62 + 5)}, b"", B(">BQ", 2, 2**62 + 5))
r("id", "next", B(">BIQQ", OK, 2, 100, 2**63 - 1),
  {"status": "OK", "ids": ["100", str(2**63 - 1)]})
bad("id", "next", B(">BIQ", OK, 2, 100))
bad("id", "next", B(">BIQ", OK, 1, 100) + b"\0")
r("id", "decode", B(">BQHH", OK, 1767225600123, 1023, 4095),
  {"status": "OK", "unix_ms": "1767225600123", "node": 1023, "seq": 4095})
bad("id", "decode", B(">BQH", OK, 1, 2))

out = {"doc": __doc__.strip().splitlines()[0], "requests": req,
       "replies": rep}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "client_payloads.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"{path}: {len(req)} requests, {len(rep)} replies")
