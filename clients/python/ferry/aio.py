# SPDX-License-Identifier: MIT
"""ferry.AsyncClient: the caller on asyncio.

One pipelined connection per client: every call is a future in a table
keyed by id, filled by the protocol's data_received. Requests written in
one turn of the loop leave in one write. Cancelling the task that awaits a
call sends CANCEL to ferryd. Lost connections fail the calls in flight
with ConnectionError; the next call reconnects (with backoff) within its
deadline. PINGs go out when the connection is idle, and a ferryd silent
for three of its heartbeats is taken for dead.
"""
from __future__ import annotations

import asyncio
import heapq
import select
import socket
import time
from typing import Any, Iterable
from . import _proto as P
from ._common import (CALL_SLACK_MS, CONNECT_TIMEOUT_MS, DEFAULT_HEARTBEAT_MS,
                      RECONNECT_MAX_MS, RECONNECT_MIN_MS, Backoff, Hello,
                      check_call, check_identity, connection_error, error_message,
                      lost_message, parse_addr, parse_hello_answer,
                      safety_ms)
from .errors import FerryError
from .servants import ServantsMixin

_unpack_header = P.HEADER.unpack_from
_REQ_HEAD = P._REQ_HEAD
_monotonic = time.monotonic


class _Protocol(asyncio.Protocol):
    """One connection: the handshake, then frames into the client."""

    def __init__(self, client: "AsyncClient") -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.hello: Hello | None = None
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Hello] = self.loop.create_future()
        self.alive = True
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.wbuf: list[bytes] = []
        self.flush_scheduled = False
        self.last_recv = self.last_send = _monotonic()
        self.max_body = P.DEFAULT_MAX_BODY
        self.peek: select.poll | None = None
        self.input_waiter: asyncio.Future[None] | None = None

    def has_input(self) -> bool:
        """Whether the socket has bytes (or ferryd's close) the loop has
        not handed over yet."""
        return self.peek is not None and bool(self.peek.poll(0))

    def _input_seen(self) -> None:
        w = self.input_waiter
        if w is not None:
            self.input_waiter = None
            if not w.done():
                w.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.peek = select.poll()
            self.peek.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:  # noqa: C901
        self.last_recv = _monotonic()
        if self.input_waiter is not None:
            self._input_seen()
        if self.buf:
            self.buf += data
            data = self.buf  # type: ignore[assignment]
        pos = 0
        end_all = len(data)
        pending = self.pending
        while end_all - pos >= 16:
            body_len, ftype, _fl, _r, fid = _unpack_header(data, pos)
            end = pos + 16 + body_len
            if end > end_all:
                if body_len > self.max_body:
                    self._fail_conn(connection_error(
                        self.client.addr, f"ferryd sent a frame of "
                                          f"{body_len} bytes"))
                    return
                break
            if ftype == 4:  # REPLY
                fut = pending.pop(fid, None)
                if fut is not None and not fut.done():
                    fut.set_result(bytes(data[pos + 16:end]))
            elif ftype == 5:  # ERROR
                try:
                    code, msg = error_message(bytes(data[pos + 16:end]))
                except P.WireError:
                    self._fail_conn(connection_error(
                        self.client.addr, "ferryd sent a malformed ERROR"))
                    return
                if fid == 0:
                    if self.hello is None:
                        if not self.ready.done():
                            self.ready.set_exception(
                                FerryError.of(code, msg))
                        self._fail_conn(FerryError.of(code, msg))
                    else:
                        self._fail_conn(connection_error(
                            self.client.addr, lost_message(code, msg)))
                    return
                fut = pending.pop(fid, None)
                if fut is not None and not fut.done():
                    fut.set_exception(FerryError.of(code, msg))
            elif ftype == 9:  # PING
                pass
            elif ftype == 2 and self.hello is None:
                try:
                    self.hello = parse_hello_answer(
                        P.Frame(2, 0, 0, bytes(data[pos + 16:end])))
                except FerryError as e:
                    if not self.ready.done():
                        self.ready.set_exception(e)
                    self._fail_conn(e)
                    return
                self.max_body = self.client._max_frame or max(
                    self.hello.max_frame, P.DEFAULT_MAX_BODY)
                if not self.ready.done():
                    self.ready.set_result(self.hello)
            else:
                self._fail_conn(connection_error(
                    self.client.addr,
                    f"ferryd sent an unexpected frame (type {ftype})"))
                return
            pos = end
        if pos == end_all:
            if self.buf:
                self.buf = bytearray()
        elif data is self.buf:
            del self.buf[:pos]
        else:
            self.buf = bytearray(data[pos:])

    def connection_lost(self, exc: Exception | None) -> None:
        why = f"connection closed by ferryd ({self.client.addr})"
        if exc is not None:
            why = f"connection to {self.client.addr} lost: {exc}"
        self._fail_conn(connection_error(self.client.addr, why))

    def _fail_conn(self, err: FerryError) -> None:
        if not self.alive:
            return
        self.alive = False
        self._input_seen()
        if not self.ready.done():
            self.ready.set_exception(err)
        if self.transport is not None:
            self.transport.abort()
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(FerryError.of(16, err.message))
        self.client._lost(self, err)

    def write(self, *parts: bytes) -> None:
        self.wbuf.extend(parts)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.wbuf or not self.alive or self.transport is None:
            self.wbuf.clear()
            return
        data = self.wbuf[0] if len(self.wbuf) == 1 else b"".join(self.wbuf)
        self.wbuf.clear()
        self.transport.write(data)
        self.last_send = _monotonic()


