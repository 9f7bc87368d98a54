<?php
// SPDX-License-Identifier: MIT
/*
 * fib_worker.php - the Fibonacci service in PHP, answering exactly as the
 * C worker (examples/fib/fib_worker.c) does: {"n": N} gets
 * {"N": N, "result": "0 1 1 2 3 ..."}, the first N Fibonacci numbers
 * (F0 = 0, F1 = 1) in exact decimal (GMP, else bcmath); anything else gets
 * INVALID_ARGUMENT with the C worker's message. The request is read with
 * json_decode and checked as examples/fib/README.md says.
 *
 *   php fib_worker.php [--addr ADDR] [--max N] [--credit N] [--token TOKEN]
 *
 * Prints READY once "fib" is registered; SIGTERM/SIGINT stop it gracefully.
 */

declare(strict_types=1);

require dirname(__DIR__, 3) . '/clients/php/autoload.php';

use Ferry\ErrorCode;
use Ferry\FerryException;
use Ferry\Job;
use Ferry\Worker;

const FIB_DEFAULT_MAX = 10000;
const FIB_MAX_MAX = 1000000;
const FIB_MAX_PAYLOAD = 4096;
const FIB_MAX_REPLY = 16 * 1024 * 1024;

/** The numbers computed so far, their text joined by spaces, and where each ends. */
final class FibTable
{
    private string $text = '';
    /** @var list<int> */
    private array $ends = [];
    private mixed $a;
    private mixed $b;
    private bool $gmp;

    public function __construct()
    {
        $this->gmp = extension_loaded('gmp');
        if (!$this->gmp && !extension_loaded('bcmath')) {
            throw new RuntimeException('fib_worker.php needs php-gmp or php-bcmath');
        }
    }

    /** The text of F0 .. F(n-1). */
    public function text(int $n): string
    {
        for ($k = count($this->ends); $k < $n; $k++) {
            if ($k < 2) {
                $v = $this->gmp ? gmp_init($k) : (string)$k;
                $this->a = $k === 0 ? $v : $this->a;
                $this->b = $v;
                $s = (string)$k;
            } else {
                $next = $this->gmp ? gmp_add($this->a, $this->b) : bcadd($this->a, $this->b, 0);
                $this->a = $this->b;
                $this->b = $next;
                $s = $this->gmp ? gmp_strval($next) : $next;
            }
            $this->text .= ($k > 0 ? ' ' : '') . $s;
            $this->ends[] = strlen($this->text);
        }
        return substr($this->text, 0, $this->ends[$n - 1]);
    }
}

/** fib_format_size() of the C worker: an upper bound on the reply's size. */
function fib_format_size(int $n): int
{
    $digits = 0.20898764024997873 * (float)$n * (float)$n / 2.0 + 2.0 * (float)$n;
    return (int)$digits + 64;
}

const FIB_NOT_OBJECT = 'payload must be a JSON object like {"n": 10}';

/**
 * What the C worker's parser refuses but json_decode takes (NUL in a key),
 * and a number beyond double range (INF): [refused, overflow].
 *
 * @return array{bool, bool}
 */
function fib_faults(mixed $root): array
{
    $refused = $overflow = false;
    $stack = [$root];
    while ($stack !== []) {
        $v = array_pop($stack);
        if (is_float($v)) {
            $overflow = $overflow || is_infinite($v);
        } elseif (is_array($v) || $v instanceof stdClass) {
            foreach ($v as $k => $x) {
                $refused = $refused || str_contains((string)$k, "\0");
                $stack[] = $x;
            }
        }
    }
    return [$refused, $overflow];
}

