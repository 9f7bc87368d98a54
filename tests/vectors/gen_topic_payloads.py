#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes topic_payloads.json: the payloads of ferry.topic (docs/topics.md)
for the clients' codecs, in the schema of client_payloads.json, kept apart
until the clients read it (append its entries to client_payloads.json's
lists once every client's codec knows "topic"). Built with struct here,
independently of any codec; checked against the daemon's own codec
(src/topic/topic_codec.c) by tests/unit/test_topic_codec.c.

    python3 tests/vectors/gen_topic_payloads.py

"requests": op + args -> the request's key_hex and payload_hex. args:
publish "subject" (text, the routing key) and "message_hex"; subscribe
"pattern" (text, the routing key), "group" (text, "" none),
"max_pending", "policy" ("drop_oldest" or "close"); poll "sub_id"
(decimal string), "wait_ms", "max_msgs"; unsubscribe "sub_id"; stats
nothing (every subscription) or "sub_id". POLL, UNSUBSCRIBE and STATS
send an empty routing key.
"replies": op + reply_hex -> result ("status" first: OK, EMPTY or
NOT_FOUND; u64 as decimal strings: sub_id, dropped, seq), or "error":
"INVALID_ARGUMENT" for a malformed reply the decoder must refuse. poll's
OK carries "dropped" and "messages" [{seq, subject, payload_hex}], its
EMPTY "dropped"; stats carries the reply's JSON parsed ("stats"). A
status an op never answers (EMPTY but to poll, NOT_FOUND to publish or
subscribe, OK to poll without a message) is a malformed reply.
"""
import json
import os
import struct

B = struct.pack
OK, EMPTY, NF = 0, 1, 3
OPS = {"publish": 1, "subscribe": 2, "poll": 3, "unsubscribe": 4,
       "stats": 5}
POLICY = {"drop_oldest": 0, "close": 1}
BIG = 2**53 - 1
U64 = 0xfedcba9876543210
req, rep = [], []


def q(op, args, key, tail=b""):
    req.append({"service": "topic", "op": op, "args": args,
                "key_hex": key.hex(), "payload_hex":
                (bytes([OPS[op]]) + tail).hex()})


def r(op, reply, result):
    rep.append({"service": "topic", "op": op, "reply_hex": reply.hex(),
                "result": result})


def bad(op, reply):
    rep.append({"service": "topic", "op": op, "reply_hex": reply.hex(),
                "error": "INVALID_ARGUMENT"})


def sub(pattern, group="", max_pending=0, policy="drop_oldest"):
    g = group.encode()
    q("subscribe", {"pattern": pattern, "group": group,
                    "max_pending": max_pending, "policy": policy},
      pattern.encode(),
      B(">B", len(g)) + g + B(">IB", max_pending, POLICY[policy]))


def msg(seq, subject, payload):
    s = subject.encode()
    return B(">QH", seq, len(s)) + s + B(">I", len(payload)) + payload


# ------------------------------------------------------------ requests
q("publish", {"subject": "orders.eu.created",
              "message_hex": b'{"id":17}'.hex()},
  b"orders.eu.created", b'{"id":17}')
q("publish", {"subject": "a", "message_hex": ""}, b"a")
q("publish", {"subject": "x.y-z_1:2", "message_hex": "00ff"}, b"x.y-z_1:2",
  b"\x00\xff")
sub("orders.>")
sub("orders.*.created", "billing", 100, "close")
sub(">", "", 65536)
sub("a.*.c", "g" * 255, 4294967295, "drop_oldest")
q("poll", {"sub_id": "42", "wait_ms": 25000, "max_msgs": 100}, b"",
  B(">QII", 42, 25000, 100))
q("poll", {"sub_id": str(BIG), "wait_ms": 0, "max_msgs": 0}, b"",
  B(">QII", BIG, 0, 0))
q("unsubscribe", {"sub_id": "42"}, b"", B(">Q", 42))
q("stats", {}, b"")
q("stats", {"sub_id": "42"}, b"", B(">Q", 42))

# ------------------------------------------------------------- replies
r("publish", B(">BI", OK, 0), {"status": "OK", "receivers": 0})
r("publish", B(">BI", OK, 1000), {"status": "OK", "receivers": 1000})
bad("publish", B(">B", OK))
bad("publish", B(">BIB", OK, 1, 0))
bad("publish", B(">BI", NF, 0))
bad("publish", B(">BI", EMPTY, 0))
r("subscribe", B(">BQ", OK, BIG), {"status": "OK", "sub_id": str(BIG)})
r("subscribe", B(">BQ", OK, 1), {"status": "OK", "sub_id": "1"})
bad("subscribe", B(">BI", OK, 1))
bad("subscribe", B(">B", NF))
r("poll", B(">BQI", OK, 0, 1) + msg(1, "orders.eu.created", b"hi"),
  {"status": "OK", "dropped": "0", "messages": [
      {"seq": "1", "subject": "orders.eu.created",
       "payload_hex": b"hi".hex()}]})
r("poll", B(">BQI", OK, 90, 2) + msg(91, "tick", b"") +
  msg(U64, "a.b", b"\x00\x01"),
  {"status": "OK", "dropped": "90", "messages": [
      {"seq": "91", "subject": "tick", "payload_hex": ""},
      {"seq": str(U64), "subject": "a.b", "payload_hex": "0001"}]})
r("poll", B(">BQ", EMPTY, 0), {"status": "EMPTY", "dropped": "0"})
r("poll", B(">BQ", EMPTY, 7), {"status": "EMPTY", "dropped": "7"})
r("poll", B(">B", NF), {"status": "NOT_FOUND"})
bad("poll", B(">BQI", OK, 0, 0))
bad("poll", B(">BQI", OK, 0, 2) + msg(1, "a", b"x"))
bad("poll", B(">BQI", OK, 0, 1) + msg(1, "a", b"x")[:-1])
bad("poll", B(">BQI", OK, 0, 1) + msg(1, "a", b"x") + b"!")
bad("poll", B(">BQI", OK, 0, 1) + B(">QH", 1, 5) + b"ab")
bad("poll", B(">B", EMPTY))
bad("poll", B(">BQB", EMPTY, 0, 0))
bad("poll", B(">BB", NF, 0))
bad("poll", b"")
r("unsubscribe", B(">B", OK), {"status": "OK"})
r("unsubscribe", B(">B", NF), {"status": "NOT_FOUND"})
bad("unsubscribe", B(">BB", OK, 0))
bad("unsubscribe", B(">B", EMPTY))


def js(o):
    return json.dumps(o, separators=(",", ":")).encode()


SUB = {"id": 42, "pattern": "orders.>", "group": "", "max_pending": 1000,
       "policy": "drop_oldest", "pending": 2, "queued": 5, "delivered": 3,
       "dropped": 0, "gap": 0, "polling": True, "closed": False}
r("stats", B(">B", OK) + js(SUB), {"status": "OK", "stats": SUB})
r("stats", B(">B", NF), {"status": "NOT_FOUND"})
bad("stats", B(">B", EMPTY))

out = {"doc": __doc__.strip().splitlines()[0], "requests": req,
       "replies": rep}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "topic_payloads.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"{path}: {len(req)} requests, {len(rep)} replies")
