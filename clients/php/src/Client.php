<?php
// SPDX-License-Identifier: MIT
/*
 * Client.php - the caller: synchronous calls to ferry services, several in
 * flight at once when asked (callMany, or send/wait/cancel below it).
 *
 * Built for php-fpm pages: by default the connection is persistent
 * (STREAM_CLIENT_PERSISTENT), one per FPM process and address, greeted
 * once and reused by every later page view of that process without a new
 * HELLO. A persistent socket that ferryd closed meanwhile (it restarted) is
 * replaced at the next call, transparently and once, before the call
 * fails. The client announces heartbeat 0: an idle FPM process cannot
 * ping, and ferryd never times such a connection out.
 *
 *   $ferry = new Ferry\Client('unix:/run/ferry/ferryd.sock');
 *   $reply = $ferry->call('fib', '{"n": 10}', ['deadline_ms' => 500]);
 */

declare(strict_types=1);

namespace Ferry;

use Ferry\Exception\ConnectionException;
use Ferry\Exception\DeadlineException;
use Ferry\Exception\InvalidArgumentException;
use Ferry\Exception\TooBigException;

final class Client
{
    /** Time past ferryd's deadline before the client gives up on its own. */
    public const SLACK_MS = 1000;

    private Address $address;
    private array $hello;
    private bool $persistent;
    private int $defaultDeadlineMs;
    private int $connectTimeoutMs;
    private ?Connection $conn = null;
    private int $connects = 0;

    /**
     * @param string|null $addr "host:port", "[v6]:port" or "unix:/path";
     *                          null: $FERRY_ADDR, else 127.0.0.1:7700
     * @param array{token?: string, name?: string, persistent?: bool,
     *              deadline_ms?: int, connect_timeout_ms?: int,
     *              max_frame?: int, heartbeat_ms?: int} $options
     *        token: sent in HELLO (default $FERRY_TOKEN); name: the
     *        client's name in `ferry services`; persistent: keep the
     *        connection for the next page view (default true);
     *        deadline_ms: default deadline of a call (0 = ferryd's);
     *        connect_timeout_ms: one connect attempt (default 2000);
     *        max_frame: largest reply body accepted (0 = ferryd's limit);
     *        heartbeat_ms: promise to ping (default 0; the client pings
     *        only while it waits inside a call)
     */
    public function __construct(?string $addr = null, array $options = [])
    {
        $this->address = Address::parse($addr);
        $token = $options['token'] ?? getenv('FERRY_TOKEN');
        $this->hello = [
            'role' => Frame::ROLE_CALLER,
            'heartbeat_ms' => (int)($options['heartbeat_ms'] ?? 0),
            'name' => (string)($options['name'] ?? 'php/' . getmypid()),
            'token' => is_string($token) ? $token : '',
            'max_frame' => (int)($options['max_frame'] ?? 0),
        ];
        $this->persistent = (bool)($options['persistent'] ?? true);
        $this->defaultDeadlineMs = (int)($options['deadline_ms'] ?? 0);
        $this->connectTimeoutMs = (int)($options['connect_timeout_ms'] ?? 2000);
    }

    /**
     * Connects now (not at the first call) so a wrong token or a missing
     * ferryd shows at once. One attempt; throws ConnectionException,
     * UnauthorizedException, ...
     */
    public function connect(): void
    {
        if ($this->conn !== null && $this->conn->isOpen()) {
            return;
        }
        $this->open(Connection::nowMs() + $this->connectTimeoutMs, false);
    }

    /**
     * Calls $service with $payload and returns the reply.
     *
     * @param array{deadline_ms?: int, key?: string, idempotent?: bool} $options
     * @throws FerryException the call's error: DeadlineException,
     *         UnknownServiceException, ConnectionException, ...
     */
    public function call(string $service, string $payload = '', array $options = []): string
    {
        return $this->wait($this->send($service, $payload, $options));
    }

