<?php
// SPDX-License-Identifier: MIT
/*
 * Worker.php - a long-running worker (CLI): registers services with their
 * credit, hands each request to its handler as a Job, and answers when the
 * handler says so, now or later. One loop runs the socket and the timers
 * (Worker::after), so one process holds several jobs at once.
 *
 * It pings ferryd when it has sent nothing for heartbeat_ms, takes ferryd
 * for dead after three of ferryd's intervals without a frame, and then
 * reconnects with backoff and registers again (jobs held on the lost
 * connection are dropped: ferryd has already failed them with
 * WORKER_LOST). SIGTERM or SIGINT (pcntl) is a graceful stop: DRAIN, finish
 * the jobs held, return from run().
 *
 *   $w = new Ferry\Worker('unix:/run/ferry/ferryd.sock');
 *   $w->register('upper', fn (Ferry\Job $job) => strtoupper($job->payload), 8);
 *   $w->run();
 */

declare(strict_types=1);

namespace Ferry;

use Ferry\Exception\ConnectionException;
use Ferry\Exception\InvalidArgumentException;

final class Worker
{
    private Address $address;
    private array $hello;
    /** @var array<string, array{handler: callable, credit: int}> */
    private array $services = [];
    private ?Connection $conn = null;
    private int $generation = 0;
    /** @var array<int, Job> jobs held, by id */
    private array $held = [];
    private int $handled = 0;
    private bool $stopping = false;
    private bool $drainSent = false;
    private int $reconnectMinMs;
    private int $reconnectMaxMs;
    /** @var array<string, list<callable>> */
    private array $listeners = [];
    /** @var \SplPriorityQueue<int, array{0: int, 1: float}> */
    private \SplPriorityQueue $timerQueue;
    /** @var array<int, callable> */
    private array $timers = [];
    private int $timerSeq = 0;
    private string $out = '';
    private int $connects = 0;

    /**
     * @param array{token?: string, name?: string, heartbeat_ms?: int,
     *              max_frame?: int, reconnect_min_ms?: int,
     *              reconnect_max_ms?: int, signals?: bool} $options
     *        heartbeat_ms: ping ferryd when idle this long (default 2500;
     *        ferryd takes the worker for dead after 3 x); signals: stop
     *        gracefully on SIGTERM/SIGINT (default true when pcntl exists)
     */
    public function __construct(?string $addr = null, private array $options = [])
    {
        $this->address = Address::parse($addr);
        $token = $options['token'] ?? getenv('FERRY_TOKEN');
        $this->hello = [
            'role' => Frame::ROLE_WORKER,
            'heartbeat_ms' => (int)($options['heartbeat_ms'] ?? 2500),
            'name' => (string)($options['name'] ?? 'php-worker/' . getmypid()),
            'token' => is_string($token) ? $token : '',
            'max_frame' => (int)($options['max_frame'] ?? 0),
        ];
        $this->reconnectMinMs = (int)($options['reconnect_min_ms'] ?? 50);
        $this->reconnectMaxMs = (int)($options['reconnect_max_ms'] ?? 2000);
        $this->timerQueue = new \SplPriorityQueue();
        $this->timerQueue->setExtractFlags(\SplPriorityQueue::EXTR_DATA);
    }

    /**
     * Serves $service with $handler(Job): return a string to answer now,
     * null to answer later (Job::reply / Job::fail); a FerryException thrown
     * fails the job with its code, any other Throwable with WORKER_ERROR.
     * $credit: jobs of this service held at once (1..65535).
     */
    public function register(string $service, callable $handler, int $credit = 1): self
    {
        if ($service === '' || strlen($service) > Codec::MAX_NAME) {
            throw new InvalidArgumentException('service name must be 1 to 255 bytes');
        }
        if ($credit < 1 || $credit > Codec::MAX_CREDIT) {
            throw new InvalidArgumentException('credit must be 1 to 65535');
        }
        $this->services[$service] = ['handler' => $handler, 'credit' => $credit];
        return $this;
    }

    /**
     * Listens to the worker's events: 'ready' (every service registered),
     * 'start' (Job, before its handler), 'cancel' (Job), 'end' (Job, answered
     * or dropped), 'disconnect' (FerryException: why; it reconnects),
     * 'stopping' (stop() began: DRAIN sent, held jobs still to finish).
     */
    public function on(string $event, callable $fn): self
    {
        $this->listeners[$event][] = $fn;
        return $this;
    }

    /** Runs $fn() once after $ms milliseconds, from the worker's loop. Returns a timer id. */
    public function after(int $ms, callable $fn): int
    {
        $id = ++$this->timerSeq;
        $this->timers[$id] = $fn;
        $at = Connection::nowMs() + max(0, $ms);
        // SplPriorityQueue is a max-heap: negate the time; the sequence keeps order among equals.
        $this->timerQueue->insert([$id, $at], [-$at, -$id]);
        return $id;
    }

