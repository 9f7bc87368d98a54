#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks (or with --fix, adds) the SPDX licence line near the top of every
source file git tracks. tests/integration/test_tree.py runs the check."""
import subprocess
import sys

TAG = "SPDX-License-Identifier: MIT"
COMMENT = {
    ".c": "/* %s */", ".h": "/* %s */", ".css": "/* %s */",
    ".js": "// %s", ".py": "# %s", ".sh": "# %s",
    ".html": "<!-- %s -->", ".php": "// %s", ".ts": "// %s",
    ".1": '.\\" %s', ".5": '.\\" %s', ".8": '.\\" %s',
    ".service": "# %s", ".conf": "; %s", ".in": "# %s",
}
# Files without a telling suffix that are still source.
NAMED = {"Makefile": "# %s", ".ci/run": "# %s", "debian/rules": "# %s",
         "scripts/fresh-check.sh": "# %s"}


def style(path):
    if path in NAMED:
        return NAMED[path]
    for suffix, fmt in COMMENT.items():
        if path.endswith(suffix):
            return fmt
    return None


def main():
    fix = "--fix" in sys.argv
    files = subprocess.run(["git", "ls-files"], capture_output=True,
                           text=True, check=True).stdout.split()
    missing = []
    for path in files:
        fmt = style(path)
        if fmt is None or "/corpus/" in path:
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if any(TAG in line for line in lines[:3]):
            continue
        if not fix:
            missing.append(path)
            continue
        at = 1 if lines and (lines[0].startswith("#!") or
                             lines[0].lower().startswith("<!doctype")) else 0
        lines.insert(at, fmt % TAG)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    for path in missing:
        print("%s: no '%s' line in its first three lines" % (path, TAG))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
