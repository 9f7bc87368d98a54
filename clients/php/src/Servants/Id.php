<?php
// SPDX-License-Identifier: MIT
/* Servants/Id.php - $client->id(): ferry.id (docs/services.md). */

declare(strict_types=1);

namespace Ferry\Servants;

final class Id extends Servant
{
    /** @return list<int> count ids, strictly increasing */
    public function next(int $count = 1, array $options = []): array
    {
        return Codec::decodeId('next', $this->call(Codec::ID, Codec::encodeId('next', ['count' => $count]), $options));
    }

    /** @return array{unix_ms: int, node: int, seq: int} */
    public function decode(int|string $id, array $options = []): array
    {
        return Codec::decodeId('decode', $this->call(Codec::ID, Codec::encodeId('decode', ['id' => $id]), $options));
    }
}
