<?php
// SPDX-License-Identifier: MIT
/* Servants/Servant.php - what Cache, Kv and Id share: the client they call. */

declare(strict_types=1);

namespace Ferry\Servants;

abstract class Servant
{
    /** @param object $client a Ferry\Client (anything with its call()) */
    public function __construct(protected object $client)
    {
    }

    /** @param array{deadline_ms?: int} $options */
    protected function call(string $service, array $kp, array $options): string
    {
        [$key, $payload] = $kp;
        $o = [];
        if (isset($options['deadline_ms'])) {
            $o['deadline_ms'] = $options['deadline_ms'];
        }
        if ($key !== '') {
            $o['key'] = $key;
        }
        return $this->client->call($service, $payload, $o);
    }
}
