# SPDX-License-Identifier: MIT
"""ferry.topic's payloads (docs/topics.md) encoded in Python, apart from
the C codec, for the tests: requests to bytes, replies to dicts."""
import json
import struct

PUBLISH, SUBSCRIBE, POLL, UNSUBSCRIBE, STATS = 1, 2, 3, 4, 5
OK, EMPTY, NOT_FOUND = 0, 1, 3
DROP_OLDEST, CLOSE = 0, 1
SVC = "ferry.topic"


def publish(message=b""):
    """PUBLISH: the subject travels as the routing key."""
    return bytes([PUBLISH]) + message


def subscribe(group=b"", max_pending=0, policy=DROP_OLDEST):
    """SUBSCRIBE: the pattern travels as the routing key."""
    if isinstance(group, str):
        group = group.encode()
    return (struct.pack(">BB", SUBSCRIBE, len(group)) + group +
            struct.pack(">IB", max_pending, policy))


def poll(sub_id, wait_ms=0, max_msgs=0):
    return struct.pack(">BQII", POLL, sub_id, wait_ms, max_msgs)


def unsubscribe(sub_id):
    return struct.pack(">BQ", UNSUBSCRIBE, sub_id)


def stats(sub_id=None):
    if sub_id is None:
        return bytes([STATS])
    return struct.pack(">BQ", STATS, sub_id)


def messages(b, n):
    """The n POLL entries in b: [(seq, subject, payload)]."""
    out, i = [], 0
    for _ in range(n):
        seq, slen = struct.unpack_from(">QH", b, i)
        i += 10
        subject = b[i:i + slen]
        i += slen
        (plen,) = struct.unpack_from(">I", b, i)
        i += 4
        payload = b[i:i + plen]
        assert len(payload) == plen
        i += plen
        out.append((seq, subject, payload))
    assert i == len(b), (i, len(b))
    return out


def reply(op, b):
    """A reply payload as a dict; asserts on its exact layout."""
    st = b[0]
    r = {"status": st}
    if op == PUBLISH:
        assert st == OK and len(b) == 5, b
        (r["receivers"],) = struct.unpack_from(">I", b, 1)
    elif op == SUBSCRIBE:
        assert st == OK and len(b) == 9, b
        (r["sub_id"],) = struct.unpack_from(">Q", b, 1)
    elif op == POLL:
        if st == NOT_FOUND:
            assert len(b) == 1, b
        elif st == EMPTY:
            assert len(b) == 9, b
            (r["dropped"],) = struct.unpack_from(">Q", b, 1)
            r["messages"] = []
        else:
            assert st == OK, b
            r["dropped"], n = struct.unpack_from(">QI", b, 1)
            r["messages"] = messages(b[13:], n)
            assert n >= 1
    elif op == UNSUBSCRIBE:
        assert len(b) == 1 and st in (OK, NOT_FOUND), b
    elif op == STATS:
        if st == NOT_FOUND:
            assert len(b) == 1
        else:
            assert st == OK
            r["json"] = json.loads(b[1:])
    return r
