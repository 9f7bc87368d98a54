<?php
// SPDX-License-Identifier: MIT
/*
 * ServantsTest.php - $client->cache() / kv() / id() / queue() / topic(): the codec against
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
            } elseif (in_array($k, ['queue', 'settings', 'subject', 'pattern', 'group'], true)) {
                $o[$k] = $v;
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
            'queue' => Codec::encodeQueue($op, $o['queue'] ?? null, $o),
            'topic' => Codec::encodeTopic($op, $o),
            default => Codec::encodeId($op, $o),
        };
    }

    private static function peekEntry(array $e): array
    {
        return ['id' => (string)$e['id'], 'attempts' => $e['attempts'], 'priority' => $e['priority'],
            'state' => $e['state'], 'age_ms' => (string)$e['age_ms'], 'reason_hex' => bin2hex($e['reason']),
            'payload_hex' => bin2hex($e['payload'])];
    }

    /** A decoded ferry.queue reply as client_payloads.json writes it. */
    public static function canonicalQueue(string $op, mixed $r): array
    {
        $nf = ['status' => 'NOT_FOUND'];
        return match ($op) {
            'push' => ['status' => 'OK', 'id' => (string)$r['id'], 'dup' => $r['dup']],
            'reserve' => $r === null ? ['status' => 'EMPTY'] : ['status' => 'OK', 'id' => (string)$r['id'],
                'token' => (string)$r['token'], 'attempts' => $r['attempts'], 'priority' => $r['priority'],
                'payload_hex' => bin2hex($r['payload'])],
            'touch' => $r['status'] === 'OK' ? $r : ['status' => $r['status']],
            'peek' => $r === null ? $nf
                : ['status' => 'OK', 'entries' => array_map([self::class, 'peekEntry'], $r)],
            'stats' => $r === null ? $nf : ['status' => 'OK', 'stats' => $r],
            'configure' => $r === null ? $nf : ['status' => 'OK', 'settings' => $r],
            'redrive' => $r === null ? $nf : ['status' => 'OK', 'moved' => (string)$r],
            'purge' => $r === null ? $nf : ['status' => 'OK', 'removed' => (string)$r],
            'pause', 'resume', 'delete' => ['status' => $r ? 'OK' : 'NOT_FOUND'],
            default => $r, // ack, release, bury: ['status']
        };
    }

    /** A decoded ferry.topic reply as client_payloads.json writes it. */
    public static function canonicalTopic(string $op, mixed $r): array
    {
        $nf = ['status' => 'NOT_FOUND'];
        if ($op === 'poll' && $r !== null) {
            if ($r['messages'] === []) {
                return ['status' => 'EMPTY', 'dropped' => (string)$r['dropped']];
            }
            return ['status' => 'OK', 'dropped' => (string)$r['dropped'], 'messages' => array_map(
                fn($m) => ['seq' => (string)$m['seq'], 'subject' => $m['subject'],
                    'payload_hex' => bin2hex($m['payload'])], $r['messages'])];
        }
        return match ($op) {
            'publish' => ['status' => 'OK', 'receivers' => $r],
            'subscribe' => ['status' => 'OK', 'sub_id' => (string)$r],
            'unsubscribe' => ['status' => $r ? 'OK' : 'NOT_FOUND'],
            'stats' => $r === null ? $nf : ['status' => 'OK', 'stats' => $r],
            default => $nf, // poll
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
        if ($service === 'queue') {
            return self::canonicalQueue($op, $r);
        }
        if ($service === 'topic') {
            return self::canonicalTopic($op, $r);
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
            'queue' => Codec::decodeQueue($op, $b),
            'topic' => Codec::decodeTopic($op, $b),
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

    public function testTheVectorsCoverEveryQueueOp(): void
    {
        $v = self::vec();
        foreach (['requests', 'replies'] as $kind) {
            $seen = array_unique(array_column(array_filter($v[$kind], fn($r) => $r['service'] === 'queue'), 'op'));
            $this->assertSame([], array_values(array_diff(array_keys(Codec::QUEUE_OPS), $seen)), $kind);
        }
    }

    public static function badQueueArgs(): array
    {
        return [
            'priority high' => ['push', ['priority' => 32768]],
            'priority low' => ['push', ['priority' => -32769]],
            'delay' => ['push', ['delay_ms' => 1 << 32]],
            'max_deliveries' => ['push', ['max_deliveries' => 65536]],
            'dedup' => ['push', ['dedup' => str_repeat('d', 256)]],
            'not an int' => ['reserve', ['wait_ms' => '5']],
            'wait' => ['reserve', ['wait_ms' => -1]],
            'id' => ['ack', ['id' => -1, 'token' => 1]],
            'token' => ['ack', ['id' => 1, 'token' => '18446744073709551616']],
            'both' => ['release', ['id' => 1, 'token' => 1, 'delay_ms' => 5, 'backoff' => true]],
            'sentinel' => ['release', ['id' => 1, 'token' => 1, 'delay_ms' => 0xffffffff]],
            'which' => ['peek', ['which' => 'gone']],
            'limit' => ['peek', ['limit' => 65536]],
            'redrive' => ['redrive', ['limit' => 1 << 32]],
            'op' => ['nope', []],
        ];
    }

    /** @dataProvider badQueueArgs */
    public function testQueueArgumentsOutOfRange(string $op, array $a): void
    {
        $this->expectException(InvalidArgumentException::class);
        Codec::encodeQueue($op, 'q', $a);
    }

    public function testQueueEncoderDetails(): void
    {
        // a token above PHP_INT_MAX comes and goes as a decimal string
        [, $p] = Codec::encodeQueue('ack', 'q', ['id' => 7, 'token' => '18446744073709551615']);
        $this->assertSame('03' . '0000000000000007' . 'ffffffffffffffff', bin2hex($p));
        $this->assertSame('18446744073709551615',
            Codec::decodeQueue('reserve', pack('CJJNn', 0, 1, -1, 1, 0))['token']);
        // settings: an array as a JSON object ({} when empty), or JSON text as it is
        $this->assertSame("\x0e{}", Codec::encodeQueue('configure', 'q', ['settings' => []])[1]);
        $this->assertSame("\x0e{\"paused\": true}",
            Codec::encodeQueue('configure', 'q', ['settings' => '{"paused": true}'])[1]);
        $this->assertSame(['', "\x08"], Codec::encodeQueue('stats', null));
    }

    public function testQueueStatusesAnOpNeverGetsAreInvalid(): void
    {
        foreach ([['push', 1], ['reserve', 2], ['reserve', 3], ['ack', 1], ['peek', 1], ['stats', 2],
                     ['pause', 1], ['purge', 2]] as [$op, $st]) {
            try {
                Codec::decodeQueue($op, chr($st));
                $this->fail("$op decoded status $st");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString('ferry.queue', $e->getMessage());
            }
        }
        $this->expectException(InvalidArgumentException::class);
        Codec::decodeQueue('stats', "\x00{nope");
    }

    public function testQueueHelpersThroughAStub(): void
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
        $job = pack('CJJNn', 0, 7, 99, 1, 0xfffd) . 'hi';
        $stub->replies = [pack('CJC', 0, 7, 1), $job, "\x01", "\x00", "\x02", pack('CN', 0, 30000), "\x00",
            "\x00\x00\x00", "\x03", "\x00{\"queues\":[]}", pack('CJ', 0, 4), "\x00", "\x03", pack('CJ', 0, 2),
            "\x00", "\x00{\"paused\":false}"];
        $q = new Ferry\Servants\Queue($stub);
        $this->assertSame(['id' => 7, 'dup' => true], $q->push('jobs', 'x', ['priority' => -1, 'dedup' => 'd']));
        $this->assertSame(['ferry.queue', "\x01\xff\xff" . str_repeat("\x00", 10) . "\x01dx", ['key' => 'jobs']],
            $stub->calls[0]);
        $this->assertSame(['id' => 7, 'token' => 99, 'attempts' => 1, 'priority' => -3, 'payload' => 'hi'],
            $q->reserve('jobs', ['wait_ms' => 1500]));
        $this->assertSame(6500, $stub->calls[1][2]['deadline_ms'], 'a reserve outlives its wait');
        $this->assertNull($q->reserve('jobs'));
        $this->assertSame(5000, $stub->calls[2][2]['deadline_ms']);
        $this->assertSame(['status' => 'OK'], $q->ack('jobs', 7, 99));
        $this->assertSame(['status' => 'STALE'], $q->release('jobs', 7, 99, ['backoff' => true]));
        $this->assertSame('ffffffff', bin2hex(substr($stub->calls[4][1], 17)));
        $this->assertSame(['status' => 'OK', 'visibility_ms' => 30000],
            $q->touch('jobs', 7, 99, ['visibility_ms' => 1]));
        $this->assertSame(['status' => 'OK'], $q->bury('jobs', 7, 99, 'bad input'));
        $this->assertSame('bad input', substr($stub->calls[6][1], 17));
        $this->assertSame([], $q->peek('jobs', ['which' => 'dead', 'limit' => 5]));
        $this->assertSame('07020005', bin2hex($stub->calls[7][1]));
        $this->assertNull($q->peek('nope'));
        $this->assertSame(['queues' => []], $q->stats());
        $this->assertSame([], $stub->calls[9][2], 'stats of every queue has no key');
        $this->assertSame(4, $q->redrive('jobs', ['limit' => 4]));
        $this->assertTrue($q->pause('jobs'));
        $this->assertFalse($q->resume('gone'));
        $this->assertSame(2, $q->purge('jobs'));
        $this->assertTrue($q->delete('jobs'));
        $this->assertSame(['paused' => false], $q->configure('jobs', ['paused' => false]));
        $this->assertSame("\x0e{\"paused\":false}", $stub->calls[15][1]);
        $c = new Ferry\Client('127.0.0.1:1');
        $this->assertSame($c->queue(), $c->queue());
    }

    public function testConsumeThroughAStub(): void
    {
        $stub = new class {
            public array $calls = [];
            public array $jobs = [];

            public function call(string $service, string $payload = '', array $options = []): string
            {
                $this->calls[] = [ord($payload[0]), $payload, $options];
                return match (ord($payload[0])) {
                    2 => array_shift($this->jobs) ?? "\x01", // reserve: the jobs, then EMPTY
                    3, 6 => "\x00", // ack, bury
                    4 => "\x02", // release: STALE
                };
            }
        };
        foreach (['ok', 'fail', 'self', 'four'] as $i => $p) {
            $stub->jobs[] = pack('CJJNn', 0, $i + 1, 10 + $i, 1, 0) . $p;
        }
        $q = new Ferry\Servants\Queue($stub);
        $seen = [];
        $errors = [];
        $handler = function (Ferry\Servants\ConsumedJob $job) use (&$seen): void {
            $seen[] = $job->payload;
            if ($job->payload === 'fail') {
                throw new RuntimeException('no');
            }
            if ($job->payload === 'self') {
                $job->bury('mine');
            }
        };
        $n = $q->consume('jobs', $handler, ['max_jobs' => 3, 'wait_ms' => 1000,
            'on_error' => function (Throwable $e, $job) use (&$errors): void {
                $errors[] = [$e->getMessage(), $job->id];
            }]);
        $this->assertSame(3, $n);
        $this->assertSame(['ok', 'fail', 'self'], $seen);
        $this->assertSame([['no', 2]], $errors);
        $this->assertSame([2, 3, 2, 4, 2, 6], array_column($stub->calls, 0), 'ack, release, the handler\'s bury');
        $this->assertSame(0xffffffff, unpack('N', $stub->calls[3][1], 17)[1], 'released by backoff_ms');
        $this->assertSame(6000, $stub->calls[0][2]['deadline_ms']);
        // until_empty: the fourth job, then EMPTY ends the loop
        $this->assertSame(1, $q->consume('jobs', $handler, ['until_empty' => true, 'release' => ['delay_ms' => 5]]));
        $stops = 0;
        $this->assertSame(0, $q->consume('jobs', $handler, ['stop' => function () use (&$stops): bool {
            return ++$stops > 2;
        }, 'wait_ms' => 0]));
        $this->assertSame(3, $stops);
    }

    public function testTheVectorsCoverEveryTopicOpAndStatus(): void
    {
        $v = self::vec();
        foreach (['requests', 'replies'] as $kind) {
            $seen = array_unique(array_column(array_filter($v[$kind], fn($r) => $r['service'] === 'topic'), 'op'));
            $this->assertSame([], array_values(array_diff(array_keys(Codec::TOPIC_OPS), $seen)), $kind);
        }
        $st = array_unique(array_map(fn($r) => $r['result']['status'],
            array_filter($v['replies'], fn($r) => $r['service'] === 'topic' && isset($r['result']))));
        sort($st);
        $this->assertSame(['EMPTY', 'NOT_FOUND', 'OK'], array_values($st));
    }

    public static function badTopicArgs(): array
    {
        return [
            'group' => ['subscribe', ['pattern' => 'a', 'group' => str_repeat('g', 256)]],
            'policy' => ['subscribe', ['pattern' => 'a', 'policy' => 'block']],
            'max_pending' => ['subscribe', ['pattern' => 'a', 'max_pending' => 1 << 32]],
            'not an int' => ['poll', ['sub_id' => 1, 'wait_ms' => '5']],
            'sub_id' => ['poll', ['sub_id' => -1]],
            'sub_id text' => ['unsubscribe', ['sub_id' => 'one']],
            'op' => ['nope', []],
        ];
    }

    /** @dataProvider badTopicArgs */
    public function testTopicArgumentsOutOfRange(string $op, array $a): void
    {
        $this->expectException(InvalidArgumentException::class);
        Codec::encodeTopic($op, $a);
    }

    public function testTopicStatusesAnOpNeverGetsAreInvalid(): void
    {
        foreach (array_keys(Codec::TOPIC_OPS) as $op) {
            try {
                Codec::decodeTopic($op, "\x02" . str_repeat("\x00", 8));
                $this->fail("$op decoded status 2");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString('ferry.topic', $e->getMessage());
            }
        }
        $this->assertSame(['', "\x05"], Codec::encodeTopic('stats', ['sub_id' => null]));
        $this->expectException(InvalidArgumentException::class);
        Codec::decodeTopic('stats', "\x00{nope");
    }

    public function testTopicHelpersThroughAStub(): void
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
        $msg = fn(int $seq, string $subject, string $p): string => pack('Jn', $seq, strlen($subject)) . $subject
            . pack('N', strlen($p)) . $p;
        $stub->replies = [pack('CN', 0, 2), pack('CJ', 0, 9),
            pack('CJN', 0, 2, 2) . $msg(3, 'a.b', 'x') . $msg(4, 'a.c', ''), pack('CJ', 1, 5), "\x03", "\x00", "\x03", "\x00{\"subscriptions\":1}", "\x03"];
        $t = new Ferry\Servants\Topic($stub);
        $this->assertSame(2, $t->publish('a.b', 'x'));
        $this->assertSame(['ferry.topic', "\x01x", ['key' => 'a.b']], $stub->calls[0]);
        $this->assertSame(9, $t->subscribe('a.*', ['group' => 'g', 'max_pending' => 2, 'policy' => 'close']));
        $this->assertSame(['ferry.topic', "\x02\x01g\x00\x00\x00\x02\x01", ['key' => 'a.*']], $stub->calls[1]);
        $this->assertSame(['messages' => [['seq' => 3, 'subject' => 'a.b', 'payload' => 'x'],
            ['seq' => 4, 'subject' => 'a.c', 'payload' => '']], 'dropped' => 2],
            $t->poll(9, ['wait_ms' => 1000, 'max_msgs' => 10]));
        $this->assertSame(['deadline_ms' => 6000], $stub->calls[2][2]);
        $this->assertSame(['messages' => [], 'dropped' => 5], $t->poll(9));
        $this->assertSame(['deadline_ms' => 5000], $stub->calls[3][2]);
        $this->assertNull($t->poll(9));
        $this->assertTrue($t->unsubscribe(9));
        $this->assertFalse($t->unsubscribe(9));
        $this->assertSame(['subscriptions' => 1], $t->stats());
        $this->assertSame("\x05", $stub->calls[7][1]);
        $this->assertNull($t->stats(9));
        $c = new Ferry\Client('127.0.0.1:1');
        $this->assertSame($c->topic(), $c->topic());
    }

    public function testListenThroughAStub(): void
    {
        $stub = new class {
            public array $calls = [];
            public array $replies = [];

            public function call(string $service, string $payload = '', array $options = []): string
            {
                $this->calls[] = [$service, $payload, $options];
                $r = array_shift($this->replies);
                if ($r instanceof Throwable) {
                    throw $r;
                }
                return $r;
            }
        };
        $msg = fn(int $seq, string $p): string => pack('Jn', $seq, 1) . 'x' . pack('N', strlen($p)) . $p;
        $stub->replies = [pack('CJ', 0, 1), new Ferry\Exception\DeadlineException('cut short'),
            pack('CJN', 0, 4, 2) . $msg(5, 'a') . $msg(6, 'fail'), "\x03", pack('CJ', 0, 2),
            pack('CJN', 0, 0, 2) . $msg(1, 'b') . $msg(2, 'c'), "\x00"];
        $t = new Ferry\Servants\Topic($stub);
        $seen = [];
        $gaps = [];
        $errors = [];
        $n = $t->listen('x', function (array $m) use (&$seen): void {
            $seen[] = $m['payload'];
            if ($m['payload'] === 'fail') {
                throw new RuntimeException('no');
            }
        }, ['max' => 3, 'wait_ms' => 100, 'on_gap' => function ($d, $r) use (&$gaps): void {
            $gaps[] = [$d, $r];
        }, 'on_error' => function (Throwable $e, array $m) use (&$errors): void {
            $errors[] = [$e->getMessage(), $m['seq']];
        }]);
        $this->assertSame(3, $n);
        $this->assertSame(['a', 'fail', 'b'], $seen, 'c is the rest of an answer past max: lost');
        $this->assertSame([[4, false], [0, true]], $gaps);
        $this->assertSame([['no', 6]], $errors);
        // subscribe, poll (DEADLINE), poll, poll (gone), subscribe, poll, unsubscribe of the second
        $this->assertSame([2, 3, 3, 3, 2, 3, 4], array_map(fn($c) => ord($c[1][0]), $stub->calls));
        $this->assertSame(2, unpack('J', $stub->calls[6][1], 1)[1]);
        // until_empty and stop
        $stub->calls = [];
        $stub->replies = [pack('CJ', 0, 3), pack('CJ', 1, 0), "\x00"];
        $this->assertSame(0, $t->listen('x', fn() => null, ['until_empty' => true, 'wait_ms' => 10]));
        $stub->replies = [pack('CJ', 0, 3), "\x00"];
        $this->assertSame(0, $t->listen('x', fn() => null, ['stop' => fn() => true]));
        $this->expectException(InvalidArgumentException::class);
        $t->listen('x', fn() => null, ['wait_ms' => 0]);
    }
}
