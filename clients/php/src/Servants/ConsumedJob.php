<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/ConsumedJob.php - a job handed to Queue::consume()'s handler:
 * the reserved job's fields, and ack/release/bury/touch of its
 * reservation. Once the handler acked, released or buried it, consume()
 * leaves it alone.
 */

declare(strict_types=1);

namespace Ferry\Servants;

final class ConsumedJob
{
    public readonly int|string $id;
    public readonly int|string $token;
    public readonly int $attempts;
    public readonly int $priority;
    public readonly string $payload;
    private bool $settled = false;

    /** @param array{id: int|string, token: int|string, attempts: int, priority: int, payload: string} $job */
    public function __construct(private Queue $q, public readonly string $queue, array $job)
    {
        $this->id = $job['id'];
        $this->token = $job['token'];
        $this->attempts = $job['attempts'];
        $this->priority = $job['priority'];
        $this->payload = $job['payload'];
    }

    /** Whether ack(), release() or bury() was called. */
    public function isSettled(): bool
    {
        return $this->settled;
    }

    public function ack(array $options = []): array
    {
        $this->settled = true;
        return $this->q->ack($this->queue, $this->id, $this->token, $options);
    }

    public function release(array $options = []): array
    {
        $this->settled = true;
        return $this->q->release($this->queue, $this->id, $this->token, $options);
    }

    public function bury(string $reason = '', array $options = []): array
    {
        $this->settled = true;
        return $this->q->bury($this->queue, $this->id, $this->token, $reason, $options);
    }

    public function touch(array $options = []): array
    {
        return $this->q->touch($this->queue, $this->id, $this->token, $options);
    }
}
