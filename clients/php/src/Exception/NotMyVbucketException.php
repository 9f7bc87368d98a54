<?php
// SPDX-License-Identifier: MIT

declare(strict_types=1);

namespace Ferry\Exception;

use Ferry\FerryException;

/** Error code 24. */
class NotMyVbucketException extends FerryException
{
    public function __construct(string $message = "", ?\Throwable $previous = null)
    {
        parent::__construct($message, 24, $previous);
    }
}
