# SPDX-License-Identifier: MIT
"""What the Python client's tests share: real ferryd processes from
$FERRY_BIN (default build/) through tests/lib/ferrytest.py, Python worker
processes, and a per-test time limit."""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYROOT = os.path.dirname(HERE)
ROOT = os.path.abspath(os.path.join(PYROOT, "..", ".."))
sys.path.insert(0, PYROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
os.environ.setdefault("FERRY_BIN", os.path.join(ROOT, "build"))

import ferrytest  # noqa: E402

Daemon = ferrytest.Daemon
PYTHON = sys.executable


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = PYROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


class PyProc:
    """A Python program (worker) started with the client on its path;
    start() waits until a line of stdout satisfies ready(line)."""

    def __init__(self, args: list[str], ready=lambda l: l == "READY",
                 timeout: float = 10.0) -> None:
        self.args = [PYTHON] + args
        self.ready = ready
        self.timeout = timeout
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.tmp = tempfile.mkdtemp(prefix="pyworker-")
        # Removed when the test run ends, whoever made the PyProc.
        atexit.register(ferrytest.remove_tmp, self.tmp)
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self._cond = threading.Condition()

    def start(self) -> "PyProc":
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self._logf, env=env())
        threading.Thread(target=self._drain, daemon=True).start()
        self.wait_line(self.ready, self.timeout)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_line(self, pred, timeout: float = 10.0, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if line != "<EOF>" and pred(line):
                        return line
                if "<EOF>" in self.lines[start:]:
                    raise AssertionError(f"{self.args} ended: {self.lines}"
                                         f"\n{self.log[-2000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.args}: no such line in "
                                         f"{timeout} s: {self.lines}\n"
                                         f"{self.log[-2000:]}")
                self._cond.wait(left)

    @property
    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()
        time.sleep(0.01)  # let the drain thread see EOF
        if self.proc.stdout is not None:
            try:
                self.proc.stdout.close()
            except (OSError, ValueError):
                pass
        return self.proc.returncode


def worker_script(body: str) -> str:
    """Writes a worker program into a temporary file; its path."""
    fd, path = tempfile.mkstemp(prefix="ferry-worker-", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write("import sys, time, threading, asyncio, ferry\n" + body)
    return path


class TestCase(unittest.TestCase):
    """Every test ends within LIMIT seconds (SIGALRM fails it)."""
    LIMIT = 30

    def setUp(self) -> None:
        def expired(signum, frame):  # noqa: ARG001
            raise AssertionError(f"test ran past {self.LIMIT} s")
        self._old = signal.signal(signal.SIGALRM, expired)
        signal.alarm(self.LIMIT)
        self._cleanups_procs: list = []

    def tearDown(self) -> None:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._old)

    def daemon(self, *args: str, **kw) -> "ferrytest.Daemon":
        d = Daemon(args=list(args), **kw)
        self.addCleanup(d.remove_files)  # cleanups run last first
        d.start()
        self.addCleanup(d.stop)
        return d

    def pyproc(self, args: list[str], **kw) -> PyProc:
        p = PyProc(args, **kw)
        self.addCleanup(p.stop)
        return p.start()
