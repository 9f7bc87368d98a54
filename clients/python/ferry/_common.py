# SPDX-License-Identifier: MIT
"""What the sync client, the asyncio client and the worker share:
addresses, the options of a connection, the handshake's outcome, and the
backoff between connection attempts.
"""
from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass

from . import _proto as P
from .errors import FerryError, errname

DEFAULT_ADDR = "127.0.0.1:7700"
DEFAULT_HEARTBEAT_MS = 2500
DEFAULT_DEADLINE_MS = 5000    # until ferryd says otherwise (HELLO_OK v2)
DEFAULT_MAX_DEADLINE_MS = 60000
CALL_SLACK_MS = 250           # a call's local timer waits this past ferryd
CONNECT_TIMEOUT_MS = 2000
RECONNECT_MIN_MS = 50
RECONNECT_MAX_MS = 2000


def check_identity(token: str | None, name: str,
                   max_frame: int) -> tuple[bytes, bytes]:
    """A caller's HELLO fields as bytes, or ValueError: token and name at
    most 255 bytes, max_frame 0 or room for ferryd's largest ERROR."""
    tok = (token or "").encode()
    nam = name.encode()
    if len(tok) > P.MAX_NAME or len(nam) > P.MAX_NAME:
        raise ValueError("token and name are at most 255 bytes")
    if max_frame and not P.MIN_CLIENT_MAX_FRAME <= max_frame <= 0xFFFFFFFF:
        raise ValueError(f"max_frame must be 0 or "
                         f"{P.MIN_CLIENT_MAX_FRAME} to 4294967295 "
                         "(ferryd needs room for its largest ERROR)")
    return tok, nam


def check_call(cache: dict[str, bytes], service: str | bytes,
               payload: bytes | str, key: bytes | str | None,
               deadline_ms: int | None) -> tuple[bytes, bytes, bytes, int]:
    """A call's arguments as the wire takes them: (service, payload, key,
    deadline_ms), or InvalidArgumentError. Service names are encoded once
    and kept in cache (at most 1024 of them)."""
    s = cache.get(service)  # type: ignore[call-overload]
    if s is None:
        s = service.encode() if isinstance(service, str) else bytes(service)
        if not 0 < len(s) <= P.MAX_NAME:
            raise FerryError.of(11, "service name must be 1 to 255 bytes")
        if len(cache) < 1024:
            cache[service] = s  # type: ignore[index]
    if isinstance(payload, str):
        payload = payload.encode()
    if key is None:
        k = b""
    else:
        k = key.encode() if isinstance(key, str) else bytes(key)
        if len(k) > P.MAX_KEY:
            raise FerryError.of(11, "key must be at most 1024 bytes")
    dl = deadline_ms or 0
    if dl < 0 or dl > 0xFFFFFFFF:
        raise FerryError.of(11, "deadline_ms must be 0 to 4294967295")
    return s, payload, k, dl


def default_addr() -> str:
    env = os.environ.get("FERRY_ADDR")
    return env if env else DEFAULT_ADDR


@dataclass(frozen=True)
class Addr:
    """A parsed address: family, the argument of connect(), its text."""
    family: int
    target: object
    text: str


def parse_addr(addr: str | None) -> Addr:
    """"host:port", "[v6]:port" or "unix:/path"; None is the default
    ($FERRY_ADDR, else 127.0.0.1:7700). ValueError when malformed."""
    text = addr if addr else default_addr()
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError(f"bad address '{text}': empty socket path")
        return Addr(socket.AF_UNIX, path, text)
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ValueError(f"bad address '{text}'")
        host, port = text[1:end], text[end + 2:]
        family = socket.AF_INET6
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"bad address '{text}' (host:port, [v6]:port "
                             "or unix:/path)")
        family = socket.AF_INET
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address '{text}': bad port")
    return Addr(family, (host, int(port)), text)


@dataclass
class Hello:
    """What a HELLO_OK said."""
    version: int
    heartbeat_ms: int
    max_frame: int
    name: str
    max_deadline_ms: int = DEFAULT_MAX_DEADLINE_MS
    default_deadline_ms: int = DEFAULT_DEADLINE_MS


def parse_hello_answer(frame: P.Frame) -> Hello:
    """The handshake's outcome from ferryd's first frame: a Hello, or the
    FerryError of its ERROR (UNAUTHORIZED, VERSION, ...)."""
    if frame.type == P.ERROR:
        code, msg = P.parse_error(frame.body)
        raise FerryError.of(code, msg.decode("utf-8", "replace"))
    if frame.type != P.HELLO_OK:
        raise FerryError.of(1, f"expected HELLO_OK, got frame type "
                               f"{frame.type}")
    try:
        d = P.parse_hello_ok(frame.body)
    except P.WireError as e:
        raise FerryError.of(1, f"bad HELLO_OK: {e.detail}") from None
    h = Hello(d["version"], d["heartbeat_ms"], d["max_frame"],
              d["name"].decode("utf-8", "replace"))
    if d["version"] >= 2:
        if d["max_deadline_ms"]:
            h.max_deadline_ms = d["max_deadline_ms"]
        if d["default_deadline_ms"]:
            h.default_deadline_ms = d["default_deadline_ms"]
    return h


def safety_ms(hello: Hello | None, deadline_ms: int) -> int:
    """How long a call waits for ferryd's answer before it gives up
    locally: its deadline (or ferryd's default), capped by ferryd's
    maximum, plus slack."""
    dflt = hello.default_deadline_ms if hello else DEFAULT_DEADLINE_MS
    cap = hello.max_deadline_ms if hello else DEFAULT_MAX_DEADLINE_MS
    d = deadline_ms if deadline_ms else dflt
    return min(d, cap) + CALL_SLACK_MS


class Backoff:
    """Jittered exponential backoff between connection attempts."""

    def __init__(self, min_ms: int, max_ms: int) -> None:
        self.min_ms = max(1, min_ms)
        self.max_ms = max(self.min_ms, max_ms)
        self.cur_ms = self.min_ms
        self.not_before = 0.0  # monotonic seconds

    def failed(self, now: float) -> None:
        self.not_before = now + random.uniform(self.cur_ms / 2,
                                               self.cur_ms) / 1000.0
        self.cur_ms = min(self.max_ms, self.cur_ms * 2)

    def reset(self) -> None:
        self.cur_ms = self.min_ms
        self.not_before = 0.0


def connection_error(addr: str, why: str) -> FerryError:
    msg = why if addr in why else f"{why} ({addr})"
    return FerryError.of(16, msg)


def error_message(body: bytes) -> tuple[int, str]:
    code, msg = P.parse_error(body)
    return code, msg.decode("utf-8", "replace")


def lost_message(code: int, msg: str) -> str:
    """The message of calls failed because ferryd closed with ERROR id 0."""
    return f"connection closed by ferryd: {errname(code)}: {msg}"
