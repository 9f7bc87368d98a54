# SPDX-License-Identifier: MIT
"""A planned leave and a join move durable data, under write load:
- node 3 gets SIGTERM while kv puts and queue pushes go on through node
  1: it hands every vbucket it is the home of to the next owner before
  it leaves, and every acknowledged write and job is read back from the
  others afterwards (0 lost);
- node 3 comes back: the vbuckets the map gives it are handed back to
  it, exactly those (within 10% of 1024/N), and still nothing is lost."""
import sys
import threading
import time

import vbmap
from ferrycluster import ClusterTestCase
from test_failover import wait_homes
from test_forwarding import CONFIG, wait_formed

ADMIN = "leave-test-admin-token"
RETRYABLE = ("UNAVAILABLE", "NOT_MY_VBUCKET", "FENCED", "WORKER_LOST",
             "DEADLINE")


def retrying(f, bound=20.0):
    """f() until it does not fail with a retryable error."""
    end = time.monotonic() + bound
    while True:
        try:
            return f()
        except Exception as e:                      # noqa: BLE001
            if not any(r in repr(e) for r in RETRYABLE) or \
                    time.monotonic() > end:
                raise
            time.sleep(0.05)


class Writer(threading.Thread):
    """kv puts of new keys and queue pushes through one node, recording
    what was acknowledged."""

    def __init__(self, node, queues):
        super().__init__(daemon=True)
        self.cl = node.client()
        self.queues = queues
        self.stop = threading.Event()
        self.kv = {}
        self.jobs = {q: set() for q in queues}
        self.retried = 0
        self.not_mine = 0               # NOT_MY_VBUCKET seen by the caller
        self.errors = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = f"w/{i}"
            val = b"v%d" % i
            q = self.queues[i % len(self.queues)]
            try:
                self.cl.kv.put(key, val)
                self.kv[key] = val
                r = self.cl.queue.push(q, b"j%d" % i)
                self.jobs[q].add(r.id)
            except Exception as e:                  # noqa: BLE001
                if any(x in repr(e) for x in RETRYABLE):
                    self.retried += 1
                    self.not_mine += "NOT_MY_VBUCKET" in repr(e)
                else:
                    self.errors.append(repr(e))
            i += 1
        self.cl.close()


class TestHandover(ClusterTestCase):
    TIME_LIMIT = 300

    def check_all(self, node, w):
        cl = node.client()
        lost = [k for k, v in w.kv.items()
                if getattr(retrying(lambda k=k: cl.kv.get(k)), "value",
                           None) != v]
        self.assertEqual(lost, [], f"{len(lost)} of {len(w.kv)} lost")
        cl.close()

    def drain(self, node, w):
        cl = node.client()
        for q, ids in w.jobs.items():
            got = set()
            while True:
                j = retrying(lambda q=q: cl.queue.reserve(q, wait_ms=0))
                if j is None:
                    break
                got.add(j.id)
                retrying(lambda q=q, j=j: cl.queue.ack(q, j.id, j.token))
            self.assertEqual(ids - got, set(), q)
        cl.close()

    def test_leave_and_join_under_load(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        n1, n2, n3 = c.node(1), c.node(2), c.node(3)
        had = wait_homes(self, c).count(n3.name)
        self.assertGreater(had, 0)
        names = [n.name for n in c]
        queues = [vbmap.key_owned_by(n3.name, names, f"q{i}-")
                  for i in range(3)]

        w = Writer(n1, queues)
        w.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        rc = n3.stop(timeout=40)
        leave_s = time.monotonic() - t0
        self.assertEqual(rc, 0, n3.log_tail(30))
        time.sleep(0.5)
        w.stop.set()
        w.join(20)
        self.assertEqual(w.errors, [])
        self.assertGreater(len(w.kv), 20)
        homes = wait_homes(self, [n1, n2])
        self.assertNotIn(n3.name, homes)
        self.check_all(n2, w)
        print(f"\nFIGURE leave: vbuckets_moved={had} "
              f"leave_s={leave_s:.2f} writes_acked={len(w.kv)} "
              f"retried={w.retried} not_my_vbucket={w.not_mine} lost=0",
              file=sys.stderr)

        # The join: the map's vbuckets of node 3 come back to it.
        n3.restart()
        wait_formed(self, c)
        want = sum(1 for vb in range(vbmap.VB_COUNT)
                   if vbmap.owner(vb, names) == n3.name)
        # The others hand node 3 its vbuckets by themselves; `ferry
        # cluster rebalance --wait` follows each until none is pending.
        for n in (n1, n2):
            r = n.ferry(["cluster", "rebalance", "--wait", "60000"],
                        timeout=70)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.decode(),
                             r"(?m)^handover pending 0 moved \d+ failed \d+$")
        homes = wait_homes(self, c)
        moved = homes.count(n3.name)
        self.assertEqual(moved, want)
        self.assertLess(abs(moved - 1024 / 3), 0.1 * 1024 / 3)
        print(f"\nFIGURE join: vbuckets_moved={moved} expected_1024_over_n="
              f"{1024 / 3:.1f}", file=sys.stderr)
        self.check_all(n1, w)
        self.drain(n2, w)

    def test_join_of_a_fifth_node(self):
        """Five nodes; the fifth leaves (ferry admin leave) and joins
        again: it takes back exactly the vbuckets the map gives it among
        five (206 here, within 10% of 1024/5), with their data."""
        c = self.cluster(5, config=CONFIG + [f"admin_token = {ADMIN}"])
        wait_formed(self, c, token=ADMIN)
        wait_homes(self, c, token=ADMIN)
        names = [n.name for n in c]
        n1, n5 = c.node(1), c.node(5)
        cl = n1.client()
        keys = {}
        for i in range(200):
            k = f"five/{i}"
            retrying(lambda k=k: cl.kv.put(k, b"x" + k.encode()))
            keys[k] = b"x" + k.encode()
        r = n5.ferry(["--token", ADMIN, "admin", "leave"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"leaving", r.stdout)
        self.assertEqual(n5.wait(40), 0, n5.log_tail(20))
        others = [n for n in c if n is not n5]
        self.assertNotIn(n5.name, wait_homes(self, others, token=ADMIN))
        n5.restart()
        wait_formed(self, c, token=ADMIN)
        for n in others:
            r = n.ferry(["--token", ADMIN, "cluster", "rebalance", "--wait",
                         "60000"],
                        timeout=70)
            self.assertEqual(r.returncode, 0, r.stderr)
        want = sum(1 for vb in range(vbmap.VB_COUNT)
                   if vbmap.owner(vb, names) == n5.name)
        moved = wait_homes(self, c, token=ADMIN).count(n5.name)
        print(f"\nFIGURE join-of-5: vbuckets_moved={moved} "
              f"expected_1024_over_n={1024 / 5:.1f}", file=sys.stderr)
        self.assertEqual(moved, want)
        self.assertLess(abs(moved - 1024 / 5), 0.1 * 1024 / 5)
        for k, v in keys.items():
            self.assertEqual(retrying(lambda k=k: cl.kv.get(k)).value, v, k)
        cl.close()
