# SPDX-License-Identifier: MIT
"""ferry.queue over HTTP (/v1/queues, docs/http.md): a real ferryd on free
ports, driven with http.client, raw HTTP/1.1 sockets and raw HTTP/2
frames. Push, reserve and ack; reserves that wait (204 when nothing
came, woken by a push); stale tokens; release, touch, bury, the dead
letters and redrive; pause, settings, purge and delete; dedup; bad
input; and reserves whose client goes away while they wait, which must
leave the job to the next reserve."""
import base64
import json
import socket
import struct
import threading
import time

from ferrytest import FerryTestCase, http_req_bytes, http_request

Q = "/v1/queues"


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A header field as an HPACK literal without indexing, new name."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class QueueCase(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        self.d = self.daemon()
        if not self.d.http_addr:
            self.fail("this ferryd has no --http")

    def req(self, method, path, body=None, headers=None, timeout=15.0):
        return http_request(self.d.http_addr, method, path, body, headers,
                            timeout)

    def post(self, path, body=None, headers=None, timeout=15.0):
        return self.req("POST", path, body if body is not None else b"",
                        headers, timeout)

    def push(self, q, body, query="", status=201):
        r = self.post(f"{Q}/{q}/jobs{query}", body)
        self.assertEqual(r.status, status, r)
        doc = r.json()
        self.assertIsInstance(doc["id"], str)
        self.assertEqual(r.headers.get("ferry-job-id"), doc["id"])
        return doc

    def reserve(self, q, query=""):
        r = self.post(f"{Q}/{q}/reserve{query}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"),
                         "application/octet-stream")
        return (r.headers["ferry-job-id"], r.headers["ferry-job-token"],
                int(r.headers["ferry-job-attempts"]), r.body, r)

    def job_op(self, q, jid, op, token, query="", body=None, headers=None):
        sep = "&" if query else ""
        return self.post(f"{Q}/{q}/jobs/{jid}/{op}?token={token}{sep}{query}",
                         body, headers)

    def stats(self, q):
        r = self.req("GET", f"{Q}/{q}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assertRefused(self, r, status, name, msg=None):
        """An answer that is no ferry error (NOT_FOUND, STALE ...): status
        and {"error": name, "code": 0, "message": "..."}."""
        where = f"{r!r}" + (f" ({msg})" if msg else "")
        self.assertEqual(r.status, status, where)
        self.assertIn("application/json",
                      r.headers.get("content-type", ""), where)
        doc = r.json()
        self.assertEqual((doc.get("error"), doc.get("code")), (name, 0),
                         where)
        self.assertTrue(doc.get("message"), where)
        return doc

    def wait_for(self, what, cond, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        self.fail(f"not within {timeout} s: {what}")


class TestJobs(QueueCase):

    def test_push_reserve_ack(self):
        low = self.push("work", b"low")
        high = self.push("work", b"\x00high\xff", "?priority=7")
        self.assertNotEqual(low["id"], high["id"])
        self.assertFalse(low["dup"])
        # The higher priority first, whatever the push order.
        jid, token, attempts, body, r = self.reserve("work")
        self.assertEqual((jid, body, attempts), (high["id"], b"\x00high\xff",
                                                 1))
        self.assertEqual(r.headers["ferry-job-priority"], "7")
        self.assertTrue(token.isdigit(), token)
        r = self.job_op("work", jid, "ack", token)
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        # Acked means gone: a second ack finds no job.
        r = self.job_op("work", jid, "ack", token)
        self.assertRefused(r, 404, "NOT_FOUND")
        jid, token, _, body, _ = self.reserve("work")
        self.assertEqual((jid, body), (low["id"], b"low"))
        r = self.post(f"{Q}/work/jobs/{jid}/ack",
                      headers={"Ferry-Job-Token": token})
        self.assertEqual(r.status, 200, r)
        st = self.stats("work")
        self.assertEqual((st["ready"], st["reserved"], st["pushes"],
                          st["acks"]), (0, 0, 2, 2))

    def test_reserve_as_json(self):
        self.push("js", "héllo".encode())
        self.push("js", b"\xff\xfe")
        r = self.post(f"{Q}/js/reserve?format=json")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers["content-type"])
        doc = r.json()
        self.assertEqual(set(doc), {"id", "token", "attempts", "priority",
                                    "payload_base64", "payload"})
        self.assertEqual(doc["payload"], "héllo")
        self.assertEqual(base64.b64decode(doc["payload_base64"]),
                         "héllo".encode())
        self.assertEqual(doc["token"], r.headers["ferry-job-token"])
        self.assertEqual((doc["attempts"], doc["priority"]), (1, 0))
        # Text that JSON escapes comes back the same.
        odd = 'q"uo\\te\n\r\t\x01\x1f\x7f €'.encode() * 50
        self.push("js2", odd)
        doc = self.post(f"{Q}/js2/reserve?format=json").json()
        self.assertEqual(doc["payload"].encode(), odd)
        doc = self.req("GET", f"{Q}/js2/peek?which=reserved").json()
        self.assertEqual(doc["jobs"][0]["payload"].encode(), odd)
        doc = self.post(f"{Q}/js/reserve?format=json").json()
        # Bytes that are not UTF-8 come as base64 only.
        self.assertNotIn("payload", doc)
        self.assertEqual(base64.b64decode(doc["payload_base64"]), b"\xff\xfe")

    def test_empty_reserve(self):
        r = self.post(f"{Q}/none/reserve")
        self.assertEqual((r.status, r.body), (204, b""))
        t0 = time.monotonic()
        r = self.post(f"{Q}/none/reserve?wait_ms=300")
        took = time.monotonic() - t0
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertGreaterEqual(took, 0.25)
        st = self.stats("none")
        self.assertEqual((st["empty_reserves"], st["waiters"]), (2, 0))

    def test_reserve_woken_by_push(self):
        got = {}

        def consumer():
            got["r"] = self.post(f"{Q}/wake/reserve?wait_ms=20000")
            got["at"] = time.monotonic()

        t = threading.Thread(target=consumer)
        t.start()
        self.wait_for("the reserve waits",
                      lambda: self.req("GET", f"{Q}/wake").status == 200 and
                      self.stats("wake")["waiters"] == 1)
        pushed = time.monotonic()
        self.push("wake", b"wake up")
        t.join(15)
        self.assertFalse(t.is_alive())
        r = got["r"]
        self.assertEqual((r.status, r.body), (200, b"wake up"), r)
        # Woken by the push, not at the end of its 20 s wait.
        self.assertLess(got["at"] - pushed, 10)

    def test_stale_token_409(self):
        self.push("st", b"job", "?visibility_ms=200")
        jid, old, _, _, _ = self.reserve("st")
        # The reservation runs out; the next reserve gets the job anew.
        jid2, new, attempts, _, _ = self.reserve("st", "?wait_ms=5000")
        self.assertEqual((jid2, attempts), (jid, 2))
        self.assertNotEqual(new, old)
        for op, q in (("ack", ""), ("release", ""),
                      ("touch", "visibility_ms=100"), ("bury", "")):
            r = self.job_op("st", jid, op, old, q)
            self.assertRefused(r, 409, "STALE", op)
        r = self.job_op("st", jid, "ack", new)
        self.assertEqual(r.status, 200, r)

    def test_release_and_touch(self):
        job = self.push("rt", b"again")
        jid, token, _, _, _ = self.reserve("rt")
        r = self.job_op("rt", jid, "touch", token, "visibility_ms=60000")
        self.assertEqual((r.status, r.json()), (200, {"visibility_ms": 60000}))
        r = self.req("GET", f"{Q}/rt/peek?which=reserved")
        self.assertEqual([j["id"] for j in r.json()["jobs"]], [job["id"]])
        r = self.job_op("rt", jid, "release", token, "delay_ms=60000")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        doc = self.req("GET", f"{Q}/rt/peek?which=delayed").json()
        self.assertEqual(doc["which"], "delayed")
        self.assertEqual([(j["id"], j["state"], j["attempts"])
                          for j in doc["jobs"]], [(job["id"], "delayed", 1)])
        self.assertEqual(self.post(f"{Q}/rt/reserve").status, 204)
        # Released with no delay it is ready at once.
        self.push("rt2", b"x")
        jid, token, _, _, _ = self.reserve("rt2")
        r = self.job_op("rt2", jid, "release", token)
        self.assertEqual(r.status, 200, r)
        jid2, _, attempts, _, _ = self.reserve("rt2")
        self.assertEqual((jid2, attempts), (jid, 2))

    def test_bury_peek_dead_redrive(self):
        job = self.push("b", b"poison")
        jid, token, _, _, _ = self.reserve("b")
        r = self.job_op("b", jid, "bury", token, body=b"parse error: \xff")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        st = self.stats("b")
        self.assertEqual((st["ready"], st["reserved"], st["dead"],
                          st["buries"]), (0, 0, 1, 1))
        doc = self.req("GET", f"{Q}/b/peek?which=dead").json()
        self.assertEqual((doc["queue"], doc["which"]), ("b", "dead"))
        self.assertEqual(len(doc["jobs"]), 1)
        dead = doc["jobs"][0]
        self.assertEqual(dead["id"], job["id"])
        self.assertEqual(dead["reason"], "parse error: \ufffd")
        self.assertEqual(base64.b64decode(dead["payload_base64"]), b"poison")
        self.assertEqual(dead["payload"], "poison")
        self.assertEqual(dead["attempts"], 1)
        self.assertIsInstance(dead["age_ms"], int)
        # The dead-letter queue is a queue of its own.
        self.assertEqual(self.stats("b.dead")["ready"], 1)
        self.assertEqual(self.post(f"{Q}/b/reserve").status, 204)
        r = self.post(f"{Q}/b/redrive")
        self.assertEqual((r.status, r.json()), (200, {"moved": 1}))
        self.assertEqual(self.req("GET", f"{Q}/b/peek?which=dead")
                         .json()["jobs"], [])
        jid2, _, attempts, body, _ = self.reserve("b")
        self.assertEqual((jid2, attempts, body), (job["id"], 1, b"poison"))
        r = self.post(f"{Q}/b/redrive?limit=5")
        self.assertEqual(r.json(), {"moved": 0})

    def test_peek_ready_order_and_limit(self):
        for i in range(5):
            self.push("pk", f"j{i}".encode(), f"?priority={i % 2}")
        doc = self.req("GET", f"{Q}/pk/peek?limit=3").json()
        self.assertEqual([j["payload"] for j in doc["jobs"]],
                         ["j1", "j3", "j0"])
        self.assertEqual(doc["jobs"][0]["priority"], 1)
        self.assertEqual(doc["jobs"][0]["state"], "ready")
        self.assertEqual(doc["jobs"][0]["reason"], "")
        r = self.req("HEAD", f"{Q}/pk/peek")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_dedup(self):
        a = self.push("dd", b"first", "?dedup=order-1")
        b = self.push("dd", b"second", "?dedup=order-1", status=200)
        self.assertEqual((b["id"], b["dup"]), (a["id"], True))
        r = self.post(f"{Q}/dd/jobs", b"third",
                      headers={"Ferry-Dedup-Id": "order-1"})
        self.assertEqual((r.status, r.json()["id"]), (200, a["id"]))
        r = self.post(f"{Q}/dd/jobs", b"other",
                      headers={"Ferry-Dedup-Id": "order-2"})
        self.assertEqual(r.status, 201, r)
        st = self.stats("dd")
        self.assertEqual((st["ready"], st["dedup_hits"]), (2, 2))

    def test_dedup_window_shorter_than_a_commit(self):
        """Pushes with one dedup id while the first is still being written,
        in a queue whose dedup window is 0: each is answered (the first's
        id while it is pending), and ferryd keeps running (the entry the
        pending push holds was freed as expired: a use-after-free)."""
        r = self.req("PUT", f"{Q}/dw/settings", b'{"dedup_window_ms": 0}')
        self.assertEqual(r.status, 200, r)
        got = []

        def pusher():
            got.append(self.post(f"{Q}/dw/jobs?dedup=same", b"x"))

        for _ in range(10):
            ts = [threading.Thread(target=pusher) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(15)
        self.assertEqual(len(got), 80)
        self.assertEqual({r.status for r in got} - {200, 201}, set(), got)
        st = self.stats("dw")
        self.assertEqual(st["pushes"] + st["dedup_hits"], 80)

    def test_delay(self):
        self.push("dl", b"later", "?delay_ms=60000")
        self.assertEqual(self.post(f"{Q}/dl/reserve").status, 204)
        st = self.stats("dl")
        self.assertEqual((st["ready"], st["delayed"]), (0, 1))


class TestQueues(QueueCase):

    def test_list_and_one(self):
        r = self.req("GET", Q)
        self.assertEqual((r.status, r.json()), (200, {"queues": []}))
        self.push("alpha", b"1")
        self.push("beta", b"2")
        self.push("beta", b"3")
        doc = self.req("GET", Q + "/").json()
        by = {q["name"]: q for q in doc["queues"]}
        self.assertEqual(set(by), {"alpha", "beta"})
        self.assertEqual(by["beta"]["ready"], 2)
        for key in ("ready", "delayed", "reserved", "dead", "waiters",
                    "paused", "oldest_ready_age_ms", "push_rate",
                    "ack_rate", "settings"):
            self.assertIn(key, by["alpha"])
        self.assertEqual(self.stats("beta")["name"], "beta")
        self.assertRefused(self.req("GET", f"{Q}/gamma"), 404, "NOT_FOUND")

    def test_pause_resume(self):
        self.push("p", b"held")
        r = self.post(f"{Q}/p/pause")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        self.assertTrue(self.stats("p")["paused"])
        # Paused: pushes are taken, nothing is delivered.
        self.push("p", b"more")
        self.assertEqual(self.post(f"{Q}/p/reserve?wait_ms=200").status, 204)
        got = {}
        t = threading.Thread(target=lambda: got.setdefault(
            "r", self.post(f"{Q}/p/reserve?wait_ms=20000")))
        t.start()
        self.wait_for("the reserve waits",
                      lambda: self.stats("p")["waiters"] == 1)
        self.assertEqual(self.post(f"{Q}/p/resume").status, 200)
        t.join(15)
        self.assertEqual((got["r"].status, got["r"].body), (200, b"held"))
        self.assertFalse(self.stats("p")["paused"])
        # Pausing a queue never used makes it.
        self.assertEqual(self.post(f"{Q}/fresh/pause").status, 200)
        self.assertTrue(self.stats("fresh")["paused"])

    def test_settings(self):
        r = self.req("PUT", f"{Q}/s/settings",
                     b'{"max_deliveries": 2, "backoff_ms": [100, 200], '
                     b'"visibility_ms": 5000}')
        self.assertEqual(r.status, 200, r)
        set_ = r.json()
        self.assertEqual((set_["max_deliveries"], set_["backoff_ms"],
                          set_["visibility_ms"], set_["dead_letter"]),
                         (2, [100, 200], 5000, "s.dead"))
        self.assertEqual(self.req("GET", f"{Q}/s/settings").json(), set_)
        self.assertEqual(self.stats("s")["settings"], set_)
        for bad in (b"not json", b"[]", b'{"nope": 1}',
                    b'{"max_deliveries": 70000}', b'{"visibility_ms": 0}',
                    b'{"dead_letter": "a b"}', b""):
            r = self.req("PUT", f"{Q}/s/settings", bad)
            self.assertHttpError(r, 400, "INVALID_ARGUMENT", bad)
        self.assertEqual(self.req("GET", f"{Q}/s/settings").json(), set_)
        # max_deliveries 2: the second release dead-letters it.
        self.push("s", b"flaky")
        for attempt in (1, 2):
            jid, token, n, _, _ = self.reserve("s", "?wait_ms=5000")
            self.assertEqual(n, attempt)
            r = self.job_op("s", jid, "release", token, "backoff=1")
            self.assertEqual(r.status, 200, r)
        self.wait_for("dead-lettered", lambda: self.stats("s")["dead"] == 1)
        dead = self.req("GET", f"{Q}/s/peek?which=dead").json()["jobs"]
        self.assertIn("max_deliveries 2", dead[0]["reason"])
        self.assertRefused(self.req("GET", f"{Q}/unknown/settings"), 404,
                           "NOT_FOUND")

    def test_purge_and_delete(self):
        for i in range(3):
            self.push("pd", b"x")
        self.push("pd", b"x", "?delay_ms=60000")
        r = self.req("DELETE", f"{Q}/pd")
        doc = self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        self.assertIn("holds 4 jobs", doc["message"])
        r = self.post(f"{Q}/pd/purge")
        self.assertEqual((r.status, r.json()), (200, {"removed": 4}))
        r = self.req("DELETE", f"{Q}/pd")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        self.assertRefused(self.req("GET", f"{Q}/pd"), 404, "NOT_FOUND")
        self.assertRefused(self.req("DELETE", f"{Q}/pd"), 404, "NOT_FOUND")
        self.assertRefused(self.post(f"{Q}/pd/purge"), 404, "NOT_FOUND")

    def test_stats_and_metrics_see_http_pushes(self):
        self.push("m", b"1")
        stats = self.req("GET", "/v1/stats").json()
        names = [q["name"] for q in stats["servants"]["queue"]["queues"]]
        self.assertIn("m", names)
        m = self.req("GET", "/metrics").body.decode()
        self.assertIn('ferry_queue_pushes_total{queue="m"} 1', m)


class TestBadInput(QueueCase):

    def test_bad_ids_names_and_values(self):
        self.push("ok", b"x")
        bad = [
            ("POST", f"{Q}/ok/jobs/abc/ack?token=1", "job id"),
            ("POST", f"{Q}/ok/jobs/-1/ack?token=1", "job id"),
            ("POST", f"{Q}/ok/jobs/99999999999999999999/ack?token=1",
             "job id"),
            ("POST", f"{Q}/ok/jobs/1/ack", "token"),
            ("POST", f"{Q}/ok/jobs/1/ack?token=abc", "token"),
            ("POST", f"{Q}/bad%20name/jobs", "queue name"),
            ("POST", f"{Q}/bad%2Fname/jobs", "queue name"),
            ("POST", f"{Q}/{'n' * 201}/jobs", "queue name"),
            ("GET", f"{Q}/a*b", "queue name"),
            ("POST", f"{Q}/ok/jobs?priority=40000", "priority"),
            ("POST", f"{Q}/ok/jobs?priority=x", "priority"),
            ("POST", f"{Q}/ok/jobs?delay_ms=4294967296", "delay_ms"),
            ("POST", f"{Q}/ok/jobs?max_deliveries=65536", "max_deliveries"),
            ("POST", f"{Q}/ok/jobs?dedup=" + "d" * 129, "dedup"),
            ("POST", f"{Q}/ok/jobs?bogus=1", "bogus"),
            ("POST", f"{Q}/ok/jobs?priority=1&priority=2", "twice"),
            ("POST", f"{Q}/ok/reserve?wait_ms=600001", "wait_ms"),
            ("POST", f"{Q}/ok/reserve?format=xml", "format"),
            ("GET", f"{Q}/ok/peek?which=everything", "which"),
            ("GET", f"{Q}/ok/peek?limit=1001", "limit"),
            ("POST", f"{Q}/ok/jobs/1/release?token=1&backoff=1&delay_ms=1",
             "not both"),
            ("POST", f"{Q}/ok/purge?limit=3", "no parameters"),
        ]
        for method, path, word in bad:
            r = self.req(method, path, b"" if method == "POST" else None)
            doc = self.assertHttpError(r, 400, "INVALID_ARGUMENT", path)
            self.assertIn(word, doc["message"], path)
        r = self.post(f"{Q}/ok/jobs/1/bury?token=1", b"r" * 1025)
        self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        # Nothing of that reached the queue.
        self.assertEqual(self.stats("ok")["pushes"], 1)
        self.assertEqual(self.req("GET", Q).json()["queues"][0]["name"], "ok")

    def test_routes_and_methods(self):
        for path in (f"{Q}x", f"{Q}/ok/", f"{Q}/ok/nope", f"{Q}/ok/jobs/1",
                     f"{Q}/ok/jobs/1/nope", f"{Q}//jobs"):
            r = self.post(path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json()["error"], "NOT_FOUND")
        for method, path, allow in (("GET", f"{Q}/ok/jobs", "POST"),
                                    ("PUT", f"{Q}/ok", "GET, HEAD, DELETE"),
                                    ("POST", Q, "GET, HEAD"),
                                    ("DELETE", f"{Q}/ok/settings",
                                     "GET, HEAD, PUT"),
                                    ("GET", f"{Q}/ok/jobs/1/ack", "POST")):
            r = self.req(method, path, b"" if method != "GET" else None)
            self.assertEqual(r.status, 405, (method, path, r))
            self.assertEqual(r.headers.get("allow"), allow)
            self.assertEqual(r.json()["error"], "METHOD_NOT_ALLOWED")

    def test_unknown_job(self):
        self.push("u", b"x")
        self.assertRefused(self.job_op("u", "123456", "ack", "1"), 404,
                           "NOT_FOUND")
        # A job of another queue is not in this one.
        jid, token, _, _, _ = self.reserve("u")
        self.assertRefused(self.job_op("v", jid, "ack", token), 404,
                           "NOT_FOUND")
        self.assertEqual(self.job_op("u", jid, "ack", token).status, 200)


class TestAccess(FerryTestCase):

    def test_caller_token(self):
        d = self.daemon("--caller-token", "s3cret")
        r = http_request(d.http_addr, "POST", f"{Q}/t/jobs", b"x")
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        r = http_request(d.http_addr, "GET", Q)
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        r = http_request(d.http_addr, "POST", f"{Q}/t/jobs", b"x",
                         {"Authorization": "Bearer s3cret"})
        self.assertEqual(r.status, 201, r)


class TestLimits(FerryTestCase):

    def test_wait_cut_to_max_deadline(self):
        """A wait longer than max_deadline_ms allows ends as an empty
        reserve (204) a margin before the deadline, not as a 504."""
        d = self.daemon("--max-deadline-ms", "2000",
                        "--default-deadline-ms", "1000")
        t0 = time.monotonic()
        r = http_request(d.http_addr, "POST", f"{Q}/w/reserve?wait_ms=600000",
                         b"", timeout=15)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 204, r)
        self.assertLess(took, 10)

    def test_no_space(self):
        """A full store refuses pushes with NO_SPACE (as ferry.kv's routes
        map it) and keeps what it had; acks go on."""
        d = self.daemon("--store-max-bytes", "8388608")
        big = b"z" * 60000
        ids, err = [], None
        for _ in range(300):
            r = http_request(d.http_addr, "POST", f"{Q}/full/jobs", big)
            if r.status != 201:
                err = r
                break
            ids.append(r.json()["id"])
        self.assertIsNotNone(err, "the store never filled")
        self.assertHttpError(err, 500, "NO_SPACE")
        self.assertGreater(len(ids), 0)
        st = http_request(d.http_addr, "GET", f"{Q}/full").json()
        self.assertEqual(st["ready"], len(ids))
        # The store keeps room for reserves and acks (which free space).
        r = http_request(d.http_addr, "POST", f"{Q}/full/reserve", b"")
        self.assertEqual(r.status, 200, r)
        r = http_request(d.http_addr, "POST",
                         f"{Q}/full/jobs/{r.headers['ferry-job-id']}/ack"
                         f"?token={r.headers['ferry-job-token']}", b"")
        self.assertEqual(r.status, 200, r)


class TestClientLeaves(QueueCase):
    """A reserve whose client goes away while it waits is withdrawn, so
    the job pushed next goes to the next reserve, not to a dead socket."""

    def waiters(self, q):
        r = self.req("GET", f"{Q}/{q}")
        return r.json()["waiters"] if r.status == 200 else 0

    def check_next_reserve_gets(self, q, max_attempts=1):
        job = self.push(q, b"precious")
        jid, token, attempts, body, _ = self.reserve(q, "?wait_ms=5000")
        self.assertEqual((jid, body), (job["id"], b"precious"))
        self.assertLessEqual(attempts, max_attempts)
        self.assertEqual(self.job_op(q, jid, "ack", token).status, 200)

    def test_http1_close_while_waiting(self):
        c = self.rawhttp(self.d)
        c.send(http_req_bytes("POST", f"{Q}/gone/reserve?wait_ms=30000"))
        self.wait_for("the reserve waits", lambda: self.waiters("gone") == 1)
        c.close()
        self.wait_for("the reserve is withdrawn",
                      lambda: self.waiters("gone") == 0)
        self.check_next_reserve_gets("gone")

    def test_http1_half_close_while_waiting(self):
        c = self.rawhttp(self.d)
        c.send(http_req_bytes("POST", f"{Q}/half/reserve?wait_ms=30000"))
        self.wait_for("the reserve waits", lambda: self.waiters("half") == 1)
        c.sock.shutdown(socket.SHUT_WR)
        self.wait_for("the reserve is withdrawn",
                      lambda: self.waiters("half") == 0)
        self.check_next_reserve_gets("half")

    def test_http1_close_then_push_at_once(self):
        """The push may come before the close is seen: the job then goes
        to the gone client's reserve, is found undeliverable and released
        (its delivery counted), and the next reserve gets it at once, not
        after the 30 s visibility timeout."""
        for i in range(5):
            q = f"race{i}"
            c = self.rawhttp(self.d)
            c.send(http_req_bytes("POST", f"{Q}/{q}/reserve?wait_ms=30000"))
            self.wait_for("the reserve waits", lambda: self.waiters(q) == 1)
            c.close()
            self.check_next_reserve_gets(q, max_attempts=2)

    def h2_reserve(self, q, stream=1):
        s = socket.create_connection(("127.0.0.1", self.d.http_port),
                                     timeout=10)
        block = (hpack_literal(":method", "POST") +
                 hpack_literal(":scheme", "http") +
                 hpack_literal(":path", f"{Q}/{q}/reserve?wait_ms=30000") +
                 hpack_literal(":authority", "127.0.0.1"))
        s.sendall(H2_PREFACE + h2_frame(4, 0, 0) +
                  h2_frame(1, 0x05, stream, block))
        return s

    def test_http2_stream_reset_while_waiting(self):
        s = self.h2_reserve("h2rst")
        try:
            self.wait_for("the reserve waits",
                          lambda: self.waiters("h2rst") == 1)
            s.sendall(h2_frame(3, 0, 1, struct.pack(">I", 8)))  # CANCEL
            self.wait_for("the reserve is withdrawn",
                          lambda: self.waiters("h2rst") == 0)
        finally:
            s.close()
        self.check_next_reserve_gets("h2rst")

    def test_http2_close_while_waiting(self):
        s = self.h2_reserve("h2close")
        self.wait_for("the reserve waits",
                      lambda: self.waiters("h2close") == 1)
        s.close()
        self.wait_for("the reserve is withdrawn",
                      lambda: self.waiters("h2close") == 0)
        self.check_next_reserve_gets("h2close")

    def test_pipelined_request_is_no_leave(self):
        """A client that sends its next request while the reserve waits
        has not left: the reserve still gets the job, and the next
        request its answer after it."""
        c = self.rawhttp(self.d)
        c.send(http_req_bytes("POST", f"{Q}/pipe/reserve?wait_ms=30000"))
        self.wait_for("the reserve waits", lambda: self.waiters("pipe") == 1)
        c.send(http_req_bytes("GET", f"{Q}/pipe"))
        time.sleep(0.4)
        self.assertEqual(self.waiters("pipe"), 1)
        job = self.push("pipe", b"for you")
        r = c.read_response(timeout=10)
        self.assertEqual((r.status, r.body), (200, b"for you"))
        self.assertEqual(r.headers["ferry-job-id"], job["id"])
        r = c.read_response(timeout=10)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["reserved"], 1)


