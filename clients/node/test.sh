#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the Node client's tests (node --test, clients/node/test/) against
# the ferryd in $FERRY_BIN (default build/ of the repository) and ends with
# "RESULT passed=N failed=M". Installs the dev tools (typescript) with
# npm ci when node_modules is missing; offline once they are there.
set -u
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export FERRY_BIN=${FERRY_BIN:-$ROOT/build}
case $FERRY_BIN in /*) ;; *) FERRY_BIN=$ROOT/$FERRY_BIN ;; esac

if [ ! -x node_modules/typescript/bin/tsc ]; then
    npm ci --no-audit --no-fund >&2 || { echo "RESULT passed=0 failed=1"; exit 1; }
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 300 node --test --test-reporter=tap test/*.test.js >"$out" 2>&1
rc=$?
cat "$out"
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out" | tail -1)
pass=${pass:-0}
fail=${fail:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    fail=1 # the runner itself failed (timeout, crash)
fi
echo "RESULT passed=$pass failed=$fail"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
