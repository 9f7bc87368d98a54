#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs ferry's HTTP benchmark scenarios and prints the rows of the HTTP
# section of docs/benchmarks.md.
#
#   bench/http_run.sh BUILDDIR        (a release build: make BUILD=... all
#                                      BUILDDIR/bench_h2o_hello)
#
# wrk, 2 threads, 64 connections, keep-alive, BENCH_SECONDS (default 5)
# per run, repeated BENCH_REPEAT times (default 3) in turn, A B C D A B C
# D ..., each row the run with the median requests/s:
#   1. POST /v1/call/echo_ext, 64-byte bodies, served by two external
#      echo_worker processes: HTTP -> gateway -> worker -> gateway -> HTTP;
#   2. POST /v1/call/echo, ferryd's built-in echo (no worker process);
#   3. GET /fib/100 through the default route to one fib_worker;
#   4. POST / with the same 64-byte body to bench_h2o_hello, the same h2o
#      and libuv with nothing behind them: the yardstick.
# Then the ratio of each ferryd row to bench_h2o_hello, and one
# `ab -c 100 -n 10000 http://HOST:PORT/fib/100` (a new connection per
# request, as the original Fibonacci service was measured).
#
# Starts everything on free loopback ports and kills only the processes it
# started, whatever happens.
set -u
BUILDDIR=${1:-build}
SECS=${BENCH_SECONDS:-5}
REPEAT=${BENCH_REPEAT:-3}
PAYLOAD=64

for bin in ferry ferryd echo_worker fib_worker bench_h2o_hello; do
    if [ ! -x "$BUILDDIR/$bin" ]; then
        echo "bench/http_run.sh: $BUILDDIR/$bin is missing (make BUILD=$BUILDDIR all $BUILDDIR/bench_h2o_hello)" >&2
        exit 2
    fi
done
for tool in wrk ab; do
    command -v $tool >/dev/null || { echo "bench/http_run.sh: $tool is not installed" >&2; exit 2; }
done
if ! "$BUILDDIR/ferryd" --help 2>&1 | grep -q -- '--http'; then
    echo "bench/http_run.sh: $BUILDDIR/ferryd has no --http" >&2
    exit 2
fi

. "$(dirname "$0")/lib.sh"

# wait_http URL: waits up to 10 s for a 200 from URL.
wait_http() {
    local i
    for i in $(seq 100); do
        python3 - "$1" <<'EOF' 2>/dev/null && return 0
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
        sleep 0.1
    done
    return 1
}

echo "bench/http_run.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

FERRY_ADDR=127.0.0.1:$(free_port)
HTTP_ADDR=127.0.0.1:$(free_port)
mkdir -p "$TMP/data"
"$BUILDDIR/ferryd" --listen "$FERRY_ADDR" --http "$HTTP_ADDR" \
    --data-dir "$TMP/data" --log-level warn >"$TMP/ferryd.log" 2>&1 &
PIDS+=($!)
if ! wait_http "http://$HTTP_ADDR/healthz"; then
    echo "bench/http_run.sh: ferryd's HTTP side did not answer on $HTTP_ADDR" >&2
    sed 's/^/    /' "$TMP/ferryd.log" >&2
    exit 1
fi
for w in 1 2; do
    "$BUILDDIR/echo_worker" --addr "$FERRY_ADDR" --service echo_ext \
        >"$TMP/echo$w.log" 2>&1 &
    PIDS+=($!)
    wait_ready "$TMP/echo$w.log" $! || { echo "echo_worker $w not ready" >&2; exit 1; }
done
"$BUILDDIR/fib_worker" --addr "$FERRY_ADDR" >"$TMP/fib.log" 2>&1 &
PIDS+=($!)
wait_ready "$TMP/fib.log" $! || { echo "fib_worker not ready" >&2; exit 1; }

HELLO_ADDR=127.0.0.1:$(free_port)
"$BUILDDIR/bench_h2o_hello" --listen "$HELLO_ADDR" >"$TMP/hello.log" 2>&1 &
PIDS+=($!)
wait_ready "$TMP/hello.log" $! || { echo "bench_h2o_hello not ready" >&2; exit 1; }

# A POST with a fixed 64-byte body.
BODY=$(head -c $PAYLOAD /dev/zero | tr '\0' 'x')
cat >"$TMP/post.lua" <<EOF
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/octet-stream"
EOF

