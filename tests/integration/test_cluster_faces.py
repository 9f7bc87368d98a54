# SPDX-License-Identifier: MIT
"""The faces of the cluster on a single node (docs/cluster.md, "Seeing the
cluster"): `ferry cluster` says "not clustered" and exits 0, its --json,
/v1/cluster and the built-in ferry.cluster are {"enabled": false}, the
built-in needs what ferry.services needs, and /metrics and /v1/stats have
no cluster part. tests/cluster/test_faces.py checks them on 3 nodes."""
import json

import promparse
from ferrytest import FerryTestCase, run_ferry

AT = "admin-s3cret"
NO_TOKEN = {"FERRY_TOKEN": ""}


def ferry(args, addr=None):
    """run_ferry with text stdout and stderr."""
    r = run_ferry(args, addr=addr, env=NO_TOKEN)
    r.stdout = r.stdout.decode()
    r.stderr = r.stderr.decode()
    return r


class TestClusterFacesSingle(FerryTestCase):
    TIME_LIMIT = 40

    def test_ferry_cluster_says_not_clustered(self):
        d = self.daemon()
        r = ferry(["cluster"], addr=d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "not clustered\n")
        r = ferry(["cluster", "--json"], addr=d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"enabled": False})
        r = ferry(["cluster", "--bogus"], addr=d.addr)
        self.assertEqual(r.returncode, 2, r)
        r = ferry(["cluster", "rebalance", "--wait", "100"], addr=d.addr)
        self.assertEqual((r.returncode, r.stdout), (0, "not clustered\n"),
                         r.stderr)
        r = ferry(["cluster", "rebalance", "--wait", "x"], addr=d.addr)
        self.assertEqual(r.returncode, 2, r)
        # ferry admin leave is a cluster node's; this one goes on serving.
        r = ferry(["admin", "leave"], addr=d.unix_addr)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("not in a cluster", r.stderr)
        r = ferry(["call", "echo", "still"], addr=d.addr)
        self.assertEqual((r.returncode, r.stdout), (0, "still\n"), r.stderr)

    def test_help_lists_cluster(self):
        r = ferry(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\n  cluster +\S")
        r = ferry(["cluster", "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: ferry cluster", r.stdout)

    def test_v1_cluster_and_builtin(self):
        d = self.daemon()
        r = d.http("GET", "/v1/cluster")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"enabled": False})
        c = self.conn(d)
        f = c.call(1, "ferry.cluster")
        self.assertReply(f)
        self.assertEqual(json.loads(f.body), {"enabled": False})
        r = d.http("POST", "/v1/call/ferry.cluster", b"")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"enabled": False})
        # Counted as a built-in, like ferry.services.
        svcs = {s["name"]: s for s in json.loads(
            d.http("GET", "/v1/services").body)["services"]}
        self.assertEqual(svcs["ferry.cluster"]["backend"], "builtin")
        self.assertEqual(svcs["ferry.cluster"]["requests"], 2)

    def test_builtin_needs_the_admin_token(self):
        d = self.daemon("--admin-token", AT)
        f = self.conn(d).call(1, "ferry.cluster")
        msg = self.assertError(f, "UNAUTHORIZED")
        self.assertIn(b"ferry.cluster", msg)
        r = ferry(["cluster"], addr=d.addr)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("UNAUTHORIZED", r.stderr)
        r = ferry(["--token", AT, "cluster"], addr=d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "not clustered\n")

    def test_no_cluster_metrics_or_stats(self):
        d = self.daemon()
        self.assertReply(self.conn(d).call(1, "ferry.cluster"))
        body = d.http("GET", "/metrics").body
        text = body.decode()
        promparse.parse(body)
        self.assertIn("ferry_requests_total", text)
        self.assertNotIn("ferry_cluster_", text)
        stats = d.http("GET", "/v1/stats").json()
        self.assertIn("services", stats)
        self.assertNotIn("cluster", stats)
