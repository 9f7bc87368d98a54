# SPDX-License-Identifier: MIT
"""The backends of the request path (src/broker/backend.h) and the store
the servants open (src/servants/servants.c), through a real ferryd: the
"backend" field of ferry.services, the built-ins' stats, the store under
each ferryd's own data dir, and a store that cannot open."""
import json
import os
import subprocess
import tempfile

from ferrytest import BUILTIN_SERVICES, FerryTestCase, binary, free_port


class TestBackends(FerryTestCase):
    TIME_LIMIT = 60

    def services(self, d):
        f = self.conn(d).call(1, "ferry.services", b"")
        self.assertReply(f)
        return {s["name"]: s for s in json.loads(f.body)["services"]}

    def test_services_name_their_backend(self):
        d = self.daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "outside")
        c = self.conn(d)
        for i in range(5):
            self.assertReply(c.call(10 + i, "echo", b"x"), b"x")
        s = self.services(d)
        for name in ("echo", "ferry.services", "ferry.admin"):
            self.assertEqual(s[name]["backend"], "builtin", s[name])
            self.assertTrue(s[name]["builtin"])
        self.assertEqual(s["outside"]["backend"], "workers")
        # Exactly the built-ins the table-counting tests assume.
        self.assertEqual(sorted(n for n in s if n != "outside"),
                         sorted(BUILTIN_SERVICES))
        self.assertFalse(s["outside"]["builtin"])
        # An in-daemon answer is counted like a worker's.
        self.assertEqual(s["echo"]["requests"], 5)
        self.assertEqual(s["echo"]["replies"], 5)
        self.assertEqual(s["echo"]["in_flight"], 0)
        self.assertEqual(s["echo"]["circuit"], "closed")

    def test_builtin_errors_counted(self):
        # A TCP caller is refused by ferry.admin (no admin token set:
        # only the unix socket may): an answer of the backend, counted
        # under its code.
        d = self.daemon()
        c = self.conn(d)
        f = c.call(1, "ferry.admin", b"list-workers")
        self.assertError(f, "UNAUTHORIZED")
        s = self.services(d)
        self.assertEqual(s["ferry.admin"]["errors"].get("UNAUTHORIZED"), 1,
                         s["ferry.admin"])

    def test_store_in_each_data_dir(self):
        a = self.daemon()
        b = self.daemon()
        for d in (a, b):
            self.assertReply(self.conn(d).call(1, "echo", b"up"), b"up")
            self.assertTrue(
                os.path.isfile(os.path.join(d.tmp, "store", "data.mdb")),
                os.listdir(d.tmp))
        self.assertNotEqual(a.tmp, b.tmp)
        # A clean stop closes the store; a restart on the same dir opens
        # it again.
        self.assertEqual(a.stop(), 0, a.log_tail())
        a.start()
        self.assertReply(self.conn(a).call(2, "echo", b"again"), b"again")

    def test_store_that_cannot_open_stops_ferryd(self):
        tmp = tempfile.mkdtemp(prefix="ferryd-badstore-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        with open(os.path.join(tmp, "store"), "w") as f:
            f.write("not a folder")
        p = subprocess.run(
            [binary("ferryd"), "--listen", f"127.0.0.1:{free_port()}",
             "--http", "off", "--data-dir", tmp],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        err = p.stderr.decode(errors="replace")
        self.assertIn("store", err)
        self.assertIn("cannot open", err)
        self.assertIn(os.path.join(tmp, "store"), err)
