# SPDX-License-Identifier: MIT
"""ferry.id through a real ferryd: ten million ids in batches of 10,000
over 4 connections with no duplicate (each batch strictly increasing, and
the batches' [first, last] ranges disjoint), strictly increasing on one
connection, DECODE round trip, two node ids, malformed payloads, and a
restart with the clock set back 10 minutes (FERRY_TEST_CLOCK_OFFSET_MS,
read only by the sanitizer build, -DFERRY_TESTING): every new id lies
above every old one. Payloads are encoded here, independently of the C
codec (docs/services.md)."""
import json
import struct
import threading
import time

from ferrytest import FerryTestCase, http_request, run_ferry

S = "ferry.id"
EPOCH = 1767225600000


def next_(n):
    return struct.pack(">BI", 1, n)


def decode(i):
    return struct.pack(">BQ", 2, i)


def parse_next(body):
    st, n = struct.unpack_from(">BI", body)
    assert st == 0, st
    assert len(body) == 5 + 8 * n, (len(body), n)
    return struct.unpack_from(">%dQ" % n, body, 5)


def split(i):
    return ((i >> 22) + EPOCH, (i >> 12) & 1023, i & 4095)


class TestId(FerryTestCase):
    TIME_LIMIT = 180

    def ids(self, c, n, fid=1):
        f = c.call(fid, S, next_(n))
        self.assertReply(f)
        return parse_next(f.body)

    def test_ten_million_no_duplicate(self):
        d = self.daemon()
        batches, per_conn, depth = 1000, 250, 8
        ranges = []
        lock = threading.Lock()
        errors = []

        def run(c):
            try:
                mine = []
                sent = 0
                got = 0
                while sent < min(depth, per_conn):
                    sent += 1
                    c.send_request(sent, S, next_(10000))
                while got < per_conn:
                    got += 1
                    f = c.wait_for(got, timeout=30)
                    if sent < per_conn:
                        sent += 1
                        c.send_request(sent, S, next_(10000))
                    ids = parse_next(f.body)
                    assert len(ids) == 10000
                    # strictly increasing inside the batch
                    assert all(a < b for a, b in zip(ids, ids[1:]))
                    mine.append((ids[0], ids[-1]))
                # and from one connection, batch after batch
                assert all(a[1] < b[0] for a, b in zip(mine, mine[1:]))
                with lock:
                    ranges.extend(mine)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        conns = [self.conn(d) for _ in range(4)]
        t0 = time.monotonic()
        ts = [threading.Thread(target=run, args=(c,)) for c in conns]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(ranges), batches)
        ranges.sort()
        for a, b in zip(ranges, ranges[1:]):
            self.assertLess(a[1], b[0], "two batches overlap: a duplicate")
        dt = time.monotonic() - t0
        print(f"10,000,000 ids in {dt:.1f} s", flush=True)
        r = http_request(d.http_addr, "GET", "/metrics")
        self.assertIn("ferry_id_issued_total 10000000", r.body.decode())

    def test_strictly_increasing_and_decode(self):
        d = self.daemon("--node-id", "517")
        c = self.conn(d)
        last = 0
        before = int(time.time() * 1000)
        for fid in range(1, 301):
            for i in self.ids(c, 1 + fid % 7, fid):
                self.assertGreater(i, last)
                last = i
        after = int(time.time() * 1000)
        f = c.call(400, S, decode(last))
        self.assertReply(f)
        ms, node, seq = struct.unpack(">QHH", f.body[1:])
        self.assertEqual(f.body[0], 0)
        self.assertEqual((ms, node, seq), split(last))
        self.assertEqual(node, 517)
        # the mark may run the ids a little ahead of the clock, never behind
        self.assertGreaterEqual(ms, before - 5)
        self.assertLessEqual(ms, after + 2000)

    def test_two_nodes_differ(self):
        a = self.daemon("--node-id", "1")
        b = self.daemon("--node-id", "2")
        ia = set(self.ids(self.conn(a), 5000))
        ib = set(self.ids(self.conn(b), 5000))
        self.assertEqual(ia & ib, set())
        self.assertEqual({split(i)[1] for i in ia}, {1})
        self.assertEqual({split(i)[1] for i in ib}, {2})

    def test_malformed(self):
        d = self.daemon()
        c = self.conn(d)
        cases = [
            (b"", "empty payload"),
            (b"\x01\x00\x00", "needs 4 bytes after op, got 2"),
            (next_(0), "count 0 out of range"),
            (next_(10001), "count 10001 out of range"),
            (b"\x02\x00", "needs 8 bytes after op, got 1"),
            (decode(1 << 63), "bit 63"),
            (b"\x09", "unknown op 9"),
        ]
        for fid, (p, msg) in enumerate(cases, 1):
            f = c.call(fid, S, p)
            text = self.assertError(f, "INVALID_ARGUMENT")
            self.assertIn(msg, text.decode() if isinstance(text, bytes)
                          else text)

    def test_restart_with_clock_set_back(self):
        d = self.daemon()
        old = []
        c = self.conn(d)
        for fid in range(1, 21):
            old.extend(self.ids(c, 10000, fid))
        c.close()
        self.assertEqual(d.stop(), 0, d.log_tail())
        d.env = {"FERRY_TEST_CLOCK_OFFSET_MS": "-600000"}
        d.start()
        self.assertIn("clock offset -600000 ms", d.log)
        c = self.conn(d)
        new = []
        for fid in range(1, 21):
            new.extend(self.ids(c, 10000, fid))
        self.assertGreater(min(new), max(old))
        self.assertTrue(all(a < b for a, b in zip(new, new[1:])))


