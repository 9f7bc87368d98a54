<?php
// SPDX-License-Identifier: MIT
/*
 * php_fpm_bench.php - requests per second of a php-fpm page calling "fib"
 * (n=10) through ferry, once with the persistent connection and once with
 * a fresh connection per request (?fresh=1), in one run on one stack
 * (clients/php/tests/FpmStack.php: nginx, php-fpm8.2, ferryd, the C fib
 * worker). Run through php_fpm_bench.sh.
 */

declare(strict_types=1);

require dirname(__DIR__, 2) . '/clients/php/tests/bootstrap.php';

$seconds = (int)($argv[1] ?? 5);
$conns = (int)($argv[2] ?? 8);
$children = (int)($argv[3] ?? 4);
$stack = new FpmStack($children);
$rows = [];
try {
    foreach (['persistent' => 'n=10', 'fresh connection per request' => 'n=10&fresh=1'] as $name => $q) {
        [$status, , $body] = $stack->get($q);
        if ($status !== 200) {
            throw new RuntimeException("page fails ($status): $body");
        }
        $cmd = sprintf('wrk -t1 -c%d -d%ds --latency %s 2>&1', $conns, $seconds, escapeshellarg($stack->url($q)));
        $out = shell_exec($cmd);
        preg_match('/Requests\/sec:\s+([0-9.]+)/', $out, $rps);
        preg_match('/50%\s+(\S+)/', $out, $p50);
        preg_match('/99%\s+(\S+)/', $out, $p99);
        preg_match('/Non-2xx or 3xx responses: (\d+)/', $out, $bad);
        $rows[] = [$name, $rps[1] ?? '?', $p50[1] ?? '?', $p99[1] ?? '?', $bad[1] ?? '0', $stack->callers()];
        fwrite(STDERR, "== $name: $cmd\n$out\n");
    }
} finally {
    $stack->cleanup();
}
printf("wrk -t1 -c%d -d%ds, php-fpm pm=static max_children=%d, page fib.php?n=10\n", $conns, $seconds, $children);
printf("| connection | requests/s | p50 | p99 | non-2xx | ferryd callers after |\n| --- | --- | --- | --- | --- | --- |\n");
foreach ($rows as $r) {
    printf("| %s | %s | %s | %s | %s | %s |\n", ...$r);
}
