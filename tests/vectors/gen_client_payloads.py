#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes client_payloads.json: the payloads of ferry.cache, ferry.kv,
ferry.id (docs/services.md, issue 11's tables), ferry.queue
(docs/queues.md) and ferry.topic (docs/topics.md) that every client's servant helpers are tested against.
Built with struct here, independently of any client's codec (the queue and topic
entries are also checked against the daemon's own codecs,
src/queue/queue_codec.c and src/topic/topic_codec.c, by
tests/unit/test_servants.c).

    python3 tests/vectors/gen_client_payloads.py

"requests": op + args (canonical JSON: bytes as *_hex, u64 as decimal
strings) -> the request's key_hex and payload_hex.
"replies": op + reply_hex -> result (canonical JSON, "status" first), or
"error": "INVALID_ARGUMENT" for a malformed reply the decoder must refuse.

ferry.queue ("service": "queue"): args name the queue as text ("queue",
the routing key; STATS without it: every queue), bytes as payload_hex,
dedup_hex, reason_hex, ids and tokens as decimal strings, release's
"backoff": true for delay 0xffffffff, peek's "which" as "ready",
"delayed", "dead" or "reserved", configure's "settings" as a JSON object
sent compact (no spaces, keys in the order given). Results: "status" is
OK, EMPTY, STALE or NOT_FOUND; stats and configure carry the reply's JSON
parsed ("stats", "settings"); peek entries carry "state" by name. A status
an op never answers (docs/queues.md: EMPTY only to reserve, STALE only to
ack, release, touch and bury, NOT_FOUND to neither push nor reserve) is a
malformed reply.

ferry.topic ("service": "topic", docs/topics.md; these entries were
tests/vectors/topic_payloads.json, written apart until every client read
them): publish's "subject" (text, the routing key) and "message_hex";
subscribe's "pattern" (text, the routing key), "group" (text, "" none),
"max_pending", "policy" ("drop_oldest" or "close"); poll's "sub_id"
(decimal string), "wait_ms", "max_msgs"; unsubscribe's "sub_id"; stats
nothing (the totals) or "sub_id". POLL, UNSUBSCRIBE and STATS send an
empty routing key. Results: publish "receivers"; subscribe "sub_id";
poll "dropped" (decimal) and, when OK, "messages" (each "seq" decimal,
"subject" text, "payload_hex"); stats the reply's JSON parsed ("stats").
A status an op never answers (EMPTY but to poll, NOT_FOUND to publish
or subscribe, 2 or above 3 to any, OK to poll without a message) is a
malformed reply. They are also checked against the daemon's own codec,
src/topic/topic_codec.c, by tests/unit/test_topic_codec.c and
tests/unit/test_servants.c.
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

# ---------------------------------------------------------------- queue
QOK, QEMPTY, QSTALE, QNF = 0, 1, 2, 3
QOPS = {"push": 1, "reserve": 2, "ack": 3, "release": 4, "touch": 5,
        "bury": 6, "peek": 7, "stats": 8, "redrive": 9, "pause": 10,
        "resume": 11, "purge": 12, "delete": 13, "configure": 14}
TOKEN = 0x8badf00ddeadbeef


def qq(op, args, payload_tail=b""):
    """A queue request: its key is args["queue"] (text), or none."""
    key = args.get("queue", "").encode()
    q("queue", op, args, key, bytes([QOPS[op]]) + payload_tail)


def push(prio=0, delay=0, vis=0, md=0, dedup=b"", payload=b""):
    return B(">hIIHB", prio, delay, vis, md, len(dedup)) + dedup + payload


qq("push", {"queue": "jobs", "payload_hex": b"hello".hex()},
   push(payload=b"hello"))
qq("push", {"queue": "jobs", "payload_hex": b"job-2".hex(), "priority": 5,
            "dedup_hex": b"order-17".hex()},
   push(prio=5, dedup=b"order-17", payload=b"job-2"))
