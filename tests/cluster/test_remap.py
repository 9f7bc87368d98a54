# SPDX-License-Identifier: MIT
"""A keyed request a peer answers NOT_MY_VBUCKET is routed once more by
the sender (issue 13: "the sender refreshes and retries once"), never
twice, and never seen by the caller when the sender's map or homes catch
up in time.

The peer is a fake: a member key this test writes into etcd (marked
leaving, so node 1 hands it no data) whose address is a socket of this
test that speaks the peer protocol and answers what the test tells it.
Only a fake can answer NOT_MY_VBUCKET on cue: two real nodes disagree
for a watch round trip at most."""
import json
import socket
import threading
import time

import vbmap
from ferrycluster import ClusterTestCase
from ferrytest import (HELLO, PING, REQUEST, decode_frame,
                       encode_error, encode_frame, encode_hello_ok,
                       parse_hello, parse_request)
from test_forwarding import CONFIG

FAKE = "node9"                     # sorts after node1: node1 dials it
FORWARDED = 0x80                   # the hop mark (protocol.md)


class FakePeer(threading.Thread):
    """A peer node on host: accepts node 1's link, and answers each
    REQUEST with answer(request) -> bytes of one frame, or None to send
    nothing. Records every request."""

    def __init__(self, host, answer):
        super().__init__(daemon=True)
        self.answer = answer
        self.requests = []
        self.hello = None
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.addr = f"{host}:{self.sock.getsockname()[1]}"
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.serve(conn)

    def serve(self, conn):
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self.stopping.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while True:
                    f, used = decode_frame(buf)
                    if f is None:
                        break
                    buf = buf[used:]
                    out = self.frame(f)
                    if out:
                        conn.sendall(out)

    def frame(self, f):
        if f.type == HELLO:
            self.hello = parse_hello(f.body)
            return encode_hello_ok(name=FAKE)
        if f.type == PING:
            return encode_frame(PING, fid=f.id)
        if f.type != REQUEST:
            return None
        q = parse_request(f.body)
        q["id"], q["flags"], q["at"] = f.id, f.flags, time.monotonic()
        with self.lock:
            self.requests.append(q)
        return self.answer(q)

    def seen(self, key):
        with self.lock:
            return [q for q in self.requests if q["key"] == key.encode()]

    def close(self):
        self.stopping.set()
        self.sock.close()
        self.join(5)


def not_mine(q):
    return encode_error(q["id"], "NOT_MY_VBUCKET",
                        b"vbucket is node 'elsewhere''s at epoch=999999")


class TestRemap(ClusterTestCase):
    TIME_LIMIT = 120

    def setUp(self):
        super().setUp()
        self.c = self.cluster(1, config=CONFIG)
        self.node = self.c.node(1)
        self.etcd = self.c.etcd
        self.base = f"/ferry/{self.c.cluster_name}/"
        self.fake = None
        self.lease = self.etcd.lease_grant(60)

    def tearDown(self):
        if self.fake is not None:
            self.fake.close()
        super().tearDown()

    def counters(self):
        return self.node.http("GET", "/v1/cluster").json()["counters"]

    def join_fake(self, answer):
        """Starts the fake and writes its member key; waits for node 1's
        link to it."""
        self.fake = FakePeer(self.c.net.bridge_addr, answer)
        self.fake.start()
        doc = {"name": FAKE, "addr": self.fake.addr, "http": None,
               "node_id": 900, "services": {}, "started": 0,
               "leaving": True}
        self.etcd.put(self.base + "nodes/" + FAKE, json.dumps(doc),
                      lease=self.lease)
        end = time.monotonic() + 15
        view = None
        while time.monotonic() < end:
            view = self.node.http("GET", "/v1/cluster").json()
            if any(m.get("name") == FAKE and m.get("link") == "up"
                   for m in view.get("members", [])):
                return
            time.sleep(0.05)
        self.fail(f"no link to the fake within 15 s: {view}")

    def leave_fake(self):
        self.etcd.delete(self.base + "nodes/" + FAKE)

    def test_retried_once_then_the_error(self):
        """The map never changes: the request goes to the fake a second
        time (after the wait for a newer map), then the caller gets
        NOT_MY_VBUCKET; a third attempt never comes."""
        self.join_fake(not_mine)
        key = vbmap.key_owned_by(FAKE, ["node1", FAKE], "remap-a-")
        before = self.counters()
        cl = self.node.client()
        try:
            with self.assertRaises(Exception) as cm:
                cl.cache.get(key)
            self.assertIn("NOT_MY_VBUCKET", repr(cm.exception))
        finally:
            cl.close()
        got = self.fake.seen(key)
        self.assertEqual(len(got), 2, got)
        self.assertTrue(all(q["service"] == b"ferry.cache" and
                            q["flags"] & FORWARDED for q in got), got)
        # The second went after this node's wait for a newer map, not at
        # once (its map named the same node).
        self.assertGreaterEqual(got[1]["at"] - got[0]["at"], 0.2)
        after = self.counters()
        self.assertEqual(after["remapped"] - before["remapped"], 1)
        time.sleep(0.5)
        self.assertEqual(len(self.fake.seen(key)), 2)
        # A plain call still works, and the node is well.
        self.assertEqual(self.node.call("echo", b"ok"), b"ok")

    def test_cache_routed_here_once_the_map_changes(self):
        """The fake leaves the member list as it answers NOT_MY_VBUCKET:
        node 1's map makes it the owner, and it serves the set itself;
        the caller never sees the error."""
        def answer(q):
            self.leave_fake()                      # before the answer
            return not_mine(q)

        self.join_fake(answer)
        key = vbmap.key_owned_by(FAKE, ["node1", FAKE], "remap-b-")
        cl = self.node.client()
        try:
            cl.cache.set(key, b"here")
            self.assertEqual(cl.cache.get(key).value, b"here")
        finally:
            cl.close()
        self.assertEqual(len(self.fake.seen(key)), 1)
        self.assertEqual(self.counters()["remapped"], 1)

    def test_kv_follows_its_home(self):
        """ferry.kv goes by the vbucket's home: the fake is the home of
        the key's vbucket, answers NOT_MY_VBUCKET and the home moves
        back to node 1 at etcd; node 1 routes the put anew when it sees
        that (while it waits), and the write is acknowledged once, by node
        1's store."""
        self.join_fake(lambda q: encode_error(q["id"], "UNAVAILABLE",
                                              b"fake"))
        key = vbmap.key_owned_by(FAKE, ["node1", FAKE], "remap-c-")
        home = self.base + f"homes/{vbmap.vbucket(key)}"

        def answer(q):
            if q["service"] != b"ferry.kv":
                return encode_error(q["id"], "UNAVAILABLE", b"fake")
            # The home moves back after the answer: node 1 has the
            # request waiting when its homes watch brings the change.
            threading.Timer(0.1, self.etcd.put, (home, "node1")).start()
            return not_mine(q)

        self.fake.answer = answer
        self.etcd.put(home, FAKE)
        end = time.monotonic() + 10
        while True:
            d = self.node.http("GET", "/v1/cluster/vbuckets").json()
            h = d["home"][vbmap.vbucket(key)]
            if h is not None and d["nodes"][h] == FAKE:
                break
            self.assertLess(time.monotonic(), end,
                            "node 1 never saw the fake as the home")
            time.sleep(0.05)
        cl = self.node.client()
        try:
            cl.kv.put(key, b"v1")
            self.assertEqual(cl.kv.get(key).value, b"v1")
        finally:
            cl.close()
        got = self.fake.seen(key)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["service"], b"ferry.kv")
        self.assertEqual(self.counters()["remapped"], 1)