    /**
     * Several calls in flight at once on the one connection, matched by id.
     * $calls maps your keys to [service, payload, options] lists or to
     * ['service' => ..., 'payload' => ..., 'deadline_ms' => ..., ...]; the
     * answer maps the same keys to the reply string or the FerryException.
     *
     * @return array<array-key, string|FerryException>
     */
    public function callMany(array $calls): array
    {
        $pending = [];
        $out = [];
        $batch = [];
        $conn = null;
        foreach ($calls as $k => $c) {
            $service = $c['service'] ?? $c[0];
            $payload = $c['payload'] ?? $c[1] ?? '';
            $options = $c[2] ?? $c;
            try {
                // One look at the connection for the whole batch.
                $pending[$k] = $this->prepare((string)$service, (string)$payload, (array)$options, $conn);
                $conn = $this->conn;
                $batch[] = $pending[$k];
            } catch (FerryException $e) {
                $out[$k] = $e;
            }
        }
        if ($batch !== []) {
            $this->transmit($batch);
        }
        foreach ($calls as $k => $unused) {
            if (isset($out[$k])) {
                continue;
            }
            try {
                $out[$k] = $this->wait($pending[$k]);
            } catch (FerryException $e) {
                $out[$k] = $e;
            }
        }
        return $out;
    }

    /**
     * Sends one request and returns at once; wait() gets its answer.
     *
     * @param array{deadline_ms?: int, key?: string, idempotent?: bool} $options
     */
    public function send(string $service, string $payload = '', array $options = []): Call
    {
        $call = $this->prepare($service, $payload, $options);
        $this->transmit([$call]);
        return $call;
    }

    /**
     * Waits for $call's answer: the reply, or its FerryException. With
     * $timeoutMs, throws WaitTimeoutException when that passes first (the
     * call stays in flight). Without, the call's own deadline bounds it.
     */
    public function wait(Call $call, ?int $timeoutMs = null): string
    {
        $until = $timeoutMs !== null ? Connection::nowMs() + $timeoutMs : INF;
        while (!$call->isDone()) {
            $conn = $call->conn;
            if ($conn === null) {
                break;
            }
            try {
                $f = $conn->readFrame(min($call->safetyAtMs, $until, $this->dutyAt($conn)));
            } catch (FerryException $e) {
                $this->lost($conn, $e);
                continue;
            }
            if ($f !== null) {
                $this->dispatch($conn, $f);
                continue;
            }
            if (!$this->maintain($conn)) {
                continue;
            }
            $now = Connection::nowMs();
            if ($now >= $call->safetyAtMs) {
                $this->expire($call);
            } elseif ($now >= $until) {
                throw new WaitTimeoutException("call {$call->id} to '{$call->service}' not answered in "
                                               . "{$timeoutMs} ms");
            }
        }
        return $call->result();
    }

    /**
     * Drives the connection for up to $timeoutMs without waiting on any one
     * call: takes in answers to calls in flight (their wait() then returns
     * at once), pings when this client announced a heartbeat, and takes
     * ferryd for dead after 3 of its heartbeat intervals of silence. For a
     * program that does other work between send() and wait(), or sits
     * idle with a heartbeat promised.
     */
    public function poll(int $timeoutMs = 0): void
    {
        $conn = $this->conn;
        if ($conn === null || !$conn->isOpen()) {
            return;
        }
        $until = Connection::nowMs() + max(0, $timeoutMs);
        do {
            try {
                $f = $conn->readFrame(min($until, $this->dutyAt($conn)));
            } catch (FerryException $e) {
                $this->lost($conn, $e);
                return;
            }
            if ($f !== null) {
                $this->dispatch($conn, $f);
                continue;
            }
            if (!$this->maintain($conn)) {
                return;
            }
        } while (Connection::nowMs() < $until);
    }

    /** The socket, for a program's own stream_select (then call poll()); null when not connected. */
    public function socket()
    {
        return $this->conn?->stream();
    }

    /** When the heartbeat next needs looking at (INF when this client announced none). */
    private function dutyAt(Connection $conn): float
    {
        $hb = $this->hello['heartbeat_ms'];
        if ($hb <= 0 || !$conn->isOpen()) {
            return INF;
        }
        $at = $conn->lastSendMs + $hb;
        $peer = (int)($conn->hello['heartbeat_ms'] ?? 0);
        return $peer > 0 ? min($at, $conn->lastRecvMs + 3 * $peer) : $at;
    }

