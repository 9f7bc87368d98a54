<?php
// SPDX-License-Identifier: MIT
/*
 * JanssonLike.php - the JSON reading of the C fib worker, step for step:
 * json_loadb(payload, 0) of jansson 2.14 (Debian 12's libjansson4), so that
 * the PHP worker refuses exactly what the C one refuses with exactly its
 * message. PHP's json_decode differs at the edges (a too-big integer
 * anywhere, 1e400, "\u0000", nesting past 2048, a NUL byte after a number,
 * a string that contains "too big" in an error's context), and the C
 * worker's message depends on jansson's first error text. Written from
 * jansson's documented behaviour and its load.c: a byte stream with UTF-8
 * checks, the lexer, and the recursive parser, first error wins.
 */

declare(strict_types=1);

final class JanssonLike
{
    private const STATE_OK = 0;
    private const STATE_EOF = -1;
    private const STATE_ERROR = -2;
    private const T_INVALID = -1;
    private const T_EOF = 0;
    private const T_STRING = 256;
    private const T_INTEGER = 257;
    private const T_REAL = 258;
    private const T_TRUE = 259;
    private const T_FALSE = 260;
    private const T_NULL = 261;
    private const MAX_DEPTH = 2048;

    private int $pos = 0;
    private int $len;
    /** @var list<int> the stream's small buffer, bytes as C's signed char */
    private array $buf = [0];
    private int $bpos = 0;
    private int $state = self::STATE_OK;
    private string $saved = '';
    private int $token = self::T_INVALID;
    private mixed $value = null;
    private int $depth = 0;
    /** The first error's text, as json_error_t.text; null while none. */
    public ?string $error = null;

    private function __construct(private readonly string $data)
    {
        $this->len = strlen($data);
    }

    /**
     * Parses like json_loadb(data, len, 0, &err). Returns [value, error
     * text]: value null on failure. Objects come back as
     * ['object', [key => value]], integers as ['integer', int], reals as
     * ['real', float], strings as ['string', s], arrays as ['array', list],
     * and true/false/null as ['true'] / ['false'] / ['null'].
     *
     * @return array{0: ?array, 1: ?string}
     */
    public static function load(string $data): array
    {
        $p = new self($data);
        $r = $p->parseJson();
        return [$r, $p->error];
    }

    private function raw(): int
    {
        if ($this->pos >= $this->len) {
            return -1;
        }
        return ord($this->data[$this->pos++]);
    }

    private static function signed(int $b): int
    {
        $b &= 0xff;
        return $b >= 0x80 ? $b - 256 : $b;
    }

    private static function checkFirst(int $b): int
    {
        $u = $b & 0xff;
        if ($u < 0x80) {
            return 1;
        }
        if ($u <= 0xbf || $u === 0xc0 || $u === 0xc1) {
            return 0;
        }
        if ($u <= 0xdf) {
            return 2;
        }
        if ($u <= 0xef) {
            return 3;
        }
        if ($u <= 0xf4) {
            return 4;
        }
        return 0;
    }

    private function checkFull(int $count): bool
    {
        $u = $this->buf[0] & 0xff;
        $v = match ($count) {
            2 => $u & 0x1f,
            3 => $u & 0xf,
            4 => $u & 0x7,
        };
        for ($i = 1; $i < $count; $i++) {
            $u = $this->buf[$i] & 0xff;
            if ($u < 0x80 || $u > 0xbf) {
                return false;
            }
            $v = ($v << 6) + ($u & 0x3f);
        }
        if ($v > 0x10ffff || ($v >= 0xd800 && $v <= 0xdfff)) {
            return false;
        }
        return !(($count === 2 && $v < 0x80) || ($count === 3 && $v < 0x800) || ($count === 4 && $v < 0x10000));
    }

