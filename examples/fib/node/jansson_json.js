// SPDX-License-Identifier: MIT
'use strict';
/*
 * jansson_json.js - a JSON reader that accepts exactly what the C fib
 * worker's json_loadb(buf, len, 0, &err) (Debian's jansson 2.14) accepts,
 * and words its first error the way jansson does, because the C worker's
 * answer depends on whether that error text contains "too big". Written
 * from jansson's documented behaviour and checked against the C worker
 * by clients/node/test/fib.test.js; JSON.parse differs (NUL bytes after a
 * number, depth, integer range, error texts).
 *
 * load(buf) -> {value} or {error: text}. Values: objects are Maps from
 * the key's bytes (a latin1 string) to values, arrays are arrays,
 * integers {int: bigint}, everything else {other: true}.
 */

const EOF = -1;
const ERR = -2;
const T_INVALID = -1;
const T_EOF = 0;
const T_STRING = 256;
const T_INTEGER = 257;
const T_REAL = 258;
const T_TRUE = 259;
const T_FALSE = 260;
const T_NULL = 261;
const MAX_DEPTH = 2048;
const TEXT_MAX = 159; // JSON_ERROR_TEXT_LENGTH - 1
const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;

const isDigit = (c) => c >= 0x30 && c <= 0x39;
const isAlpha = (c) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isXDigit = (c) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const signed = (b) => (b >= 0x80 ? b - 256 : b);

function utf8First(u) {
  u &= 0xff;
  if (u < 0x80) return 1;
  if (u <= 0xc1) return 0;
  if (u <= 0xdf) return 2;
  if (u <= 0xef) return 3;
  if (u <= 0xf4) return 4;
  return 0;
}

function utf8Full(b, size) {
  let v = size === 2 ? b[0] & 0x1f : size === 3 ? b[0] & 0xf : b[0] & 0x7;
  for (let i = 1; i < size; i++) {
    if (b[i] < 0x80 || b[i] > 0xbf) return false;
    v = (v << 6) + (b[i] & 0x3f);
  }
  if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return false;
  if ((size === 2 && v < 0x80) || (size === 3 && v < 0x800) || (size === 4 && v < 0x10000)) return false;
  return true;
}

function utf8Encode(cp) {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 + (cp >> 6), 0x80 + (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 + (cp >> 12), 0x80 + ((cp >> 6) & 0x3f), 0x80 + (cp & 0x3f)];
  return [0xf0 + (cp >> 18), 0x80 + ((cp >> 12) & 0x3f), 0x80 + ((cp >> 6) & 0x3f), 0x80 + (cp & 0x3f)];
}

const hex4 = (v) => v.toString(16).toUpperCase().padStart(4, '0');

class Lexer {
  constructor(data) {
    this.data = data;
    this.pos = 0;
    this.buffer = new Uint8Array(5); // the current UTF-8 sequence, 0-ended
    this.bpos = 0;
    this.state = 0;
    this.saved = [];
    this.token = T_INVALID;
    this.value = null;
    this.depth = 0;
    this.error = null; // the first error's text, as bytes in a latin1 string
  }

  raw() {
    return this.pos < this.data.length ? this.data[this.pos++] : EOF;
  }

  setError(msg) {
    if (this.error !== null) {
      return;
    }
    msg = msg.slice(0, TEXT_MAX);
    let text = msg;
    const s = this.saved;
    if (s.length > 0 && s[0] !== 0) {
      if (s.length <= 20) {
        let end = s.indexOf(0);
        if (end < 0) end = s.length;
        text = `${msg} near '${Buffer.from(s.slice(0, end)).toString('latin1')}'`;
      }
    } else if (this.state !== ERR) {
      text = `${msg} near end of file`;
    }
    this.error = text.slice(0, TEXT_MAX);
  }

  get() {
    if (this.state !== 0) {
      return this.state;
    }
    const b = this.buffer;
    if (b[this.bpos] === 0) {
      const c = this.raw();
      if (c === EOF) {
        this.state = EOF;
        return EOF;
      }
      b[0] = c;
      this.bpos = 0;
      if (c >= 0x80) {
        const count = utf8First(c);
        let ok = count !== 0;
        if (ok) {
          for (let i = 1; i < count; i++) {
            b[i] = this.raw() & 0xff;
          }
          ok = utf8Full(b, count);
        }
        if (!ok) {
          this.state = ERR;
          this.setError(`unable to decode byte 0x${c.toString(16)}`);
          return ERR;
        }
        b[count] = 0;
      } else {
        b[1] = 0;
      }
    }
    return signed(b[this.bpos++]);
  }