    public function cancelTimer(int $id): void
    {
        unset($this->timers[$id]);
    }

    /** Jobs held now (answered ones and cancelled ones no longer count). */
    public function held(): int
    {
        return count($this->held);
    }

    /** Jobs answered so far. */
    public function handled(): int
    {
        return $this->handled;
    }

    /** Connections made (HELLO_OK received). */
    public function connects(): int
    {
        return $this->connects;
    }

    /** Graceful stop: DRAIN, finish the held jobs, then run() returns. Safe from a signal handler. */
    public function stop(): void
    {
        $this->stopping = true;
    }

    /**
     * Serves until stop() (or SIGTERM/SIGINT) and every held job is
     * answered. Returns the number of jobs answered. Throws what cannot be
     * cured by reconnecting: UnauthorizedException, VersionException, and
     * the ERROR a REGISTER was refused with.
     */
    public function run(): int
    {
        if ($this->services === []) {
            throw new InvalidArgumentException('register a service before run()');
        }
        $this->installSignals();
        $backoff = $this->reconnectMinMs;
        while (!($this->stopping && ($this->conn === null || $this->held === []))) {
            if ($this->conn === null) {
                try {
                    $this->connect();
                    $backoff = $this->reconnectMinMs;
                } catch (ConnectionException $e) {
                    $this->emit('disconnect', $e);
                    $this->sleepRunningTimers((int)($backoff * (0.5 + mt_rand() / mt_getrandmax() / 2)));
                    $backoff = min($backoff * 2, $this->reconnectMaxMs);
                }
                continue;
            }
            try {
                $this->turn();
            } catch (FerryException $e) {
                if (!$e instanceof ConnectionException && $this->conn !== null && $this->conn->isOpen()) {
                    throw $e;
                }
                $this->drop($e);
            }
        }
        if ($this->conn !== null) {
            if (!$this->drainSent) {
                $this->out .= Codec::drain();
            }
            try {
                $this->flush();
            } catch (FerryException $e) {
                // Closing anyway.
            }
            $this->conn->close();
            $this->conn = null;
        }
        return $this->handled;
    }

    // ---- internals

    private function installSignals(): void
    {
        if (!($this->options['signals'] ?? true) || !function_exists('pcntl_signal')) {
            return;
        }
        pcntl_async_signals(true);
        $stop = function (): void {
            $this->stop();
        };
        pcntl_signal(SIGTERM, $stop);
        pcntl_signal(SIGINT, $stop);
    }

    /** Connects, says HELLO and registers every service; 'ready' when all are. */
    private function connect(): void
    {
        $conn = Connection::open($this->address, $this->hello, false, Connection::nowMs() + 5000);
        $this->connects++;
        $this->generation++;
        $this->drainSent = false;
        $regs = '';
        $want = [];
        $i = 0;
        foreach ($this->services as $name => $s) {
            $i++;
            $want[$i] = $name;
            $regs .= Codec::register($i, $name, $s['credit']);
        }
        $conn->send($regs, Connection::nowMs() + 5000);
        $this->conn = $conn;
        $until = Connection::nowMs() + 10000;
        while ($want !== []) {
            $f = $conn->readFrame($until);
            if ($f === null) {
                $conn->close();
                $this->conn = null;
                throw new ConnectionException('no answer to REGISTER within 10 s');
            }
            if ($f->type === Frame::REGISTERED && isset($want[$f->id])) {
                unset($want[$f->id]);
            } elseif ($f->type === Frame::ERROR && isset($want[$f->id])) {
                $conn->close();
                $this->conn = null;
                $e = ErrorCode::exception($f->fields['code'],
                                          "register '{$want[$f->id]}': " . $f->fields['message']);
                throw $e;
            } else {
                $this->handle($f);
            }
        }
        $this->emit('ready');
    }

    /** One loop turn: wait for the socket or the next timer, take in frames, run due timers. */
    private function turn(): void
    {
        $conn = $this->conn;
        if ($this->stopping && !$this->drainSent) {
            $this->drainSent = true;
            $this->out .= Codec::drain();
            $this->emit('stopping');
        }
        $this->flush();
        $now = Connection::nowMs();
        $wake = $now + 1000;
        $hb = $this->hello['heartbeat_ms'];
        if ($hb > 0) {
            $wake = min($wake, $conn->lastSendMs + $hb);
        }
        $peerHb = (int)($conn->hello['heartbeat_ms'] ?? 0);
        if ($peerHb > 0) {
            $wake = min($wake, $conn->lastRecvMs + 3 * $peerHb);
        }
        $wake = min($wake, $this->nextTimerAt());
        $f = $conn->readFrame($wake);
        while ($f !== null) {
            $this->handle($f);
            $f = $this->conn === $conn ? $conn->readFrame(0.0) : null;
        }
        $this->runTimers();
        $now = Connection::nowMs();
        if ($this->conn !== $conn) {
            return;
        }
        if ($peerHb > 0 && $now - $conn->lastRecvMs > 3 * $peerHb) {
            throw new ConnectionException(sprintf('ferryd silent for %d ms, 3 x heartbeat %d ms',
                                                  $now - $conn->lastRecvMs, $peerHb));
        }
        if ($hb > 0 && $now - $conn->lastSendMs >= $hb && $this->out === '') {
            $this->out .= Codec::ping();
        }
        $this->flush();
    }

