#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs ferry's benchmark scenarios and prints the rows of the table in
# docs/benchmarks.md.
#
#   bench/run.sh BUILDDIR
#
# Scenarios, each at --depth 1 and --depth 16 with 16 connections and
# 64-byte payloads (BENCH_SECONDS measured seconds, default 5, after 1 s
# of warm-up), repeated BENCH_REPEAT times (default 3) in turn, A B C A B
# C ..., so that a passing load on the machine hits all of them alike;
# each row is the run with the median requests/s:
#   1. ferryd + 2 echo_worker processes (service echo_ext): the full path
#      caller -> ferryd -> worker -> ferryd -> caller;
#   2. ferryd's built-in echo service: caller -> ferryd -> caller;
#   3. bench_echo_server, the no-broker baseline: a bare server speaking
#      ferry frames, caller -> server -> caller.
# Then the ratio of each ferryd scenario's median to the baseline's.
#
# Starts everything on free loopback ports and kills only the processes it
# started, whatever happens.
set -u
BUILDDIR=${1:-build}
SECS=${BENCH_SECONDS:-5}
REPEAT=${BENCH_REPEAT:-3}
CONNS=16
PAYLOAD=64
DEPTHS="1 16"

for bin in ferry ferryd echo_worker bench_echo_server; do
    if [ ! -x "$BUILDDIR/$bin" ]; then
        echo "bench/run.sh: $BUILDDIR/$bin is missing (make $BUILDDIR/$bin)" >&2
        exit 2
    fi
done

. "$(dirname "$0")/lib.sh"

# wait_daemon ADDR: waits up to 10 s for ferryd to answer a call.
wait_daemon() {
    local i
    for i in $(seq 100); do
        "$BUILDDIR/ferry" --addr "$1" call echo ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

declare -A ROWS RPS

# bench NAME ADDR SERVICE DEPTH: one run; appends its row to ROWS.
bench() {
    local name=$1 addr=$2 service=$3 depth=$4 line rc
    line=$("$BUILDDIR/ferry" bench --addr "$addr" --service "$service" \
        --connections $CONNS --depth "$depth" --payload $PAYLOAD \
        --seconds "$SECS" 2>"$TMP/bench.err")
    rc=$?
    sed 's/^/    /' "$TMP/bench.err" >&2
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "bench/run.sh: $name depth $depth failed (exit $rc)" >&2
        ROWS[$name/$depth]+="0 failed"$'\n'
        return
    fi
    # rps=N p50_us=X p99_us=X p999_us=X
    set -- $line
    ROWS[$name/$depth]+="${1#rps=} | ${1#rps=} | ${2#p50_us=} | ${3#p99_us=} | ${4#p999_us=} |"$'\n'
}

# median NAME DEPTH: prints the median run's row and sets RPS.
median() {
    local row
    row=$(printf '%s' "${ROWS[$1/$2]:-}" | grep -v '^$' | sort -n |
        awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }')
    if [ -z "$row" ] || [[ ${ROWS[$1/$2]} == *failed* ]]; then
        echo "| $1 | $2 | failed | | | |"
        return
    fi
    RPS[$1/$2]=${row%% *}
    echo "| $1 | $2 | ${row#* | }"
}

echo "bench/run.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# ferryd, with two outside echo workers and its built-in echo.
FERRY_ADDR=127.0.0.1:$(free_port)
mkdir -p "$TMP/data"
# HTTP off (never the default 8080) when this ferryd knows --http.
HTTP_ARGS=()
if "$BUILDDIR/ferryd" --help 2>&1 | grep -q -- '--http'; then
    HTTP_ARGS=(--http off)
fi
"$BUILDDIR/ferryd" --listen "$FERRY_ADDR" --data-dir "$TMP/data" \
    "${HTTP_ARGS[@]}" >"$TMP/ferryd.log" 2>&1 &
PIDS+=($!)
FERRYD_OK=1
WORKERS_OK=1
if ! wait_daemon "$FERRY_ADDR"; then
    echo "bench/run.sh: ferryd did not answer on $FERRY_ADDR" >&2
    sed 's/^/    /' "$TMP/ferryd.log" >&2
    FERRYD_OK=0
    WORKERS_OK=0
fi
for w in 1 2; do
    [ $FERRYD_OK -eq 1 ] || break
    "$BUILDDIR/echo_worker" --addr "$FERRY_ADDR" >"$TMP/worker$w.log" 2>&1 &
    PIDS+=($!)
    if ! wait_ready "$TMP/worker$w.log" $!; then
        echo "bench/run.sh: echo_worker $w did not get ready" >&2
        sed 's/^/    /' "$TMP/worker$w.log" >&2
        WORKERS_OK=0
    fi
done

# The baseline.
BASE_ADDR=127.0.0.1:$(free_port)
"$BUILDDIR/bench_echo_server" --listen "$BASE_ADDR" >"$TMP/baseline.log" 2>&1 &
PIDS+=($!)
BASE_OK=1
if ! wait_ready "$TMP/baseline.log" $!; then
    echo "bench/run.sh: bench_echo_server did not get ready" >&2
    BASE_OK=0
fi

EXT="ferryd + 2 echo_worker"
BUILTIN="ferryd built-in echo"
BASE="baseline bench_echo_server"
for d in $DEPTHS; do
    for r in $(seq "$REPEAT"); do
        [ $WORKERS_OK -eq 1 ] && bench "$EXT" "$FERRY_ADDR" echo_ext "$d"
        [ $FERRYD_OK -eq 1 ] && bench "$BUILTIN" "$FERRY_ADDR" echo "$d"
        [ $BASE_OK -eq 1 ] && bench "$BASE" "$BASE_ADDR" echo "$d"
    done
done

echo "| scenario | depth | requests/s | p50 µs | p99 µs | p99.9 µs |"
echo "| --- | --- | --- | --- | --- | --- |"
for name in "$EXT" "$BUILTIN" "$BASE"; do
    for d in $DEPTHS; do
        median "$name" "$d"
    done
done

echo
echo "| ratio to the baseline | depth | ratio |"
echo "| --- | --- | --- |"
for name in "$EXT" "$BUILTIN"; do
    for d in $DEPTHS; do
        median "$name" "$d" >/dev/null
        median "$BASE" "$d" >/dev/null
        a=${RPS[$name/$d]:-}
        b=${RPS[$BASE/$d]:-}
        if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ]; then
            echo "| $name | $d | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }') |"
        else
            echo "| $name | $d | n/a |"
        fi
    done
done
