#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/clients/php_client_bench.sh - Ferry\Client beside phpredis: echo
# round trips to a local ferryd / redis-server over unix sockets, one at a
# time and 100 in flight, in one run (alternating rounds).
#
#   bash bench/clients/php_client_bench.sh [SECONDS [ROUNDS]]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY_BIN=${FERRY_BIN:-$root/build}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
php "$root/bench/clients/php_client_bench.php" "${1:-3}" "${2:-3}"