    private function flush(): void
    {
        if ($this->out !== '' && $this->conn !== null) {
            $bytes = $this->out;
            $this->out = '';
            $this->conn->send($bytes, Connection::nowMs() + 10000);
        }
    }

    private function handle(Frame $f): void
    {
        switch ($f->type) {
            case Frame::REQUEST:
                $this->start($f);
                return;
            case Frame::CANCEL:
                $job = $this->held[$f->id] ?? null;
                if ($job !== null) {
                    unset($this->held[$f->id]);
                    $this->emit('cancel', $job);
                    $job->cancelled();
                    $this->emit('end', $job);
                }
                return;
            case Frame::ERROR:
                if ($f->id === 0) {
                    throw new ConnectionException('ferryd closed the connection: '
                                                  . ErrorCode::name($f->fields['code']) . ': '
                                                  . $f->fields['message']);
                }
                return; // an ERROR for one of our registrations after the fact: nothing to do
            default:
                return; // PING, REGISTERED again: signs of life, nothing to do
        }
    }

    private function start(Frame $f): void
    {
        $service = $f->fields['service'];
        $job = new Job($this, $this->generation, $f->id, $service, $f->fields['payload'], $f->fields['key'],
                       $f->fields['deadline_ms'], $f->flags, Connection::nowMs());
        $s = $this->services[$service] ?? null;
        if ($s === null) {
            $this->out .= Codec::error($f->id, ErrorCode::UNKNOWN_SERVICE, "this worker does not serve '$service'");
            return;
        }
        $this->held[$f->id] = $job;
        $this->emit('start', $job);
        try {
            $r = ($s['handler'])($job);
            if (is_string($r)) {
                $job->reply($r);
            } elseif ($r !== null) {
                $job->fail(ErrorCode::WORKER_ERROR, 'handler returned ' . get_debug_type($r)
                                                    . ', not a string or null');
            }
        } catch (FerryException $e) {
            $job->fail($e->getCode(), $e->getMessage());
        } catch (\Throwable $e) {
            $job->fail(ErrorCode::WORKER_ERROR, get_class($e) . ': ' . $e->getMessage());
        }
    }

    /** @internal Job::abandon */
    public function release(Job $job): void
    {
        if (($this->held[$job->id] ?? null) === $job) {
            unset($this->held[$job->id]);
            $this->emit('end', $job);
        }
    }

    /** @internal Job::reply / Job::fail */
    public function answer(Job $job, string $frame): void
    {
        if ($job->generation !== $this->generation || ($this->held[$job->id] ?? null) !== $job) {
            return; // its connection is gone, or ferryd cancelled it
        }
        unset($this->held[$job->id]);
        $this->handled++;
        $this->out .= $frame;
        $this->emit('end', $job);
        // A reply made outside the loop's turn (a handler that answered in
        // the start event) goes out at the next flush.
    }

    private function drop(FerryException $why): void
    {
        if ($this->conn !== null) {
            $this->conn->close();
            $this->conn = null;
        }
        $this->out = '';
        $held = $this->held;
        $this->held = [];
        foreach ($held as $job) {
            $job->orphaned();
        }
        $this->emit('disconnect', $why);
    }

    private function nextTimerAt(): float
    {
        while (!$this->timerQueue->isEmpty()) {
            [$id, $at] = $this->timerQueue->top();
            if (isset($this->timers[$id])) {
                return $at;
            }
            $this->timerQueue->extract();
        }
        return INF;
    }

    private function runTimers(): void
    {
        $now = Connection::nowMs();
        while (!$this->timerQueue->isEmpty()) {
            [$id, $at] = $this->timerQueue->top();
            if ($at > $now && isset($this->timers[$id])) {
                return;
            }
            $this->timerQueue->extract();
            $fn = $this->timers[$id] ?? null;
            unset($this->timers[$id]);
            if ($fn !== null) {
                $fn();
            }
        }
    }

    /** Sleeps $ms while disconnected, still running due timers. */
    private function sleepRunningTimers(int $ms): void
    {
        $until = Connection::nowMs() + $ms;
        while (!$this->stopping && ($now = Connection::nowMs()) < $until) {
            $next = min($until, $this->nextTimerAt());
            if ($next > $now) {
                usleep((int)(($next - $now) * 1000));
            }
            $this->runTimers();
        }
    }

    private function emit(string $event, mixed $arg = null): void
    {
        foreach ($this->listeners[$event] ?? [] as $fn) {
            $fn($arg);
        }
    }
}
