# SPDX-License-Identifier: MIT
"""ferry.cache's payloads (docs/services.md), written independently of
the C codec so the tests check one against the other: request encoders
by op, and a reply decoder. All integers big-endian."""
import struct

GET, GET_MANY, SET, ADD, REPLACE, APPEND, PREPEND, CAS, DELETE, INCR, \
    DECR, TOUCH, GAT, FLUSH = range(1, 15)
OK, NOT_FOUND, NOT_STORED, EXISTS = range(4)
SERVICE = "ferry.cache"


def get():
    return bytes([GET])


def gat(ttl_ms):
    return struct.pack(">BI", GAT, ttl_ms)


def get_many(keys):
    out = struct.pack(">BH", GET_MANY, len(keys))
    for k in keys:
        out += struct.pack(">H", len(k)) + k
    return out


def store(op, value, flags=0, ttl_ms=0):
    """SET, ADD or REPLACE."""
    return struct.pack(">BII", op, flags, ttl_ms) + value


def set_(value, flags=0, ttl_ms=0):
    return store(SET, value, flags, ttl_ms)


def append(value):
    return bytes([APPEND]) + value


def prepend(value):
    return bytes([PREPEND]) + value


def cas(value, version, flags=0, ttl_ms=0):
    return struct.pack(">BIIQ", CAS, flags, ttl_ms, version) + value


def delete():
    return bytes([DELETE])


def incr(delta):
    return struct.pack(">BQ", INCR, delta)


def decr(delta):
    return struct.pack(">BQ", DECR, delta)


def touch(ttl_ms):
    return struct.pack(">BI", TOUCH, ttl_ms)


def flush(delay_ms=0):
    return struct.pack(">BI", FLUSH, delay_ms)


class Hit:
    def __init__(self, flags, cas, value):
        self.flags, self.cas, self.value = flags, cas, value

    def __repr__(self):
        return f"Hit(flags={self.flags}, cas={self.cas}, value={self.value!r})"


def parse_hit(body):
    """A GET/GAT reply: Hit, or None on NOT_FOUND."""
    if body[:1] == bytes([NOT_FOUND]) and len(body) == 1:
        return None
    assert body[0] == OK and len(body) >= 13, body
    flags, version = struct.unpack(">IQ", body[1:13])
    return Hit(flags, version, body[13:])


def parse_u64(body):
    """A store/incr reply: (status, u64 or None)."""
    if body[0] == OK:
        assert len(body) == 9, body
        return OK, struct.unpack(">Q", body[1:])[0]
    assert len(body) == 1, body
    return body[0], None


def parse_many(body):
    """A GET_MANY reply: a list of Hit or None."""
    assert body[0] == OK, body
    n = struct.unpack(">H", body[1:3])[0]
    out, p = [], 3
    for _ in range(n):
        if body[p] == NOT_FOUND:
            out.append(None)
            p += 1
            continue
        assert body[p] == OK, body
        flags, version, vlen = struct.unpack(">IQI", body[p + 1:p + 17])
        out.append(Hit(flags, version, body[p + 17:p + 17 + vlen]))
        p += 17 + vlen
    assert p == len(body), (p, len(body))
    return out
