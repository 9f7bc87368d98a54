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
$rounds = (int)($argv[4] ?? 3);
$stack = new FpmStack($children);
$rows = [];
try {
    $runs = [
        'persistent (default)' => ['n=10', 'fib.php'],
        'fresh connection per request' => ['n=10&fresh=1', 'fib.php'],
        'no ferry (the page prints the answer)' => ['', 'noferry.php'],
    ];
    $rps = [];
    // Rounds alternate the modes, so a change in the machine's load hits all of them.
    for ($round = 1; $round <= $rounds; $round++) {
        foreach ($runs as $name => [$q, $page]) {
            [$status, , $body] = $stack->get($q, $page);
            if ($status !== 200) {
                throw new RuntimeException("page fails ($status): $body");
            }
            $cmd = sprintf('wrk -t1 -c%d -d%ds --latency %s 2>&1', $conns, $seconds,
                           escapeshellarg($stack->url($q, $page)));
            $before = $stack->ferryd->httpJson('/v1/stats');
            $out = shell_exec($cmd);
            $after = $stack->ferryd->httpJson('/v1/stats');
            preg_match('/Requests\/sec:\s+([0-9.]+)/', $out, $m);
            preg_match('/^\s+50%\s+(\S+)/m', $out, $p50);
            preg_match('/^\s+99%\s+(\S+)/m', $out, $p99);
            preg_match('/Non-2xx or 3xx responses: (\d+)/', $out, $bad);
            $rps[$name][] = (float)($m[1] ?? 0);
            // ferryd's own CPU per page view (user + system), less moved by the machine's load.
            preg_match('/(\d+) requests in/', $out, $nreq);
            $cpu = ($after['cpu_user_s'] + $after['cpu_sys_s']) - ($before['cpu_user_s'] + $before['cpu_sys_s']);
            $cpuUs[$name][] = (int)$nreq[1] > 0 ? $cpu * 1e6 / (int)$nreq[1] : 0.0;
            $lat[$name][] = ($p50[1] ?? '?') . ' / ' . ($p99[1] ?? '?');
            $non2xx[$name] = ($non2xx[$name] ?? 0) + (int)($bad[1] ?? 0);
            fwrite(STDERR, "== round $round, $name: $cmd\n$out\n");
        }
    }
    foreach ($runs as $name => $unused) {
        $r = $rps[$name];
        sort($r);
        $c = $cpuUs[$name];
        sort($c);
        $rows[] = [$name, number_format($r[intdiv(count($r), 2)], 0, '.', ''),
                   implode(', ', array_map(fn ($x) => number_format($x, 0, '.', ''), $rps[$name])),
                   number_format($c[intdiv(count($c), 2)], 1, '.', ''),
                   implode(', ', $lat[$name]), $non2xx[$name]];
    }
} finally {
    $stack->cleanup();
}
printf("wrk -t1 -c%d -d%ds x %d rounds, php-fpm pm=static max_children=%d, page fib.php?n=10\n",
       $conns, $seconds, $rounds, $children);
printf("| connection | requests/s (median) | each round | ferryd CPU µs per view (median) | p50 / p99 each round | non-2xx |\n"
       . "| --- | --- | --- | --- | --- | --- |\n");
foreach ($rows as $r) {
    printf("| %s | %s | %s | %s | %s | %s |\n", ...$r);
}
