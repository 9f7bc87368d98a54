#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python client's tests (clients/python/tests/, unittest) against the
# ferryd in $FERRY_BIN (default build/). Ends with "RESULT passed=N
# failed=M"; exits non-zero when a test failed. Debian's python3 when there.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export FERRY_BIN=${FERRY_BIN:-$ROOT/build}
PY=${PYTHON:-python3}
[ -x /usr/bin/python3 ] && [ -z "${PYTHON:-}" ] && PY=/usr/bin/python3
cd "$HERE/tests" || exit 1
PYTHONPATH="$HERE:$ROOT/tests/lib" exec "$PY" "$ROOT/tests/lib/runner.py" "$HERE/tests"
