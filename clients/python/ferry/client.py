# SPDX-License-Identifier: MIT
"""ferry.Client: the thread-safe synchronous caller.

Many threads share one pipelined connection. Each call gets an id and a
slot in a table; replies are matched by id. Whoever waits for an answer
reads the socket itself when nobody else does (a "leader": the thread that
sent a call reads its own reply, with no thread switch, which is what makes
a synchronous call loop fast); the others wait on their slot, filled by the
leader. A background thread reads for futures (submit()) when no caller
does, sends PINGs when the connection is idle, takes ferryd for dead after
three of its heartbeats of silence, and notices an idle connection that
ferryd closed.

A call made while the connection is down waits for a reconnection (with
backoff) within its deadline; calls in flight when a connection is lost
fail with ConnectionError.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import select
import struct
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterable

from . import _proto as P
from ._common import (CALL_SLACK_MS, CONNECT_TIMEOUT_MS, DEFAULT_HEARTBEAT_MS,
                      RECONNECT_MAX_MS, RECONNECT_MIN_MS, Backoff, Hello,
                      check_call, check_identity, connection_error, error_message,
                      lost_message, parse_addr, parse_hello_answer,
                      safety_ms)
from .errors import FerryError
from .servants import ServantsMixin

_HEADER = P.HEADER
_REQ_HEAD = P._REQ_HEAD
_unpack_header = P.HEADER.unpack_from
_monotonic = time.monotonic
_allocate_lock = threading.Lock
_REPLY = P.REPLY
_ERROR = P.ERROR

_READ_SIZE = 256 * 1024
_SEND_JOIN = 64 * 1024     # payloads up to this are joined to the header
_IDLE_CHECK_S = 0.001      # a connection idle this long is checked first
_RCV_TICK_US = 50000       # SO_RCVTIMEO: a reader looks at its clock


class _Call:
    """One call in flight: filled once, by whoever pops it from the table."""
    __slots__ = ("id", "lock", "result", "error", "done", "future",
                 "deadline_at")

    def __init__(self, cid: int, deadline_at: float,
                 future: "CallFuture | None") -> None:
        self.id = cid
        self.deadline_at = deadline_at
        self.future = future
        self.result: bytes | None = None
        self.error: FerryError | None = None
        self.done = False
        if future is None:
            self.lock: Any = _allocate_lock()
            self.lock.acquire()
        else:
            self.lock = None

    def finish(self, result: bytes | None, error: FerryError | None) -> None:
        self.result = result
        self.error = error
        self.done = True
        if self.lock is not None:
            self.lock.release()
            return
        fut = self.future
        assert fut is not None
        try:
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile


def _bg_main(ref: "weakref.ref[Client]", wake: threading.Event) -> None:
    """The background thread of a Client (see Client._bg_step)."""
    while True:
        c = ref()
        if c is None or c._closed:
            return
        wait = c._bg_step()
        del c
        if wait > 0:
            wake.wait(wait)
            wake.clear()


def _close_box(box: list[socket.socket | None]) -> None:
    """Closes the socket of a Client that was dropped without close()."""
    sock = box[0]
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


class CallFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A call's Future. cancel() sends CANCEL to ferryd; a cancelled
    call's result() raises ferry.CancelledError (which is also a
    concurrent.futures.CancelledError)."""

    def __init__(self) -> None:
        super().__init__()
        self._ferry_cancel: Callable[[], None] | None = None

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        if self._ferry_cancel is not None:
            self._ferry_cancel()
        return True

    def result(self, timeout: float | None = None) -> bytes:
        try:
            return super().result(timeout)  # type: ignore[no-any-return]
        except concurrent.futures.CancelledError as e:
            if isinstance(e, FerryError):
                raise
            raise FerryError.of(12, "cancelled by the caller") from None

    def exception(self, timeout: float | None = None
                  ) -> BaseException | None:
        try:
            return super().exception(timeout)
        except concurrent.futures.CancelledError:
            return FerryError.of(12, "cancelled by the caller")


