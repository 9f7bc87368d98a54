<?php
// SPDX-License-Identifier: MIT
/*
 * ClientTest.php - Ferry\Client against a real ferryd: calls over TCP and
 * the unix socket, errors as their exception classes, deadlines, callMany
 * matched by id, send/wait/cancel, the local TOO_BIG refusal, the
 * connects() counter, a shared persistent connection, and reconnecting
 * after ferryd restarts.
 */

declare(strict_types=1);

use Ferry\Client;
use Ferry\ErrorCode;
use Ferry\Exception;
use Ferry\FerryException;
use Ferry\WaitTimeoutException;
use PHPUnit\Framework\TestCase;

final class ClientTest extends TestCase
{
    private static ?Ferryd $d = null;
    private static ?WorkerProc $w = null;

    public static function setUpBeforeClass(): void
    {
        self::$d = new Ferryd(['--max-frame', '65536', '--worker-wait-ms', '200']);
        self::$w = php_worker(self::$d->unix, self::$d->dir, ['t' => 8]);
    }

    public static function tearDownAfterClass(): void
    {
        self::$w?->stop();
        self::$d?->cleanup();
    }

    public function testEchoOverTcpAndUnix(): void
    {
        foreach ([self::$d->tcp, self::$d->unix] as $addr) {
            $c = new Client($addr, ['persistent' => false]);
            $this->assertSame('hi', $c->call('echo', 'hi'));
            $this->assertSame("\x00\xff", $c->call('echo', "\x00\xff"));
            $this->assertSame('', $c->call('echo', ''));
            $this->assertSame(1, $c->connects());
            $info = $c->serverInfo();
            $this->assertSame(65536, $info['max_frame']);
            $this->assertSame(2, $info['version']);
            $this->assertSame(5000, $info['default_deadline_ms']);
            $this->assertSame(60000, $info['max_deadline_ms']);
            // A caller that announced no heartbeat is promised none.
            $this->assertSame(0, $info['heartbeat_ms']);
            $c->close();
        }
    }

    public function testClusterOnASingleNode(): void
    {
        $c = new Client(self::$d->tcp, ['persistent' => false]);
        $this->assertSame(['enabled' => false], $c->cluster());
        $this->assertSame(['enabled' => false], $c->cluster(['deadline_ms' => 5000]));
        $c->close();
    }