qq("push", {"queue": "orders.eu-1:high_prio", "payload_hex": "",
            "priority": -2, "delay_ms": 1500, "visibility_ms": 60000,
            "max_deliveries": 3},
   push(prio=-2, delay=1500, vis=60000, md=3))
qq("push", {"queue": "q", "payload_hex": "00ff", "priority": -32768},
   push(prio=-32768, payload=b"\x00\xff"))
qq("push", {"queue": "q", "payload_hex": "01", "priority": 32767,
            "max_deliveries": 65535, "delay_ms": 4294967294},
   push(prio=32767, md=65535, delay=4294967294, payload=b"\x01"))
qq("reserve", {"queue": "jobs"}, B(">II", 0, 0))
qq("reserve", {"queue": "jobs", "wait_ms": 5000, "visibility_ms": 10000},
   B(">II", 5000, 10000))
qq("ack", {"queue": "jobs", "id": "7", "token": str(TOKEN)},
   B(">QQ", 7, TOKEN))
qq("release", {"queue": "jobs", "id": "7", "token": str(TOKEN)},
   B(">QQI", 7, TOKEN, 0))
qq("release", {"queue": "jobs", "id": "7", "token": str(TOKEN),
               "delay_ms": 2000}, B(">QQI", 7, TOKEN, 2000))
qq("release", {"queue": "jobs", "id": str(U64), "token": "1",
               "backoff": True}, B(">QQI", U64, 1, 0xffffffff))
qq("touch", {"queue": "jobs", "id": "7", "token": str(TOKEN),
             "visibility_ms": 45000}, B(">QQI", 7, TOKEN, 45000))
qq("touch", {"queue": "jobs", "id": "7", "token": str(TOKEN)},
   B(">QQI", 7, TOKEN, 0))
qq("bury", {"queue": "jobs", "id": "7", "token": str(TOKEN),
            "reason_hex": b"bad input".hex()},
   B(">QQ", 7, TOKEN) + b"bad input")
qq("bury", {"queue": "jobs", "id": "8", "token": str(TOKEN)},
   B(">QQ", 8, TOKEN))
qq("peek", {"queue": "jobs", "which": "ready", "limit": 10}, B(">BH", 0, 10))
qq("peek", {"queue": "jobs", "which": "delayed", "limit": 1},
   B(">BH", 1, 1))
qq("peek", {"queue": "jobs", "which": "dead", "limit": 5}, B(">BH", 2, 5))
qq("peek", {"queue": "jobs", "which": "reserved", "limit": 1000},
   B(">BH", 3, 1000))
qq("stats", {"queue": "jobs"})
qq("stats", {})
qq("redrive", {"queue": "jobs", "limit": 100}, B(">I", 100))
qq("redrive", {"queue": "jobs"}, B(">I", 0))
for op in ("pause", "resume", "purge", "delete"):
    qq(op, {"queue": "jobs"})
qq("configure", {"queue": "jobs", "settings": {"max_deliveries": 5,
                                               "backoff_ms": [1000, 5000]}},
   b'{"max_deliveries":5,"backoff_ms":[1000,5000]}')
qq("configure", {"queue": "jobs", "settings": {"dead_letter": "",
                                               "paused": True,
                                               "visibility_ms": 250}},
   b'{"dead_letter":"","paused":true,"visibility_ms":250}')

QST = {QOK: "OK", QEMPTY: "EMPTY", QSTALE: "STALE", QNF: "NOT_FOUND"}


def qr(op, reply, result):
    r("queue", op, reply, result)


def qbad(op, reply):
    bad("queue", op, reply)


qr("push", B(">BQB", QOK, 7, 0), {"status": "OK", "id": "7", "dup": False})
qr("push", B(">BQB", QOK, U64, 1), {"status": "OK", "id": str(U64),
                                    "dup": True})
