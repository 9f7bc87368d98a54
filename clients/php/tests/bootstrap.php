<?php
// SPDX-License-Identifier: MIT
/*
 * bootstrap.php - what the PHPUnit tests share: the client's autoloader,
 * and helpers that start real processes (ferryd from $FERRY_BIN, default
 * build/; workers) on free ports and unix sockets in temp dirs, wait until
 * they are ready, and stop them by PID.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';

final class TestEnv
{
    public static function root(): string
    {
        return dirname(__DIR__, 3);
    }

    public static function bin(string $name): string
    {
        $dir = getenv('FERRY_BIN') ?: self::root() . '/build';
        $path = realpath($dir) . '/' . $name;
        if (!is_executable($path)) {
            throw new RuntimeException("binary not built: $path (set FERRY_BIN)");
        }
        return $path;
    }

    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int)substr($name, strrpos($name, ':') + 1);
    }

    public static function tempDir(string $prefix): string
    {
        $d = sys_get_temp_dir() . '/' . $prefix . bin2hex(random_bytes(5));
        mkdir($d, 0700);
        return $d;
    }

    public static function rmTree(string $dir): void
    {
        if (!is_dir($dir)) {
            return;
        }
        foreach (scandir($dir) as $f) {
            if ($f === '.' || $f === '..') {
                continue;
            }
            $p = "$dir/$f";
            is_dir($p) && !is_link($p) ? self::rmTree($p) : @unlink($p);
        }
        @rmdir($dir);
    }

    /** Waits until $fn() is true, at most $ms; returns its last value. */
    public static function waitFor(callable $fn, int $ms = 5000): mixed
    {
        $until = microtime(true) + $ms / 1000;
        do {
            $v = $fn();
            if ($v) {
                return $v;
            }
            usleep(20000);
        } while (microtime(true) < $until);
        return $fn();
    }
}

/** A child process with its output in files; stopped by PID. */
class Proc
{
    /** @var resource|null */
    protected $proc;
    public int $pid = 0;
    public readonly string $outPath;
    public readonly string $errPath;

    public function __construct(public readonly array $cmd, string $dir, string $name, ?array $env = null)
    {
        $this->outPath = "$dir/$name.out";
        $this->errPath = "$dir/$name.err";
        $this->proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->outPath, 'w'],
                                       2 => ['file', $this->errPath, 'w']], $pipes, $dir, $env);
        if (!is_resource($this->proc)) {
            throw new RuntimeException('cannot start ' . implode(' ', $cmd));
        }
        $this->pid = proc_get_status($this->proc)['pid'];
    }

    public function out(): string
    {
        return (string)@file_get_contents($this->outPath);
    }

    public function err(): string
    {
        return (string)@file_get_contents($this->errPath);
    }

    public function running(): bool
    {
        return $this->proc !== null && proc_get_status($this->proc)['running'];
    }

    public function signal(int $sig): void
    {
        if ($this->running()) {
            posix_kill($this->pid, $sig);
        }
    }

    /** Waits for the exit; its status, or null after $ms. */
    public function wait(int $ms): ?int
    {
        $until = microtime(true) + $ms / 1000;
        while ($this->proc !== null) {
            $st = proc_get_status($this->proc);
            if (!$st['running']) {
                proc_close($this->proc);
                $this->proc = null;
                return $this->status = $st['signaled'] ? 128 + $st['termsig'] : $st['exitcode'];
            }
            if (microtime(true) >= $until) {
                return null;
            }
            usleep(10000);
        }
        return $this->status;
    }

    public ?int $status = null;

    /** SIGTERM, SIGKILL after $ms; the exit status. */
    public function stop(int $ms = 5000): ?int
    {
        if ($this->proc === null) {
            return $this->status;
        }
        $this->signal(SIGTERM);
        $st = $this->wait($ms);
        if ($st === null) {
            $this->signal(SIGKILL);
            $st = $this->wait(5000);
        }
        return $st;
    }
}

/** ferryd on a free loopback port and a unix socket in a fresh temp dir. */
final class Ferryd extends Proc
{
    public readonly string $dir;
    public readonly int $port;
    public readonly string $tcp;
    public readonly string $unix;
    public readonly int $httpPort;

