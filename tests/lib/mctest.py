# SPDX-License-Identifier: MIT
"""Helpers of the memcached face tests: Debian's memcached as a peer
process (stopped by PID), and a raw text-protocol exchange."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from ferrytest import free_port

MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"


class Memcached:
    """memcached -t 1 on a free loopback port; stop() by PID."""

    def __init__(self, mem_mb=64, extra=()):
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="memcached-")
        self.log_path = os.path.join(self.tmp, "memcached.log")
        self.cmd = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port),
                    "-U", "0", "-t", "1", "-m", str(mem_mb)] + list(extra)
        if os.geteuid() == 0:
            self.cmd += ["-u", "nobody"]
        self.proc = None

    @property
    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"memcached exited: {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("memcached not ready")

    def stop(self, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._logf.close()
        return self.proc.returncode


# A miss no script makes, answered with its opaque: the end of an answer
# (scripts themselves send mn, so MN cannot be the fence).
FENCE = b"mg zz-fence Ozz-fence\r\n"
FENCE_ANSWER = b"EN Ozz-fence\r\n"


def exchange(port, data, fence=True, timeout=5.0):
    """Sends data on a fresh connection and returns every byte answered.
    With fence, FENCE is sent after data and the answer is read up to its
    FENCE_ANSWER; else (or when the peer closes) up to EOF/timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data + (FENCE if fence else b""))
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = s.recv(1 << 20)
            except socket.timeout:
                break
            except ConnectionResetError:
                out += b"<EOF>"
                break
            if not d:
                out += b"<EOF>"
                break
            out += d
            if fence and out.endswith(FENCE_ANSWER):
                break
        return out
    finally:
        s.close()


_VALUE_CAS = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)
_META_CAS = re.compile(rb"^((?:VA \d+|HD|EN|NS|EX|NF)(?: \S+)*?) c\d+", re.M)


_PADDED = re.compile(rb"^VALUE (\S+) (\d+) \d+( \S+)?\r\n(\d+) +\r\n", re.M)


def _unpad(m):
    num = m.group(4)
    return b"VALUE %s %s %d%s\r\n%s\r\n" % (
        m.group(1), m.group(2), len(num), m.group(3) or b"", num)


def normalise(out):
    """The differences documented in docs/services.md: cas values (each
    server counts its own), the version string, the stats contents."""
    # memcached's decr that shortens a number pads it with spaces in
    # place (its protocol.txt allows either)
    out = _PADDED.sub(_unpad, out)
    out = _VALUE_CAS.sub(rb"\1 CAS\r", out)
    # meta "c<cas>" return flags, wherever they are on the line
    lines = []
    for line in out.split(b"\n"):
        if line[:2] in (b"VA", b"HD", b"EN", b"NS", b"EX", b"NF"):
            line = re.sub(rb" c\d+", b" cCAS", line)
        if line.startswith(b"VERSION "):
            line = b"VERSION X\r"
        lines.append(line)
    out = b"\n".join(lines)
    out = re.sub(rb"(STAT [^\r]*\r\n)+END\r\n", b"STATS\r\n", out)
    return out