qbad("push", B(">BQB", QOK, 7, 2))
qbad("push", B(">BQ", QOK, 7))
qbad("push", B(">BQBB", QOK, 7, 0, 0))
qbad("push", B(">B", 4))
qr("reserve", B(">BQQIh", QOK, 7, TOKEN, 1, 5) + b"hello",
   {"status": "OK", "id": "7", "token": str(TOKEN), "attempts": 1,
    "priority": 5, "payload_hex": b"hello".hex()})
qr("reserve", B(">BQQIh", QOK, 9, 1, 4294967295, -32768),
   {"status": "OK", "id": "9", "token": "1", "attempts": 4294967295,
    "priority": -32768, "payload_hex": ""})
qr("reserve", B(">B", QEMPTY), {"status": "EMPTY"})
qbad("reserve", B(">BQQI", QOK, 7, TOKEN, 1) + b"\x00")
qbad("reserve", B(">BB", QEMPTY, 0))
qbad("reserve", b"")
for op in ("ack", "release", "bury"):
    qr(op, B(">B", QOK), {"status": "OK"})
    qr(op, B(">B", QSTALE), {"status": "STALE"})
    qr(op, B(">B", QNF), {"status": "NOT_FOUND"})
qbad("ack", B(">BB", QOK, 0))
qbad("release", B(">BI", QOK, 0))
qbad("bury", B(">B", 7))
qr("touch", B(">BI", QOK, 30000), {"status": "OK", "visibility_ms": 30000})
qr("touch", B(">B", QSTALE), {"status": "STALE"})
qr("touch", B(">B", QNF), {"status": "NOT_FOUND"})
qbad("touch", B(">BH", QOK, 1))
qbad("touch", B(">BIB", QOK, 1, 0))


def peek_entry(id, attempts, prio, state, age, reason, payload):
    return (B(">QIhBQHI", id, attempts, prio, state, age, len(reason),
              len(payload)) + reason + payload)


qr("peek", B(">BH", QOK, 2)
   + peek_entry(7, 2, -3, 0, 1500, b"visibility timeout passed", b"job-1")
   + peek_entry(U64, 0, 32767, 1, 2**40, b"", b""),
   {"status": "OK", "entries": [
       {"id": "7", "attempts": 2, "priority": -3, "state": "ready",
        "age_ms": "1500", "reason_hex": b"visibility timeout passed".hex(),
        "payload_hex": b"job-1".hex()},
       {"id": str(U64), "attempts": 0, "priority": 32767,
        "state": "delayed", "age_ms": str(2**40), "reason_hex": "",
        "payload_hex": ""}]})
qr("peek", B(">BH", QOK, 1) + peek_entry(3, 1, 0, 2, 0, b"", b"x"),
   {"status": "OK", "entries": [
       {"id": "3", "attempts": 1, "priority": 0, "state": "reserved",
        "age_ms": "0", "reason_hex": "", "payload_hex": "78"}]})
qr("peek", B(">BH", QOK, 0), {"status": "OK", "entries": []})
qr("peek", B(">B", QNF), {"status": "NOT_FOUND"})
qbad("peek", B(">BH", QOK, 1))
qbad("peek", B(">BH", QOK, 1) + peek_entry(3, 1, 0, 3, 0, b"", b"x"))
qbad("peek", B(">BH", QOK, 1) + peek_entry(3, 1, 0, 0, 0, b"ab", b"x")[:-1])
qbad("peek", B(">BH", QOK, 1) + peek_entry(3, 1, 0, 0, 0, b"", b"x") + b"!")
qbad("peek", B(">BH", QOK, 2) + peek_entry(3, 1, 0, 0, 0, b"", b"x"))
qbad("peek", B(">BH", QOK, 1) + B(">QIhBQHI", 3, 1, 0, 0, 0, 0, 0xffffffff))

SETTINGS = {"visibility_ms": 30000, "max_deliveries": 0,
            "dedup_window_ms": 300000, "dead_letter": "jobs.dead",
            "paused": False, "backoff_ms": []}
