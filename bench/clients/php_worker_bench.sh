#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/clients/php_worker_bench.sh - a Ferry\Worker (PHP) beside the C
# echo_worker (libferry), both echoing, each behind the same ferryd under
# `ferry bench` (4 connections x 16 in flight, 64-byte payloads), in
# alternating rounds of one run.
#
#   bash bench/clients/php_worker_bench.sh [SECONDS [ROUNDS]]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FERRY_BIN:-$root/build}
secs=${1:-3}
rounds=${2:-2}
dir=$(mktemp -d /tmp/ferry-php-wbench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
addr="unix:$dir/ferryd.sock"
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/ferryd" --listen "$addr" --http "127.0.0.1:$http" --data-dir "$dir" --log-level warn >"$dir/ferryd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/ferryd.sock" ] && break; sleep 0.05; done
php "$root/bench/clients/php_echo_worker.php" "$addr" echo-php 64 >"$dir/php.log" 2>&1 &
pids+=($!)
"$bin/echo_worker" --addr "$addr" --service echo-c --credit 64 >"$dir/c.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q READY "$dir/php.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ferry bench --connections 4 --depth 16 --payload 64 --seconds $secs, $rounds rounds"
echo "| worker | round | result |"
echo "| --- | --- | --- |"
for r in $(seq "$rounds"); do
    for s in echo-php echo-c; do
        out=$("$bin/ferry" bench --addr "$addr" --service "$s" --connections 4 --depth 16 \
            --payload 64 --seconds "$secs" 2>/dev/null)
        echo "| $s | $r | $out |"
    done
done
