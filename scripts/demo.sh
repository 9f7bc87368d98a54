#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The `make demo` runner: starts ferryd and the fib worker(s) from BUILDDIR,
# makes one call to show it works, then keeps both running until Ctrl-C,
# which stops exactly the processes this script started.
#
#   scripts/demo.sh BUILDDIR
set -u

BUILDDIR=${1:-build}
HOST=127.0.0.1
# DEMO_PORT and DEMO_HTTP move the demo off ferryd's defaults (the tests
# use them); unset, ferryd runs with its defaults.
PORT=${DEMO_PORT:-7700}
ADDR="$HOST:$PORT"
FERRYD_ARGS=()
if [ -n "${DEMO_PORT:-}" ]; then
    FERRYD_ARGS+=(--listen "$ADDR")
fi
if [ -n "${DEMO_HTTP:-}" ]; then
    FERRYD_ARGS+=(--http "$DEMO_HTTP")
fi
FERRYD="$BUILDDIR/ferryd"
FERRY="$BUILDDIR/ferry"
FIB="$BUILDDIR/fib_worker"

for bin in "$FERRYD" "$FERRY" "$FIB"; do
    if [ ! -x "$bin" ]; then
        echo "demo: $bin is missing; build it first with: make" >&2
        exit 1
    fi
done

# Whether something accepts connections on HOST:PORT.
port_open() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

if port_open; then
    echo "demo: $ADDR is already in use (is another ferryd running?)." >&2
    echo "demo: stop it first, then run make demo again." >&2
    exit 1
fi

LOGDIR=$(mktemp -d --suffix=.ferry-demo)
FERRYD_PID=
WORKER_PIDS=

stop() {
    local pid
    for pid in $WORKER_PIDS $FERRYD_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $WORKER_PIDS $FERRYD_PID; do
        wait "$pid" 2>/dev/null
    done
    WORKER_PIDS=
    FERRYD_PID=
}

fail() {
    echo "demo: $*" >&2
    stop
    exit 1
}

on_signal() {
    echo
    echo "demo: stopping"
    stop
    rm -rf "$LOGDIR"
    exit 0
}
trap on_signal INT TERM

"$FERRYD" "${FERRYD_ARGS[@]}" >"$LOGDIR/ferryd.log" 2>&1 &
FERRYD_PID=$!

# Wait up to 10 s for ferryd to accept connections.
for _ in $(seq 100); do
    port_open && break
    if ! kill -0 "$FERRYD_PID" 2>/dev/null; then
        FERRYD_PID=
        cat "$LOGDIR/ferryd.log" >&2
        fail "ferryd exited before it accepted connections"
    fi
    sleep 0.1
done
port_open || fail "ferryd did not accept connections on $ADDR in 10 s"
echo "demo: ferryd is listening on $ADDR (pid $FERRYD_PID)"

# The fib workers to start: "c" (default), or any of "c python node php",
# e.g. make demo WORKERS="c python node php".
WORKERS=${WORKERS:-c}
for w in $WORKERS; do
    case "$w" in
    c) cmd=("$FIB") ;;
    python) cmd=(python3 examples/fib/python/fib_worker.py) ;;
    node) cmd=(node examples/fib/node/fib_worker.js) ;;
    php) cmd=(php examples/fib/php/fib_worker.php) ;;
    *) fail "unknown worker '$w' in WORKERS (c, python, node, php)" ;;
    esac
    "${cmd[@]}" --addr "$ADDR" >"$LOGDIR/fib_worker_$w.log" 2>&1 &
    WORKER_PIDS="$WORKER_PIDS $!"
done

# Workers of fib, as ferryd counts them.
fib_workers() {
    "$FERRY" --addr "$ADDR" call ferry.services '' 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(len(s["workers"]) for s in doc["services"] if s["name"] == "fib"))
' 2>/dev/null || echo 0
}

want=$(echo $WORKERS | wc -w)
for _ in $(seq 100); do
    [ "$(fib_workers)" -ge "$want" ] && break
    for pid in $WORKER_PIDS; do
        kill -0 "$pid" 2>/dev/null && continue
        cat "$LOGDIR"/fib_worker_*.log >&2
        fail "a fib worker exited before it was ready"
    done
    sleep 0.1
done
[ "$(fib_workers)" -ge "$want" ] ||
    fail "fib workers ($WORKERS) were not ready in 10 s"
echo "demo: fib is served by $want worker(s): $WORKERS (pids$WORKER_PIDS)"

echo
echo "\$ ferry call fib '{\"n\":10}'"
"$FERRY" --addr "$ADDR" call fib '{"n":10}' ||
    fail "the first call failed"

echo
echo "ferry is running. In another terminal, try:"
echo
printf '  %-42s %s\n' \
    "$FERRY call fib '{\"n\":50}'" "the first 50 Fibonacci numbers" \
    "$FERRY call fib '{\"n\":0}'" "a refused request (INVALID_ARGUMENT)" \
    "$FERRY services" "services, workers, statistics" \
    "$FERRY bench --service echo" "throughput and latency (built-in echo)" \
    "$FERRY admin disable fib" "callers get SERVICE_DISABLED (docs/admin.md)" \
    "$FERRY admin enable fib" "and back" \
    "curl -s 127.0.0.1:8080/fib/10" "the Fibonacci REST API over HTTP" \
    "curl -s -XPOST --data hi 127.0.0.1:8080/v1/call/echo" "any service over HTTP"
echo
echo "The live dashboard is at http://127.0.0.1:8080/"
echo
echo "Logs are in $LOGDIR. Press Ctrl-C to stop ferryd and the workers."

# Wait until a signal arrives (the trap ends the script) or one of the two
# exits on its own.
wait -n "$FERRYD_PID" $WORKER_PIDS
# Ctrl-C reaches the whole process group: ferryd and the worker may exit
# before this shell takes the signal. Give its trap the moment to run.
sleep 1
echo "demo: ferryd or a fib worker exited; see $LOGDIR" >&2
stop
exit 1