    /**
     * The heartbeat's duties: PING when nothing was sent for heartbeat_ms;
     * ferryd silent for 3 of its intervals is taken for dead (its calls end
     * with CONNECTION, not sent again). False when the connection is gone.
     */
    private function maintain(Connection $conn): bool
    {
        $hb = $this->hello['heartbeat_ms'];
        if ($hb <= 0) {
            return $conn->isOpen();
        }
        $now = Connection::nowMs();
        $peer = (int)($conn->hello['heartbeat_ms'] ?? 0);
        if ($peer > 0 && $now - $conn->lastRecvMs > 3 * $peer) {
            $this->lost($conn, new ConnectionException(sprintf(
                "ferryd at '%s' silent for %d ms, 3 x heartbeat %d ms", $conn->address->text,
                $now - $conn->lastRecvMs, $peer)), false);
            return false;
        }
        if ($now - $conn->lastSendMs >= $hb && $conn->isOpen()) {
            try {
                $conn->send(Codec::ping(), $now + 1000);
            } catch (FerryException $e) {
                $this->lost($conn, $e);
                return false;
            }
        }
        return $conn->isOpen();
    }

    /**
     * Asks ferryd to drop $call. Its wait() then ends with
     * CancelledException, or with the reply if that was already on its way.
     */
    public function cancel(Call $call): void
    {
        $conn = $call->conn;
        if ($call->isDone() || $conn === null || !$conn->isOpen()) {
            return;
        }
        $call->retryable = false;
        try {
            $conn->send(Codec::cancel($call->id), Connection::nowMs() + 1000);
        } catch (FerryException $e) {
            $this->lost($conn, $e);
        }
    }

    private ?Servants\Cache $servantCache = null;
    private ?Servants\Kv $servantKv = null;
    private ?Servants\Id $servantId = null;
    private ?Servants\Queue $servantQueue = null;
    private ?Servants\Topic $servantTopic = null;

