# SPDX-License-Identifier: MIT
"""ferry.cache through a real ferryd: every operation over the binary
protocol (payloads of docs/services.md, encoded by tests/lib/cachewire.py
independently of the C codec), TTL expiry, cas mismatch, incr on a value
that is not a number, items over cache_item_max, eviction under a small
cache_max_bytes, malformed payloads, the HTTP routes /v1/cache/{key},
the stats in /v1/stats and /metrics, and `ferry cache`."""
import json
import struct
import time

import cachewire as cw
from ferrytest import FerryTestCase, http_request, run_ferry

S = cw.SERVICE


class TestCache(FerryTestCase):
    TIME_LIMIT = 90

    def setUp(self):
        super().setUp()
        self.fid = 0

    def call(self, c, key, payload):
        self.fid += 1
        return c.call(self.fid, S, payload, key=key)

    def ok(self, c, key, payload):
        f = self.call(c, key, payload)
        self.assertReply(f)
        return f.body

    def stats(self, d):
        r = http_request(d.http_addr, "GET", "/v1/stats")
        self.assertEqual(r.status, 200, r.body)
        return r.json()["servants"]["cache"]

    def test_every_op(self):
        d = self.daemon()
        c = self.conn(d)
        self.assertIsNone(cw.parse_hit(self.ok(c, b"k", cw.get())))
        st, v1 = cw.parse_u64(self.ok(c, b"k", cw.set_(b"one", flags=7)))
        self.assertEqual(st, cw.OK)
        hit = cw.parse_hit(self.ok(c, b"k", cw.get()))
        self.assertEqual((hit.flags, hit.cas, hit.value), (7, v1, b"one"))
        # add: only when absent.
        self.assertEqual(cw.parse_u64(self.ok(c, b"k", cw.store(
            cw.ADD, b"x")))[0], cw.NOT_STORED)
        self.assertEqual(cw.parse_u64(self.ok(c, b"new", cw.store(
            cw.ADD, b"x")))[0], cw.OK)
        # replace: only when present.
        self.assertEqual(cw.parse_u64(self.ok(c, b"absent", cw.store(
            cw.REPLACE, b"x")))[0], cw.NOT_STORED)
        st, v2 = cw.parse_u64(self.ok(c, b"k", cw.store(cw.REPLACE, b"two",
                                                         flags=9)))
        self.assertEqual(st, cw.OK)
        self.assertGreater(v2, v1)
        # append/prepend keep the flags; absent keys are not stored.
        self.ok(c, b"k", cw.append(b"-end"))
        self.ok(c, b"k", cw.prepend(b"start-"))
        hit = cw.parse_hit(self.ok(c, b"k", cw.get()))
        self.assertEqual((hit.value, hit.flags), (b"start-two-end", 9))
        self.assertEqual(cw.parse_u64(self.ok(c, b"absent", cw.append(
            b"x")))[0], cw.NOT_STORED)
        # cas: with the version a get returned, then with a stale one.
        st, v3 = cw.parse_u64(self.ok(c, b"k", cw.cas(b"three", hit.cas)))
        self.assertEqual(st, cw.OK)
        self.assertEqual(cw.parse_u64(self.ok(c, b"k", cw.cas(
            b"stale", hit.cas)))[0], cw.EXISTS)
        self.assertEqual(cw.parse_u64(self.ok(c, b"absent", cw.cas(
            b"x", 1)))[0], cw.NOT_FOUND)
        self.assertEqual(cw.parse_hit(self.ok(c, b"k", cw.get())).value,
                         b"three")
        # incr/decr: unsigned 64-bit, incr wraps, decr stops at 0.
        self.ok(c, b"n", cw.set_(b"10"))
        self.assertEqual(cw.parse_u64(self.ok(c, b"n", cw.incr(5))),
                         (cw.OK, 15))
        self.assertEqual(cw.parse_u64(self.ok(c, b"n", cw.decr(100))),
                         (cw.OK, 0))
        self.ok(c, b"n", cw.set_(str(2**64 - 1).encode()))
        self.assertEqual(cw.parse_u64(self.ok(c, b"n", cw.incr(2))),
                         (cw.OK, 1))
        self.assertEqual(cw.parse_u64(self.ok(c, b"nope", cw.incr(1)))[0],
                         cw.NOT_FOUND)
        # touch and gat.
        self.assertEqual(self.ok(c, b"k", cw.touch(60000)), bytes([cw.OK]))
        self.assertEqual(self.ok(c, b"nope", cw.touch(1)),
                         bytes([cw.NOT_FOUND]))
        self.assertEqual(cw.parse_hit(self.ok(c, b"k", cw.gat(0))).value,
                         b"three")
        # get_many: hits and misses in order; the routing key may be empty.
        many = cw.parse_many(self.ok(c, b"", cw.get_many(
            [b"k", b"nope", b"new"])))
        self.assertEqual([h and h.value for h in many],
                         [b"three", None, b"x"])
        # delete.
        self.assertEqual(self.ok(c, b"new", cw.delete()), bytes([cw.OK]))
        self.assertEqual(self.ok(c, b"new", cw.delete()),
                         bytes([cw.NOT_FOUND]))
        # flush: everything goes.
        self.assertEqual(self.ok(c, b"", cw.flush()), bytes([cw.OK]))
        self.assertIsNone(cw.parse_hit(self.ok(c, b"k", cw.get())))
        self.assertIsNone(cw.parse_hit(self.ok(c, b"n", cw.get())))
        # Keys and values are any bytes.
        key, val = bytes(range(1, 251)), bytes(range(256)) * 40
        self.ok(c, key, cw.set_(val))
        self.assertEqual(cw.parse_hit(self.ok(c, key, cw.get())).value, val)
        st = self.stats(d)
        self.assertEqual(st["ops"]["set"], 4)
        self.assertGreaterEqual(st["ops"]["cas"], 3)
        self.assertEqual(st["cas_mismatches"], 1)
        self.assertEqual(st["hits"], 7)
        self.assertGreaterEqual(st["misses"], 3)

    def test_ttl_expiry(self):
        d = self.daemon()
        c = self.conn(d)
        self.ok(c, b"short", cw.set_(b"v", ttl_ms=300))
        self.ok(c, b"kept", cw.set_(b"v", ttl_ms=300))
        self.ok(c, b"forever", cw.set_(b"v"))
        self.assertIsNotNone(cw.parse_hit(self.ok(c, b"short", cw.get())))
        # touch gives "kept" a longer life.
        self.ok(c, b"kept", cw.touch(60000))
        time.sleep(0.6)
        self.assertIsNone(cw.parse_hit(self.ok(c, b"short", cw.get())))
        self.assertIsNotNone(cw.parse_hit(self.ok(c, b"kept", cw.get())))
        self.assertIsNotNone(cw.parse_hit(self.ok(c, b"forever", cw.get())))
        # A flush with a delay leaves items until it comes.
        self.ok(c, b"", cw.flush(300))
        self.assertIsNotNone(cw.parse_hit(self.ok(c, b"forever", cw.get())))
        time.sleep(0.5)
        self.assertIsNone(cw.parse_hit(self.ok(c, b"forever", cw.get())))
        self.assertGreaterEqual(self.stats(d)["expirations"], 1)

    def test_errors(self):
        d = self.daemon("--cache-item-max", "4k")
        c = self.conn(d)
        # incr on a value that is not a number.
        self.ok(c, b"s", cw.set_(b"abc"))
        msg = self.assertError(self.call(c, b"s", cw.incr(1)),
                               "INVALID_ARGUMENT")
        self.assertIn(b"not a decimal number", msg)
        # An item over cache_item_max, and one just under it.
        msg = self.assertError(self.call(c, b"big", cw.set_(b"x" * 5000)),
                               "TOO_BIG")
        self.assertIn(b"cache_item_max", msg)
        self.ok(c, b"big", cw.set_(b"x" * 3000))
        self.assertError(self.call(c, b"big", cw.append(b"y" * 2000)),
                         "TOO_BIG")
        self.assertEqual(len(cw.parse_hit(self.ok(c, b"big", cw.get()))
                             .value), 3000)
        # Malformed payloads name the field.
        msg = self.assertError(self.call(c, b"k", bytes([cw.SET, 0, 0])),
                               "INVALID_ARGUMENT")
        self.assertEqual(msg, b"ferry.cache: payload of op 3 needs 8 bytes "
                              b"after op, got 2")
        msg = self.assertError(self.call(c, b"k", bytes([77])),
                               "INVALID_ARGUMENT")
        self.assertIn(b"unknown op 77", msg)
        self.assertError(self.call(c, b"k", b""), "INVALID_ARGUMENT")
        self.assertError(self.call(c, b"", cw.get()), "INVALID_ARGUMENT")
        self.assertError(self.call(c, b"k" * 251, cw.get()),
                         "INVALID_ARGUMENT")
        self.assertError(self.call(c, b"", cw.get_many([])),
                         "INVALID_ARGUMENT")
        # The connection is still good.
        self.ok(c, b"k", cw.set_(b"fine"))
        st = self.stats(d)
        self.assertEqual(st["too_big"], 2)
        self.assertEqual(st["not_number"], 1)
        self.assertGreaterEqual(st["invalid"], 5)

    def test_eviction_under_small_cap(self):
        """1 MiB cap, 300 items of 10 KiB (3 MiB): the oldest go, the
        newest stay, the cache's count never passes the cap."""
        d = self.daemon("--cache-max-bytes", "1m")
        c = self.conn(d)
        val = b"v" * 10240
        for i in range(300):
            self.fid += 1
            c.send_request(self.fid, S, cw.set_(val), key=b"item%03d" % i)
        got = c.collect(range(self.fid - 299, self.fid + 1))
        for f, _ in got.values():
            self.assertReply(f)
        st = self.stats(d)
        self.assertGreater(st["evictions"], 150, st)
        self.assertLessEqual(st["bytes"], 1 << 20, st)
        self.assertEqual(st["max_bytes"], 1 << 20)
        self.assertLessEqual(st["items"], 102, st)
        self.assertIsNone(cw.parse_hit(self.ok(c, b"item000", cw.get())))
        self.assertEqual(cw.parse_hit(self.ok(c, b"item299", cw.get())).value,
                         val)

    def test_http_routes(self):
        d = self.daemon()
        h = d.http_addr
        r = http_request(h, "PUT", "/v1/cache/a%2Fb?ttl_ms=60000&flags=5",
                         body=b"hello")
        self.assertEqual(r.status, 200, r.body)
        version = r.json()["cas"]
        self.assertEqual(r.headers["ferry-cas"], version)
        r = http_request(h, "GET", "/v1/cache/a%2Fb")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello")
        self.assertEqual(r.headers["ferry-flags"], "5")
        self.assertEqual(r.headers["ferry-cas"], version)
        # The same item over the binary protocol: key "a/b".
        c = self.conn(d)
        self.assertEqual(cw.parse_hit(self.ok(c, b"a/b", cw.get())).value,
                         b"hello")
        r = http_request(h, "DELETE", "/v1/cache/a%2Fb")
        self.assertEqual(r.status, 204)
        r = http_request(h, "GET", "/v1/cache/a%2Fb")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["error"], "NOT_FOUND")
        r = http_request(h, "DELETE", "/v1/cache/a%2Fb")
        self.assertEqual(r.status, 404)
        r = http_request(h, "POST", "/v1/cache/x", body=b"v")
        self.assertEqual(r.status, 405)
        r = http_request(h, "PUT", "/v1/cache/x?ttl=5", body=b"v")
        self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        r = http_request(h, "GET", "/v1/cache/" + "k" * 251)
        self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        # HEAD: the headers of a GET, no body.
        http_request(h, "PUT", "/v1/cache/h", body=b"body")
        r = http_request(h, "HEAD", "/v1/cache/h")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertIn("ferry-cas", r.headers)
        # Over cache_item_max (1 MiB): the service's TOO_BIG is a 413.
        r = http_request(h, "PUT", "/v1/cache/big", body=b"x" * (2 << 20))
        self.assertHttpError(r, 413, "TOO_BIG")
        # An empty body is an empty value.
        r = http_request(h, "PUT", "/v1/cache/empty", body=b"")
        self.assertEqual(r.status, 200)
        r = http_request(h, "GET", "/v1/cache/empty")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_http_needs_the_caller_token(self):
        d = self.daemon("--caller-token", "c-s3cret")
        h = d.http_addr
        r = http_request(h, "PUT", "/v1/cache/k", body=b"v")
        self.assertEqual(r.status, 401)
        auth = {"Authorization": "Bearer c-s3cret"}
        r = http_request(h, "PUT", "/v1/cache/k", body=b"v", headers=auth)
        self.assertEqual(r.status, 200, r.body)
        r = http_request(h, "GET", "/v1/cache/k", headers=auth)
        self.assertEqual((r.status, r.body), (200, b"v"))

    def test_metrics(self):
        d = self.daemon()
        c = self.conn(d)
        self.ok(c, b"k", cw.set_(b"v"))
        self.ok(c, b"k", cw.get())
        self.ok(c, b"miss", cw.get())
        r = http_request(d.http_addr, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        text = r.body.decode()
        for line in ("ferry_cache_hits_total 1", "ferry_cache_misses_total 1",
                     "ferry_cache_items 1", 'ferry_cache_ops_total{op="set"} 1',
                     'ferry_cache_ops_total{op="get"} 2',
                     "ferry_cache_evictions_total 0",
                     "ferry_cache_expirations_total 0",
                     "ferry_cache_max_bytes 67108864"):
            self.assertIn("\n" + line + "\n", text)
        self.assertRegex(text, r"\nferry_cache_bytes [1-9]\d*\n")
        st = self.stats(d)
        self.assertEqual(st["hit_ratio"], 0.5)

    def test_cli(self):
        d = self.daemon()
        r = run_ferry(["cache", "set", "greet", "hello", "--flags", "3",
                       "--ttl", "60000"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, rb"^cas=\d+\n$")
        version = r.stdout.decode().strip().split("=")[1]
        r = run_ferry(["cache", "get", "greet"], d.addr)
        self.assertEqual((r.returncode, r.stdout), (0, b"hello"))
        r = run_ferry(["cache", "get", "greet", "--meta"], d.addr)
        self.assertEqual(r.stdout, b"hello")
        self.assertIn(f"flags=3 cas={version} bytes=5".encode(), r.stderr)
        r = run_ferry(["cache", "get", "greet", "--json"], d.addr)
        self.assertEqual(json.loads(r.stdout), {
            "key": "greet", "value": "hello", "flags": 3, "cas": version})
        r = run_ferry(["cache", "append", "greet", "-"], d.addr,
                      input=b" world\xff")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_ferry(["cache", "get", "greet", "--json"], d.addr)
        self.assertEqual(json.loads(r.stdout)["value_hex"],
                         (b"hello world\xff").hex())
        r = run_ferry(["cache", "cas", "greet", version, "x"], d.addr)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"EXISTS", r.stderr)
        r = run_ferry(["cache", "add", "greet", "x"], d.addr)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"NOT_STORED", r.stderr)
        r = run_ferry(["cache", "set", "n", "41"], d.addr)
        r = run_ferry(["cache", "incr", "n"], d.addr)
        self.assertEqual((r.returncode, r.stdout), (0, b"42\n"))
        r = run_ferry(["cache", "decr", "n", "40"], d.addr)
        self.assertEqual(r.stdout, b"2\n")
        r = run_ferry(["cache", "incr", "greet"], d.addr)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"INVALID_ARGUMENT", r.stderr)
        r = run_ferry(["cache", "touch", "n", "60000"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_ferry(["cache", "del", "n"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_ferry(["cache", "get", "n"], d.addr)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"NOT_FOUND: ferry.cache: no item 'n'", r.stderr)
        r = run_ferry(["cache", "stats"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(st["ops"]["incr"], 2)
        self.assertEqual(st["max_bytes"], 64 << 20)
        r = run_ferry(["cache", "flush"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_ferry(["cache", "get", "greet"], d.addr)
        self.assertEqual(r.returncode, 1)
        for bad in (["cache"], ["cache", "get"], ["cache", "nope", "k"],
                    ["cache", "incr", "k", "-1"], ["cache", "get", "k" * 251],
                    ["cache", "set", "k", "v", "--ttl", "x"]):
            with self.subTest(args=bad):
                r = run_ferry(bad, d.addr)
                self.assertEqual(r.returncode, 2, r.stderr)

    def test_bench_get_hit(self):
        """ferry bench --key/--payload-hex/--expect-hex on a cache GET."""
        d = self.daemon()
        c = self.conn(d)
        st, version = cw.parse_u64(self.ok(c, b"bk", cw.set_(b"z" * 64)))
        expect = bytes([cw.OK]) + struct.pack(">IQ", 0, version) + b"z" * 64
        r = run_ferry(["bench", "--service", S, "--key", "bk",
                       "--payload-hex", cw.get().hex(), "--expect-hex",
                       expect.hex(), "--connections", "2", "--depth", "4",
                       "--seconds", "1", "--warmup", "0"], d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, rb"rps=[1-9]")
        self.assertIn(b"check=expect", r.stderr)
        # A wrong expectation fails the run.
        r = run_ferry(["bench", "--service", S, "--key", "bk",
                       "--payload-hex", cw.get().hex(), "--expect-hex", "00",
                       "--seconds", "1", "--warmup", "0"], d.addr)
        self.assertEqual(r.returncode, 1)