STATS = {"name": "jobs", "ready": 2, "delayed": 1, "reserved": 1, "dead": 1,
         "waiters": 0, "paused": False, "oldest_ready_age_ms": 1200,
         "pushes": 5, "dedup_hits": 1, "reserves": 3, "empty_reserves": 1,
         "acks": 1, "releases": 1, "touches": 0, "buries": 1, "expired": 0,
         "dead_lettered": 0, "redriven": 0, "purged": 0, "push_rate": 1.5,
         "ack_rate": 0.5, "settings": SETTINGS}


def js(o):
    return json.dumps(o, separators=(",", ":")).encode()


qr("stats", B(">B", QOK) + js(STATS), {"status": "OK", "stats": STATS})
qr("stats", B(">B", QOK) + js({"queues": [STATS]}),
   {"status": "OK", "stats": {"queues": [STATS]}})
qr("stats", B(">B", QNF), {"status": "NOT_FOUND"})
qr("redrive", B(">BQ", QOK, 3), {"status": "OK", "moved": "3"})
qr("redrive", B(">B", QNF), {"status": "NOT_FOUND"})
qbad("redrive", B(">BI", QOK, 3))
qr("purge", B(">BQ", QOK, U64), {"status": "OK", "removed": str(U64)})
qr("purge", B(">B", QNF), {"status": "NOT_FOUND"})
qbad("purge", B(">BQB", QOK, 3, 0))
for op in ("pause", "resume", "delete"):
    qr(op, B(">B", QOK), {"status": "OK"})
    qr(op, B(">B", QNF), {"status": "NOT_FOUND"})
qbad("delete", B(">BB", QOK, 0))
qr("configure", B(">B", QOK) + js(dict(SETTINGS, max_deliveries=5,
                                       backoff_ms=[1000, 5000])),
   {"status": "OK", "settings": dict(SETTINGS, max_deliveries=5,
                                     backoff_ms=[1000, 5000])})
qr("configure", B(">B", QNF), {"status": "NOT_FOUND"})
# Statuses the op never answers.
qbad("push", B(">B", QEMPTY))
qbad("push", B(">B", QNF))
qbad("reserve", B(">B", QNF))
qbad("reserve", B(">B", QSTALE))
qbad("ack", B(">B", QEMPTY))
qbad("touch", B(">B", QEMPTY))
qbad("peek", B(">B", QSTALE))
qbad("stats", B(">B", QEMPTY))
qbad("pause", B(">B", QSTALE))
qbad("configure", B(">B", QEMPTY))

# ---------------------------------------------------------------- topic
TOK, TEMPTY, TSTALE, TNF = 0, 1, 2, 3
TOPS = {"publish": 1, "subscribe": 2, "poll": 3, "unsubscribe": 4,
        "stats": 5}
POLICY = {"drop_oldest": 0, "close": 1}
BIG = 2**53 - 1  # the largest sub_id ferryd gives


def tq(op, args, key=b"", tail=b""):
    q("topic", op, args, key, bytes([TOPS[op]]) + tail)


def tpub(subject, message):
    tq("publish", {"subject": subject, "message_hex": message.hex()},
       subject.encode(), message)


def tsub(pattern, group="", max_pending=0, policy="drop_oldest"):
    g = group.encode()
    tq("subscribe", {"pattern": pattern, "group": group,
                     "max_pending": max_pending, "policy": policy},
       pattern.encode(),
       B(">B", len(g)) + g + B(">IB", max_pending, POLICY[policy]))


def tpoll(sub_id, wait_ms=0, max_msgs=0):
    tq("poll", {"sub_id": str(sub_id), "wait_ms": wait_ms,
                "max_msgs": max_msgs}, tail=B(">QII", sub_id, wait_ms,
                                              max_msgs))


