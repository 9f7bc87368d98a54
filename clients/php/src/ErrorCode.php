<?php
// SPDX-License-Identifier: MIT
/*
 * ErrorCode.php - the stable error codes of the ferry protocol (1..23, as
 * in include/ferry.h and docs/protocol.md): names, default messages, and
 * the exception class each one raises.
 */

declare(strict_types=1);

namespace Ferry;

final class ErrorCode
{
    public const PROTO = 1;
    public const TOO_BIG = 2;
    public const VERSION = 3;
    public const UNKNOWN_TYPE = 4;
    public const UNKNOWN_SERVICE = 5;
    public const NO_WORKER = 6;
    public const DEADLINE = 7;
    public const WORKER_LOST = 8;
    public const WORKER_ERROR = 9;
    public const OVERLOADED = 10;
    public const INVALID_ARGUMENT = 11;
    public const CANCELLED = 12;
    public const SHUTTING_DOWN = 13;
    public const DUPLICATE_ID = 14;
    public const UNAUTHORIZED = 15;
    public const CONNECTION = 16;
    public const NOMEM = 17;
    public const SYS = 18;
    public const CIRCUIT_OPEN = 19;
    public const SERVICE_DISABLED = 20;
    public const SLOW_CONSUMER = 21;
    public const TIMED_OUT = 22;
    public const NO_SPACE = 23;
    public const NOT_MY_VBUCKET = 24;
    public const FENCED = 25;
    public const UNAVAILABLE = 26;

    /** code => [NAME, default message, class suffix] */
    private const TABLE = [
        1 => ['PROTO', 'malformed frame', 'Proto'],
        2 => ['TOO_BIG', 'frame too large', 'TooBig'],
        3 => ['VERSION', 'unsupported protocol version', 'Version'],
        4 => ['UNKNOWN_TYPE', 'unknown frame type', 'UnknownType'],
        5 => ['UNKNOWN_SERVICE', 'unknown service', 'UnknownService'],
        6 => ['NO_WORKER', 'no worker available for service', 'NoWorker'],
        7 => ['DEADLINE', 'deadline exceeded', 'Deadline'],
        8 => ['WORKER_LOST', 'worker lost while holding the request',
              'WorkerLost'],
        9 => ['WORKER_ERROR', 'worker failed to handle the request',
              'WorkerError'],
        10 => ['OVERLOADED', 'overloaded, try again later', 'Overloaded'],
        11 => ['INVALID_ARGUMENT', 'invalid argument', 'InvalidArgument'],
        12 => ['CANCELLED', 'request cancelled', 'Cancelled'],
        13 => ['SHUTTING_DOWN', 'daemon is shutting down', 'ShuttingDown'],
        14 => ['DUPLICATE_ID', 'request id already in flight', 'DuplicateId'],
        15 => ['UNAUTHORIZED', 'not authorized', 'Unauthorized'],
        16 => ['CONNECTION', 'connection failed', 'Connection'],
        17 => ['NOMEM', 'out of memory', 'Nomem'],
        18 => ['SYS', 'system error', 'Sys'],
        19 => ['CIRCUIT_OPEN', 'circuit open, failing fast', 'CircuitOpen'],
        20 => ['SERVICE_DISABLED', 'service disabled by an operator',
               'ServiceDisabled'],
        21 => ['SLOW_CONSUMER', 'peer does not read what is sent to it',
               'SlowConsumer'],
        22 => ['TIMED_OUT', 'the connection was silent too long', 'TimedOut'],
        23 => ['NO_SPACE', 'no space left in the store', 'NoSpace'],
        24 => ['NOT_MY_VBUCKET', "this node does not own the key's vbucket",
               'NotMyVbucket'],
        25 => ['FENCED', 'node is not a cluster member now', 'Fenced'],
        26 => ['UNAVAILABLE', "the data's node is down, try again",
               'Unavailable'],
    ];

    /** "DEADLINE" for 7; "UNKNOWN_ERROR" for a code this client does not know. */
    public static function name(int $code): string
    {
        return self::TABLE[$code][0] ?? 'UNKNOWN_ERROR';
    }

    public static function message(int $code): string
    {
        return self::TABLE[$code][1] ?? "error code $code";
    }

    /** The code of a name ("DEADLINE" => 7), or null. */
    public static function fromName(string $name): ?int
    {
        foreach (self::TABLE as $code => $row) {
            if ($row[0] === $name) {
                return $code;
            }
        }
        return null;
    }

    /** The exception for code with message (the code's own text when empty). */
    public static function exception(int $code, string $message = ''): FerryException
    {
        if ($message === '') {
            $message = self::message($code);
        }
        if (isset(self::TABLE[$code])) {
            $class = 'Ferry\\Exception\\' . self::TABLE[$code][2] . 'Exception';
            return new $class($message);
        }
        return new FerryException($message, $code);
    }
}