# Check every scenario answers right before measuring it.
check() { # URL METHOD WANT
    local got
    if [ "$2" = POST ]; then
        got=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(u.Request(sys.argv[1], data=sys.argv[2].encode()), timeout=5).read().decode())' "$1" "$BODY")
    else
        got=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())' "$1")
    fi
    case "$got" in
    *"$3"*) return 0 ;;
    esac
    echo "bench/http_run.sh: $2 $1 answered '${got:0:200}', expected '$3'" >&2
    exit 1
}
check "http://$HTTP_ADDR/v1/call/echo_ext" POST "$BODY"
check "http://$HTTP_ADDR/v1/call/echo" POST "$BODY"
check "http://$HTTP_ADDR/fib/100" GET '"N": 100'
check "http://$HELLO_ADDR/" POST hello

declare -A ROWS RPS

# run NAME URL [lua]: one wrk run; appends "rps | p50 | p90 | p99 | non2xx"
run() {
    local name=$1 url=$2 script=${3:-} out rps p50 p90 p99 bad errs
    if [ -n "$script" ]; then
        out=$(wrk -t2 -c64 -d"${SECS}s" --latency -s "$script" "$url" 2>&1)
    else
        out=$(wrk -t2 -c64 -d"${SECS}s" --latency "$url" 2>&1)
    fi
    echo "$out" >>"$TMP/wrk.log"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%d", $2 }')
    p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
    p90=$(echo "$out" | awk '$1 == "90%" { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    bad=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ { print $NF }')
    errs=$(echo "$out" | awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }')
    echo "    $name: rps=$rps p50=$p50 p90=$p90 p99=$p99 non2xx=${bad:-0} ${errs:+socket errors: $errs}" >&2
    ROWS[$name]+="${rps:-0} | ${p50:-?} | ${p90:-?} | ${p99:-?} | ${bad:-0} |"$'\n'
}

# median NAME: prints the median run's row and sets RPS[NAME].
median() {
    local row
    row=$(printf '%s' "${ROWS[$1]:-}" | grep -v '^$' | sort -n |
        awk '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }')
    RPS[$1]=${row%% *}
    echo "| $1 | $row"
}

EXT="POST /v1/call/echo_ext (2 echo_worker)"
BUILTIN="POST /v1/call/echo (built-in)"
FIB="GET /fib/100 (1 fib_worker)"
HELLO="bench_h2o_hello POST /"
for r in $(seq "$REPEAT"); do
    run "$EXT" "http://$HTTP_ADDR/v1/call/echo_ext" "$TMP/post.lua"
    run "$BUILTIN" "http://$HTTP_ADDR/v1/call/echo" "$TMP/post.lua"
    run "$FIB" "http://$HTTP_ADDR/fib/100"
    run "$HELLO" "http://$HELLO_ADDR/" "$TMP/post.lua"
done

echo "| scenario (wrk -t2 -c64 -d${SECS}s) | requests/s | p50 | p90 | p99 | non-2xx |"
echo "| --- | --- | --- | --- | --- | --- |"
for name in "$EXT" "$BUILTIN" "$FIB" "$HELLO"; do
    median "$name"
done
echo
echo "| ratio to bench_h2o_hello | ratio |"
echo "| --- | --- |"
for name in "$EXT" "$BUILTIN" "$FIB"; do
    a=${RPS[$name]:-0}
    b=${RPS[$HELLO]:-0}
    if [ "$b" -gt 0 ]; then
        echo "| $name | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }') |"
    else
        echo "| $name | n/a |"
    fi
done

# ab, exactly as the original service was measured.
echo
out=$(ab -c 100 -n 10000 "http://$HTTP_ADDR/fib/100" 2>&1)
echo "$out" >"$TMP/ab.log"
echo "ab -c 100 -n 10000 http://$HTTP_ADDR/fib/100:" >&2
echo "$out" | grep -E 'Complete requests|Failed requests|Non-2xx|Requests per second|Time per request|^ +(50|90|99|100)%' | sed 's/^/    /' >&2
abrps=$(echo "$out" | awk '/^Requests per second:/ { print $4 }')
abp99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
abp50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
abfail=$(echo "$out" | awk '/^Failed requests:/ { print $3 }')
abnon2xx=$(echo "$out" | awk '/^Non-2xx responses:/ { print $3 }')
echo "| ab -c 100 -n 10000 /fib/100 | requests/s | p50 ms | p99 ms | failed | non-2xx |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| ferryd + fib_worker | ${abrps:-?} | ${abp50:-?} | ${abp99:-?} | ${abfail:-?} | ${abnon2xx:-0} |"
echo "| the original service | 876 | | 502 | | |"
