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


class SocketFolderCase(FerryTestCase):
    """Folders given to root or to uid 65534, and ferryd refusals."""
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

    def start_refused(self, *args, status=1):
        """Runs ferryd expecting a refusal at start: exit status (1, or 2
        for a bad flag) and a message."""
        cmd = [binary("ferryd"), "--http", "off"] + list(args)
        r = subprocess.run(cmd, capture_output=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(sanitizer_report(err), None, err)
        self.assertEqual(r.returncode, status, f"{cmd}: {err}")
        return err



class TestUnixSocketFolders(SocketFolderCase):
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


CONNECT_AS_NOBODY = r"""
import os, socket, sys
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError as e:
    print(e, file=sys.stderr)
    sys.exit(13)
sys.exit(0)
"""


class TestUnixSocketMode(SocketFolderCase):
    """unix_socket_mode (default 0660): the socket's mode is set by ferryd,
    not left to the umask, so a frontend's user (php-fpm's www-data) can be
    let in by ferryd's group, and only by it."""

    def connects_as_nobody(self, path):
        """True when uid 65534 (group 65534) connects; False when refused
        (EACCES); anything else fails the test, naming what it saw."""
        r = subprocess.run(["python3", "-c", CONNECT_AS_NOBODY, path],
                           capture_output=True, timeout=20)
        seen = [(p, oct(os.stat(p).st_mode), os.stat(p).st_uid,
                 os.stat(p).st_gid)
                for p in self.components(path)]
        self.assertIn(r.returncode, (0, 13),
                      f"{r.stderr.decode(errors='replace')} {seen}")
        self.last_seen = f"{r.stderr.decode(errors='replace')} {seen}"
        return r.returncode == 0

    @staticmethod
    def components(path):
        out = []
        while path not in ("/", ""):
            out.append(path)
            path = os.path.dirname(path)
        return ["/"] + out[::-1]

    def shared_folder(self):
        # Root's folder, readable by the group nogroup; setgid so that the
        # socket made in it is in that group too (as /run/ferry is the
        # ferry group's under systemd).
        os.chmod(self.base, 0o755)
        path = self.folder("shared", owner=0, mode=0o750)
        os.chown(path, 0, NOBODY)
        os.chmod(path, 0o2750)
        return path

    def test_default_mode_lets_the_group_in(self):
        shared = self.shared_folder()
        sock = os.path.join(shared, "ferryd.sock")
        old = os.umask(0o077)  # the mode must not come from the umask
        try:
            d = self.daemon("--listen", "unix:" + sock,
                            "--data-dir", self.folder("data"))
        finally:
            os.umask(old)
        st = os.stat(sock)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, NOBODY)
        self.assertTrue(self.connects_as_nobody(sock), self.last_seen)
        d.stop()

    def test_mode_0600_keeps_the_group_out(self):
        shared = self.shared_folder()
        sock = os.path.join(shared, "ferryd.sock")
        d = self.daemon("--listen", "unix:" + sock, "--unix-socket-mode",
                        "0600", "--data-dir", self.folder("data"))
        self.assertEqual(os.stat(sock).st_mode & 0o777, 0o600)
        self.assertFalse(self.connects_as_nobody(sock))
        # ferryd's own user still connects.
        r = run_ferry(["call", "echo", "x"], addr="unix:" + sock)
        self.assertEqual((r.returncode, r.stdout), (0, b"x\n"), r)
        d.stop()

    def test_bad_mode_refused(self):
        for bad in ("0999", "1777", "rw", "-1"):
            err = self.start_refused("--unix-socket-mode", bad, "--listen",
                                     f"127.0.0.1:{free_port()}",
                                     "--data-dir", self.folder("d" + bad),
                                     status=2)
            self.assertIn(f"unix-socket-mode: bad value '{bad}' (expected "
                          "an octal file mode from 0000 to 0777)", err)
        # The same in a file, naming its line.
        conf = os.path.join(self.base, "bad.conf")
        with open(conf, "w") as f:
            f.write("[ferryd]\nunix_socket_mode = 0778\n")
        err = self.start_refused("--config", conf, "--data-dir",
                                 self.folder("dconf"), status=2)
        self.assertIn("line 2", err)
        self.assertIn("unix_socket_mode: bad value '0778'", err)