class AsyncClient(ServantsMixin):
    """A caller of ferry services on asyncio.

        async with ferry.AsyncClient("127.0.0.1:7700") as c:
            reply = await c.call("echo", b"hi")

    The arguments are those of ferry.Client. `await c.connect()` (or
    `async with`) connects at once; a call connects when needed.
    """

    def __init__(self, addr: str | None = None, *, token: str | None = None,
                 name: str = "python-asyncio",
                 heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
                 max_frame: int = 0,
                 connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
                 reconnect_min_ms: int = RECONNECT_MIN_MS,
                 reconnect_max_ms: int = RECONNECT_MAX_MS) -> None:
        self._addr = parse_addr(addr)
        self.addr = self._addr.text
        self._token, self._name = check_identity(token, name, max_frame)
        self._heartbeat_ms = heartbeat_ms
        self._max_frame = max_frame
        self._connect_timeout = connect_timeout_ms / 1000.0
        self._backoff = Backoff(reconnect_min_ms, reconnect_max_ms)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._next_id = 1
        self._closed = False
        self._last_error: FerryError | None = None
        self._hello: Hello | None = None
        self._timers: list[tuple[float, int, _Protocol, Any]] = []
        self._seq = 0
        self._ticker: asyncio.TimerHandle | None = None
        self._service_cache: dict[str, bytes] = {}
        # How many times a connection was made (HELLO_OK received).
        self.connects = 0

    @property
    def server(self) -> Hello | None:
        """What ferryd said in its last HELLO_OK (None before)."""
        return self._hello

    async def connect(self) -> None:
        """Connects now if not connected (one attempt, no backoff)."""
        await self._ensure(_monotonic() + self._connect_timeout, once=True)

    async def __aenter__(self) -> "AsyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection; calls in flight fail with
        ConnectionError."""
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        p = self._proto
        if p is not None:
            p._fail_conn(connection_error(self.addr, "client closed"))

    # ------------------------------------------------------- connecting

    async def _connect_once(self, deadline_at: float) -> _Protocol:
        loop = asyncio.get_running_loop()
        a = self._addr
        left = max(0.001, min(self._connect_timeout,
                              deadline_at - _monotonic()))

        async def attempt() -> _Protocol:
            if a.family == socket.AF_UNIX:
                _, proto = await loop.create_unix_connection(
                    lambda: _Protocol(self), a.target)  # type: ignore
            else:
                host, port = a.target  # type: ignore[misc]
                _, proto = await loop.create_connection(
                    lambda: _Protocol(self), host, port)
            proto.transport.write(P.encode_hello(  # type: ignore
                P.ROLE_CALLER, self._heartbeat_ms, self._name, self._token,
                max_frame=self._max_frame))
            try:
                await proto.ready
            except BaseException:
                proto._fail_conn(connection_error(self.addr, "handshake"))
                raise
            return proto  # type: ignore[no-any-return]

        try:
            proto = await asyncio.wait_for(attempt(), left)
        except asyncio.TimeoutError:
            raise OSError("timed out connecting") from None
        self._proto = proto
        self._hello = proto.hello
        self.connects += 1
        self._backoff.reset()
        self._arm_ticker()
        return proto

    async def _ensure(self, deadline_at: float,
                      once: bool = False) -> _Protocol:
        while True:
            p = self._proto
            if p is not None and p.alive:
                return p
            if self._closed:
                raise connection_error(self.addr, "client closed")
            now = _monotonic()
            if now >= deadline_at:
                raise self._last_error or connection_error(
                    self.addr, "not connected")
            if self._connecting is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._connecting),
                                           deadline_at - now)
                except (asyncio.TimeoutError, FerryError, OSError):
                    pass
                continue
            wait = self._backoff.not_before - now
            if wait > 0 and not once:
                await asyncio.sleep(min(wait, deadline_at - now))
                continue
            fut: asyncio.Future[_Protocol] = \
                asyncio.get_running_loop().create_future()
            self._connecting = fut
            try:
                p = await self._connect_once(deadline_at)
                fut.set_result(p)
                return p
            except FerryError as e:
                self._backoff.failed(_monotonic())
                self._last_error = e
                fut.set_exception(e)
                fut.exception()
                raise
            except OSError as e:
                self._backoff.failed(_monotonic())
                why = e.strerror or str(e) or type(e).__name__
                self._last_error = connection_error(
                    self.addr, f"connecting to '{self.addr}': {why}")
                fut.set_exception(self._last_error)
                fut.exception()
                if once:
                    raise self._last_error from None
            finally:
                self._connecting = None

    def _lost(self, proto: _Protocol, err: FerryError) -> None:
        self._last_error = err
        if self._proto is proto:
            self._proto = None

    # ------------------------------------------------------------ calls

    async def call(self, service: str, payload: bytes | str = b"", *,
                   deadline_ms: int | None = None,
                   key: bytes | str | None = None,
                   idempotent: bool = False) -> bytes:
        """Calls service; returns the reply's bytes or raises the
        FerryError subclass. Cancelling the awaiting task sends CANCEL."""
        started = _monotonic()
        p = await self._ready(deadline_ms or 0)
        if deadline_ms and _monotonic() - started > 0.001:
            # Time spent reconnecting counts against the deadline.
            deadline_ms = max(1, deadline_ms -
                              int((_monotonic() - started) * 1000))
        cid, fut, head, body = self._prepare(p, service, payload,
                                             deadline_ms, key, idempotent)
        p.write(head, body)
        try:
            return await fut
        except asyncio.CancelledError:
            if p.pending.pop(cid, None) is not None and p.alive:
                p.write(P.encode_cancel(cid))
            raise

    async def call_many(self, service: str,
                        payloads: Iterable[bytes | str], *,
                        deadline_ms: int | None = None,
                        key: bytes | str | None = None,
                        idempotent: bool = False,
                        return_exceptions: bool = False
                        ) -> list[bytes | FerryError]:
        """Calls service once per payload, all in flight at once (one
        write), and returns the replies in order; the first FerryError is
        raised, or with return_exceptions=True takes its place. Cancelling
        the awaiting task sends CANCEL for the calls still open."""
        started = _monotonic()
        p = await self._ready(deadline_ms or 0)
        if deadline_ms and _monotonic() - started > 0.001:
            deadline_ms = max(1, deadline_ms -
                              int((_monotonic() - started) * 1000))
        calls = []
        payloads = list(payloads)
        if not payloads:
            return []
        # The first call checks the arguments; the rest reuse them.
        cid, fut, head, body = self._prepare(p, service, payloads[0],
                                             deadline_ms, key, idempotent,
                                             timer=False)
        calls.append((cid, fut))
        wbuf = p.wbuf
        wbuf.append(head)
        wbuf.append(body)
        s = self._service_cache.get(service) or service.encode()
        k = b"" if key is None else (
            key.encode() if isinstance(key, str) else bytes(key))
        dl = deadline_ms or 0
        fixed = 8 + len(s) + len(k)
        max_frame = p.hello.max_frame  # type: ignore[union-attr]
        pack = _REQ_HEAD.pack
        flags = 1 if idempotent else 0
        pending = p.pending
        create = p.loop.create_future
        tail = s + k
        ls, lk = len(s), len(k)
        next_id = self._next_id
        try:
            for pl in payloads[1:]:
                if isinstance(pl, str):
                    pl = pl.encode()
                body_len = fixed + len(pl)
                if body_len > max_frame:
                    raise FerryError.of(
                        2, f"request body of {body_len} bytes is larger "
                           f"than ferryd's max_frame {max_frame}")
                cid = next_id
                next_id += 1
                fut = create()
                pending[cid] = fut
                calls.append((cid, fut))
                wbuf.append(pack(body_len, 3, flags, 0, cid, dl, ls, lk) +
                            tail)
                wbuf.append(pl)
        except BaseException:
            self._next_id = next_id
            for cid, _ in calls:
                pending.pop(cid, None)
            p.wbuf.clear()
            raise
        self._next_id = next_id
        hello = p.hello
        assert hello is not None
        self._seq += 1
        heapq.heappush(self._timers, (
            _monotonic() + (min(dl or hello.default_deadline_ms,
                                hello.max_deadline_ms) + CALL_SLACK_MS)
            / 1000.0, self._seq, p, [c for c, _ in calls]))
        p.write()
        out: list[bytes | FerryError] = []
        try:
            for cid, fut in calls:
                try:
                    out.append(await fut)
                except FerryError as e:
                    if not return_exceptions:
                        raise
                    out.append(e)
        except BaseException:
            for cid, fut in calls:
                if p.pending.pop(cid, None) is not None and p.alive:
                    p.write(P.encode_cancel(cid))
            raise
        return out

    async def _ready(self, dl: int) -> _Protocol:
        """The open connection: after reading what an idle one has, and
        connecting when there is none (with backoff, within the call's
        deadline)."""
        p = self._proto
        if p is not None and p.alive and not p.pending and \
                _monotonic() - p.last_recv > 0.001 and p.has_input():
            # ferryd sent something while nothing was asked: PINGs, or
            # its close (a restart). Let the loop read it before sending.
            w = p.input_waiter = \
                asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(w, 0.5)
            except asyncio.TimeoutError:
                pass
        if p is None or not p.alive:
            p = await self._ensure(_monotonic() +
                                   safety_ms(self._hello, dl) / 1000.0)
        return p

    def _prepare(self, p: _Protocol, service: str, payload: bytes | str,
                 deadline_ms: int | None, key: bytes | str | None,
                 idempotent: bool, timer: bool = True
                 ) -> tuple[int, "asyncio.Future[bytes]", bytes, bytes]:
        s, payload, k, dl = check_call(self._service_cache, service,
                                       payload, key, deadline_ms)
        body_len = 8 + len(s) + len(k) + len(payload)
        hello = p.hello
        assert hello is not None
        if body_len > hello.max_frame:
            raise FerryError.of(2, f"request body of {body_len} bytes is "
                                   f"larger than ferryd's max_frame "
                                   f"{hello.max_frame}")
        cid = self._next_id
        self._next_id = cid + 1
        fut: asyncio.Future[bytes] = p.loop.create_future()
        p.pending[cid] = fut
        if timer:
            self._seq += 1
            heapq.heappush(self._timers, (
                _monotonic() + (min(dl or hello.default_deadline_ms,
                                    hello.max_deadline_ms) + CALL_SLACK_MS)
                / 1000.0, self._seq, p, cid))
        head = _REQ_HEAD.pack(body_len, 3, 1 if idempotent else 0, 0, cid,
                              dl, len(s), len(k)) + s
        if k:
            head += k
        return cid, fut, head, payload

    # --------------------------------------------------------- timers

    def _arm_ticker(self) -> None:
        if self._ticker is None and not self._closed:
            self._ticker = asyncio.get_running_loop().call_later(
                0.05, self._tick)

    def _tick(self) -> None:
        """Every 50 ms: local deadlines, heartbeats both ways."""
        self._ticker = None
        now = _monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, p, ids = heapq.heappop(timers)
            for cid in (ids if isinstance(ids, list) else (ids,)):
                fut = p.pending.pop(cid, None)
                if fut is not None and not fut.done():
                    fut.set_exception(FerryError.of(
                        7, "no answer from ferryd before the call's "
                           "deadline"))
                    if p.alive:
                        p.write(P.encode_cancel(cid))
        p = self._proto
        if p is not None and p.alive and p.hello is not None:
            hb = p.hello.heartbeat_ms / 1000.0
            if self._heartbeat_ms and hb and now - p.last_recv > 3 * hb:
                p._fail_conn(connection_error(
                    self.addr, f"ferryd silent for "
                               f"{int((now - p.last_recv) * 1000)} ms, 3 x "
                               f"heartbeat {p.hello.heartbeat_ms} ms"))
            elif self._heartbeat_ms and \
                    now - p.last_send >= self._heartbeat_ms / 1000.0:
                p.write(P.PING_FRAME)
        if len(timers) > 4096:
            # Drop the timers of calls long answered.
            def live(t: tuple) -> bool:
                ids = t[3] if isinstance(t[3], list) else (t[3],)
                return any(i in t[2].pending for i in ids)
            self._timers = [t for t in timers if live(t)]
            heapq.heapify(self._timers)
        self._arm_ticker()
