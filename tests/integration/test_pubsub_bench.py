# SPDX-License-Identifier: MIT
"""ferry bench --pubsub against a real ferryd, briefly: the fan-out load
accounts for every request (no errors, nothing outstanding), its
subscribers receive what was published, and every message routed is
delivered or counted as dropped; a small buffer makes drops that are
reported; and its options are checked."""
import re

from ferrytest import FerryTestCase, run_ferry, sanitizer_report

END = re.compile(r"ferry bench: end sent=(\d+) replied=(\d+) errors=(\d+) "
                 r"bad=(\d+) outstanding=(\d+) stray=(\d+)")
LINE = re.compile(r"peer=ferry published_per_s=(\d+) delivered_per_s=(\d+) "
                  r"dropped=(\d+) e2e_p50_us=([\d.]+) e2e_p99_us=([\d.]+) "
                  r"e2e_p999_us=([\d.]+) errors=(\d+)")
ALL = re.compile(r"all phases published=(\d+) routed=(\d+) delivered=(\d+) "
                 r"dropped=(\d+) left_buffered=(\d+) unreached=(\d+)")


class TestPubsubBench(FerryTestCase):
    TIME_LIMIT = 60

    def bench(self, d, *args):
        r = run_ferry(["bench", "--seconds", "1", "--warmup", "0",
                       "--subscribers", "10", *args], addr=d.addr,
                      timeout=30)
        err = r.stderr.decode(errors="replace")
        rep = sanitizer_report(err)
        if rep:
            self.fail(f"sanitizer report from ferry bench:\n{rep}")
        return r, r.stdout.decode(), err

    def check_end(self, err):
        m = END.search(err)
        self.assertIsNotNone(m, err)
        sent, replied, errors, bad, outstanding, stray = map(int, m.groups())
        self.assertGreater(sent, 0)
        self.assertEqual((errors, bad, outstanding, stray), (0, 0, 0, 0), err)
        self.assertEqual(sent, replied, err)

    def test_fan_out(self):
        d = self.daemon()
        r, out, err = self.bench(d, "--pubsub", "bps.plain")
        self.assertEqual(r.returncode, 0, err)
        m = LINE.search(out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m[1]), 0)
        self.assertGreater(int(m[2]), 0)
        self.assertEqual(int(m[7]), 0, out)
        self.assertLessEqual(float(m[4]), float(m[5]))
        self.assertLessEqual(float(m[5]), float(m[6]))
        self.check_end(err)
        a = ALL.search(err)
        self.assertIsNotNone(a, err)
        published, routed, delivered, dropped, left, unreached = \
            map(int, a.groups())
        # Every publish reached the 10 subscriptions (made before the
        # first publish), and each message routed was delivered or told
        # as dropped: the drain empties the buffers before UNSUBSCRIBE.
        self.assertEqual(unreached, 0, err)
        self.assertEqual(routed, 10 * published, err)
        self.assertEqual(delivered + dropped, routed, err)
        self.assertEqual(left, 0, err)
        self.assertEqual(int(m[3]), dropped)
        self.assertRegex(err, r"foreign=0 disorder=0")

    def test_drops_are_reported(self):
        d = self.daemon()
        # A buffer of 1 and 64 publishes in flight: ferryd drops, and the
        # POLL answers say how many.
        r, out, err = self.bench(d, "--pubsub", "bps.small", "--depth", "64",
                                 "--max-pending", "1")
        self.check_end(err)
        m = LINE.search(out)
        self.assertIsNotNone(m, out)
        a = ALL.search(err)
        self.assertIsNotNone(a, err)
        published, routed, delivered, dropped, left, _ = map(int, a.groups())
        self.assertGreater(dropped, 0, err)
        self.assertEqual(delivered + dropped, routed, err)
        self.assertEqual(int(m[3]), dropped)
        self.assertEqual(r.returncode, 0, err)

    def test_usage(self):
        d = self.daemon()
        for args in (["--pubsub", "a.*"],
                     ["--pubsub", "ferry.x"],
                     ["--pubsub", "a", "--payload", "8"],
                     ["--pubsub", "a", "--queue", "q"],
                     ["--pubsub", "a", "--producers", "2"],
                     ["--pubsub", "a", "--service", "echo"],
                     ["--subscribers", "2"],
                     ["--max-pending", "5"]):
            r = run_ferry(["bench", *args], addr=d.addr, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r))
        r = run_ferry(["bench", "--help"], timeout=30)
        self.assertIn(b"--pubsub SUBJECT", r.stdout)
