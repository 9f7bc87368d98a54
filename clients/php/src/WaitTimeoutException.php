<?php
// SPDX-License-Identifier: MIT
/*
 * WaitTimeoutException.php - Client::wait() with a timeout of its own saw
 * that timeout pass. Not a ferry error: the call is still in flight and a
 * later wait() can still get its answer.
 */

declare(strict_types=1);

namespace Ferry;

final class WaitTimeoutException extends \RuntimeException
{
}
