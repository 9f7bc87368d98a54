<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/Queue.php - $client->queue(): ferry.queue, durable work queues
 * (docs/queues.md). A job's id is an int; its token (a random 64-bit
 * number naming one reservation) an int, or a decimal string above
 * PHP_INT_MAX: pass it back as it came. Reserved jobs are ['id', 'token',
 * 'attempts', 'priority', 'payload']; ack, release and bury answer
 * ['status' => 'OK'|'STALE'|'NOT_FOUND'] (STALE: the token no longer holds
 * the job). Options of every method: 'deadline_ms'; push: 'priority',
 * 'delay_ms', 'visibility_ms', 'max_deliveries', 'dedup'; reserve:
 * 'wait_ms', 'visibility_ms'; release: 'delay_ms' or 'backoff' => true;
 * touch: 'visibility_ms'; peek: 'which', 'limit'; redrive: 'limit'.
 */

declare(strict_types=1);

namespace Ferry\Servants;

use Ferry\Exception\DeadlineException;

final class Queue extends Servant
{
    /** A reserve's deadline past its wait. */
    public const RESERVE_SLACK_MS = 5000;

    private function op(string $op, ?string $queue, array $a, array $options): mixed
    {
        return Codec::decodeQueue($op, $this->call(Codec::QUEUE, Codec::encodeQueue($op, $queue, $a), $options));
    }

    /** @return array{id: int|string, dup: bool} dup: the dedup id was seen; id is the first push's */
    public function push(string $queue, string $payload, array $options = []): array
    {
        return $this->op('push', $queue, ['payload' => $payload] + $options, $options);
    }

    /**
     * The next job, or null when none was ready within 'wait_ms' (0 or
     * absent: answer at once). The call's deadline is wait_ms + 5 s unless
     * 'deadline_ms' is given.
     *
     * @return array{id: int|string, token: int|string, attempts: int, priority: int, payload: string}|null
     */
    public function reserve(string $queue, array $options = []): ?array
    {
        $options['deadline_ms'] ??= (int)($options['wait_ms'] ?? 0) + self::RESERVE_SLACK_MS;
        return $this->op('reserve', $queue, $options, $options);
    }

    /** @return array{status: string} */
    public function ack(string $queue, int|string $id, int|string $token, array $options = []): array
    {
        return $this->op('ack', $queue, ['id' => $id, 'token' => $token], $options);
    }

    /** Ready again at once, after 'delay_ms', or by the queue's backoff_ms ('backoff' => true). */
    public function release(string $queue, int|string $id, int|string $token, array $options = []): array
    {
        return $this->op('release', $queue, ['id' => $id, 'token' => $token] + $options, $options);
    }

    /** @return array{status: string, visibility_ms: int} the reservation's new time left */
    public function touch(string $queue, int|string $id, int|string $token, array $options = []): array
    {
        return $this->op('touch', $queue, ['id' => $id, 'token' => $token] + $options, $options);
    }

    /** Moves the job to the queue's dead-letter queue with the reason. */
    public function bury(string $queue, int|string $id, int|string $token, string $reason = '',
                         array $options = []): array
    {
        return $this->op('bury', $queue, ['id' => $id, 'token' => $token, 'reason' => $reason], $options);
    }

    /**
     * Up to 'limit' (0: 10) jobs of one kind ('which': ready (default),
     * delayed, dead, reserved), or null when there is no such queue.
     *
     * @return list<array{id: int|string, attempts: int, priority: int, state: string, age_ms: int, reason: string,
     *     payload: string}>|null
     */
    public function peek(string $queue, array $options = []): ?array
    {
        return $this->op('peek', $queue, $options, $options);
    }

    /** One queue's stats, or every queue's (['queues' => [...]]; in a cluster every node's, each with its 'node', and 'nodes', 'missing') with null; null when there is no such queue. */
    public function stats(?string $queue = null, array $options = []): ?array
    {
        return $this->op('stats', $queue, [], $options);
    }

    /** Moves up to 'limit' (0: 10000) dead jobs back to the queue; how many, or null (no such queue). */
    public function redrive(string $queue, array $options = []): int|string|null
    {
        return $this->op('redrive', $queue, $options, $options);
    }

    /** false when there is no such queue (pause makes one). */
    public function pause(string $queue, array $options = []): bool
    {
        return $this->op('pause', $queue, [], $options);
    }

    public function resume(string $queue, array $options = []): bool
    {
        return $this->op('resume', $queue, [], $options);
    }

    /** Removes the ready and delayed jobs (at most 10000 a call); how many, or null. */
    public function purge(string $queue, array $options = []): int|string|null
    {
        return $this->op('purge', $queue, [], $options);
    }

    /** false when there is no such queue; InvalidArgumentException while it holds jobs. */
    public function delete(string $queue, array $options = []): bool
    {
        return $this->op('delete', $queue, [], $options);
    }

    /**
     * Changes settings (['max_deliveries' => 5, 'backoff_ms' => [1000, 5000]],
     * the keys of docs/queues.md); answers the queue's settings now.
     */
    public function configure(string $queue, array|string $settings, array $options = []): ?array
    {
        return $this->op('configure', $queue, ['settings' => $settings], $options);
    }

    /**
     * Reserves jobs one at a time and hands each to $handler(ConsumedJob):
     * returning acks the job, throwing releases it ('release': ['delay_ms'
     * => N] or, by default, ['backoff' => true]: the queue's backoff_ms)
     * and goes on with the next one, after 'on_error'($e, $job) when given
     * (else error_log). A handler that acked, released or buried the job
     * itself is left alone. Stops after 'max_jobs' jobs, when 'stop'()
     * returns true (asked before each reserve), or with 'until_empty' when
     * a reserve finds nothing within 'wait_ms' (default 20000). ferryd's
     * errors (other than a DEADLINE that cut a long wait short) are
     * thrown. Returns the number of jobs handled.
     *
     * @param callable(ConsumedJob): mixed $handler
     */
    public function consume(string $queue, callable $handler, array $options = []): int
    {
        $max = $options['max_jobs'] ?? null;
        $stop = $options['stop'] ?? null;
        $onError = $options['on_error'] ?? null;
        $release = $options['release'] ?? ['backoff' => true];
        $reserve = ['wait_ms' => $options['wait_ms'] ?? 20000];
        foreach (['visibility_ms', 'deadline_ms'] as $k) {
            if (isset($options[$k])) {
                $reserve[$k] = $options[$k];
            }
        }
        $n = 0;
        while ($max === null || $n < $max) {
            if ($stop !== null && $stop()) {
                break;
            }
            try {
                $job = $this->reserve($queue, $reserve);
            } catch (DeadlineException) {
                continue; // ferryd's max_deadline_ms was shorter than the wait
            }
            if ($job === null) {
                if (!empty($options['until_empty'])) {
                    break;
                }
                continue;
            }
            $n++;
            $cj = new ConsumedJob($this, $queue, $job);
            try {
                $handler($cj);
            } catch (\Throwable $e) {
                if (!$cj->isSettled()) {
                    $cj->release($release);
                }
                if ($onError !== null) {
                    $onError($e, $cj);
                } else {
                    error_log("ferry: queue '$queue' job {$cj->id}: " . get_class($e) . ': ' . $e->getMessage()
                        . ' (released)');
                }
                continue;
            }
            if (!$cj->isSettled()) {
                $cj->ack();
            }
        }
        return $n;
    }
}
