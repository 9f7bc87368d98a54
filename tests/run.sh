#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs ferry's test suites against the binaries in BUILDDIR and ends with
# one summary line, "N passed, N failed", counting individual test cases.
#
#   tests/run.sh BUILDDIR [all|unit|integration|fault|cluster|vectors|browser|clients|conformance|fuzz]
#
# The cluster suite (tests/cluster/) needs root and iproute2: it builds
# network namespaces (docs/cluster-tests.md); without them it fails.
set -u
BUILDDIR=${1:-build/asan}
SUITE=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export FERRY_BIN="$ROOT/$BUILDDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
failures=()

count() { # name rc passed failed
    passed=$((passed + $3))
    failed=$((failed + $4))
    if [ "$2" -ne 0 ] && [ "$4" -eq 0 ]; then
        # A suite that crashed without reporting counts as one failure.
        failed=$((failed + 1))
        failures+=("$1 (exit $2)")
    elif [ "$4" -ne 0 ]; then
        failures+=("$1")
    fi
}

run_unit() {
    local t out rc p f
    for t in "$BUILDDIR"/tests/test_*; do
        [ -x "$t" ] || continue
        # Only unit tests: tests/workers/ binaries share the folder.
        [ -f "tests/unit/$(basename "$t").c" ] || continue
        echo "== unit $(basename "$t")"
        out=$(timeout 300 "$t" 2>&1)
        rc=$?
        echo "$out"
        p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        count "unit $(basename "$t")" "$rc" "${p:-0}" "${f:-0}"
    done
}

run_py() { # suite folder
    local dir=$1 out rc p f
    [ -d "$dir" ] || return 0
    ls "$dir"/test_*.py >/dev/null 2>&1 || return 0
    echo "== $dir"
    out=$(timeout 1500 python3 tests/lib/runner.py "$dir" 2>&1)
    rc=$?
    echo "$out"
    p=$(echo "$out" | sed -n 's/^RESULT passed=\([0-9]*\) failed=.*/\1/p' | tail -1)
    f=$(echo "$out" | sed -n 's/^RESULT passed=[0-9]* failed=\([0-9]*\).*/\1/p' | tail -1)
    count "$dir" "$rc" "${p:-0}" "${f:-0}"
}

run_fuzz() { # seconds per target; the whole run counts as one test
    local rc
    echo "== fuzz smoke"
    timeout 600 bash tests/fuzz/run.sh "$1"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        count "fuzz smoke" 0 1 0
    else
        count "fuzz smoke" "$rc" 0 1
    fi
}

# Each client's own tests: clients/<lang>/test.sh runs them against the
# binaries in $FERRY_BIN and ends with "RESULT passed=N failed=M".
run_clients() {
    local t name out rc p f
    for t in clients/*/test.sh; do
        [ -f "$t" ] || continue
        name=$(basename "$(dirname "$t")")
        echo "== client $name"
        out=$(timeout 900 bash "$t" 2>&1)
        rc=$?
        echo "$out"
        p=$(echo "$out" | sed -n 's/^RESULT passed=\([0-9]*\) failed=.*/\1/p' | tail -1)
        f=$(echo "$out" | sed -n 's/^RESULT passed=[0-9]* failed=\([0-9]*\).*/\1/p' | tail -1)
        count "client $name" "$rc" "${p:-0}" "${f:-0}"
    done
}

# The conformance scenarios, once per client, through its driver
# (tests/conformance/DRIVER.md); a client without one fails.
run_conformance() {
    local c out rc p f
    [ -f tests/conformance/run.py ] || return 0
    for c in c python node php; do
        echo "== conformance $c"
        out=$(timeout 900 python3 tests/conformance/run.py --require-driver \
            --client "$c" 2>&1)
        rc=$?
        echo "$out"
        p=$(echo "$out" | sed -n 's/^RESULT passed=\([0-9]*\) failed=.*/\1/p' | tail -1)
        f=$(echo "$out" | sed -n 's/^RESULT passed=[0-9]* failed=\([0-9]*\).*/\1/p' | tail -1)
        count "conformance $c" "$rc" "${p:-0}" "${f:-0}"
    done
}

case "$SUITE" in
all)
    run_unit
    run_py tests/vectors
    run_py tests/integration
    run_py tests/fault
    run_py tests/cluster
    run_py tests/browser
    run_clients
    run_conformance
    run_fuzz 20
    ;;
fuzz) run_fuzz "${FUZZ_SECONDS:-20}" ;;
unit) run_unit ;;
vectors) run_py tests/vectors ;;
integration) run_py tests/integration ;;
fault) run_py tests/fault ;;
cluster) run_py tests/cluster ;;
browser) run_py tests/browser ;;
clients) run_clients ;;
conformance) run_conformance ;;
*)
    echo "unknown suite '$SUITE'; one of: all unit integration fault" \
        "cluster vectors browser clients conformance fuzz" >&2
    exit 2
    ;;
esac

if [ ${#failures[@]} -gt 0 ]; then
    echo "failed suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
