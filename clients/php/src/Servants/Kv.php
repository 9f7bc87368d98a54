<?php
// SPDX-License-Identifier: MIT
/*
 * Servants/Kv.php - $client->kv(): ferry.kv (docs/services.md). Entries are
 * ['key', 'value', 'create_rev', 'mod_rev', 'version']; writes answer
 * ['status' => 'OK'|'EXISTS'|'NOT_FOUND', 'rev' => int] (EXISTS: the compare
 * failed, rev is the key's mod_rev). Options: 'deadline_ms'; put:
 * 'if_absent' => true or 'if_mod_rev' => R; delete: 'if_mod_rev'; range and
 * count: 'end' (else the key is a prefix), range: 'limit', 'keys_only';
 * watch: 'prefix', 'from_rev', 'wait_ms', 'max_events'.
 */

declare(strict_types=1);

namespace Ferry\Servants;

final class Kv extends Servant
{
    private function op(string $op, string $key, array $a, array $options): array
    {
        return Codec::decodeKv($op, $this->call(Codec::KV, Codec::encodeKv($op, $key, $a), $options));
    }

    private static function cond(array $o): array
    {
        if (!empty($o['if_absent'])) {
            return ['cond' => 'absent', 'rev' => 0];
        }
        if (isset($o['if_mod_rev'])) {
            return ['cond' => 'mod_rev', 'rev' => $o['if_mod_rev']];
        }
        return ['cond' => 'any', 'rev' => 0];
    }

    /** the entry, or null when absent (getRev() also gives the store's revision) */
    public function get(string $key, array $options = []): ?array
    {
        $g = $this->op('get', $key, [], $options);
        return $g['entry'] === null ? null : ['key' => $key] + $g['entry'];
    }

    /** @return array{rev: int, entry: array|null} */
    public function getRev(string $key, array $options = []): array
    {
        return $this->op('get', $key, [], $options);
    }

    public function put(string $key, string $value, array $options = []): array
    {
        return $this->op('put', $key, ['value' => $value] + self::cond($options), $options);
    }

    public function delete(string $key, array $options = []): array
    {
        unset($options['if_absent']);
        return $this->op('delete', $key, self::cond($options), $options);
    }

    /** @return array{rev: int, more: bool, items: list<array>, next_key: ?string} */
    public function range(string $key, array $options = []): array
    {
        return $this->op('range', $key, $options, $options);
    }

    public function count(string $key, array $options = []): int
    {
        return $this->op('count', $key, $options, $options)['count'];
    }

    /** @return array{rev: int, events: list<array>} (no events when wait_ms passed) */
    public function watch(string $key, array $options = []): array
    {
        $options['deadline_ms'] ??= (int)($options['wait_ms'] ?? 0) + 5000;
        return $this->op('watch', $key, $options, $options);
    }
}
