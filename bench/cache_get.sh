#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/cache_get.sh - a ferry.cache GET hit of a 64-byte value beside the
# built-in echo of 64 bytes, both through one ferryd, 16 connections x 16
# in flight, interleaved echo, cache, echo, cache ... BENCH_REPEAT times
# (default 3) of BENCH_SECONDS (default 5) each; prints every run and
# the ratio of the medians. Rows for docs/benchmarks.md ("Cache: GET").
#
#   bash bench/cache_get.sh [BUILDDIR]      (release build: make)
set -u
BUILDDIR=${1:-build}
SECS=${BENCH_SECONDS:-5}
REPEAT=${BENCH_REPEAT:-3}
for bin in ferry ferryd; do
    [ -x "$BUILDDIR/$bin" ] || { echo "no $BUILDDIR/$bin: run make" >&2; exit 2; }
done
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
ADDR=127.0.0.1:$PORT
"$BUILDDIR/ferryd" --listen "$ADDR" --http off --data-dir "$TMP" \
    >"$TMP/ferryd.log" 2>&1 &
PIDS+=("$!")
for i in $(seq 100); do
    "$BUILDDIR/ferry" --addr "$ADDR" call echo ping >/dev/null 2>&1 && break
    sleep 0.1
done
VALUE=$(printf 'v%.0s' $(seq 64))
CAS=$("$BUILDDIR/ferry" --addr "$ADDR" cache set bench:key "$VALUE" | sed 's/^cas=//')
[ -n "$CAS" ] || { echo "cache set failed" >&2; cat "$TMP/ferryd.log" >&2; exit 1; }
# The reply of a hit: status 0, flags 0, the cas, the value.
EXPECT=$(printf '00%08x%016x' 0 "$CAS")$(printf '%s' "$VALUE" | od -An -v -tx1 | tr -d ' \n')

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# ferry bench --connections 16 --depth 16 --seconds $SECS (warm-up 1 s)"
declare -a E C
for r in $(seq "$REPEAT"); do
    line=$("$BUILDDIR/ferry" bench --addr "$ADDR" --service echo --payload 64 \
        --connections 16 --depth 16 --seconds "$SECS" 2>"$TMP/e.err") ||
        { cat "$TMP/e.err" >&2; exit 1; }
    echo "echo  run $r: $line"
    E+=("$(echo "$line" | sed 's/^rps=\([0-9]*\).*/\1/')")
    line=$("$BUILDDIR/ferry" bench --addr "$ADDR" --service ferry.cache \
        --key bench:key --payload-hex 01 --expect-hex "$EXPECT" \
        --connections 16 --depth 16 --seconds "$SECS" 2>"$TMP/c.err") ||
        { cat "$TMP/c.err" >&2; exit 1; }
    echo "cache run $r: $line"
    C+=("$(echo "$line" | sed 's/^rps=\([0-9]*\).*/\1/')")
done
med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
me=$(med "${E[@]}")
mc=$(med "${C[@]}")
echo "median echo $me/s, cache GET $mc/s, ratio $(awk -v a="$mc" -v b="$me" 'BEGIN{printf "%.2f", a/b}')"
