# SPDX-License-Identifier: MIT
"""ferry.kv through a real ferryd on a real LMDB store: every op over the
binary protocol with its statuses and errors, compare-and-swap races
between two clients, range continuation, count, watch (long poll, history,
compacted), stats, and the revision surviving a restart. Payloads are
encoded by tests/lib/kvwire.py, apart from the C codec."""
import json
import threading
import time

import kvwire as kw
from ferrytest import ERROR, FerryTestCase

SVC = "ferry.kv"


class TestKv(FerryTestCase):
    TIME_LIMIT = 90

    def setUp(self):
        super().setUp()
        self.fid = 0

    def kv(self, c, op, key, payload, timeout=10.0):
        self.fid += 1
        f = c.call(self.fid, SVC, payload, key=key, timeout=timeout)
        self.assertReply(f)
        return kw.reply(op, f.body)

    def assertError(self, frame, name, msg=None):
        m = super().assertError(frame, name, msg)
        return m.decode() if isinstance(m, bytes) else m

    def put(self, c, key, value, **kwa):
        return self.kv(c, kw.PUT, key, kw.put(value, **kwa))

    def get(self, c, key):
        return self.kv(c, kw.GET, key, kw.get())

    def test_ops(self):
        d = self.daemon()
        c = self.conn(d)
        r = self.get(c, b"a")
        self.assertEqual(r, {"status": kw.NOT_FOUND, "rev": 0})
        # The first write of an empty store is revision 1.
        self.assertEqual(self.put(c, b"a", b"one"), {"status": kw.OK, "rev": 1})
        self.assertEqual(self.put(c, b"a", b"two"), {"status": kw.OK, "rev": 2})
        r = self.get(c, b"a")
        self.assertEqual(r, {"status": kw.OK, "rev": 2, "create_rev": 1,
                             "mod_rev": 2, "version": 2, "value": b"two"})
        # Only if absent.
        r = self.put(c, b"a", b"x", cond=kw.ABSENT)
        self.assertEqual(r, {"status": kw.EXISTS, "rev": 2})
        self.assertEqual(self.put(c, b"b", b"", cond=kw.ABSENT)["rev"], 3)
        # Only at revision R.
        self.assertEqual(self.put(c, b"a", b"z", cond=kw.IF_REV, rev=1),
                         {"status": kw.EXISTS, "rev": 2})
        self.assertEqual(self.put(c, b"a", b"three", cond=kw.IF_REV, rev=2),
                         {"status": kw.OK, "rev": 4})
        # R = 0 means absent.
        self.assertEqual(self.put(c, b"c", b"c", cond=kw.IF_REV, rev=0),
                         {"status": kw.OK, "rev": 5})
        # Delete: conditional, then any, then of a missing key.
        self.assertEqual(self.kv(c, kw.DELETE, b"a",
                                 kw.delete(kw.IF_REV, 3)),
                         {"status": kw.EXISTS, "rev": 4})
        self.assertEqual(self.kv(c, kw.DELETE, b"a", kw.delete(kw.IF_REV, 4)),
                         {"status": kw.OK, "rev": 6})
        self.assertEqual(self.kv(c, kw.DELETE, b"a", kw.delete()),
                         {"status": kw.NOT_FOUND, "rev": 6})
        # Recreated: a new create_rev, version 1.
        self.put(c, b"a", b"again")
        r = self.get(c, b"a")
        self.assertEqual((r["create_rev"], r["mod_rev"], r["version"]),
                         (7, 7, 1))
        # Any bytes as key and value.
        k = bytes(range(256))[:200]
        v = bytes(range(256)) * 40
        self.put(c, k, v)
        self.assertEqual(self.get(c, k)["value"], v)
        # Count of all and of a range.
        r = self.kv(c, kw.COUNT, b"", kw.count())
        self.assertEqual((r["rev"], r["count"]), (8, 4))
        r = self.kv(c, kw.COUNT, b"a", kw.count(b"c"))
        self.assertEqual(r["count"], 2)  # a, b

    def test_errors(self):
        d = self.daemon()
        c = self.conn(d)
        self.fid += 1
        msg = self.assertError(c.call(self.fid, SVC, b"\x02\x00", key=b"k"),
                               "INVALID_ARGUMENT")
        self.assertIn("payload of op 2 needs 9 bytes after op, got 1", msg)
        msg = self.assertError(c.call(2000, SVC, b"\x09", key=b"k"),
                               "INVALID_ARGUMENT")
        self.assertEqual(msg, "unknown op 9")
        msg = self.assertError(c.call(2001, SVC, kw.get(), key=b""),
                               "INVALID_ARGUMENT")
        self.assertIn("key of 0 bytes", msg)
        msg = self.assertError(c.call(2002, SVC, kw.get(), key=b"k" * 449),
                               "INVALID_ARGUMENT")
        self.assertIn("key of 449 bytes, needs 1 to 448", msg)
        msg = self.assertError(
            c.call(2003, SVC, kw.range_(limit=10001), key=b""),
            "INVALID_ARGUMENT")
        self.assertIn("limit 10001", msg)

    def test_range_continuation(self):
        d = self.daemon()
        c = self.conn(d)
        keys = [b"p/%03d" % i for i in range(25)]
        for k in keys:
            self.put(c, k, b"v" + k)
        self.put(c, b"q/0", b"other")
        self.put(c, b"p", b"not under p/")
        got, start, rounds = [], b"p/", 0
        while True:
            rounds += 1
            # Continue with [last key + 0x00, end of the prefix).
            if start == b"p/":
                r = self.kv(c, kw.RANGE, b"p/", kw.range_(limit=10))
            else:
                r = self.kv(c, kw.RANGE, start,
                            kw.range_between(b"p0", limit=10))
            got += r["entries"]
            if not r["more"]:
                break
            start = r["entries"][-1]["key"] + b"\x00"
        self.assertEqual(rounds, 3)
        self.assertEqual([e["key"] for e in got], keys)
        self.assertEqual(got[3]["value"], b"vp/003")
        self.assertEqual(got[0]["create_rev"], 1)
        self.assertEqual(got[0]["version"], 1)
        # keys_only: no values.
        r = self.kv(c, kw.RANGE, b"p/", kw.range_(limit=2, keys_only=True))
        self.assertEqual([e["value"] for e in r["entries"]], [b"", b""])
        self.assertTrue(r["more"])
        self.assertEqual(r["rev"], 27)
        r = self.kv(c, kw.COUNT, b"p/", kw.count())
        self.assertEqual(r["count"], 25)

    def test_cas_race(self):
        """Two clients increment one counter by CAS, 100 times each: every
        increment lands exactly once, the losers saw EXISTS."""
        d = self.daemon()
        c0 = self.conn(d)
        self.put(c0, b"ctr", b"0")
        errors, losses = [], [0, 0]

        def worker(i):
            try:
                c = self.conn(d)
                fid = 10000 * (i + 1)
                done = 0
                while done < 100:
                    fid += 1
                    g = kw.reply(kw.GET, c.call(fid, SVC, kw.get(),
                                                key=b"ctr").body)
                    n = int(g["value"])
                    fid += 1
                    r = kw.reply(kw.PUT, c.call(
                        fid, SVC, kw.put(b"%d" % (n + 1), kw.IF_REV,
                                         g["mod_rev"]), key=b"ctr").body)
                    if r["status"] == kw.OK:
                        done += 1
                    else:
                        if r["status"] != kw.EXISTS:
                            errors.append(r)
                            return
                        losses[i] += 1
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        r = self.get(c0, b"ctr")
        self.assertEqual(r["value"], b"200")
        self.assertEqual(r["version"], 201)
        self.assertEqual(r["mod_rev"], 201)

    def test_watch(self):
        d = self.daemon()
        c = self.conn(d)
        w = self.conn(d)
        self.put(c, b"w/a", b"1")          # rev 1
        self.put(c, b"x", b"other")        # rev 2
        self.put(c, b"w/b", b"2")          # rev 3
        self.kv(c, kw.DELETE, b"w/a", kw.delete())  # rev 4
        # History: from rev 1, a prefix.
        r = self.kv(w, kw.WATCH, b"w/", kw.watch(1, 0, prefix=True))
        self.assertEqual([(e["type"], e["key"], e["mod_rev"])
                          for e in r["events"]],
                         [("put", b"w/a", 1), ("put", b"w/b", 3),
                          ("delete", b"w/a", 4)])
        self.assertEqual(r["rev"], 4)
        # One key, max_events.
        r = self.kv(w, kw.WATCH, b"w/a", kw.watch(1, 0, max_events=1))
        self.assertEqual([e["mod_rev"] for e in r["events"]], [1])
        # Nothing yet, no wait: empty at once.
        r = self.kv(w, kw.WATCH, b"w/", kw.watch(0, 0, prefix=True))
        self.assertEqual((r["rev"], r["events"]), (4, []))
        # Long poll: held until a matching put commits (the other key's
        # put does not wake it).
        w.send_request(500, SVC, kw.watch(5, 10000, prefix=True), key=b"w/")
        time.sleep(0.2)
        self.put(c, b"y", b"no")           # rev 5
        time.sleep(0.2)
        t0 = time.monotonic()
        self.put(c, b"w/c", b"3")          # rev 6
        f = w.wait_for(500, 10)
        self.assertReply(f)
        self.assertLess(time.monotonic() - t0, 2)
        r = kw.reply(kw.WATCH, f.body)
        self.assertEqual([(e["key"], e["value"], e["mod_rev"])
                          for e in r["events"]], [(b"w/c", b"3", 6)])
        # Long poll timing out: empty.
        t0 = time.monotonic()
        r = self.kv(w, kw.WATCH, b"w/", kw.watch(0, 300, prefix=True))
        self.assertEqual(r["events"], [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        # A wait past the request's deadline ends empty just before it.
        w.send_request(501, SVC, kw.watch(0, 60000, prefix=True),
                       deadline_ms=500, key=b"w/")
        f = w.wait_for(501, 10)
        self.assertReply(f)
        self.assertEqual(kw.reply(kw.WATCH, f.body)["events"], [])
        # After a restart the history is empty: older revisions are
        # compacted, the revision goes on.
        d.stop()
        d.start()
        c = self.conn(d)
        self.fid += 1
        msg = self.assertError(
            c.call(self.fid, SVC, kw.watch(3, 0, prefix=True), key=b"w/"),
            "INVALID_ARGUMENT")
        self.assertEqual(msg, "revision 3 compacted, oldest kept is 7")
        self.assertEqual(self.put(c, b"w/d", b"4")["rev"], 7)
        r = self.kv(c, kw.WATCH, b"w/", kw.watch(7, 0, prefix=True))
        self.assertEqual([e["key"] for e in r["events"]], [b"w/d"])

    def test_watch_answered_at_shutdown(self):
        d = self.daemon()
        w = self.conn(d)
        w.send_request(7, SVC, kw.watch(0, 30000, prefix=True),
                       deadline_ms=30000, key=b"")
        time.sleep(0.3)
        t0 = time.monotonic()
        d.signal(15)
        f = w.wait_for(7, 15)
        self.assertLess(time.monotonic() - t0, 10)
        # The broker answers held calls SHUTTING_DOWN when its grace
        # (5 s) ends; the backend interface has no "shutdown began" call
        # that would let ferry.kv answer them empty at once.
        if f.type == ERROR:
            self.assertError(f, "SHUTTING_DOWN")
        else:
            self.assertEqual(kw.reply(kw.WATCH, f.body)["events"], [])
        d.wait(15)

    def test_revision_survives_restart(self):
        d = self.daemon()
        c = self.conn(d)
        for i in range(10):
            self.put(c, b"k%d" % i, b"v%d" % i)
        d.stop()
        d.start()
        c = self.conn(d)
        r = self.get(c, b"k3")
        self.assertEqual((r["rev"], r["mod_rev"], r["value"]), (10, 4, b"v3"))
        self.assertEqual(self.put(c, b"k3", b"new")["rev"], 11)
        r = self.get(c, b"k3")
        self.assertEqual((r["create_rev"], r["version"]), (4, 2))

    def test_services_and_pipelined_puts(self):
        d = self.daemon()
        c = self.conn(d)
        n = 500
        for i in range(n):
            c.send_request(i + 1, SVC, kw.put(b"v%d" % i), key=b"k%d" % (i % 50))
        got = c.collect(range(1, n + 1), timeout=30)
        revs = sorted(kw.reply(kw.PUT, f.body)["rev"] for f, _ in got.values())
        # Every revision once, no gap.
        self.assertEqual(revs, list(range(1, n + 1)))
        f = c.call(9999, "ferry.services", b"")
        s = {x["name"]: x for x in json.loads(f.body)["services"]}
        self.assertEqual(s[SVC]["backend"], "kv")
        self.assertEqual(s[SVC]["revision"], n)


class TestKvCli(FerryTestCase):
    TIME_LIMIT = 90

    def ferry(self, d, *args, stdin=None, rc=0):
        import subprocess
        from ferrytest import binary
        p = subprocess.run([binary("ferry"), "--addr", d.addr, "kv", *args],
                           input=stdin, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, rc, (args, p.stdout, p.stderr))
        return p.stdout, p.stderr.decode()

    def test_cli(self):
        d = self.daemon()
        self.assertEqual(self.ferry(d, "put", "a/1", "one")[0], b"rev=1\n")
        self.assertEqual(self.ferry(d, "put", "a/2", "-", stdin=b"t\x00wo")[0],
                         b"rev=2\n")
        out, err = self.ferry(d, "get", "a/2", "--meta")
        self.assertEqual(out, b"t\x00wo")
        self.assertIn("create_rev=2 mod_rev=2 version=1 bytes=4", err)
        _, err = self.ferry(d, "get", "nope", rc=1)
        self.assertIn("NOT_FOUND", err)
        _, err = self.ferry(d, "put", "a/1", "x", "--if-absent", rc=1)
        self.assertIn("EXISTS: ferry.kv: 'a/1' is at mod_rev 1", err)
        self.assertEqual(self.ferry(d, "put", "a/1", "uno", "--if-rev", "1")[0],
                         b"rev=3\n")
        for i in range(12):
            self.ferry(d, "put", "b/%02d" % i, "v")
        self.assertEqual(self.ferry(d, "count", "--prefix", "b/")[0], b"12\n")
        self.assertEqual(self.ferry(d, "count")[0], b"14\n")
        out, _ = self.ferry(d, "ls", "--prefix", "b/", "--limit", "5")
        self.assertEqual(out.split(), [b"b/%02d" % i for i in range(5)])
        out, _ = self.ferry(d, "ls", "--meta")
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], "a/1\t3\t2")
        self.assertEqual(len(lines), 14)
        self.assertEqual(self.ferry(d, "del", "b/00")[0], b"rev=16\n")
        _, err = self.ferry(d, "del", "b/00", rc=1)
        self.assertIn("NOT_FOUND", err)
        out, _ = self.ferry(d, "watch", "a/", "--prefix", "--from-rev", "1",
                            "--count", "3")
        self.assertEqual(out, b"put a/1 1 one\nput a/2 2 t\x00wo\n"
                              b"put a/1 3 uno\n")
        out, _ = self.ferry(d, "watch", "b/00", "--from-rev", "5",
                            "--count", "1")
        self.assertEqual(out, b"delete b/00 16\n")


