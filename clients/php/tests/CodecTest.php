<?php
// SPDX-License-Identifier: MIT
/*
 * CodecTest.php - every vector of tests/vectors/frames.json through
 * Ferry\Codec: the good frames decode to their fields and encode back to
 * the same bytes; the bad ones are refused with their code; the short ones
 * ask for more bytes.
 */

declare(strict_types=1);

use Ferry\Codec;
use Ferry\ErrorCode;
use Ferry\FerryException;
use Ferry\Frame;
use PHPUnit\Framework\TestCase;

final class CodecTest extends TestCase
{

    public static function vectors(): array
    {
        $d = json_decode(file_get_contents(TestEnv::root() . '/tests/vectors/frames.json'), true);
        $out = [];
        foreach ($d['frames'] as $v) {
            $out[$v['name']] = [$v, $d['max_body']];
        }
        return $out;
    }

    /** @dataProvider vectors */
    public function testVector(array $v, int $maxBody): void
    {
        $bin = hex2bin($v['hex']);
        $max = $v['max_body'] ?? $maxBody;
        if (!empty($v['incomplete'])) {
            $this->assertNull(Codec::decode($bin, $max));
            return;
        }
        if (isset($v['error'])) {
            try {
                Codec::decode($bin, $max);
                $this->fail("{$v['name']} decoded, expected {$v['error']}");
            } catch (FerryException $e) {
                $this->assertSame($v['error'], $e->getErrorName());
                $this->assertSame(ErrorCode::fromName($v['error']), $e->getCode());
            }
            return;
        }
        [$f, $used] = Codec::decode($bin, $max);
        $this->assertSame(strlen($bin), $used);
        $this->assertSame($v['type'], $f->typeName());
        $this->assertSame($v['flags'], $f->flags);
        $this->assertSame($v['id'], Codec::idToString($f->id));
        $fields = $v['fields'];
        $x = $f->fields;
        switch ($f->type) {
            case Frame::REQUEST:
                $this->assertSame($fields['service'], $x['service']);
                $this->assertSame($fields['deadline_ms'], $x['deadline_ms']);
                $this->assertSame($fields['key_hex'], bin2hex($x['key']));
                $this->assertSame($fields['payload_hex'], bin2hex($x['payload']));
                break;
            case Frame::REPLY:
                $this->assertSame($fields['payload_hex'], bin2hex($x['payload']));
                break;
            case Frame::ERROR:
                $this->assertSame($fields['code'], $x['code']);
                $this->assertSame($fields['message'], $x['message']);
                $this->assertSame($fields['code_name'], ErrorCode::name($x['code']));
                break;
            default:
                if (isset($x['trailing'])) {
                    $x['trailing_hex'] = bin2hex($x['trailing']);
                    unset($x['trailing']);
                }
                $this->assertEquals($fields, $x);
        }
        $type = array_search($v['type'], Frame::NAMES, true);
        $this->assertSame($v['hex'], bin2hex(Codec::encodeFields($type, $v['flags'],
                                                                 Codec::idFromString($v['id']), $fields)));
    }

    public function testVersion2HelloCarriesMaxFrame(): void
    {
        $bin = Codec::hello(2, Frame::ROLE_CALLER, 0, 'php', '', 4096);
        [$f] = Codec::decode($bin);
        $this->assertSame(4096, $f->fields['max_frame']);
        $this->assertSame(2, $f->fields['version']);
        $ok = Codec::helloOk(2, 0, 1 << 20, 'ferryd/0.2', 60000, 5000);
        [$g] = Codec::decode($ok);
        $this->assertSame([60000, 5000], [$g->fields['max_deadline_ms'], $g->fields['default_deadline_ms']]);
        // A version-2 HELLO_OK without its deadlines is malformed.
        $v1 = Codec::helloOk(1, 0, 1 << 20, 'x');
        $this->expectExceptionCode(ErrorCode::PROTO);
        Codec::decode(substr_replace($v1, "\x00\x02", 16, 2));
    }

    public function testTooBigIsKnownFromTheHeaderAlone(): void
    {
        $this->expectException(Ferry\Exception\TooBigException::class);
        Codec::decode(Codec::header(Frame::REPLY, 0, 1, 2000), 1024);
    }

    public function testIds(): void
    {
        foreach (['0', '1', '9223372036854775807', '9223372036854775808', '18446744073709551615'] as $s) {
            $this->assertSame($s, Codec::idToString(Codec::idFromString($s)));
        }
        $this->expectException(InvalidArgumentException::class);
        Codec::idFromString('18446744073709551616');
    }

    public function testEveryCodeHasItsClass(): void
    {
        for ($c = 1; $c <= 23; $c++) {
            $e = ErrorCode::exception($c, 'm');
            $this->assertSame($c, $e->getCode());
            $this->assertSame(ErrorCode::name($c), $e->getErrorName());
            $this->assertInstanceOf(FerryException::class, $e);
            $this->assertInstanceOf(RuntimeException::class, $e);
            $this->assertStringStartsWith('Ferry\\Exception\\', get_class($e));
        }
        $this->assertSame('Ferry\\Exception\\DeadlineException', get_class(ErrorCode::exception(7)));
        $this->assertSame('TIMED_OUT', ErrorCode::exception(22)->getErrorName());
        $this->assertSame('Ferry\\Exception\\NoSpaceException', get_class(ErrorCode::exception(23)));
        $u = ErrorCode::exception(999, 'x');
        $this->assertSame([999, 'UNKNOWN_ERROR'], [$u->getCode(), $u->getErrorName()]);
    }
}