class _Conn:
    """One open connection and what its handshake said."""
    __slots__ = ("sock", "hello", "poll", "peek", "alive", "last_recv",
                 "last_send", "peer_max")

    def __init__(self, sock: socket.socket, hello: Hello) -> None:
        self.sock = sock
        self.hello = hello
        self.poll = select.poll()
        self.poll.register(sock.fileno(), select.POLLIN)
        self.peek = select.poll()  # for has_input(), outside the read lock
        self.peek.register(sock.fileno(), select.POLLIN)
        self.alive = True
        self.last_recv = self.last_send = _monotonic()
        self.peer_max = hello.max_frame

    def has_input(self) -> bool:
        try:
            return bool(self.peek.poll(0))
        except RuntimeError:  # another thread is checking
            return False


class Client(ServantsMixin):
    """A caller of ferry services, safe to share between threads.

    Client(addr) connects at once (raising ConnectionError,
    UnauthorizedError, ...) unless connect=False, in which case the first
    call connects. addr is "host:port", "[v6]:port" or "unix:/path";
    None means $FERRY_ADDR, else 127.0.0.1:7700.

    heartbeat_ms is the client's promise to send something that often
    (PING when idle, from its background thread); ferryd then pings it
    too, and a ferryd silent for three of its heartbeats is taken for dead.
    0 announces none. max_frame (0: no limit of its own) is the largest
    reply body this client accepts; ferryd answers a larger reply with
    TOO_BIG.
    """

    def __init__(self, addr: str | None = None, *, token: str | None = None,
                 name: str = "python", heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
                 max_frame: int = 0, connect: bool = True,
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
        self._state_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._conn: _Conn | None = None
        self._pending: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._rbuf = bytearray(_READ_SIZE)
        self._rview = memoryview(self._rbuf)
        self._rstart = 0
        self._rend = 0
        self._last_error: FerryError | None = None
        self._closed = False
        self._hello: Hello | None = None
        self._service_cache: dict[str, bytes] = {}
        # How many times a connection was made (HELLO_OK received).
        self.connects = 0
        self._wake = threading.Event()
        # The thread holds the client only through a weak reference, so a
        # client dropped without close() is collected and its socket
        # closed (by the finalizer below).
        self._bg = threading.Thread(target=_bg_main,
                                    args=(weakref.ref(self), self._wake),
                                    name=f"ferry-client {self.addr}",
                                    daemon=True)
        self._bg_started = False
        self._sockbox: list[socket.socket | None] = [None]
        weakref.finalize(self, _close_box, self._sockbox)
        if connect:
            try:
                self.connect()
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------ public

    def connect(self) -> None:
        """Connects now if not connected (one attempt, no backoff)."""
        self._ensure(_monotonic() + self._connect_timeout, once=True)

    @property
    def server(self) -> Hello | None:
        """What ferryd said in its last HELLO_OK (None before)."""
        return self._hello

    def call(self, service: str, payload: bytes | str = b"", *,
             deadline_ms: int | None = None, key: bytes | str | None = None,
             idempotent: bool = False) -> bytes:
        """Calls service with payload; returns the reply's bytes or raises
        the FerryError subclass of the failure. deadline_ms None (or 0)
        takes ferryd's default deadline."""
        c = self._start(service, payload, deadline_ms, key, idempotent,
                        None)
        if not c.done:
            self._wait(c)
        if c.error is not None:
            raise c.error
        return c.result  # type: ignore[return-value]

    def call_many(self, service: str, payloads: Iterable[bytes | str], *,
                  deadline_ms: int | None = None,
                  key: bytes | str | None = None, idempotent: bool = False,
                  return_exceptions: bool = False
                  ) -> list[bytes | FerryError]:
        """Calls service once per payload, all in flight at once (sent in
        one write), and returns the replies in order. A failure raises the
        first FerryError, or with return_exceptions=True takes its place
        in the list."""
        calls: list[_Call] = []
        parts: list[bytes] = []
        conn = None
        try:
            for p in payloads:
                c, conn, head, body = self._prepare(
                    service, p, deadline_ms, key, idempotent, None)
                calls.append(c)
                parts.append(head)
                parts.append(body)
        except FerryError:
            for c in calls:
                self._pending.pop(c.id, None)
            raise
        if conn is not None:
            try:
                with self._write_lock:
                    conn.sock.sendall(b"".join(parts))
                conn.last_send = _monotonic()
            except OSError as e:
                self._lose(conn, connection_error(
                    self.addr, f"sending to {self.addr}: {e}"))
        out: list[bytes | FerryError] = []
        for c in calls:
            if not c.done:
                self._wait(c)
            if c.error is not None:
                if not return_exceptions:
                    for rest in calls:
                        if not rest.done:
                            self._cancel(rest)
                    raise c.error
                out.append(c.error)
            else:
                out.append(c.result)  # type: ignore[arg-type]
        return out

    def submit(self, service: str, payload: bytes | str = b"", *,
               deadline_ms: int | None = None,
               key: bytes | str | None = None,
               idempotent: bool = False) -> CallFuture:
        """Sends a call and returns at once with its Future
        (concurrent.futures): result() gives the reply or raises the
        FerryError; cancel() sends CANCEL to ferryd."""
        fut = CallFuture()
        try:
            c = self._start(service, payload, deadline_ms, key, idempotent,
                            fut)
        except FerryError as e:
            fut.set_exception(e)
            return fut
        fut._ferry_cancel = lambda: self._cancel(c)
        if not c.done:
            self._kick()
        return fut

    call_async = submit

    def close(self) -> None:
        """Closes the connection; calls in flight fail with
        ConnectionError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._state_lock:
            conn = self._conn
        if conn is not None:
            self._lose(conn, connection_error(self.addr, "client closed"))
        self._wake.set()
        if self._bg_started and threading.current_thread() is not self._bg:
            self._bg.join(5)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------- connecting

    def _handshake(self, sock: socket.socket, deadline_at: float) -> Hello:
        sock.sendall(P.encode_hello(P.ROLE_CALLER, self._heartbeat_ms,
                                    self._name, self._token,
                                    max_frame=self._max_frame))
        buf = bytearray()
        while True:
            left = deadline_at - _monotonic()
            if left <= 0:
                raise socket.timeout("no HELLO_OK in time")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed during the handshake")
            buf += chunk
            try:
                f, n = P.decode_frame(buf)
            except P.WireError as e:
                raise FerryError.of(1, f"bad answer to HELLO: {e}") from None
            if f is None:
                continue
            if f.type == P.PING:
                del buf[:n]
                continue
            hello = parse_hello_answer(f)
            del buf[:n]
            if buf:
                # Nothing but PINGs can follow before our first request.
                pass
            return hello

    def _connect_once(self, deadline_at: float) -> None:
        """One attempt; sets self._conn. Raises OSError or FerryError."""
        a = self._addr
        left = max(0.001, min(self._connect_timeout,
                              deadline_at - _monotonic()))
        sock = socket.socket(a.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(left)
            sock.connect(a.target)  # type: ignore[arg-type]
            if a.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = self._handshake(sock, _monotonic() + left)
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                            struct.pack("ll", 0, _RCV_TICK_US))
        except BaseException:
            sock.close()
            raise
        conn = _Conn(sock, hello)
        self._sockbox[0] = sock
        with self._state_lock:
            self._rstart = self._rend = 0
            self._conn = conn
            self._hello = hello
            self.connects += 1
        self._backoff.reset()
        if not self._bg_started:
            self._bg_started = True
            self._bg.start()
        self._wake.set()

    def _ensure(self, deadline_at: float, once: bool = False) -> _Conn:
        """The open connection, connecting (with backoff) until deadline_at
        when there is none."""
        while True:
            conn = self._conn
            if conn is not None and conn.alive:
                return conn
            if self._closed:
                raise connection_error(self.addr, "client closed")
            now = _monotonic()
            if now >= deadline_at:
                raise self._last_error or connection_error(
                    self.addr, "not connected")
            if not self._connect_lock.acquire(timeout=deadline_at - now):
                continue
            try:
                conn = self._conn
                if conn is not None and conn.alive:
                    return conn
                now = _monotonic()
                wait = self._backoff.not_before - now
                if wait > 0 and not once:
                    time.sleep(min(wait, max(0.0, deadline_at - now)))
                    continue
                try:
                    self._connect_once(deadline_at)
                except FerryError as e:
                    # ferryd answered and refused: no use trying again.
                    self._backoff.failed(_monotonic())
                    self._last_error = e
                    raise
                except OSError as e:
                    self._backoff.failed(_monotonic())
                    why = e.strerror or str(e) or type(e).__name__
                    if isinstance(e, TimeoutError):
                        why = "timed out connecting"
                    self._last_error = connection_error(
                        self.addr, f"connecting to '{self.addr}': {why}")
                    if once:
                        raise self._last_error from None
            finally:
                self._connect_lock.release()

    def _lose(self, conn: _Conn, err: FerryError) -> None:
        """Ends a connection: every call in flight on it fails with err."""
        with self._state_lock:
            if not conn.alive:
                return
            conn.alive = False
            if self._conn is conn:
                self._conn = None
            pending, self._pending = self._pending, {}
        self._last_error = err
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.sock.close()
        for c in list(pending.values()):
            c.finish(None, FerryError.of(16, err.message))

    # ------------------------------------------------------------ calls

    def _start(self, service: str, payload: bytes | str, deadline_ms: int |
               None, key: bytes | str | None, idempotent: bool,
               fut: CallFuture | None) -> _Call:
        c, conn, head, payload = self._prepare(service, payload, deadline_ms,
                                               key, idempotent, fut)
        try:
            with self._write_lock:
                if len(payload) <= _SEND_JOIN:
                    conn.sock.sendall(head + payload)
                else:
                    conn.sock.sendall(head)
                    conn.sock.sendall(payload)
            conn.last_send = _monotonic()
        except OSError as e:
            self._lose(conn, connection_error(
                self.addr, f"sending to {self.addr}: {e}"))
        return c

    def _prepare(self, service: str, payload: bytes | str,
                 deadline_ms: int | None, key: bytes | str | None,
                 idempotent: bool, fut: CallFuture | None
                 ) -> tuple[_Call, _Conn, bytes, bytes]:
        """Checks a call, gives it an id and a slot in the table; the
        request's head and payload, to be sent by the caller."""
        s, payload, k, dl = check_call(self._service_cache, service,
                                       payload, key, deadline_ms)
        now = _monotonic()
        started = now
        conn = self._conn
        if conn is None or not conn.alive or (
                not self._pending and now - conn.last_recv > _IDLE_CHECK_S
                and conn.has_input()):
            if conn is not None and conn.alive:
                # ferryd sent something while nothing was asked: PINGs,
                # or its close (a restart). Read it before sending.
                self._check_idle(conn)
            conn = self._ensure(now + safety_ms(self._hello, dl) / 1000.0)
            now = _monotonic()
            if dl and now > started:
                # Time spent reconnecting counts against the deadline.
                dl = max(1, dl - int((now - started) * 1000))
        body_len = 8 + len(s) + len(k) + len(payload)
        if body_len > conn.peer_max:
            raise FerryError.of(2, f"request body of {body_len} bytes is "
                                   f"larger than ferryd's max_frame "
                                   f"{conn.peer_max}")
        cid = next(self._ids)
        hello = conn.hello
        c = _Call(cid, now + (min(dl or hello.default_deadline_ms,
                                  hello.max_deadline_ms) + CALL_SLACK_MS)
                  / 1000.0, fut)
        head = _REQ_HEAD.pack(body_len, 3, 1 if idempotent else 0, 0, cid,
                              dl, len(s), len(k)) + s
        if k:
            head += k
        # The dict's own atomicity and the alive check after the insert
        # keep a call from outliving a connection that _lose() ends.
        self._pending[cid] = c
        if not conn.alive:
            self._pending.pop(cid, None)
            raise connection_error(self.addr, "connection lost")
        return c, conn, head, payload

    def _cancel(self, c: _Call) -> None:
        """A future was cancelled: forget the call, tell ferryd."""
        if self._pending.pop(c.id, None) is None:
            return
        conn = self._conn
        if conn is None or not conn.alive:
            return
        try:
            with self._write_lock:
                conn.sock.sendall(P.encode_cancel(c.id))
            conn.last_send = _monotonic()
        except OSError:
            pass

    def _expire(self, c: _Call) -> None:
        """A call's local timer ran out: ferryd did not answer in time."""
        if self._pending.pop(c.id, None) is None:
            return
        c.finish(None, FerryError.of(7, "no answer from ferryd before the "
                                        "call's deadline"))
        conn = self._conn
        if conn is not None and conn.alive:
            try:
                with self._write_lock:
                    conn.sock.sendall(P.encode_cancel(c.id))
            except OSError:
                pass

    def _wait(self, c: _Call) -> None:
        """Waits for c's answer, reading the socket when nobody else does."""
        while not c.done:
            left = c.deadline_at - _monotonic()
            if left <= 0:
                self._expire(c)
                if c.done:
                    return
                left = 0.01
            if self._read_lock.acquire(False):
                try:
                    self._lead(c)
                finally:
                    self._read_lock.release()
                if self._pending:
                    self._kick()
            else:
                # Someone reads; they fill our slot. Come back now and then
                # in case they left before our answer came.
                if c.lock.acquire(timeout=min(left, 0.05)):
                    c.lock.release()

    def _lead(self, c: _Call | None, until: float = 0.0) -> None:
        """Reads and dispatches frames until c is done (or, for the
        background thread, c None, until no call is pending or `until`).
        A read returns at least every _RCV_TICK_US (SO_RCVTIMEO), so the
        clock is looked at without a poll() before every read."""
        conn = self._conn
        if conn is None or not conn.alive:
            return
        read = self._read
        if c is not None:
            while not c.done and _monotonic() < c.deadline_at:
                if not read(conn):
                    return
            return
        while self._pending and not self._closed and _monotonic() < until:
            if not read(conn):
                return

    def _read(self, conn: _Conn) -> bool:
        """One recv and the frames it completes. False once the connection
        is gone."""
        rend = self._rend
        buf = self._rbuf
        if rend == len(buf):
            self._compact(0)
            rend = self._rend
            buf = self._rbuf
        try:
            n = conn.sock.recv_into(self._rview[rend:])
        except BlockingIOError:
            return True
        except OSError as e:
            self._lose(conn, connection_error(
                self.addr, f"reading from {self.addr}: {e}"))
            return False
        if n == 0:
            self._lose(conn, connection_error(
                self.addr, f"connection closed by ferryd ({self.addr})"))
            return False
        conn.last_recv = _monotonic()
        rend += n
        self._rend = rend
        pos = self._rstart
        pending = self._pending
        max_body = self._max_frame or max(conn.peer_max,
                                          P.DEFAULT_MAX_BODY)
        while rend - pos >= 16:
            body_len, ftype, _flags, _r, fid = _unpack_header(buf, pos)
            end = pos + 16 + body_len
            if end > rend:
                if body_len > max_body:
                    self._lose(conn, connection_error(
                        self.addr, f"ferryd sent a frame of {body_len} "
                                   "bytes, larger than allowed"))
                    return False
                break
            if ftype == _REPLY:
                call = pending.pop(fid, None)
                if call is not None:
                    call.finish(bytes(buf[pos + 16:end]), None)
            elif ftype == _ERROR:
                try:
                    code, msg = error_message(bytes(buf[pos + 16:end]))
                except P.WireError:
                    self._lose(conn, connection_error(
                        self.addr, "ferryd sent a malformed ERROR"))
                    return False
                if fid == 0:
                    self._rstart = end
                    self._lose(conn, connection_error(
                        self.addr, lost_message(code, msg)))
                    return False
                call = pending.pop(fid, None)
                if call is not None:
                    call.finish(None, FerryError.of(code, msg))
            elif ftype == P.PING:
                pass
            else:
                self._lose(conn, connection_error(
                    self.addr, f"ferryd sent an unexpected frame (type "
                               f"{ftype})"))
                return False
            pos = end
        if pos == rend:
            self._rstart = self._rend = 0
            if len(buf) > _READ_SIZE:
                self._rbuf = bytearray(_READ_SIZE)
                self._rview = memoryview(self._rbuf)
        else:
            self._rstart = pos
            if pos + 16 <= rend:
                body_len = _unpack_header(buf, pos)[0]
                need = 16 + body_len
                if need > len(buf) - pos:
                    self._compact(need)
        return True

    def _compact(self, need: int) -> None:
        """Moves the partial frame to the buffer's start, growing the
        buffer when one frame needs more room (and shrinking it back after
        a large frame)."""
        part = self._rbuf[self._rstart:self._rend]
        size = max(_READ_SIZE, need, len(part) * 2)
        if need == 0 and len(self._rbuf) > _READ_SIZE and \
                len(part) < _READ_SIZE:
            size = _READ_SIZE
        if size != len(self._rbuf):
            self._rbuf = bytearray(size)
            self._rview = memoryview(self._rbuf)
        self._rbuf[:len(part)] = part
        self._rstart = 0
        self._rend = len(part)

    def _check_idle(self, conn: _Conn) -> None:
        """Reads what an idle connection has (PINGs, or ferryd's close)
        so a call is not sent on a connection that is already gone."""
        if not self._read_lock.acquire(False):
            return
        try:
            if conn.alive and conn.poll.poll(0):
                self._read(conn)
        finally:
            self._read_lock.release()

    # ------------------------------------------------- background thread

    def _kick(self) -> None:
        self._wake.set()

    def _bg_step(self) -> float:
        """One turn of the background thread: heartbeats both ways, the
        futures' timers, reading for futures. How long to sleep (0: go
        on at once)."""
        conn = self._conn
        now = _monotonic()
        tick = 0.25
        if conn is not None and conn.alive:
            hb = conn.hello.heartbeat_ms / 1000.0
            if hb and self._heartbeat_ms and now - conn.last_recv > 3 * hb:
                self._lose(conn, connection_error(
                    self.addr, f"ferryd silent for "
                               f"{int((now - conn.last_recv) * 1000)} ms, "
                               f"3 x heartbeat {conn.hello.heartbeat_ms} "
                               "ms"))
                return 0.0
            mine = self._heartbeat_ms / 1000.0
            if mine and now - conn.last_send >= mine:
                try:
                    with self._write_lock:
                        conn.sock.sendall(P.PING_FRAME)
                    conn.last_send = now
                except OSError as e:
                    self._lose(conn, connection_error(
                        self.addr, f"sending to {self.addr}: {e}"))
                    return 0.0
            if mine:
                tick = min(tick, max(0.01, mine / 2))
            if hb:
                tick = min(tick, max(0.01, hb / 2))
        self._expire_futures(now)
        if conn is not None and conn.alive and \
                self._read_lock.acquire(False):
            try:
                if self._pending:
                    self._lead(None, _monotonic() + tick)
                elif conn.alive and conn.poll.poll(0):
                    self._read(conn)
            finally:
                self._read_lock.release()
            if self._pending and conn.alive:
                return 0.0
        return tick

    def _expire_futures(self, now: float) -> None:
        for c in list(self._pending.values()):
            if c.future is not None and c.deadline_at <= now:
                self._expire(c)
