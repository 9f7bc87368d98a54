# SPDX-License-Identifier: MIT
"""The ferry frame codec, written from docs/protocol.md: encoders for every
frame a client sends, a header decoder that checks the limits before a body
is waited for, and body parsers for every frame type.

Everything the clients put on the wire goes through here, and
tests/vectors/frames.json checks it byte for byte (tests/test_codec.py).
"""
from __future__ import annotations

import struct
from typing import Any, NamedTuple

# The protocol version this client speaks. Version 2 adds the client's
# max_frame to HELLO and ferryd's deadlines to HELLO_OK.
PROTOCOL_VERSION = 2

HEADER = struct.Struct(">IBBHQ")
HEADER_SIZE = 16
DEFAULT_MAX_BODY = 16 * 1024 * 1024

HELLO = 1
HELLO_OK = 2
REQUEST = 3
REPLY = 4
ERROR = 5
CANCEL = 6
REGISTER = 7
REGISTERED = 8
PING = 9
DRAIN = 10

TYPE_NAMES = {
    HELLO: "HELLO", HELLO_OK: "HELLO_OK", REQUEST: "REQUEST",
    REPLY: "REPLY", ERROR: "ERROR", CANCEL: "CANCEL",
    REGISTER: "REGISTER", REGISTERED: "REGISTERED", PING: "PING",
    DRAIN: "DRAIN",
}
TYPES = {v: k for k, v in TYPE_NAMES.items()}

ROLE_CALLER = 1
ROLE_WORKER = 2
ROLE_PEER = 3

FLAG_IDEMPOTENT = 0x01

MAX_NAME = 255
MAX_KEY = 1024
MAX_ERRMSG = 1024
MAX_CREDIT = 65535
# The least max_frame a client may announce: an ERROR with the longest
# message (4 + 1024 bytes) must fit.
MIN_CLIENT_MAX_FRAME = 4 + MAX_ERRMSG

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HELLO_FIXED = struct.Struct(">HBBI")
_HELLO_OK_FIXED = struct.Struct(">HHII")
_REQ_FIXED = struct.Struct(">IHH")
# A REQUEST's header and fixed fields in one pack.
_REQ_HEAD = struct.Struct(">IBBHQIHH")
_ERR_FIXED = struct.Struct(">HH")
_REG_FIXED = struct.Struct(">IH")

PING_FRAME = HEADER.pack(0, PING, 0, 0, 0)
DRAIN_FRAME = HEADER.pack(0, DRAIN, 0, 0, 0)


class WireError(Exception):
    """A frame the codec refuses: .name is PROTO, TOO_BIG or UNKNOWN_TYPE."""

    CODES = {"PROTO": 1, "TOO_BIG": 2, "UNKNOWN_TYPE": 4}

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name
        self.code = self.CODES[name]
        self.detail = detail


class Frame(NamedTuple):
    type: int
    flags: int
    id: int
    body: bytes


def _b(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else bytes(s)


def encode_frame(ftype: int, body: bytes = b"", fid: int = 0,
                 flags: int = 0) -> bytes:
    return HEADER.pack(len(body), ftype, flags, 0, fid) + body


def encode_hello(role: int, heartbeat_ms: int = 0, name: str | bytes = b"",
                 token: str | bytes = b"", version: int = PROTOCOL_VERSION,
                 max_frame: int = 0) -> bytes:
    """HELLO laid out by the version it carries: version 2 and later end
    with the client's max_frame (0: no limit of its own)."""
    n, t = _b(name), _b(token)
    if len(n) > MAX_NAME or len(t) > MAX_NAME:
        raise ValueError("name and token are at most 255 bytes")
    body = (_HELLO_FIXED.pack(version, role, 0, heartbeat_ms) +
            _U16.pack(len(n)) + n + _U16.pack(len(t)) + t)
    if version >= 2:
        body += _U32.pack(max_frame)
    return encode_frame(HELLO, body)


def encode_hello_ok(version: int, heartbeat_ms: int, max_frame: int,
                    name: str | bytes, max_deadline_ms: int = 0,
                    default_deadline_ms: int = 0) -> bytes:
    n = _b(name)
    body = _HELLO_OK_FIXED.pack(version, 0, heartbeat_ms, max_frame)
    body += _U16.pack(len(n)) + n
    if version >= 2:
        body += _U32.pack(max_deadline_ms) + _U32.pack(default_deadline_ms)
    return encode_frame(HELLO_OK, body)


def request_size(service: bytes, key: bytes, payload_len: int) -> int:
    """Body length of a REQUEST."""
    return 8 + len(service) + len(key) + payload_len


def encode_request_head(fid: int, service: bytes, key: bytes,
                        payload_len: int, deadline_ms: int = 0,
                        flags: int = 0) -> bytes:
    """Everything of a REQUEST but its payload (the caller sends that
    after it, so a large payload is never copied)."""
    return _REQ_HEAD.pack(8 + len(service) + len(key) + payload_len,
                          REQUEST, flags, 0, fid, deadline_ms, len(service),
                          len(key)) + service + key


def encode_request(fid: int, service: str | bytes, payload: bytes = b"",
                   deadline_ms: int = 0, key: bytes = b"",
                   flags: int = 0) -> bytes:
    s = _b(service)
    return encode_request_head(fid, s, bytes(key), len(payload), deadline_ms,
                               flags) + bytes(payload)


def encode_reply(fid: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload), REPLY, 0, 0, fid) + payload


def encode_error(fid: int, code: int, message: str | bytes = b"") -> bytes:
    m = _b(message)[:MAX_ERRMSG]
    return encode_frame(ERROR, _ERR_FIXED.pack(code, len(m)) + m, fid)


