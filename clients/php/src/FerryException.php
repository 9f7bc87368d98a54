<?php
// SPDX-License-Identifier: MIT
/*
 * FerryException.php - every ferry error: getCode() is the protocol's
 * number (7), getErrorName() its name ("DEADLINE"). Each code has its own
 * subclass in Ferry\Exception\ (DeadlineException, ...), so a caller can
 * catch the one it cares about.
 */

declare(strict_types=1);

namespace Ferry;

class FerryException extends \RuntimeException
{
    public function __construct(string $message = '', int $code = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message !== '' ? $message : ErrorCode::message($code), $code, $previous);
    }

    /** The code's name: "DEADLINE", or "UNKNOWN_ERROR" for a code unknown here. */
    public function getErrorName(): string
    {
        return ErrorCode::name($this->getCode());
    }
}
