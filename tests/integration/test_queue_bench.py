# SPDX-License-Identifier: MIT
"""ferry bench --queue against a real ferryd, briefly: the producer and
consumer load accounts for every request (no errors, nothing
outstanding) and consumes what it pushes; the churn load releases,
buries and redrives as well; and its options are checked."""
import re

from ferrytest import FerryTestCase, run_ferry, sanitizer_report

END = re.compile(r"ferry bench: end sent=(\d+) replied=(\d+) errors=(\d+) "
                 r"bad=(\d+) outstanding=(\d+) stray=(\d+)")
LINE = re.compile(r"peer=ferry pushes_per_s=(\d+) consumed_per_s=(\d+) "
                  r"push_p50_us=([\d.]+) push_p99_us=([\d.]+) "
                  r"e2e_p50_us=([\d.]+) e2e_p99_us=([\d.]+) "
                  r"e2e_p999_us=([\d.]+) errors=(\d+) backlog=(-?\d+)")


class TestQueueBench(FerryTestCase):
    TIME_LIMIT = 60

    def bench(self, d, *args):
        r = run_ferry(["bench", "--seconds", "1", "--warmup", "0",
                       "--producers", "2", "--consumers", "2",
                       "--depth", "4", *args], addr=d.addr, timeout=30)
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

    def test_push_and_consume(self):
        d = self.daemon()
        r, out, err = self.bench(d, "--queue", "bq.plain")
        self.assertEqual(r.returncode, 0, err)
        m = LINE.search(out)
        self.assertIsNotNone(m, out)
        pushes, consumed = int(m[1]), int(m[2])
        self.assertGreater(pushes, 0)
        self.assertGreater(consumed, 0)
        self.assertLessEqual(float(m[3]), float(m[4]))
        self.assertLessEqual(float(m[5]), float(m[6]))
        self.assertEqual(int(m[8]), 0)
        self.check_end(err)
        # Every push answered was received (in the window or after it),
        # and every job received was acked.
        w = re.search(r"all phases pushed=(\d+) received=(\d+) "
                      r"consumed=(\d+)", err)
        self.assertIsNotNone(w, err)
        self.assertGreaterEqual(int(w[1]), int(w[2]))
        self.assertEqual(int(w[2]), int(w[3]), err)

    def test_churn(self):
        d = self.daemon()
        r, out, err = self.bench(d, "--queue", "bq.churn", "--churn",
                                 "60/20/20", "--release-delay", "10",
                                 "--redrive-every", "100", "--backlog",
                                 "200", "--progress", "500")
        self.assertEqual(r.returncode, 0, err)
        self.assertIsNotNone(LINE.search(out), out)
        self.assertRegex(out, r"cycles=500 elapsed_s=[\d.]+ ")
        self.check_end(err)
        c = re.search(r"released=(\d+) buried=(\d+) redriven=(\d+) "
                      r"redelivered=(\d+)", err)
        self.assertIsNotNone(c, err)
        released, buried, redriven, again = map(int, c.groups())
        self.assertGreater(released, 0)
        self.assertGreater(buried, 0)
        self.assertGreater(redriven, 0)
        self.assertGreater(again, 0)

    def test_cycles_end_the_run(self):
        d = self.daemon()
        r, out, err = self.bench(d, "--queue", "bq.cycles", "--cycles",
                                 "300")
        self.assertEqual(r.returncode, 0, err)
        c = re.search(r"cycles=(\d+)", err)
        self.assertIsNotNone(c, err)
        # The jobs in flight when the 300th ack came are acked as well.
        self.assertGreaterEqual(int(c[1]), 300)
        self.assertLess(int(c[1]), 300 + 2 * 4 * 4 + 10)
        self.check_end(err)

    def test_usage(self):
        d = self.daemon()
        for args in (["--queue", "bad name"],
                     ["--queue", "q", "--payload", "8"],
                     ["--queue", "q", "--churn", "50/20/10"],
                     ["--queue", "q", "--service", "echo"],
                     ["--producers", "2"]):
            r = run_ferry(["bench", *args], addr=d.addr, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r))
        r = run_ferry(["bench", "--help"], timeout=30)
        self.assertIn(b"--queue QUEUE", r.stdout)
