# SPDX-License-Identifier: MIT
"""python3 -m ferry call against build/ferry call: the same stdout, the
same first stderr word and the same exit status for the same arguments,
against the same ferryd."""
import os
import subprocess

import fhelp

FERRY = os.path.join(os.environ["FERRY_BIN"], "ferry")


def both(args, stdin=b""):
    env = fhelp.env()
    env.pop("FERRY_ADDR", None)
    env.pop("FERRY_TOKEN", None)
    c = subprocess.run([FERRY] + args, input=stdin, capture_output=True,
                       timeout=20, env=env)
    p = subprocess.run([fhelp.PYTHON, "-m", "ferry"] + args, input=stdin,
                       capture_output=True, timeout=20, env=env)
    return c, p


class TestCli(fhelp.TestCase):
    LIMIT = 90

    def test_same_as_ferry_call(self):
        d = self.daemon("--worker-wait-ms", "100", "--max-frame", "2048")
        tokd = self.daemon("--caller-token", "tok")
        dead = f"127.0.0.1:{fhelp.ferrytest.free_port()}"
        a = ["--addr", d.addr]
        cases = [
            (a + ["call", "echo", "hello"], b""),
            (a + ["call", "echo"], b""),
            (a + ["call", "echo", ""], b""),
            (a + ["call", "echo", "line\n"], b""),
            (a + ["call", "echo", "-"], b"from stdin"),
            (["call", "--addr", d.addr, "echo", "x", "--timeout", "500"], b""),
            (a + ["call", "echo", "x", "--timeout=700", "--key", "k",
                  "--idempotent"], b""),
            (a + ["call", "nosuch", "x", "--timeout", "300"], b""),
            (a + ["call", "echo", "y" * 3000], b""),
            (a + ["call"], b""),
            (a + ["call", "echo", "a", "b"], b""),
            (a + ["call", "echo", "--timeout", "x"], b""),
            (a + ["call", "echo", "--timeout", "0"], b""),
            (a + ["call", "echo", "--timeout"], b""),
            (a + ["call", "echo", "--bogus"], b""),
            (a + ["call", "echo", "--", "--bogus"], b""),
            (a + ["call", "s" * 256], b""),
            (a + ["call", "echo", "--key", "k" * 1025], b""),
            (a + ["call", "--help"], b""),
            (a + ["nope"], b""),
            ([], b""),
            (["--addr", "bad", "call", "echo"], b""),
            (["--addr", "", "call", "echo"], b""),
            (["--addr", dead, "call", "echo", "x"], b""),
            (["--addr", "unix:/nonexistent/sock", "call", "echo", "x"], b""),
            (["--addr", tokd.addr, "call", "echo", "x"], b""),
            (["--addr", tokd.addr, "--token", "tok", "call", "echo", "x"],
             b""),
            (["--addr", tokd.addr, "--token", "bad", "call", "echo", "x"],
             b""),
            (["--token", "t" * 256, "--addr", d.addr, "call", "echo"], b""),
        ]
        for args, stdin in cases:
            with self.subTest(args=args):
                c, p = both(args, stdin)
                self.assertEqual(p.returncode, c.returncode,
                                 (c.stderr, p.stderr))
                if args and args[-1] != "--help" and args != [] and \
                        "nope" not in args:
                    self.assertEqual(p.stdout, c.stdout)
                ce = c.stderr.split(b":")[0]
                pe = p.stderr.split(b":")[0]
                if c.returncode in (1, 3):
                    self.assertEqual(pe, ce, (c.stderr, p.stderr))
                if c.returncode == 2 and c.stderr.startswith(b"ferry call:"):
                    self.assertEqual(p.stderr, c.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
