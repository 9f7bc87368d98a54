<?php
// SPDX-License-Identifier: MIT
/*
 * TopicTest.php - $client->topic() against a real ferryd: publish and poll
 * across two clients (a wildcard, two subscriptions, a group sharing in
 * turn, the gap notice, policy close, unsubscribe, bad subjects), and
 * listen(): every message in order, a gap told, the subscription made
 * again after it expired, max, until_empty and stop.
 */

declare(strict_types=1);

use Ferry\Client;
use Ferry\Exception\InvalidArgumentException;
use Ferry\Exception\SlowConsumerException;
use PHPUnit\Framework\TestCase;

final class TopicTest extends TestCase
{
    private static ?Ferryd $d = null;
    private static ?Client $c = null;
    private static ?Client $p = null;

    public static function setUpBeforeClass(): void
    {
        self::$d = new Ferryd(['--topic-idle-ms', '500']);
        self::$c = new Client(self::$d->tcp, ['persistent' => false]);
        self::$p = new Client(self::$d->tcp, ['persistent' => false]);
    }

    public static function tearDownAfterClass(): void
    {
        self::$c?->close();
        self::$p?->close();
        self::$d?->cleanup();
    }

    private static function payloads(?array $got): array
    {
        return array_column($got['messages'] ?? [], 'payload');
    }

    public function testPublishPollAndTheGap(): void
    {
        $t = self::$c->topic();
        $pub = self::$p->topic();
        $a = $t->subscribe('t.orders.*');
        $b = $t->subscribe('t.orders.>', ['max_pending' => 2]);
        $this->assertIsInt($a);
        $this->assertSame(2, $pub->publish('t.orders.eu', 'o1'));
        $this->assertSame(1, $pub->publish('t.orders.eu.vip', 'o2'));
        $this->assertSame(0, $pub->publish('t.none', 'x'));
        $this->assertSame(['messages' => [['seq' => 1, 'subject' => 't.orders.eu', 'payload' => 'o1']],
            'dropped' => 0], $t->poll($a, ['wait_ms' => 1000]));
        $this->assertSame(['messages' => [], 'dropped' => 0], $t->poll($a));
        for ($i = 0; $i < 3; $i++) {
            $pub->publish('t.orders.x.y', (string)$i);
        }
        $gap = $t->poll($b, ['max_msgs' => 10]);
        $this->assertSame(3, $gap['dropped']);
        $this->assertSame([4, 5], array_column($gap['messages'], 'seq'));
        $this->assertSame(['1', '2'], self::payloads($gap));
        $this->assertTrue($t->unsubscribe($a));
        $this->assertFalse($t->unsubscribe($a));
        $this->assertNull($t->poll($a));
        $this->assertNull($t->stats($a));
        $this->assertTrue($t->unsubscribe($b));
    }

    public function testAGroupSharesInTurn(): void
    {
        $g1 = self::$c->topic()->subscribe('t.jobs', ['group' => 'w']);
        $g2 = self::$p->topic()->subscribe('t.jobs', ['group' => 'w']);
        for ($i = 0; $i < 4; $i++) {
            $this->assertSame(1, self::$p->topic()->publish('t.jobs', (string)$i));
        }
        $this->assertSame(['0', '2'], self::payloads(self::$c->topic()->poll($g1, ['max_msgs' => 10])));
        $this->assertSame(['1', '3'], self::payloads(self::$p->topic()->poll($g2)));
        $st = self::$c->topic()->stats($g1);
        $this->assertSame(['t.jobs', 'w', 2], [$st['pattern'], $st['group'], $st['delivered']]);
        $this->assertGreaterThanOrEqual(2, self::$c->topic()->stats()['subscriptions']);
        self::$c->topic()->unsubscribe($g1);
        self::$p->topic()->unsubscribe($g2);
    }

    public function testPolicyCloseAndBadSubjects(): void
    {
        $t = self::$c->topic();
        $s = $t->subscribe('t.slow', ['max_pending' => 1, 'policy' => 'close']);
        $this->assertSame(1, self::$p->topic()->publish('t.slow', '1'));
        $this->assertSame(0, self::$p->topic()->publish('t.slow', '2'));
        try {
            $t->poll($s);
            $this->fail('polled a closed subscription');
        } catch (SlowConsumerException $e) {
            $this->assertStringContainsString('slow subscriber', $e->getMessage());
        }
        $this->assertNull($t->poll($s));
        try {
            self::$p->topic()->publish('ferry.x', 'no');
            $this->fail('published under ferry.');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString("ferryd's own events", $e->getMessage());
        }
        $this->expectException(InvalidArgumentException::class);
        $t->subscribe('t.>.x');
    }

    public function testListen(): void
    {
        $t = self::$c->topic();
        $pub = self::$p->topic();
        $seen = [];
        $gaps = [];
        $step = 0;
        // stop() is asked before each poll: it publishes for the next one.
        $n = $t->listen('t.feed.*', function (array $m) use (&$seen): void {
            $seen[] = [$m['seq'], $m['payload']];
        }, ['max_pending' => 2, 'wait_ms' => 300, 'max' => 5,
            'on_gap' => function ($dropped, $resubscribed) use (&$gaps): void {
                $gaps[] = [$dropped, $resubscribed];
            },
            'stop' => function () use (&$step, $pub): bool {
                $step++;
                if ($step === 1) {
                    $pub->publish('t.feed.a', 'first');
                } elseif ($step === 2) {
                    for ($i = 0; $i < 4; $i++) {
                        $pub->publish('t.feed.b', "m$i");
                    }
                } elseif ($step === 3) {
                    usleep(1200 * 1000); // away past topic_idle_ms: the subscription expires
                } elseif ($step === 5) {
                    $pub->publish('t.feed.c', 'again');
                }
                return $step > 8;
            }]);
        $this->assertSame(4, $n);
        $this->assertSame([[1, 'first'], [4, 'm2'], [5, 'm3'], [1, 'again']], $seen);
        $this->assertSame([[2, false], [0, true]], $gaps);
        $this->assertSame(0, $t->stats()['subscriptions'], 'unsubscribed on the way out');
        // until_empty ends at the first empty poll; max cuts an answer short.
        $this->assertSame(0, $t->listen('t.none', fn() => null, ['until_empty' => true, 'wait_ms' => 50]));
        $got = [];
        $this->assertSame(1, $t->listen('t.two', function (array $m) use (&$got): void {
            $got[] = $m['payload'];
        }, ['max' => 1, 'stop' => function () use ($pub): bool {
            $pub->publish('t.two', 'x');
            $pub->publish('t.two', 'y');
            return false;
        }]));
        $this->assertSame(['x'], $got);
        $this->assertSame(0, $t->stats()['subscriptions']);
    }
}
