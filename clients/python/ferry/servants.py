# SPDX-License-Identifier: MIT
"""Helpers for ferryd's built-in services ferry.cache, ferry.kv, ferry.id
(docs/services.md), ferry.queue (docs/queues.md) and ferry.topic
(docs/topics.md): client.cache, client.kv, client.id, client.queue and
client.topic on Client and AsyncClient encode the request payloads and
decode the replies.

    c = ferry.Client()
    cas = c.cache.set(b"user:1", b"alice", ttl_ms=60_000)
    item = c.cache.get(b"user:1")          # CacheItem or None
    rev = c.kv.put(b"cfg/a", b"1").rev      # KvWrite
    ids = c.id.next(10)                     # list of int
    c.queue.push("mail", b"to:bob")         # PushResult(id, dup)
    job = c.queue.reserve("mail", wait_ms=10_000)   # QueueJob or None
    c.topic.publish("orders.eu", b"o-17")    # receivers, an int
    for m in c.topic.messages("orders.*"):   # TopicMessage or TopicGap
        ...

Statuses are returned, not raised: a cache miss or an EMPTY reserve is
None, a refused write or a STALE ack a falsy result carrying its status,
a poll of a subscription that is gone None.

The encode_* / decode_* functions are the codec (tests/vectors/
client_payloads.json); a malformed reply raises InvalidArgumentError.
ferryd's errors (TOO_BIG, OVERLOADED, INVALID_ARGUMENT ...) are raised as
their FerryError subclass by the call itself.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import (Any, AsyncIterator, Awaitable, Callable, Iterator,
                    Mapping, NamedTuple, Sequence)

from .errors import ConnectionError as _ConnectionError
from .errors import DeadlineError, FerryError, InvalidArgumentError

CACHE, KV, ID, QUEUE = "ferry.cache", "ferry.kv", "ferry.id", "ferry.queue"
CLUSTER = "ferry.cluster"
STATUS = {0: "OK", 1: "NOT_FOUND", 2: "NOT_STORED", 3: "EXISTS"}
CACHE_OPS = {"get": 1, "get_many": 2, "set": 3, "add": 4, "replace": 5,
             "append": 6, "prepend": 7, "cas": 8, "delete": 9, "incr": 10,
             "decr": 11, "touch": 12, "gat": 13, "flush": 14}
KV_OPS = {"get": 1, "put": 2, "delete": 3, "range": 4, "count": 5,
          "watch": 6}
ID_OPS = {"next": 1, "decode": 2}
COND = {"any": 0, "absent": 1, "mod_rev": 2}
U64_MAX = (1 << 64) - 1
QUEUE_OPS = {"push": 1, "reserve": 2, "ack": 3, "release": 4, "touch": 5,
             "bury": 6, "peek": 7, "stats": 8, "redrive": 9, "pause": 10,
             "resume": 11, "purge": 12, "delete": 13, "configure": 14}
QUEUE_STATUS = {0: "OK", 1: "EMPTY", 2: "STALE", 3: "NOT_FOUND"}
# The statuses each op may answer (docs/queues.md); any other is malformed.
_QUEUE_ALLOWED = {"push": ("OK",), "reserve": ("OK", "EMPTY"),
                  **{op: ("OK", "STALE", "NOT_FOUND")
                     for op in ("ack", "release", "touch", "bury")},
                  **{op: ("OK", "NOT_FOUND")
                     for op in ("peek", "stats", "redrive", "pause",
                                "resume", "purge", "delete", "configure")}}
PEEK_WHICH = {"ready": 0, "delayed": 1, "dead": 2, "reserved": 3}
JOB_STATES = {0: "ready", 1: "delayed", 2: "reserved"}
RELEASE_BACKOFF = 0xFFFFFFFF  # release's delay_ms: by the queue's backoff_ms
TOPIC = "ferry.topic"
TOPIC_OPS = {"publish": 1, "subscribe": 2, "poll": 3, "unsubscribe": 4,
             "stats": 5}
# ferry.queue's values; 2 (STALE) is no answer of ferry.topic.
TOPIC_STATUS = {0: "OK", 1: "EMPTY", 3: "NOT_FOUND"}
_TOPIC_ALLOWED = {"publish": ("OK",), "subscribe": ("OK",),
                  "poll": ("OK", "EMPTY", "NOT_FOUND"),
                  "unsubscribe": ("OK", "NOT_FOUND"),
                  "stats": ("OK", "NOT_FOUND")}
TOPIC_POLICY = {"drop_oldest": 0, "close": 1}


def _b(v: bytes | str) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


# ----------------------------------------------------------- results

@dataclass(frozen=True)
class CacheItem:
    value: bytes
    flags: int = 0
    cas: int = 0


@dataclass(frozen=True)
class CacheWrite:
    """A store's outcome: status "OK" (cas is the item's new cas),
    "NOT_STORED", "EXISTS" (cas mismatch) or "NOT_FOUND". True when OK."""
    status: str
    cas: int = 0

    def __bool__(self) -> bool:
        return self.status == "OK"


@dataclass(frozen=True)
class KvEntry:
    key: bytes
    value: bytes
    create_rev: int
    mod_rev: int
    version: int


@dataclass(frozen=True)
class KvGet:
    """A get: the store's revision now, and the entry (None when absent)."""
    rev: int
    entry: KvEntry | None


@dataclass(frozen=True)
class KvWrite:
    """A put or delete: status "OK" (rev is the write's revision), "EXISTS"
    (the compare failed; rev is the key's mod_rev, 0 if absent) or
    "NOT_FOUND" (delete of an absent key). True when OK."""
    status: str
    rev: int

    def __bool__(self) -> bool:
        return self.status == "OK"


@dataclass(frozen=True)
class KvRange:
    """rev: the store's revision; more: continue from next_key."""
    rev: int
    more: bool
    items: list[KvEntry] = field(default_factory=list)

    @property
    def next_key(self) -> bytes | None:
        return self.items[-1].key + b"\0" if self.more and self.items \
            else None


@dataclass(frozen=True)
class KvEvent:
    type: str  # "put" or "delete"
    key: bytes
    value: bytes
    create_rev: int
    mod_rev: int
    version: int


@dataclass(frozen=True)
class KvWatch:
    """events (empty when wait_ms passed); rev: the store's revision, the
    next from_rev is rev + 1."""
    rev: int
    events: list[KvEvent] = field(default_factory=list)


@dataclass(frozen=True)
class IdParts:
    unix_ms: int
    node: int
    seq: int


@dataclass(frozen=True)
class PushResult:
    """A push: the job's id; dup when the dedup id was seen within the
    queue's window (id is then the first push's, and nothing was
    stored)."""
    id: int
    dup: bool = False


@dataclass(frozen=True)
class QueueJob:
    """A reserved job: ack, release, touch or bury it with its id and
    token. attempts counts its deliveries, this one included; queue is
    the queue it was reserved from."""
    id: int
    token: int
    attempts: int
    priority: int
    payload: bytes
    queue: str = ""


