<?php
// SPDX-License-Identifier: MIT

declare(strict_types=1);

namespace Ferry\Exception;

use Ferry\FerryException;

/** Error code 26. */
class UnavailableException extends FerryException
{
    public function __construct(string $message = "", ?\Throwable $previous = null)
    {
        parent::__construct($message, 26, $previous);
    }
}
