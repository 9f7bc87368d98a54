#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The durable queue benchmark: ferry.queue with ferry bench --queue, and
# its peers driven by bench/queue_load.c with the same workload (P
# producers, C consumers, D in flight per connection, B-byte jobs; a push
# acknowledged only once durable):
#   - ferryd (the release build in BUILD) with its own data folder and the
#     default store_sync = always (a reply waits for its commit's fsync);
#     each round pushes to a new queue, bench.N (a queue left with jobs
#     would hand the next run jobs it did not push);
#   - Redis (Debian's redis-server) with appendonly yes, appendfsync
#     always, no RDB saves, and the reliable-queue pattern: LPUSH, BLMOVE
#     to a processing list, LREM from it as the ack;
#   - beanstalkd (Debian's) with a binlog and -f0: fsync after every
#     write; put, reserve-with-timeout, delete.
# Each server gets its own temp folder and a free loopback port, and is
# stopped by PID on exit. ROUNDS rounds alternated (ferry, redis,
# beanstalkd, ferry, ...), then the median of each figure per peer
# (errors: the sum) and the ratios of ferry's to Redis's. PEERS picks
# and orders them (default "ferry redis beanstalkd"). Installs nothing. set -u only, like the other users of bench/lib.sh
# (under set -e its cleanup would stop at the first wait on a killed PID).
#
#   bench/queue_peers.sh [BUILD] (BUILD: a release build, default build)
#   ROUNDS=3 SECONDS_EACH=5 WARMUP=1 PRODUCERS=4 CONSUMERS=4 DEPTH=16 \
#       PAYLOAD=128 PEERS="ferry redis beanstalkd" bench/queue_peers.sh build
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_EACH:-5}
WARMUP=${WARMUP:-1}
P=${PRODUCERS:-4}
C=${CONSUMERS:-4}
D=${DEPTH:-16}
B=${PAYLOAD:-128}
PEERS=${PEERS:-ferry redis beanstalkd}
cd "$ROOT" || exit 1

has() { [[ " $PEERS " == *" $1 "* ]]; }

missing=()
for bin in redis-server beanstalkd; do
    has "${bin%-server}" || continue
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "queue_peers: not installed: ${missing[*]}" >&2
    echo "queue_peers: run: apt-get install -y redis-server beanstalkd" >&2
    exit 1
fi

make -s BUILD="$BUILD" "$BUILD/bench_queue_load" "$BUILD/ferryd" \
    "$BUILD/ferry" || exit 1
LOAD=$BUILD/bench_queue_load
FERRY=$BUILD/ferry

. "$ROOT/bench/lib.sh"

# wait_port PORT PID: waits up to 10 s for PORT on 127.0.0.1 to accept.
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_ferryd ADDR PID: waits up to 10 s for ferryd to answer a call.
wait_ferryd() {
    for _ in $(seq 100); do
        "$FERRY" --addr "$1" call echo ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

FP=$(free_port)
RP=$(free_port)
BP=$(free_port)
mkdir -p "$TMP/redis" "$TMP/beanstalkd"
if has ferry; then
    "$BUILD/ferryd" --listen "127.0.0.1:$FP" --data-dir "$TMP/ferry" \
        --http off >"$TMP/ferryd.log" 2>&1 &
    PIDS+=($!)
    wait_ferryd "127.0.0.1:$FP" $! || { cat "$TMP/ferryd.log" >&2;
        echo "queue_peers: ferryd did not start" >&2; exit 1; }
    echo "queue_peers: ferryd (pid $!) on 127.0.0.1:$FP" >&2
fi
has redis && {
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync always --dir "$TMP/redis" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$RP" $! || { cat "$TMP/redis.log" >&2;
    echo "queue_peers: redis-server did not start" >&2; exit 1; }
}
has beanstalkd && {
# beanstalkd complains on stderr of every connection closed with a reply
# pending (the receives still waiting when a run ends): kept in its log.
beanstalkd -l 127.0.0.1 -p "$BP" -b "$TMP/beanstalkd" -f0 \
    >"$TMP/beanstalkd.log" 2>&1 &
PIDS+=($!)
wait_port "$BP" $! || { cat "$TMP/beanstalkd.log" >&2;
    echo "queue_peers: beanstalkd did not start" >&2; exit 1; }
}

