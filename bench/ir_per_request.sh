#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ferryd's instructions per request, counted by callgrind: repeatable on a
# loaded machine where requests/s are not (valgrind counts instructions,
# not time). Starts ferryd under callgrind on a free port (and for
# echo_ext an echo_worker beside it), drives it with ferry bench (4
# connections, depth 16, 1 s warm-up + 4 s), stops it, and divides
# ferryd's whole instruction count (start-up and warm-up included) by the
# requests of the bench's end line.
#
#   bench/ir_per_request.sh BUILDDIR [echo|echo_ext]
set -u
B=${1:-build}
SVC=${2:-echo}
. "$(dirname "$0")/lib.sh"
P=$(free_port)
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" "$B/ferryd" \
    --listen "127.0.0.1:$P" --http off --data-dir "$D/data" >"$D/log" 2>&1 &
VP=$!
for _ in $(seq 150); do
    "$B/ferry" --addr "127.0.0.1:$P" call echo x >/dev/null 2>&1 && break
    sleep 0.2
done
WP=
if [ "$SVC" = echo_ext ]; then
    "$B/echo_worker" --addr "127.0.0.1:$P" >/dev/null 2>&1 &
    WP=$!
    sleep 1
fi
"$B/ferry" bench --addr "127.0.0.1:$P" --service "$SVC" --connections 4 \
    --depth 16 --seconds 4 --warmup 1 >/dev/null 2>"$D/bench.err"
if [ -n "$WP" ]; then
    kill "$WP"
    wait "$WP" 2>/dev/null
fi
kill -TERM "$VP"
wait "$VP"
sent=$(grep -o 'sent=[0-9]*' "$D/bench.err" | tail -1 | cut -d= -f2)
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$D/cg.out")
if [ -z "$sent" ] || [ -z "$ir" ] || [ "$sent" -eq 0 ]; then
    echo "ir_per_request: no count (see $D)" >&2
    trap - EXIT
    exit 1
fi
echo "$SVC requests=$sent instructions=$ir per_request=$((ir / sent))"
