<?php
// SPDX-License-Identifier: MIT
/*
 * Codec.php - the ferry frame codec, written from docs/protocol.md and
 * checked against tests/vectors/frames.json: a 16-byte big-endian header
 * (body_len u32, type u8, flags u8, reserved u16, id u64) and a body laid
 * out per type. Encoders return bytes; decode() takes one frame off the
 * front of a buffer, refusing what the page says to refuse (TOO_BIG before
 * the body is needed, UNKNOWN_TYPE, PROTO) with a FerryException.
 */

declare(strict_types=1);

namespace Ferry;

use Ferry\Exception\ProtoException;
use Ferry\Exception\TooBigException;
use Ferry\Exception\UnknownTypeException;

final class Codec
{
    public const HEADER_SIZE = 16;
    public const DEFAULT_MAX_BODY = 16777216;
    public const MAX_NAME = 255;
    public const MAX_KEY = 1024;
    public const MAX_MESSAGE = 1024;
    public const MAX_CREDIT = 65535;

    public static function header(int $type, int $flags, int $id, int $bodyLen): string
    {
        return pack('NCCnJ', $bodyLen, $type, $flags, 0, $id);
    }

    public static function frame(int $type, string $body = '', int $id = 0, int $flags = 0): string
    {
        return pack('NCCnJ', strlen($body), $type, $flags, 0, $id) . $body;
    }

    /**
     * HELLO laid out by the version it carries: version 2 (and later) adds
     * max_frame, the largest body this client accepts (0 = no limit).
     */
    public static function hello(int $version, int $role, int $heartbeatMs, string $name,
                                 string $token, ?int $maxFrame = 0, string $trailing = ''): string
    {
        $body = pack('nCCN', $version, $role, 0, $heartbeatMs)
            . pack('n', strlen($name)) . $name . pack('n', strlen($token)) . $token;
        if ($version >= 2 && $maxFrame !== null) {
            $body .= pack('N', $maxFrame);
        }
        return self::frame(Frame::HELLO, $body . $trailing);
    }

    public static function helloOk(int $version, int $heartbeatMs, int $maxFrame, string $name,
                                   int $maxDeadlineMs = 0, int $defaultDeadlineMs = 0,
                                   string $trailing = ''): string
    {
        $body = pack('nnNN', $version, 0, $heartbeatMs, $maxFrame) . pack('n', strlen($name)) . $name;
        if ($version >= 2) {
            $body .= pack('NN', $maxDeadlineMs, $defaultDeadlineMs);
        }
        return self::frame(Frame::HELLO_OK, $body . $trailing);
    }

    public static function request(int $id, string $service, string $payload, int $deadlineMs = 0,
                                   string $key = '', int $flags = 0): string
    {
        $sl = strlen($service);
        $kl = strlen($key);
        return pack('NCCnJNnn', 8 + $sl + $kl + strlen($payload), Frame::REQUEST, $flags, 0, $id,
                    $deadlineMs, $sl, $kl) . $service . $key . $payload;
    }

    /** Bytes of a REQUEST frame, header included. */
    public static function requestSize(string $service, string $key, int $payloadLen): int
    {
        return self::HEADER_SIZE + 8 + strlen($service) + strlen($key) + $payloadLen;
    }

    public static function reply(int $id, string $payload): string
    {
        return pack('NCCnJ', strlen($payload), Frame::REPLY, 0, 0, $id) . $payload;
    }

    public static function error(int $id, int $code, string $message = ''): string
    {
        if (strlen($message) > self::MAX_MESSAGE) {
            $message = substr($message, 0, self::MAX_MESSAGE);
        }
        return self::frame(Frame::ERROR, pack('nn', $code, strlen($message)) . $message, $id);
    }

    public static function register(int $id, string $service, int $credit): string
    {
        return self::frame(Frame::REGISTER, pack('Nn', $credit, strlen($service)) . $service, $id);
    }

    public static function cancel(int $id): string
    {
        return self::frame(Frame::CANCEL, '', $id);
    }

    public static function ping(): string
    {
        return self::frame(Frame::PING);
    }

    public static function drain(): string
    {
        return self::frame(Frame::DRAIN);
    }

