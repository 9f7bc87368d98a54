# SPDX-License-Identifier: MIT
"""ferryd under load: pipelining on one connection, many concurrent
callers and workers, workers joining and dying while requests flow, full
queues, and a caller that never reads."""
import os
import threading
import time

from ferrytest import (Conn, FerryTestCase, describe, encode_request,
                       parse_error, errname, REPLY, ERROR)


class TestLoad(FerryTestCase):
    TIME_LIMIT = 90

    def pipeline(self, d, service, n, payload_of, deadline_ms=30000):
        """Sends n requests on one connection from a thread while the test
        thread reads; returns {id: Frame}."""
        c = self.conn(d)
        err = []

        def send():
            try:
                batch = []
                for i in range(1, n + 1):
                    batch.append(encode_request(i, service, payload_of(i),
                                                deadline_ms))
                    if len(batch) == 500:
                        c.send(b"".join(batch), timeout=60)
                        batch = []
                if batch:
                    c.send(b"".join(batch), timeout=60)
            except Exception as e:  # reported by the test thread
                err.append(e)

        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = c.collect(range(1, n + 1), timeout=60)
        t.join(10)
        self.assertFalse(err, err)
        return {i: f for i, (f, _) in got.items()}

    def test_10000_pipelined_calls_builtin_echo(self):
        d = self.daemon()
        n = 10000
        got = self.pipeline(d, "echo", n, lambda i: b"payload-%d" % i)
        bad = [(i, describe(f)) for i, f in got.items()
               if f.type != REPLY or f.body != b"payload-%d" % i]
        self.assertEqual(bad[:5], [], f"{len(bad)} wrong answers")
        self.assertEqual(len(got), n)

    def test_5000_pipelined_calls_through_workers(self):
        d = self.daemon()
        for _ in range(2):
            self.worker("echo_worker", "--addr", d.addr, "--service", "pw")
        n = 5000
        got = self.pipeline(d, "pw", n, lambda i: b"w%d-" % i * (i % 7 + 1))
        bad = [(i, describe(f)) for i, f in got.items()
               if f.type != REPLY or f.body != b"w%d-" % i * (i % 7 + 1)]
        self.assertEqual(bad[:5], [], f"{len(bad)} wrong answers")

    def test_50_callers_4_workers(self):
        d = self.daemon()
        for k in range(4):
            self.worker("tests/test_worker", "--addr", d.addr, "--service",
                        "conc", "--credit", "8", "--mode", f"tag:w{k}")
        callers, calls = 50, 40
        errors = []
        done = []
        served = [0] * 4

        def caller(k):
            try:
                with Conn(d.addr, timeout=20) as c:
                    c.hello(name=f"caller-{k}")
                    for j in range(calls):
                        p = os.urandom(8).hex().encode() + b"-%d-%d" % (k, j)
                        f = c.call(j + 1, "conc", p, deadline_ms=20000,
                                   timeout=30)
                        tag, _, body = f.body.partition(b":")
                        if f.type != REPLY or body != p or \
                                tag not in (b"w0", b"w1", b"w2", b"w3"):
                            errors.append((k, j, describe(f)))
                            return
                        served[int(tag[1:])] += 1
                done.append(k)
            except Exception as e:
                errors.append((k, repr(e)))

        threads = [threading.Thread(target=caller, args=(k,), daemon=True)
                   for k in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(70)
        self.assertEqual(errors[:5], [], f"{len(errors)} callers failed")
        self.assertEqual(len(done), callers)
        self.assertEqual(sum(served), callers * calls)
        self.assertTrue(all(n > 0 for n in served),
                        f"a worker got no work: {served}")

    def test_worker_joining_under_load_gets_work(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "join", "--credit", "1", "--mode", "tag:first-worker")
        stop = threading.Event()
        replies = []
        errors = []

        def caller(k):
            try:
                with Conn(d.addr, timeout=20) as c:
                    c.hello()
                    j = 0
                    while not stop.is_set():
                        j += 1
                        f = c.call(j, "join", b"x", deadline_ms=10000,
                                   timeout=15)
                        if f.type != REPLY:
                            errors.append(describe(f))
                            return
                        replies.append((time.monotonic(), f.body))
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=caller, args=(k,), daemon=True)
                   for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        joined_at = time.monotonic()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "join", "--credit", "1", "--mode", "tag:second-worker")
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(20)
        self.assertEqual(errors, [])
        before = [b for t, b in replies if t < joined_at]
        after = [b for t, b in replies if t >= joined_at]
        self.assertTrue(before, "no replies before the second worker")
        self.assertTrue(all(b"first-worker" in b for b in before),
                        before[:3])
        second = [b for b in after if b"second-worker" in b]
        self.assertGreater(len(second), 0,
                           f"the joining worker got no work "
                           f"({len(after)} replies after it joined)")

    def test_worker_sigkilled_under_load(self):
        d = self.daemon()
        victim = self.worker("tests/test_worker", "--addr", d.addr,
                             "--service", "kill", "--credit", "5",
                             "--mode", "sleep:5000")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "kill", "--credit", "100", "--mode", "sleep:200")
        c = self.conn(d)
        n = 40
        deadline_ms = 15000
        t_send = time.monotonic()
        for i in range(1, n + 1):
            c.send_request(i, "kill", b"k%d" % i, deadline_ms)
        time.sleep(1.0)
        # By now the healthy worker has answered everything it got; what
        # is left is held by the victim.
        killed_at = time.monotonic()
        victim.kill()
        # More load while and after it dies.
        for i in range(n + 1, n + 21):
            c.send_request(i, "kill", b"k%d" % i, deadline_ms)
        got = c.collect(range(1, n + 21), timeout=20)
        lost = {i: t for i, (f, t) in got.items() if f.type == ERROR and
                errname(parse_error(f.body)[0]) == "WORKER_LOST"}
        ok = {i for i, (f, _) in got.items()
              if f.type == REPLY and f.body == b"k%d" % i}
        other = {i: describe(f) for i, (f, _) in got.items()
                 if i not in lost and i not in ok}
        self.assertEqual(other, {}, "answers neither REPLY nor WORKER_LOST")
        self.assertGreaterEqual(len(lost), 1, "the victim held nothing")
        self.assertLessEqual(len(lost), 5, "more lost than the victim's "
                             "credit")
        for i, t in lost.items():
            self.assertLess(t - killed_at, 2.0,
                            f"WORKER_LOST for {i} came {t - killed_at:.2f}s "
                            f"after the kill")
        self.assertLess(max(t for _, t in got.values()) - t_send,
                        deadline_ms / 1000 - 5)

    def test_full_queue_overloaded(self):
        d = self.daemon("--queue-limit", "4")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "stuck", "--credit", "1", "--mode", "never")
        c = self.conn(d)
        n = 10
        t0 = time.monotonic()
        for i in range(1, n + 1):
            c.send_request(i, "stuck", b"x", deadline_ms=3000)
        got = c.collect(range(1, n + 1), timeout=10)
        names = {i: (errname(parse_error(f.body)[0]) if f.type == ERROR
                     else describe(f)) for i, (f, _) in got.items()}
        over = sorted(i for i, nm in names.items() if nm == "OVERLOADED")
        late = sorted(i for i, nm in names.items() if nm == "DEADLINE")
        # One request with the worker, four waiting, five refused.
        self.assertEqual(len(over), 5, names)
        self.assertEqual(len(late), 5, names)
        self.assertEqual(over, list(range(6, 11)), names)
        for i in over:
            self.assertLess(got[i][1] - t0, 1.0, "OVERLOADED was not fast")
        for i in late:
            self.assertGreaterEqual(got[i][1] - t0, 2.99)

    def test_caller_that_never_reads_keeps_rss_bounded(self):
        # A small ASan quarantine, so freed buffers do not count as growth.
        env = {"ASAN_OPTIONS": "detect_leaks=0:quarantine_size_mb=4"}
        d = self.daemon("--high-water", "1048576", "--low-water", "262144",
                        env=env)
        # Warm up: a few calls so lazily allocated state exists.
        w = self.conn(d)
        for i in range(20):
            self.assertReply(w.call(i + 1, "echo", b"z" * 100000))
        base = d.rss()
        payload = os.urandom(1 << 20)
        target = 200 << 20
        s = Conn(d.addr)
        s.hello()
        sent = 0
        stalled = False
        i = 0
        while sent < target:
            i += 1
            data = encode_request(i, "echo", payload)
            try:
                s.send(data, timeout=3.0)
            except TimeoutError:
                stalled = True
                break
            sent += len(data)
        time.sleep(0.5)
        grown = d.rss() - base
        self.assertLess(grown, 32 << 20,
                        f"RSS grew by {grown >> 20} MiB after {sent >> 20} "
                        f"MiB sent to a caller that never reads")
        self.assertTrue(stalled, f"ferryd kept reading {sent >> 20} MiB "
                        f"without the caller reading any reply")
        # Others are still served while that caller is stuck.
        self.assertReply(w.call(1000, "echo", b"still here", timeout=10),
                         b"still here")
        s.close()
        self.assertReply(w.call(1001, "echo", b"after", timeout=10),
                         b"after")
