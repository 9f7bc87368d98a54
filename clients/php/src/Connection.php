<?php
// SPDX-License-Identifier: MIT
/*
 * Connection.php - one ferry connection: a stream socket (TCP or unix),
 * the HELLO / HELLO_OK handshake, writing frames within a deadline and
 * reading whole frames with stream_select on the time left. Client and
 * Worker both sit on it; it knows nothing of calls or jobs.
 *
 * A persistent connection (STREAM_CLIENT_PERSISTENT, for php-fpm) outlives
 * the page view that opened it. PHP hands the same socket to the next page
 * view of the same process, and that socket has already said HELLO: the
 * stream's position (ftell) is then past zero, while a socket PHP opened
 * afresh (first use, or the old one was found dead) starts at zero. The
 * handshake's answer is kept in a static for the rest of the page view
 * and, under a web SAPI, in a small file per process and address (statics
 * do not survive the page view) so the next page view knows ferryd's
 * limits without asking again.
 */

declare(strict_types=1);

namespace Ferry;

use Ferry\Exception\ConnectionException;
use Ferry\Exception\InvalidArgumentException;

final class Connection
{
    /** The protocol version this client sends in HELLO (decisions: 2). */
    public const PROTOCOL_VERSION = 2;

    /** The smallest max_frame a client may announce: 4 + 1024, the largest ERROR body. */
    public const MIN_MAX_FRAME = 1028;

    /** Assumed when HELLO_OK (version 1) or a lost state file does not say. */
    public const FALLBACK_DEFAULT_DEADLINE_MS = 5000;
    public const FALLBACK_MAX_DEADLINE_MS = 60000;

    /** @var resource|null */
    public $stream;
    /** HELLO_OK's fields: version, heartbeat_ms, max_frame, name, max_deadline_ms, default_deadline_ms. */
    public array $hello = [];
    /** True when this socket was handed over by PHP already greeted (no HELLO sent now). */
    public bool $reused = false;
    /** Largest frame body this side accepts (what it announced, else ferryd's max_frame). */
    public int $readMax = Codec::DEFAULT_MAX_BODY;
    /** hrtime in ms of the last frame sent and the last bytes received. */
    public float $lastSendMs = 0.0;
    public float $lastRecvMs = 0.0;
    /** @internal whether some call in flight may still be sent again (Client) */
    public bool $resendable = false;
    /** @internal whether a Client counted this handshake in connects() */
    public bool $counted = false;
    /** Whether a frame is half written (the socket cannot be reused then). */
    public bool $writing = false;

    /** @var array<int, Call> calls in flight on this connection, by id (Client's). */
    public array $calls = [];
    /** The next request id; starts at random so that a late reply meant for
     *  an earlier page view on this persistent socket matches nothing. */
    public int $nextId;

    private string $rbuf = '';
    /** Where the next frame starts in rbuf (frames taken are not copied out one by one). */
    private int $rpos = 0;
    private bool $eof = false;

    /** @var array<string, Connection> open persistent connections of this process */
    private static array $live = [];
    private static bool $hooked = false;

    /**
     * @param resource $stream
     */
    private function __construct($stream, public readonly Address $address, public readonly bool $persistent,
                                 private readonly string $stateKey)
    {
        $this->stream = $stream;
        $this->nextId = random_int(1, 1 << 48);
    }

    public static function nowMs(): float
    {
        return hrtime(true) / 1e6;
    }

