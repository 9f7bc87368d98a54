<?php
// SPDX-License-Identifier: MIT
/*
 * Call.php - one request sent with Client::send(): its id, and once it has
 * ended, its reply or its error. Client::wait() drives the connection until
 * it ends; Client::cancel() asks ferryd to drop it.
 */

declare(strict_types=1);

namespace Ferry;

final class Call
{
    /** @internal the encoded REQUEST, kept while the call may be sent again */
    public ?string $frame;
    /** @internal the connection it went out on */
    public ?Connection $conn = null;
    /** @internal whether it went out first on an idle connection and nothing came back since */
    public bool $retryable = false;
    /** @internal hrtime ms past which the client gives up on its own */
    public float $safetyAtMs = 0.0;

    private bool $done = false;
    private ?string $reply = null;
    private ?FerryException $error = null;

    public function __construct(
        /** The request id (a call sent again after a reconnect gets a new one). */
        public int $id,
        public readonly string $service,
        string $frame,
        public readonly int $deadlineMs,
    ) {
        $this->frame = $frame;
    }

    public function isDone(): bool
    {
        return $this->done;
    }

    /** The reply; throws the call's FerryException. Only once isDone(). */
    public function result(): string
    {
        if (!$this->done) {
            throw new \LogicException('the call has not ended yet (Client::wait)');
        }
        if ($this->error !== null) {
            throw $this->error;
        }
        return (string)$this->reply;
    }

    public function error(): ?FerryException
    {
        return $this->error;
    }

    /** @internal */
    public function resolve(?string $reply, ?FerryException $error): void
    {
        if ($this->done) {
            return;
        }
        $this->done = true;
        $this->reply = $reply;
        $this->error = $error;
        $this->frame = null;
        $this->conn = null;
    }
}