class TestKvHttp(FerryTestCase):
    TIME_LIMIT = 60

    def test_http(self):
        import base64
        d = self.daemon()
        r = d.http("GET", "/v1/kv/a%2Fb")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.headers["ferry-revision"], "0")
        r = d.http("PUT", "/v1/kv/a%2Fb", b"hello")
        self.assertEqual((r.status, r.json()), (200, {"revision": "1"}))
        r = d.http("PUT", "/v1/kv/a%2Fb?if_absent=1", b"x")
        self.assertEqual(r.status, 412)
        self.assertEqual(r.headers["ferry-mod-revision"], "1")
        r = d.http("PUT", "/v1/kv/a%2Fb?if_mod_rev=1", b"world")
        self.assertEqual(r.json(), {"revision": "2"})
        r = d.http("GET", "/v1/kv/a%2Fb")
        self.assertEqual((r.status, r.body), (200, b"world"))
        self.assertEqual([r.headers[h] for h in (
            "ferry-revision", "ferry-create-revision", "ferry-mod-revision",
            "ferry-version")], ["2", "1", "2", "2"])
        d.http("PUT", "/v1/kv/a%2Fc", b"\xff\x00")
        d.http("PUT", "/v1/kv/b", b"other")
        r = d.http("GET", "/v1/kv?prefix=a%2F&limit=1")
        j = r.json()
        self.assertEqual((j["revision"], j["more"]), ("4", True))
        self.assertEqual(j["kvs"][0]["key"], "a/b")
        self.assertEqual(j["kvs"][0]["value"], "world")
        self.assertEqual(j["kvs"][0]["mod_revision"], "2")
        r = d.http("GET", "/v1/kv?prefix=a%2F&start=a%2Fb%00")
        j = r.json()
        self.assertFalse(j["more"])
        self.assertEqual([e["key"] for e in j["kvs"]], ["a/c"])
        self.assertNotIn("value", j["kvs"][0])  # not UTF-8
        self.assertEqual(base64.b64decode(j["kvs"][0]["value_b64"]),
                         b"\xff\x00")
        r = d.http("GET", "/v1/kv/a%2F?watch=1&prefix_watch=1&from_rev=2")
        j = r.json()
        self.assertEqual([(e["type"], e["key"], e["mod_revision"])
                          for e in j["events"]],
                         [("put", "a/b", "2"), ("put", "a/c", "3")])
        r = d.http("GET", "/v1/kv/b?watch=1&wait_ms=200")
        self.assertEqual(r.json()["events"], [])
        r = d.http("DELETE", "/v1/kv/b?if_mod_rev=3")
        self.assertEqual(r.status, 412)
        r = d.http("DELETE", "/v1/kv/b")
        self.assertEqual(r.json(), {"revision": "5"})
        self.assertEqual(d.http("DELETE", "/v1/kv/b").status, 404)
        self.assertEqual(d.http("GET", "/v1/kv?bogus=1").status, 400)
        self.assertEqual(d.http("POST", "/v1/kv/x", b"").status, 405)
        r = d.http("GET", "/v1/kv/" + "k" * 449)
        self.assertEqual(r.status, 400)

    def test_stats_and_metrics(self):
        d = self.daemon()
        for i in range(3):
            d.http("PUT", "/v1/kv/s%d" % i, b"v")
        d.http("GET", "/v1/kv/s0")
        j = d.http("GET", "/v1/stats").json()
        kv, st = j["servants"]["kv"], j["servants"]["store"]
        self.assertEqual((kv["rev"], kv["puts"], kv["ops"]["get"]), (3, 3, 1))
        self.assertGreaterEqual(st["commits"], 1)
        # the store is shared: ferry.id writes its high-water mark too
        ids = j["servants"].get("id", {})
        self.assertEqual(st["batches"] - ids.get("marks", 0)
                         - ids.get("mark_failures", 0), 3)
        self.assertIn("p99", st["commit_us"])
        m = d.http("GET", "/metrics").body.decode()
        self.assertIn("ferry_kv_puts_total 3\n", m)
        self.assertIn('ferry_kv_requests_total{op="put"} 3\n', m)
        self.assertIn("ferry_store_commits_total ", m)
        self.assertIn('ferry_store_commit_seconds_bucket{le="+Inf"} ', m)
        self.assertIn("ferry_store_map_bytes ", m)
