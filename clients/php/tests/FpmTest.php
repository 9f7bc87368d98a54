<?php
// SPDX-License-Identifier: MIT
/*
 * FpmTest.php - the frontend Ferry\Client is built for: nginx + php-fpm
 * (FpmStack) serving a page that calls "fib" through ferryd's unix socket.
 * The bodies are the fib answers; each FPM process greets ferryd once and
 * reuses its persistent connection for every later page view (ferryd's
 * caller count is the number of FPM processes, not of requests); the
 * connections survive a ferryd restart; ?fresh=1 connects per request.
 */

declare(strict_types=1);

use PHPUnit\Framework\TestCase;

final class FpmTest extends TestCase
{
    private ?FpmStack $s = null;
    private int $reused = 0;

    protected function setUp(): void
    {
        // Each test's own stack; a recycling one for the test that wants it.
        $this->s = new FpmStack(2, $this->getName() === 'testRecycledChildren' ? 5 : 0);
    }

    public function testRecycledChildren(): void
    {
        // pm.max_requests 5: children exit and new ones (new pids) greet ferryd.
        [$procs, $connects] = $this->views(30);
        $this->assertGreaterThanOrEqual(6, $procs);
        $this->assertSame($procs, $connects);
        // The state files of the children gone are removed by the new ones
        // (those that left after the last handshake may still be there).
        $this->assertLessThanOrEqual(4, count(glob($this->s->dir . '/tmp/ferry-php-*/*.json')));
        $this->assertTrue((bool)TestEnv::waitFor(fn () => $this->s->callers() <= 2, 3000));
    }

    protected function tearDown(): void
    {
        $this->s?->cleanup();
    }

    private function views(int $count, string $query = 'n=10'): array
    {
        $pids = [];
        $connects = 0;
        $this->reused = 0;
        for ($i = 0; $i < $count; $i++) {
            [$status, $h, $body] = $this->s->get($query);
            $this->assertSame(200, $status, "view $i: $body\n" . $this->s->logs());
            $this->assertSame('{"N": 10, "result": "0 1 1 2 3 5 8 13 21 34"}', $body);
            $pids[$h['x-ferry-pid']] = true;
            $connects += (int)$h['x-ferry-connects'];
            $this->reused += (int)$h['x-ferry-reused'];
        }
        return [count($pids), $connects];
    }

    public function testPersistentConnectionPerFpmProcess(): void
    {
        [$procs, $connects] = $this->views(30);
        $this->assertGreaterThanOrEqual(1, $procs);
        $this->assertLessThanOrEqual(2, $procs);
        // One HELLO per FPM process over 30 page views, not one per view.
        $this->assertSame($procs, $connects);
        $this->assertSame($procs, $this->s->callers(), 'ferryd sees one caller connection per FPM process');
        $this->assertSame(30 - $procs, $this->reused, 'every later view took over a greeted socket');
        // What a later view knows of the handshake: one state file per process.
        $this->assertCount($procs, glob($this->s->dir . '/tmp/ferry-php-*/*.json'));

        // A ferryd restart: each process's dead socket is replaced at its next view.
        $this->s->restartFerryd();
        [$procs2, $connects2] = $this->views(30);
        $this->assertLessThanOrEqual(2, $procs2);
        $this->assertSame($procs2, $connects2, 'one new HELLO per process after the restart');
        $this->assertSame($procs2, $this->s->callers());
        $this->assertStringNotContainsString('Fatal', (string)@file_get_contents($this->s->dir . '/php-errors.log'));
    }

    public function testAnotherNameIsAnotherHandshake(): void
    {
        [$procs] = $this->views(10);
        // Other credentials on the process's one persistent socket: greeted
        // again, never taken over with the old ones.
        [$p2, $c2] = $this->views(10, 'n=10&name=other');
        $this->assertSame($p2, $c2);
        $this->assertSame(10 - $p2, $this->reused);
        [$p3, $c3] = $this->views(10);
        $this->assertSame($p3, $c3);
        $this->assertLessThanOrEqual(2, $this->s->callers());
    }

    public function testAPageThatLeavesACallInFlightDoesNotPassItsSocketOn(): void
    {
        $this->views(6);
        [$status, $h, $body] = $this->s->get('abandon=1');
        $this->assertSame([200, "abandoned"], [$status, trim($body)]);
        $pid = $h['x-ferry-pid'];
        // That process's next view greets ferryd again; the others reuse.
        $seen = false;
        for ($i = 0; $i < 20 && !$seen; $i++) {
            [$status, $h2, $body] = $this->s->get('n=10');
            $this->assertSame(200, $status, $body);
            if ($h2['x-ferry-pid'] === $pid) {
                $seen = true;
                $this->assertSame(['1', '0'], [$h2['x-ferry-connects'], $h2['x-ferry-reused']]);
            } else {
                $this->assertSame('0', $h2['x-ferry-connects']);
            }
        }
        $this->assertTrue($seen, 'the process came round again');
    }

    public function testFreshConnectionPerRequest(): void
    {
        [, $connects] = $this->views(10, 'n=10&fresh=1');
        $this->assertSame(10, $connects);
        $this->assertSame(0, $this->reused);
        // Closed at the end of each view: none left at ferryd.
        $this->assertTrue((bool)TestEnv::waitFor(fn () => $this->s->callers() === 0, 3000));
    }

    public function testErrorsReachThePage(): void
    {
        [$status, $h, $body] = $this->s->get('n=0');
        $this->assertSame(502, $status);
        $this->assertSame('INVALID_ARGUMENT', $h['x-ferry-error'] ?? null, $body);
        $this->assertStringContainsString('n must be an integer between 1 and 10000', $body);
    }
}
