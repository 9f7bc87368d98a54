# SPDX-License-Identifier: MIT
"""Helpers for ferryd's built-in services ferry.cache, ferry.kv and ferry.id
(docs/services.md): client.cache, client.kv and client.id on Client and
AsyncClient encode the request payloads and decode the replies.

    c = ferry.Client()
    cas = c.cache.set(b"user:1", b"alice", ttl_ms=60_000)
    item = c.cache.get(b"user:1")          # CacheItem or None
    rev = c.kv.put(b"cfg/a", b"1").rev      # KvWrite
    ids = c.id.next(10)                     # list of int

The encode_* / decode_* functions are the codec (tests/vectors/
client_payloads.json); a malformed reply raises InvalidArgumentError.
ferryd's errors (TOO_BIG, OVERLOADED, INVALID_ARGUMENT ...) are raised as
their FerryError subclass by the call itself.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import InvalidArgumentError

CACHE, KV, ID = "ferry.cache", "ferry.kv", "ferry.id"
STATUS = {0: "OK", 1: "NOT_FOUND", 2: "NOT_STORED", 3: "EXISTS"}
CACHE_OPS = {"get": 1, "get_many": 2, "set": 3, "add": 4, "replace": 5,
             "append": 6, "prepend": 7, "cas": 8, "delete": 9, "incr": 10,
             "decr": 11, "touch": 12, "gat": 13, "flush": 14}
KV_OPS = {"get": 1, "put": 2, "delete": 3, "range": 4, "count": 5,
          "watch": 6}
ID_OPS = {"next": 1, "decode": 2}
COND = {"any": 0, "absent": 1, "mod_rev": 2}
U64_MAX = (1 << 64) - 1


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


class ServantsMixin:
    """client.cache, client.kv, client.id (made on first use)."""

    @property
    def cache(self) -> Cache:
        return self.__dict__.setdefault("_ferry_cache", Cache(self))

    @property
    def kv(self) -> Kv:
        return self.__dict__.setdefault("_ferry_kv", Kv(self))

    @property
    def id(self) -> Id:
        return self.__dict__.setdefault("_ferry_id", Id(self))
