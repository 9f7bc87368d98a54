# SPDX-License-Identifier: MIT
"""ferry.queue with ferryd SIGKILLed under load, the seeds' own test
("kill the queue, restart, check we didn't lose jobs"): 4 producers and
4 consumers, each on its own connection with 16 requests in flight,
reconnecting by themselves whenever ferryd is gone; ferryd is killed
three times and restarted on the same data dir, then the queue is
drained. Counted at the end:
  - every push whose reply was received was acked exactly once: its ack
    was confirmed once, or (an ack in flight at a kill, committed before
    the kill but unanswered) its ack was sent and the job never came back;
    a job that vanished without an ack is lost, and there must be none;
  - no job was delivered again after its ack was confirmed;
  - duplicates (deliveries of a job already delivered) are at most the
    jobs in flight at the kills: delivered without a confirmed ack when
    the kill came, plus the reserve replies that may still have been on
    their way (consumers x depth per kill);
  - every delivered job of an acknowledged push carries its payload."""
import collections
import signal
import threading
import time

import queuewire as qw
from ferrytest import REPLY, FerryTestCase

Q = b"crash"
PRODUCERS = 4
CONSUMERS = 4
DEPTH = 16
ROUNDS = 3
RUN_S = 1.5


class Book:
    """What the producers and consumers saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pushed = {}                   # acked push: id -> payload
        self.deliveries = []               # (id, payload, time)
        self.confirmed = collections.Counter()   # id -> confirmed acks
        self.confirmed_at = {}             # id -> time of its confirmation
        self.ack_sent = set()              # ids an ack was sent for
        self.errors = []


def connect(d, stop):
    """A connection, retried while ferryd is down; None once stopping."""
    while not stop.is_set():
        try:
            return d.conn(timeout=5)
        except Exception:  # noqa: BLE001 - refused, or closed mid-HELLO
            time.sleep(0.05)
    return None


def producer(d, i, book, stop):
    seq, fid = 0, 0
    while not stop.is_set():
        c = connect(d, stop)
        if c is None:
            return
        inflight = {}
        try:
            while not stop.is_set() or inflight:
                while not stop.is_set() and len(inflight) < DEPTH:
                    seq += 1
                    fid += 1
                    payload = b"p%d-%07d" % (i, seq)
                    c.send_request(fid, qw.SVC, qw.push(payload), key=Q,
                                   deadline_ms=20000)
                    inflight[fid] = payload
                f = c.recv_frame(timeout=10)
                payload = inflight.pop(f.id)
                if f.type != REPLY:
                    continue   # SHUTTING_DOWN and the like: not acked
                r = qw.reply(qw.PUSH, f.body)
                with book.lock:
                    book.pushed[r["id"]] = payload
        except Exception:  # noqa: BLE001 - the kill: unanswered = not acked
            pass
        finally:
            c.close()


def consumer(d, book, stop):
    fid = 0
    while not stop.is_set():
        c = connect(d, stop)
        if c is None:
            return
        kind = {}
        try:
            while not stop.is_set():
                while sum(1 for k in kind.values() if k == 0) < DEPTH:
                    fid += 1
                    c.send_request(fid, qw.SVC, qw.reserve(300), key=Q,
                                   deadline_ms=10000)
                    kind[fid] = 0
                f = c.recv_frame(timeout=10)
                k = kind.pop(f.id)
                if f.type != REPLY:
                    continue
                now = time.monotonic()
                if k == 0:
                    r = qw.reply(qw.RESERVE, f.body)
                    if r["status"] != qw.OK:
                        continue
                    with book.lock:
                        book.deliveries.append((r["id"], r["payload"], now))
                        book.ack_sent.add(r["id"])
                    fid += 1
                    c.send_request(fid, qw.SVC, qw.ack(r["id"], r["token"]),
                                   key=Q, deadline_ms=10000)
                    kind[fid] = r["id"]
                else:
                    r = qw.reply(qw.ACK, f.body)
                    if r["status"] == qw.OK:
                        with book.lock:
                            book.confirmed[k] += 1
                            book.confirmed_at.setdefault(k, now)
        except Exception:  # noqa: BLE001 - the kill
            pass
        finally:
            c.close()


class TestQueueCrash(FerryTestCase):
    TIME_LIMIT = 240

    def test_sigkill_under_push_and_consume_load(self):
        d = self.daemon()
        book = Book()
        stop_p, stop_c = threading.Event(), threading.Event()
        ps = [threading.Thread(target=producer, args=(d, i, book, stop_p),
                               daemon=True) for i in range(PRODUCERS)]
        cs = [threading.Thread(target=consumer, args=(d, book, stop_c),
                               daemon=True) for _ in range(CONSUMERS)]
        for t in ps + cs:
            t.start()
        in_flight = 0
        for _ in range(ROUNDS):
            time.sleep(RUN_S)
            # Under the lock, so that nothing is recorded between the
            # count and the kill.
            with book.lock:
                delivered = {i for i, _, _ in book.deliveries}
                in_flight += len(delivered - set(book.confirmed))
                in_flight += CONSUMERS * DEPTH
                d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d._logf.close()
            time.sleep(0.2)
            d.start()
        time.sleep(RUN_S)
        stop_p.set()
        for t in ps:
            t.join(30)
            self.assertFalse(t.is_alive(), "a producer hangs")
        # Drain: the consumers run until the queue is empty.
        q = qw.Queues(self.conn(d))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = q.stats(Q)["json"]
            if st["ready"] + st["delayed"] + st["reserved"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(st["ready"] + st["delayed"] + st["reserved"], 0, st)
        time.sleep(0.5)   # acks in flight come back
        stop_c.set()
        for t in cs:
            t.join(30)
            self.assertFalse(t.is_alive(), "a consumer hangs")

        with book.lock:
            pushed, deliveries = dict(book.pushed), list(book.deliveries)
            confirmed = dict(book.confirmed)
            confirmed_at = dict(book.confirmed_at)
            ack_sent = set(book.ack_sent)
        self.assertGreater(len(pushed), 200, "too few acked pushes")
        lost = [i for i in pushed if i not in ack_sent]
        self.assertEqual(lost, [], f"{len(lost)} acknowledged jobs lost")
        twice = {i: n for i, n in confirmed.items() if n != 1}
        self.assertEqual(twice, {}, "a job acked (confirmed) twice")
        after = [(i, t) for i, _, t in deliveries
                 if i in confirmed_at and t > confirmed_at[i]]
        self.assertEqual(after, [], "delivered again after a confirmed ack")
        for i, payload, _ in deliveries:
            if i in pushed:
                self.assertEqual(payload, pushed[i], i)
        # (A job whose ack was never committed would still be in the
        # queue: the drain above found it empty.)
        dups = len(deliveries) - len({i for i, _, _ in deliveries})
        self.assertLessEqual(dups, in_flight,
                             "more duplicates than jobs in flight")
        print(f"\nqueue crash: {len(pushed)} acked pushes, "
              f"{len(deliveries)} deliveries, {dups} duplicates over "
              f"{ROUNDS} kills (at most {in_flight} in flight)", flush=True)
