# SPDX-License-Identifier: MIT
"""The harness the cluster tests stand on (tests/lib/netns.py, etcdproc.py,
ferrycluster.py), checked against the real thing: etcd answers from the
root namespace and from inside every node's namespace; three ferryd nodes
start in their namespaces and answer over the bridge; one node reaches
another from inside its namespace; cutting a node off breaks that within
a bound and restoring it mends it; a kill -9 and a restart of a node and
of etcd; and nothing of ours is left on the host afterwards."""
import os
import subprocess
import sys
import time

import etcdproc
import netns
from ferrycluster import ClusterTestCase, FerryFailed
from ferrytest import ROLE_WORKER, remove_tmp

# A call to a cut-off node must fail within this (the CLI's connect
# timeout is 2 s); a restored one must answer within this.
CUT_BOUND_S = 10.0
RESTORE_BOUND_S = 10.0


class TestHarness(ClusterTestCase):
    TIME_LIMIT = 180

    def test_network_etcd_and_nodes(self):
        c = self.cluster(3, config=["log_level = debug",
                                    "; {name} at {addr}, etcd {etcd}"])
        net = c.net
        self.assertLessEqual(max(len(x) for x in net.names()), 15)

        # The network: a bridge of ours with its address; three
        # namespaces, each with its address on its own veth and lo up.
        self.assertIn(net.bridge, netns.links())
        for i in (1, 2, 3):
            nd = net.node(i)
            self.assertIn(nd.ns, netns.namespaces())
            out = net.run(i, ["ip", "-o", "-4", "addr", "show"]).stdout
            self.assertIn(f"{nd.addr}/24", out)
            self.assertRegex(out, r"\blo\b.*127\.0\.0\.1")
        self.assertEqual(len({n.addr for n in net.nodes}), 3)

        # etcd from the root namespace, through its gateway and etcdctl.
        e = c.etcd
        self.assertTrue(e.healthy())
        self.assertTrue(e.healthy(host=net.bridge_addr))
        e.put("/harness/root", b"from root \xff")
        self.assertEqual(e.get("/harness/root"), b"from root \xff")
        r = etcdproc.etcdctl(e.url, "get", "/harness/root",
                             "--print-value-only")
        self.assertEqual(r.returncode, 0, r.stderr)

        # etcd from inside each namespace, at the bridge address.
        for i in (1, 2, 3):
            key = f"/harness/ns/{i}"
            r = etcdproc.etcdctl(c.etcd_url, "put", key, f"v{i}",
                                 wrap=net.wrap(i, []))
            self.assertEqual(r.returncode, 0, f"node{i}: {r.stderr}")
            r = etcdproc.etcdctl(c.etcd_url, "get", key,
                                 "--print-value-only", wrap=net.wrap(i, []))
            self.assertEqual(r.returncode, 0, f"node{i}: {r.stderr}")
            self.assertEqual(r.stdout.strip(), f"v{i}")
        self.assertEqual(e.range("/harness/ns/"),
                         {b"/harness/ns/1": b"v1", b"/harness/ns/2": b"v2",
                          b"/harness/ns/3": b"v3"})
        self.assertEqual(e.delete("/harness/", prefix=True), 4)
        self.assertEqual(e.range("/harness/"), {})

        # The config file holds the test's lines, formatted per node.
        for node in c:
            with open(node.config_path, encoding="utf-8") as f:
                text = f.read()
            self.assertIn("log_level = debug\n", text)
            self.assertIn(f"; {node.name} at {node.addr}, etcd "
                          f"{c.etcd_url}\n", text)
            node.wait_log(r"debug ", timeout=5)

        # ferryd runs inside its namespace: its PID is in the namespace.
        for node in c:
            self.assertIn(node.pid, netns.ns_pids(node.ns))

        # echo through node 1 from the root namespace: CLI and raw conn.
        self.assertEqual(c.call(1, "echo", b"through node1"),
                         b"through node1")
        conn = c.node(1).conn()
        self._conns.append(conn)
        self.assertReply(conn.call(1, "echo", b"\x00raw\xff"), b"\x00raw\xff")

        # From inside node 1's namespace, node 2 and node 3 answer.
        self.assertEqual(c.call(2, "echo", b"1 to 2", via=1), b"1 to 2")
        self.assertEqual(c.call(3, "echo", b"1 to 3", via=1), b"1 to 3")
        # ... and node 1's own loopback is its own (lo up): nothing of the
        # root namespace's listeners there.
        r = c.run_in(1, ["ip", "-o", "link", "show", "lo"])
        self.assertIn("UP", r.stdout)

        # Cut node 2 off: from node 1 it fails within the bound, the
        # root namespace cannot reach it either, node 3 still answers.
        c.cut(2)
        self.assertTrue(net.is_cut(2))
        t0 = time.monotonic()
        with self.assertRaises((FerryFailed, subprocess.TimeoutExpired)):
            c.call(2, "echo", b"cut", via=1, timeout=CUT_BOUND_S)
        self.assertLess(time.monotonic() - t0, CUT_BOUND_S + 1)
        with self.assertRaises((FerryFailed, subprocess.TimeoutExpired)):
            c.call(2, "echo", b"cut", timeout=CUT_BOUND_S)
        self.assertEqual(c.call(3, "echo", b"still", via=1), b"still")
        # The cut node's ferryd lives on; from inside, etcd is gone.
        self.assertTrue(c.node(2).is_running())
        r = etcdproc.etcdctl(c.etcd_url, "get", "/x", wrap=net.wrap(2, []),
                             timeout=20)
        self.assertNotEqual(r.returncode, 0)

        # Restore it: works again, within a bound.
        c.restore(2)
        self.assertFalse(net.is_cut(2))
        deadline = time.monotonic() + RESTORE_BOUND_S
        while True:
            try:
                self.assertEqual(c.call(2, "echo", b"back", via=1,
                                        timeout=5), b"back")
                break
            except (FerryFailed, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(c.call(2, "echo", b"root again"), b"root again")

    def test_workers_restarts_and_etcd_faults(self):
        c = self.cluster(3, http_port=None)
        # A worker inside node 3's namespace, pointing at node 3, serves
        # callers of node 3 from anywhere.
        w = c.worker(3, "echo_worker", "--service", "ns_echo")
        self.assertIn(w.pid, netns.ns_pids(c.node(3).ns))
        self.assertEqual(c.call(3, "ns_echo", b"w"), b"w")
        self.assertEqual(c.call(3, "ns_echo", b"w", via=2), b"w")
        # A worker connection seen from the root namespace (raw conn).
        wc = c.node(1).conn(ROLE_WORKER)
        self._conns.append(wc)
        wc.register("raw_svc", credit=1)

        # kill -9 a node, then restart it on the same data dir and port.
        n2 = c.node(2)
        old = n2.pid
        self.assertEqual(n2.kill(), -9)
        with self.assertRaises((FerryFailed, subprocess.TimeoutExpired)):
            c.call(2, "echo", b"dead", timeout=10)
        mark = n2.log_mark()
        n2.start()
        self.assertNotEqual(n2.pid, old)
        n2.wait_log(r"\bready\b", timeout=10, since=mark)
        self.assertIn("=== harness: start 2 of node2 ===", n2.log)
        self.assertEqual(c.call(2, "echo", b"reborn", via=1), b"reborn")
        # SIGTERM restart: a clean exit.
        n2.restart()
        self.assertEqual(n2.returncode, 0, n2.log_tail())
        self.assertEqual(c.call(2, "echo", b"again"), b"again")

        # A config line added later takes effect at the restart; a bad
        # one makes the start fail loudly with the log.
        n2.add_config("no_such_key_for_the_harness = 1")
        n2.stop()
        with self.assertRaises(AssertionError) as cm:
            n2.start()
        self.assertIn("no_such_key_for_the_harness", str(cm.exception))
        n2.extra_config.clear()
        n2.start()

        # etcd: pause stops answers, resume brings them back; kill -9 and
        # restart keep the data (same data dir and ports).
        e = c.etcd
        e.put("/harness/keep", "kept")
        e.pause()
        with self.assertRaises(OSError):
            e.get("/harness/keep", timeout=1.0)
        e.resume()
        self.assertEqual(e.get("/harness/keep"), b"kept")
        port = e.client_port
        e.kill()
        with self.assertRaises(OSError):
            e.get("/harness/keep", timeout=1.0)
        e.restart()
        self.assertEqual(e.client_port, port)
        self.assertEqual(e.get("/harness/keep"), b"kept")
        r = etcdproc.etcdctl(c.etcd_url, "get", "/harness/keep",
                             "--print-value-only", wrap=c.net.wrap(1, []))
        self.assertEqual(r.stdout.strip(), "kept", r.stderr)

    def test_cleanup_leaves_nothing(self):
        c = self.cluster(3)
        tag = c.net.tag
        pids = [n.pid for n in c] + [c.etcd.pid]
        c.worker(1, "echo_worker")
        # A process the harness does not track, inside a namespace: the
        # network's close ends it too.
        stray = c.popen_in(2, ["sleep", "300"])
        self.assertTrue(any(x.startswith(tag) for x in netns.links()))
        c.close()
        self.assertEqual(stray.wait(10), -15)
        self.assertEqual([x for x in netns.namespaces()
                          if x.startswith(tag)], [])
        self.assertEqual([x for x in netns.links() if x.startswith(tag)], [])
        self.assertEqual(c.net.leftovers(), [])
        out = subprocess.run(["ip", "-o", "link"], capture_output=True,
                             text=True, timeout=10).stdout
        self.assertNotIn(tag, out)
        out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                             text=True, timeout=10).stdout
        self.assertNotIn(tag, out)
        for p in pids:
            self.assertFalse(os.path.exists(f"/proc/{p}"), f"pid {p} left")
        # The subnet's route is gone with the bridge.
        out = subprocess.run(["ip", "-4", "route"], capture_output=True,
                             text=True, timeout=10).stdout
        self.assertNotIn(str(c.net.subnet), out)

    def test_leftovers_of_a_dead_run_are_swept(self):
        # Make what a SIGKILLed run leaves: a namespace with a process in
        # it, a veth pair and a bridge, named for a PID that is dead.
        dead = _dead_pid()
        tag = f"{netns.PREFIX}{dead}a"
        ns, br = tag + "n1", tag + "b"
        self.addCleanup(_force_remove, ns, [tag + "h1", br])
        try:
            subprocess.run(["ip", "netns", "add", ns], check=True,
                           timeout=10)
            subprocess.run(["ip", "link", "add", br, "type", "bridge"],
                           check=True, timeout=10)
            subprocess.run(["ip", "link", "add", tag + "h1", "type", "veth",
                            "peer", "name", tag + "p1"], check=True,
                           timeout=10)
        except subprocess.CalledProcessError as e:
            raise netns.NetnsUnavailable(f"cannot create namespaces: {e}")
        sleeper = subprocess.Popen(["ip", "netns", "exec", ns, "sleep",
                                    "300"])
        self.addCleanup(_reap_quietly, sleeper)
        # Someone else's names (not our prefix) stay untouched.
        other = "frx" + str(dead) + "ab"
        subprocess.run(["ip", "link", "add", other, "type", "bridge"],
                       check=True, timeout=10)
        self.addCleanup(_force_remove, None, [other])
        # A live run's names (ours: this PID) stay untouched too.
        with netns.Network(1, sweep=False) as live:
            removed = netns.sweep_leftovers()
            self.assertIn(ns, removed)
            self.assertIn(br, removed)
            self.assertNotIn(ns, netns.namespaces())
            self.assertFalse(any(x.startswith(tag) for x in netns.links()))
            self.assertIn(other, netns.links())
            self.assertIn(live.bridge, netns.links())
            self.assertIn(live.node(1).ns, netns.namespaces())
            self.assertEqual(sleeper.wait(10), -15)
        self.assertEqual(live.leftovers(), [])


    def test_a_killed_runner_is_swept(self):
        # A runner SIGKILLed with a cluster up leaves namespaces, links,
        # ferryd and etcd behind; the next run's sweep ends and removes
        # them all.
        script = ("import sys, time\n"
                  f"sys.path.insert(0, {LIB!r})\n"
                  "import ferrycluster\n"
                  "c = ferrycluster.Cluster(2)\n"
                  "print('DIRS', c.etcd.tmp, *[n.tmp for n in c], "
                  "flush=True)\n"
                  "print('UP', c.net.tag, c.etcd.pid, "
                  "*[n.pid for n in c], flush=True)\n"
                  "time.sleep(120)\n")
        runner = subprocess.Popen([sys.executable, "-c", script],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.addCleanup(_reap_quietly, runner)
        line = runner.stdout.readline()
        if line.startswith("DIRS "):
            # The sweep ends processes; the killed runner's files are
            # this test's to remove.
            for d in line.split()[1:]:
                self.addCleanup(remove_tmp, d)
            line = runner.stdout.readline()
        self.assertTrue(line.startswith("UP "), line +
                        runner.stdout.read() if runner.poll() is not None
                        else line)
        _, tag, *pids = line.split()
        pids = [int(p) for p in pids]
        runner.kill()
        runner.wait(10)
        self.assertTrue(any(x.startswith(tag) for x in netns.links()))
        self.assertTrue(all(_running(p) for p in pids))

        removed = netns.sweep_leftovers()
        self.assertIn(tag + "n1", removed)
        self.assertIn(tag + "b", removed)
        self.assertTrue(etcdproc.sweep_leftovers())
        deadline = time.monotonic() + 10
        while any(_running(p) for p in pids) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in pids if _running(p)], [])
        self.assertEqual(netns.ours(netns.namespaces() + netns.links(),
                                    int(tag[len(netns.PREFIX):-1])), [])


LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")


def _running(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _dead_pid():
    """A PID no process has now (it may be reused later: fine here)."""
    p = subprocess.Popen(["true"])
    p.wait(10)
    return p.pid


def _reap_quietly(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _force_remove(ns, links):
    if ns:
        for pid in netns.ns_pids(ns) if ns in netns.namespaces() else []:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                       timeout=10)
    for name in links:
        if os.path.exists(f"/sys/class/net/{name}"):
            subprocess.run(["ip", "link", "del", name], capture_output=True,
                           timeout=10)

