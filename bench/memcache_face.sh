#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The memcached face beside Debian's memcached -t 1 with the same memory
# cap (64 MiB, ferry's cache_max_bytes default), driven by the same
# generator (bench/memcache_load.c: C connections, D commands pipelined
# on each) in one run: a get-heavy (90% get) and a set-heavy (10% get)
# mix, ROUNDS rounds interleaved (memcached, ferry, memcached, ...), and
# the median of each. Both servers are started here and stopped by PID.
#
#   bench/memcache_face.sh [BUILD] (BUILD: a release build, default build)
#   ROUNDS=3 SECONDS_EACH=5 C=16 D=16 bench/memcache_face.sh
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_EACH:-5}
C=${C:-16}
D=${D:-16}
cd "$ROOT"
make -s BUILD="$BUILD" "$BUILD/ferryd" "$BUILD/bench_memcache_load"
TMP=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MC_PORT=$(port); FY_PORT=$(port); FY_BIN=$(port)
USER_ARG=(); [ "$(id -u)" = 0 ] && USER_ARG=(-u nobody)
memcached "${USER_ARG[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -t 1 -m 64 &
MC_PID=$!
"$BUILD/ferryd" --data-dir "$TMP" --listen "127.0.0.1:$FY_BIN" --http off \
    --memcache-listen "127.0.0.1:$FY_PORT" >"$TMP/ferryd.log" 2>&1 &
FY_PID=$!
trap 'kill $MC_PID $FY_PID 2>/dev/null; wait $MC_PID $FY_PID 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 1
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mix in 90 10; do
    : >"$TMP/mc.$mix"; : >"$TMP/fy.$mix"
    for r in $(seq "$ROUNDS"); do
        "$BUILD/bench_memcache_load" "127.0.0.1:$MC_PORT" -c "$C" -d "$D" \
            -s "$SECS" -g "$mix" | tee /dev/stderr |
            sed -n 's/.*: \([0-9]*\) commands.*/\1/p' >>"$TMP/mc.$mix"
        "$BUILD/bench_memcache_load" "127.0.0.1:$FY_PORT" -c "$C" -d "$D" \
            -s "$SECS" -g "$mix" | tee /dev/stderr |
            sed -n 's/.*: \([0-9]*\) commands.*/\1/p' >>"$TMP/fy.$mix"
    done
    mc=$(median <"$TMP/mc.$mix"); fy=$(median <"$TMP/fy.$mix")
    echo "mix get=${mix}% c=$C d=$D: memcached $mc/s, ferry face $fy/s," \
         "ratio $(awk -v a="$fy" -v b="$mc" 'BEGIN {printf "%.2f", a / b}')x"
done