def encode_cancel(fid: int) -> bytes:
    return HEADER.pack(0, CANCEL, 0, 0, fid)


def encode_register(fid: int, service: str | bytes, credit: int) -> bytes:
    s = _b(service)
    return encode_frame(REGISTER, _REG_FIXED.pack(credit, len(s)) + s, fid)


def encode_empty(ftype: int, fid: int = 0) -> bytes:
    return HEADER.pack(0, ftype, 0, 0, fid)


def check_header(body_len: int, ftype: int, max_body: int) -> None:
    """The checks made as soon as a header's 16 bytes are in: TOO_BIG
    first, then UNKNOWN_TYPE."""
    if body_len > max_body:
        raise WireError("TOO_BIG",
                        f"frame body of {body_len} bytes, limit {max_body}")
    if ftype not in TYPE_NAMES:
        raise WireError("UNKNOWN_TYPE", f"frame type {ftype}")


def decode_frame(buf: bytes | bytearray | memoryview,
                 max_body: int = DEFAULT_MAX_BODY,
                 offset: int = 0) -> tuple[Frame | None, int]:
    """Decodes the frame at buf[offset:]. Returns (Frame, bytes used), or
    (None, 0) when no whole frame is there yet. Raises WireError."""
    if len(buf) - offset < HEADER_SIZE:
        return None, 0
    body_len, ftype, flags, _, fid = HEADER.unpack_from(buf, offset)
    check_header(body_len, ftype, max_body)
    end = offset + HEADER_SIZE + body_len
    if len(buf) < end:
        return None, 0
    return (Frame(ftype, flags, fid, bytes(buf[offset + HEADER_SIZE:end])),
            HEADER_SIZE + body_len)


class _Reader:
    __slots__ = ("b", "i")

    def __init__(self, body: bytes) -> None:
        self.b, self.i = body, 0

    def take(self, n: int) -> bytes:
        if len(self.b) - self.i < n:
            raise WireError("PROTO", "body too short")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def str16(self, limit: int) -> bytes:
        n = self.u16()
        if n > limit:
            raise WireError("PROTO", f"length {n} above {limit}")
        return self.take(n)

    def rest(self) -> bytes:
        v = self.b[self.i:]
        self.i = len(self.b)
        return v

    def end(self) -> None:
        if self.i != len(self.b):
            raise WireError("PROTO", "trailing bytes")


def parse_hello(body: bytes) -> dict[str, Any]:
    r = _Reader(body)
    d: dict[str, Any] = {"version": r.u16(), "role": r.u8()}
    r.u8()
    d["heartbeat_ms"] = r.u32()
    d["name"] = r.str16(MAX_NAME)
    d["token"] = r.str16(MAX_NAME)
    if d["version"] >= 2:
        d["max_frame"] = r.u32()
        if d["version"] >= 3:
            r.rest()
    r.end()
    if d["role"] not in (ROLE_CALLER, ROLE_WORKER, ROLE_PEER):
        raise WireError("PROTO", f"bad role {d['role']}")
    return d


def parse_hello_ok(body: bytes) -> dict[str, Any]:
    r = _Reader(body)
    d: dict[str, Any] = {"version": r.u16()}
    r.u16()
    d["heartbeat_ms"] = r.u32()
    d["max_frame"] = r.u32()
    d["name"] = r.str16(MAX_NAME)
    if d["version"] >= 2:
        d["max_deadline_ms"] = r.u32()
        d["default_deadline_ms"] = r.u32()
        if d["version"] >= 3:
            r.rest()  # a later version's fields, ignored
    r.end()
    return d


def parse_request(body: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(deadline_ms, service, key, payload) of a REQUEST body."""
    if len(body) < 8:
        raise WireError("PROTO", "body too short")
    deadline, slen, klen = _REQ_FIXED.unpack_from(body, 0)
    if slen == 0 or slen > MAX_NAME or klen > MAX_KEY:
        raise WireError("PROTO", "bad service or key length")
    if 8 + slen + klen > len(body):
        raise WireError("PROTO", "length past the end of the body")
    return (deadline, body[8:8 + slen], body[8 + slen:8 + slen + klen],
            body[8 + slen + klen:])


def parse_error(body: bytes) -> tuple[int, bytes]:
    """(code, message) of an ERROR body."""
    r = _Reader(body)
    code = r.u16()
    msg = r.str16(MAX_ERRMSG)
    r.end()
    return code, msg


def parse_register(body: bytes) -> tuple[int, bytes]:
    """(credit, service) of a REGISTER body. A credit of 0 or above 65535
    and an empty name are well formed: ferryd refuses them, not the
    codec."""
    r = _Reader(body)
    credit = r.u32()
    service = r.str16(MAX_NAME)
    r.end()
    return credit, service


def parse_body(frame: Frame) -> dict[str, Any]:
    """A frame's fields by its type (bytes for strings); WireError PROTO."""
    t = frame.type
    if t == HELLO:
        return parse_hello(frame.body)
    if t == HELLO_OK:
        return parse_hello_ok(frame.body)
    if t == REQUEST:
        d, s, k, p = parse_request(frame.body)
        return {"deadline_ms": d, "service": s, "key": k, "payload": p}
    if t == ERROR:
        code, msg = parse_error(frame.body)
        return {"code": code, "message": msg}
    if t == REGISTER:
        credit, service = parse_register(frame.body)
        return {"credit": credit, "service": service}
    if t == REPLY:
        return {"payload": frame.body}
    if frame.body:
        raise WireError("PROTO", "body must be empty")
    return {}
