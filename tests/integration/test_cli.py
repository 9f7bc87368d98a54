# SPDX-License-Identifier: MIT
"""The ferry command: call (output, stdin, exit codes, NAME: message on
stderr), services, and bench against the built-in echo."""
import json
import re

from ferrytest import FerryTestCase, free_port, ERRORS


class TestCli(FerryTestCase):
    TIME_LIMIT = 90

    def test_call_echo(self):
        d = self.daemon()
        r = self.run_ok(["call", "echo", "hello world"], d.addr)
        self.assertEqual(r.stdout, b"hello world\n")
        r = self.run_ok(["call", "echo", "-"], d.addr, input=b"from stdin")
        self.assertEqual(r.stdout, b"from stdin\n")
        r = self.run_ok(["call", "echo", "-", "--timeout", "2000"], d.addr,
                        input=b"ends with newline\n")
        self.assertEqual(r.stdout, b"ends with newline\n")

    def test_call_unix_socket(self):
        d = self.daemon()
        r = self.run_ok(["call", "echo", "via unix"], d.unix_addr)
        self.assertEqual(r.stdout, b"via unix\n")

    def test_call_addr_from_env(self):
        d = self.daemon()
        r = self.ferry(["call", "echo", "env"], None,
                       env={"FERRY_ADDR": d.addr})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"env\n")

    def test_call_worker_errors_exit_1(self):
        d = self.daemon("--worker-wait-ms", "200")
        r = self.ferry(["call", "missing.service", "x", "--timeout", "3000"],
                       d.addr)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^UNKNOWN_SERVICE: .*")
        self.assertEqual(r.stdout, b"")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "never", "--mode", "never")
        r = self.ferry(["call", "never", "x", "--timeout", "500"], d.addr)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^DEADLINE: ")
        code = ERRORS["INVALID_ARGUMENT"]
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "failing", "--mode", f"fail:{code}")
        r = self.ferry(["call", "failing", "x", "--timeout", "3000"], d.addr)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^INVALID_ARGUMENT: ")

    def test_call_connection_error_exit_3(self):
        port = free_port()
        r = self.ferry(["call", "echo", "x"], f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 3, r)
        self.assertRegex(r.stderr.decode(), r"^CONNECTION: ")
        r = self.ferry(["call", "echo", "x"], "unix:/nonexistent/ferry.sock")
        self.assertEqual(r.returncode, 3, r)

    def test_usage_errors_exit_2(self):
        d = self.daemon()
        for args in (["no-such-command"], ["call"],
                     ["call", "echo", "x", "--timeout", "abc"],
                     ["call", "echo", "x", "--bogus"],
                     ["bench", "--connections", "0"]):
            with self.subTest(args=args):
                r = self.ferry(args, d.addr)
                self.assertEqual(r.returncode, 2, r)
                self.assertTrue(r.stderr, "usage error without a message")
        r = self.ferry([], d.addr)
        self.assertEqual(r.returncode, 2, r)

    def test_services(self):
        d = self.daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "mine")
        r = self.run_ok(["services"], d.addr)
        out = r.stdout.decode()
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
        self.assertIn("echo", names, out)
        self.assertIn("mine", names, out)
        r = self.run_ok(["services", "--json"], d.addr)
        doc = json.loads(r.stdout)
        by_name = {s["name"]: s for s in doc["services"]}
        self.assertIn("echo", by_name)
        self.assertIn("mine", by_name)
        self.assertEqual(len(by_name["mine"]["workers"]), 1)

    def test_bench_builtin_echo(self):
        d = self.daemon()
        r = self.ferry(["bench", "--connections", "2", "--depth", "8",
                        "--payload", "64", "--seconds", "1", "--service",
                        "echo", "--warmup", "0"], d.addr, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout.decode()
        m = re.search(r"rps=(\d+) p50_us=([\d.]+) p99_us=([\d.]+) "
                      r"p999_us=([\d.]+)", out)
        self.assertIsNotNone(m, out)
        rps, p50, p99, p999 = int(m[1]), float(m[2]), float(m[3]), \
            float(m[4])
        self.assertGreater(rps, 0)
        self.assertGreater(p50, 0)
        self.assertLessEqual(p50, p99)
        self.assertLessEqual(p99, p999)

    # -- helpers
    def ferry(self, args, addr, input=None, timeout=30, env=None):
        from ferrytest import run_ferry
        r = run_ferry(args, addr=addr, input=input, timeout=timeout, env=env)
        from ferrytest import sanitizer_report
        rep = sanitizer_report(r.stderr.decode(errors="replace"))
        if rep:
            self.fail(f"sanitizer report from ferry {args}:\n{rep}")
        return r

    def run_ok(self, args, addr, input=None):
        r = self.ferry(args, addr, input=input)
        self.assertEqual(r.returncode, 0, f"ferry {args}: {r}")
        return r
