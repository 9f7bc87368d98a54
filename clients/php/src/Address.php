<?php
// SPDX-License-Identifier: MIT
/*
 * Address.php - ferryd addresses as every ferry client spells them:
 * "host:port", "[v6]:port" or "unix:/path"; the default is $FERRY_ADDR,
 * else "127.0.0.1:7700". toUrl() gives the stream_socket_client() form.
 */

declare(strict_types=1);

namespace Ferry;

use Ferry\Exception\InvalidArgumentException;

final class Address
{
    public const DEFAULT = '127.0.0.1:7700';

    private function __construct(public readonly string $text, public readonly string $url)
    {
    }

    public static function default(): string
    {
        $env = getenv('FERRY_ADDR');
        return is_string($env) && $env !== '' ? $env : self::DEFAULT;
    }

    public static function parse(?string $addr): self
    {
        $addr ??= self::default();
        if (str_starts_with($addr, 'unix:')) {
            $path = substr($addr, 5);
            if ($path === '' || strlen($path) > 107) {
                throw new InvalidArgumentException("bad address '$addr' (unix:/path, at most 107 bytes)");
            }
            return new self($addr, 'unix://' . $path);
        }
        if (preg_match('/^\[([0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)\]:([0-9]{1,5})$/', $addr, $m)
            || preg_match('/^([A-Za-z0-9_.-]+):([0-9]{1,5})$/', $addr, $m)) {
            $port = (int)$m[2];
            if ($port < 1 || $port > 65535) {
                throw new InvalidArgumentException("bad address '$addr' (port 1..65535)");
            }
            $host = str_contains($m[1], ':') ? "[{$m[1]}]" : $m[1];
            return new self($addr, "tcp://$host:$port");
        }
        throw new InvalidArgumentException("bad address '$addr' (host:port, [v6]:port or unix:/path)");
    }
}