@dataclass(frozen=True)
class JobOutcome:
    """An ack, release, touch or bury: status "OK", "STALE" (the token no
    longer holds the job: it timed out and went to someone else, or was
    released) or "NOT_FOUND" (no such job in this queue). True when OK.
    touch: visibility_ms is the reservation's new time left."""
    status: str
    visibility_ms: int = 0

    def __bool__(self) -> bool:
        return self.status == "OK"


@dataclass(frozen=True)
class PeekEntry:
    """A job seen by peek; state is "ready", "delayed" or "reserved";
    reason says why a dead job died."""
    id: int
    attempts: int
    priority: int
    state: str
    age_ms: int
    reason: bytes
    payload: bytes


@dataclass(frozen=True)
class TopicMessage:
    """A message of a subscription: seq is the subscription's own number
    (from 1; a hole in them is where messages were dropped), subject the
    subject it was published on."""
    seq: int
    subject: str
    payload: bytes


class TopicPoll(NamedTuple):
    """A poll's answer: the messages (none when the wait passed) and
    dropped, the messages ferryd dropped for the subscription since its
    previous answer (told once). Unpacks as (messages, dropped)."""
    messages: list[TopicMessage]
    dropped: int


@dataclass(frozen=True)
class TopicGap:
    """A gap notice of messages(): dropped messages were lost before the
    next one (the subscriber was slow: its max_pending, or ferryd's
    topic_max_bytes); or, with resubscribed True, the subscription had
    expired (no poll for topic_idle_ms: a paused process, a connection
    down that long) and was made again: an unknown number of messages may
    have been missed (dropped 0)."""
    dropped: int
    resubscribed: bool = False


# ------------------------------------------------------------ encode

def _u(fmt: str, *v: int) -> bytes:
    try:
        return struct.pack(">" + fmt, *v)
    except struct.error:
        raise ValueError(f"value out of range: {v}") from None


def encode_cache(op: str, key: bytes | str = b"", value: bytes | str = b"",
                 flags: int = 0, ttl_ms: int = 0, cas: int = 0,
                 delta: int = 0, delay_ms: int = 0,
                 keys: Sequence[bytes | str] = ()) -> tuple[bytes, bytes]:
    """The (routing key, payload) of a ferry.cache request."""
    code = CACHE_OPS[op]
    key, value = _b(key), _b(value)
    head = bytes([code])
    if op in ("get", "delete"):
        p = head
    elif op == "get_many":
        p = head + _u("H", len(keys)) + b"".join(
            _u("H", len(_b(k))) + _b(k) for k in keys)
        key = b""
    elif op in ("set", "add", "replace"):
        p = head + _u("II", flags, ttl_ms) + value
    elif op in ("append", "prepend"):
        p = head + value
    elif op == "cas":
        p = head + _u("IIQ", flags, ttl_ms, cas) + value
    elif op in ("incr", "decr"):
        p = head + _u("Q", delta)
    elif op in ("touch", "gat"):
        p = head + _u("I", ttl_ms)
    else:  # flush
        p = head + _u("I", delay_ms)
        key = b""
    return key, p


def encode_kv(op: str, key: bytes | str, value: bytes | str = b"",
              cond: str = "any", rev: int = 0, end: bytes | str | None = None,
              limit: int = 0, keys_only: bool = False, prefix: bool = False,
              from_rev: int = 0, wait_ms: int = 0,
              max_events: int = 0) -> tuple[bytes, bytes]:
    """The (routing key, payload) of a ferry.kv request. range/count: end
    None is the prefix key, else [key, end)."""
    code = KV_OPS[op]
    key = _b(key)
    head = bytes([code])
    if op == "get":
        p = head
    elif op in ("put", "delete"):
        p = head + _u("BQ", COND[cond], rev) + (_b(value) if op == "put"
                                                else b"")
    elif op in ("range", "count"):
        e = b"" if end is None else _b(end)
        p = head + _u("BH", 0 if end is None else 1, len(e)) + e
        if op == "range":
            p += _u("IB", limit, 1 if keys_only else 0)
    else:  # watch
        p = head + _u("BQII", 1 if prefix else 0, from_rev, wait_ms,
                      max_events)
    return key, p


def encode_id(op: str, count: int = 1, id: int = 0) -> tuple[bytes, bytes]:
    if op == "next":
        return b"", bytes([1]) + _u("I", count)
    return b"", bytes([2]) + _u("Q", id)


def _queue_name(queue: str | bytes | None) -> bytes:
    return b"" if queue is None else _b(queue)


def encode_queue(op: str, queue: str | bytes | None, *,
                 payload: bytes | str = b"", priority: int = 0,
                 delay_ms: int = 0, visibility_ms: int = 0,
                 max_deliveries: int = 0, dedup: bytes | str | None = None,
                 wait_ms: int = 0, id: int = 0, token: int = 0,
                 backoff: bool = False, reason: bytes | str = b"",
                 which: str = "ready", limit: int = 0,
                 settings: Mapping[str, Any] | None = None
                 ) -> tuple[bytes, bytes]:
    """The (routing key, payload) of a ferry.queue request: the key is
    the queue's name (None or "" for stats of every queue). configure's
    settings go as compact JSON, keys in their order. Out-of-range
    numbers raise ValueError."""
    head = bytes([QUEUE_OPS[op]])
    key = _queue_name(queue)
    if op == "push":
        d = b"" if dedup is None else _b(dedup)
        if len(d) > 255:
            raise ValueError(f"dedup id of {len(d)} bytes")
        p = head + _u("hIIHB", priority, delay_ms, visibility_ms,
                      max_deliveries, len(d)) + d + _b(payload)
    elif op == "reserve":
        p = head + _u("II", wait_ms, visibility_ms)
    elif op == "ack":
        p = head + _u("QQ", id, token)
    elif op == "release":
        p = head + _u("QQI", id, token,
                      RELEASE_BACKOFF if backoff else delay_ms)
    elif op == "touch":
        p = head + _u("QQI", id, token, visibility_ms)
    elif op == "bury":
        p = head + _u("QQ", id, token) + _b(reason)
    elif op == "peek":
        if which not in PEEK_WHICH:
            raise ValueError(f"peek which {which!r}: one of "
                             f"{', '.join(PEEK_WHICH)}")
        p = head + _u("BH", PEEK_WHICH[which], limit)
    elif op == "redrive":
        p = head + _u("I", limit)
    elif op == "configure":
        p = head + json.dumps(dict(settings or {}),
                              separators=(",", ":")).encode()
    else:  # stats, pause, resume, purge, delete
        p = head
    return key, p


