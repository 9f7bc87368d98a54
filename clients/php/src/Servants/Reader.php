<?php
// SPDX-License-Identifier: MIT
/* Servants/Reader.php - a bounds-checked reader of one servant reply (Codec's). */

declare(strict_types=1);

namespace Ferry\Servants;

use Ferry\Exception\InvalidArgumentException;

/** A bounds-checked reader of one reply. @internal */
final class Reader
{
    private int $i = 0;
    private int $n;

    /** @param list<string> $statuses the names of the first byte (ferry.queue has its own) */
    public function __construct(private string $what, private string $b, private array $statuses = Codec::STATUS)
    {
        $this->n = strlen($b);
    }

    public function fail(string $why): InvalidArgumentException
    {
        return new InvalidArgumentException("{$this->what} reply: $why");
    }

    public function left(): int
    {
        return $this->n - $this->i;
    }

    private function need(int $k, string $name): void
    {
        if ($this->n - $this->i < $k) {
            throw $this->fail("$name needs $k bytes, got " . ($this->n - $this->i));
        }
    }

    public function u8(string $name): int
    {
        $this->need(1, $name);
        return ord($this->b[$this->i++]);
    }

    public function u16(string $name): int
    {
        $this->need(2, $name);
        $v = unpack('n', $this->b, $this->i)[1];
        $this->i += 2;
        return $v;
    }

    public function i16(string $name): int
    {
        $v = $this->u16($name);
        return $v >= 0x8000 ? $v - 0x10000 : $v;
    }

    public function u32(string $name): int
    {
        $this->need(4, $name);
        $v = unpack('N', $this->b, $this->i)[1];
        $this->i += 4;
        return $v;
    }

    public function u64(string $name): int|string
    {
        $this->need(8, $name);
        $v = unpack('J', $this->b, $this->i)[1];
        $this->i += 8;
        return Codec::unsigned($v);
    }

    public function bytes(int $k, string $name): string
    {
        $this->need($k, $name);
        $v = substr($this->b, $this->i, $k);
        $this->i += $k;
        return $v;
    }

    public function rest(): string
    {
        $v = (string)substr($this->b, $this->i);
        $this->i = $this->n;
        return $v;
    }

    public function status(): string
    {
        $s = $this->u8('status');
        return $this->statuses[$s] ?? throw $this->fail("unknown status $s");
    }

    /** The status, refused unless it is one of $allowed. */
    public function expect(string ...$allowed): string
    {
        $s = $this->status();
        if (!in_array($s, $allowed, true)) {
            throw $this->fail("status $s where " . implode(' or ', $allowed) . ' was expected');
        }
        return $s;
    }

    public function end(): void
    {
        if ($this->i !== $this->n) {
            throw $this->fail(($this->n - $this->i) . ' bytes too many');
        }
    }

    public function count(string $name): int
    {
        $k = $this->u32($name);
        if ($k > $this->left()) {
            throw $this->fail("$name $k larger than the payload");
        }
        return $k;
    }

    public function entry(): array
    {
        $key = $this->bytes($this->u16('klen'), 'key');
        $c = $this->u64('create_rev');
        $m = $this->u64('mod_rev');
        $v = $this->u64('version');
        return ['key' => $key, 'value' => $this->bytes($this->u32('vlen'), 'value'), 'create_rev' => $c,
            'mod_rev' => $m, 'version' => $v];
    }
}
