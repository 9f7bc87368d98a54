<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/Cache.php - $client->cache(): ferry.cache (docs/services.md).
 * Items are ['value' => string, 'flags' => int, 'cas' => int]; stores
 * answer ['status' => 'OK'|'NOT_STORED'|'EXISTS'|'NOT_FOUND', 'cas' => int].
 * Options of every method: 'deadline_ms'; of set/add/replace/cas also
 * 'flags' and 'ttl_ms' (0: never expires).
 */

declare(strict_types=1);

namespace Ferry\Servants;

final class Cache extends Servant
{
    private function op(string $op, array $a, array $options): mixed
    {
        return Codec::decodeCache($op, $this->call(Codec::CACHE, Codec::encodeCache($op, $a), $options));
    }

    /** @return array{value: string, flags: int, cas: int|string}|null */
    public function get(string $key, array $options = []): ?array
    {
        return $this->op('get', ['key' => $key], $options);
    }

    public function gat(string $key, int $ttlMs, array $options = []): ?array
    {
        return $this->op('gat', ['key' => $key, 'ttl_ms' => $ttlMs], $options);
    }

    /** @return list<array|null> one item (null for a miss) per key, in order */
    public function getMany(array $keys, array $options = []): array
    {
        return $this->op('get_many', ['keys' => array_values($keys)], $options);
    }

    public function set(string $key, string $value, array $options = []): array
    {
        return $this->op('set', ['key' => $key, 'value' => $value] + $options, $options);
    }

    public function add(string $key, string $value, array $options = []): array
    {
        return $this->op('add', ['key' => $key, 'value' => $value] + $options, $options);
    }

    public function replace(string $key, string $value, array $options = []): array
    {
        return $this->op('replace', ['key' => $key, 'value' => $value] + $options, $options);
    }

    public function append(string $key, string $value, array $options = []): array
    {
        return $this->op('append', ['key' => $key, 'value' => $value], $options);
    }

    public function prepend(string $key, string $value, array $options = []): array
    {
        return $this->op('prepend', ['key' => $key, 'value' => $value], $options);
    }

    public function cas(string $key, string $value, int|string $cas, array $options = []): array
    {
        return $this->op('cas', ['key' => $key, 'value' => $value, 'cas' => $cas] + $options, $options);
    }

    /** true when deleted, false when there was no such item */
    public function delete(string $key, array $options = []): bool
    {
        return $this->op('delete', ['key' => $key], $options);
    }

    public function touch(string $key, int $ttlMs, array $options = []): bool
    {
        return $this->op('touch', ['key' => $key, 'ttl_ms' => $ttlMs], $options);
    }

    /** the new value, or null when there is no such item */
    public function incr(string $key, int|string $delta = 1, array $options = []): int|string|null
    {
        return $this->op('incr', ['key' => $key, 'delta' => $delta], $options);
    }

    public function decr(string $key, int|string $delta = 1, array $options = []): int|string|null
    {
        return $this->op('decr', ['key' => $key, 'delta' => $delta], $options);
    }

    public function flush(int $delayMs = 0, array $options = []): void
    {
        $this->op('flush', ['delay_ms' => $delayMs], $options);
    }
}