    /** Encodes a frame from its vector-style fields (as frames.json). */
    public static function encodeFields(int $type, int $flags, int $id, array $f): string
    {
        switch ($type) {
            case Frame::HELLO:
                return self::hello((int)$f['version'], (int)$f['role'], (int)$f['heartbeat_ms'],
                                   (string)$f['name'], (string)$f['token'],
                                   isset($f['max_frame']) ? (int)$f['max_frame']
                                       : ((int)$f['version'] >= 2 ? 0 : null),
                                   (string)hex2bin($f['trailing_hex'] ?? ''));
            case Frame::HELLO_OK:
                return self::helloOk((int)$f['version'], (int)$f['heartbeat_ms'], (int)$f['max_frame'],
                                     (string)$f['name'], (int)($f['max_deadline_ms'] ?? 0),
                                     (int)($f['default_deadline_ms'] ?? 0),
                                     (string)hex2bin($f['trailing_hex'] ?? ''));
            case Frame::REQUEST:
                return self::request($id, (string)$f['service'], (string)hex2bin($f['payload_hex']),
                                     (int)$f['deadline_ms'], (string)hex2bin($f['key_hex'] ?? ''), $flags);
            case Frame::REPLY:
                return self::frame($type, (string)hex2bin($f['payload_hex']), $id, $flags);
            case Frame::ERROR:
                $m = (string)$f['message'];
                return self::frame($type, pack('nn', (int)$f['code'], strlen($m)) . $m, $id, $flags);
            case Frame::REGISTER:
                $s = (string)$f['service'];
                return self::frame($type, pack('Nn', (int)$f['credit'], strlen($s)) . $s, $id, $flags);
            default:
                return self::frame($type, '', $id, $flags);
        }
    }

    /**
     * Takes one frame off the front of $buf: the Frame and the bytes it
     * used, or null when more bytes are needed. Throws TooBigException
     * (body_len above $maxBody, known from the header alone),
     * UnknownTypeException, or ProtoException for a malformed body.
     *
     * @return array{0: Frame, 1: int}|null
     */
    public static function decode(string $buf, int $maxBody = self::DEFAULT_MAX_BODY, int $offset = 0): ?array
    {
        if (strlen($buf) - $offset < self::HEADER_SIZE) {
            return null;
        }
        $h = unpack('Nl/Ct/Cf/nr/Ji', $buf, $offset);
        $len = $h['l'];
        if ($maxBody > 0 && $len > $maxBody) {
            throw new TooBigException("frame body of $len bytes is larger than $maxBody");
        }
        $type = $h['t'];
        if ($type < Frame::HELLO || $type > Frame::DRAIN) {
            throw new UnknownTypeException("unknown frame type $type");
        }
        if (strlen($buf) - $offset < self::HEADER_SIZE + $len) {
            return null;
        }
        $body = substr($buf, $offset + self::HEADER_SIZE, $len);
        $frame = new Frame($type, $h['f'], $h['i'], self::parseBody($type, $body));
        return [$frame, self::HEADER_SIZE + $len];
    }

