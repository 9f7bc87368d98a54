<?php
// SPDX-License-Identifier: MIT
/*
 * FibTest.php - examples/fib/php/fib_worker.php answers byte for byte as
 * the C worker (examples/fib/fib_worker.c): each behind its own real
 * ferryd, both asked the same payloads (every n from 1 to 300, large ones,
 * the limits, and bad inputs chosen at jansson's edges plus seeded random
 * mutations), the replies or the errors (code and message) compared.
 */

declare(strict_types=1);

use Ferry\Client;
use Ferry\FerryException;
use PHPUnit\Framework\TestCase;

final class FibTest extends TestCase
{
    private static function answer(Client $c, string $payload): string
    {
        try {
            return 'REPLY ' . $c->call('fib', $payload, ['deadline_ms' => 20000]);
        } catch (FerryException $e) {
            return $e->getErrorName() . ' ' . $e->getCode() . ': ' . $e->getMessage();
        }
    }

    public static function payloads(): array
    {
        $p = [];
        for ($n = 1; $n <= 300; $n++) {
            $p[] = "{\"n\": $n}";
        }
        array_push($p, '{"n": 1000}', '{"n":4096}', '{"n": 10000}', '{"n": 10001}', '{"n": 0}', '{"n": -1}',
            '{"n": 1.0}', '{"n": 1e2}', '{"n": "5"}', '{"n": null}', '{"n": true}', '{"n": -0}', '{"n": 01}',
            '{}', '[]', '[{"n": 3}]', '', ' ', '5', 'null', '"too big"', '["a" "too big"]', '{"a": 1 "too big"}',
            '{"too big', '{"n": 3} "too big"', '{"n": 99999999999999999999}', '{"n": -99999999999999999999}',
            '{"n": 9223372036854775807}', '{"n": -9223372036854775808}', '{"n": 5, "x": 99999999999999999999}',
            '{"n": 5, "x": 1e400}', '{"n": 5, "x": 1e-400}', '{"n": 5, "x": "\u0000"}', '{"\u0000": 1, "n": 5}',
            "{\"n\": 5\0}", "{\"n\": 5}\0", "{\"n\"\0: 5}", '{"n": 5} x', " \t\r\n{\"n\" : 7 }\n", '{"n": 5, "n": 6}',
            "\xff", "{\"n\": 5, \"s\": \"\xc3\xa9\"}", "{\"n\": 5, \"s\": \"\xc3\"}", "{\"n\": 5, \"s\": \"\xed\xa0\x80\"}",
            '{"n": 5, "s": "\ud800"}', '{"n": 5, "s": "\ud83d\ude00"}', '{"n": 5, "s": "\udc00"}', '{"n": 5, "s": "\q"}',
            "{\"n\": 5, \"s\": \"a\nb\"}", '{"n": 5, "s": "\u12"}', '{"n": 2,}', '{"n": 2', '{"n" 2}', '{n: 2}',
            '{"n": tru}', '{"n": 2.}', '{"n": -}', '{"n": 2e}', '{"n": 2e+}', str_repeat('x', 4097),
            '{"n": 3, "pad": "' . str_repeat('p', 4070) . '"}',
            str_repeat('[', 2048) . str_repeat(']', 2048), str_repeat('[', 2049) . str_repeat(']', 2049),
            '{"a":' . str_repeat('[', 2047) . '"too big"' . str_repeat(']', 2047) . ',"n":3}');
        mt_srand(10);
        for ($i = 0; $i < 400; $i++) {
            $s = '{"n": ' . mt_rand(-3, 40) . ', "k": [1, "s", 2.5e3]}';
            for ($m = mt_rand(1, 3); $m > 0; $m--) {
                $at = mt_rand(0, strlen($s));
                $s = substr($s, 0, $at) . chr(mt_rand(0, 255)) . substr($s, $at + mt_rand(0, 1));
            }
            $p[] = $s;
        }
        return $p;
    }

    public static function phpFlavours(): array
    {
        return [
            'gmp' => [[]],
            // Nothing but PHP's core (no php.ini, no gmp) and bcmath.
            'bcmath only' => [['-n', '-d', 'extension=bcmath']],
        ];
    }

    /** @dataProvider phpFlavours */
    public function testSameAnswersAsTheCWorker(array $phpArgs): void
    {
        $dc = new Ferryd();
        $dp = new Ferryd();
        $wc = $wp = null;
        try {
            $wc = new WorkerProc([TestEnv::bin('fib_worker'), '--addr', $dc->unix], $dc->dir);
            $wp = new WorkerProc(array_merge([PHP_BINARY], $phpArgs, [TestEnv::root()
                                  . '/examples/fib/php/fib_worker.php', '--addr', $dp->unix]), $dp->dir);
            $cc = new Client($dc->unix, ['persistent' => false]);
            $cp = new Client($dp->unix, ['persistent' => false]);
            $replies = 0;
            foreach (self::payloads() as $payload) {
                $a = self::answer($cc, $payload);
                $b = self::answer($cp, $payload);
                $this->assertSame($a, $b, 'payload ' . json_encode($payload, JSON_INVALID_UTF8_SUBSTITUTE));
                $replies += str_starts_with($a, 'REPLY ') ? 1 : 0;
            }
            // Both sides of the comparison were exercised.
            $this->assertGreaterThan(300, $replies);
            $this->assertSame('REPLY {"N": 5, "result": "0 1 1 2 3"}', self::answer($cp, '{"n": 5}'));
        } finally {
            $wc?->stop();
            $wp?->stop();
            $dc->cleanup();
            $dp->cleanup();
        }
    }
}