  unget(c) {
    if (c === EOF || c === ERR) return;
    this.bpos--;
  }

  save(c) { this.saved.push(c & 0xff); }

  getSave() {
    const c = this.get();
    if (c !== EOF && c !== ERR) this.save(c);
    return c;
  }

  ungetUnsave(c) {
    if (c !== EOF && c !== ERR) {
      this.unget(c);
      this.saved.pop();
    }
  }

  saveCached() {
    while (this.buffer[this.bpos] !== 0) {
      this.save(this.buffer[this.bpos]);
      this.bpos++;
    }
  }

  scan() {
    this.saved = [];
    this.value = null;
    let c;
    do {
      c = this.get();
    } while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d);
    if (c === EOF) {
      this.token = T_EOF;
      return;
    }
    if (c === ERR) {
      this.token = T_INVALID;
      return;
    }
    this.save(c);
    if (c === 0x7b || c === 0x7d || c === 0x5b || c === 0x5d || c === 0x3a || c === 0x2c) {
      this.token = c;
    } else if (c === 0x22) {
      this.scanString();
    } else if (isDigit(c) || c === 0x2d) {
      this.scanNumber(c);
    } else if (isAlpha(c)) {
      do {
        c = this.getSave();
      } while (isAlpha(c));
      this.ungetUnsave(c);
      const word = Buffer.from(this.saved).toString('latin1');
      this.token = word === 'true' ? T_TRUE : word === 'false' ? T_FALSE : word === 'null' ? T_NULL : T_INVALID;
    } else {
      this.saveCached();
      this.token = T_INVALID;
    }
  }

  scanString() {
    this.token = T_INVALID;
    let c = this.getSave();
    while (c !== 0x22) {
      if (c === ERR) {
        return;
      } else if (c === EOF) {
        this.setError('premature end of input');
        return;
      } else if (c >= 0 && c <= 0x1f) {
        this.ungetUnsave(c);
        this.setError(c === 0x0a ? 'unexpected newline' : `control character 0x${c.toString(16)}`);
        return;
      } else if (c === 0x5c) {
        c = this.getSave();
        if (c === 0x75) {
          c = this.getSave();
          for (let i = 0; i < 4; i++) {
            if (!isXDigit(c)) {
              this.setError('invalid escape');
              return;
            }
            c = this.getSave();
          }
        } else if ([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74].includes(c)) {
          c = this.getSave();
        } else {
          this.setError('invalid escape');
          return;
        }
      } else {
        c = this.getSave();
      }
    }
    const s = this.saved;
    const out = [];
    let p = 1;
    const esc = (at) => parseInt(Buffer.from(s.slice(at + 1, at + 5)).toString('latin1'), 16);
    while (s[p] !== 0x22) {
      if (s[p] === 0x5c) {
        p++;
        if (s[p] === 0x75) {
          let v = esc(p);
          p += 5;
          if (v >= 0xd800 && v <= 0xdbff) {
            if (s[p] === 0x5c && s[p + 1] === 0x75) {
              p++;
              const v2 = esc(p);
              p += 5;
              if (v2 >= 0xdc00 && v2 <= 0xdfff) {
                v = ((v - 0xd800) << 10) + (v2 - 0xdc00) + 0x10000;
              } else {
                this.setError(`invalid Unicode '\\u${hex4(v)}\\u${hex4(v2)}'`);
                return;
              }
            } else {
              this.setError(`invalid Unicode '\\u${hex4(v)}'`);
              return;
            }
          } else if (v >= 0xdc00 && v <= 0xdfff) {
            this.setError(`invalid Unicode '\\u${hex4(v)}'`);
            return;
          }
          out.push(...utf8Encode(v));
        } else {
          const m = { 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };
          out.push(m[s[p]] !== undefined ? m[s[p]] : s[p]);
          p++;
        }
      } else {
        out.push(s[p++]);
      }
    }
    this.value = Buffer.from(out);
    this.token = T_STRING;
  }

  scanNumber(c) {
    this.token = T_INVALID;
    if (c === 0x2d) c = this.getSave();
    if (c === 0x30) {
      c = this.getSave();
      if (isDigit(c)) {
        this.ungetUnsave(c);
        return;
      }
    } else if (isDigit(c)) {
      do {
        c = this.getSave();
      } while (isDigit(c));
    } else {
      this.ungetUnsave(c);
      return;
    }
    if (c !== 0x2e && c !== 0x45 && c !== 0x65) {
      this.ungetUnsave(c);
      const v = BigInt(Buffer.from(this.saved).toString('latin1'));
      if (v < INT_MIN) {
        this.setError('too big negative integer');
        return;
      }
      if (v > INT_MAX) {
        this.setError('too big integer');
        return;
      }
      this.token = T_INTEGER;
      this.value = v;
      return;
    }
    if (c === 0x2e) {
      c = this.get();
      if (!isDigit(c)) {
        this.unget(c);
        return;
      }
      this.save(c);
      do {
        c = this.getSave();
      } while (isDigit(c));
    }
    if (c === 0x45 || c === 0x65) {
      c = this.getSave();
      if (c === 0x2b || c === 0x2d) c = this.getSave();
      if (!isDigit(c)) {
        this.ungetUnsave(c);
        return;
      }
      do {
        c = this.getSave();
      } while (isDigit(c));
    }
    this.ungetUnsave(c);
    if (!Number.isFinite(Number(Buffer.from(this.saved).toString('latin1')))) {
      this.setError('real number overflow');
      return;
    }
    this.token = T_REAL;
  }

  parseValue() {
    this.depth++;
    if (this.depth > MAX_DEPTH) {
      this.setError('maximum parsing depth reached');
      return null;
    }
    let v;
    switch (this.token) {
      case T_STRING:
        if (this.value.includes(0)) {
          this.setError('\\u0000 is not allowed without JSON_ALLOW_NUL');
          return null;
        }
        v = { other: true };
        break;
      case T_INTEGER: v = { int: this.value }; break;
      case T_REAL: case T_TRUE: case T_FALSE: case T_NULL: v = { other: true }; break;
      case 0x7b: v = this.parseObject(); break;
      case 0x5b: v = this.parseArray(); break;
      case T_INVALID: this.setError('invalid token'); return null;
      default: this.setError('unexpected token'); return null;
    }
    if (v === null) return null;
    this.depth--;
    return v;
  }

  parseObject() {
    const obj = new Map();
    this.scan();
    if (this.token === 0x7d) return obj;
    for (;;) {
      if (this.token !== T_STRING) {
        this.setError("string or '}' expected");
        return null;
      }
      const key = this.value;
      if (key.includes(0)) {
        this.setError('NUL byte in object key not supported');
        return null;
      }
      this.scan();
      if (this.token !== 0x3a) {
        this.setError("':' expected");
        return null;
      }
      this.scan();
      const v = this.parseValue();
      if (v === null) return null;
      obj.set(key.toString('latin1'), v);
      this.scan();
      if (this.token !== 0x2c) break;
      this.scan();
    }
    if (this.token !== 0x7d) {
      this.setError("'}' expected");
      return null;
    }
    return obj;
  }

  parseArray() {
    const arr = [];
    this.scan();
    if (this.token === 0x5d) return arr;
    while (this.token !== T_EOF) {
      const v = this.parseValue();
      if (v === null) return null;
      arr.push(v);
      this.scan();
      if (this.token !== 0x2c) break;
      this.scan();
    }
    if (this.token !== 0x5d) {
      this.setError("']' expected");
      return null;
    }
    return arr;
  }
}

function load(buf) {
  const lex = new Lexer(buf);
  lex.scan();
  if (lex.token !== 0x5b && lex.token !== 0x7b) {
    lex.setError("'[' or '{' expected");
    return { error: lex.error };
  }
  const v = lex.parseValue();
  if (v === null) return { error: lex.error || '' };
  lex.scan();
  if (lex.token !== T_EOF) {
    lex.setError('end of file expected');
    return { error: lex.error };
  }
  return { value: v };
}

module.exports = { load };
