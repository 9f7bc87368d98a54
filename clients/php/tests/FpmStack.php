<?php
// SPDX-License-Identifier: MIT
/*
 * FpmStack.php - a real PHP frontend, started by a test as the current
 * user in a temp dir: ferryd (unix socket), the C fib worker, Debian's
 * php-fpm8.2 (-y its own config, -F, pid and logs in the temp dir, a unix
 * socket) and nginx (-c its own config, a free loopback port), and a page,
 * fib.php, that calls "fib" through Ferry\Client: persistent by default,
 * a fresh connection per request with ?fresh=1. Never the system services.
 * Used by FpmTest.php and bench/clients/php_fpm_bench.sh.
 */

declare(strict_types=1);

final class FpmStack
{
    public readonly string $dir;
    public readonly int $port;
    public Ferryd $ferryd;
    public ?WorkerProc $fib = null;
    public ?Proc $fpm = null;
    public ?Proc $nginx = null;

    public function __construct(int $children = 2, int $maxRequests = 0)
    {
        foreach (['/usr/sbin/nginx', '/usr/sbin/php-fpm8.2'] as $b) {
            if (!is_executable($b)) {
                throw new RuntimeException("$b missing (apt-get install nginx php8.2-fpm)");
            }
        }
        $this->dir = TestEnv::tempDir('ferry-fpm-');
        $this->port = TestEnv::freePort();
        $this->ferryd = new Ferryd([], $this->dir . '/ferryd');
        try {
            $this->startFib();
            $this->writeConfigs($children, $maxRequests);
            $fpm = ['/usr/sbin/php-fpm8.2', '-y', "{$this->dir}/php-fpm.conf", '-F'];
            if (getenv('FERRY_FPM_PRELOAD') === '1') {
                // Ferry's classes compiled and linked once at FPM's start (README).
                array_push($fpm, '-d', 'opcache.preload=' . dirname(__DIR__) . '/preload.php',
                           '-d', 'opcache.preload_user=' . posix_getpwuid(posix_geteuid())['name']);
            }
            if (posix_geteuid() === 0) {
                $fpm[] = '-R'; // the current user is root here: FPM must be told it may run so
            }
            $this->fpm = new Proc($fpm, $this->dir, 'php-fpm');
            $this->nginx = new Proc(['/usr/sbin/nginx', '-c', "{$this->dir}/nginx.conf", '-p', "{$this->dir}/",
                                     '-e', "{$this->dir}/nginx-error.log"], $this->dir, 'nginx');
            $ok = TestEnv::waitFor(fn () => file_exists("{$this->dir}/php-fpm.sock") && $this->listening(), 10000);
            if (!$ok) {
                throw new RuntimeException("nginx/php-fpm not up:\n" . $this->logs());
            }
        } catch (Throwable $e) {
            fwrite(STDERR, $this->logs());
            $this->cleanup();
            throw $e;
        }
    }

    private function startFib(): void
    {
        $this->fib = new WorkerProc([TestEnv::bin('fib_worker'), '--addr', $this->ferryd->unix], $this->dir);
    }

