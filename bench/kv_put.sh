#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ferry.kv beside Redis, interleaved, ROUNDS rounds (default 3):
#   - kv PUT of a 64-byte value (store_sync = always: fsync before every
#     reply) with `ferry bench --connections 16 --depth 16`, and
#     `redis-server --appendonly yes --appendfsync always` SET of 64 bytes
#     with `redis-benchmark -c 16 -P 16 -t set -d 64` (Redis's own
#     generator: pipelining 16 per connection is its form of depth 16);
#   - kv GET of that key and the built-in echo of 64 bytes, both with
#     `ferry bench --connections 16 --depth 16`.
# Each server gets its own temp folder and a free port; stopped by PID.
#   bench/kv_put.sh [BUILD_DIR] [SECONDS]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
SECS=${2:-5}
ROUNDS=${ROUNDS:-3}
TMP=$(mktemp -d /tmp/ferry-kvbench-XXXXXX)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
FP=$(port)
RP=$(port)
"$B/ferryd" --listen "127.0.0.1:$FP" --data-dir "$TMP/ferry" \
    >"$TMP/ferryd.log" 2>&1 &
FPID=$!
mkdir -p "$TMP/redis"
redis-server --port "$RP" --bind 127.0.0.1 --dir "$TMP/redis" \
    --appendonly yes --appendfsync always --save '' \
    >"$TMP/redis.log" 2>&1 &
RPID=$!
trap 'kill $FPID $RPID 2>/dev/null; wait $FPID $RPID 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 1
VAL=$(printf 'v%.0s' $(seq 64) | xxd -p | tr -d '\n')
PUT=0200$(printf '0%.0s' $(seq 16))$VAL
GET=01
A="--addr 127.0.0.1:$FP --connections 16 --depth 16 --seconds $SECS --warmup 1"
for r in $(seq "$ROUNDS"); do
    put=$("$B/ferry" bench $A --service ferry.kv --key benchkey \
        --payload-hex "$PUT" 2>/dev/null)
    set_=$(redis-benchmark -p "$RP" -c 16 -P 16 -t set -d 64 \
        -n $((SECS * 60000)) -q 2>/dev/null | tr '\r' '\n' | \
        sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    get=$("$B/ferry" bench $A --service ferry.kv --key benchkey \
        --payload-hex "$GET" 2>/dev/null)
    echo_=$("$B/ferry" bench $A --service echo --payload 64 2>/dev/null)
    echo "round $r: kv_put $put | redis_set rps=$set_ | kv_get $get | echo $echo_"
done
grep -i "error" "$TMP/ferryd.log" | head -5 || true