tpub("orders.eu.created", b'{"id":17}')
tpub("a", b"")
tpub("x.y-z_1:2", b"\x00\xff")
tpub("bin.x", b"\x00\xff\n")
tsub("orders.>")
tsub("orders.*.created", "billing", 100, "close")
tsub(">", "", 65536)
tsub("a.*.c", "g" * 255, 4294967295, "drop_oldest")
tsub("orders.>", "billing", 2, "close")
tpoll(42, 25000, 100)
tpoll(BIG)
tpoll(77, 600000, 1000)
tq("unsubscribe", {"sub_id": "42"}, tail=B(">Q", 42))
tq("unsubscribe", {"sub_id": str(BIG)}, tail=B(">Q", BIG))
tq("stats", {})
tq("stats", {"sub_id": "42"}, tail=B(">Q", 42))


def tr(op, reply, result):
    r("topic", op, reply, result)


def tbad(op, reply):
    bad("topic", op, reply)


def tmsg(seq, subject, payload):
    return B(">QH", seq, len(subject)) + subject + B(">I", len(payload)) \
        + payload


def tres(seq, subject, payload):
    return {"seq": str(seq), "subject": subject.decode(),
            "payload_hex": payload.hex()}


tr("publish", B(">BI", TOK, 0), {"status": "OK", "receivers": 0})
tr("publish", B(">BI", TOK, 1000), {"status": "OK", "receivers": 1000})
tr("publish", B(">BI", TOK, 4294967295),
   {"status": "OK", "receivers": 4294967295})
tbad("publish", b"")
tbad("publish", B(">B", TOK))
tbad("publish", B(">BH", TOK, 3))
tbad("publish", B(">BIB", TOK, 1, 0))
tbad("publish", B(">BI", TNF, 0))
tbad("publish", B(">BI", TEMPTY, 0))
tr("subscribe", B(">BQ", TOK, BIG), {"status": "OK", "sub_id": str(BIG)})
tr("subscribe", B(">BQ", TOK, 1), {"status": "OK", "sub_id": "1"})
tbad("subscribe", B(">BI", TOK, 1))
tbad("subscribe", B(">BQB", TOK, 7, 0))
tbad("subscribe", B(">B", TNF))
tbad("subscribe", B(">BQ", TEMPTY, 7))
tr("poll", B(">BQI", TOK, 0, 1) + tmsg(1, b"orders.eu.created", b"hi"),
   {"status": "OK", "dropped": "0", "messages": [
       tres(1, b"orders.eu.created", b"hi")]})
# Two messages; the second one's payload empty.
tr("poll", B(">BQI", TOK, 0, 2) + tmsg(1, b"orders.eu.created", b"o-17")
   + tmsg(2, b"orders.us.created", b""),
   {"status": "OK", "dropped": "0", "messages": [
       tres(1, b"orders.eu.created", b"o-17"),
       tres(2, b"orders.us.created", b"")]})
# Two messages after a gap: 3 dropped (seqs 2..4), told once.
tr("poll", B(">BQI", TOK, 3, 2) + tmsg(1, b"a.b", b"\x00\x01")
   + tmsg(5, b"a.c", b"five"),
   {"status": "OK", "dropped": "3", "messages": [
       tres(1, b"a.b", b"\x00\x01"), tres(5, b"a.c", b"five")]})
# seq is a u64: all of it.
tr("poll", B(">BQI", TOK, 90, 2) + tmsg(91, b"tick", b"")
   + tmsg(U64, b"a.b", b"\x00\x01"),
   {"status": "OK", "dropped": "90", "messages": [
       tres(91, b"tick", b""), tres(U64, b"a.b", b"\x00\x01")]})
tr("poll", B(">BQI", TOK, 0, 1) + tmsg(BIG, b"x", b"y" * 200),
   {"status": "OK", "dropped": "0", "messages": [
       tres(BIG, b"x", b"y" * 200)]})
