# SPDX-License-Identifier: MIT
"""The peer column of docs/protocol.md's "Who may send what", on a
clustered node: a peer's REQUEST is served, answers for ids it was never
sent are ignored, ERROR id 0 closes in silence, and what only workers or
ferryd send (REGISTER, DRAIN, HELLO again...) is PROTO and closes."""
from ferrycluster import ClusterTestCase
from ferrytest import (CANCEL, DRAIN, ERROR, HELLO, HELLO_OK, REGISTER,
                       REGISTERED, REPLY, ROLE_PEER, TYPE_NAMES, encode_error,
                       frame_of)
from test_forwarding import CONFIG, wait_formed


class TestPeerProtocol(ClusterTestCase):
    TIME_LIMIT = 90

    def test_peer_column(self):
        c = self.cluster(1, config=CONFIG)
        wait_formed(self, c)
        node = c.node(1)

        for t in (HELLO, HELLO_OK, REGISTER, REGISTERED, DRAIN):
            with self.subTest(type=TYPE_NAMES[t]):
                p = node.conn(role=ROLE_PEER, name="probe")
                try:
                    p.send(frame_of(t))
                    frames = p.expect_closed(timeout=5)
                    self.assertEqual(len(frames), 1)
                    self.assertEqual(frames[0].id, 0)
                    self.assertError(frames[0], "PROTO")
                finally:
                    p.close()

        for t in (REPLY, ERROR, CANCEL):
            with self.subTest(type=TYPE_NAMES[t]):
                p = node.conn(role=ROLE_PEER, name="probe")
                try:
                    p.send(frame_of(t, fid=777))
                    self.assertReply(p.call(1, "echo", b"alive"), b"alive")
                finally:
                    p.close()

        p = node.conn(role=ROLE_PEER, name="probe")
        try:
            p.send(encode_error(0, "SHUTTING_DOWN", "bye"))
            self.assertEqual(p.expect_closed(timeout=5), [])
        finally:
            p.close()
        # The node is unharmed.
        self.assertEqual(node.call("echo", b"still"), b"still")

    def test_handover_only_from_the_cluster(self):
        """ferry.handover writes raw data into the store: a caller (binary
        or HTTP) gets UNAUTHORIZED whatever node its key names."""
        c = self.cluster(1, config=CONFIG)
        wait_formed(self, c)
        node = c.node(1)
        begin = b"\x01\x00\x07"
        for key in ("elsewhere", node.name):
            r = node.ferry(["call", "ferry.handover", "-", "--key", key],
                           input=begin)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(b"UNAUTHORIZED", r.stderr)
        r = node.http("POST", "/v1/call/ferry.handover", begin,
                      headers={"Ferry-Key": node.name})
        self.assertIn(r.status, (401, 403), r.body[:200])
