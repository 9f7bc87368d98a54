#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The `make demo` runner: starts ferryd and the fib worker from BUILDDIR,
# makes one call to show it works, then keeps both running until Ctrl-C,
# which stops exactly the processes this script started.
#
#   scripts/demo.sh BUILDDIR
set -u

BUILDDIR=${1:-build}
HOST=127.0.0.1
PORT=7700
ADDR="$HOST:$PORT"
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
FIB_PID=

stop() {
    local pid
    for pid in $FIB_PID $FERRYD_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $FIB_PID $FERRYD_PID; do
        wait "$pid" 2>/dev/null
    done
    FIB_PID=
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

"$FERRYD" >"$LOGDIR/ferryd.log" 2>&1 &
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

"$FIB" --addr "$ADDR" >"$LOGDIR/fib_worker.log" 2>&1 &
FIB_PID=$!
for _ in $(seq 100); do
    grep -q '^READY$' "$LOGDIR/fib_worker.log" && break
    if ! kill -0 "$FIB_PID" 2>/dev/null; then
        FIB_PID=
        cat "$LOGDIR/fib_worker.log" >&2
        fail "fib_worker exited before it was ready"
    fi
    sleep 0.1
done
grep -q '^READY$' "$LOGDIR/fib_worker.log" ||
    fail "fib_worker was not ready in 10 s"
echo "demo: fib_worker serves \"fib\" (pid $FIB_PID)"

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
echo "Logs are in $LOGDIR. Press Ctrl-C to stop ferryd and the worker."

# Wait until a signal arrives (the trap ends the script) or one of the two
# exits on its own.
wait -n "$FERRYD_PID" "$FIB_PID"
# Ctrl-C reaches the whole process group: ferryd and the worker may exit
# before this shell takes the signal. Give its trap the moment to run.
sleep 1
echo "demo: ferryd or fib_worker exited; see $LOGDIR" >&2
stop
exit 1
