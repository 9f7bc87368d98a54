#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ferry.queue's disk use under churn: one ferryd (release build, its own
# data folder, store_sync = always) and ferry bench --queue --churn, whose
# consumers ack 70% of the jobs they get, release 20% with a short delay
# and bury 10%, one of them redriving the dead-letter queue every second,
# so that ready, delayed, reserved, dead and released jobs mix; the
# producers keep BACKLOG jobs alive (pushed and not acked). A cycle is one
# job acked, released or buried. Every EVERY cycles it prints the
# progress line, the size of the store's file (ls -l, and du for the
# blocks it takes) and the queue's counts; it ends after CYCLES cycles or
# MAX_SECONDS, whichever comes first (the last line says which).
#
#   bench/queue_churn.sh [BUILD]
#   CYCLES=10000000 EVERY=1000000 MAX_SECONDS=1500 BACKLOG=10000 \
#       CHURN=70/20/10 RELEASE_MS=20 PRODUCERS=2 CONSUMERS=4 DEPTH=16 \
#       PAYLOAD=128 bench/queue_churn.sh build
#
# Starts ferryd on a free loopback port and stops only that PID.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
CYCLES=${CYCLES:-10000000}
EVERY=${EVERY:-1000000}
MAX_SECONDS=${MAX_SECONDS:-1500}
BACKLOG=${BACKLOG:-10000}
CHURN=${CHURN:-70/20/10}
RELEASE_MS=${RELEASE_MS:-20}
P=${PRODUCERS:-2}
C=${CONSUMERS:-4}
D=${DEPTH:-16}
B=${PAYLOAD:-128}
Q=churn
cd "$ROOT" || exit 1

make -s BUILD="$BUILD" "$BUILD/ferryd" "$BUILD/ferry" || exit 1
FERRY=$BUILD/ferry

. "$ROOT/bench/lib.sh"

ADDR=127.0.0.1:$(free_port)
DATA=$TMP/ferry
"$BUILD/ferryd" --listen "$ADDR" --data-dir "$DATA" --http off \
    >"$TMP/ferryd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    "$FERRY" --addr "$ADDR" call echo ping >/dev/null 2>&1 && break
    sleep 0.1
done
if ! "$FERRY" --addr "$ADDR" call echo ping >/dev/null 2>&1; then
    cat "$TMP/ferryd.log" >&2
    echo "queue_churn: ferryd did not start" >&2
    exit 1
fi

# sample: the store file's size and blocks, and the queue's counts.
sample() {
    local f=$DATA/store/data.mdb st
    st=$("$FERRY" --addr "$ADDR" queue stats "$Q" 2>/dev/null |
        python3 -c 'import json, sys; d = json.load(sys.stdin); print(" ".join(
            f"{k}={d[k]}" for k in ("ready", "delayed", "reserved", "dead")))' \
        2>/dev/null)
    echo "  data.mdb $(stat -c %s "$f") bytes ($(du -k "$f" | cut -f1) KiB" \
         "on disk); $Q: ${st:-no such queue yet}"
}

echo "queue_churn: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
     "ferryd on $ADDR, data in $DATA"
echo "queue_churn: ferry bench --queue $Q --churn $CHURN --release-delay" \
     "$RELEASE_MS --redrive-every 1000 --backlog $BACKLOG --producers $P" \
     "--consumers $C --depth $D --payload $B --cycles $CYCLES --progress" \
     "$EVERY --seconds $MAX_SECONDS --warmup 0"
sample
START=$(date +%s)
"$FERRY" --addr "$ADDR" bench --queue "$Q" --churn "$CHURN" \
    --release-delay "$RELEASE_MS" --redrive-every 1000 --backlog "$BACKLOG" \
    --producers "$P" --consumers "$C" --depth "$D" --payload "$B" \
    --cycles "$CYCLES" --progress "$EVERY" --seconds "$MAX_SECONDS" \
    --warmup 0 2>"$TMP/bench.err" |
    while read -r line; do
        echo "$line"
        case $line in cycles=*) sample ;; esac
    done
rc=${PIPESTATUS[0]}
sed 's/^/  /' "$TMP/bench.err"
done_cycles=$(sed -n 's/.* cycles=\([0-9]*\)$/\1/p' "$TMP/bench.err" | tail -1)
echo "queue_churn: after $(($(date +%s) - START)) s: ${done_cycles:-?} cycles" \
     "of $CYCLES$([ "${done_cycles:-0}" -lt "$CYCLES" ] && echo \
     " (stopped by MAX_SECONDS=$MAX_SECONDS)"); bench exit $rc; load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg)"
sample
exit "$rc"