    /**
     * This node's view of its cluster (the built-in ferry.cluster,
     * docs/cluster.md), the JSON document decoded to arrays:
     * ['enabled' => false] on a single node, else 'node', 'epoch',
     * 'fenced', 'members' (each with 'vbuckets', 'link', ...). Needs what
     * `ferry services` needs (the admin token when ferryd has one).
     *
     * @param array{deadline_ms?: int} $options
     * @return array<string, mixed>
     * @throws FerryException the call's error; InvalidArgumentException
     *         when the reply is not a JSON object
     */
    public function cluster(array $options = []): array
    {
        $reply = $this->call('ferry.cluster', '', $options);
        try {
            $doc = json_decode($reply, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('ferry.cluster reply: not JSON: ' . $e->getMessage());
        }
        // A JSON list decodes to an array too: only an object will do.
        if (!is_array($doc) || ltrim($reply)[0] !== '{') {
            throw new InvalidArgumentException('ferry.cluster reply: not an object');
        }
        return $doc;
    }

    /** ferry.cache helpers: $client->cache()->get($key), set(), cas(), ... (docs/services.md). */
    public function cache(): Servants\Cache
    {
        return $this->servantCache ??= new Servants\Cache($this);
    }

    /** ferry.kv helpers: $client->kv()->put($key, $value), get(), range(), watch(), ... */
    public function kv(): Servants\Kv
    {
        return $this->servantKv ??= new Servants\Kv($this);
    }

    /** ferry.id helpers: $client->id()->next($n), decode($id). */
    public function id(): Servants\Id
    {
        return $this->servantId ??= new Servants\Id($this);
    }

    /** ferry.queue helpers: $client->queue()->push($q, $job), reserve(), ack(), consume(), ... (docs/queues.md). */
    public function queue(): Servants\Queue
    {
        return $this->servantQueue ??= new Servants\Queue($this);
    }

    /** ferry.topic helpers: $client->topic()->publish($subject, $m), poll(), listen(), ... (docs/topics.md). */
    public function topic(): Servants\Topic
    {
        return $this->servantTopic ??= new Servants\Topic($this);
    }

    /** How many times this client connected (HELLO_OK received); a reused persistent socket does not count. */
    public function connects(): int
    {
        return $this->connects;
    }

    /** Whether the current connection was a persistent socket greeted by an earlier page view. */
    public function isReused(): bool
    {
        return $this->conn !== null && $this->conn->reused;
    }

    /** HELLO_OK of the current connection (version, heartbeat_ms, max_frame, name, deadlines). */
    public function serverInfo(): array
    {
        return $this->conn?->hello ?? [];
    }

    /** Closes the connection, a persistent one too (the next call connects again). */
    public function close(): void
    {
        if ($this->conn !== null) {
            $conn = $this->conn;
            $this->conn = null;
            $conn->close();
            $this->failAll($conn, new ConnectionException('client closed'));
        }
    }

    public function __destruct()
    {
        if ($this->conn !== null && !$this->conn->persistent) {
            $this->close();
        }
    }

    // ---- internals

    /** Validates and encodes a call, connecting first when needed. */
    private function prepare(string $service, string $payload, array $options, ?Connection $conn = null): Call
    {
        $key = (string)($options['key'] ?? '');
        if ($service === '' || strlen($service) > Codec::MAX_NAME) {
            throw new InvalidArgumentException('service name must be 1 to 255 bytes');
        }
        if (strlen($key) > Codec::MAX_KEY) {
            throw new InvalidArgumentException('key must be at most 1024 bytes');
        }
        $deadline = (int)($options['deadline_ms'] ?? $this->defaultDeadlineMs);
        if ($deadline < 0 || $deadline > 0xffffffff) {
            throw new InvalidArgumentException('deadline_ms must be 0 to 2^32-1');
        }
        $flags = !empty($options['idempotent']) ? Frame::IDEMPOTENT : 0;
        if ($conn === null || $conn !== $this->conn || !$conn->isOpen()) {
            $conn = $this->ready($deadline);
        }
        $size = Codec::requestSize($service, $key, strlen($payload)) - Codec::HEADER_SIZE;
        if ($size > $conn->maxFrame()) {
            throw new TooBigException("request of $size bytes is larger than ferryd's max_frame "
                                      . $conn->maxFrame());
        }
        $id = $conn->nextId++;
        $call = new Call($id, $service, Codec::request($id, $service, $payload, $deadline, $key, $flags),
                         $deadline);
        $call->safetyAtMs = Connection::nowMs() + $this->budgetMs($conn, $deadline) + self::SLACK_MS;
        return $call;
    }

    /** ferryd's time for a call: deadline_ms, or its default, capped by its maximum. */
    private function budgetMs(Connection $conn, int $deadline): int
    {
        $d = $deadline > 0 ? $deadline : (int)$conn->hello['default_deadline_ms'];
        $max = (int)$conn->hello['max_deadline_ms'];
        return $max > 0 ? min($d, $max) : $d;
    }

    /**
     * A connection to send on: the current one when it is still alive
     * (checked without waiting when nothing is in flight), else a new one,
     * retried with backoff within the call's time.
     */
    private function ready(int $deadline): Connection
    {
        $conn = $this->conn;
        if ($conn !== null && $conn->isOpen() && $conn->calls === [] && !$conn->hasPartialInput()) {
            $this->takeIdle($conn);
        }
        if ($this->conn !== null && $this->conn->isOpen()) {
            return $this->conn;
        }
        $budget = $deadline > 0 ? $deadline : ($conn !== null ? $this->budgetMs($conn, 0)
            : Connection::FALLBACK_DEFAULT_DEADLINE_MS);
        return $this->open(Connection::nowMs() + $budget, true);
    }

    /** Takes in, without waiting, what an idle connection has: PINGs, ferryd's goodbye, EOF. */
    private function takeIdle(Connection $conn): void
    {
        try {
            while (($f = $conn->readFrame(0.0)) !== null) {
                $this->dispatch($conn, $f);
            }
        } catch (FerryException $e) {
            $this->lost($conn, $e);
        }
    }

    private function open(float $deadlineAtMs, bool $retry): Connection
    {
        $backoff = 20;
        for (;;) {
            $at = min($deadlineAtMs, Connection::nowMs() + $this->connectTimeoutMs);
            try {
                $conn = Connection::open($this->address, $this->hello, $this->persistent, $at);
                if (!$conn->reused && !$conn->counted) {
                    $this->connects++;
                    $conn->counted = true;
                }
                return $this->conn = $conn;
            } catch (ConnectionException | DeadlineException $e) {
                $left = $deadlineAtMs - Connection::nowMs();
                if (!$retry || $left <= $backoff) {
                    throw $e instanceof ConnectionException ? $e
                        : new ConnectionException($e->getMessage(), $e);
                }
                usleep($backoff * 1000);
                $backoff = min($backoff * 2, 500);
            }
        }
    }

    /** Sends calls in one write; a connection found dead is replaced once. */
    private function transmit(array $calls): void
    {
        $conn = $this->conn;
        $idle = $conn->calls === [];
        $bytes = '';
        foreach ($calls as $call) {
            $bytes .= $call->frame;
            $call->conn = $conn;
            $call->retryable = $idle;
            $conn->calls[$call->id] = $call;
        }
        $conn->resendable = $conn->resendable || $idle;
        try {
            $conn->send($bytes, max(Connection::nowMs() + 1000, $calls[0]->safetyAtMs));
        } catch (FerryException $e) {
            $this->lost($conn, $e);
        }
    }

    /** Routes one frame from ferryd to the call it answers. */
    private function dispatch(Connection $conn, Frame $f): void
    {
        if ($f->type === Frame::REPLY || $f->type === Frame::ERROR) {
            if ($f->id === 0 && $f->type === Frame::ERROR) {
                $conn->close();
                $this->lost($conn, ErrorCode::exception($f->fields['code'], $f->fields['message']));
                return;
            }
            if ($conn->resendable) {
                // Something came back: the connection was alive after the sends.
                $conn->resendable = false;
                foreach ($conn->calls as $c) {
                    $c->retryable = false;
                }
            }
            $call = $conn->calls[$f->id] ?? null;
            if ($call === null) {
                return; // late answer to an expired or earlier call: dropped
            }
            unset($conn->calls[$f->id]);
            if ($f->type === Frame::REPLY) {
                $call->resolve($f->fields['payload'], null);
            } else {
                $call->resolve(null, ErrorCode::exception($f->fields['code'], $f->fields['message']));
            }
        }
        // PING needs no answer; anything else for a caller is ignored.
    }

    /**
     * The connection failed or ferryd closed it. Calls that went out first
     * on an idle connection and saw nothing back are sent again once on a
     * new connection (ferryd had closed it before reading them); the rest
     * end with the error.
     */
    private function lost(Connection $conn, FerryException $why, bool $mayResend = true): void
    {
        $conn->close();
        if ($this->conn === $conn) {
            $this->conn = null;
        }
        $again = [];
        foreach ($conn->calls as $id => $call) {
            if ($mayResend && $call->retryable && $why instanceof ConnectionException && $call->frame !== null) {
                $again[] = $call;
                unset($conn->calls[$id]);
            }
        }
        $this->failAll($conn, $why);
        if ($again === []) {
            return;
        }
        try {
            $new = $this->open($again[0]->safetyAtMs - self::SLACK_MS, true);
        } catch (FerryException $e) {
            foreach ($again as $call) {
                $call->resolve(null, $e);
            }
            return;
        }
        $bytes = '';
        foreach ($again as $call) {
            // The same request under a new id on the new connection.
            $id = $new->nextId++;
            $call->id = $id;
            $call->frame = substr_replace($call->frame, pack('J', $id), 8, 8);
            $call->conn = $new;
            $call->retryable = false;
            $new->calls[$id] = $call;
            $bytes .= $call->frame;
        }
        try {
            $new->send($bytes, Connection::nowMs() + 1000);
        } catch (FerryException $e) {
            $this->lost($new, $e);
        }
    }

    private function failAll(Connection $conn, FerryException $why): void
    {
        $calls = $conn->calls;
        $conn->calls = [];
        foreach ($calls as $call) {
            $call->resolve(null, $why instanceof ConnectionException ? $why
                : ErrorCode::exception($why->getCode(), $why->getMessage()));
        }
    }

    /** The client's own timer ran out: DEADLINE, and ferryd is told to drop it. */
    private function expire(Call $call): void
    {
        $conn = $call->conn;
        if ($conn !== null) {
            unset($conn->calls[$call->id]);
            if ($conn->isOpen()) {
                try {
                    $conn->send(Codec::cancel($call->id), Connection::nowMs() + 100);
                } catch (FerryException $e) {
                    $this->lost($conn, $e);
                }
            }
        }
        $call->resolve(null, new DeadlineException("no answer from ferryd within the deadline of "
                                                   . "'{$call->service}' (client's own timer)"));
    }
}
