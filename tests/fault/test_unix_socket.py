# SPDX-License-Identifier: MIT
"""Hole 6 of the hostile-peers issue: the unix socket's folder and the data
folder. Another user who owns (or may write) the folder of ferryd's socket
can swap the socket for theirs and read the tokens clients send. ferryd
refuses such folders at start; the ferry command refuses to send a token to
a socket in one. Runs as root (it gives folders to uid 65534 with chown).
"""
import os
import shutil
import socket
import subprocess
import tempfile

from ferrytest import (FerryTestCase, binary, free_port, run_ferry,
                       sanitizer_report)

NOBODY = 65534


class TestUnixSocketFolders(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("tests/fault/test_unix_socket.py needs root (chown)")
        self.base = tempfile.mkdtemp(prefix="ferry-sockdir-")
        self.addCleanup(shutil.rmtree, self.base, True)

    def folder(self, name, owner=0, mode=0o700):
        path = os.path.join(self.base, name)
        os.mkdir(path)
        os.chown(path, owner, owner)
        os.chmod(path, mode)
        return path

    def start_refused(self, *args):
        """Runs ferryd expecting a refusal at start: exit 1 and a message."""
        cmd = [binary("ferryd"), "--http", "off"] + list(args)
        r = subprocess.run(cmd, capture_output=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(sanitizer_report(err), None, err)
        self.assertEqual(r.returncode, 1, f"{cmd}: {err}")
        return err

    def test_data_dir_of_another_user_refused(self):
        theirs = self.folder("theirs", owner=NOBODY, mode=0o777)
        err = self.start_refused("--data-dir", theirs, "--listen",
                                 f"127.0.0.1:{free_port()}")
        self.assertIn(f"data dir '{theirs}' is owned by uid 65534", err)
        # Given to root but open to all: refused for the mode.
        os.chown(theirs, 0, 0)
        err = self.start_refused("--data-dir", theirs, "--listen",
                                 f"127.0.0.1:{free_port()}")
        self.assertIn("may be written by others (mode 0777)", err)
        # A folder to be made inside one others may write: its parent.
        err = self.start_refused("--data-dir", os.path.join(theirs, "d"),
                                 "--listen", f"127.0.0.1:{free_port()}")
        self.assertIn(f"'{theirs}' may be written by others", err)

    def test_socket_folder_of_another_user_refused(self):
        theirs = self.folder("theirs", owner=NOBODY, mode=0o755)
        sock = os.path.join(theirs, "ferryd.sock")
        err = self.start_refused("--listen", "unix:" + sock,
                                 "--data-dir", self.folder("data"))
        self.assertIn(f"listen 'unix:{sock}'", err)
        self.assertIn("owned by uid 65534", err)
        self.assertFalse(os.path.exists(sock))
        # The same socket in a folder of ours starts and serves.
        ours = self.folder("ours")
        d = self.daemon("--listen", "unix:" + os.path.join(ours, "f.sock"))
        r = run_ferry(["call", "echo", "x"],
                      addr="unix:" + os.path.join(ours, "f.sock"))
        self.assertEqual((r.returncode, r.stdout), (0, b"x\n"), r)
        d.stop()

    def listener(self, folder):
        """A unix socket another program listens on, as an impostor."""
        path = os.path.join(folder, "ferryd.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(4)
        s.settimeout(0.5)
        self.addCleanup(s.close)
        return s, path

    def heard(self, s):
        """Bytes the impostor received, b"" when nobody connected."""
        try:
            c, _ = s.accept()
        except socket.timeout:
            return b""
        with c:
            c.settimeout(1)
            try:
                return c.recv(4096)
            except socket.timeout:
                return b""

    def test_cli_keeps_token_from_a_swapped_socket(self):
        # The probe's attack: another user's folder, their socket in it.
        theirs = self.folder("theirs", owner=NOBODY, mode=0o755)
        s, path = self.listener(theirs)
        os.chown(path, NOBODY, NOBODY)
        r = run_ferry(["--token", "s3cr3t-admin", "admin", "reload"],
                      addr="unix:" + path, timeout=20)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn(b"not sending the token", r.stderr)
        self.assertIn(b"owned by uid 65534", r.stderr)
        self.assertEqual(self.heard(s), b"")
        # Our folder but their socket file: refused as well.
        ours = self.folder("ours")
        s2, path2 = self.listener(ours)
        os.chown(path2, NOBODY, NOBODY)
        r = run_ferry(["--token", "s3cr3t-admin", "admin", "reload"],
                      addr="unix:" + path2, timeout=20)
        self.assertEqual(r.returncode, 3, r)
        self.assertEqual(self.heard(s2), b"")
        # Control: with our own socket the token does go out (so the two
        # refusals above are the check, not a broken listener).
        os.chown(path2, 0, 0)
        p = subprocess.Popen([binary("ferry"), "--addr", "unix:" + path2,
                              "--token", "s3cr3t-admin", "admin", "reload"],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            s2.settimeout(10)
            self.assertIn(b"s3cr3t-admin", self.heard(s2))
        finally:
            p.kill()
            p.wait(10)
