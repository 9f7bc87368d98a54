# SPDX-License-Identifier: MIT
"""The store (src/store/) killed with SIGKILL under write load: every write
whose acknowledgement was printed reads back with its value after a
reopen, in both durability modes (store_sync = always and N ms: a crash of
the process loses nothing either way; only a power loss may cost N ms).
Several rounds on the same files. tests/fault/store_writer.c is the
program under test; it prints "ack <id>" only from a batch's callback."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ferrytest import FerryTestCase, binary, sanitizer_report

ROUNDS = 3
INFLIGHT = 64


class TestStoreCrash(FerryTestCase):
    TIME_LIMIT = 120

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ferry-store-crash-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write_and_kill(self, path, sync_ms, first):
        """Runs a writer until it has printed some acks, SIGKILLs it and
        returns the acked ids."""
        p = subprocess.Popen(
            [binary("tests/store_writer"), "write", path, str(INFLIGHT),
             str(sync_ms), "0", str(first)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        acked = []
        try:
            deadline = time.monotonic() + 20
            while len(acked) < 300 and time.monotonic() < deadline:
                line = p.stdout.readline()
                if not line:
                    break
                acked.append(int(line.split()[1]))
        finally:
            os.kill(p.pid, signal.SIGKILL)
            rest, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, -signal.SIGKILL, err.decode())
        # Acks printed before the kill, still in the pipe, count too; a
        # line cut by the kill does not.
        for line in rest.decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "ack":
                acked.append(int(parts[1]))
        self.assertGreaterEqual(len(acked), 300, err.decode())
        return acked

    def check(self, path, ids):
        p = subprocess.run([binary("tests/store_writer"), "check", path],
                           input="\n".join(map(str, ids)).encode(),
                           capture_output=True, timeout=60)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertIsNone(sanitizer_report(err), err)
        self.assertEqual(p.returncode, 0, out[:2000] + err)
        self.assertIn(f"checked {len(ids)}", out)

    def crash_rounds(self, sync_ms):
        path = os.path.join(self.dir, f"sync{sync_ms}")
        every = []
        first = 0
        for _ in range(ROUNDS):
            acked = self.write_and_kill(path, sync_ms, first)
            self.assertEqual(len(set(acked)), len(acked))
            every += acked
            # Everything acked in this round and the earlier ones.
            self.check(path, every)
            first = max(every) + INFLIGHT + 1

    def test_sigkill_always(self):
        self.crash_rounds(0)

    def test_sigkill_sync_interval(self):
        self.crash_rounds(50)