FIELDS="pushes_per_s consumed_per_s push_p50_us push_p99_us e2e_p50_us
        e2e_p99_us e2e_p999_us backlog errors"
# A run's bound: setup, warm-up, window, the drain (at most 2 s), slack.
LIMIT=$((WARMUP + SECS + 15))

# run PEER ROUND: one run, its result line appended to $TMP/result.PEER
# (ferry's accounting line, the last on its stderr, goes to stderr too).
run() {
    local line
    case $1 in
    ferry)
        if ! line=$(timeout "$LIMIT" "$FERRY" --addr "127.0.0.1:$FP" bench \
            --queue "bench.$2" --producers "$P" --consumers "$C" \
            --depth "$D" --payload "$B" --seconds "$SECS" \
            --warmup "$WARMUP" 2>"$TMP/ferry.err"); then
            cat "$TMP/ferry.err" >&2
            echo "queue_peers: ferry bench --queue failed" >&2
            exit 1
        fi
        tail -1 "$TMP/ferry.err" >&2
        ;;
    redis | beanstalkd)
        local port=$RP
        [ "$1" = beanstalkd ] && port=$BP
        if ! line=$(timeout "$LIMIT" "$LOAD" --peer "$1" \
            --addr "127.0.0.1:$port" --producers "$P" --consumers "$C" \
            --depth "$D" --payload "$B" --seconds "$SECS" \
            --warmup "$WARMUP"); then
            echo "queue_peers: bench_queue_load --peer $1 failed" >&2
            exit 1
        fi
        ;;
    *)
        echo "queue_peers: unknown peer '$1'" >&2
        exit 2
        ;;
    esac
    echo "$line" >&2
    echo "$line" >>"$TMP/result.$1"
}

# field PEER NAME: NAME's value in each of PEER's runs, one a line.
field() {
    sed -n "s/.* $2=\([-0-9.]*\).*/\1/p" "$TMP/result.$1"
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
sum() { awk '{s += $1} END {print s + 0}'; }

# The load average beside the figures: the runs share the machine's
# cores and disk with whatever else runs there.
versions=()
has ferry && versions+=("$("$BUILD/ferryd" --version 2>&1 | head -1)")
has redis && versions+=("$(redis-server --version | cut -d' ' -f1-3)")
has beanstalkd && versions+=("$(beanstalkd -v)")
echo "queue_peers: $(IFS=,; echo "${versions[*]}"); $(nproc) CPUs;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
    for peer in $PEERS; do
        run "$peer" "$round"
    done
done

echo "queue peers: producers=$P consumers=$C depth=$D payload=$B" \
     "warmup=${WARMUP}s seconds=$SECS; median of $ROUNDS rounds" \
     "(errors: sum); load average after $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s %9s %11s %12s %12s %11s %11s %12s %8s %7s\n' peer pushes/s \
    consumed/s push_p50_us push_p99_us e2e_p50_us e2e_p99_us e2e_p999_us \
    backlog errors
declare -A MED
for peer in $PEERS; do
    vals=()
    for f in $FIELDS; do
        if [ "$f" = errors ]; then
            vals+=("$(field "$peer" "$f" | sum)")
        else
            vals+=("$(field "$peer" "$f" | median)")
        fi
        MED[$peer.$f]=${vals[-1]}
    done
    printf '%-11s %9s %11s %12s %12s %11s %11s %12s %8s %7s\n' "$peer" \
        "${vals[@]}"
done
if has ferry && has redis; then
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
    echo "ferry/redis: pushes/s $(ratio "${MED[ferry.pushes_per_s]}" \
        "${MED[redis.pushes_per_s]}")x, consumed/s" \
        "$(ratio "${MED[ferry.consumed_per_s]}" "${MED[redis.consumed_per_s]}")x," \
        "push p99 $(ratio "${MED[ferry.push_p99_us]}" "${MED[redis.push_p99_us]}")x," \
        "push-to-consumer p99" \
        "$(ratio "${MED[ferry.e2e_p99_us]}" "${MED[redis.e2e_p99_us]}")x"
fi