class TestIdHttp(FerryTestCase):
    TIME_LIMIT = 60

    def test_http(self):
        d = self.daemon("--node-id", "9")
        r = http_request(d.http_addr, "GET", "/v1/id?count=50")
        self.assertEqual(r.status, 200, r.body)
        ids = [int(x) for x in r.json()["ids"]]
        self.assertEqual(len(ids), 50)
        self.assertEqual(ids, sorted(set(ids)))
        r = http_request(d.http_addr, "GET", "/v1/id")
        self.assertEqual(len(r.json()["ids"]), 1)
        self.assertGreater(int(r.json()["ids"][0]), ids[-1])
        r = http_request(d.http_addr, "GET", f"/v1/id/{ids[3]}")
        self.assertEqual(r.status, 200, r.body)
        ms, node, seq = split(ids[3])
        self.assertEqual(r.json(), {"id": str(ids[3]), "unix_ms": ms,
                                    "node": 9, "seq": seq})
        for bad in ("/v1/id?count=0", "/v1/id?count=10001", "/v1/id?n=3",
                    "/v1/id/abc", f"/v1/id/{1 << 63}"):
            r = http_request(d.http_addr, "GET", bad)
            self.assertEqual(r.status, 400, (bad, r.body))
        r = http_request(d.http_addr, "POST", "/v1/id")
        self.assertEqual(r.status, 405)
        st = http_request(d.http_addr, "GET", "/v1/stats").json()
        self.assertEqual(st["servants"]["id"]["issued"], 51)
        self.assertEqual(st["servants"]["id"]["node_id"], 9)