/** The n asked for, or why the payload is refused (examples/fib/README.md). */
function fib_parse_n(string $payload, int $max): int|string
{
    $range = "n must be an integer between 1 and $max";
    if (strlen($payload) > FIB_MAX_PAYLOAD) {
        return 'payload larger than ' . FIB_MAX_PAYLOAD . ' bytes';
    }
    try {
        // A payload of FIB_MAX_PAYLOAD bytes nests at most that deep.
        $root = json_decode($payload, false, FIB_MAX_PAYLOAD + 1, JSON_THROW_ON_ERROR);
    } catch (JsonException) {
        return FIB_NOT_OBJECT;
    }
    [$refused, $overflow] = fib_faults($root);
    if ($refused) {
        return FIB_NOT_OBJECT;
    }
    if ($overflow) {
        return $range;
    }
    if (!$root instanceof stdClass) {
        return FIB_NOT_OBJECT;
    }
    // Every number counts by its value: 10, 10.0 and 1e1 are all n = 10.
    $n = property_exists($root, 'n') ? $root->n : null;
    if (!(is_int($n) || is_float($n)) || $n < 1 || $n > $max || floor($n) != $n) {
        return $range;
    }
    return (int)$n;
}

function fib_usage($out): void
{
    fwrite($out, "usage: fib_worker.php [--addr ADDR] [--max N] [--credit N] [--token TOKEN]\n\n"
        . "Serves \"fib\": {\"n\": N} -> {\"N\": N, \"result\": \"0 1 1 2 ...\"},\n"
        . "the first N Fibonacci numbers, exact.\n\n"
        . "  --addr ADDR  ferryd address (default \$FERRY_ADDR, else 127.0.0.1:7700)\n"
        . "  --max N      largest n accepted (default " . FIB_DEFAULT_MAX . ")\n"
        . "  --credit N   requests taken at once, 1..65535 (default 16)\n"
        . "  --token TOKEN  access token sent in HELLO (default \$FERRY_TOKEN)\n");
}

function fib_arg(string $v, int $lo, int $hi): ?int
{
    if (!preg_match('/^[0-9]+$/', $v) || strlen($v) > 10 || (int)$v < $lo || (int)$v > $hi) {
        return null;
    }
    return (int)$v;
}

function fib_main(array $argv): int
{
    $addr = null;
    $max = FIB_DEFAULT_MAX;
    $credit = 16;
    $opts = [];
    for ($i = 1; $i < count($argv); $i++) {
        $a = $argv[$i];
        if ($a === '--help' || $a === '-h') {
            fib_usage(STDOUT);
            return 0;
        }
        $v = $argv[$i + 1] ?? null;
        if ($v === null) {
            fib_usage(STDERR);
            return 2;
        }
        $i++;
        if ($a === '--addr') {
            $addr = $v;
        } elseif ($a === '--token') {
            $opts['token'] = $v;
        } elseif ($a === '--max') {
            if (($max = fib_arg($v, 1, FIB_MAX_MAX)) === null) {
                fwrite(STDERR, 'fib_worker: --max must be 1..' . FIB_MAX_MAX . "\n");
                return 2;
            }
        } elseif ($a === '--credit') {
            if (($credit = fib_arg($v, 1, 65535)) === null) {
                fwrite(STDERR, "fib_worker: --credit must be 1..65535\n");
                return 2;
            }
        } else {
            fib_usage(STDERR);
            return 2;
        }
    }
    $opts['name'] = 'fib-php/' . getmypid();
    $table = new FibTable();
    try {
        $w = new Worker($addr, $opts);
    } catch (FerryException $e) {
        fwrite(STDERR, "fib_worker: address '" . ($addr ?? '(default)') . "': {$e->getMessage()}\n");
        return 2;
    }
    $w->register('fib', static function (Job $job) use ($table, $max): string {
        $n = fib_parse_n($job->payload, $max);
        if (is_string($n)) {
            throw new Ferry\Exception\InvalidArgumentException($n);
        }
        if (fib_format_size($n) > FIB_MAX_REPLY) {
            throw new Ferry\Exception\InvalidArgumentException(
                "the result for n=$n is larger than a frame may be");
        }
        return '{"N": ' . $n . ', "result": "' . $table->text($n) . '"}';
    }, $credit);
    $w->on('ready', static function (): void {
        fwrite(STDOUT, "READY\n");
        fflush(STDOUT);
    });
    try {
        $w->run();
    } catch (FerryException $e) {
        fwrite(STDERR, "fib_worker: {$e->getErrorName()}: {$e->getMessage()}\n");
        return 1;
    }
    return 0;
}

exit(fib_main($argv));
