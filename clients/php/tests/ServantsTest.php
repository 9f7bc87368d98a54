<?php
// SPDX-License-Identifier: MIT
/*
 * ServantsTest.php - $client->cache() / kv() / id(): the codec against
 * tests/vectors/client_payloads.json (shared with every client),
 * and the helpers through a stub client.
 */

declare(strict_types=1);

use Ferry\Exception\InvalidArgumentException;
use Ferry\Servants\Cache;
use Ferry\Servants\Codec;
use Ferry\Servants\Id;
use Ferry\Servants\Kv;
use PHPUnit\Framework\TestCase;

final class ServantsTest extends TestCase
{
    private static function vec(): array
    {
        return json_decode(file_get_contents(TestEnv::root() . '/tests/vectors/client_payloads.json'), true);
    }

    private static function args(array $a): array
    {
        $o = [];
        foreach ($a as $k => $v) {
            if ($k === 'keys_hex') {
                $o['keys'] = array_map('hex2bin', $v);
            } elseif (str_ends_with($k, '_hex')) {
                $o[substr($k, 0, -4)] = hex2bin($v);
            } else {
                $o[$k] = $v; // u64s stay decimal strings: the encoders take them
            }
        }
        return $o;
    }

    public static function encode(string $service, string $op, array $a): array
    {
        $o = self::args($a);
        return match ($service) {
            'cache' => Codec::encodeCache($op, $o),
            'kv' => Codec::encodeKv($op, $o['key'], $o),
            default => Codec::encodeId($op, $o),
        };
    }

    private static function item(?array $i): array
    {
        return $i === null ? ['status' => 'NOT_FOUND']
            : ['status' => 'OK', 'flags' => $i['flags'], 'cas' => (string)$i['cas'], 'value_hex' => bin2hex($i['value'])];
    }

    private static function entry(array $e, bool $withKey = true): array
    {
        return ($withKey ? ['key_hex' => bin2hex($e['key'])] : []) + ['create_rev' => (string)$e['create_rev'],
            'mod_rev' => (string)$e['mod_rev'], 'version' => (string)$e['version'], 'value_hex' => bin2hex($e['value'])];
    }

    /** A decoded reply as client_payloads.json writes it. */
    public static function canonical(string $service, string $op, mixed $r): array
    {
        if ($service === 'cache') {
            if ($op === 'get' || $op === 'gat') {
                return self::item($r);
            }
            if ($op === 'get_many') {
                return ['status' => 'OK', 'items' => array_map([self::class, 'item'], $r)];
            }
            if (is_array($r)) {
                return $r['status'] === 'OK' ? ['status' => 'OK', 'cas' => (string)$r['cas']] : ['status' => $r['status']];
            }
            if ($op === 'incr' || $op === 'decr') {
                return $r === null ? ['status' => 'NOT_FOUND'] : ['status' => 'OK', 'value' => (string)$r];
            }
            return ['status' => $r ? 'OK' : 'NOT_FOUND'];
        }
        if ($service === 'kv') {
            return match ($op) {
                'get' => ['status' => $r['entry'] ? 'OK' : 'NOT_FOUND', 'rev' => (string)$r['rev']]
                    + ($r['entry'] ? self::entry($r['entry'], false) : []),
                'put', 'delete' => ['status' => $r['status'], 'rev' => (string)$r['rev']],
                'count' => ['status' => 'OK', 'rev' => (string)$r['rev'], 'count' => (string)$r['count']],
                'range' => ['status' => 'OK', 'rev' => (string)$r['rev'], 'more' => $r['more'],
                    'items' => array_map(fn($e) => self::entry($e), $r['items'])],
                default => ['status' => 'OK', 'rev' => (string)$r['rev'],
                    'events' => array_map(fn($e) => ['type' => $e['type']] + self::entry($e), $r['events'])],
            };
        }
        if ($op === 'next') {
            return ['status' => 'OK', 'ids' => array_map('strval', $r)];
        }
        return ['status' => 'OK', 'unix_ms' => (string)$r['unix_ms'], 'node' => $r['node'], 'seq' => $r['seq']];
    }

    private static function decode(string $service, string $op, string $b): mixed
    {
        return match ($service) {
            'cache' => Codec::decodeCache($op, $b),
            'kv' => Codec::decodeKv($op, $b),
            default => Codec::decodeId($op, $b),
        };
    }

    public function testRequests(): void
    {
        $v = self::vec()['requests'];
        $this->assertGreaterThan(20, count($v));
        foreach ($v as $r) {
            [$key, $payload] = self::encode($r['service'], $r['op'], $r['args']);
            $this->assertSame($r['payload_hex'], bin2hex($payload), json_encode($r));
            $this->assertSame($r['key_hex'], bin2hex($key), json_encode($r));
        }
    }

    public function testReplies(): void
    {
        $v = self::vec()['replies'];
        $this->assertGreaterThan(40, count($v));
        foreach ($v as $r) {
            $b = hex2bin($r['reply_hex']);
            if (isset($r['error'])) {
                try {
                    self::decode($r['service'], $r['op'], $b);
                    $this->fail('decoded a malformed reply: ' . json_encode($r));
                } catch (InvalidArgumentException $e) {
                    $this->assertSame($r['error'], $e->getErrorName());
                }
            } else {
                $this->assertSame($r['result'], self::canonical($r['service'], $r['op'],
                    self::decode($r['service'], $r['op'], $b)), json_encode($r));
            }
        }
    }

    public function testTruncatedRepliesDecodeOrAreInvalid(): void
    {
        $n = 0;
        foreach (self::vec()['replies'] as $r) {
            $b = hex2bin($r['reply_hex']);
            for ($i = 0; $i < strlen($b); $i++) {
                try {
                    self::decode($r['service'], $r['op'], substr($b, 0, $i));
                } catch (InvalidArgumentException) {
                    $n++;
                }
            }
        }
        $this->assertGreaterThan(100, $n);
    }

    public function testOutOfRangeArguments(): void
    {
        $this->expectException(InvalidArgumentException::class);
        Codec::encodeCache('incr', ['key' => 'k', 'delta' => '18446744073709551616']);
    }

    public function testHelpersThroughAStub(): void
    {
        $stub = new class {
            public array $calls = [];
            public array $replies = [];

            public function call(string $service, string $payload = '', array $options = []): string
            {
                $this->calls[] = [$service, $payload, $options];
                return array_shift($this->replies);
            }
        };
        $stub->replies = [pack('CJ', 0, 5), pack('CNJ', 0, 9, 42) . 'v', "\x01", pack('CJ', 3, 11),
            pack('CNJJ', 0, 2, 1, 2)];
        $cache = new Cache($stub);
        $this->assertSame(['status' => 'OK', 'cas' => 5], $cache->set('k', 'v', ['ttl_ms' => 10]));
        $this->assertSame(['ferry.cache', pack('CNN', 3, 0, 10) . 'v', ['key' => 'k']], $stub->calls[0]);
        $this->assertSame(['value' => 'v', 'flags' => 9, 'cas' => 42], $cache->get('k'));
        $this->assertNull($cache->get('k'));
        $this->assertSame(['status' => 'EXISTS', 'rev' => 11], (new Kv($stub))->put('a', 'b', ['if_mod_rev' => 10]));
        $this->assertSame([1, 2], (new Id($stub))->next(2));
        $this->assertSame([], $stub->calls[4][2]);
        $c = new Ferry\Client('127.0.0.1:1');
        $this->assertSame($c->cache(), $c->cache());
        $this->assertInstanceOf(Kv::class, $c->kv());
    }
}