    public function testIpv6Address(): void
    {
        $s = @stream_socket_server('tcp://[::1]:0');
        if ($s === false) {
            $this->markTestSkipped('no ::1 here');
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        $port = (int)substr($name, strrpos($name, ':') + 1);
        $d = new Ferryd(['--listen', "[::1]:$port"]);
        try {
            $c = new Client("[::1]:$port", ['persistent' => false]);
            $this->assertSame('six', $c->call('echo', 'six'));
        } finally {
            $d->cleanup();
        }
    }

    public function testBadAddressesAreRefused(): void
    {
        foreach (['', 'nohost', 'host:', 'host:99999', '[::1]', 'unix:', '1.2.3.4:0'] as $bad) {
            try {
                new Client($bad);
                $this->fail("accepted '$bad'");
            } catch (Exception\InvalidArgumentException $e) {
                $this->assertStringContainsString('bad address', $e->getMessage());
            }
        }
    }

    public function testWorkerErrorsAreTheirClasses(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false]);
        try {
            $c->call('t', 'fail:boom');
            $this->fail('no exception');
        } catch (Exception\WorkerErrorException $e) {
            $this->assertSame([9, 'WORKER_ERROR', 'boom'], [$e->getCode(), $e->getErrorName(), $e->getMessage()]);
        }
        try {
            $c->call('t', 'invalid:no');
            $this->fail('no exception');
        } catch (Exception\InvalidArgumentException $e) {
            $this->assertSame(ErrorCode::INVALID_ARGUMENT, $e->getCode());
        }
        try {
            $c->call('nosuch', 'x', ['deadline_ms' => 2000]);
            $this->fail('no exception');
        } catch (Exception\UnknownServiceException $e) {
            $this->assertSame('UNKNOWN_SERVICE', $e->getErrorName());
        }
        $this->assertSame('php-conformance', $c->call('t', 'name'));
    }

    public function testDeadline(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false]);
        $t = microtime(true);
        try {
            $c->call('t', 'hang', ['deadline_ms' => 300]);
            $this->fail('no exception');
        } catch (Exception\DeadlineException $e) {
            $this->assertSame(7, $e->getCode());
        }
        $this->assertLessThan(5.0, microtime(true) - $t); // bounded, not a speed claim
        // The connection is still good afterwards.
        $this->assertSame('ok', $c->call('echo', 'ok'));
    }

    public function testCallManyMatchesById(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false]);
        $calls = [];
        for ($i = 0; $i < 500; $i++) {
            $calls["k$i"] = ['echo', "payload-$i"];
        }
        // Replies that come back in another order than asked.
        $calls['slow'] = ['t', 'sleep:200:slow'];
        $calls['fast'] = ['t', 'sleep:10:fast'];
        $calls['bad'] = ['service' => 'nosuch', 'payload' => 'x', 'deadline_ms' => 100];
        $r = $c->callMany($calls);
        $this->assertSame(array_keys($calls), array_keys($r));
        for ($i = 0; $i < 500; $i++) {
            $this->assertSame("payload-$i", $r["k$i"]);
        }
        $this->assertSame('slow', $r['slow']);
        $this->assertSame('fast', $r['fast']);
        $this->assertInstanceOf(FerryException::class, $r['bad']);
        $this->assertSame(1, $c->connects());
    }

    public function testSendWaitCancel(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false]);
        $a = $c->send('t', 'sleep:200:A');
        $h = $c->send('t', 'hang', ['deadline_ms' => 10000]);
        $b = $c->send('t', 'sleep:20:B');
        $this->assertSame('B', $c->wait($b));
        $this->assertSame('A', $c->wait($a));
        try {
            $c->wait($h, 100);
            $this->fail('hang answered');
        } catch (WaitTimeoutException $e) {
            $this->assertFalse($h->isDone());
        }
        $c->cancel($h);
        try {
            $c->wait($h);
            $this->fail('cancelled call answered');
        } catch (Exception\CancelledException $e) {
            $this->assertSame(12, $e->getCode());
        }
    }

    public function testTooBigIsRefusedLocally(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false]);
        $this->assertSame(strlen($c->call('echo', str_repeat('a', 65000))), 65000);
        try {
            $c->call('echo', str_repeat('a', 65536));
            $this->fail('sent a frame past max_frame');
        } catch (Exception\TooBigException $e) {
            $this->assertStringContainsString('65536', $e->getMessage());
        }
        // Refused before sending: the same connection carries on.
        $this->assertSame('x', $c->call('echo', 'x'));
        $this->assertSame(1, $c->connects());
    }

    public function testAReplyLargerThanOurMaxFrameIsTooBig(): void
    {
        $c = new Client(self::$d->unix, ['persistent' => false, 'max_frame' => 2048]);
        $this->assertSame(str_repeat('s', 2000), $c->call('echo', str_repeat('s', 2000)));
        try {
            $c->call('t', 'size:5000');
            $this->fail('got a reply past our max_frame');
        } catch (Exception\TooBigException $e) {
            $this->assertSame(2, $e->getCode());
        }
        // ferryd replaced the reply by an ERROR: the connection stays.
        $this->assertSame('still', $c->call('echo', 'still'));
        $this->assertSame(1, $c->connects());
        // Below the largest ERROR body is refused before connecting.
        $small = new Client(self::$d->unix, ['persistent' => false, 'max_frame' => 1027]);
        try {
            $small->connect();
            $this->fail('announced max_frame 1027');
        } catch (Exception\InvalidArgumentException $e) {
            $this->assertStringContainsString('1028', $e->getMessage());
        }
        $this->assertSame(0, $small->connects());
    }

    public function testPersistentConnectionIsShared(): void
    {
        $a = new Client(self::$d->unix, ['name' => 'shared']);
        $this->assertSame('1', $a->call('echo', '1'));
        $b = new Client(self::$d->unix, ['name' => 'shared']);
        $this->assertSame('2', $b->call('echo', '2'));
        // b took over a's greeted socket: no second HELLO.
        $this->assertSame(1, $a->connects());
        $this->assertSame(0, $b->connects());
        $ca = $a->send('echo', 'A');
        $cb = $b->send('echo', 'B');
        $this->assertSame('B', $b->wait($cb));
        $this->assertSame('A', $a->wait($ca));
        $a->close();
    }

    public function testOtherCredentialsGetTheirOwnConnection(): void
    {
        $a = new Client(self::$d->unix, ['name' => 'cred-a']);
        $b = new Client(self::$d->unix, ['name' => 'cred-b']);
        $this->assertSame('a', $a->call('echo', 'a'));
        $this->assertSame('b', $b->call('echo', 'b'));
        $this->assertSame('a2', $a->call('echo', 'a2'));
        $this->assertSame('b2', $b->call('echo', 'b2'));
        // Neither took over the other's socket, neither broke the other's.
        $this->assertSame([1, 1], [$a->connects(), $b->connects()]);
        $a->close();
        $b->close();
    }

    public function testConnectFailsAtOnceOnABadToken(): void
    {
        $d = new Ferryd(['--caller-token', 'sesame']);
        try {
            $c = new Client($d->unix, ['token' => 'wrong', 'persistent' => false]);
            try {
                $c->connect();
                $this->fail('connected with a wrong token');
            } catch (Exception\UnauthorizedException $e) {
                $this->assertSame(15, $e->getCode());
            }
            $ok = new Client($d->unix, ['token' => 'sesame', 'persistent' => false]);
            $this->assertSame('in', $ok->call('echo', 'in'));
        } finally {
            $d->cleanup();
        }
    }

    public function testNoFerrydIsAConnectionError(): void
    {
        $c = new Client('127.0.0.1:' . TestEnv::freePort(), ['persistent' => false]);
        try {
            $c->call('echo', 'x', ['deadline_ms' => 300]);
            $this->fail('called nobody');
        } catch (Exception\ConnectionException $e) {
            $this->assertSame(16, $e->getCode());
        }
        $this->assertSame(0, $c->connects());
    }

    public static function persistence(): array
    {
        return ['persistent' => [true], 'fresh' => [false]];
    }

    /** @dataProvider persistence */
    public function testReconnectsAfterFerrydRestarts(bool $persistent): void
    {
        $d = new Ferryd();
        try {
            $c = new Client($d->tcp, ['persistent' => $persistent, 'name' => 'restart-' . (int)$persistent]);
            $this->assertSame('before', $c->call('echo', 'before'));
            $d = $d->restart();
            // The old socket is dead: replaced at this call, once, transparently.
            $this->assertSame('after', $c->call('echo', 'after'));
            $this->assertSame(2, $c->connects());
            $this->assertSame('again', $c->call('echo', 'again'));
            $this->assertSame(2, $c->connects());
            $c->close();
        } finally {
            $d->cleanup();
        }
    }

    public function testCallWhileFerrydIsDownSucceedsOnceItIsBack(): void
    {
        $d = new Ferryd();
        $d->stop();
        $late = null;
        try {
            // ferryd comes back 400 ms from now, while the call waits for it.
            $late = new Proc(['/bin/sh', '-c', 'sleep 0.4; exec "$0" "$@"', TestEnv::bin('ferryd'),
                              '--listen', $d->tcp, '--http', '127.0.0.1:' . TestEnv::freePort(),
                              '--data-dir', $d->dir], $d->dir, 'late');
            $c = new Client($d->tcp, ['persistent' => false]);
            $this->assertSame('late', $c->call('echo', 'late', ['deadline_ms' => 5000]));
            $this->assertSame(1, $c->connects());
        } finally {
            $late?->stop();
            $d->cleanup();
        }
    }

    public function testHeartbeatKeepsAnIdleCallerThatPolls(): void
    {
        $d = new Ferryd(['--heartbeat-ms', '200']);
        try {
            $c = new Client($d->unix, ['persistent' => false, 'heartbeat_ms' => 200]);
            $this->assertSame('a', $c->call('echo', 'a'));
            $until = microtime(true) + 1.5; // 7 intervals; ferryd closes after 3 silent ones
            while (microtime(true) < $until) {
                $c->poll(50);
            }
            $this->assertSame('b', $c->call('echo', 'b'));
            $this->assertSame(1, $c->connects());
        } finally {
            $d->cleanup();
        }
    }

    public function testAStoppedFerrydIsTakenForDead(): void
    {
        $d = new Ferryd(['--heartbeat-ms', '200']);
        $w = php_worker($d->unix, $d->dir, ['hb' => 1]);
        try {
            $c = new Client($d->unix, ['persistent' => false, 'heartbeat_ms' => 100]);
            $h = $c->send('hb', 'hang', ['deadline_ms' => 20000]);
            $this->assertTrue((bool)TestEnv::waitFor(fn () => str_contains($w->out(), '"start"')));
            $d->signal(SIGSTOP);
            $t = microtime(true);
            try {
                $c->wait($h);
                $this->fail('answered by a stopped ferryd');
            } catch (Exception\ConnectionException $e) {
                $this->assertStringContainsString('silent', $e->getMessage());
            }
            $this->assertLessThan(10.0, microtime(true) - $t, 'long before the 20 s deadline');
            $d->signal(SIGCONT);
            $this->assertSame('back', $c->call('echo', 'back', ['deadline_ms' => 10000]));
            $this->assertSame(2, $c->connects());
        } finally {
            $d->signal(SIGCONT);
            $w->stop();
            $d->cleanup();
        }
    }
}
