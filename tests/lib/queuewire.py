# SPDX-License-Identifier: MIT
"""ferry.queue's payloads (docs/queues.md) encoded in Python, apart from
the C codec, for the tests: requests to bytes, replies to dicts."""
import json
import struct

(PUSH, RESERVE, ACK, RELEASE, TOUCH, BURY, PEEK, STATS, REDRIVE, PAUSE,
 RESUME, PURGE, DELETE, CONFIGURE) = range(1, 15)
OK, EMPTY, STALE, NOT_FOUND = 0, 1, 2, 3
READY, DELAYED, DEAD, RESERVED = 0, 1, 2, 3
BACKOFF = 0xFFFFFFFF
SVC = "ferry.queue"


def push(payload, priority=0, delay_ms=0, visibility_ms=0,
         max_deliveries=0, dedup=b""):
    return (struct.pack(">BhIIHB", PUSH, priority, delay_ms, visibility_ms,
                        max_deliveries, len(dedup)) + dedup + payload)


def reserve(wait_ms=0, visibility_ms=0):
    return struct.pack(">BII", RESERVE, wait_ms, visibility_ms)


def ack(jid, token):
    return struct.pack(">BQQ", ACK, jid, token)


def release(jid, token, delay_ms=0):
    return struct.pack(">BQQI", RELEASE, jid, token, delay_ms)


def touch(jid, token, visibility_ms=0):
    return struct.pack(">BQQI", TOUCH, jid, token, visibility_ms)


def bury(jid, token, reason=b""):
    return struct.pack(">BQQ", BURY, jid, token) + reason


def peek(which=READY, limit=0):
    return struct.pack(">BBH", PEEK, which, limit)


def redrive(limit=0):
    return struct.pack(">BI", REDRIVE, limit)


def simple(op):
    return bytes([op])


def configure(**settings):
    return bytes([CONFIGURE]) + json.dumps(settings).encode()


def reply(op, b):
    """The reply payload of op as a dict; asserts it is well formed."""
    r = {"status": b[0]}
    if b[0] != OK:
        assert len(b) == 1, b
        return r
    b = b[1:]
    if op == PUSH:
        r["id"], dup = struct.unpack(">QB", b)
        r["dup"] = dup == 1
    elif op == RESERVE:
        r["id"], r["token"], r["attempts"], r["priority"] = \
            struct.unpack_from(">QQIh", b)
        r["payload"] = b[22:]
    elif op == TOUCH:
        (r["visibility_ms"],) = struct.unpack(">I", b)
    elif op in (REDRIVE, PURGE):
        (r["count"],) = struct.unpack(">Q", b)
    elif op == PEEK:
        (n,) = struct.unpack_from(">H", b)
        i, jobs = 2, []
        for _ in range(n):
            j = {}
            (j["id"], j["attempts"], j["priority"], j["state"], j["age_ms"],
             rlen, plen) = struct.unpack_from(">QIhBQHI", b, i)
            i += 29
            j["reason"] = b[i:i + rlen]
            i += rlen
            j["payload"] = b[i:i + plen]
            i += plen
            jobs.append(j)
        assert i == len(b), (i, len(b))
        r["jobs"] = jobs
    elif op in (STATS, CONFIGURE):
        r["json"] = json.loads(b)
    else:
        assert b == b"", b
    return r


class Queues:
    """Calls of ferry.queue over one ferrytest.Conn."""

    def __init__(self, conn):
        self.c = conn
        self.fid = 0

    def call(self, queue, payload, deadline_ms=0, timeout=20):
        from ferrytest import REPLY, parse_error
        self.fid += 1
        q = queue.encode() if isinstance(queue, str) else queue
        f = self.c.call(self.fid, SVC, payload, key=q,
                        deadline_ms=deadline_ms, timeout=timeout)
        if f.type != REPLY:
            return {"error": parse_error(f.body)}
        return reply(payload[0], f.body)

    def push(self, queue, payload, **kw):
        return self.call(queue, push(payload, **kw))

    def reserve(self, queue, wait_ms=0, **kw):
        return self.call(queue, reserve(wait_ms, **kw),
                         deadline_ms=wait_ms + 10000)

    def ack(self, queue, jid, token):
        return self.call(queue, ack(jid, token))

    def release(self, queue, jid, token, delay_ms=0):
        return self.call(queue, release(jid, token, delay_ms))

    def touch(self, queue, jid, token, visibility_ms=0):
        return self.call(queue, touch(jid, token, visibility_ms))

    def bury(self, queue, jid, token, reason=b""):
        return self.call(queue, bury(jid, token, reason))

    def peek(self, queue, which=READY, limit=0):
        return self.call(queue, peek(which, limit))

    def stats(self, queue=""):
        return self.call(queue, simple(STATS))

    def op(self, queue, op):
        return self.call(queue, simple(op))

    def configure(self, queue, **settings):
        return self.call(queue, configure(**settings))

    def redrive(self, queue, limit=0):
        return self.call(queue, redrive(limit))