    private function get(): int
    {
        if ($this->state !== self::STATE_OK) {
            return $this->state;
        }
        if (($this->buf[$this->bpos] ?? 0) === 0) {
            $c = $this->raw();
            if ($c === -1) {
                $this->state = self::STATE_EOF;
                return self::STATE_EOF;
            }
            $this->buf = [self::signed($c)];
            $this->bpos = 0;
            if ($c >= 0x80) {
                $count = self::checkFirst($c);
                if ($count === 0) {
                    return $this->utf8Error($c);
                }
                for ($i = 1; $i < $count; $i++) {
                    $this->buf[$i] = self::signed($this->raw());
                }
                if (!$this->checkFull($count)) {
                    return $this->utf8Error($c);
                }
                $this->buf[$count] = 0;
            } else {
                $this->buf[1] = 0;
            }
        }
        return $this->buf[$this->bpos++];
    }

    private function utf8Error(int $c): int
    {
        $this->state = self::STATE_ERROR;
        $this->fail(sprintf('unable to decode byte 0x%x', $c));
        return self::STATE_ERROR;
    }

    private function unget(int $c): void
    {
        if ($c === self::STATE_EOF || $c === self::STATE_ERROR) {
            return;
        }
        $this->bpos--;
    }

    private function getSave(): int
    {
        $c = $this->get();
        if ($c !== self::STATE_EOF && $c !== self::STATE_ERROR) {
            $this->saved .= chr($c & 0xff);
        }
        return $c;
    }

    private function ungetUnsave(int $c): void
    {
        if ($c !== self::STATE_EOF && $c !== self::STATE_ERROR) {
            $this->unget($c);
            $this->saved = substr($this->saved, 0, -1);
        }
    }

    private function fail(string $msg): void
    {
        if ($this->error !== null) {
            return;
        }
        $saved = $this->saved;
        if ($saved !== '' && $saved[0] !== "\0") {
            $text = $msg;
            if (strlen($saved) <= 20) {
                $nul = strpos($saved, "\0");
                $text = substr($msg . " near '" . ($nul === false ? $saved : substr($saved, 0, $nul)) . "'", 0, 159);
            }
        } elseif ($this->state === self::STATE_ERROR) {
            $text = $msg;
        } else {
            $text = substr($msg . ' near end of file', 0, 159);
        }
        $this->error = substr($text, 0, 158);
    }

    private static function isDigit(int $c): bool
    {
        return $c >= 0x30 && $c <= 0x39;
    }

    private static function isAlpha(int $c): bool
    {
        return ($c >= 0x41 && $c <= 0x5a) || ($c >= 0x61 && $c <= 0x7a);
    }

    private static function isXDigit(int $c): bool
    {
        return self::isDigit($c) || ($c >= 0x41 && $c <= 0x46) || ($c >= 0x61 && $c <= 0x66);
    }

    private function scanString(): void
    {
        $this->value = null;
        $this->token = self::T_INVALID;
        $c = $this->getSave();
        while ($c !== 0x22) {
            if ($c === self::STATE_ERROR) {
                return;
            }
            if ($c === self::STATE_EOF) {
                $this->fail('premature end of input');
                return;
            }
            if ($c >= 0 && $c <= 0x1f) {
                $this->ungetUnsave($c);
                $this->fail($c === 0x0a ? 'unexpected newline' : sprintf('control character 0x%x', $c));
                return;
            }
            if ($c === 0x5c) {
                $c = $this->getSave();
                if ($c === 0x75) {
                    $c = $this->getSave();
                    for ($i = 0; $i < 4; $i++) {
                        if (!self::isXDigit($c)) {
                            $this->fail('invalid escape');
                            return;
                        }
                        $c = $this->getSave();
                    }
                } elseif (in_array($c, [0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74], true)) {
                    $c = $this->getSave();
                } else {
                    $this->fail('invalid escape');
                    return;
                }
            } else {
                $c = $this->getSave();
            }
        }
        // Second pass over the saved text: escapes to bytes.
        $s = $this->saved;
        $p = 1;
        $out = '';
        while ($s[$p] !== '"') {
            if ($s[$p] === '\\') {
                $p++;
                if ($s[$p] === 'u') {
                    $v = hexdec(substr($s, $p + 1, 4));
                    $p += 5;
                    if ($v >= 0xd800 && $v <= 0xdbff) {
                        if (($s[$p] ?? '') === '\\' && ($s[$p + 1] ?? '') === 'u') {
                            $p++;
                            $v2 = hexdec(substr($s, $p + 1, 4));
                            $p += 5;
                            if ($v2 >= 0xdc00 && $v2 <= 0xdfff) {
                                $v = (($v - 0xd800) << 10) + ($v2 - 0xdc00) + 0x10000;
                            } else {
                                $this->fail(sprintf("invalid Unicode '\\u%04X\\u%04X'", $v, $v2));
                                return;
                            }
                        } else {
                            $this->fail(sprintf("invalid Unicode '\\u%04X'", $v));
                            return;
                        }
                    } elseif ($v >= 0xdc00 && $v <= 0xdfff) {
                        $this->fail(sprintf("invalid Unicode '\\u%04X'", $v));
                        return;
                    }
                    $out .= self::utf8($v);
                } else {
                    $out .= match ($s[$p]) {
                        'b' => "\x08", 'f' => "\f", 'n' => "\n", 'r' => "\r", 't' => "\t", default => $s[$p],
                    };
                    $p++;
                }
            } else {
                $out .= $s[$p++];
            }
        }
        $this->value = $out;
        $this->token = self::T_STRING;
    }

