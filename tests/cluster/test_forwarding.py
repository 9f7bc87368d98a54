# SPDX-License-Identifier: MIT
"""Requests cross the cluster: a caller on one node reaches a worker on
another through the peer links (HELLO role peer), and keyed requests go to
the owner of their key's vbucket, whichever node they entered at."""
import time

from ferrycluster import ClusterTestCase, FerryFailed

CONFIG = [
    "cluster_etcd = {etcd}",
    "cluster_name = {cluster}",
    "cluster_advertise = {addr}",
    "cluster_lease_ms = 3000",
]

# Every node sees every other, and its links are up, within this.
FORM_BOUND_S = 15.0


def wait_formed(test, cluster, bound=FORM_BOUND_S):
    """Waits until every node lists every member and has a link up to
    each other; fails with the last view otherwise."""
    n = len(cluster)
    end = time.monotonic() + bound
    view = None
    while time.monotonic() < end:
        ok = True
        for node in cluster:
            r = node.http("GET", "/v1/cluster")
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
