# SPDX-License-Identifier: MIT
"""ferryd under systemd, tested without a booted systemd (these machines'
PID 1 is not systemd): the unit file passes `systemd-analyze verify`, and
the sd_notify messages reach a NOTIFY_SOCKET this test listens on: READY=1
once ferryd listens, RELOADING=1 then READY=1 around SIGHUP and `ferry
admin reload`, STOPPING=1 on SIGTERM, WATCHDOG=1 when WATCHDOG_USEC asks.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ferrytest import ROOT, Conn, FerryTestCase, binary, run_ferry

UNIT = os.path.join(ROOT, "packaging", "ferryd.service")


class NotifySocket:
    """The datagram socket systemd would listen on."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10.0):
        """The next message as a dict of its KEY=VALUE lines."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def wait_for(self, key, timeout=10.0):
        """Messages up to and including the first with key; skips
        WATCHDOG=1 pings."""
        seen = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {key}= message; got {seen}")
            try:
                m = self.next(left)
            except socket.timeout:
                raise AssertionError(f"no {key}= message; got {seen}")
            if "WATCHDOG" not in m:
                seen.append(m)
            if key in m:
                return seen

    def close(self):
        self.sock.close()


class TestSystemd(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="ferry-notify-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.notify = NotifySocket(self.tmp)
        self.addCleanup(self.notify.close)

    def test_unit_verifies(self):
        # verify wants ExecStart to exist: point it at this build's ferryd.
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/sbin/ferryd ", text)
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                     "StateDirectory=ferry", "RuntimeDirectory=ferry",
                     "User=ferry", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes"):
            self.assertIn(line + "\n", text)
        unit = os.path.join(self.tmp, "ferryd.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/sbin/ferryd", binary("ferryd")))
        # Its Documentation= pages are looked up in the tree's man/.
        mandir = os.path.join(self.tmp, "man")
        for sect, page in (("5", "ferryd.conf.5"), ("8", "ferryd.8")):
            os.makedirs(os.path.join(mandir, "man" + sect))
            os.symlink(os.path.join(ROOT, "man", page),
                       os.path.join(mandir, "man" + sect, page))
        r = subprocess.run(["systemd-analyze", "verify", unit],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, MANPATH=mandir))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # And a broken one is caught, so the check above means something.
        with open(unit, "a") as f:
            f.write("[Service]\nType=bogus\n")
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("bogus", r.stdout + r.stderr)

    def test_ready_reload_stopping(self):
        d = self.daemon(env={"NOTIFY_SOCKET": self.notify.path})
        seen = self.notify.wait_for("READY")
        self.assertEqual(seen[-1].get("READY"), "1", seen)
        # READY comes after listening: the port answers now.
        with Conn(d.addr) as c:
            c.hello()
        d.signal(signal.SIGHUP)
        seen = self.notify.wait_for("READY")
        self.assertEqual([("RELOADING" in m, "READY" in m) for m in seen],
                         [(True, False), (False, True)], seen)
        self.assertGreater(int(seen[0]["MONOTONIC_USEC"]), 0)
        # The operator's reload says the same.
        r = run_ferry(["admin", "reload"], addr=d.unix_addr)
        self.assertEqual(r.returncode, 0, r)
        seen = self.notify.wait_for("READY")
        self.assertIn("RELOADING", seen[0])
        d.signal(signal.SIGTERM)
        seen = self.notify.wait_for("STOPPING")
        self.assertEqual(seen[-1]["STOPPING"], "1")
        self.assertEqual(d.wait(20), 0)

    def test_watchdog(self):
        self.daemon(env={"NOTIFY_SOCKET": self.notify.path,
                         "WATCHDOG_USEC": "200000"})
        pings = 0
        end = time.monotonic() + 10
        while pings < 3 and time.monotonic() < end:
            if "WATCHDOG" in self.notify.next(10):
                pings += 1
        self.assertEqual(pings, 3)
