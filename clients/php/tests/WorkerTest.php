<?php
// SPDX-License-Identifier: MIT
/*
 * WorkerTest.php - Ferry\Worker (through the conformance driver's worker,
 * which uses only the public API) against a real ferryd: several deferred
 * jobs held at once within the credit, CANCEL seen by the job, SIGTERM ->
 * DRAIN with the held jobs finished and exit 0, heartbeats keeping an idle
 * worker connected, and re-registering after ferryd restarts.
 */

declare(strict_types=1);

use Ferry\Client;
use Ferry\Exception;
use PHPUnit\Framework\TestCase;

final class WorkerTest extends TestCase
{
    private ?Ferryd $d = null;
    private array $workers = [];

    protected function tearDown(): void
    {
        foreach ($this->workers as $w) {
            $w->stop();
        }
        $this->d?->cleanup();
    }

    private function worker(array $services, array $extra = []): WorkerProc
    {
        return $this->workers[] = php_worker($this->d->unix, $this->d->dir, $services, $extra);
    }

    public function testDeferredJobsHeldAtOnceWithinCredit(): void
    {
        $this->d = new Ferryd();
        $w = $this->worker(['s' => 2]);
        $c = new Client($this->d->unix, ['persistent' => false]);
        $calls = [];
        for ($i = 0; $i < 6; $i++) {
            $calls[] = ['s', "sleep:150:r$i"];
        }
        $r = $c->callMany($calls);
        $this->assertSame(['r0', 'r1', 'r2', 'r3', 'r4', 'r5'], $r);
        $held = array_column(array_filter($w->events(), fn ($e) => $e['event'] === 'start'), 'held');
        $this->assertCount(6, $held);
        $this->assertSame(2, max($held), 'one process held two sleeping jobs at once');
    }

    public function testCancelReachesTheJob(): void
    {
        $this->d = new Ferryd();
        $w = $this->worker(['s' => 1]);
        $c = new Client($this->d->unix, ['persistent' => false]);
        $h = $c->send('s', 'hang', ['deadline_ms' => 10000]);
        $this->assertTrue((bool)TestEnv::waitFor(fn () => str_contains($w->out(), '"start"')));
        $c->cancel($h);
        try {
            $c->wait($h);
            $this->fail('hang answered');
        } catch (Exception\CancelledException $e) {
        }
        $this->assertTrue((bool)TestEnv::waitFor(fn () => str_contains($w->out(), '"cancel"')));
        // The credit came back: the next job runs.
        $this->assertSame('next', $c->call('s', 'next'));
    }

    public function testSigtermDrainsAndFinishesHeldJobs(): void
    {
        $this->d = new Ferryd();
        $w = $this->worker(['s' => 4]);
        $c = new Client($this->d->unix, ['persistent' => false]);
        $a = $c->send('s', 'sleep:400:A');
        $b = $c->send('s', 'sleep:300:B');
        $this->assertTrue((bool)TestEnv::waitFor(fn () => substr_count($w->out(), '"start"') === 2));
        $w->signal(SIGTERM);
        $this->assertSame('A', $c->wait($a));
        $this->assertSame('B', $c->wait($b));
        $this->assertSame(0, $w->wait(5000));
        $ev = $w->events();
        $this->assertSame(['event' => 'exit', 'handled' => 2], end($ev));
    }

    public function testHeartbeatsKeepAnIdleWorker(): void
    {
        // ferryd closes a connection silent for 3 x its heartbeat.
        $this->d = new Ferryd(['--heartbeat-ms', '200']);
        $w = $this->worker(['s' => 1], ['--heartbeat-ms', '200']);
        usleep(1500000); // 7 intervals; ferryd closes after 3 silent ones
        $c = new Client($this->d->unix, ['persistent' => false]);
        $this->assertSame('alive', $c->call('s', 'alive'));
        $this->assertSame(1, substr_count($w->out(), '"ready"'), 'the worker never had to reconnect');
        $this->assertStringNotContainsString('closed', $w->err());
    }

    public function testReRegistersAfterFerrydRestarts(): void
    {
        $this->d = new Ferryd();
        $w = $this->worker(['s' => 1]);
        $this->d = $this->d->restart();
        $this->assertTrue((bool)TestEnv::waitFor(fn () => substr_count($w->out(), '"ready"') === 2, 10000));
        $c = new Client($this->d->unix, ['persistent' => false]);
        $this->assertSame('back', $c->call('s', 'back'));
    }

    public function testABadTokenFailsTheWorker(): void
    {
        $this->d = new Ferryd(['--worker-token', 'wt']);
        $p = new Proc([PHP_BINARY, dirname(__DIR__) . '/conformance/driver.php', 'worker', '--addr', $this->d->unix,
                       '--service', 's', '--credit', '1', '--token', 'nope'], $this->d->dir, 'badtoken');
        $this->assertSame(1, $p->wait(10000));
        $ev = json_decode(trim($p->out()), true);
        $this->assertSame(['failed', 'UNAUTHORIZED', 15], [$ev['event'], $ev['error'], $ev['code']]);
    }

    public function testABadRegistrationFailsTheWorker(): void
    {
        $this->d = new Ferryd();
        $p = new Proc([PHP_BINARY, dirname(__DIR__) . '/conformance/driver.php', 'worker', '--addr', $this->d->unix,
                       '--service', 'ok', '--credit', '0'], $this->d->dir, 'credit0');
        $this->assertSame(1, $p->wait(10000));
        $ev = json_decode(trim($p->out()), true);
        $this->assertSame('failed', $ev['event']);
        $this->assertSame('INVALID_ARGUMENT', $ev['error']);
    }

    public function testABuiltInCannotBeShadowed(): void
    {
        $this->d = new Ferryd();
        $p = new Proc([PHP_BINARY, dirname(__DIR__) . '/conformance/driver.php', 'worker', '--addr', $this->d->unix,
                       '--service', 'echo', '--credit', '1'], $this->d->dir, 'shadow');
        $this->assertSame(1, $p->wait(10000));
        $ev = json_decode(trim($p->out()), true);
        // ferryd refused the REGISTER (decision 7): Worker::run threw its ERROR.
        $this->assertSame(['failed', 'INVALID_ARGUMENT', 11], [$ev['event'], $ev['error'], $ev['code']]);
        $this->assertStringContainsString('built-in', $ev['message']);
    }
}
