#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/cache_shift.sh - value sizes that shift (100 B, 10 KiB, 100 B): the
# cache module (src/cache/) and Debian's memcached -m 64 -t 1, fed the same
# sequence by bench_cache_shift (see bench/cache_shift.c), in one run; then
# ns per get hit and per set of the module alone. Rows for
# docs/benchmarks.md ("Cache: value sizes that shift").
#
#   bash bench/cache_shift.sh [BUILDDIR]     (release build: make)
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. bench/lib.sh
BIN=$BUILD/bench_cache_shift
[ -x "$BIN" ] || { echo "no $BIN: run make" >&2; exit 1; }
command -v memcached >/dev/null || { echo "no memcached (apt-get install memcached)" >&2; exit 1; }

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## ferry cache module, cap 64 MiB"
"$BIN" module 64 || exit 1

PORT=$(free_port)
# memcached refuses to run as root without -u.
USER_OPT=()
[ "$(id -u)" = 0 ] && USER_OPT=(-u nobody)
memcached -m 64 -t 1 -p "$PORT" -l 127.0.0.1 -U 0 "${USER_OPT[@]}" \
    >"$TMP/mc.log" 2>&1 &
MC=$!
PIDS+=("$MC")
for i in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$MC" 2>/dev/null || { cat "$TMP/mc.log" >&2; exit 1; }
    sleep 0.1
done
echo "## memcached $(memcached -V | cut -d' ' -f2) -m 64 -t 1"
"$BIN" memcached "$PORT" "$MC" 64 || exit 1

echo "## module alone"
"$BIN" speed
