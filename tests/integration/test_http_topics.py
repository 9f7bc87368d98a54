# SPDX-License-Identifier: MIT
"""ferry.topic over HTTP (/v1/topics, docs/http.md): a real ferryd on free
ports, SSE streams read from raw HTTP/1.1 sockets (and HTTP/2 frames),
binary subscribers and publishers beside them. A publish over HTTP
reaches a binary and an SSE subscriber; a stream gets its messages in
order with their ids, as text or base64; wildcards; a group of two
streams shares the messages; a reader that stops reading stays bounded
in ferryd's memory and is told what it lost (a gap with drop_oldest, an
error and the end with close); a client that leaves takes its
subscription with it (HTTP/1.1 close, half close, while stalled, HTTP/2
reset); keepalives; bad input; the caller token; shutdown."""
import base64
import json
import socket
import struct
import time

import promparse
import topicwire as tw
from ferrytest import (ERRORS, ConnClosed, FerryTestCase, http_req_bytes,
                       recv_some,
                       http_request)

T = "/v1/topics"


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A header field as an HPACK literal without indexing, new name."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class SseClient:
    """A GET of a stream on a raw HTTP/1.1 socket: the head, then the
    chunked body decoded and cut into SSE events as they come. rcvbuf
    (set before connecting) keeps the kernel's share of a reader that
    does not read small."""

    def __init__(self, addr, path, rcvbuf=None, headers=None, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((host, int(port)))
        self.sock = s
        self.raw = bytearray()   # bytes received, not yet decoded
        self.text = bytearray()  # the body so far, not yet cut
        self.eof = False
        self.ended = False       # the last chunk came
        self.status = None
        self.headers = {}
        self.body = b""          # a whole answer that is no stream
        s.sendall(http_req_bytes("GET", path, headers=headers))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        chunk = recv_some(self.sock, deadline,
                          "nothing from the stream in time")
        if not chunk:
            self.eof = True
            raise ConnClosed("stream closed by the server")
        self.raw += chunk

    def head(self, timeout=10.0):
        """Reads the status and headers (and a whole body that is no
        stream); returns the status."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            self._fill(deadline)
        i = self.raw.index(b"\r\n\r\n")
        lines = bytes(self.raw[:i]).decode("latin-1").split("\r\n")
        del self.raw[:i + 4]
        self.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "content-length" in self.headers:
            n = int(self.headers["content-length"])
            while len(self.raw) < n:
                self._fill(deadline)
            self.body = bytes(self.raw[:n])
            del self.raw[:n]
        return self.status

    def _decode(self):
        """Moves whole chunks from raw to text."""
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(bytes(self.raw[:i]).split(b";")[0], 16)
            if size == 0:
                self.ended = True
                return
            if len(self.raw) < i + 2 + size + 2:
                return
            self.text += self.raw[i + 2:i + 2 + size]
            del self.raw[:i + 2 + size + 2]

    def _cut(self):
        """The next whole event in text, or None."""
        i = self.text.find(b"\n\n")
        if i < 0:
            return None
        block = bytes(self.text[:i]).decode()
        del self.text[:i + 2]
        ev = {"comments": []}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comments"].append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                ev["data"] = (ev["data"] + "\n" + value) if "data" in ev \
                    else value
            else:
                ev[field] = value
        return ev

    def next(self, timeout=10.0, comments=False):
        """The next event (a dict: id, event, data, comments); comment
        blocks only when comments. None once the stream has ended."""
        deadline = time.monotonic() + timeout
        while True:
            self._decode()
            ev = self._cut()
            if ev is not None:
                if len(ev) > 1 or comments:
                    return ev
                continue
            if self.ended:
                return None
            self._fill(deadline)

    def messages(self, count, timeout=10.0):
        """count message events, [(id, data object)]; gaps fail."""
        out = []
        while len(out) < count:
            ev = self.next(timeout)
            if ev is None or ev.get("event") != "message":
                raise AssertionError(f"after {len(out)} messages: {ev}")
            out.append((int(ev["id"]), json.loads(ev["data"])))
        return out


class TopicHttpCase(FerryTestCase):
    TIME_LIMIT = 90
    ARGS = ()

    def setUp(self):
        super().setUp()
        self.d = self.daemon(*self.ARGS)
        if not self.d.http_addr:
            self.fail("this ferryd has no --http")
        self.fid = 0
        self.c = self.conn(self.d)
        self._sse = []

    def tearDown(self):
        for s in self._sse:
            s.close()
        super().tearDown()

    def stream(self, pattern, query="", rcvbuf=None, headers=None,
               status=200):
        s = SseClient(self.d.http_addr, f"{T}/{pattern}/stream{query}",
                      rcvbuf, headers)
        self._sse.append(s)
        self.assertEqual(s.head(), status, s.body)
        if status == 200:
            self.assertEqual(s.headers.get("content-type"),
                             "text/event-stream")
            self.assertEqual(s.headers.get("cache-control"), "no-cache")
            hello = s.next(comments=True)
            self.assertEqual(hello["comments"], ["subscribed"])
        return s

    def publish(self, subject, body=b"", status=200, headers=None):
        r = http_request(self.d.http_addr, "POST", f"{T}/{subject}", body,
                         headers)
        self.assertEqual(r.status, status, r)
        return r.json()

    # -- the binary side
    def call(self, op, payload, key=b"", deadline_ms=0, timeout=10.0):
        if isinstance(key, str):
            key = key.encode()
        self.fid += 1
        f = self.c.call(self.fid, tw.SVC, payload, key=key,
                        deadline_ms=deadline_ms, timeout=timeout)
        self.assertReply(f)
        return tw.reply(op, f.body)

    def stats(self):
        return self.call(tw.STATS, tw.stats())["json"]

    def sub_of(self, pattern):
        """The STATS object of the one subscription of pattern."""
        subs = [s for s in self.stats()["subs"] if s["pattern"] == pattern]
        self.assertEqual(len(subs), 1, subs)
        return subs[0]

    def publish_many(self, subject, payloads, batch=64):
        """PUBLISHes over the binary protocol, pipelined a batch at a
        time (so the publisher's own buffers stay small); receivers."""
        got = []
        for i in range(0, len(payloads), batch):
            ids = []
            for p in payloads[i:i + batch]:
                self.fid += 1
                ids.append(self.fid)
                self.c.send_request(self.fid, tw.SVC, tw.publish(p),
                                    key=subject.encode())
            frames = self.c.collect(ids, timeout=30)
            for fid in ids:
                f = frames[fid][0]
                self.assertReply(f)
                got.append(tw.reply(tw.PUBLISH, f.body)["receivers"])
        return got

    def metric(self, name):
        r = http_request(self.d.http_addr, "GET", "/metrics")
        return promparse.parse(r.body.decode()).value(name)

    def h2_stream(self, pattern, query=""):
        sock = socket.create_connection(("127.0.0.1", self.d.http_port),
                                        timeout=10)
        self._sse.append(sock)
        block = (hpack_literal(":method", "GET") +
                 hpack_literal(":scheme", "http") +
                 hpack_literal(":path", f"{T}/{pattern}/stream{query}") +
                 hpack_literal(":authority", "127.0.0.1"))
        sock.sendall(H2_PREFACE + h2_frame(4, 0, 0) +
                     h2_frame(1, 0x05, 1, block))
        return sock

    def h2_data(self, sock, want, timeout=10.0):
        """Reads frames of stream 1 until its DATA holds want; returns
        (the first byte of its HEADERS block, the DATA so far)."""
        buf, data, status = b"", b"", None
        end = time.monotonic() + timeout
        while want not in data:
            sock.settimeout(max(0.1, end - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk or time.monotonic() > end:
                self.fail(f"no {want!r} over HTTP/2: {data!r}")
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, sid, body = buf[3], \
                    int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]
                buf = buf[9 + n:]
                if sid == 1 and ftype == 1:
                    status = body[0]
                elif sid == 1 and ftype == 0:
                    data += body
        return status, data

    def wait_for(self, what, cond, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail(f"not within {timeout} s: {what}")


class TestPublishAndStream(TopicHttpCase):

    def test_publish_reaches_binary_and_sse(self):
        sub = self.call(tw.SUBSCRIBE, tw.subscribe(), key="orders.*")["sub_id"]
        s = self.stream("orders.*")
        doc = self.publish("orders.eu", b"first order")
        self.assertEqual(doc, {"receivers": 2})
        r = self.call(tw.POLL, tw.poll(sub, 5000), deadline_ms=10000)
        self.assertEqual(r["messages"], [(1, b"orders.eu", b"first order")])
        [(eid, data)] = s.messages(1)
        self.assertEqual((eid, data), (1, {"subject": "orders.eu", "seq": 1,
                                           "payload": "first order"}))
        # Nobody on that subject: 0, and nothing stored.
        self.assertEqual(self.publish("orders.eu.x", b"-"), {"receivers": 0})
        self.assertEqual(self.publish("other"), {"receivers": 0})
        st = self.stats()
        self.assertEqual((st["published"], st["unrouted"], st["routed"]),
                         (3, 2, 2))

    def test_order_ids_and_encodings(self):
        s = self.stream("seq.>")
        b64 = self.stream("seq.>", "?encoding=base64")
        bodies = [f"message {i}".encode() for i in range(300)]
        odd = ['q"uo\\te\n\r\t\x01 €'.encode(), b"\xff\x00\xfe", b"",
               "line one\nline two".encode()]
        self.assertEqual(set(self.publish_many("seq.n", bodies)), {2})
        for i, body in enumerate(odd):
            self.publish(f"seq.odd.{i}", body)
        got = s.messages(len(bodies) + len(odd))
        self.assertEqual([i for i, _ in got], list(range(1, 305)))
        for i, (eid, data) in enumerate(got[:300]):
            self.assertEqual(data, {"subject": "seq.n", "seq": eid,
                                    "payload": f"message {i}"})
        tail = [d for _, d in got[300:]]
        self.assertEqual(tail[0]["payload"].encode(), odd[0])
        # Bytes that are not UTF-8 come as base64 only.
        self.assertNotIn("payload", tail[1])
        self.assertEqual(base64.b64decode(tail[1]["payload_base64"]), odd[1])
        self.assertEqual(tail[2]["payload"], "")
        self.assertEqual(tail[3]["payload"], "line one\nline two")
        self.assertEqual([d["subject"] for d in tail],
                         [f"seq.odd.{i}" for i in range(4)])
        # ?encoding=base64: every payload as base64, nothing else.
        got = b64.messages(304)
        self.assertEqual([i for i, _ in got], list(range(1, 305)))
        for (_, data), body in zip(got, bodies + odd):
            self.assertEqual(set(data), {"subject", "seq", "payload_base64"})
            self.assertEqual(base64.b64decode(data["payload_base64"]), body)

    def test_big_payloads(self):
        """Payloads of a few MiB, formatted a chunk a job: text whose
        characters straddle the chunks stays text, whole; bytes that are
        not UTF-8 far into the payload make it base64."""
        s = self.stream("big")
        text = ("é€😀a" * 300000).encode()
        late = b"a" * 2500000 + b"\xff"
        # Every ASCII byte, those JSON escapes included, at every offset
        # of the eight-byte words the escaping scans.
        mixed = (bytes(range(128)) + "é€😀".encode() + b"x") * 3001
        for body in (text, late, mixed):
            self.assertEqual(self.publish("big", body), {"receivers": 1})
        [(_, one), (_, two), (_, three)] = s.messages(3, timeout=30)
        self.assertEqual(one["payload"].encode(), text)
        self.assertEqual(three["payload"].encode(), mixed)
        self.assertNotIn("payload", two)
        self.assertEqual(base64.b64decode(two["payload_base64"]), late)

    def test_wildcards(self):
        streams = {p: self.stream(p) for p in ("a.*", "a.>", "*.b.c", ">")}
        subjects = ["a", "a.b", "a.b.c", "x.b.c", "a.bb.c", "b"]
        want = {
            "a.*": ["a.b"],
            "a.>": ["a.b", "a.b.c", "a.bb.c"],
            "*.b.c": ["a.b.c", "x.b.c"],
            ">": subjects,
        }
        for subj in subjects:
            n = sum(1 for p in want if subj in want[p])
            self.assertEqual(self.publish(subj, subj.encode()),
                             {"receivers": n}, subj)
        for p, s in streams.items():
            got = s.messages(len(want[p]))
            self.assertEqual([d["subject"] for _, d in got], want[p], p)
            self.assertEqual([d["payload"] for _, d in got], want[p], p)
        # Nothing more came to the narrow ones.
        self.publish("zzz", b"last")
        self.assertEqual(streams[">"].messages(1)[0][1]["subject"], "zzz")
        with self.assertRaises(TimeoutError):
            streams["a.*"].next(timeout=0.5)

    def test_group_of_two_streams_splits(self):
        one = self.stream("jobs.*", "?group=workers")
        two = self.stream("jobs.*", "?group=workers")
        solo = self.stream("jobs.*")
        n = 200
        recv = self.publish_many("jobs.x", [str(i).encode() for i in range(n)])
        # The group counts once, beside the stream of its own.
        self.assertEqual(set(recv), {2})
        self.assertEqual(len(solo.messages(n)), n)
        got, seen = {1: [], 2: []}, 0
        while seen < n:
            for k, s in ((1, one), (2, two)):
                try:
                    ev = s.next(timeout=0.2)
                except TimeoutError:
                    continue
                self.assertEqual(ev["event"], "message", ev)
                got[k].append(int(json.loads(ev["data"])["payload"]))
                seen += 1
        both = got[1] + got[2]
        self.assertEqual(sorted(both), list(range(n)))
        self.assertGreater(len(got[1]), 0, got)
        self.assertGreater(len(got[2]), 0, got)
        # Each member's share in the order published.
        self.assertEqual(got[1], sorted(got[1]))
        self.assertEqual(got[2], sorted(got[2]))
        self.assertEqual(self.stats()["groups"], 1)

    def test_keepalive_when_idle(self):
        s = self.stream("quiet", "?keepalive_ms=1000")
        t0 = time.monotonic()
        ev = s.next(timeout=5, comments=True)
        self.assertEqual(ev["comments"], ["keepalive"])
        self.assertGreater(time.monotonic() - t0, 0.5)
        ev = s.next(timeout=5, comments=True)
        self.assertEqual(ev["comments"], ["keepalive"])
        # A message in between, then idle again.
        self.publish("quiet", b"hi")
        self.assertEqual(s.messages(1)[0][1]["payload"], "hi")
        ev = s.next(timeout=5, comments=True)
        self.assertEqual(ev["comments"], ["keepalive"])

    def test_poll_loop_keeps_subscription(self):
        """The stream polls again after each answer, message or empty: a
        subscription idle longer than topic_idle_ms (here 1 s) stays."""
        self.d.stop()
        self.d = self.daemon("--topic-idle-ms", "1000",
                             "--max-deadline-ms", "800",
                             "--default-deadline-ms", "500")
        self.c = self.conn(self.d)
        s = self.stream("idle")
        time.sleep(2.5)
        self.assertEqual(self.publish("idle", b"still here"),
                         {"receivers": 1})
        self.assertEqual(s.messages(1)[0][1]["payload"], "still here")
        self.assertEqual(self.stats()["expired"], 0)


class TestSlowReaders(TopicHttpCase):
    """A reader that takes nothing: ferryd holds one POLL answer for it
    and the subscription's max_pending, whatever is published, and tells
    it what it lost when it reads again."""

    ARGS = ("--http-stall-timeout-ms", "60000")
    N = 3000
    SIZE = 8192

    def stall(self, pattern, query):
        s = self.stream(pattern, query, rcvbuf=4096)
        used0 = self.metric("ferry_memory_used_bytes")
        body = b"x" * self.SIZE
        recv = []
        for i in range(0, self.N, 500):
            recv += self.publish_many(pattern, [
                b"%06d" % j + body for j in range(i, min(i + 500, self.N))])
        # Sampled once a turn: the highest it got while that went on.
        peak = self.metric("ferry_memory_peak_bytes")
        used = self.metric("ferry_memory_used_bytes")
        total = self.N * (self.SIZE + 6)
        print(f"\n  {total >> 20} MiB published to a reader that does not "
              f"read: ferryd's live bytes {used0 / 1e6:.1f} MB before, "
              f"{used / 1e6:.1f} MB after, peak {peak / 1e6:.1f} MB")
        # Far below what was published (24 MiB): one POLL answer (1 MiB),
        # the buffer of max_pending, a piece being sent.
        self.assertLess(used - used0, 8 << 20)
        self.assertLess(peak - used0, 8 << 20)
        return s, recv

    def test_drop_oldest_tells_a_gap(self):
        s, recv = self.stall("slow", "?max_pending=50")
        self.assertEqual(set(recv), {1})
        sub = self.sub_of("slow")
        self.assertEqual(sub["pending"], 50)
        self.assertGreater(sub["dropped"], self.N // 2)
        # Reading again: what was sent already, then the gap, then the
        # newest max_pending.
        seqs, dropped, payloads = [], 0, []
        while len(seqs) + dropped < self.N:
            ev = s.next(timeout=10)
            self.assertIsNotNone(ev)
            if ev["event"] == "gap":
                dropped += json.loads(ev["data"])["dropped"]
                continue
            self.assertEqual(ev["event"], "message", ev)
            data = json.loads(ev["data"])
            self.assertEqual(data["seq"], int(ev["id"]))
            seqs.append(data["seq"])
            payloads.append(int(data["payload"][:6]))
        self.assertEqual(len(seqs) + dropped, self.N)
        self.assertGreater(dropped, 0)
        self.assertEqual(seqs, sorted(seqs))
        # The ids have a hole exactly where the messages were lost.
        self.assertEqual(len(set(seqs)), len(seqs))
        self.assertEqual(seqs[-1], self.N)
        self.assertEqual(seqs[-50:], list(range(self.N - 49, self.N + 1)))
        self.assertEqual(payloads, [q - 1 for q in seqs])
        # It goes on afterwards.
        self.publish("slow", b"after")
        [(eid, data)] = s.messages(1)
        self.assertEqual((eid, data["payload"]), (self.N + 1, "after"))

    def test_close_ends_with_an_error(self):
        s, recv = self.stall("shut", "?max_pending=20&policy=close")
        # Closed by the message that found its buffer full; later ones
        # reach nobody.
        self.assertEqual(recv[-1], 0)
        self.assertIn(1, recv)
        st = self.stats()
        self.assertEqual(st["slow_closed"], 1)
        events = []
        while True:
            ev = s.next(timeout=10)
            if ev is None:
                break
            events.append(ev)
        self.assertTrue(s.ended)
        kinds = [e["event"] for e in events]
        self.assertEqual(kinds[-1], "error", kinds[-5:])
        self.assertEqual(set(kinds[:-1]), {"message"})
        err = json.loads(events[-1]["data"])
        self.assertEqual(err["error"], "SLOW_CONSUMER")
        self.assertEqual(err["code"], ERRORS["SLOW_CONSUMER"])
        self.assertIn("slow subscriber", err["message"])
        self.assertEqual([int(e["id"]) for e in events[:-1]],
                         list(range(1, len(events))))
        self.wait_for("the subscription is gone",
                      lambda: self.stats()["subscriptions"] == 0)

    def test_http2_reader_without_window(self):
        """HTTP/2 with no window left: h2o takes no more, the stream polls
        no more, and the subscription's buffer is what waits; with the
        window opened the reader gets the rest and the gap."""
        sock = self.h2_stream("h2slow", "?max_pending=20")
        self.h2_data(sock, b": subscribed\n\n")
        recv = self.publish_many("h2slow", [b"%06d" % i + b"w" * self.SIZE
                                            for i in range(400)])
        self.assertEqual(set(recv), {1})
        sub = self.sub_of("h2slow")
        self.assertEqual(sub["pending"], 20)
        self.assertGreater(sub["dropped"], 300)
        inc = struct.pack(">I", (1 << 31) - 1 - 65535)
        sock.sendall(h2_frame(8, 0, 0, inc) + h2_frame(8, 0, 1, inc))
        _, data = self.h2_data(sock, b'"seq":400,', timeout=20)
        self.assertIn(b"event: gap\ndata: {\"dropped\":", data)
        sock.close()
        self.wait_for("the subscription is gone",
                      lambda: self.stats()["subscriptions"] == 0)

    def test_stalled_client_that_leaves(self):
        """A client that leaves while ferryd holds a piece for it: the
        subscription goes, the piece with the connection."""
        s = self.stream("away", "?max_pending=10", rcvbuf=4096)
        self.publish_many("away", [b"y" * self.SIZE] * 400)
        self.assertGreater(self.sub_of("away")["dropped"], 0)
        s.close()
        self.wait_for("the subscription is gone",
                      lambda: self.stats()["subscriptions"] == 0)
        self.assertEqual(self.stats()["expired"], 0)


class TestClientLeaves(TopicHttpCase):
    """The subscription of a stream whose client goes away is dropped at
    once (UNSUBSCRIBE), not left to topic_idle_ms (30 s here)."""

    def subs(self):
        return self.stats()["subscriptions"]

    def check_gone(self):
        self.wait_for("the subscription is dropped",
                      lambda: self.subs() == 0, timeout=3)
        st = self.stats()
        self.assertEqual((st["expired"], st["polls_waiting"]), (0, 0))
        self.assertGreaterEqual(st["ops"]["unsubscribe"], 1)
        # Publishing there reaches nobody now.
        self.assertEqual(self.publish("left.x", b"?"), {"receivers": 0})

    def test_http1_close_while_idle(self):
        s = self.stream("left.*")
        self.assertEqual((self.subs(), self.stats()["polls_waiting"]), (1, 1))
        s.close()
        self.check_gone()

    def test_http1_half_close(self):
        s = self.stream("left.*")
        s.sock.shutdown(socket.SHUT_WR)
        self.check_gone()

    def test_http1_close_with_messages_flowing(self):
        s = self.stream("left.*")
        self.publish_many("left.x", [b"m"] * 50)
        s.messages(10)
        s.close()
        self.publish_many("left.x", [b"m"] * 50)
        self.check_gone()

    def test_http2_stream(self):
        sock = self.h2_stream("left.*")
        status, data = self.h2_data(sock, b": subscribed\n\n")
        self.assertEqual(status, 0x88)  # HPACK's ":status: 200"
        self.assertEqual(self.publish("left.h2", b"over h2"),
                         {"receivers": 1})
        _, data = self.h2_data(sock, b"over h2")
        self.assertIn(b'id: 1\nevent: message\ndata: {"subject":"left.h2",'
                      b'"seq":1,"payload":"over h2"}\n\n', data)
        sock.close()
        self.check_gone()

    def test_http2_reset(self):
        sock = self.h2_stream("left.*")
        self.wait_for("subscribed", lambda: self.subs() == 1)
        sock.sendall(h2_frame(3, 0, 1, struct.pack(">I", 8)))  # CANCEL
        self.check_gone()

    def test_http2_close(self):
        sock = self.h2_stream("left.*")
        self.wait_for("subscribed", lambda: self.subs() == 1)
        sock.close()
        self.check_gone()

    def test_many_streams_come_and_go(self):
        streams = [self.stream(f"left.{i}") for i in range(40)]
        self.assertEqual(self.subs(), 40)
        self.assertEqual(self.publish("left.7", b"seven"), {"receivers": 1})
        self.assertEqual(streams[7].messages(1)[0][1]["payload"], "seven")
        for s in streams:
            s.close()
        self.check_gone()


class TestBadInput(TopicHttpCase):

    def test_400s(self):
        bad = [
            ("POST", f"{T}/a*", "subject"),
            ("POST", f"{T}/a..b", "subject"),
            ("POST", f"{T}/a%20b", "subject"),
            ("POST", f"{T}/{'s' * 256}", "subject"),
            ("POST", f"{T}/a?x=1", "no parameters"),
            ("GET", f"{T}/a..b/stream", "pattern"),
            ("GET", f"{T}/a.%3E.b/stream", "pattern"),
            ("GET", f"{T}/a/stream?max_pending=0", "max_pending"),
            ("GET", f"{T}/a/stream?max_pending=65537", "max_pending"),
            ("GET", f"{T}/a/stream?max_pending=ten", "max_pending"),
            ("GET", f"{T}/a/stream?policy=never", "policy"),
            ("GET", f"{T}/a/stream?encoding=hex", "encoding"),
            ("GET", f"{T}/a/stream?keepalive_ms=10", "keepalive_ms"),
            ("GET", f"{T}/a/stream?keepalive_ms=300001", "keepalive_ms"),
            ("GET", f"{T}/a/stream?group=", "group"),
            ("GET", f"{T}/a/stream?group=" + "g" * 256, "group"),
            ("GET", f"{T}/a/stream?group=a+b", "group"),
            ("GET", f"{T}/a/stream?group", "needs a value"),
            ("GET", f"{T}/a/stream?policy=close&policy=close", "twice"),
            ("GET", f"{T}/a/stream?wait_ms=5", "wait_ms"),
        ]
        for method, path, word in bad:
            r = http_request(self.d.http_addr, method, path,
                             b"" if method == "POST" else None)
            doc = self.assertHttpError(r, 400, "INVALID_ARGUMENT", path)
            self.assertIn(word, doc["message"], path)
        # ferryd's own subjects: refused by ferry.topic, as on its door.
        r = http_request(self.d.http_addr, "POST", f"{T}/ferry.queue.q.pushed",
                         b"x")
        doc = self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        self.assertIn("ferryd's own events", doc["message"])
        r = http_request(self.d.http_addr, "POST", f"{T}/ferry", b"x")
        self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        # Nothing of that subscribed.
        self.assertEqual(self.stats()["subscriptions"], 0)

    def test_routes_and_methods(self):
        for path in (T, f"{T}/", f"{T}x", f"{T}//stream", f"{T}/a/streams",
                     f"{T}/a/b/stream", f"{T}/a/stream/"):
            r = http_request(self.d.http_addr, "POST", path, b"")
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json()["error"], "NOT_FOUND")
        for method, path, allow in (("GET", f"{T}/a", "POST"),
                                    ("PUT", f"{T}/a", "POST"),
                                    ("POST", f"{T}/a/stream", "GET"),
                                    ("HEAD", f"{T}/a/stream", "GET")):
            r = http_request(self.d.http_addr, method, path,
                             b"" if method in ("POST", "PUT") else None)
            self.assertEqual(r.status, 405, (method, path, r))
            self.assertEqual(r.headers.get("allow"), allow)
            if method != "HEAD":
                self.assertEqual(r.json()["error"], "METHOD_NOT_ALLOWED")

    def test_subjects_and_patterns_percent_encoded(self):
        s = self.stream("%2A.b%2Fc")
        self.assertEqual(self.publish("x.b%2Fc", b"slash"), {"receivers": 1})
        self.assertEqual(s.messages(1)[0][1]["subject"], "x.b/c")
        s2 = self.stream("%3E")
        self.publish('q"uote.\\', b"odd")
        self.assertEqual(s2.messages(1)[0][1]["subject"], 'q"uote.\\')


class TestLimits(FerryTestCase):

    def test_too_big(self):
        d = self.daemon("--topic-max-bytes", "65536")
        s = SseClient(d.http_addr, f"{T}/big/stream")
        try:
            self.assertEqual(s.head(), 200)
            r = http_request(d.http_addr, "POST", f"{T}/big", b"z" * 70000)
            self.assertHttpError(r, 413, "TOO_BIG")
            r = http_request(d.http_addr, "POST", f"{T}/big", b"z" * 60000)
            self.assertEqual((r.status, r.json()), (200, {"receivers": 1}))
            ev = s.next(timeout=10)
            self.assertEqual(json.loads(ev["data"])["payload"], "z" * 60000)
        finally:
            s.close()

    def test_caller_token(self):
        d = self.daemon("--caller-token", "s3cret")
        r = http_request(d.http_addr, "POST", f"{T}/t", b"x")
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        s = SseClient(d.http_addr, f"{T}/t/stream")
        try:
            self.assertEqual(s.head(), 401)
        finally:
            s.close()
        auth = {"Authorization": "Bearer s3cret"}
        s = SseClient(d.http_addr, f"{T}/t/stream", headers=auth)
        try:
            self.assertEqual(s.head(), 200)
            r = http_request(d.http_addr, "POST", f"{T}/t", b"x", auth)
            self.assertEqual((r.status, r.json()), (200, {"receivers": 1}))
            ev = s.next(timeout=10)
            self.assertEqual(json.loads(ev["data"])["payload"], "x")
        finally:
            s.close()

    def test_shutdown_ends_streams(self):
        """SIGTERM: the held POLLs are answered SHUTTING_DOWN at the end of
        grace_ms, each stream tells it and ends, and ferryd exits 0."""
        d = self.daemon("--grace-ms", "300")
        streams = [SseClient(d.http_addr, f"{T}/bye.{i}/stream")
                   for i in range(3)]
        try:
            for s in streams:
                self.assertEqual(s.head(), 200)
                self.assertEqual(s.next(comments=True)["comments"],
                                 ["subscribed"])
            t0 = time.monotonic()
            d.proc.send_signal(15)
            for s in streams:
                ev = s.next(timeout=10)
                self.assertEqual(ev["event"], "error", ev)
                self.assertEqual(json.loads(ev["data"])["error"],
                                 "SHUTTING_DOWN")
                self.assertIsNone(s.next(timeout=10))
            self.assertEqual(d.proc.wait(10), 0)
            self.assertLess(time.monotonic() - t0, 8)
        finally:
            for s in streams:
                s.close()

    def test_shutdown_with_a_stalled_stream(self):
        """A stream whose client reads nothing at SIGTERM: its piece in
        flight never completes, the server's bounds shut its socket, and
        ferryd still exits 0 (the subscription goes with the engine)."""
        d = self.daemon("--grace-ms", "300")
        s = SseClient(d.http_addr, f"{T}/stuck/stream", rcvbuf=4096)
        try:
            self.assertEqual(s.head(), 200)
            for _ in range(60):
                r = http_request(d.http_addr, "POST", f"{T}/stuck",
                                 b"s" * 65536)
                self.assertEqual(r.status, 200, r)
            t0 = time.monotonic()
            d.proc.send_signal(15)
            self.assertEqual(d.proc.wait(15), 0)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            s.close()
