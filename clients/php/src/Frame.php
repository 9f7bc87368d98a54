<?php
// SPDX-License-Identifier: MIT
/*
 * Frame.php - one decoded frame: its header (type, flags, id) and its body
 * fields by name, as docs/protocol.md and tests/vectors/frames.json name
 * them. Codec makes and reads them.
 */

declare(strict_types=1);

namespace Ferry;

final class Frame
{
    public const HELLO = 1;
    public const HELLO_OK = 2;
    public const REQUEST = 3;
    public const REPLY = 4;
    public const ERROR = 5;
    public const CANCEL = 6;
    public const REGISTER = 7;
    public const REGISTERED = 8;
    public const PING = 9;
    public const DRAIN = 10;

    public const NAMES = [
        1 => 'HELLO', 2 => 'HELLO_OK', 3 => 'REQUEST', 4 => 'REPLY',
        5 => 'ERROR', 6 => 'CANCEL', 7 => 'REGISTER', 8 => 'REGISTERED',
        9 => 'PING', 10 => 'DRAIN',
    ];

    public const ROLE_CALLER = 1;
    public const ROLE_WORKER = 2;
    public const ROLE_PEER = 3;

    /** REQUEST flag: the request may safely run twice. */
    public const IDEMPOTENT = 0x01;

    /**
     * @param int $id the 64-bit id as PHP's signed int (ids above
     *                PHP_INT_MAX are negative; Codec::idToString prints them)
     * @param array<string, mixed> $fields the body's fields; for REQUEST
     *                "service", "key", "payload", "deadline_ms"; REPLY
     *                "payload"; ERROR "code", "message"; ...
     */
    public function __construct(
        public int $type,
        public int $flags,
        public int $id,
        public array $fields = [],
    ) {
    }

    public function typeName(): string
    {
        return self::NAMES[$this->type] ?? "TYPE_{$this->type}";
    }
}
