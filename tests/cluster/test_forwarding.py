# SPDX-License-Identifier: MIT
"""Requests cross the cluster: a caller on one node reaches a worker on
another through the peer links (HELLO role peer), and keyed requests go to
the owner of their key's vbucket, whichever node they entered at."""
import time

from ferrycluster import ClusterTestCase, FerryFailed
from ferrytest import ERRORS
import vbmap

CONFIG = [
    "cluster_etcd = {etcd}",
    "cluster_name = {cluster}",
    "cluster_advertise = {addr}",
    "cluster_lease_ms = 3000",
]

# Every node sees every other, and its links are up, within this.
FORM_BOUND_S = 15.0


def wait_formed(test, cluster, bound=FORM_BOUND_S, token=None):
    """Waits until every node lists every member and has a link up to
    each other; fails with the last view otherwise. token: the admin
    token to show, when a node has one."""
    n = len(cluster)
    end = time.monotonic() + bound
    view = None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    while time.monotonic() < end:
        ok = True
        for node in cluster:
            r = node.http("GET", "/v1/cluster", headers=headers)
            if r.status != 200:
                ok = False
                view = (node.name, r.status, r.body[:300])
                break
            view = r.json()
            ms = view.get("members", [])
            links = [m for m in ms if m.get("link") == "up"]
            if (len(ms) != n or view.get("fenced") or
                    len(links) != n - 1):
                ok = False
                break
        if ok:
            return
        time.sleep(0.1)
    test.fail(f"cluster not formed within {bound} s: {view}")


class TestForwarding(ClusterTestCase):
    TIME_LIMIT = 120

    def test_call_reaches_a_worker_on_another_node(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        c.worker(3, "echo_worker", "--service", "echo3")
        # Until node 1 knows node 3's workers (published at most 4 times
        # a second), a call may find none; then every call gets there.
        end = time.monotonic() + 5
        while True:
            try:
                got = c.node(1).call("echo3", b"first", timeout_ms=2000)
                break
            except FerryFailed:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.assertEqual(got, b"first")
        for i in range(1, 4):
            self.assertEqual(c.node(i).call("echo3", b"via %d" % i),
                             b"via %d" % i)
        view = c.node(1).http("GET", "/v1/cluster").json()
        n3 = [m for m in view["members"] if m["name"] == c.node(3).name][0]
        self.assertGreaterEqual(n3["forwarded"], 2)


class TestPeerEjection(ClusterTestCase):
    TIME_LIMIT = 120

    def test_failing_node_ejected(self):
        """Node 2's only worker fails every request, node 3's answers:
        calls through node 1 (no worker of its own) that fail at node 2
        eject it after eject_failures in a row (5), like a worker, and
        then all go to node 3."""
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        # More credit at node 2: it is node 1's first choice until ejected.
        c.worker(2, "tests/test_worker", "--service", "mixed", "--credit",
                 "256", "--mode", f"fail:{ERRORS['WORKER_ERROR']}")
        c.worker(3, "tests/test_worker", "--service", "mixed", "--credit",
                 "16")
        cl = c.node(1).client()
        # Both nodes' workers are in node 1's directory.
        end = time.monotonic() + 10
        while True:
            view = c.node(1).http("GET", "/v1/cluster").json()
            svcs = [m["services"] for m in view["members"]]
            if sum("mixed" in s for s in svcs) == 2:
                break
            self.assertLess(time.monotonic(), end, svcs)
            time.sleep(0.1)
        # Between the calls, a cache set that node 2 owns answers OK
        # there: keyed answers (like a handover's, which runs by itself
        # after a join) must not clear the run of failed calls.
        names = [n.name for n in c]
        key = vbmap.key_owned_by(c.node(2).name, names, "eject")
        failures = 0
        for i in range(60):
            try:
                self.assertEqual(cl.call("mixed", b"p%d" % i), b"p%d" % i)
            except Exception as e:                  # noqa: BLE001
                self.assertIn("WORKER_ERROR", repr(e))
                failures += 1
            cl.cache.set(key, b"v%d" % i)
        self.assertEqual(cl.cache.get(key).value, b"v59")
        cl.close()
        view = c.node(1).http("GET", "/v1/cluster").json()
        n2 = [m for m in view["members"] if m["name"] == c.node(2).name][0]
        self.assertTrue(n2["ejected"], (failures, view["members"]))
        self.assertGreaterEqual(n2["ejections"], 1)
        self.assertEqual(n2["failed"], failures)
        # Ejected after 5 in a row; a few more may have been on the way.
        self.assertGreaterEqual(failures, 5)
        self.assertLessEqual(failures, 8)
