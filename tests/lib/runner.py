#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the unittest files of one test folder and prints a last line
"RESULT passed=N failed=M" that tests/run.sh adds to its summary."""
import os
import sys
import unittest

def main():
    folder = sys.argv[1]
    sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
    suite = unittest.defaultTestLoader.discover(folder, pattern="test_*.py",
                                                top_level_dir=folder)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    # Count test methods, not subtests: a method with several failing
    # subtests is one failure. Class or module fixtures that failed are
    # not in testsRun and count as one failure each.
    failing = set()
    fixtures = 0
    for test, _ in result.failures + result.errors:
        case = getattr(test, "test_case", test)
        if isinstance(case, unittest.TestCase):
            failing.add(case.id())
        else:
            fixtures += 1
    failing.update(t.id() for t in result.unexpectedSuccesses)
    failed = len(failing) + fixtures
    passed = result.testsRun - len(failing) - len(result.skipped)
    print(f"RESULT passed={passed} failed={failed + len(result.skipped)}")
    return 0 if failed == 0 and not result.skipped else 1

if __name__ == "__main__":
    sys.exit(main())
