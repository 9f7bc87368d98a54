<?php
// SPDX-License-Identifier: MIT
/*
 * php_client_bench.php - Ferry\Client beside its peer client, phpredis
 * (Debian's php-redis), in one run on one machine: a 64-byte echo round
 * trip to a local daemon over its unix socket, one call at a time (call /
 * Redis::echo) and 100 in flight at once (callMany / a Redis pipeline).
 * ferryd answers "echo" itself (a built-in), as redis-server answers ECHO:
 * both measure the client and one daemon hop. Run through
 * php_client_bench.sh.
 */

declare(strict_types=1);

require dirname(__DIR__, 2) . '/clients/php/tests/bootstrap.php';

$seconds = (float)($argv[1] ?? 3);
$rounds = (int)($argv[2] ?? 3);
$payload = str_repeat('p', 64);

/** Calls $fn until $seconds pass; calls per second. */
function measure(float $seconds, callable $fn, int $per = 1): float
{
    $fn(); // warm up
    $n = 0;
    $t0 = hrtime(true);
    $until = $t0 + (int)($seconds * 1e9);
    do {
        $fn();
        $n += $per;
    } while (hrtime(true) < $until);
    return $n / ((hrtime(true) - $t0) / 1e9);
}

if (!class_exists('Redis')) {
    fwrite(STDERR, "php-redis missing (apt-get install php-redis)\n");
    exit(1);
}
$dir = TestEnv::tempDir('ferry-php-bench-');
$d = new Ferryd([], $dir . '/ferryd');
$redisSock = "$dir/redis.sock";
$redis = new Proc(['redis-server', '--port', '0', '--unixsocket', $redisSock, '--save', '', '--appendonly', 'no',
                   '--dir', $dir], $dir, 'redis');
TestEnv::waitFor(fn () => file_exists($redisSock), 5000);
$rows = [];
try {
    $ferry = new Ferry\Client($d->unix, ['persistent' => false]);
    $r = new Redis();
    $r->connect($redisSock);
    if ($ferry->call('echo', $payload) !== $payload || $r->echo($payload) !== $payload) {
        throw new RuntimeException('echo does not echo');
    }
    $many = array_fill(0, 100, ['echo', $payload]);
    $cases = [
        'ferry Client::call (echo)' => [fn () => $ferry->call('echo', $payload), 1],
        'phpredis Redis::echo' => [fn () => $r->echo($payload), 1],
        'ferry Client::callMany, 100 in flight' => [function () use ($ferry, $many, $payload): void {
            foreach ($ferry->callMany($many) as $x) {
                if ($x !== $payload) {
                    throw new RuntimeException('bad reply');
                }
            }
        }, 100],
        'phpredis pipeline of 100 ECHO' => [function () use ($r, $payload): void {
            $p = $r->multi(Redis::PIPELINE);
            for ($i = 0; $i < 100; $i++) {
                $p->echo($payload);
            }
            foreach ($p->exec() as $x) {
                if ($x !== $payload) {
                    throw new RuntimeException('bad reply');
                }
            }
        }, 100],
    ];
    $got = [];
    for ($round = 0; $round < $rounds; $round++) {
        foreach ($cases as $name => [$fn, $per]) {
            $got[$name][] = measure($seconds, $fn, $per);
        }
    }
} finally {
    $redis->stop();
    $d->cleanup();
    TestEnv::rmTree($dir);
}
printf("PHP %s, %d rounds of %.1f s per case, 64-byte payload, unix sockets\n", PHP_VERSION, $rounds, $seconds);
printf("| client | calls/s (median) | each round |\n| --- | --- | --- |\n");
foreach ($got as $name => $v) {
    $s = $v;
    sort($s);
    printf("| %s | %.0f | %s |\n", $name, $s[intdiv(count($s), 2)],
           implode(', ', array_map(fn ($x) => sprintf('%.0f', $x), $v)));
}