    private static function utf8(int $v): string
    {
        if ($v < 0x80) {
            return chr($v);
        }
        if ($v < 0x800) {
            return chr(0xc0 | ($v >> 6)) . chr(0x80 | ($v & 0x3f));
        }
        if ($v < 0x10000) {
            return chr(0xe0 | ($v >> 12)) . chr(0x80 | (($v >> 6) & 0x3f)) . chr(0x80 | ($v & 0x3f));
        }
        return chr(0xf0 | ($v >> 18)) . chr(0x80 | (($v >> 12) & 0x3f)) . chr(0x80 | (($v >> 6) & 0x3f))
            . chr(0x80 | ($v & 0x3f));
    }

    private function scanNumber(int $c): void
    {
        $this->token = self::T_INVALID;
        if ($c === 0x2d) {
            $c = $this->getSave();
        }
        if ($c === 0x30) {
            $c = $this->getSave();
            if (self::isDigit($c)) {
                $this->ungetUnsave($c);
                return;
            }
        } elseif (self::isDigit($c)) {
            do {
                $c = $this->getSave();
            } while (self::isDigit($c));
        } else {
            $this->ungetUnsave($c);
            return;
        }
        if ($c !== 0x2e && $c !== 0x45 && $c !== 0x65) {
            $this->ungetUnsave($c);
            $t = $this->saved;
            $neg = $t[0] === '-';
            $digits = ltrim($neg ? substr($t, 1) : $t, '0');
            $limit = $neg ? '9223372036854775808' : '9223372036854775807';
            if (strlen($digits) > 19 || (strlen($digits) === 19 && strcmp($digits, $limit) > 0)) {
                $this->fail($neg ? 'too big negative integer' : 'too big integer');
                return;
            }
            $this->token = self::T_INTEGER;
            $this->value = (int)$t;
            return;
        }
        if ($c === 0x2e) {
            $c = $this->get();
            if (!self::isDigit($c)) {
                $this->unget($c);
                return;
            }
            $this->saved .= chr($c);
            do {
                $c = $this->getSave();
            } while (self::isDigit($c));
        }
        if ($c === 0x45 || $c === 0x65) {
            $c = $this->getSave();
            if ($c === 0x2b || $c === 0x2d) {
                $c = $this->getSave();
            }
            if (!self::isDigit($c)) {
                $this->ungetUnsave($c);
                return;
            }
            do {
                $c = $this->getSave();
            } while (self::isDigit($c));
        }
        $this->ungetUnsave($c);
        $v = (float)$this->saved;
        if (is_infinite($v)) {
            $this->fail('real number overflow');
            return;
        }
        $this->token = self::T_REAL;
        $this->value = $v;
    }

