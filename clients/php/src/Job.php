<?php
// SPDX-License-Identifier: MIT
/*
 * Job.php - one request a Worker received: what was asked, and the way to
 * answer it. A handler may answer at once (return a string, or reply()),
 * or keep the Job and answer later from a timer or another job's work
 * (Worker::after); the worker holds it, and counts it against the
 * service's credit, until it is answered or ferryd cancels it.
 */

declare(strict_types=1);

namespace Ferry;

final class Job
{
    private bool $done = false;
    private bool $cancelled = false;
    /** @var list<callable(Job): void> */
    private array $onCancel = [];

    /** @internal */
    public function __construct(
        private readonly Worker $worker,
        /** @internal the connection generation it came on */
        public readonly int $generation,
        public readonly int $id,
        public readonly string $service,
        public readonly string $payload,
        public readonly string $key,
        /** Time the caller had left when ferryd sent it (0 = none given). */
        public readonly int $deadlineMs,
        public readonly int $flags,
        /** hrtime ms when it arrived */
        public readonly float $receivedAtMs,
    ) {
    }

    /** The id as unsigned decimal text. */
    public function idString(): string
    {
        return Codec::idToString($this->id);
    }

    public function isIdempotent(): bool
    {
        return ($this->flags & Frame::IDEMPOTENT) !== 0;
    }

    /** Milliseconds left of the caller's deadline (PHP_INT_MAX when it gave none). */
    public function timeLeftMs(): int
    {
        if ($this->deadlineMs === 0) {
            return PHP_INT_MAX;
        }
        return (int)($this->deadlineMs - (Connection::nowMs() - $this->receivedAtMs));
    }

    /** Answered, failed, or dropped after a cancel. */
    public function isDone(): bool
    {
        return $this->done;
    }

    /** ferryd cancelled it (caller gone, cancelled, deadline passed); any answer is dropped. */
    public function isCancelled(): bool
    {
        return $this->cancelled;
    }

    /** Runs $fn when ferryd cancels this job (at once if it already has). */
    public function onCancel(callable $fn): void
    {
        if ($this->cancelled) {
            $fn($this);
            return;
        }
        $this->onCancel[] = $fn;
    }

    /** Answers the job; a second answer, or one after a cancel, is ignored. */
    public function reply(string $payload): void
    {
        if ($this->done) {
            return;
        }
        $this->done = true;
        $this->worker->answer($this, Codec::reply($this->id, $payload));
    }

    /** Fails the job with a ferry error code (ErrorCode::WORKER_ERROR, ::INVALID_ARGUMENT, ...). */
    public function fail(int $code, string $message = ''): void
    {
        if ($this->done) {
            return;
        }
        $this->done = true;
        $this->worker->answer($this, Codec::error($this->id, $code, $message));
    }

    /**
     * Stops holding the job without answering it (its credit is not given
     * back: ferryd fails it at its deadline or when this worker goes).
     * For a job that will never be answered, so that a graceful stop does
     * not wait for it.
     */
    public function abandon(): void
    {
        if ($this->done) {
            return;
        }
        $this->done = true;
        $this->onCancel = [];
        $this->worker->release($this);
    }

    /** @internal ferryd sent CANCEL for it. */
    public function cancelled(): void
    {
        if ($this->done) {
            return;
        }
        $this->cancelled = true;
        $this->done = true;
        foreach ($this->onCancel as $fn) {
            $fn($this);
        }
        $this->onCancel = [];
    }

    /** @internal the connection it came on is gone: it cannot be answered. */
    public function orphaned(): void
    {
        $this->done = true;
        $this->onCancel = [];
    }
}
