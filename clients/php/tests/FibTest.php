<?php
// SPDX-License-Identifier: MIT
/*
 * FibTest.php - examples/fib/php/fib_worker.php answers byte for byte as
 * the C worker (examples/fib/fib_worker.c): each behind its own real
 * ferryd, both asked the same payloads (every n from 1 to 300, large ones,
 * the limits, the contract's corpus examples/fib/payloads.json with each
 * payload's expected answer, and seeded random mutations), the replies or
 * the errors (code and message) compared. The corpus's known differences
 * are checked apart, to keep that list true.
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

    private const MAX = 10000;
    private const MESSAGES = [
        'object' => 'payload must be a JSON object like {"n": 10}',
        'range' => 'n must be an integer between 1 and ' . self::MAX,
        'size' => 'payload larger than 4096 bytes',
    ];

    /** ok, object, range or size: which answer of the contract this is. */
    private static function kind(string $answer): string
    {
        if (str_starts_with($answer, 'REPLY ')) {
            return 'ok';
        }
        foreach (self::MESSAGES as $k => $m) {
            if ($answer === 'INVALID_ARGUMENT 11: ' . $m) {
                return $k;
            }
        }
        return $answer;
    }

    /** A payload of payloads.json: a string of bytes (U+0000..U+00FF), or parts. */
    private static function corpusPayload(string|array $p): string
    {
        if (is_array($p)) {
            return implode('', array_map(static fn ($x) => is_string($x)
                ? self::corpusPayload($x) : str_repeat(self::corpusPayload($x[0]), $x[1]), $p));
        }
        // Each character is a byte: U+0080..U+00FF are two bytes of UTF-8 here.
        return preg_replace_callback('/[\x{80}-\x{ff}]/u',
            static fn ($m) => chr(((ord($m[0][0]) & 0x1f) << 6) | (ord($m[0][1]) & 0x3f)), $p);
    }

    private static function corpus(): array
    {
        return json_decode(file_get_contents(TestEnv::root() . '/examples/fib/payloads.json'), true, 512,
            JSON_THROW_ON_ERROR);
    }

    /** [payload, expected kind or null]: every n up to the max and beyond, the corpus, random ones. */
    public static function payloads(): array
    {
        $p = [];
        for ($n = 1; $n <= 300; $n++) {
            $p[] = ["{\"n\": $n}", 'ok'];
        }
        foreach ([1000, 4096, 9999, 10000] as $n) {
            $p[] = ["{\"n\": $n}", 'ok'];
        }
        $p[] = ['{"n": 10001}', 'range'];
        foreach (self::corpus()['compare'] as [$want, $payload]) {
            $p[] = [self::corpusPayload($payload), $want];
        }
        mt_srand(10);
        for ($target = count($p) + 400; count($p) < $target;) {
            $s = '{"n": ' . mt_rand(-3, 40) . ', "k": [1, "s", 2.5e3]}';
            for ($m = mt_rand(1, 3); $m > 0; $m--) {
                $at = mt_rand(0, strlen($s));
                $s = substr($s, 0, $at) . chr(mt_rand(0, 255)) . substr($s, $at + mt_rand(0, 1));
            }
            // A number perhaps beyond double range is left out: with another
            // fault after it, the C worker answers differently (payloads.json,
            // "differ").
            if (!preg_match('/[eE]\+?0*[1-9][0-9]{2}|[0-9]{300}/', $s)) {
                $p[] = [$s, null];
            }
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
            $kinds = [];
            foreach (self::payloads() as [$payload, $want]) {
                $a = self::answer($cc, $payload);
                $b = self::answer($cp, $payload);
                $what = 'payload ' . json_encode($payload, JSON_INVALID_UTF8_SUBSTITUTE);
                $this->assertSame($a, $b, $what);
                if ($want !== null) {
                    $this->assertSame($want, self::kind($a), $what);
                }
                $kinds[self::kind($a)] = true;
            }
            // Both sides of the comparison were exercised.
            $this->assertEqualsCanonicalizing(['ok', 'object', 'range', 'size'], array_keys($kinds));
            $this->assertSame('REPLY {"N": 5, "result": "0 1 1 2 3"}', self::answer($cp, '{"n": 5}'));
            // The known differences are real; when one goes away, move it into "compare".
            foreach (self::corpus()['differ'] as $d) {
                $payload = self::corpusPayload($d['payload']);
                $this->assertSame([$d['c'], $d['php']],
                    [self::kind(self::answer($cc, $payload)), self::kind(self::answer($cp, $payload))], $d['why']);
            }
        } finally {
            $wc?->stop();
            $wp?->stop();
            $dc->cleanup();
            $dp->cleanup();
        }
    }
}