    private function scan(): int
    {
        $this->saved = '';
        do {
            $c = $this->get();
        } while ($c === 0x20 || $c === 0x09 || $c === 0x0a || $c === 0x0d);
        if ($c === self::STATE_EOF) {
            return $this->token = self::T_EOF;
        }
        if ($c === self::STATE_ERROR) {
            return $this->token = self::T_INVALID;
        }
        $this->saved .= chr($c & 0xff);
        if (in_array($c, [0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c], true)) {
            $this->token = $c;
        } elseif ($c === 0x22) {
            $this->scanString();
        } elseif (self::isDigit($c) || $c === 0x2d) {
            $this->scanNumber($c);
        } elseif (self::isAlpha($c)) {
            do {
                $c = $this->getSave();
            } while (self::isAlpha($c));
            $this->ungetUnsave($c);
            $this->token = match ($this->saved) {
                'true' => self::T_TRUE, 'false' => self::T_FALSE, 'null' => self::T_NULL,
                default => self::T_INVALID,
            };
        } else {
            while (($this->buf[$this->bpos] ?? 0) !== 0) {
                $this->saved .= chr($this->buf[$this->bpos] & 0xff);
                $this->bpos++;
            }
            $this->token = self::T_INVALID;
        }
        return $this->token;
    }

    private function parseObject(): ?array
    {
        $members = [];
        $this->scan();
        if ($this->token === 0x7d) {
            return ['object', $members];
        }
        for (;;) {
            if ($this->token !== self::T_STRING) {
                $this->fail("string or '}' expected");
                return null;
            }
            $key = (string)$this->value;
            if (str_contains($key, "\0")) {
                $this->fail('NUL byte in object key not supported');
                return null;
            }
            $this->scan();
            if ($this->token !== 0x3a) {
                $this->fail("':' expected");
                return null;
            }
            $this->scan();
            $v = $this->parseValue();
            if ($v === null) {
                return null;
            }
            $members[$key] = $v;
            $this->scan();
            if ($this->token !== 0x2c) {
                break;
            }
            $this->scan();
        }
        if ($this->token !== 0x7d) {
            $this->fail("'}' expected");
            return null;
        }
        return ['object', $members];
    }

    private function parseArray(): ?array
    {
        $items = [];
        $this->scan();
        if ($this->token === 0x5d) {
            return ['array', $items];
        }
        while ($this->token !== self::T_EOF) {
            $v = $this->parseValue();
            if ($v === null) {
                return null;
            }
            $items[] = $v;
            $this->scan();
            if ($this->token !== 0x2c) {
                break;
            }
            $this->scan();
        }
        if ($this->token !== 0x5d) {
            $this->fail("']' expected");
            return null;
        }
        return ['array', $items];
    }

    private function parseValue(): ?array
    {
        $this->depth++;
        if ($this->depth > self::MAX_DEPTH) {
            $this->fail('maximum parsing depth reached');
            return null;
        }
        switch ($this->token) {
            case self::T_STRING:
                if (str_contains((string)$this->value, "\0")) {
                    $this->fail('\\u0000 is not allowed without JSON_ALLOW_NUL');
                    return null;
                }
                $v = ['string', $this->value];
                break;
            case self::T_INTEGER:
                $v = ['integer', $this->value];
                break;
            case self::T_REAL:
                $v = ['real', $this->value];
                break;
            case self::T_TRUE:
                $v = ['true'];
                break;
            case self::T_FALSE:
                $v = ['false'];
                break;
            case self::T_NULL:
                $v = ['null'];
                break;
            case 0x7b:
                $v = $this->parseObject();
                break;
            case 0x5b:
                $v = $this->parseArray();
                break;
            case self::T_INVALID:
                $this->fail('invalid token');
                return null;
            default:
                $this->fail('unexpected token');
                return null;
        }
        if ($v === null) {
            return null;
        }
        $this->depth--;
        return $v;
    }

    private function parseJson(): ?array
    {
        $this->depth = 0;
        $this->scan();
        if ($this->token !== 0x5b && $this->token !== 0x7b) {
            $this->fail("'[' or '{' expected");
            return null;
        }
        $r = $this->parseValue();
        if ($r === null) {
            return null;
        }
        $this->scan();
        if ($this->token !== self::T_EOF) {
            $this->fail('end of file expected');
            return null;
        }
        return $r;
    }
}