    private function listening(): bool
    {
        $s = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $e, $es, 0.2);
        if ($s === false) {
            return false;
        }
        fclose($s);
        return true;
    }

    private function writeConfigs(int $children, int $maxRequests): void
    {
        $d = $this->dir;
        @mkdir("$d/www");
        @mkdir("$d/tmp");
        $autoload = dirname(__DIR__) . '/autoload.php';
        file_put_contents("$d/www/fib.php", <<<PHP
<?php
declare(strict_types=1);
require '$autoload';
\$t0 = hrtime(true);
\$persistent = (\$_GET['fresh'] ?? '') !== '1';
\$ferry = new Ferry\\Client(getenv('FERRY_ADDR'), ['persistent' => \$persistent,
                                                   'name' => 'fpm-' . (\$_GET['name'] ?? 'page')]);
if (isset(\$_GET['abandon'])) {
    // A page that leaves a call in flight: the socket must not be passed on.
    \$ferry->send('fib', '{"n": 5}');
    header('X-Ferry-Pid: ' . getmypid());
    echo "abandoned\\n";
    exit;
}
try {
    \$reply = \$ferry->call('fib', json_encode(['n' => (int)(\$_GET['n'] ?? 10)]), ['deadline_ms' => 3000]);
} catch (Ferry\\FerryException \$e) {
    http_response_code(502);
    header('X-Ferry-Error: ' . \$e->getErrorName());
    echo \$e->getErrorName(), ': ', \$e->getMessage(), "\\n";
    exit;
}
header('X-Ferry-Us: ' . intdiv(hrtime(true) - \$t0, 1000)); // the client's part of the view
header('X-Ferry-Pid: ' . getmypid());
header('X-Ferry-Connects: ' . \$ferry->connects());
header('X-Ferry-Reused: ' . (\$ferry->isReused() ? '1' : '0'));
header('Content-Type: application/json');
echo \$reply;
if (!\$persistent) {
    \$ferry->close();
}
PHP);
        // The same page without ferry, for the bench's baseline.
        file_put_contents("$d/www/noferry.php", <<<'PHP'
<?php
header('Content-Type: application/json');
echo '{"N": 10, "result": "0 1 1 2 3 5 8 13 21 34"}';
PHP);
        $addr = $this->ferryd->unix;
        $user = posix_getpwuid(posix_geteuid())['name'];
        $group = posix_getgrgid(posix_getegid())['name'];
        file_put_contents("$d/php-fpm.conf", <<<INI
[global]
pid = $d/php-fpm.pid
error_log = $d/php-fpm.log
daemonize = no

[www]
user = $user
group = $group
listen = $d/php-fpm.sock
pm = static
pm.max_children = $children
pm.max_requests = $maxRequests
clear_env = yes
env[FERRY_ADDR] = $addr
catch_workers_output = yes
php_admin_value[sys_temp_dir] = $d/tmp
php_admin_value[error_log] = $d/php-errors.log
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
INI);
        // As root, nginx would run its workers as nobody: keep them the current user.
        $nginxUser = posix_geteuid() === 0 ? "user $user $group;" : '';
        file_put_contents("$d/nginx.conf", <<<CONF
$nginxUser
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/nginx-body;
    fastcgi_temp_path $d/nginx-fastcgi;
    proxy_temp_path $d/nginx-proxy;
    uwsgi_temp_path $d/nginx-uwsgi;
    scgi_temp_path $d/nginx-scgi;
    server {
        listen 127.0.0.1:{$this->port};
        root $d/www;
        location ~ \\.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$d/php-fpm.sock;
        }
    }
}
CONF);
    }

    public function url(string $query = '', string $page = 'fib.php'): string
    {
        return "http://127.0.0.1:{$this->port}/$page" . ($query !== '' ? "?$query" : '');
    }

    /** One page view with curl: [status, headers (lowercase name => value), body]. */
    public function get(string $query = '', string $page = 'fib.php'): array
    {
        $out = [];
        exec('curl -s -m 10 -D - ' . escapeshellarg($this->url($query, $page)), $out, $rc);
        if ($rc !== 0) {
            return [0, [], "curl exit $rc"];
        }
        $text = implode("\n", $out);
        [$head, $body] = array_pad(explode("\n\n", str_replace("\r", '', $text), 2), 2, '');
        $lines = explode("\n", $head);
        $status = (int)(explode(' ', $lines[0])[1] ?? 0);
        $h = [];
        foreach (array_slice($lines, 1) as $l) {
            if (str_contains($l, ':')) {
                [$k, $v] = explode(':', $l, 2);
                $h[strtolower(trim($k))] = trim($v);
            }
        }
        return [$status, $h, $body];
    }

    /** ferryd's caller connections now (/v1/stats). */
    public function callers(): ?int
    {
        $s = $this->ferryd->httpJson('/v1/stats');
        return $s['connections']['callers'] ?? null;
    }

    /** Restarts ferryd on the same socket; the fib worker reconnects by itself. */
    public function restartFerryd(): void
    {
        $this->ferryd = $this->ferryd->restart();
    }

    public function logs(): string
    {
        $s = '';
        foreach (glob($this->dir . '/*.{log,err}', GLOB_BRACE) as $f) {
            $s .= "== $f\n" . substr((string)file_get_contents($f), -3000);
        }
        return $s;
    }

    public function stop(): void
    {
        $this->nginx?->stop();
        $this->fpm?->stop();
        $this->fib?->stop();
        $this->ferryd->stop();
    }

    public function cleanup(): void
    {
        $this->stop();
        TestEnv::rmTree($this->dir);
    }
}
