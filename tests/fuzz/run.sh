#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds every libFuzzer target tests/fuzz/fuzz_<name>.c into $FUZZ_OUT
# and runs each for SECONDS on its seed corpus (tests/fuzz/corpus/<name>/),
# failing on the first crash, sanitizer report or build error.
#
#   tests/fuzz/run.sh [SECONDS]
#   FUZZ_RUNS=N [FUZZ_RUNS_<name>=M] [FUZZ_ONLY="frame config"] \
#       tests/fuzz/run.sh
#
# With FUZZ_RUNS each target runs N executions instead of SECONDS
# (FUZZ_RUNS_frame=100000000 overrides it for fuzz_frame), and the last
# line of each says how many it ran ("fuzz: fuzz_frame ok: N runs").
#
# Each target names what it links in its opening comment, one line each:
#
#    * FUZZ_SRC: src/proto/frame.c src/proto/errors.c
#    * FUZZ_LIBS: -linih
#
# A target without FUZZ_SRC gets the frame codec (DEFAULT_SRC). A folder
# (src/core/) stands for every .c file in it, so a target that links a
# whole folder keeps building when a file is added to it.
#
# New inputs found during the run go to $FUZZ_OUT/corpus/<name>/, never
# into the checked-in seeds. Crash files are written to $FUZZ_OUT
# (build/fuzz unless set, so each build folder can have its own).
set -u
SECONDS_EACH=${1:-60}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT"

CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
    for c in clang-14 clang; do
        if command -v "$c" >/dev/null 2>&1; then CLANG=$c; break; fi
    done
fi
if [ -z "$CLANG" ]; then
    echo "fuzz: no clang found" >&2
    exit 1
fi

# The sources of a target that does not name its own.
DEFAULT_SRC="src/proto/frame.c src/proto/errors.c"
FLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Iinclude -Isrc
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# The words after "TAG:" on the target's lines that carry it.
target_list() { # file tag
    sed -n "s/^[ /*]*$2:[[:space:]]*//p" "$1" | tr '\n' ' '
}

status=0
ran=0
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    corpus_name=${name#fuzz_}
    if [ -n "${FUZZ_ONLY:-}" ] &&
        ! printf ' %s ' $FUZZ_ONLY | grep -q " $corpus_name "; then
        continue
    fi
    runs_var="FUZZ_RUNS_$corpus_name"
    runs=${!runs_var:-${FUZZ_RUNS:-}}
    if [ -n "$runs" ]; then
        limit="-runs=$runs"
        # A guard, not a budget: slow targets (fuzz_config runs ~7,000/s
        # on a loaded machine) must still reach their count.
        wall=$((runs / 2000 + 600))
    else
        limit="-max_total_time=$SECONDS_EACH"
        wall=$((SECONDS_EACH + 120))
    fi
    bin="$OUT/$name"
    srcs=
    for s in $(target_list "$src" FUZZ_SRC); do
        case "$s" in
        */) srcs="$srcs $(echo "$s"*.c)" ;;
        *) srcs="$srcs $s" ;;
        esac
    done
    libs=$(target_list "$src" FUZZ_LIBS)
    if [ -n "$runs" ]; then
        echo "== fuzz $name ($runs runs)"
    else
        echo "== fuzz $name (${SECONDS_EACH}s)"
    fi
    # shellcheck disable=SC2086
    if ! "$CLANG" $FLAGS "$src" ${srcs:-$DEFAULT_SRC} -o "$bin" $libs; then
        echo "fuzz: $name does not build" >&2
        status=1
        continue
    fi
    work="$OUT/corpus/$corpus_name"
    mkdir -p "$work"
    seeds="tests/fuzz/corpus/$corpus_name"
    [ -d "$seeds" ] || seeds=""
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1 \
    timeout "$wall" "$bin" "$limit" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/$name-" "$work" $seeds >"$OUT/$name.log" 2>&1
    rc=$?
    tail -n 40 "$OUT/$name.log"
    done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
        "$OUT/$name.log" | tail -1)
    if [ "$rc" -eq 124 ]; then
        echo "fuzz: $name FAILED: stopped by the ${wall} s guard after ${done_runs:-0} runs" >&2
        status=1
    elif [ "$rc" -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc)" >&2
        status=1
    else
        echo "fuzz: $name ok: ${done_runs:-?} runs"
    fi
    ran=$((ran + 1))
done
if [ "$ran" -eq 0 ]; then
    echo "fuzz: no targets" >&2
    exit 1
fi
exit $status
