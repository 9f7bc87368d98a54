# SPDX-License-Identifier: MIT
"""The faces of a 3-node cluster (docs/cluster.md, "Seeing the cluster"):
`ferry cluster` lists the members with vbuckets summing to 1024 and links
up, every node at the same epoch; a worker on node 3 shows in node 1's
`ferry services` and /v1/services as a remote node; /metrics and
/v1/stats on node 1 carry the cluster's figures."""
import json
import re
import time

import promparse
from ferrycluster import ClusterTestCase, FerryFailed
from test_forwarding import CONFIG, wait_formed

# The epochs agree within this once the cluster has formed.
EPOCH_BOUND_S = 10.0


def cluster_doc(test, node):
    """`ferry cluster --json` at node, parsed."""
    r = node.ferry(["cluster", "--json"])
    test.assertEqual(r.returncode, 0, r.stderr)
    return json.loads(r.stdout)


class TestFaces(ClusterTestCase):
    TIME_LIMIT = 120

    def formed(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        return c

    def test_cluster_command_and_metrics(self):
        c = self.formed()
        names = sorted(n.name for n in c)
        # Every node computes its map from the same member list: the same
        # epoch everywhere, once the last join reached all of them.
        end = time.monotonic() + EPOCH_BOUND_S
        while True:
            docs = [cluster_doc(self, n) for n in c]
            epochs = {d["epoch"] for d in docs}
            if len(epochs) == 1 or time.monotonic() > end:
                break
            time.sleep(0.1)
        self.assertEqual(len(epochs), 1, [(d["node"], d["epoch"])
                                          for d in docs])
        self.assertGreater(epochs.pop(), 0)
        for node, doc in zip(c, docs):
            self.assertTrue(doc["enabled"], doc)
            self.assertEqual(doc["node"], node.name)
            self.assertFalse(doc["fenced"], doc)
            ms = doc["members"]
            self.assertEqual(sorted(m["name"] for m in ms), names)
            self.assertEqual(sum(m["vbuckets"] for m in ms), 1024, ms)
            for m in ms:
                self.assertGreater(m["vbuckets"], 0, m)
                self.assertEqual(m["link"],
                                 "self" if m["name"] == node.name else "up",
                                 m)
        # The table of node 1: a row per member, its vbuckets and link.
        r = c.node(1).ferry(["cluster"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn(f"node     {c.node(1).name} ", out)
        self.assertRegex(out, r"(?m)^fenced +no$")
        self.assertRegex(out, r"(?m)^members +3$")
        self.assertRegex(out, r"(?m)^epoch +%d$" % docs[0]["epoch"])
        vb = {m["name"]: m["vbuckets"] for m in docs[0]["members"]}
        for n in c:
            link = "self" if n.index == 1 else "up"
            self.assertRegex(
                out, r"(?m)^%s +%s +\d+ +%d +\d+ +%s " % (
                    re.escape(n.name), re.escape(n.addr), vb[n.name], link))
        # /metrics of node 1.
        m = promparse.parse(c.node(1).http("GET", "/metrics").body)
        fams = m.families

        def value(name, **labels):
            fam = fams.get(name)
            self.assertIsNotNone(fam, f"no {name} in /metrics")
            got = [s.value for s in fam.samples if s.labels == labels]
            self.assertEqual(len(got), 1, (name, labels, fam.samples))
            return got[0]

        self.assertEqual(value("ferry_cluster_members"), 3)
        self.assertEqual(value("ferry_cluster_fenced"), 0)
        self.assertEqual(value("ferry_cluster_vbuckets_owned"),
                         vb[c.node(1).name])
        self.assertGreater(value("ferry_cluster_epoch"), 0)
        # Forwarded counts the vbuckets' handovers too (ferry.handover), so
        # it is the document's counter: never above what /v1/cluster says
        # a moment later.
        later = {mm["name"]: mm for mm in
                 c.node(1).http("GET", "/v1/cluster").json()["members"]}
        for i in (2, 3):
            self.assertEqual(
                value("ferry_cluster_peer_up", peer=c.node(i).name), 1)
            self.assertLessEqual(value("ferry_cluster_peer_forwarded_total",
                                       peer=c.node(i).name),
                                 later[c.node(i).name]["forwarded"])
        self.assertEqual(fams["ferry_cluster_forwarded_total"].type,
                         "counter")
        self.assertEqual(fams["ferry_cluster_peer_up"].type, "gauge")
        for name in ("received", "not_my_vbucket", "fenced", "unavailable",
                     "remapped"):
            value(f"ferry_cluster_{name}_total")
        stats = c.node(1).http("GET", "/v1/stats").json()
        self.assertEqual(stats["cluster"]["members"], 3, stats.get("cluster"))
        self.assertEqual(stats["cluster"]["node"], c.node(1).name)
        self.assertEqual(stats["cluster"]["vbuckets_owned"],
                         vb[c.node(1).name])

    def test_services_only_elsewhere_are_listed(self):
        """A service whose workers are all on node 3, never named at node
        1, is in node 1's /v1/services, ferry.services and `ferry
        services` (marked elsewhere_only, with node 3's row); once node 1
        has called it, it is a service of its own there."""
        c = self.formed()
        c.worker(3, "echo_worker", "--service", "only3")
        n3 = c.node(3).name

        def listed():
            svcs = c.node(1).http("GET", "/v1/services").json()["services"]
            return [s for s in svcs if s["name"] == "only3"]

        end = time.monotonic() + 5
        while not listed():
            self.assertLess(time.monotonic(), end, "only3 never listed")
            time.sleep(0.1)
        only = listed()
        self.assertEqual(len(only), 1)
        self.assertIs(only[0]["elsewhere_only"], True)
        self.assertEqual(only[0]["workers"], [])
        self.assertEqual(only[0]["requests"], 0)
        self.assertEqual([(n["node"], n["workers"]) for n in only[0]["nodes"]],
                         [(n3, 1)])
        doc = json.loads(c.node(1).call("ferry.services"))
        names = [s["name"] for s in doc["services"]]
        self.assertEqual(names.count("only3"), 1, names)
        r = c.node(1).ferry(["services"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(),
                         r"(?m)^only3 .*\n  node +%s +workers 1 " %
                         re.escape(n3))
        # Node 3 itself lists it as its own (workers here), once.
        mine = [s for s in c.node(3).http("GET", "/v1/services").json()
                ["services"] if s["name"] == "only3"]
        self.assertEqual(len(mine), 1)
        self.assertNotIn("elsewhere_only", mine[0])
        self.assertEqual(c.node(1).call("only3", b"x", timeout_ms=2000), b"x")
        only = listed()
        self.assertEqual(len(only), 1)
        self.assertNotIn("elsewhere_only", only[0])
        self.assertEqual(only[0]["requests"], 1)

    def test_remote_workers_in_services(self):
        c = self.formed()
        c.worker(3, "echo_worker", "--service", "echo3")
        # Node 1 learns node 3's workers from etcd (at most 4 puts a
        # second); its service echo3 exists once a call named it.
        end = time.monotonic() + 5
        while True:
            try:
                self.assertEqual(c.node(1).call("echo3", b"x",
                                                timeout_ms=2000), b"x")
                break
            except FerryFailed:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        n3 = c.node(3).name
        svcs = c.node(1).http("GET", "/v1/services").json()["services"]
        echo3 = [s for s in svcs if s["name"] == "echo3"]
        self.assertEqual(len(echo3), 1, [s["name"] for s in svcs])
        self.assertEqual(echo3[0]["workers"], [])
        nodes = echo3[0].get("nodes")
        self.assertEqual([n["node"] for n in nodes or []], [n3], echo3[0])
        self.assertEqual(nodes[0]["workers"], 1, nodes)
        self.assertGreater(nodes[0]["credit"], 0, nodes)
        r = c.node(1).ferry(["services"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertRegex(out, r"(?m)^echo3 +0 ")
        self.assertRegex(out, r"(?m)^echo3 .*\n  node +%s +workers 1 +"
                         r"credit [1-9]" % re.escape(n3))
        # And node 1's member table names node 3's service.
        r = c.node(1).ferry(["cluster"])
        self.assertRegex(r.stdout.decode(),
                         r"(?m)^%s .* echo3:1(,|$)" % re.escape(n3))
        # The forwarded call is counted for node 3's link.
        m = promparse.parse(c.node(1).http("GET", "/metrics").body)
        fwd = [s.value for s in
               m.families["ferry_cluster_peer_forwarded_total"].samples
               if s.labels == {"peer": n3}]
        self.assertEqual(len(fwd), 1)
        self.assertGreaterEqual(fwd[0], 1)
