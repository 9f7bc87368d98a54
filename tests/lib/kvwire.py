# SPDX-License-Identifier: MIT
"""ferry.kv's payloads (docs/services.md) encoded in Python, apart from
the C codec, for the tests: requests to bytes, replies to dicts."""
import struct

GET, PUT, DELETE, RANGE, COUNT, WATCH = 1, 2, 3, 4, 5, 6
OK, NOT_FOUND, NOT_STORED, EXISTS = 0, 1, 2, 3
ANY, ABSENT, IF_REV = 0, 1, 2


def get():
    return bytes([GET])


def put(value, cond=ANY, rev=0):
    return struct.pack(">BBQ", PUT, cond, rev) + value


def delete(cond=ANY, rev=0):
    return struct.pack(">BBQ", DELETE, cond, rev)


def range_(limit=0, keys_only=False):
    """RANGE by prefix (the routing key)."""
    return struct.pack(">BBHIB", RANGE, 0, 0, limit, 1 if keys_only else 0)


def range_between(end, limit=0, keys_only=False):
    return (struct.pack(">BBH", RANGE, 1, len(end)) + end +
            struct.pack(">IB", limit, 1 if keys_only else 0))


def count(end=None):
    if end is None:
        return struct.pack(">BBH", COUNT, 0, 0)
    return struct.pack(">BBH", COUNT, 1, len(end)) + end


def watch(from_rev=0, wait_ms=0, max_events=0, prefix=False):
    return struct.pack(">BBQII", WATCH, 1 if prefix else 0, from_rev,
                       wait_ms, max_events)


def _entries(b, n, event):
    out, i = [], 0
    for _ in range(n):
        e = {}
        if event:
            e["type"] = "put" if b[i] == 0 else "delete"
            i += 1
        (klen,) = struct.unpack_from(">H", b, i)
        i += 2
        e["key"] = b[i:i + klen]
        i += klen
        e["create_rev"], e["mod_rev"], e["version"], vlen = \
            struct.unpack_from(">QQQI", b, i)
        i += 28
        e["value"] = b[i:i + vlen]
        assert len(e["value"]) == vlen
        i += vlen
        out.append(e)
    assert i == len(b), (i, len(b))
    return out


def reply(op, b):
    st = b[0]
    r = {"status": st}
    if op == GET:
        (r["rev"],) = struct.unpack_from(">Q", b, 1)
        if st == OK:
            r["create_rev"], r["mod_rev"], r["version"] = \
                struct.unpack_from(">QQQ", b, 9)
            r["value"] = b[33:]
        else:
            assert len(b) == 9
    elif op in (PUT, DELETE):
        assert len(b) == 9, b
        (r["rev"],) = struct.unpack_from(">Q", b, 1)
    elif op == COUNT:
        r["rev"], r["count"] = struct.unpack_from(">QQ", b, 1)
    elif op == RANGE:
        r["rev"], more, n = struct.unpack_from(">QBI", b, 1)
        r["more"] = more == 1
        r["entries"] = _entries(b[14:], n, False)
    elif op == WATCH:
        r["rev"], n = struct.unpack_from(">QI", b, 1)
        r["events"] = _entries(b[13:], n, True)
    return r
