# SPDX-License-Identifier: MIT
"""What holds for the whole tree: a LICENSE (MIT) at the root and an SPDX
line at the top of every source file git tracks (scripts/spdx.py)."""
import os
import subprocess
import unittest

from ferrytest import ROOT


class TestTree(unittest.TestCase):
    def test_license(self):
        with open(os.path.join(ROOT, "LICENSE")) as f:
            text = f.read()
        self.assertTrue(text.startswith("MIT License\n"), text[:40])
        with open(os.path.join(ROOT, "web", "package.json")) as f:
            self.assertIn('"license": "MIT"', f.read())

    def test_spdx_lines(self):
        r = subprocess.run(["python3", "scripts/spdx.py"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
