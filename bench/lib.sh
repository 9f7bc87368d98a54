# SPDX-License-Identifier: MIT
# bench/lib.sh - what the bench scripts share: a scratch folder, the PIDs
# they started (stopped on exit, and only those), free ports, waiting for
# a READY line. Sourced by bench/run.sh and bench/http_run.sh.

TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready FILE PID: waits up to 10 s for a line "READY" in FILE.
wait_ready() {
    local i
    for i in $(seq 100); do
        grep -q '^READY' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