    public function __construct(public readonly array $args = [], ?string $dir = null, ?int $port = null,
                                ?int $httpPort = null)
    {
        $this->dir = $dir ?? TestEnv::tempDir('ferry-php-test-');
        if (!is_dir($this->dir)) {
            mkdir($this->dir, 0700, true);
        }
        $this->port = $port ?? TestEnv::freePort();
        $this->httpPort = $httpPort ?? TestEnv::freePort();
        $this->tcp = "127.0.0.1:{$this->port}";
        $this->unix = "unix:{$this->dir}/ferryd.sock";
        parent::__construct(array_merge([TestEnv::bin('ferryd'), '--listen', $this->tcp, '--listen', $this->unix,
                                         '--http', "127.0.0.1:{$this->httpPort}", '--data-dir', $this->dir],
                                        $args), $this->dir, 'ferryd-' . bin2hex(random_bytes(3)));
        $ok = TestEnv::waitFor(function (): bool {
            if (!$this->running()) {
                throw new RuntimeException("ferryd exited at start:\n" . $this->err() . $this->out());
            }
            return str_contains($this->err() . $this->out(), ' ready');
        }, 10000);
        if (!$ok) {
            $this->stop();
            throw new RuntimeException("ferryd not ready:\n" . $this->err());
        }
    }

    /** A new ferryd on the same port, socket and folder (a restart). */
    public function restart(): self
    {
        $this->stop();
        $this->checkSanitizer($this->err() . $this->out());
        return new self($this->args, $this->dir, $this->port, $this->httpPort);
    }

    private function checkSanitizer(string $text): void
    {
        foreach (['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'] as $mark) {
            if (($i = strpos($text, $mark)) !== false) {
                throw new RuntimeException("ferryd sanitizer report:\n" . substr($text, max(0, $i - 200), 3000));
            }
        }
    }

    /** GET on ferryd's HTTP side, decoded JSON. */
    public function httpJson(string $path): mixed
    {
        $ctx = stream_context_create(['http' => ['timeout' => 5, 'ignore_errors' => true]]);
        $body = @file_get_contents("http://127.0.0.1:{$this->httpPort}$path", false, $ctx);
        return $body === false ? null : json_decode($body, true);
    }

    /** Stops ferryd, removes its folder; fails on a sanitizer report in its output (ASan build). */
    public function cleanup(): void
    {
        $this->stop();
        $text = $this->err() . $this->out();
        TestEnv::rmTree($this->dir);
        $this->checkSanitizer($text);
    }
}

/** A worker process that prints a ready line (READY, or the driver's ready event). */
final class WorkerProc extends Proc
{
    public function __construct(array $cmd, string $dir, string $ready = 'READY', ?array $env = null)
    {
        parent::__construct($cmd, $dir, 'worker-' . bin2hex(random_bytes(3)), $env);
        $ok = TestEnv::waitFor(fn () => str_contains($this->out(), $ready) || !$this->running(), 10000);
        if (!$ok || !$this->running()) {
            $this->stop();
            throw new RuntimeException('worker not ready: ' . implode(' ', $cmd) . "\n" . $this->out() . $this->err());
        }
    }

    /** The JSON event lines printed so far. */
    public function events(): array
    {
        $ev = [];
        foreach (explode("\n", $this->out()) as $line) {
            if ($line !== '' && $line[0] === '{') {
                $ev[] = json_decode($line, true);
            }
        }
        return $ev;
    }
}

/** php conformance/driver.php worker ... */
function php_worker(string $addr, string $dir, array $services, array $extra = []): WorkerProc
{
    $cmd = [PHP_BINARY, dirname(__DIR__) . '/conformance/driver.php', 'worker', '--addr', $addr];
    foreach ($services as $s => $credit) {
        array_push($cmd, '--service', $s, '--credit', (string)$credit);
    }
    return new WorkerProc(array_merge($cmd, $extra), $dir, '"event":"ready"');
}
require __DIR__ . '/FpmStack.php';
