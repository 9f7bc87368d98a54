#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/clients/php_fpm_bench.sh - requests/s of a php-fpm page calling fib
# through ferry over ferryd's unix socket: the persistent connection
# (Ferry\Client's default) against a fresh connection per request, both
# in one run on one nginx + php-fpm8.2 + ferryd + C fib worker stack
# started in a temp dir (never the system services).
#
#   bash bench/clients/php_fpm_bench.sh [SECONDS [WRK_CONNS [FPM_CHILDREN [ROUNDS]]]]
#
# Uses the release build (FERRY_BIN, default build/); wrk output on stderr,
# a table for docs/benchmarks.md on stdout.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY_BIN=${FERRY_BIN:-$root/build}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
php "$root/bench/clients/php_fpm_bench.php" "${1:-4}" "${2:-8}" "${3:-4}" "${4:-3}"
