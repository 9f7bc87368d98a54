# SPDX-License-Identifier: MIT
"""ferry.Worker: serves services for ferryd.

    w = ferry.Worker("127.0.0.1:7700")

    @w.service("upper", credit=8)
    def upper(job):
        return job.payload.upper()

    w.run()        # until SIGTERM/SIGINT: DRAIN, finish held jobs, return

The worker runs an asyncio loop in the thread that calls run(). Sync
handlers run on a thread pool, async handlers (coroutine functions) on the
loop. A handler's return value is the reply (bytes or str; None replies an
empty payload); raising a FerryError fails the job with its code, any
other exception with WORKER_ERROR. A handler that calls job.defer() keeps
the job after it returns and answers later with job.reply() or job.fail()
from any thread. ferryd's CANCEL sets job.cancelled, runs the job's
on_cancel callbacks and cancels an async handler's task; an answer after
that is dropped.

A lost connection is made again with backoff and every service registered
again; jobs held on the old connection are gone (ferryd failed them).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import signal
import socket
import threading
import time
from typing import Any, Awaitable, Callable, Union

from . import _proto as P
from ._common import (CONNECT_TIMEOUT_MS, DEFAULT_HEARTBEAT_MS,
                      RECONNECT_MAX_MS, RECONNECT_MIN_MS, Backoff, Hello,
                      error_message, parse_addr, parse_hello_answer)
from .errors import FerryError

_unpack_header = P.HEADER.unpack_from
_monotonic = time.monotonic

Reply = Union[bytes, bytearray, memoryview, str, None]
Handler = Callable[["Job"], Union[Reply, Awaitable[Reply]]]


class Job:
    """One request given to this worker. payload, service, key and
    deadline_ms are as ferryd sent them; idempotent says the caller marked
    it safe to run twice."""

    __slots__ = ("id", "service", "payload", "key", "deadline_ms",
                 "idempotent", "received_at", "cancelled", "_worker",
                 "_conn", "_answered", "_deferred", "_on_cancel", "_on_done",
                 "_task", "_lock")

    def __init__(self, worker: "Worker", conn: "_WorkerProtocol", jid: int,
                 service: str, payload: bytes, key: bytes, deadline_ms: int,
                 flags: int) -> None:
        self.id = jid
        self.service = service
        self.payload = payload
        self.key = key
        self.deadline_ms = deadline_ms
        self.idempotent = bool(flags & P.FLAG_IDEMPOTENT)
        self.received_at = _monotonic()
        self.cancelled = False
        self._worker = worker
        self._conn = conn
        self._answered = False
        self._deferred = False
        self._on_cancel: list[Callable[["Job"], None]] = []
        self._on_done: list[Callable[["Job"], None]] = []
        self._task: asyncio.Task[Any] | None = None
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        """Answered, failed, or dropped after a cancel."""
        return self._answered

    def defer(self) -> None:
        """Keeps the job open after the handler returns: it is answered
        later with reply() or fail()."""
        self._deferred = True

    def reply(self, payload: Reply = b"") -> bool:
        """Answers the job (from any thread). False when it was already
        answered or cancelled (the answer is dropped)."""
        if payload is None:
            data = b""
        elif isinstance(payload, str):
            data = payload.encode()
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            data = bytes(payload)
        else:
            raise TypeError(f"a reply is bytes or str, not "
                            f"{type(payload).__name__}")
        return self._finish(P.encode_reply(self.id, data))

    def fail(self, code: int | FerryError = 9, message: str = "") -> bool:
        """Fails the job with an error code (default WORKER_ERROR) or a
        FerryError, and a message for the caller."""
        if isinstance(code, FerryError):
            message = message or code.message
            code = code.code
        return self._finish(P.encode_error(self.id, code, message.encode()))

    def drop(self) -> bool:
        """Ends the job without an answer, as if cancelled: the worker
        stops holding it (a drain does not wait for it) and ferryd answers
        the caller when the deadline passes or this worker leaves."""
        return self._finish(None)

    def on_cancel(self, fn: Callable[["Job"], None]) -> None:
        """fn(job) runs (on the worker's loop) when ferryd cancels the
        job: the caller is gone, cancelled, or the deadline passed. Runs at
        once if that already happened."""
        if self.cancelled:
            fn(self)
        else:
            self._on_cancel.append(fn)

    def add_done_callback(self, fn: Callable[["Job"], None]) -> None:
        """fn(job) runs once the job has ended (answered, failed, or
        dropped after a cancel)."""
        with self._lock:
            if not self._answered:
                self._on_done.append(fn)
                return
        fn(self)

    def _finish(self, frame: bytes | None) -> bool:
        with self._lock:
            if self._answered:
                return False
            self._answered = True
        w = self._worker
        if threading.get_ident() == w._loop_thread:
            w._job_ended(self, frame)
        else:
            loop = w._loop
            if loop is None or loop.is_closed():
                return False
            try:
                loop.call_soon_threadsafe(w._job_ended, self, frame)
            except RuntimeError:
                return False
        return frame is not None

    def _cancel(self) -> None:
        """ferryd cancelled the job (on the loop)."""
        if self._answered:
            return
        self.cancelled = True
        for fn in self._on_cancel:
            try:
                fn(self)
            except Exception as e:  # noqa: BLE001
                self._worker._log(f"on_cancel of job {self.id}: {e!r}")
        if self._task is not None:
            self._task.cancel()
        self._finish(None)


class _Service:
    __slots__ = ("name", "credit", "handler", "is_async")

    def __init__(self, name: str, credit: int, handler: Handler) -> None:
        self.name = name
        self.credit = credit
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)


class _WorkerProtocol(asyncio.Protocol):
    def __init__(self, worker: "Worker") -> None:
        self.w = worker
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.hello: Hello | None = None
        self.alive = True
        self.jobs: dict[int, Job] = {}
        self.closed = asyncio.get_running_loop().create_future()
        self.ready = asyncio.get_running_loop().create_future()
        self.regs: dict[int, asyncio.Future[None]] = {}
        self.last_recv = self.last_send = _monotonic()
        self.wbuf: list[bytes] = []
        self.flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        if not self.alive:
            return
        self.wbuf.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.alive or self.transport is None or not self.wbuf:
            self.wbuf.clear()
            return
        data = self.wbuf[0] if len(self.wbuf) == 1 else b"".join(self.wbuf)
        self.wbuf.clear()
        self.transport.write(data)
        self.last_send = _monotonic()

    def data_received(self, data: bytes) -> None:
        self.last_recv = _monotonic()
        if self.buf:
            self.buf += data
            data = self.buf  # type: ignore[assignment]
        pos = 0
        n = len(data)
        while n - pos >= 16:
            body_len, ftype, flags, _r, fid = _unpack_header(data, pos)
            end = pos + 16 + body_len
            if end > n:
                break
            body = bytes(data[pos + 16:end])
            pos = end
            if not self._frame(ftype, flags, fid, body):
                return
        if pos == n:
            if self.buf:
                self.buf = bytearray()
        elif data is self.buf:
            del self.buf[:pos]
        else:
            self.buf = bytearray(data[pos:])

    def _frame(self, ftype: int, flags: int, fid: int, body: bytes) -> bool:
        w = self.w
        if ftype == P.REQUEST:
            try:
                dl, svc, key, payload = P.parse_request(body)
            except P.WireError as e:
                self.fail_conn(f"bad REQUEST from ferryd: {e}")
                return False
            w._start_job(self, fid, svc.decode("utf-8", "replace"),
                         payload, key, dl, flags)
        elif ftype == P.CANCEL:
            job = self.jobs.get(fid)
            if job is not None:
                job._cancel()
        elif ftype == P.PING:
            pass
        elif ftype == P.REGISTERED:
            fut = self.regs.pop(fid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif ftype == P.ERROR:
            try:
                code, msg = error_message(body)
            except P.WireError:
                self.fail_conn("bad ERROR from ferryd")
                return False
            err = FerryError.of(code, msg)
            fut = self.regs.pop(fid, None) if fid else None
            if fut is not None:
                if not fut.done():
                    fut.set_exception(err)
            elif fid == 0:
                if not self.ready.done():
                    self.ready.set_exception(err)
                self.fail_conn(str(err), err)
                return False
        elif ftype == P.HELLO_OK and self.hello is None:
            try:
                self.hello = parse_hello_answer(P.Frame(ftype, 0, 0, body))
            except FerryError as e:
                if not self.ready.done():
                    self.ready.set_exception(e)
                self.fail_conn(str(e), e)
                return False
            if not self.ready.done():
                self.ready.set_result(self.hello)
        else:
            self.fail_conn(f"unexpected frame type {ftype} from ferryd")
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail_conn(f"connection lost: {exc}" if exc else
                       "connection closed by ferryd")

    def fail_conn(self, why: str, err: FerryError | None = None) -> None:
        if not self.alive:
            return
        self.alive = False
        if self.transport is not None:
            self.transport.abort()
        e = err or FerryError.of(16, why)
        for fut in (self.ready, *self.regs.values()):
            if not fut.done():
                fut.set_exception(e)
                fut.exception()
        self.regs.clear()
        if not self.closed.done():
            self.closed.set_result(e)
        jobs, self.jobs = self.jobs, {}
        for job in jobs.values():
            job._cancel()


class Worker:
    """Serves one or more services for ferryd (see the module's text).

    credit is how many requests of a service the worker holds at once;
    threads (default: the sum of the sync services' credit, at most 64) is
    the size of the pool sync handlers run on. heartbeat_ms is the
    worker's promise to ping when idle (and ferryd's silence for three of
    its heartbeats then ends the connection).
    """

    def __init__(self, addr: str | None = None, *, token: str | None = None,
                 name: str = "python-worker",
                 heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
                 threads: int | None = None,
                 connect_timeout_ms: int = CONNECT_TIMEOUT_MS,
                 reconnect_min_ms: int = RECONNECT_MIN_MS,
                 reconnect_max_ms: int = RECONNECT_MAX_MS,
                 handle_signals: bool = True) -> None:
        self._addr = parse_addr(addr)
        self.addr = self._addr.text
        self.name = name
        self._token = (token or "").encode()
        self._heartbeat_ms = heartbeat_ms
        self._threads = threads
        self._connect_timeout = connect_timeout_ms / 1000.0
        self._backoff = Backoff(reconnect_min_ms, reconnect_max_ms)
        self._handle_signals = handle_signals
        self._services: dict[str, _Service] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._proto: _WorkerProtocol | None = None
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._next_reg = 1
        self._on_ready: Callable[["Worker"], None] | None = None
        self._on_stop: Callable[["Worker"], None] | None = None
        # Jobs held now; jobs answered (replied or failed) so far;
        # connections made (HELLO_OK received).
        self.held = 0
        self.handled = 0
        self.connects = 0

    # ------------------------------------------------------------ setup

    def register(self, service: str, handler: Handler,
                 credit: int = 16) -> None:
        """Serves service with handler(job), taking credit jobs at once."""
        if not 0 < len(service.encode()) <= P.MAX_NAME:
            raise ValueError("service name must be 1 to 255 bytes")
        if not 0 < credit <= P.MAX_CREDIT:
            raise ValueError("credit must be 1 to 65535")
        self._services[service] = _Service(service, credit, handler)

    def service(self, name: str, credit: int = 16
                ) -> Callable[[Handler], Handler]:
        """Decorator form of register()."""
        def deco(fn: Handler) -> Handler:
            self.register(name, fn, credit)
            return fn
        return deco

    def stop(self) -> None:
        """Asks a running worker to stop as on SIGTERM (thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._begin_stop)
            except RuntimeError:
                pass

    # -------------------------------------------------------------- run

    def run(self, on_ready: Callable[["Worker"], None] | None = None,
            on_stop: Callable[["Worker"], None] | None = None) -> None:
        """Serves until stop() or SIGTERM/SIGINT: then sends DRAIN,
        finishes the jobs it holds and returns. on_ready(worker) runs each
        time every service is registered (again after a reconnection);
        on_stop(worker) once DRAIN is sent (a place to drop() jobs not
        worth waiting for). Raises the FerryError that made serving
        impossible (UNAUTHORIZED, a refused REGISTER)."""
        asyncio.run(self.serve(on_ready, on_stop))

    async def serve(self, on_ready: Callable[["Worker"], None] | None = None,
                    on_stop: Callable[["Worker"], None] | None = None
                    ) -> None:
        """run() for a loop that is already running."""
        if not self._services:
            raise ValueError("no service registered")
        self._on_ready = on_ready
        self._on_stop = on_stop
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._stop_event = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        sync_credit = sum(s.credit for s in self._services.values()
                          if not s.is_async)
        if sync_credit:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self._threads or min(64, sync_credit),
                thread_name_prefix="ferry-worker")
        signals: list[int] = []
        if self._handle_signals and \
                threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self._begin_stop)
                    signals.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        ticker = asyncio.ensure_future(self._heartbeats())
        try:
            await self._serve_loop()
        finally:
            ticker.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._proto is not None:
                self._proto.fail_conn("worker stopped")
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._loop = None

    async def _serve_loop(self) -> None:
        assert self._stop_event is not None
        first = True
        while not self._stopping:
            try:
                proto = await self._connect()
            except FerryError as e:
                if e.code in (15, 3) or first and e.code != 16:
                    raise
                proto = None
            except OSError:
                proto = None
            if proto is None:
                self._backoff.failed(_monotonic())
                delay = self._backoff.not_before - _monotonic()
                try:
                    await asyncio.wait_for(self._stop_event.wait(),
                                           max(0.0, delay))
                except asyncio.TimeoutError:
                    pass
                continue
            first = False
            self._backoff.reset()
            if self._on_ready is not None:
                self._on_ready(self)
            stop = asyncio.ensure_future(self._stop_event.wait())
            await asyncio.wait([proto.closed, stop],
                               return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if self._stopping and proto.alive:
                proto.write(P.DRAIN_FRAME)
                if self._on_stop is not None:
                    self._on_stop(self)
                await self._drain(proto)
                proto.flush()
                if proto.transport is not None and proto.alive:
                    proto.transport.close()  # flushes what is written
                    try:
                        await asyncio.wait_for(asyncio.shield(proto.closed),
                                               2.0)
                    except asyncio.TimeoutError:
                        pass
                proto.fail_conn("worker stopped")
                return

    async def _drain(self, proto: _WorkerProtocol) -> None:
        """Waits until every held job has ended (or the connection is
        gone: ferryd then failed them)."""
        assert self._idle is not None
        while self.held > 0 and proto.alive:
            self._idle.clear()
            closed = proto.closed
            idle = asyncio.ensure_future(self._idle.wait())
            await asyncio.wait([idle, closed],
                               return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()

    async def _connect(self) -> _WorkerProtocol:
        loop = asyncio.get_running_loop()
        a = self._addr

        async def attempt() -> _WorkerProtocol:
            if a.family == socket.AF_UNIX:
                _, proto = await loop.create_unix_connection(
                    lambda: _WorkerProtocol(self), a.target)  # type: ignore
            else:
                host, port = a.target  # type: ignore[misc]
                _, proto = await loop.create_connection(
                    lambda: _WorkerProtocol(self), host, port)
            return proto  # type: ignore[no-any-return]

        try:
            proto = await asyncio.wait_for(attempt(), self._connect_timeout)
        except asyncio.TimeoutError:
            raise OSError("timed out connecting") from None
        try:
            proto.write(P.encode_hello(P.ROLE_WORKER, self._heartbeat_ms,
                                       self.name, self._token))
            await asyncio.wait_for(proto.ready, self._connect_timeout)
            self._proto = proto
            self.connects += 1
            regs = []
            for svc in self._services.values():
                rid = self._next_reg
                self._next_reg += 1
                fut = loop.create_future()
                proto.regs[rid] = fut
                proto.write(P.encode_register(rid, svc.name, svc.credit))
                regs.append(fut)
            await asyncio.wait_for(asyncio.gather(*regs),
                                   self._connect_timeout)
        except asyncio.TimeoutError:
            proto.fail_conn("handshake timed out")
            raise OSError("handshake timed out") from None
        except BaseException:
            proto.fail_conn("handshake failed")
            raise
        return proto

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            p = self._proto
            if p is None or not p.alive or p.hello is None:
                continue
            now = _monotonic()
            hb = p.hello.heartbeat_ms / 1000.0
            if self._heartbeat_ms and hb and now - p.last_recv > 3 * hb:
                p.fail_conn(f"ferryd silent for "
                            f"{int((now - p.last_recv) * 1000)} ms")
            elif self._heartbeat_ms and \
                    now - p.last_send >= self._heartbeat_ms / 1000.0:
                p.write(P.PING_FRAME)

    @property
    def jobs(self) -> list[Job]:
        """The jobs held now."""
        p = self._proto
        return list(p.jobs.values()) if p is not None else []

    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    # ------------------------------------------------------------- jobs

    def _start_job(self, proto: _WorkerProtocol, jid: int, service: str,
                   payload: bytes, key: bytes, deadline_ms: int,
                   flags: int) -> None:
        svc = self._services.get(service)
        if svc is None:
            proto.write(P.encode_error(jid, 5, b"service not served here"))
            return
        job = Job(self, proto, jid, service, payload, key, deadline_ms,
                  flags)
        proto.jobs[jid] = job
        self.held += 1
        if svc.is_async:
            job._task = asyncio.ensure_future(self._run_async(svc, job))
        else:
            assert self._pool is not None
            try:
                self._pool.submit(self._run_sync, svc, job)
            except RuntimeError:
                job.fail(13, "worker is stopping")

    def _run_sync(self, svc: _Service, job: Job) -> None:
        try:
            out = svc.handler(job)
        except FerryError as e:
            job.fail(e.code, e.message)
            return
        except Exception as e:  # noqa: BLE001
            job.fail(9, f"{type(e).__name__}: {e}")
            return
        if not job._deferred:
            self._answer(job, out)

    def _answer(self, job: Job, out: Any) -> None:
        try:
            job.reply(out)
        except TypeError as e:
            job.fail(9, f"handler of '{job.service}': {e}")

    async def _run_async(self, svc: _Service, job: Job) -> None:
        try:
            out = await svc.handler(job)  # type: ignore[misc]
        except asyncio.CancelledError:
            job._finish(None)
            return
        except FerryError as e:
            job.fail(e.code, e.message)
            return
        except Exception as e:  # noqa: BLE001
            job.fail(9, f"{type(e).__name__}: {e}")
            return
        if not job._deferred:
            self._answer(job, out)

    def _job_ended(self, job: Job, frame: bytes | None) -> None:
        """On the loop: a job was answered (frame) or dropped (None)."""
        proto = job._conn
        if proto.jobs.pop(job.id, None) is not None or not proto.alive:
            pass
        if frame is not None and proto.alive and not job.cancelled:
            proto.write(frame)
            self.handled += 1
        self.held -= 1
        with job._lock:
            callbacks, job._on_done = job._on_done, []
        for fn in callbacks:
            try:
                fn(job)
            except Exception as e:  # noqa: BLE001
                self._log(f"done callback of job {job.id}: {e!r}")
        if self.held == 0 and self._idle is not None:
            self._idle.set()

    def _log(self, msg: str) -> None:
        import sys
        print(f"ferry worker: {msg}", file=sys.stderr)
