#!/bin/bash
# SPDX-License-Identifier: MIT
# clients/php/test.sh - the PHP client's PHPUnit tests against real ferryd
# processes from $FERRY_BIN (default build/). Ends with
# "RESULT passed=N failed=M" and exits non-zero when anything failed.
#
#   bash clients/php/test.sh [PHPUNIT ARGS...]     e.g. --filter FpmTest
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export FERRY_BIN=${FERRY_BIN:-$root/build}
case "$FERRY_BIN" in /*) ;; *) FERRY_BIN=$root/$FERRY_BIN ;; esac
if ! command -v phpunit >/dev/null; then
    echo "phpunit missing (apt-get install phpunit)"
    echo "RESULT passed=0 failed=1"
    exit 1
fi
junit=$(mktemp /tmp/ferry-php-junit.XXXXXX)
trap 'rm -f "$junit"' EXIT
cd "$here"
timeout 600 phpunit -c phpunit.xml --log-junit "$junit" "$@"
rc=$?
read -r tests failures errors skipped < <(php -r '
    $x = @simplexml_load_file($argv[1]);
    $s = $x ? $x->testsuite : null;
    echo $s ? (int)$s["tests"] . " " . (int)$s["failures"] . " " . (int)$s["errors"] . " " . (int)$s["skipped"]
            : "0 0 1 0", "\n";' "$junit")
failed=$((failures + errors))
passed=$((tests - failed - skipped))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi
echo "RESULT passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
