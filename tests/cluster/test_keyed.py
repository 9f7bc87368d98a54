# SPDX-License-Identifier: MIT
"""Keyed requests go to the owner of their key's vbucket, whatever node
they enter at: a cache item set through node 1 is read through node 2
while node 3 owns it (and holds it: its own cache stats count it); kv
keys and queue jobs the same. Owners are computed here from docs/cluster.md
alone (tests/lib/vbmap.py), not asked of ferryd."""
import json

import vbmap
from ferrycluster import ClusterTestCase
from test_failover import key_with_home, wait_homes
from test_forwarding import CONFIG, wait_formed


def ferry_ok(test, node, args, input=None):
    r = node.ferry(args, input=input)
    test.assertEqual(r.returncode, 0,
                     f"ferry {' '.join(args)} on {node.name}: "
                     f"{r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


class TestKeyed(ClusterTestCase):
    TIME_LIMIT = 150

    def test_cache_kv_and_queues_live_on_their_owner(self):
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        wait_homes(self, c)  # durable keys answer UNAVAILABLE before
        names = [n.name for n in c]
        n1, n2, n3 = c.node(1), c.node(2), c.node(3)

        # The map every node computed is the one the docs define.
        view = n1.http("GET", "/v1/cluster").json()
        want = {n: 0 for n in names}
        for vb in range(vbmap.VB_COUNT):
            want[vbmap.owner(vb, names)] += 1
        got = {m["name"]: m["vbuckets"] for m in view["members"]}
        self.assertEqual(got, want)

        # Cache: a key node 3 owns, set via 1, read via 2 and via 3.
        key = vbmap.key_owned_by(n3.name, names, "item")
        ferry_ok(self, n1, ["cache", "set", key, "v-on-3"])
        for n in (n1, n2, n3):
            self.assertEqual(ferry_ok(self, n, ["cache", "get", key]),
                             "v-on-3")
        # Only node 3's own cache holds it: 1 and 2 hold no item.
        items = {}
        for n in c:
            st = json.loads(ferry_ok(self, n, ["cache", "stats"]))
            items[n.name] = st.get("items", st.get("curr_items"))
        self.assertEqual(items, {n1.name: 0, n2.name: 0, n3.name: 1})

        # kv: a key of node 2, put via 3, read via 1.
        kkey = vbmap.key_owned_by(n2.name, names, "conf/")
        ferry_ok(self, n3, ["kv", "put", kkey, "durable"])
        self.assertEqual(ferry_ok(self, n1, ["kv", "get", kkey]),
                         "durable")

        # A queue of node 1: pushed via 2, reserved via 3, acked via 2.
        q = vbmap.key_owned_by(n1.name, names, "jobs")
        jid = ferry_ok(self, n2, ["push", q, "job-1"]).strip()
        out = ferry_ok(self, n3, ["reserve", q, "--wait", "2000"])
        head, payload = out.split("\n", 1)
        fields = dict(f.split("=", 1) for f in head.split())
        self.assertEqual(fields["id"], jid)
        self.assertEqual(payload, "job-1\n")
        ferry_ok(self, n2, ["ack", q, jid, fields["token"]])
        st = json.loads(ferry_ok(self, n3, ["queue", "stats", q]))
        self.assertEqual((st["ready"], st["reserved"]), (0, 0))

        # `ferry queues` on any node lists every node's queues, each with
        # the node it lives on (a queue is on its vbucket's home).
        homes = wait_homes(self, c)
        qs = {n.name: key_with_home(homes, n.name, f"list-{n.name}-")
              for n in c}
        for node_name, qname in qs.items():
            ferry_ok(self, n1, ["push", qname, "x"])
        for n in c:
            doc = json.loads(ferry_ok(self, n, ["queues"]))
            where = {e["name"]: e.get("node") for e in doc["queues"]}
            for node_name, qname in qs.items():
                self.assertEqual(where.get(qname), node_name, (n.name, doc))
            self.assertEqual(doc["missing"], [], doc)
            self.assertEqual(doc["nodes"], 3, doc)
            names = [e["name"] for e in doc["queues"]]
            self.assertEqual(names, sorted(names))
            self.assertEqual(len(names), len(set(names)), names)
        # The same over HTTP, and through a client (the clients hand the
        # document on as it is).
        doc = n2.http("GET", "/v1/queues").json()
        self.assertLessEqual(set(qs.values()),
                             {e["name"] for e in doc["queues"]}, doc)
        cl = n3.client()
        try:
            doc = cl.queue.stats()
        finally:
            cl.close()
        self.assertEqual({e["name"]: e["node"] for e in doc["queues"]
                          if e["name"] in qs.values()},
                         {q: name for name, q in qs.items()})

        # Each node forwarded what it did not own; none answered
        # NOT_MY_VBUCKET in a stable cluster.
        for n in c:
            cnt = n.http("GET", "/v1/cluster").json()["counters"]
            self.assertEqual(cnt["not_my_vbucket"], 0, n.name)
            self.assertEqual(cnt["remapped"], 0, n.name)
        self.assertGreaterEqual(
            n1.http("GET", "/v1/cluster").json()["counters"]["forwarded"], 1)


class TestKeyedService(ClusterTestCase):
    TIME_LIMIT = 120

    def test_keyed_service_by_owner_and_worker(self):
        """keyed_service: calls with one routing key reach one node (the
        key's owner) and there one worker (rendezvous over its workers),
        wherever they enter; different keys spread over the workers."""
        c = self.cluster(3, config=CONFIG + ["keyed_service = sticky"])
        wait_formed(self, c)
        names = [n.name for n in c]
        for i in (1, 2, 3):
            for w in ("a", "b", "c"):
                c.worker(i, "tests/test_worker", "--service", "sticky",
                         "--credit", "16", "--mode", f"tag:n{i}{w}")
        tags_of = {}
        for k in range(24):
            key = f"user:{k}"
            owner = vbmap.owner_of_key(key, names)
            seen = set()
            for entry in (1, 2, 3):
                for _ in range(3):
                    got = c.node(entry).call("sticky", b"p", key=key)
                    seen.add(got.split(b":")[0].decode())
            self.assertEqual(len(seen), 1, (key, seen))
            tag = seen.pop()
            self.assertEqual(f"node{tag[1]}", owner)
            tags_of[key] = tag
        # Rendezvous spreads keys: more than one worker of a node is used.
        per_node = {}
        for tag in tags_of.values():
            per_node.setdefault(tag[1], set()).add(tag)
        self.assertGreater(max(len(v) for v in per_node.values()), 1)


class TestIds(ClusterTestCase):
    TIME_LIMIT = 90

    def test_ids_carry_the_leased_node_id(self):
        """Every node is configured with node_id 0; each issues ferry.id
        ids with the node id it leased in etcd, so no two nodes share
        one, and a node that holds none refuses (the etcd-faults test)."""
        c = self.cluster(3, config=CONFIG)
        wait_formed(self, c)
        seen = {}
        for n in c:
            view = n.http("GET", "/v1/cluster").json()
            cl = n.client()
            ids = cl.id.next(5)
            nodes = {cl.id.decode(i).node for i in ids}
            cl.close()
            self.assertEqual(nodes, {view["node_id"]}, n.name)
            seen[n.name] = view["node_id"]
        self.assertEqual(len(set(seen.values())), 3, seen)