tr("poll", B(">BQ", TEMPTY, 0), {"status": "EMPTY", "dropped": "0"})
tr("poll", B(">BQ", TEMPTY, 7), {"status": "EMPTY", "dropped": "7"})
tr("poll", B(">B", TNF), {"status": "NOT_FOUND"})
tbad("poll", b"")
tbad("poll", B(">BQ", TOK, 0))
tbad("poll", B(">BQI", TOK, 0, 0))  # no message is EMPTY, never OK
tbad("poll", B(">BQI", TOK, 0, 2) + tmsg(1, b"a", b"x"))
tbad("poll", B(">BQI", TOK, 0, 1) + tmsg(1, b"a", b"x")[:-1])
tbad("poll", B(">BQI", TOK, 0, 1) + tmsg(1, b"ab", b"x")[:-2])
tbad("poll", B(">BQI", TOK, 0, 1) + tmsg(1, b"a", b"x") + b"!")
tbad("poll", B(">BQI", TOK, 0, 1) + B(">QH", 1, 5) + b"ab")
tbad("poll", B(">BQI", TOK, 0, 1) + B(">QH", 1, 9) + b"a" + B(">I", 0))
tbad("poll", B(">BQI", TOK, 0, 1) + B(">QH", 1, 1) + b"a"
     + B(">I", 0xffffffff))
tbad("poll", B(">BQI", TOK, 0, 0xffffffff) + tmsg(1, b"a", b""))
tbad("poll", B(">B", TEMPTY))
tbad("poll", B(">BI", TEMPTY, 7))
tbad("poll", B(">BQB", TEMPTY, 0, 0))
tbad("poll", B(">BB", TNF, 0))
tr("unsubscribe", B(">B", TOK), {"status": "OK"})
tr("unsubscribe", B(">B", TNF), {"status": "NOT_FOUND"})
tbad("unsubscribe", b"")
tbad("unsubscribe", B(">BB", TOK, 0))
tbad("unsubscribe", B(">B", TEMPTY))
TSUB = {"id": 42, "pattern": "orders.>", "group": "", "max_pending": 1000,
        "policy": "drop_oldest", "pending": 2, "queued": 5, "delivered": 3,
        "dropped": 0, "gap": 0, "polling": True, "closed": False}
TSTATS = {"subscriptions": 2, "patterns": 1, "groups": 1,
          "polls_waiting": 1, "messages": 3, "bytes": 150, "pending": 4,
          "published": 10, "events": 0, "unrouted": 1, "routed": 12,
          "delivered": 8, "dropped": 3, "dropped_full": 3,
          "dropped_bytes": 0, "dropped_closed": 0, "slow_closed": 0,
          "expired": 0, "polls_empty": 2, "too_big": 0, "nomem": 0,
          "bad": 0, "max_bytes": 67108864, "idle_ms": 30000,
          "ops": {"publish": 10, "subscribe": 2, "poll": 9,
                  "unsubscribe": 0, "stats": 1},
          "subs_complete": True,
          "subs": [dict(TSUB, id=BIG, group="billing", policy="close",
                        pattern="orders.*.created", closed=True,
                        polling=False)]}
tr("stats", B(">B", TOK) + js(TSUB), {"status": "OK", "stats": TSUB})
tr("stats", B(">B", TOK) + js(TSTATS), {"status": "OK", "stats": TSTATS})
tr("stats", B(">B", TNF), {"status": "NOT_FOUND"})
tbad("stats", B(">B", TEMPTY))
tbad("stats", B(">BQ", TEMPTY, 0))
tbad("stats", B(">BB", TNF, 0))
# Statuses no op answers: 2 (STALE is ferry.queue's) and above 3.
for op in TOPS:
    tbad(op, B(">B", TSTALE) + (b"\0" * 8 if op != "unsubscribe" else b""))
    tbad(op, B(">B", 4))

out = {"doc": __doc__.strip().splitlines()[0], "requests": req,
       "replies": rep}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "client_payloads.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"{path}: {len(req)} requests, {len(rep)} replies")
