# SPDX-License-Identifier: MIT
"""ferry.kv with ferryd SIGKILLed under put load: 16 writers, each with
its own connection and 16 puts in flight, write unique keys; ferryd is
killed mid-load, restarted on the same data dir, and every put whose
reply was received must read back with its value and the revision the
reply gave (as its create_rev and mod_rev). Nothing torn: every key the
store has (acked or not) holds exactly the value its writer sent, and the
revisions handed out are all different. Four kills in one test, on the
same files, each round bounded in time and count."""
import signal
import threading
import time

import kvwire as kw
from ferrytest import FerryTestCase, REPLY

SVC = "ferry.kv"
WRITERS = 16
DEPTH = 16
ROUNDS = 4
RUN_S = 1.5          # load before the kill
MAX_PER_WRITER = 20000


def value_of(key):
    # Sizes vary so a torn value could not pass as a short one.
    return key + b"=" + b"x" * (len(key) * 7 % 300)


class TestKvCrash(FerryTestCase):
    TIME_LIMIT = 240

    def load(self, d, rnd, acked, stop):
        errors = []

        def writer(i):
            try:
                c = d.conn()
            except OSError as e:
                errors.append(e)
                return
            sent, inflight = 0, {}
            try:
                while not stop.is_set() or inflight:
                    while (not stop.is_set() and len(inflight) < DEPTH and
                           sent < MAX_PER_WRITER):
                        sent += 1
                        key = b"r%d/w%02d/%06d" % (rnd, i, sent)
                        c.send_request(sent, SVC, kw.put(value_of(key)),
                                       key=key)
                        inflight[sent] = key
                    if not inflight:
                        break
                    f = c.recv_frame(timeout=10)
                    key = inflight.pop(f.id)
                    if f.type != REPLY:
                        errors.append((key, f))
                        continue
                    r = kw.reply(kw.PUT, f.body)
                    if r["status"] != kw.OK:
                        errors.append((key, r))
                        continue
                    acked.append((key, r["rev"]))
            except (OSError, EOFError, Exception):  # noqa: BLE001
                # The kill: replies not received are not acked.
                pass
            finally:
                try:
                    c.close()
                except OSError:
                    pass

        ts = [threading.Thread(target=writer, args=(i,), daemon=True)
              for i in range(WRITERS)]
        for t in ts:
            t.start()
        return ts, errors

    def check(self, d, acked, every_rev):
        c = d.conn()
        fid = 0
        for key, rev in acked:
            fid += 1
            f = c.call(fid, SVC, kw.get(), key=key, timeout=20)
            self.assertEqual(f.type, REPLY, (key, f))
            r = kw.reply(kw.GET, f.body)
            self.assertEqual(r["status"], kw.OK, (key, rev))
            self.assertEqual(r["value"], value_of(key), key)
            self.assertEqual((r["create_rev"], r["mod_rev"], r["version"]),
                             (rev, rev, 1), key)
        # Every key in the store, acked or not, whole.
        start, n, maxrev = b"", 0, 0
        while True:
            fid += 1
            if start:
                p = kw.range_between(b"", limit=5000)
            else:
                p = kw.range_(limit=5000)
            f = c.call(fid, SVC, p, key=start, timeout=30)
            self.assertEqual(f.type, REPLY, f)
            r = kw.reply(kw.RANGE, f.body)
            for e in r["entries"]:
                self.assertEqual(e["value"], value_of(e["key"]), e["key"])
                self.assertEqual(e["create_rev"], e["mod_rev"])
                every_rev.setdefault(e["mod_rev"], e["key"])
                self.assertEqual(every_rev[e["mod_rev"]], e["key"],
                                 "one revision for two keys")
                maxrev = max(maxrev, e["mod_rev"])
            n += len(r["entries"])
            if not r["more"]:
                break
            start = r["entries"][-1]["key"] + b"\x00"
        # The store's revision is the newest write's: no gap was skipped
        # over (every put is a new key, so the store holds each revision).
        self.assertEqual(r["rev"], maxrev)
        self.assertEqual(n, maxrev)
        c.close()
        return n

    def test_sigkill_under_put_load(self):
        d = self.daemon()
        all_acked, every_rev = [], {}
        for rnd in range(ROUNDS):
            acked, stop = [], threading.Event()
            ts, errors = self.load(d, rnd, acked, stop)
            t_end = time.monotonic() + RUN_S
            while time.monotonic() < t_end:
                time.sleep(0.05)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d._logf.close()
            stop.set()
            for t in ts:
                t.join(20)
                self.assertFalse(t.is_alive(), "a writer hangs")
            self.assertEqual(errors, [])
            self.assertGreater(len(acked), 100, "too few acked puts")
            all_acked += acked
            d.start()
            n = self.check(d, all_acked, every_rev)
            self.assertGreaterEqual(n, len(all_acked))
            print(f"round {rnd}: {len(acked)} acked, {n} keys in the store",
                  flush=True)
