<?php
// SPDX-License-Identifier: MIT
/*
 * QueueTest.php - $client->queue() against a real ferryd: a job's round
 * trip with tokens above PHP_INT_MAX as well as below, dedup, peek and
 * stats, and consume(): every job acked once, a throwing handler's job
 * released and delivered again, a bury by the handler, until_empty and
 * max_jobs.
 */

declare(strict_types=1);

use Ferry\Client;
use Ferry\Exception\InvalidArgumentException;
use Ferry\Servants\ConsumedJob;
use PHPUnit\Framework\TestCase;

final class QueueTest extends TestCase
{
    private static ?Ferryd $d = null;
    private static ?Client $c = null;

    public static function setUpBeforeClass(): void
    {
        self::$d = new Ferryd();
        self::$c = new Client(self::$d->tcp, ['persistent' => false]);
    }

    public static function tearDownAfterClass(): void
    {
        self::$c?->close();
        self::$d?->cleanup();
    }

    public function testRoundTripsWithEveryKindOfToken(): void
    {
        $q = self::$c->queue();
        $kinds = [];
        for ($i = 0; $i < 40; $i++) {
            $p = $q->push('t.round', "job-$i", ['priority' => 3]);
            $this->assertIsInt($p['id']);
            $this->assertFalse($p['dup']);
            $job = $q->reserve('t.round');
            $this->assertSame([$p['id'], "job-$i", 3, 1], [$job['id'], $job['payload'], $job['priority'],
                $job['attempts']]);
            $kinds[gettype($job['token'])] = true;
            $this->assertSame(['status' => 'OK', 'visibility_ms' => 5000],
                $q->touch('t.round', $job['id'], $job['token'], ['visibility_ms' => 5000]));
            $this->assertSame(['status' => 'OK'], $q->ack('t.round', $job['id'], $job['token']));
            $this->assertSame(['status' => 'NOT_FOUND'], $q->ack('t.round', $job['id'], $job['token']));
        }
        // a random 64-bit token is above PHP_INT_MAX half the time: a decimal string, sent back as it came
        $kinds += ['integer' => false, 'string' => false];
        ksort($kinds);
        $this->assertSame(['integer' => true, 'string' => true], $kinds);
        $this->assertNull($q->reserve('t.round', ['wait_ms' => 50]));
        $st = $q->stats('t.round');
        $this->assertSame(['t.round', 40, 0], [$st['name'], $st['acks'], $st['ready']]);
        $this->assertContains('t.round', array_column($q->stats()['queues'], 'name'));
        $this->assertNull($q->stats('t.never'));
    }

    public function testDedupPeekAndDelete(): void
    {
        $q = self::$c->queue();
        $a = $q->push('t.dedup', 'a', ['dedup' => 'order-1']);
        $this->assertSame(['id' => $a['id'], 'dup' => true], $q->push('t.dedup', 'b', ['dedup' => 'order-1']));
        $q->push('t.dedup', 'later', ['delay_ms' => 60000]);
        $ready = $q->peek('t.dedup');
        $this->assertSame([[$a['id'], 'ready', 'a']], array_map(fn($e) => [$e['id'], $e['state'], $e['payload']],
            $ready));
        $this->assertSame(['delayed'], array_column($q->peek('t.dedup', ['which' => 'delayed']), 'state'));
        try {
            $q->delete('t.dedup');
            $this->fail('deleted a queue holding jobs');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('holds', $e->getMessage());
        }
        $this->assertSame(2, $q->purge('t.dedup'));
        $this->assertTrue($q->delete('t.dedup'));
        $this->assertFalse($q->delete('t.dedup'));
        $this->assertNull($q->peek('t.dedup'));
    }

    public function testConsume(): void
    {
        $q = self::$c->queue();
        $this->assertSame([], $q->configure('t.consume', ['backoff_ms' => []])['backoff_ms']);
        for ($i = 0; $i < 10; $i++) {
            $q->push('t.consume', "job-$i");
        }
        $q->push('t.consume', 'poison', ['priority' => -1]);
        $done = [];
        $failedOnce = false;
        $errors = [];
        $handler = function (ConsumedJob $job) use (&$done, &$failedOnce): void {
            if ($job->payload === 'job-3' && !$failedOnce) {
                $failedOnce = true;
                throw new RuntimeException('transient');
            }
            if ($job->payload === 'poison') {
                $job->bury('poison pill');
                return;
            }
            $done[$job->payload] = $job->attempts;
        };
        $onError = function (Throwable $e, ConsumedJob $j) use (&$errors): void {
            $errors[] = [$e->getMessage(), $j->payload];
        };
        $n = $q->consume('t.consume', $handler, ['until_empty' => true, 'wait_ms' => 200, 'on_error' => $onError]);
        $this->assertSame(12, $n);
        $this->assertCount(10, $done);
        $this->assertSame(2, $done['job-3'], 'the released job came back, attempt 2');
        $this->assertSame(1, $done['job-0']);
        $this->assertSame([['transient', 'job-3']], $errors);
        $st = $q->stats('t.consume');
        $this->assertSame([10, 1, 1, 0, 0],
            [$st['acks'], $st['releases'], $st['buries'], $st['ready'], $st['reserved']]);
        $dead = $q->peek('t.consume', ['which' => 'dead']);
        $this->assertSame(['poison pill'], array_column($dead, 'reason'));

        $q->push('t.consume', 'one');
        $q->push('t.consume', 'two');
        $this->assertSame(1, $q->consume('t.consume', fn() => null, ['max_jobs' => 1]));
        $this->assertSame(1, $q->stats('t.consume')['ready']);
    }
}