def encode_topic(op: str, *, subject: str | bytes | None = None,
                 payload: bytes | str = b"",
                 pattern: str | bytes | None = None,
                 group: str | bytes | None = None, max_pending: int = 0,
                 policy: str = "drop_oldest", sub_id: int | None = None,
                 wait_ms: int = 0, max_msgs: int = 0) -> tuple[bytes, bytes]:
    """The (routing key, payload) of a ferry.topic request: the key is
    publish's subject or subscribe's pattern (ferryd checks them), empty
    for the others. stats with sub_id None: the totals. A group over 255
    bytes, an unknown policy or a number out of range raise ValueError."""
    head = bytes([TOPIC_OPS[op]])
    key = b""
    if op == "publish":
        key = _b(subject or b"")
        p = head + _b(payload)
    elif op == "subscribe":
        key = _b(pattern or b"")
        g = b"" if group is None else _b(group)
        if len(g) > 255:
            raise ValueError(f"group of {len(g)} bytes (at most 255)")
        if policy not in TOPIC_POLICY:
            raise ValueError(f"policy {policy!r}: one of "
                             f"{', '.join(TOPIC_POLICY)}")
        p = head + bytes([len(g)]) + g + _u("IB", max_pending,
                                            TOPIC_POLICY[policy])
    elif op == "poll":
        p = head + _u("QII", sub_id or 0, wait_ms, max_msgs)
    elif op == "unsubscribe":
        p = head + _u("Q", sub_id or 0)
    else:  # stats
        p = head if sub_id is None else head + _u("Q", sub_id)
    return key, p


# ------------------------------------------------------------ decode

