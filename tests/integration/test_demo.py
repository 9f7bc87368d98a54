# SPDX-License-Identifier: MIT
"""scripts/demo.sh, the second half of `make demo`: it starts ferryd and
the fib workers named in WORKERS, makes the first call, and Ctrl-C (SIGINT
to its process group, as a terminal sends it) stops exactly what it
started and exits 0. Run on free ports (DEMO_PORT, DEMO_HTTP) so that a
ferryd on the defaults does not matter. Every language whose fib worker is
in the tree is started beside the C one, and ferry.services must then count
them all as workers of fib."""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from ferrytest import ROOT, ferry_bin, free_port, run_ferry

WORKER_FILES = {
    "python": "examples/fib/python/fib_worker.py",
    "node": "examples/fib/node/fib_worker.js",
    "php": "examples/fib/php/fib_worker.php",
}
INTERPRETERS = {"python": "python3", "node": "node", "php": "php"}


def languages():
    """c, and every other language whose worker and interpreter exist."""
    out = ["c"]
    for lang, path in WORKER_FILES.items():
        if os.path.exists(os.path.join(ROOT, path)) and \
                shutil.which(INTERPRETERS[lang]):
            out.append(lang)
    return out


class TestDemo(unittest.TestCase):
    def run_demo(self, workers):
        port = free_port()
        env = dict(os.environ, DEMO_PORT=str(port),
                   DEMO_HTTP="127.0.0.1:%d" % free_port(),
                   WORKERS=" ".join(workers))
        proc = subprocess.Popen(
            ["bash", "scripts/demo.sh", os.path.relpath(ferry_bin(), ROOT)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, text=True)
        lines = []
        try:
            end = time.monotonic() + 60
            for line in proc.stdout:
                lines.append(line)
                if "ferry is running" in line or time.monotonic() > end:
                    break
            text = "".join(lines)
            self.assertIn("ferry is running", text, text)
            self.assertIn('"result": "0 1 1 2 3 5 8 13 21 34"', text, text)
            addr = "127.0.0.1:%d" % port
            r = run_ferry(["call", "ferry.services", ""], addr=addr)
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            fib = [s for s in doc["services"] if s["name"] == "fib"]
            self.assertEqual(len(fib[0]["workers"]), len(workers), text)
            os.killpg(proc.pid, signal.SIGINT)
            rest, _ = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 0, text + rest)
            self.assertIn("demo: stopping", rest)
            # Nothing it started is left listening.
            r = run_ferry(["call", "echo", "x", "--timeout", "300"],
                          addr=addr)
            self.assertNotEqual(r.returncode, 0)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def test_c_worker(self):
        self.run_demo(["c"])

    def test_every_language(self):
        langs = languages()
        self.run_demo(langs)


if __name__ == "__main__":
    unittest.main()
