<?php
// SPDX-License-Identifier: MIT
/*
 * FerryCallTest.php - bin/ferry-call beside build/ferry's `ferry call`:
 * the same stdout and exit status for a reply, a ferry error, a usage
 * error and a connection error, and the same "NAME: message" line.
 */

declare(strict_types=1);

use PHPUnit\Framework\TestCase;

final class FerryCallTest extends TestCase
{
    private static function exec(array $cmd, string $stdin = ''): array
    {
        $p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        @fwrite($pipes[0], $stdin); // a usage error exits before reading it
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        $rc = proc_close($p);
        return [$rc, $out, $err];
    }

    public function testExitCodesAsFerryCall(): void
    {
        $d = new Ferryd();
        try {
            $dead = '127.0.0.1:' . TestEnv::freePort();
            $cases = [
                [['echo', 'hi'], $d->unix, 0],
                [['echo'], $d->unix, 0],
                [['echo', '-'], $d->tcp, 0],
                [['nosuch', 'x', '--timeout', '300'], $d->unix, 1],
                [['--timeout', 'soon', 'echo', 'x'], $d->unix, 2],
                [['echo', 'a', 'b'], $d->unix, 2],
                [[], $d->unix, 2],
                [['echo', 'x'], $dead, 3],
                [['echo', 'x'], 'bad', 2],
            ];
            foreach ($cases as [$args, $addr, $want]) {
                [$rcP, $outP, $errP] = self::exec(array_merge([PHP_BINARY, dirname(__DIR__) . '/bin/ferry-call'],
                                                             $args, ['--addr', $addr]), "from stdin");
                [$rcC, $outC, $errC] = self::exec(array_merge([TestEnv::bin('ferry'), 'call'], $args,
                                                             ['--addr', $addr]), "from stdin");
                $what = implode(' ', $args) . " @ $addr";
                $this->assertSame($want, $rcC, "ferry call $what: $errC");
                $this->assertSame($rcC, $rcP, "ferry-call $what: $errP");
                $this->assertSame($outC, $outP, $what);
                if ($want === 1) {
                    $this->assertSame($errC, $errP, $what);
                }
                if ($want === 3) {
                    $this->assertStringStartsWith('CONNECTION: ', $errP);
                }
            }
        } finally {
            $d->cleanup();
        }
    }
}