    /** @return array<string, mixed> */
    private static function parseBody(int $type, string $b): array
    {
        $n = strlen($b);
        switch ($type) {
            case Frame::REPLY:
                return ['payload' => $b];
            case Frame::REQUEST:
                if ($n < 8) {
                    throw new ProtoException('REQUEST body shorter than 8 bytes');
                }
                $f = unpack('Ndl/nsl/nkl', $b);
                $sl = $f['sl'];
                $kl = $f['kl'];
                if ($sl < 1 || $sl > self::MAX_NAME) {
                    throw new ProtoException("REQUEST service_len $sl out of 1..255");
                }
                if ($kl > self::MAX_KEY) {
                    throw new ProtoException("REQUEST key_len $kl above 1024");
                }
                if (8 + $sl + $kl > $n) {
                    throw new ProtoException('REQUEST lengths past the end of the body');
                }
                return [
                    'deadline_ms' => $f['dl'],
                    'service' => substr($b, 8, $sl),
                    'key' => substr($b, 8 + $sl, $kl),
                    'payload' => (string)substr($b, 8 + $sl + $kl),
                ];
            case Frame::ERROR:
                if ($n < 4) {
                    throw new ProtoException('ERROR body shorter than 4 bytes');
                }
                $f = unpack('ncode/nml', $b);
                if ($f['ml'] > self::MAX_MESSAGE) {
                    throw new ProtoException("ERROR msg_len {$f['ml']} above 1024");
                }
                if (4 + $f['ml'] !== $n) {
                    throw new ProtoException('ERROR msg_len does not match the body');
                }
                return ['code' => $f['code'], 'message' => substr($b, 4)];
            case Frame::HELLO:
                if ($n < 8) {
                    throw new ProtoException('HELLO body shorter than its fields');
                }
                $f = unpack('nversion/Crole/Cres/Nhb', $b);
                if ($f['role'] < 1 || $f['role'] > 3) {
                    throw new ProtoException("HELLO role {$f['role']}");
                }
                $p = 8;
                $name = self::str16($b, $p, 'HELLO name');
                $token = self::str16($b, $p, 'HELLO token');
                $out = ['version' => $f['version'], 'role' => $f['role'], 'heartbeat_ms' => $f['hb'],
                        'name' => $name, 'token' => $token];
                if ($f['version'] >= 2) {
                    if ($n - $p < 4) {
                        throw new ProtoException("HELLO version {$f['version']} without max_frame");
                    }
                    $out['max_frame'] = unpack('N', $b, $p)[1];
                    $p += 4;
                }
                if ($p !== $n) {
                    if ($f['version'] <= 2) {
                        throw new ProtoException('HELLO has trailing bytes');
                    }
                    // A later version's own fields: ignored, kept for the curious.
                    $out['trailing'] = substr($b, $p);
                }
                return $out;
            case Frame::HELLO_OK:
                if ($n < 12) {
                    throw new ProtoException('HELLO_OK body shorter than its fields');
                }
                $f = unpack('nversion/nres/Nhb/Nmax', $b);
                $p = 12;
                $name = self::str16($b, $p, 'HELLO_OK name');
                $out = ['version' => $f['version'], 'heartbeat_ms' => $f['hb'], 'max_frame' => $f['max'],
                        'name' => $name];
                if ($f['version'] >= 2) {
                    if ($n - $p < 8) {
                        throw new ProtoException('HELLO_OK version 2 without its deadlines');
                    }
                    $d = unpack('Nmax/Ndef', $b, $p);
                    $out['max_deadline_ms'] = $d['max'];
                    $out['default_deadline_ms'] = $d['def'];
                    $p += 8;
                }
                if ($p !== $n) {
                    if ($f['version'] <= 2) {
                        throw new ProtoException('HELLO_OK has trailing bytes');
                    }
                    $out['trailing'] = substr($b, $p);
                }
                return $out;
            case Frame::REGISTER:
                if ($n < 6) {
                    throw new ProtoException('REGISTER body shorter than 6 bytes');
                }
                $f = unpack('Ncredit/nsl', $b);
                if ($f['sl'] > self::MAX_NAME) {
                    throw new ProtoException("REGISTER service_len {$f['sl']} above 255");
                }
                if (6 + $f['sl'] !== $n) {
                    throw new ProtoException('REGISTER service_len does not match the body');
                }
                // Credit 0 or above 65535 and an empty name are well formed:
                // the broker refuses them (INVALID_ARGUMENT), not the codec.
                return ['credit' => $f['credit'], 'service' => substr($b, 6)];
            default:
                if ($n !== 0) {
                    throw new ProtoException(Frame::NAMES[$type] . ' must have an empty body');
                }
                return [];
        }
    }

    private static function str16(string $b, int &$p, string $what): string
    {
        if (strlen($b) - $p < 2) {
            throw new ProtoException("$what length past the end of the body");
        }
        $len = unpack('n', $b, $p)[1];
        $p += 2;
        if ($len > self::MAX_NAME) {
            throw new ProtoException("$what longer than 255 bytes");
        }
        if (strlen($b) - $p < $len) {
            throw new ProtoException("$what past the end of the body");
        }
        $s = substr($b, $p, $len);
        $p += $len;
        return $s;
    }

    /** The unsigned decimal text of a 64-bit id held in PHP's signed int. */
    public static function idToString(int $id): string
    {
        return sprintf('%u', $id);
    }

    /** The PHP int (signed, wrapping) of an unsigned 64-bit decimal id. */
    public static function idFromString(string $s): int
    {
        if (!preg_match('/^[0-9]{1,20}$/', $s)) {
            throw new \InvalidArgumentException("id '$s' is not a decimal number");
        }
        $hi = 0;
        $lo = 0;
        for ($i = 0, $n = strlen($s); $i < $n; $i++) {
            $lo = $lo * 10 + ord($s[$i]) - 48;
            $hi = $hi * 10 + ($lo >> 32);
            $lo &= 0xffffffff;
            if ($hi > 0xffffffff) {
                throw new \InvalidArgumentException("id '$s' is above 2^64-1");
            }
        }
        return unpack('J', pack('NN', $hi, $lo))[1];
    }
}