class TestIdCli(FerryTestCase):
    TIME_LIMIT = 60

    def test_cli(self):
        d = self.daemon("--node-id", "33")
        r = run_ferry(["--addr", d.addr, "id", "5"])
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [int(x) for x in r.stdout.decode().split()]
        self.assertEqual(len(ids), 5)
        self.assertEqual(ids, sorted(set(ids)))
        r = run_ferry(["--addr", d.addr, "id"])
        self.assertEqual(len(r.stdout.decode().split()), 1)
        r = run_ferry(["--addr", d.addr, "id", "decode", str(ids[2])])
        self.assertEqual(r.returncode, 0, r.stderr)
        ms, node, seq = split(ids[2])
        self.assertIn(f"unix_ms={ms} node=33 seq={seq}", r.stdout.decode())
        self.assertRegex(r.stdout.decode(), r"^time=20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
        r = run_ferry(["--addr", d.addr, "id", "decode", str(ids[2]),
                       "--json"])
        self.assertEqual(json.loads(r.stdout.decode())["seq"], seq)
        r = run_ferry(["--addr", d.addr, "id", "3", "--json"])
        self.assertEqual(len(json.loads(r.stdout.decode())["ids"]), 3)
        for bad in (["id", "0"], ["id", "10001"], ["id", "decode"],
                    ["id", "decode", "x"], ["id", "decode", str(1 << 63)],
                    ["id", "--nope"]):
            r = run_ferry(["--addr", d.addr] + bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))
        r = run_ferry(["--addr", d.addr, "services", "--json"])
        svc = [s for s in json.loads(r.stdout.decode())["services"]
               if s["name"] == "ferry.id"]
        self.assertEqual(svc[0]["backend"], "id")
        self.assertEqual(svc[0]["id"]["node_id"], 33)
        self.assertGreaterEqual(svc[0]["id"]["issued"], 9)
        r = run_ferry(["id", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("ferry id decode ID", r.stdout.decode())


class TestIdClockBack(FerryTestCase):
    """The clock stepped back while ferryd runs (test builds:
    FERRY_TEST_CLOCK_OFFSET_FILE is read at every clock reading)."""
    TIME_LIMIT = 60

    def test_wait_then_error(self):
        import os
        import tempfile
        tmp = tempfile.mkdtemp(prefix="ferry-clock-")
        self.addCleanup(__import__("shutil").rmtree, tmp, True)
        path = os.path.join(tmp, "off")

        def set_offset(ms):
            with open(path + ".tmp", "w") as f:
                f.write(str(ms))
            os.replace(path + ".tmp", path)

        set_offset(0)
        d = self.daemon("--id-clock-wait-ms", "400",
                        env={"FERRY_TEST_CLOCK_OFFSET_FILE": path})
        c = self.conn(d)
        last = max(self.ids_(c, 100, 1))
        # back 3 s: waits 400 ms, then OVERLOADED, counted
        set_offset(-3000)
        t0 = time.monotonic()
        f = c.call(2, S, next_(1))
        dt = time.monotonic() - t0
        msg = self.assertError(f, "OVERLOADED")
        self.assertRegex(msg.decode(), r"^clock moved back (2[5-9]\d\d|3\d\d\d) ms$")
        self.assertGreaterEqual(dt, 0.38)
        self.assertLess(dt, 3.0)
        # back 200 ms right after an id: waits for the clock, then ids
        # above the last
        set_offset(0)
        last = max(self.ids_(c, 10, 5))
        set_offset(-200)
        t0 = time.monotonic()
        ids = self.ids_(c, 10, 3)
        dt = time.monotonic() - t0
        self.assertGreater(min(ids), last)
        self.assertGreaterEqual(dt, 0.15)
        self.assertLess(dt, 0.4)
        set_offset(0)
        ids2 = self.ids_(c, 10, 4)
        self.assertGreater(min(ids2), max(ids))
        st = http_request(d.http_addr, "GET", "/v1/stats").json()
        self.assertGreaterEqual(st["servants"]["id"]["clock_back"], 1)
        self.assertEqual(st["servants"]["id"]["clock_back_errors"], 1)
        m = http_request(d.http_addr, "GET", "/metrics").body.decode()
        self.assertIn("ferry_id_clock_back_errors_total 1\n", m)

    def ids_(self, c, n, fid):
        f = c.call(fid, S, next_(n))
        self.assertReply(f)
        return parse_next(f.body)