class TestRestart(QueueCase):

    def h2_send(self, requests):
        """Sends every (method, path, body) at once on one HTTP/2
        connection, streams 1, 3, 5 ...; returns the socket."""
        s = socket.create_connection(("127.0.0.1", self.d.http_port),
                                     timeout=10)
        out = H2_PREFACE + h2_frame(4, 0, 0)
        for i, (method, path, body) in enumerate(requests):
            stream = 2 * i + 1
            block = (hpack_literal(":method", method) +
                     hpack_literal(":scheme", "http") +
                     hpack_literal(":path", path) +
                     hpack_literal(":authority", "127.0.0.1"))
            if body:
                out += h2_frame(1, 0x04, stream, block)
                out += h2_frame(0, 0x01, stream, body)
            else:
                out += h2_frame(1, 0x05, stream, block)
        s.sendall(out)
        return s

    def test_push_during_delete_survives_restart(self):
        """A push that comes while the delete of its (empty) queue is
        being written is answered, so it must be on disk with its queue:
        after a restart the queue and its job are there."""
        self.assertEqual(self.post(f"{Q}/dq/pause").status, 200)
        self.assertEqual(self.post(f"{Q}/dq/resume").status, 200)
        s = self.h2_send([("DELETE", f"{Q}/dq", b""),
                          ("POST", f"{Q}/dq/jobs", b"precious")])
        try:
            self.wait_for("the push is answered",
                          lambda: self.req("GET", f"{Q}/dq").status == 200
                          and self.stats("dq")["pushes"] == 1)
        finally:
            s.close()
        self.assertEqual(self.stats("dq")["ready"], 1)
        self.d.stop()
        self.d.start()
        r = self.req("GET", f"{Q}/dq")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["ready"], 1)
        _, _, _, body, _ = self.reserve("dq")
        self.assertEqual(body, b"precious")
