<?php
// SPDX-License-Identifier: MIT

declare(strict_types=1);

namespace Ferry\Exception;

use Ferry\FerryException;

/** Error code 25. */
class FencedException extends FerryException
{
    public function __construct(string $message = "", ?\Throwable $previous = null)
    {
        parent::__construct($message, 25, $previous);
    }
}
