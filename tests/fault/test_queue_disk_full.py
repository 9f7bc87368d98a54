# SPDX-License-Identifier: MIT
"""ferry.queue on a full disk: ferryd's data dir is a tmpfs of 8 MiB
(mounted by the test, as root); pushes of 4 KiB jobs go on until they get
NO_SPACE. Then: every push that was answered OK is in the queue (nothing
acknowledged lost, nothing half-written), ferryd keeps serving reserves
and acks (which free space), and pushes work again once jobs are acked;
after a restart on the full disk everything answered is still there."""
import os
import time
import subprocess
import tempfile

import queuewire as qw
from ferrytest import ERRORS, FerryTestCase

NO_SPACE = ERRORS["NO_SPACE"]
JOB = 4096
MAX_PUSHES = 4000     # 16 MiB of jobs: more than the disk holds


class TestQueueDiskFull(FerryTestCase):
    TIME_LIMIT = 120

    def setUp(self):
        super().setUp()
        self.mnt = tempfile.mkdtemp(prefix="ferry-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700",
                            "tmpfs", self.mnt], capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.fail("this test mounts a tmpfs and needs root: "
                      + r.stderr.strip())
        self.addCleanup(self.unmount)

    def unmount(self):
        subprocess.run(["umount", "-l", self.mnt], check=False)
        os.rmdir(self.mnt)

    def d_log(self):
        return self._procs[-1].log_tail(10)

    def push_until_full(self, q, tag):
        ok = {}
        for i in range(MAX_PUSHES):
            payload = (b"%s-%05d-" % (tag, i)).ljust(JOB, b"x")
            r = q.push("full", payload)
            if "error" in r:
                self.assertEqual(r["error"][0], NO_SPACE, (i, r, self.d_log()))
                return ok, r
            self.assertEqual(r["status"], qw.OK, r)
            ok[r["id"]] = payload
        self.fail(f"{MAX_PUSHES} pushes of {JOB} bytes fit in 8 MiB")

    def test_no_space_then_serving_then_space_again(self):
        d = self.daemon("--data-dir", self.mnt)
        q = qw.Queues(self.conn(d))
        ok, err = self.push_until_full(q, b"a")
        self.assertGreater(len(ok), 100, "the disk filled too soon")
        self.assertIn(b"", err["error"][1])
        # Nothing acknowledged is lost, nothing half-written.
        st = q.stats("full")["json"]
        self.assertEqual(st["ready"], len(ok), st)
        for j in q.peek("full", limit=50)["jobs"]:
            self.assertEqual(j["payload"], ok[j["id"]])
        # Reserves and acks go on (an ack frees space).
        got = []
        for _ in range(200):
            r = q.reserve("full")
            self.assertEqual(r.get("status"), qw.OK, r)
            self.assertEqual(r["payload"], ok[r["id"]])
            a = q.ack("full", r["id"], r["token"])
            self.assertEqual(a.get("status"), qw.OK, a)
            got.append(r["id"])
        # Pushes work again in the room the acks freed (once the writer
        # has looked: at most 250 ms after a commit).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = q.push("full", b"probe")
            if "error" not in r:
                break
            self.assertEqual(r["error"][0], NO_SPACE, r)
            a = q.reserve("full")  # a commit, so that the writer looks
            q.release("full", a["id"], a["token"])
            time.sleep(0.1)
        self.assertNotIn("error", r, "pushes never came back")
        ok[r["id"]] = b"probe"
        more, err2 = self.push_until_full(q, b"b")
        self.assertGreater(len(more), 50, "no room after 200 acks")
        for i in got:
            ok.pop(i)
        ok.update(more)
        # A restart on the full disk keeps every answered push.
        d.stop()
        d.start()
        q = qw.Queues(self.conn(d))
        st = q.stats("full")["json"]
        self.assertEqual(st["ready"], len(ok), st)
        seen = 0
        while True:
            r = q.reserve("full")
            if r.get("status") != qw.OK:
                self.assertEqual(r.get("status"), qw.EMPTY, r)
                break
            self.assertEqual(r["payload"], ok[r["id"]])
            self.assertEqual(q.ack("full", r["id"], r["token"])["status"],
                             qw.OK)
            seen += 1
        self.assertEqual(seen, len(ok))
