#!/usr/bin/env bash
# Runs ferry's benchmark scenarios and prints the rows of the table in
# docs/benchmarks.md.
#
#   bench/run.sh BUILDDIR
#
# Scenarios, each at --depth 1 and --depth 16 with 16 connections and
# 64-byte payloads (BENCH_SECONDS measured seconds, default 5, after 1 s
# of warm-up):
#   1. ferryd + 2 echo_worker processes (service echo_ext): the full path
#      caller -> ferryd -> worker -> ferryd -> caller;
#   2. ferryd's built-in echo service: caller -> ferryd -> caller;
#   3. bench_echo_server, the no-broker baseline: a bare server speaking
#      ferry frames, caller -> server -> caller.
# Then the ratio of each ferryd scenario to the baseline.
#
# Starts everything on free loopback ports and kills only the processes it
# started, whatever happens.
set -u
BUILDDIR=${1:-build}
SECS=${BENCH_SECONDS:-5}
CONNS=16
PAYLOAD=64
DEPTHS="1 16"

for bin in ferry ferryd echo_worker bench_echo_server; do
    if [ ! -x "$BUILDDIR/$bin" ]; then
        echo "bench/run.sh: $BUILDDIR/$bin is missing (make $BUILDDIR/$bin)" >&2
        exit 2
    fi
done

TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_line FILE PID: waits up to 10 s for a line "READY" in FILE.
wait_ready() {
    local i
    for i in $(seq 100); do
        grep -q '^READY' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_daemon ADDR: waits up to 10 s for ferryd to answer a call.
wait_daemon() {
    local i
    for i in $(seq 100); do
        "$BUILDDIR/ferry" --addr "$1" call echo ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

declare -A RPS

# bench NAME ADDR SERVICE DEPTH: one run; prints a table row.
bench() {
    local name=$1 addr=$2 service=$3 depth=$4 line rc
    line=$("$BUILDDIR/ferry" bench --addr "$addr" --service "$service" \
        --connections $CONNS --depth "$depth" --payload $PAYLOAD \
        --seconds "$SECS" 2>"$TMP/bench.err")
    rc=$?
    sed 's/^/    /' "$TMP/bench.err" >&2
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        echo "| $name | $depth | failed (exit $rc) | | | |"
        return
    fi
    # rps=N p50_us=X p99_us=X p999_us=X
    set -- $line
    RPS[$name/$depth]=${1#rps=}
    echo "| $name | $depth | ${1#rps=} | ${2#p50_us=} | ${3#p99_us=} | ${4#p999_us=} |"
}

echo "| scenario | depth | requests/s | p50 µs | p99 µs | p99.9 µs |"
echo "| --- | --- | --- | --- | --- | --- |"

# 1 and 2: ferryd, with two outside echo workers and its built-in echo.
PORT=$(free_port)
ADDR=127.0.0.1:$PORT
mkdir -p "$TMP/data"
"$BUILDDIR/ferryd" --listen "$ADDR" --data-dir "$TMP/data" \
    >"$TMP/ferryd.log" 2>&1 &
PIDS+=($!)
if wait_daemon "$ADDR"; then
    ok=1
    for w in 1 2; do
        "$BUILDDIR/echo_worker" --addr "$ADDR" >"$TMP/worker$w.log" 2>&1 &
        PIDS+=($!)
        if ! wait_ready "$TMP/worker$w.log" $!; then
            echo "bench/run.sh: echo_worker $w did not get ready" >&2
            sed 's/^/    /' "$TMP/worker$w.log" >&2
            ok=0
        fi
    done
    for d in $DEPTHS; do
        if [ $ok -eq 1 ]; then
            bench "ferryd + 2 echo_worker" "$ADDR" echo_ext "$d"
        fi
    done
    for d in $DEPTHS; do
        bench "ferryd built-in echo" "$ADDR" echo "$d"
    done
else
    echo "bench/run.sh: ferryd did not answer on $ADDR" >&2
    sed 's/^/    /' "$TMP/ferryd.log" >&2
fi
cleanup
PIDS=()
TMP=$(mktemp -d)

# 3: the baseline.
PORT=$(free_port)
ADDR=127.0.0.1:$PORT
"$BUILDDIR/bench_echo_server" --listen "$ADDR" >"$TMP/baseline.log" 2>&1 &
PIDS+=($!)
if wait_ready "$TMP/baseline.log" $!; then
    for d in $DEPTHS; do
        bench "baseline bench_echo_server" "$ADDR" echo "$d"
    done
else
    echo "bench/run.sh: bench_echo_server did not get ready" >&2
fi

echo
echo "| ratio to the baseline | depth | ratio |"
echo "| --- | --- | --- |"
for name in "ferryd + 2 echo_worker" "ferryd built-in echo"; do
    for d in $DEPTHS; do
        a=${RPS[$name/$d]:-}
        b=${RPS[baseline bench_echo_server/$d]:-}
        if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ]; then
            echo "| $name | $d | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }') |"
        else
            echo "| $name | $d | n/a |"
        fi
    done
done