    /**
     * Connects and says HELLO (or takes over an already greeted persistent
     * socket). Throws ConnectionException when ferryd cannot be reached or
     * closes, the ERROR ferryd answered HELLO with (UnauthorizedException,
     * VersionException, ...), or DeadlineException past $deadlineAtMs.
     *
     * @param array{role?: int, heartbeat_ms?: int, name?: string, token?: string, max_frame?: int} $hello
     */
    public static function open(Address $address, array $hello, bool $persistent, float $deadlineAtMs): self
    {
        $role = $hello['role'] ?? Frame::ROLE_CALLER;
        $heartbeat = $hello['heartbeat_ms'] ?? 0;
        $name = $hello['name'] ?? 'php';
        $token = $hello['token'] ?? '';
        $maxFrame = $hello['max_frame'] ?? 0;
        if (strlen($name) > Codec::MAX_NAME || strlen($token) > Codec::MAX_NAME) {
            throw new InvalidArgumentException('name and token must be at most 255 bytes');
        }
        if ($maxFrame !== 0 && ($maxFrame < self::MIN_MAX_FRAME || $maxFrame > 0xffffffff)) {
            // ferryd refuses less: its largest ERROR must fit.
            throw new InvalidArgumentException('max_frame must be 0 (ferryd\'s limit) or at least '
                                               . self::MIN_MAX_FRAME);
        }
        $stateKey = md5(implode("\0", [$address->url, $role, $heartbeat, $name, $token, $maxFrame,
                                        self::PROTOCOL_VERSION]));
        // PHP keys a persistent socket by its URL alone: one per address
        // and process. Another client of this process holding it with other
        // credentials (token, name, ...) gets a connection of its own.
        $live = self::$live[$address->url] ?? null;
        if ($persistent && $live !== null && $live->isOpen()) {
            if ($live->stateKey === $stateKey) {
                return $live;
            }
            $persistent = false;
        }
        $flags = STREAM_CLIENT_CONNECT | ($persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $timeout = max(0.001, ($deadlineAtMs - self::nowMs()) / 1000.0);
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($address->url, $errno, $errstr, $timeout, $flags);
        if ($stream === false) {
            throw new ConnectionException("cannot connect to '{$address->text}': "
                                          . ($errstr !== '' ? $errstr : "error $errno"));
        }
        $c = new self($stream, $address, $persistent, $stateKey);
        stream_set_read_buffer($stream, 0);
        stream_set_write_buffer($stream, 0);
        stream_set_blocking($stream, false);
        if ($persistent && ftell($stream) > 0) {
            $state = self::loadState($address->url, $stateKey);
            if ($state !== null) {
                $c->adopt($state, $maxFrame);
                self::keep($c);
                return $c;
            }
            // Greeted with other credentials, or by someone we cannot vouch
            // for: start afresh.
            $c->close();
            $stream = @stream_socket_client($address->url, $errno, $errstr, $timeout, $flags);
            if ($stream === false) {
                throw new ConnectionException("cannot connect to '{$address->text}': $errstr");
            }
            $c = new self($stream, $address, $persistent, $stateKey);
            stream_set_read_buffer($stream, 0);
            stream_set_write_buffer($stream, 0);
            stream_set_blocking($stream, false);
        }
        try {
            $c->handshake($role, $heartbeat, $name, $token, $maxFrame, $deadlineAtMs);
        } catch (\Throwable $e) {
            $c->close();
            throw $e;
        }
        if ($persistent) {
            self::saveState($address->url, $stateKey, $c->hello);
            self::keep($c);
        }
        return $c;
    }

    /**
     * Remembers a persistent connection for this process, and makes sure a
     * page view that ends with a call in flight or half a frame read or
     * written (a fatal error, max_execution_time) closes the socket instead
     * of handing a confused one to the next page view.
     */
    private static function keep(self $c): void
    {
        self::$live[$c->address->url] = $c;
        if (!self::$hooked) {
            self::$hooked = true;
            register_shutdown_function(static function (): void {
                foreach (self::$live as $conn) {
                    if ($conn->calls !== [] || $conn->writing || $conn->hasPartialInput()) {
                        $conn->close();
                    }
                }
                self::$live = [];
                self::$hooked = false;
            });
        }
    }

    private function adopt(array $hello, int $maxFrame): void
    {
        $this->hello = $hello;
        $this->reused = true;
        $this->readMax = $maxFrame > 0 ? $maxFrame : (int)$hello['max_frame'];
        $this->lastSendMs = $this->lastRecvMs = self::nowMs();
    }

    private function handshake(int $role, int $heartbeat, string $name, string $token, int $maxFrame,
                               float $deadlineAtMs): void
    {
        $this->readMax = $maxFrame > 0 ? $maxFrame : Codec::DEFAULT_MAX_BODY;
        $this->send(Codec::hello(self::PROTOCOL_VERSION, $role, $heartbeat, $name, $token, $maxFrame),
                    $deadlineAtMs);
        for (;;) {
            // Until HELLO_OK says ferryd's limit, accept up to 1 GiB (config's top).
            $f = $this->readFrame($deadlineAtMs, 1 << 30);
            if ($f === null) {
                throw new Exception\DeadlineException("no HELLO_OK from '{$this->address->text}' in time");
            }
            if ($f->type === Frame::HELLO_OK) {
                break;
            }
            if ($f->type === Frame::ERROR) {
                throw ErrorCode::exception($f->fields['code'], $f->fields['message']);
            }
            if ($f->type !== Frame::PING) {
                throw new Exception\ProtoException('expected HELLO_OK, got ' . $f->typeName());
            }
        }
        $h = $f->fields;
        $h['max_deadline_ms'] ??= self::FALLBACK_MAX_DEADLINE_MS;
        $h['default_deadline_ms'] ??= self::FALLBACK_DEFAULT_DEADLINE_MS;
        $this->hello = $h;
        $this->lastRecvMs = self::nowMs();
        if ($maxFrame === 0) {
            $this->readMax = $h['max_frame'];
        }
    }

    /** ferryd's largest body it accepts from us (HELLO_OK max_frame). */
    public function maxFrame(): int
    {
        return (int)($this->hello['max_frame'] ?? Codec::DEFAULT_MAX_BODY);
    }

    public function isOpen(): bool
    {
        return $this->stream !== null && !$this->eof;
    }

    /**
     * Writes all of $bytes by $deadlineAtMs. Throws ConnectionException on a
     * write error (the connection is closed) and DeadlineException when the
     * socket would not take it in time (closed too: half a frame is out).
     */
    public function send(string $bytes, float $deadlineAtMs): void
    {
        if ($this->stream === null) {
            throw new ConnectionException("connection to '{$this->address->text}' is closed");
        }
        $this->writing = true;
        $off = 0;
        $len = strlen($bytes);
        while ($off < $len) {
            // At most 1 MiB a write: a partial write then copies little.
            $n = @fwrite($this->stream, $off === 0 && $len <= 1048576 ? $bytes : substr($bytes, $off, 1048576));
            if ($n === false) {
                $this->close();
                throw new ConnectionException("connection to '{$this->address->text}' lost while writing");
            }
            $off += $n;
            if ($off < $len) {
                $left = $deadlineAtMs - self::nowMs();
                if ($left <= 0) {
                    $this->close();
                    throw new Exception\DeadlineException('deadline passed while writing the request');
                }
                // Read while waiting: ferryd stops reading a peer whose
                // answers pile up unread, so both sides would wait forever.
                $r = [$this->stream];
                $w = [$this->stream];
                $e = null;
                $n = @stream_select($r, $w, $e, 0, (int)min($left * 1000, 1000000));
                if ($n === false && !$this->interrupted()) {
                    $this->close();
                    throw new ConnectionException("connection to '{$this->address->text}' failed");
                }
                if ($n > 0 && $r !== [] && !$this->fill()) {
                    $this->close();
                    throw new ConnectionException("connection to '{$this->address->text}' closed by ferryd");
                }
            }
        }
        $this->writing = false;
        $this->lastSendMs = self::nowMs();
    }

    /**
     * The next whole frame, waiting until $deadlineAtMs at most (now or in
     * the past = only what is already there); null when none came in time.
     * Throws ConnectionException when ferryd closed, and the codec's
     * FerryException (PROTO, TOO_BIG, ...) for a bad frame; the connection
     * is closed in both cases.
     */
    public function readFrame(float $deadlineAtMs, ?int $max = null): ?Frame
    {
        for (;;) {
            if ($this->rpos < strlen($this->rbuf)) {
                try {
                    $r = Codec::decode($this->rbuf, $max ?? $this->readMax, $this->rpos);
                } catch (FerryException $e) {
                    $this->close();
                    throw $e;
                }
                if ($r !== null) {
                    $this->rpos += $r[1];
                    if ($this->rpos === strlen($this->rbuf)) {
                        $this->rbuf = '';
                        $this->rpos = 0;
                    }
                    return $r[0];
                }
                // Keep only the partial frame before reading more.
                if ($this->rpos > 0) {
                    $this->rbuf = substr($this->rbuf, $this->rpos);
                    $this->rpos = 0;
                }
            }
            if ($this->stream === null || $this->eof) {
                $this->close();
                throw new ConnectionException("connection to '{$this->address->text}' closed by ferryd");
            }
            // Wait for the socket (or only look, when the time is up), then
            // read: two system calls, and a readable socket that gives
            // nothing is ferryd's close.
            $left = $deadlineAtMs - self::nowMs();
            $usec = $left > 0 ? (int)min($left * 1000, 3600e6) : 0;
            $r = [$this->stream];
            $w = null;
            $e = null;
            $n = @stream_select($r, $w, $e, intdiv($usec, 1000000), $usec % 1000000);
            if ($n === false) {
                if ($this->interrupted()) {
                    return null; // a signal: let the caller look at its flags
                }
                $this->close();
                throw new ConnectionException("connection to '{$this->address->text}' failed");
            }
            if ($n === 0) {
                return null;
            }
            $chunk = @fread($this->stream, 262144);
            if ($chunk === false) {
                $this->close();
                throw new ConnectionException("connection to '{$this->address->text}' failed");
            }
            if ($chunk === '') {
                $this->eof = true;
                continue;
            }
            if ($this->rpos === strlen($this->rbuf)) {
                $this->rbuf = $chunk;
                $this->rpos = 0;
            } else {
                $this->rbuf .= $chunk;
            }
            $this->lastRecvMs = self::nowMs();
        }
    }

    /** Whether bytes of a frame were read but the frame is not whole yet. */
    public function hasPartialInput(): bool
    {
        return $this->rpos < strlen($this->rbuf);
    }

    /** stream_select fails on EINTR when a signal arrives: not an error. */
    private function interrupted(): bool
    {
        $err = error_get_last();
        error_clear_last();
        return $err !== null && stripos($err['message'], 'interrupted') !== false;
    }

    /** The socket to wait on with stream_select (Worker's loop). */
    public function stream()
    {
        return $this->stream;
    }

    /** Reads whatever is there now without waiting; false at EOF. */
    public function fill(): bool
    {
        if ($this->stream === null) {
            return false;
        }
        for (;;) {
            $chunk = @fread($this->stream, 262144);
            if ($chunk === false) {
                return false;
            }
            if ($chunk === '') {
                if (feof($this->stream)) {
                    $this->eof = true;
                    return $this->hasPartialInput();
                }
                return true;
            }
            $this->rbuf .= $chunk;
            $this->lastRecvMs = self::nowMs();
        }
    }

    /** Closes the socket (a persistent one too) and forgets its state. */
    public function close(): void
    {
        if ($this->stream !== null) {
            @fclose($this->stream);
            $this->stream = null;
            if ($this->persistent) {
                if ((self::$live[$this->address->url] ?? null) === $this) {
                    unset(self::$live[$this->address->url]);
                    self::dropState($this->address->url);
                }
            }
        }
        $this->eof = true;
        $this->rbuf = '';
        $this->rpos = 0;
    }

    // ---- handshake state across page views (web SAPIs only)

    /** @var array<string, array> handshake state of this page view, by state key */
    private static array $states = [];

    /** The state file of $url for this process; with $create, its folder is made (0700) and checked. */
    private static function statePath(string $url, bool $create = false): ?string
    {
        if (PHP_SAPI === 'cli' || PHP_SAPI === 'phpdbg') {
            return null;
        }
        $dir = sys_get_temp_dir() . '/ferry-php-' . self::uid();
        if ($create) {
            if (!is_dir($dir) && !@mkdir($dir, 0700) && !is_dir($dir)) {
                return null;
            }
            if (@fileowner($dir) !== self::uid() || (@fileperms($dir) & 0077) !== 0) {
                return null; // someone else's folder: keep nothing there
            }
        }
        return $dir . '/' . getmypid() . '-' . md5($url) . '.json';
    }

    private static function uid(): int
    {
        return function_exists('posix_geteuid') ? posix_geteuid() : getmyuid();
    }

    /** Remembers what the handshake on $url's persistent socket said, and with which credentials. */
    private static function saveState(string $url, string $key, array $hello): void
    {
        $state = ['key' => $key, 'hello' => $hello];
        self::$states[$url] = $state;
        $path = self::statePath($url, true);
        if ($path !== null) {
            @file_put_contents($path, json_encode($state), LOCK_EX);
            self::pruneStates(dirname($path));
        }
    }

    /** Removes the state files of processes that are gone (FPM recycles its children). */
    private static function pruneStates(string $dir): void
    {
        if (!function_exists('posix_kill')) {
            return;
        }
        foreach (glob($dir . '/*.json') ?: [] as $f) {
            $pid = (int)basename($f);
            if ($pid > 0 && $pid !== getmypid() && !@posix_kill($pid, 0) && posix_get_last_error() === 3) {
                @unlink($f);
            }
        }
    }

    /** HELLO_OK of $url's persistent socket when it was greeted with the credentials $key; else null. */
    private static function loadState(string $url, string $key): ?array
    {
        $state = self::$states[$url] ?? null;
        if ($state === null) {
            // One open, fstat and read a page view: the file must be ours.
            $path = self::statePath($url);
            $f = $path !== null ? @fopen($path, 'rb') : false;
            if ($f === false) {
                return null;
            }
            $st = fstat($f);
            $text = $st !== false && $st['uid'] === self::uid() ? fread($f, 4096) : false;
            fclose($f);
            $state = is_string($text) ? json_decode($text, true) : null;
            if (!is_array($state) || !isset($state['key'], $state['hello']['max_frame'],
                                             $state['hello']['default_deadline_ms'])) {
                return null;
            }
            self::$states[$url] = $state;
        }
        return $state['key'] === $key ? $state['hello'] : null;
    }

    private static function dropState(string $url): void
    {
        unset(self::$states[$url]);
        $path = self::statePath($url);
        if ($path !== null) {
            @unlink($path);
        }
    }
}
