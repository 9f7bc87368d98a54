#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The publish/subscribe fan-out benchmark: ferry.topic with ferry bench
# --pubsub, and nats-server driven by bench/pubsub_load.c with the same
# clients pattern (P publishers with D publishes in flight each, N
# subscriber connections on one subject, B-byte messages):
#   - ferryd (the release build in BUILD) with its own data folder; each
#     subscriber SUBSCRIBEs (max_pending 10000, drop oldest) and keeps one
#     POLL in flight; each round publishes to a new subject, bench.ps.N;
#   - nats-server (Debian's) on loopback; each subscriber SUBs; NATS has
#     no publish ack, so a publisher sends a PING every D/4 PUBs and keeps
#     at most D unconfirmed (the PONG comes once the server routed the
#     PUBs before it).
# Each server gets a free loopback port and is stopped by PID on exit.
# ROUNDS rounds alternated (ferry, nats, ferry, ...), then the median of
# each figure per peer (dropped and errors: the sum) and the ratios of
# ferry's to NATS's. PEERS picks and orders them (default "ferry nats").
# Installs nothing. set -u only, like the other users of bench/lib.sh.
#
#   bench/pubsub_peers.sh [BUILD] (BUILD: a release build, default build)
#   ROUNDS=3 SECONDS_EACH=5 WARMUP=1 SUBSCRIBERS=100 PUBLISHERS=1 DEPTH=16 \
#       PAYLOAD=64 PEERS="ferry nats" bench/pubsub_peers.sh build
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_EACH:-5}
WARMUP=${WARMUP:-1}
N=${SUBSCRIBERS:-100}
P=${PUBLISHERS:-1}
D=${DEPTH:-16}
B=${PAYLOAD:-64}
PEERS=${PEERS:-ferry nats}
cd "$ROOT" || exit 1

has() { [[ " $PEERS " == *" $1 "* ]]; }

NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
if has nats && [ ! -x "$NATS" ]; then
    echo "pubsub_peers: not installed: nats-server" >&2
    echo "pubsub_peers: run: apt-get install -y nats-server" >&2
    exit 1
fi

make -s BUILD="$BUILD" "$BUILD/bench_pubsub_load" "$BUILD/ferryd" \
    "$BUILD/ferry" || exit 1
LOAD=$BUILD/bench_pubsub_load
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
NP=$(free_port)
if has ferry; then
    "$BUILD/ferryd" --listen "127.0.0.1:$FP" --data-dir "$TMP/ferry" \
        --http off >"$TMP/ferryd.log" 2>&1 &
    PIDS+=($!)
    wait_ferryd "127.0.0.1:$FP" $! || { cat "$TMP/ferryd.log" >&2;
        echo "pubsub_peers: ferryd did not start" >&2; exit 1; }
    echo "pubsub_peers: ferryd (pid $!) on 127.0.0.1:$FP" >&2
fi
if has nats; then
    "$NATS" -a 127.0.0.1 -p "$NP" >"$TMP/nats.log" 2>&1 &
    PIDS+=($!)
    wait_port "$NP" $! || { cat "$TMP/nats.log" >&2;
        echo "pubsub_peers: nats-server did not start" >&2; exit 1; }
    echo "pubsub_peers: nats-server (pid $!) on 127.0.0.1:$NP" >&2
fi

FIELDS="published_per_s delivered_per_s dropped e2e_p50_us e2e_p99_us
        e2e_p999_us errors"
# A run's bound: setup, warm-up, window, the drain (at most 6 s), slack.
LIMIT=$((WARMUP + SECS + 20))

# run PEER ROUND: one run, its result line appended to $TMP/result.PEER
# (the last line of its details goes to stderr too).
run() {
    local line
    case $1 in
    ferry)
        if ! line=$(timeout "$LIMIT" "$FERRY" --addr "127.0.0.1:$FP" bench \
            --pubsub "bench.ps.$2" --subscribers "$N" --publishers "$P" \
            --depth "$D" --payload "$B" --seconds "$SECS" \
            --warmup "$WARMUP" 2>"$TMP/ferry.err"); then
            cat "$TMP/ferry.err" >&2
            echo "pubsub_peers: ferry bench --pubsub failed" >&2
            exit 1
        fi
        grep 'window' "$TMP/ferry.err" >&2
        tail -1 "$TMP/ferry.err" >&2
        ;;
    nats)
        if ! line=$(timeout "$LIMIT" "$LOAD" --addr "127.0.0.1:$NP" \
            --subject "bench.ps.$2" --subscribers "$N" --publishers "$P" \
            --depth "$D" --payload "$B" --seconds "$SECS" \
            --warmup "$WARMUP"); then
            echo "pubsub_peers: bench_pubsub_load failed" >&2
            exit 1
        fi
        ;;
    *)
        echo "pubsub_peers: unknown peer '$1'" >&2
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

versions=()
has ferry && versions+=("$("$BUILD/ferryd" --version 2>&1 | head -1)")
has nats && versions+=("$("$NATS" --version 2>&1 | head -1)")
echo "pubsub_peers: $(IFS=,; echo "${versions[*]}"); $(nproc) CPUs;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
    for peer in $PEERS; do
        run "$peer" "$round"
    done
done

echo "pubsub peers: publishers=$P subscribers=$N depth=$D payload=$B" \
     "warmup=${WARMUP}s seconds=$SECS; median of $ROUNDS rounds" \
     "(dropped, errors: sum); load average after" \
     "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %12s %14s %9s %11s %11s %12s %7s\n' peer published/s \
    delivered/s dropped e2e_p50_us e2e_p99_us e2e_p999_us errors
declare -A MED
for peer in $PEERS; do
    vals=()
    for f in $FIELDS; do
        if [ "$f" = errors ] || [ "$f" = dropped ]; then
            vals+=("$(field "$peer" "$f" | sum)")
        else
            vals+=("$(field "$peer" "$f" | median)")
        fi
        MED[$peer.$f]=${vals[-1]}
    done
    printf '%-7s %12s %14s %9s %11s %11s %12s %7s\n' "$peer" "${vals[@]}"
done
if has ferry && has nats; then
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
    echo "ferry/nats: delivered/s" \
        "$(ratio "${MED[ferry.delivered_per_s]}" "${MED[nats.delivered_per_s]}")x," \
        "publish-to-receipt p50" \
        "$(ratio "${MED[ferry.e2e_p50_us]}" "${MED[nats.e2e_p50_us]}")x," \
        "p99 $(ratio "${MED[ferry.e2e_p99_us]}" "${MED[nats.e2e_p99_us]}")x"
fi