class _R:
    """A bounds-checked reader of one reply; short or long: INVALID."""

    def __init__(self, service: str, op: str, data: bytes) -> None:
        self.what = f"{service} {op} reply"
        self.d = memoryview(bytes(data))
        self.i = 0

    def bad(self, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(message=f"{self.what}: {why}")

    def need(self, n: int, name: str) -> None:
        if len(self.d) - self.i < n:
            raise self.bad(f"{name} needs {n} bytes, "
                           f"got {len(self.d) - self.i}")

    def num(self, fmt: str, name: str) -> int:
        n = struct.calcsize(">" + fmt)
        self.need(n, name)
        v = struct.unpack_from(">" + fmt, self.d, self.i)[0]
        self.i += n
        return v

    def bytes(self, n: int, name: str) -> bytes:
        self.need(n, name)
        v = bytes(self.d[self.i:self.i + n])
        self.i += n
        return v

    def rest(self) -> bytes:
        v = bytes(self.d[self.i:])
        self.i = len(self.d)
        return v

    def status(self) -> str:
        s = self.num("B", "status")
        if s not in STATUS:
            raise self.bad(f"unknown status {s}")
        return STATUS[s]

    def end(self) -> None:
        if self.i != len(self.d):
            raise self.bad(f"{len(self.d) - self.i} bytes too many")

    def entry(self) -> tuple[bytes, int, int, int, bytes]:
        k = self.bytes(self.num("H", "klen"), "key")
        c, m, v = (self.num("Q", "create_rev"), self.num("Q", "mod_rev"),
                   self.num("Q", "version"))
        val = self.bytes(self.num("I", "vlen"), "value")
        return k, c, m, v, val


def decode_cache(op: str, data: bytes) -> Any:
    """get/gat: CacheItem or None; get_many: list of CacheItem or None;
    stores: CacheWrite; delete/touch/flush: True (OK) or False (NOT_FOUND);
    incr/decr: the new value or None."""
    r = _R(CACHE, op, data)
    s = r.status()
    if op in ("get", "gat"):
        if s != "OK":
            r.end()
            return None
        flags, cas = r.num("I", "flags"), r.num("Q", "cas")
        return CacheItem(r.rest(), flags, cas)
    if op == "get_many":
        n = r.num("H", "n")
        items: list[CacheItem | None] = []
        for _ in range(n):
            if r.status() != "OK":
                items.append(None)
                continue
            flags, cas = r.num("I", "flags"), r.num("Q", "cas")
            items.append(CacheItem(r.bytes(r.num("I", "vlen"), "value"),
                                   flags, cas))
        r.end()
        return items
    if op in ("set", "add", "replace", "append", "prepend", "cas"):
        cas = r.num("Q", "cas") if s == "OK" else 0
        r.end()
        return CacheWrite(s, cas)
    if op in ("incr", "decr"):
        v = r.num("Q", "value") if s == "OK" else None
        r.end()
        return v
    r.end()
    return s == "OK"


def decode_kv(op: str, data: bytes) -> Any:
    """get: KvGet (key empty in its entry); put/delete: KvWrite; range:
    KvRange; count: (rev, count); watch: KvWatch."""
    r = _R(KV, op, data)
    s = r.status()
    if op == "delete" and s == "NOT_FOUND" and r.i == len(r.d):
        return KvWrite(s, 0)
    rev = r.num("Q", "rev")
    if op == "get":
        if s != "OK":
            r.end()
            return KvGet(rev, None)
        c, m, v = (r.num("Q", "create_rev"), r.num("Q", "mod_rev"),
                   r.num("Q", "version"))
        return KvGet(rev, KvEntry(b"", r.rest(), c, m, v))
    if op in ("put", "delete"):
        r.end()
        return KvWrite(s, rev)
    if op == "count":
        n = r.num("Q", "count")
        r.end()
        return rev, n
    if op == "range":
        more = r.num("B", "more") != 0
        n = r.num("I", "n")
        if n > len(r.d):
            raise r.bad(f"n {n} larger than the payload")
        items = []
        for _ in range(n):
            k, c, m, v, val = r.entry()
            items.append(KvEntry(k, val, c, m, v))
        r.end()
        return KvRange(rev, more, items)
    n = r.num("I", "n")
    if n > len(r.d):
        raise r.bad(f"n {n} larger than the payload")
    events = []
    for _ in range(n):
        t = r.num("B", "type")
        if t > 1:
            raise r.bad(f"unknown event type {t}")
        k, c, m, v, val = r.entry()
        events.append(KvEvent("put" if t == 0 else "delete", k, val, c, m, v))
    r.end()
    return KvWatch(rev, events)


def decode_id(op: str, data: bytes) -> Any:
    """next: list[int]; decode: IdParts."""
    r = _R(ID, op, data)
    r.status()
    if op == "next":
        n = r.num("I", "n")
        if n > len(r.d):
            raise r.bad(f"n {n} larger than the payload")
        ids = [r.num("Q", "id") for _ in range(n)]
        r.end()
        return ids
    p = IdParts(r.num("Q", "unix_ms"), r.num("H", "node"), r.num("H", "seq"))
    r.end()
    return p


def _json_rest(r: _R, name: str) -> Any:
    try:
        return json.loads(r.rest().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise r.bad(f"{name} is not JSON") from None


def decode_queue(op: str, data: bytes, queue: str = "") -> Any:
    """A ferry.queue reply: push: PushResult; reserve: QueueJob (its
    queue set to queue) or None (EMPTY); ack/release/touch/bury:
    JobOutcome; peek: list of PeekEntry; stats, configure: the JSON as a
    dict; redrive, purge: the count; pause/resume/delete: True. peek,
    stats, redrive, purge, configure answer None and pause, resume,
    delete False for NOT_FOUND (no such queue). A malformed reply, or a
    status the op never answers, raises InvalidArgumentError."""
    r = _R(QUEUE, op, data)
    code = r.num("B", "status")
    s = QUEUE_STATUS.get(code)
    if s not in _QUEUE_ALLOWED[op]:
        raise r.bad(f"status {s or code} is not an answer to {op}")
    if s != "OK":
        r.end()
        if op == "reserve":
            return None
        if op in ("ack", "release", "touch", "bury"):
            return JobOutcome(s)
        return False if op in ("pause", "resume", "delete") else None
    if op == "push":
        id, dup = r.num("Q", "id"), r.num("B", "dup")
        if dup > 1:
            raise r.bad(f"dup {dup}")
        r.end()
        return PushResult(id, dup == 1)
    if op == "reserve":
        id, token = r.num("Q", "id"), r.num("Q", "token")
        attempts, prio = r.num("I", "attempts"), r.num("h", "priority")
        return QueueJob(id, token, attempts, prio, r.rest(), queue)
    if op == "touch":
        vis = r.num("I", "visibility_ms")
        r.end()
        return JobOutcome(s, vis)
    if op == "peek":
        n = r.num("H", "n")
        entries = []
        for _ in range(n):
            id, attempts = r.num("Q", "id"), r.num("I", "attempts")
            prio, state = r.num("h", "priority"), r.num("B", "state")
            if state not in JOB_STATES:
                raise r.bad(f"unknown job state {state}")
            age = r.num("Q", "age_ms")
            rlen, plen = r.num("H", "reason_len"), r.num("I", "payload_len")
            reason = r.bytes(rlen, "reason")
            entries.append(PeekEntry(id, attempts, prio, JOB_STATES[state],
                                     age, reason, r.bytes(plen, "payload")))
        r.end()
        return entries
    if op in ("stats", "configure"):
        return _json_rest(r, op)
    if op in ("redrive", "purge"):
        n = r.num("Q", "count")
        r.end()
        return n
    r.end()
    return JobOutcome(s) if op in ("ack", "release", "bury") else True


def decode_topic(op: str, data: bytes) -> Any:
    """A ferry.topic reply: publish: receivers (int); subscribe: the
    sub_id; poll: TopicPoll, or None (NOT_FOUND: no such subscription);
    unsubscribe: True, or False (NOT_FOUND); stats: the JSON as a dict,
    or None (NOT_FOUND). A malformed reply, or a status the op never
    answers (or an OK poll without a message), raises
    InvalidArgumentError."""
    r = _R(TOPIC, op, data)
    code = r.num("B", "status")
    s = TOPIC_STATUS.get(code)
    if s not in _TOPIC_ALLOWED[op]:
        raise r.bad(f"status {s or code} is not an answer to {op}")
    if s == "NOT_FOUND":
        r.end()
        return False if op == "unsubscribe" else None
    if op == "publish":
        n = r.num("I", "receivers")
        r.end()
        return n
    if op == "subscribe":
        n = r.num("Q", "sub_id")
        r.end()
        return n
    if op == "poll":
        dropped = r.num("Q", "dropped")
        msgs: list[TopicMessage] = []
        if s == "OK":
            n = r.num("I", "n")
            if n == 0:
                raise r.bad("OK without a message (that is EMPTY)")
            if n > len(r.d):
                raise r.bad(f"n {n} larger than the payload")
            for _ in range(n):
                seq = r.num("Q", "seq")
                subj = r.bytes(r.num("H", "subject_len"), "subject")
                msgs.append(TopicMessage(
                    seq, subj.decode("utf-8", "replace"),
                    r.bytes(r.num("I", "len"), "payload")))
        r.end()
        return TopicPoll(msgs, dropped)
    if op == "stats":
        return _json_rest(r, op)
    r.end()
    return True


# ----------------------------------------------------------- helpers

class _Base:
    def __init__(self, client: Any, deadline_ms: int | None = None) -> None:
        self._c = client
        self.deadline_ms = deadline_ms

    def _call(self, service: str, key: bytes, payload: bytes,
              deadline_ms: int | None, then: Any) -> Any:
        kw = {"deadline_ms": deadline_ms or self.deadline_ms}
        if key:
            kw["key"] = key
        reply = self._c.call(service, payload, **kw)
        if hasattr(reply, "__await__"):
            async def done() -> Any:
                return then(await reply)
            return done()
        return then(reply)


class Cache(_Base):
    """ferry.cache: client.cache.get(key) etc. On an AsyncClient every
    method returns an awaitable."""

    def _do(self, op: str, deadline_ms: int | None, then: Any,
            **kw: Any) -> Any:
        key, p = encode_cache(op, **kw)
        return self._call(CACHE, key, p, deadline_ms,
                          lambda b: then(decode_cache(op, b)))

    def get(self, key: bytes | str, *, deadline_ms: int | None = None
            ) -> CacheItem | None:
        return self._do("get", deadline_ms, lambda t: t, key=key)

    def gat(self, key: bytes | str, ttl_ms: int, *,
            deadline_ms: int | None = None) -> CacheItem | None:
        return self._do("gat", deadline_ms, lambda t: t, key=key,
                        ttl_ms=ttl_ms)

    def get_many(self, keys: Sequence[bytes | str], *,
                 deadline_ms: int | None = None) -> list[CacheItem | None]:
        """One item (None for a miss) per key, in order."""
        return self._do("get_many", deadline_ms, lambda t: t, keys=keys)

    def _store(self, op: str, key: bytes | str, value: bytes | str,
               deadline_ms: int | None, **kw: Any) -> CacheWrite:
        return self._do(op, deadline_ms, lambda t: t, key=key, value=value,
                        **kw)

    def set(self, key: bytes | str, value: bytes | str, *, flags: int = 0,
            ttl_ms: int = 0, deadline_ms: int | None = None) -> CacheWrite:
        return self._store("set", key, value, deadline_ms, flags=flags,
                           ttl_ms=ttl_ms)

    def add(self, key: bytes | str, value: bytes | str, *, flags: int = 0,
            ttl_ms: int = 0, deadline_ms: int | None = None) -> CacheWrite:
        return self._store("add", key, value, deadline_ms, flags=flags,
                           ttl_ms=ttl_ms)

    def replace(self, key: bytes | str, value: bytes | str, *,
                flags: int = 0, ttl_ms: int = 0,
                deadline_ms: int | None = None) -> CacheWrite:
        return self._store("replace", key, value, deadline_ms, flags=flags,
                           ttl_ms=ttl_ms)

    def append(self, key: bytes | str, value: bytes | str, *,
               deadline_ms: int | None = None) -> CacheWrite:
        return self._store("append", key, value, deadline_ms)

    def prepend(self, key: bytes | str, value: bytes | str, *,
                deadline_ms: int | None = None) -> CacheWrite:
        return self._store("prepend", key, value, deadline_ms)

    def cas(self, key: bytes | str, value: bytes | str, cas: int, *,
            flags: int = 0, ttl_ms: int = 0,
            deadline_ms: int | None = None) -> CacheWrite:
        return self._store("cas", key, value, deadline_ms, cas=cas,
                           flags=flags, ttl_ms=ttl_ms)

    def delete(self, key: bytes | str, *,
               deadline_ms: int | None = None) -> bool:
        """True when deleted, False when there was no such item."""
        return self._do("delete", deadline_ms, lambda s: s, key=key)

    def touch(self, key: bytes | str, ttl_ms: int, *,
              deadline_ms: int | None = None) -> bool:
        return self._do("touch", deadline_ms, lambda s: s, key=key,
                        ttl_ms=ttl_ms)

    def incr(self, key: bytes | str, delta: int = 1, *,
             deadline_ms: int | None = None) -> int | None:
        """The new value, or None when there is no such item."""
        return self._do("incr", deadline_ms, lambda t: t, key=key,
                        delta=delta)

    def decr(self, key: bytes | str, delta: int = 1, *,
             deadline_ms: int | None = None) -> int | None:
        return self._do("decr", deadline_ms, lambda t: t, key=key,
                        delta=delta)

    def flush(self, delay_ms: int = 0, *,
              deadline_ms: int | None = None) -> None:
        return self._do("flush", deadline_ms, lambda s: None,
                        delay_ms=delay_ms)


class Kv(_Base):
    """ferry.kv: client.kv.get(key), put, delete, range, count, watch."""

    def _do(self, op: str, key: bytes | str, deadline_ms: int | None,
            then: Any, **kw: Any) -> Any:
        k, p = encode_kv(op, key, **kw)
        return self._call(KV, k, p, deadline_ms,
                          lambda b: then(decode_kv(op, b)))

    def get(self, key: bytes | str, *, deadline_ms: int | None = None
            ) -> KvEntry | None:
        """The entry, or None when absent (get_rev() also gives the
        store's revision)."""
        k = _b(key)
        return self._do("get", k, deadline_ms, lambda g: None if g.entry is
                        None else KvEntry(k, g.entry.value, g.entry.create_rev,
                                          g.entry.mod_rev, g.entry.version))

    def get_rev(self, key: bytes | str, *, deadline_ms: int | None = None
                ) -> KvGet:
        return self._do("get", key, deadline_ms, lambda g: g)

    def put(self, key: bytes | str, value: bytes | str, *,
            if_absent: bool = False, if_mod_rev: int | None = None,
            deadline_ms: int | None = None) -> KvWrite:
        cond, rev = ("absent", 0) if if_absent else \
            ("any", 0) if if_mod_rev is None else ("mod_rev", if_mod_rev)
        return self._do("put", key, deadline_ms, lambda w: w, value=value,
                        cond=cond, rev=rev)

    def delete(self, key: bytes | str, *, if_mod_rev: int | None = None,
               deadline_ms: int | None = None) -> KvWrite:
        cond, rev = ("any", 0) if if_mod_rev is None else \
            ("mod_rev", if_mod_rev)
        return self._do("delete", key, deadline_ms, lambda w: w, cond=cond,
                        rev=rev)

    def range(self, key: bytes | str, end: bytes | str | None = None, *,
              limit: int = 0, keys_only: bool = False,
              deadline_ms: int | None = None) -> KvRange:
        """Keys with prefix key (end None) or in [key, end)."""
        return self._do("range", key, deadline_ms, lambda x: x, end=end,
                        limit=limit, keys_only=keys_only)

    def count(self, key: bytes | str, end: bytes | str | None = None, *,
              deadline_ms: int | None = None) -> int:
        return self._do("count", key, deadline_ms, lambda t: t[1], end=end)

    def watch(self, key: bytes | str, *, prefix: bool = False,
              from_rev: int = 0, wait_ms: int = 0, max_events: int = 0,
              deadline_ms: int | None = None) -> KvWatch:
        """Events on key (or every key with that prefix) from from_rev (0:
        after now), waiting up to wait_ms for the first one. deadline_ms
        defaults to wait_ms + 5 s."""
        return self._do("watch", key, deadline_ms or wait_ms + 5000,
                        lambda x: x, prefix=prefix, from_rev=from_rev,
                        wait_ms=wait_ms, max_events=max_events)


class Id(_Base):
    """ferry.id: client.id.next(n) -> [int], client.id.decode(id)."""

    def next(self, count: int = 1, *,
             deadline_ms: int | None = None) -> list[int]:
        k, p = encode_id("next", count=count)
        return self._call(ID, k, p, deadline_ms,
                          lambda b: decode_id("next", b))

    def decode(self, id: int, *, deadline_ms: int | None = None) -> IdParts:
        k, p = encode_id("decode", id=id)
        return self._call(ID, k, p, deadline_ms,
                          lambda b: decode_id("decode", b))


_log = logging.getLogger("ferry.queue")
RESERVE_SLACK_MS = 5000  # a reserve's deadline: its wait and this
CONSUME_WAIT_MS = 20000  # consume's long poll, renewed while it runs


def _reserve_deadline(wait_ms: int) -> int:
    return wait_ms + RESERVE_SLACK_MS


class Queue(_Base):
    """ferry.queue: client.queue.push(queue, payload), reserve, ack,
    release, touch, bury, peek, stats, redrive, pause, resume, purge,
    delete, configure, and consume (a loop of reserve, handle, ack). On an
    AsyncClient every method returns an awaitable (AsyncQueue)."""

    def _do(self, op: str, queue: str | bytes | None,
            deadline_ms: int | None, **kw: Any) -> Any:
        key, p = encode_queue(op, queue, **kw)
        name = key.decode("utf-8", "replace")
        kwc = {"deadline_ms": deadline_ms or self.deadline_ms}
        if key or op != "stats":
            kwc["key"] = key
        reply = self._c.call(QUEUE, p, **kwc)
        if hasattr(reply, "__await__"):
            async def done() -> Any:
                return decode_queue(op, await reply, name)
            return done()
        return decode_queue(op, reply, name)

    def push(self, queue: str, payload: bytes | str, *, priority: int = 0,
             delay_ms: int = 0, visibility_ms: int = 0,
             max_deliveries: int = 0, dedup: bytes | str | None = None,
             deadline_ms: int | None = None) -> PushResult:
        """Adds a job, answered once it is on disk. priority -32768..32767
        (higher first); delay_ms before it is ready; visibility_ms and
        max_deliveries 0 take the queue's settings; dedup: a push with an
        id seen within the queue's dedup window stores nothing and
        answers the first push's id with dup True."""
        return self._do("push", queue, deadline_ms, payload=payload,
                        priority=priority, delay_ms=delay_ms,
                        visibility_ms=visibility_ms,
                        max_deliveries=max_deliveries, dedup=dedup)

    def reserve(self, queue: str, *, wait_ms: int = 0,
                visibility_ms: int = 0,
                deadline_ms: int | None = None) -> QueueJob | None:
        """The next ready job (highest priority, then oldest), reserved
        for visibility_ms (0: the job's or the queue's); with none ready,
        waits up to wait_ms (at most 600000) for one, then None. The
        call's deadline defaults to wait_ms + 5 s, so ferryd answers
        EMPTY before the deadline would."""
        return self._do("reserve", queue,
                        deadline_ms or _reserve_deadline(wait_ms),
                        wait_ms=wait_ms, visibility_ms=visibility_ms)

    def ack(self, queue: str, id: int, token: int, *,
            deadline_ms: int | None = None) -> JobOutcome:
        """Removes a reserved job: OK, STALE (token no longer holds it)
        or NOT_FOUND."""
        return self._do("ack", queue, deadline_ms, id=id, token=token)

    def release(self, queue: str, id: int, token: int, *,
                delay_ms: int = 0, backoff: bool = False,
                deadline_ms: int | None = None) -> JobOutcome:
        """Makes a reserved job ready again, after delay_ms, or (backoff
        True) after the queue's backoff_ms entry for its attempt. A job at
        its max_deliveries goes to the dead-letter queue instead."""
        return self._do("release", queue, deadline_ms, id=id, token=token,
                        delay_ms=delay_ms, backoff=backoff)

    def touch(self, queue: str, id: int, token: int, *,
              visibility_ms: int = 0,
              deadline_ms: int | None = None) -> JobOutcome:
        """Extends a reservation to visibility_ms from now (0: the job's
        or the queue's); the outcome's visibility_ms is the time left."""
        return self._do("touch", queue, deadline_ms, id=id, token=token,
                        visibility_ms=visibility_ms)

    def bury(self, queue: str, id: int, token: int,
             reason: bytes | str = b"", *,
             deadline_ms: int | None = None) -> JobOutcome:
        """Moves a reserved job to the queue's dead-letter queue with
        reason (at most 1024 bytes). A queue without one:
        InvalidArgumentError."""
        return self._do("bury", queue, deadline_ms, id=id, token=token,
                        reason=reason)

    def peek(self, queue: str, which: str = "ready", limit: int = 10, *,
             deadline_ms: int | None = None) -> list[PeekEntry] | None:
        """Up to limit (1..1000) jobs without reserving them, in delivery
        order: which is "ready", "delayed", "dead" (the ready jobs of the
        dead-letter queue) or "reserved". None: no such queue."""
        return self._do("peek", queue, deadline_ms, which=which,
                        limit=limit)

    def stats(self, queue: str | None = None, *,
              deadline_ms: int | None = None) -> dict[str, Any] | None:
        """One queue's stats (docs/queues.md), or with queue None
        {"queues": [...]} for every queue (in a cluster every node's,
        each with its "node", and "nodes", "missing": docs/cluster.md).
        None: no such queue."""
        return self._do("stats", queue, deadline_ms)

    def redrive(self, queue: str, limit: int = 0, *,
                deadline_ms: int | None = None) -> int | None:
        """Moves up to limit (0: 10000) dead jobs back into queue,
        attempts reset; how many moved. None: no such queue."""
        return self._do("redrive", queue, deadline_ms, limit=limit)

    def pause(self, queue: str, *, deadline_ms: int | None = None) -> bool:
        """Stops deliveries (pushes are still taken)."""
        return self._do("pause", queue, deadline_ms)

    def resume(self, queue: str, *, deadline_ms: int | None = None) -> bool:
        """Delivers again after pause. False: no such queue."""
        return self._do("resume", queue, deadline_ms)

    def purge(self, queue: str, *,
              deadline_ms: int | None = None) -> int | None:
        """Removes ready and delayed jobs (at most 10000 a call); how many.
        None: no such queue."""
        return self._do("purge", queue, deadline_ms)

    def delete(self, queue: str, *, deadline_ms: int | None = None) -> bool:
        """Deletes an empty queue (one holding jobs: InvalidArgumentError).
        False: no such queue."""
        return self._do("delete", queue, deadline_ms)

    def configure(self, queue: str, *, deadline_ms: int | None = None,
                  **settings: Any) -> dict[str, Any]:
        """Changes the settings given (visibility_ms, max_deliveries,
        dedup_window_ms, dead_letter, backoff_ms, paused); answers the
        queue's settings now."""
        return self._do("configure", queue, deadline_ms, settings=settings)

    def _settle(self, job: QueueJob, error: BaseException | None,
                on_error: Callable[[QueueJob, BaseException], Any] | None
                ) -> Any:
        """After the handler: ack, or on error release by backoff."""
        if error is None:
            out = self.ack(job.queue, job.id, job.token)
        else:
            if on_error is not None:
                on_error(job, error)
            else:
                _log.warning("ferry.queue '%s': job %d failed (attempt %d): "
                             "%r; released", job.queue, job.id,
                             job.attempts, error)
            out = self.release(job.queue, job.id, job.token, backoff=True)
        if not out:
            _log.warning("ferry.queue '%s': job %d: %s %s", job.queue,
                         job.id, "ack" if error is None else "release",
                         out.status)
        return out

    def consume(self, queue: str,
                handler: Callable[[QueueJob], Any], *, credit: int = 1,
                wait_ms: int = CONSUME_WAIT_MS, visibility_ms: int = 0,
                max_jobs: int | None = None,
                stop: threading.Event | None = None,
                on_error: Callable[[QueueJob, BaseException], Any] | None
                = None) -> int:
        """Serves queue: keeps credit reserves in flight (held by ferryd
        as long polls of wait_ms, renewed), calls handler(job) for each
        job in this thread, one at a time, then acks it; a handler that
        raises gets the job released by the queue's backoff_ms (and
        on_error(job, exc) called, else a warning logged). Returns the
        number of jobs handled once max_jobs were handled or stop is set
        (checked at least twice a second); the reserves still in flight
        are then cancelled, and a job one of them already got is released
        at once. A job reserved ahead of its turn spends its visibility
        waiting: keep credit * handling time below the visibility. A
        reserve's FerryError ends consume with that error."""
        if credit < 1:
            raise ValueError("credit must be at least 1")
        handled = 0
        flying: set[concurrent.futures.Future[bytes]] = set()
        key, p = encode_queue("reserve", queue, wait_ms=wait_ms,
                              visibility_ms=visibility_ms)
        name = key.decode("utf-8", "replace")

        def more() -> bool:
            return (max_jobs is None or handled < max_jobs) and \
                not (stop is not None and stop.is_set())

        try:
            while more():
                while len(flying) < credit:
                    flying.add(self._c.submit(
                        QUEUE, p, key=key,
                        deadline_ms=_reserve_deadline(wait_ms)))
                done, _ = concurrent.futures.wait(
                    flying, timeout=0.5,
                    return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done:
                    flying.discard(fut)
                    job = decode_queue("reserve", fut.result(), name)
                    if job is None:
                        continue
                    if not more():
                        self.release(job.queue, job.id, job.token)
                        continue
                    err: BaseException | None = None
                    try:
                        handler(job)
                    except Exception as e:  # noqa: BLE001
                        err = e
                    self._settle(job, err, on_error)
                    handled += 1
        finally:
            for fut in flying:
                fut.cancel()
            for fut in flying:
                try:
                    job = decode_queue("reserve", fut.result(10), name)
                except Exception:  # noqa: BLE001
                    continue
                if job is not None:
                    self.release(job.queue, job.id, job.token)
        return handled


class AsyncQueue(Queue):
    """client.queue on an AsyncClient: every method is awaited; consume
    runs credit tasks."""

    async def consume(  # type: ignore[override]
            self, queue: str,
            handler: Callable[[QueueJob], Awaitable[Any] | Any], *,
            credit: int = 1, wait_ms: int = CONSUME_WAIT_MS,
            visibility_ms: int = 0, max_jobs: int | None = None,
            stop: asyncio.Event | None = None,
            on_error: Callable[[QueueJob, BaseException], Any] | None = None
    ) -> int:
        """Serves queue with credit tasks, each a loop of reserve (a long
        poll of wait_ms, renewed), await handler(job) (a coroutine
        function or a plain one), ack; a handler that raises gets the job
        released by the queue's backoff_ms (on_error(job, exc) called,
        else a warning logged). Returns the number handled once max_jobs
        were handled or stop is set: tasks waiting on a reserve are then
        cancelled (with it), tasks busy with a job finish it first. A
        reserve's FerryError ends consume with that error."""
        if credit < 1:
            raise ValueError("credit must be at least 1")
        ended = stop if stop is not None else asyncio.Event()
        counts = {"started": 0, "handled": 0}
        reserving: set[asyncio.Task[Any]] = set()

        def more() -> bool:
            return not ended.is_set() and \
                (max_jobs is None or counts["started"] < max_jobs)

        async def settle(job: QueueJob, err: BaseException | None) -> None:
            if err is None:
                out = await self.ack(job.queue, job.id, job.token)
            else:
                if on_error is not None:
                    r = on_error(job, err)
                    if inspect.isawaitable(r):
                        await r
                else:
                    _log.warning("ferry.queue '%s': job %d failed (attempt "
                                 "%d): %r; released", job.queue, job.id,
                                 job.attempts, err)
                out = await self.release(job.queue, job.id, job.token,
                                         backoff=True)
            if not out:
                _log.warning("ferry.queue '%s': job %d: %s %s", job.queue,
                             job.id, "ack" if err is None else "release",
                             out.status)

        async def one() -> None:
            me = asyncio.current_task()
            assert me is not None
            while more():
                reserving.add(me)
                try:
                    job = await self.reserve(queue, wait_ms=wait_ms,
                                             visibility_ms=visibility_ms)
                finally:
                    reserving.discard(me)
                if job is None:
                    continue
                if not more():
                    await self.release(job.queue, job.id, job.token)
                    return
                counts["started"] += 1
                err: BaseException | None = None
                try:
                    r = handler(job)
                    if inspect.isawaitable(r):
                        await r
                except Exception as e:  # noqa: BLE001
                    err = e
                await settle(job, err)
                counts["handled"] += 1
                if max_jobs is not None and counts["handled"] >= max_jobs:
                    ended.set()

        tasks = {asyncio.ensure_future(one()) for _ in range(credit)}
        watch = asyncio.ensure_future(ended.wait())
        try:
            while tasks:
                done, _ = await asyncio.wait(
                    tasks | {watch}, return_when=asyncio.FIRST_COMPLETED)
                for t in done - {watch}:
                    tasks.discard(t)
                    t.result()  # a task's error ends consume
                if watch in done:
                    for t in list(reserving):
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    tasks.clear()
        finally:
            watch.cancel()
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return counts["handled"]


POLL_SLACK_MS = 5000  # a poll's deadline: its wait and this
MESSAGES_WAIT_MS = 25000  # messages()'s long poll, below topic_idle_ms
_RETRY_MAX_S = 2.0  # messages(): the longest pause before polling again


class Topic(_Base):
    """ferry.topic: client.topic.publish(subject, payload), subscribe,
    poll, unsubscribe, stats, and messages (a subscriber's loop). On an
    AsyncClient every method returns an awaitable and messages is an
    async iterator (AsyncTopic)."""

    def _do(self, op: str, deadline_ms: int | None, **kw: Any) -> Any:
        key, p = encode_topic(op, **kw)
        return self._call(TOPIC, key, p, deadline_ms,
                          lambda b: decode_topic(op, b))

    def publish(self, subject: str, payload: bytes | str = b"", *,
                deadline_ms: int | None = None) -> int:
        """Publishes payload on subject (dot-separated tokens, not under
        "ferry."); answers the number of subscriptions it reached (a
        group counts once; 0: nobody listens, nothing is kept)."""
        return self._do("publish", deadline_ms, subject=subject,
                        payload=payload)

    def subscribe(self, pattern: str, group: str | None = None,
                  max_pending: int = 0, policy: str = "drop_oldest", *,
                  deadline_ms: int | None = None) -> int:
        """Subscribes to pattern ("*" one token, a last ">" the rest);
        answers the sub_id. group: share the messages of (pattern, group)
        with its other members, each message to one. max_pending: the
        buffer (0: 1000, at most 65536); when it is full, policy
        "drop_oldest" drops the oldest message (told as dropped), "close"
        closes the subscription (its next poll: SlowConsumerError). Poll it
        more often than topic_idle_ms (30 s) or it expires."""
        return self._do("subscribe", deadline_ms, pattern=pattern,
                        group=group, max_pending=max_pending, policy=policy)

    def poll(self, sub_id: int, wait_ms: int = 0, max_msgs: int = 0, *,
             deadline_ms: int | None = None) -> TopicPoll | None:
        """Up to max_msgs (0: 1000) messages, oldest first, waiting up to
        wait_ms (at most 600000) for the first: TopicPoll(messages,
        dropped), messages empty when the wait passed; dropped is the gap
        since the previous answer. None: the subscription is gone
        (unsubscribed, expired, or closed and already told). A subscription
        closed by policy "close" raises SlowConsumerError once. The call's
        deadline defaults to wait_ms + 5 s. Keep one poll per subscription
        in flight: a second one ends the first (empty)."""
        return self._do("poll", deadline_ms or wait_ms + POLL_SLACK_MS,
                        sub_id=sub_id, wait_ms=wait_ms, max_msgs=max_msgs)

    def unsubscribe(self, sub_id: int, *,
                    deadline_ms: int | None = None) -> bool:
        """Drops the subscription and its buffer; False: it was gone."""
        return self._do("unsubscribe", deadline_ms, sub_id=sub_id)

    def stats(self, sub_id: int | None = None, *,
              deadline_ms: int | None = None) -> dict[str, Any] | None:
        """ferry.topic's totals (docs/topics.md; with "subs" for a caller
        who may see internals), or with sub_id that subscription's object;
        None: no such subscription."""
        return self._do("stats", deadline_ms, sub_id=sub_id)

    def messages(self, pattern: str, group: str | None = None,
                 max_pending: int = 0, policy: str = "drop_oldest", *,
                 wait_ms: int = MESSAGES_WAIT_MS, max_msgs: int = 0,
                 stop: threading.Event | None = None
                 ) -> Iterator[TopicMessage | TopicGap]:
        """Subscribes to pattern and yields its messages as they come
        (TopicMessage), with a TopicGap before the messages of an answer
        that tells dropped ones, and TopicGap(0, resubscribed=True) when
        the subscription had expired and was made again (messages may
        have been missed). One poll of wait_ms is kept in flight while
        the loop waits; take each message within topic_idle_ms (30 s) or
        the subscription expires. A lost connection or a DEADLINE polls
        again (the client reconnects by itself); other FerryErrors end the
        loop, SlowConsumerError among them (policy "close": too slow). Ends
        when stop is set (looked at twice a second, the poll in flight
        cancelled) or the generator is closed (a break; with CPython at
        once, else use contextlib.closing); it then unsubscribes.
        Messages of an answer not yet yielded then are lost."""
        if wait_ms < 1:
            raise ValueError("wait_ms must be at least 1")  # would spin
        encode_topic("poll", wait_ms=wait_ms, max_msgs=max_msgs)  # checked
        sub_kw = {"pattern": pattern, "group": group,
                  "max_pending": max_pending, "policy": policy}
        sub = self.subscribe(**sub_kw)
        pause = 0.0
        try:
            while stop is None or not stop.is_set():
                _, p = encode_topic("poll", sub_id=sub, wait_ms=wait_ms,
                                    max_msgs=max_msgs)
                fut = self._c.submit(TOPIC, p,
                                     deadline_ms=wait_ms + POLL_SLACK_MS)
                try:
                    while True:
                        try:
                            raw = fut.result(None if stop is None else 0.5)
                            break
                        except concurrent.futures.TimeoutError:
                            if stop is not None and stop.is_set():
                                fut.cancel()
                                return
                except (DeadlineError, _ConnectionError):
                    if stop is not None and stop.wait(pause):
                        return
                    if stop is None:
                        time.sleep(pause)
                    pause = min(_RETRY_MAX_S, pause * 2 or 0.05)
                    continue
                pause = 0.0
                got = decode_topic("poll", raw)
                if got is None:
                    sub = self.subscribe(**sub_kw)
                    yield TopicGap(0, resubscribed=True)
                    continue
                if got.dropped:
                    yield TopicGap(got.dropped)
                for m in got.messages:
                    yield m
        finally:
            try:
                self.unsubscribe(sub)
            except FerryError:
                pass  # gone, or the client closed: it expires


class AsyncTopic(Topic):
    """client.topic on an AsyncClient: every method is awaited; messages
    is an async iterator."""

    async def messages(  # type: ignore[override]
            self, pattern: str, group: str | None = None,
            max_pending: int = 0, policy: str = "drop_oldest", *,
            wait_ms: int = MESSAGES_WAIT_MS, max_msgs: int = 0,
            stop: asyncio.Event | None = None
    ) -> AsyncIterator[TopicMessage | TopicGap]:
        """The async iterator of Topic.messages (async for m in ...):
        the same messages and gap notices, one poll in flight while it
        waits. Ends when stop is set (the poll in flight cancelled), the
        task is cancelled, or the iterator is closed (aclose(), or
        contextlib.aclosing around a loop that breaks); it then
        unsubscribes."""
        if wait_ms < 1:
            raise ValueError("wait_ms must be at least 1")
        encode_topic("poll", wait_ms=wait_ms, max_msgs=max_msgs)
        sub_kw = {"pattern": pattern, "group": group,
                  "max_pending": max_pending, "policy": policy}
        sub = await self.subscribe(**sub_kw)
        pause = 0.0
        try:
            while stop is None or not stop.is_set():
                poll = asyncio.ensure_future(self.poll(
                    sub, wait_ms, max_msgs))
                try:
                    if stop is not None:
                        halt = asyncio.ensure_future(stop.wait())
                        try:
                            await asyncio.wait(
                                {poll, halt},
                                return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            halt.cancel()
                        if not poll.done():
                            poll.cancel()
                            await asyncio.gather(poll,
                                                 return_exceptions=True)
                            return
                    got = await poll
                except (DeadlineError, _ConnectionError):
                    await asyncio.sleep(pause)
                    pause = min(_RETRY_MAX_S, pause * 2 or 0.05)
                    continue
                finally:
                    if not poll.done():
                        poll.cancel()
                pause = 0.0
                if got is None:
                    sub = await self.subscribe(**sub_kw)
                    yield TopicGap(0, resubscribed=True)
                    continue
                if got.dropped:
                    yield TopicGap(got.dropped)
                for m in got.messages:
                    yield m
        finally:
            try:
                await self.unsubscribe(sub)
            except FerryError:
                pass


def decode_cluster(reply: bytes) -> dict[str, Any]:
    """ferry.cluster's JSON document; not a JSON object: INVALID."""
    try:
        doc = json.loads(bytes(reply))
    except ValueError as e:
        raise InvalidArgumentError(
            message=f"{CLUSTER} reply: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgumentError(message=f"{CLUSTER} reply: not an object")
    return doc


class ServantsMixin:
    """client.cache, client.kv, client.id, client.queue, client.topic
    (made on first use), and client.cluster()."""

    def cluster(self, *, deadline_ms: int | None = None) -> Any:
        """This node's view of its cluster (ferry.cluster, docs/cluster.md)
        as a dict: {"enabled": False} on a single node, else "node",
        "epoch", "fenced", "members" (each with "vbuckets", "link"...).
        Needs what ferry services needs (the admin token when ferryd has
        one). On an AsyncClient, an awaitable."""
        return _Base(self)._call(CLUSTER, b"", b"", deadline_ms,
                                 decode_cluster)

    @property
    def cache(self) -> Cache:
        return self.__dict__.setdefault("_ferry_cache", Cache(self))

    @property
    def kv(self) -> Kv:
        return self.__dict__.setdefault("_ferry_kv", Kv(self))

    @property
    def id(self) -> Id:
        return self.__dict__.setdefault("_ferry_id", Id(self))

    @property
    def queue(self) -> Queue:
        q = self.__dict__.get("_ferry_queue")
        if q is None:
            cls = AsyncQueue if inspect.iscoroutinefunction(
                getattr(self, "call", None)) else Queue
            q = self.__dict__.setdefault("_ferry_queue", cls(self))
        return q

    @property
    def topic(self) -> Topic:
        t = self.__dict__.get("_ferry_topic")
        if t is None:
            cls = AsyncTopic if inspect.iscoroutinefunction(
                getattr(self, "call", None)) else Topic
            t = self.__dict__.setdefault("_ferry_topic", cls(self))
        return t
