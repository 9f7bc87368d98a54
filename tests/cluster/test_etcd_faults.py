# SPDX-License-Identifier: MIT
"""What the cluster does when etcd or the network fails:
- etcd killed: every node keeps its last map and members, and RPC
  (forwarded calls, keyed cache, durable kv) keeps working; the nodes
  fence themselves once their leases cannot be renewed, and keyed
  requests then get FENCED while plain calls go on; etcd back: they are
  members again and keyed requests work;
- a node cut off from the others and from etcd fences itself within
  the lease time, and the others drop it once its lease expires."""
import sys
import threading
import time

import vbmap
from ferrycluster import ClusterTestCase
from test_failover import key_with_home, wait_homes
from test_forwarding import CONFIG, wait_formed

LEASE_S = 3.0
# Prints a URL's body (run inside a node's namespace).
FETCH = ("import sys, urllib.request; "
         "print(urllib.request.urlopen(sys.argv[1], timeout=2).read()"
         ".decode())")


def wait_until(pred, bound, what):
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if pred():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"not within {bound} s: {what}")


class TestEtcdFaults(ClusterTestCase):
    TIME_LIMIT = 240

    def test_etcd_killed_then_back(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        homes = wait_homes(self, c)
        names = [n.name for n in c]
        n1 = c.node(1)
        c.worker(3, "echo_worker", "--service", "far")
        cl = n1.client()
        wait_until(lambda: _ok(lambda: cl.call("far", b"x")), 5,
                   "node 1 reaches node 3's worker")
        ckey = vbmap.key_owned_by(c.node(2).name, names, "c")
        kkey = key_with_home(homes, c.node(3).name, "k")
        cl.kv.put(kkey, b"before")

        c.etcd.kill()
        t0 = time.monotonic()
        # Within the lease: everything as before, from the last map. A
        # node fences lease - lease/6 after its last renewal, which may be
        # a keepalive interval (lease/3) before the kill: 1.5 s at least.
        while time.monotonic() - t0 < LEASE_S / 3:
            self.assertEqual(cl.call("far", b"during"), b"during")
            cl.cache.set(ckey, b"c1")
            self.assertEqual(cl.cache.get(ckey).value, b"c1")
            self.assertEqual(cl.kv.get(kkey).value, b"before")
            time.sleep(0.1)
        for n in c:
            self.assertEqual(len(n.http("GET", "/v1/cluster").json()
                                 ["members"]), 3)
        # Past the lease minus its margin: fenced, keyed refused, plain on.
        wait_until(lambda: all(n.http("GET", "/v1/cluster").json()["fenced"]
                               for n in c), LEASE_S + 1.0, "all fenced")
        fenced_at = time.monotonic() - t0
        print(f"\nFIGURE etcd-killed: all_fenced_after_ms="
              f"{fenced_at * 1000:.0f} lease_ms={LEASE_S * 1000:.0f}",
              file=sys.stderr)
        self.assertLess(fenced_at, LEASE_S + 1.0)
        with self.assertRaises(Exception) as cm:
            cl.cache.get(ckey)
        self.assertIn("FENCED", repr(cm.exception))
        self.assertEqual(cl.call("far", b"fenced"), b"fenced")
        # ferry.id: its leased node id may be another's by now.
        with self.assertRaises(Exception) as cm:
            cl.id.next(1)
        self.assertIn("UNAVAILABLE", repr(cm.exception))

        c.etcd.restart()
        wait_formed(self, c, bound=20)
        self.assertEqual(len(cl.id.next(2)), 2)
        self.assertEqual(cl.kv.get(kkey).value, b"before")
        cl.cache.set(ckey, b"c2")
        self.assertEqual(cl.cache.get(ckey).value, b"c2")

    def test_cut_off_node_fences_itself(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        n1, n3 = c.node(1), c.node(3)
        ckey = vbmap.key_owned_by(n3.name, [n.name for n in c], "cut")
        recovered = [None]

        def probe():
            """Sets and gets the cut node's cache key through node 1 until
            both work (each with a short deadline)."""
            cl = n1.client()
            end = time.monotonic() + LEASE_S + 8
            try:
                while time.monotonic() < end:
                    try:
                        cl.cache.set(ckey, b"after", deadline_ms=300)
                        it = cl.cache.get(ckey, deadline_ms=300)
                        if it is not None and it.value == b"after":
                            recovered[0] = time.monotonic()
                            return
                    except Exception:               # noqa: BLE001
                        pass
                    time.sleep(0.02)
            finally:
                cl.close()

        prober = threading.Thread(target=probe, daemon=True)
        c.cut(3)
        t0 = time.monotonic()
        prober.start()
        # n3 is reached from inside its own namespace (the cut is the
        # bridge side of its veth; its HTTP port is in its namespace).
        r = None
        end = t0 + LEASE_S + 1.5
        while time.monotonic() < end:
            r = c.run_in(3, [sys.executable, "-c", FETCH,
                             f"http://{n3.http_addr}/v1/cluster"], timeout=5)
            if '"fenced":true' in r.stdout:
                break
            time.sleep(0.1)
        fenced_s = time.monotonic() - t0
        self.assertIn('"fenced":true', r.stdout if r else "")
        print(f"\nFIGURE cut-off: fenced_after_ms={fenced_s * 1000:.0f} "
              f"lease_ms={LEASE_S * 1000:.0f}", file=sys.stderr)
        self.assertLess(fenced_s, LEASE_S + 0.5)
        # The others drop it once its lease expires in etcd.
        wait_until(lambda: len(n1.http("GET", "/v1/cluster").json()
                               ["members"]) == 2, LEASE_S + 5, "n3 dropped")
        # Its cache keys are served again by the next owner, once the
        # others drop it: no FIN came, the link is silent.
        prober.join(LEASE_S + 10)
        self.assertIsNotNone(recovered[0], "cache keys of the cut node")
        cache_s = recovered[0] - t0
        print(f"\nFIGURE cut-off-cache: cache_recovered_after_ms="
              f"{cache_s * 1000:.0f} lease_ms={LEASE_S * 1000:.0f}",
              file=sys.stderr)
        # Its link is taken for dead after 3 peer heartbeats (lease/6
        # each): half the lease, before etcd drops it.
        self.assertLess(cache_s, LEASE_S)
        c.restore(3)
        wait_formed(self, c, bound=20)


def _ok(f):
    try:
        f()
        return True
    except Exception:                               # noqa: BLE001
        return False
