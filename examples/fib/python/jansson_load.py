# SPDX-License-Identifier: MIT
"""The decoder of the C fib worker, in Python: what jansson's json_loadb()
with flags 0 (libjansson 2.14, Debian 12) accepts, what value it gives,
and the exact text of the error it reports, so that fib_worker.py refuses
every bad payload with the C worker's own message (which depends on
whether jansson's error text says "too big").

Behaviour kept on purpose, because jansson has it: the input is read one
UTF-8 character at a time and checked as it goes; the first error set is
the one reported; an error's text gets " near '<token so far>'" when that
token is 1 to 20 bytes, " near end of file" when it is empty; a NUL byte
read and pushed back (after a number or a name) is lost; nesting deeper
than 2048 fails; top level must be an object or an array; NUL in strings
(\\u0000) and lone surrogates are refused; integers are 64-bit signed.

load(data) returns (value, None) or (None, error_text: bytes). Values:
dict (bytes keys, the last duplicate wins), list, bytes (strings), int,
float, True, False, None.
"""
from __future__ import annotations

import math
import sys
from typing import Any

EOF = -1
ERR = -2
MAX_DEPTH = 2048
TEXT_LEN = 160

T_INVALID = -1
T_EOF = 0
T_STRING = 256
T_INTEGER = 257
T_REAL = 258
T_TRUE = 259
T_FALSE = 260
T_NULL = 261

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1


def _check_first(u: int) -> int:
    if u < 0x80:
        return 1
    if u <= 0xBF or u in (0xC0, 0xC1):
        return 0
    if u <= 0xDF:
        return 2
    if u <= 0xEF:
        return 3
    if u <= 0xF4:
        return 4
    return 0


def _check_full(buf: list[int], size: int) -> bool:
    u = buf[0]
    if size == 2:
        value = u & 0x1F
    elif size == 3:
        value = u & 0xF
    elif size == 4:
        value = u & 0x7
    else:
        return False
    for i in range(1, size):
        u = buf[i]
        if u < 0x80 or u > 0xBF:
            return False
        value = (value << 6) + (u & 0x3F)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return False
    if (size == 2 and value < 0x80) or (size == 3 and value < 0x800) or \
            (size == 4 and value < 0x10000):
        return False
    return True


def _isdigit(c: int) -> bool:
    return 0x30 <= c <= 0x39


def _isalpha(c: int) -> bool:
    return 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _isxdigit(c: int) -> bool:
    return _isdigit(c) or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66


class _Fail(Exception):
    pass


class _Lex:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.buf = [0]
        self.bpos = 0
        self.state = 0
        self.saved = bytearray()
        self.error: bytes | None = None
        self.token = T_INVALID
        self.value: Any = None
        self.depth = 0

    # errors: the first one set wins
    def error_set(self, msg: str) -> None:
        if self.error is not None:
            return
        text = msg.encode()
        saved = self.saved
        if saved and saved[0] != 0:
            if len(saved) <= 20:
                shown = bytes(saved).split(b"\0", 1)[0]
                text = text + b" near '" + shown + b"'"
        elif self.state != ERR:
            text = text + b" near end of file"
        self.error = text[:TEXT_LEN - 1]

    # the stream
    def get(self) -> int:
        if self.state != 0:
            return self.state
        if self.buf[self.bpos] == 0:
            if self.pos >= len(self.data):
                self.state = EOF
                return EOF
            c = self.data[self.pos]
            self.pos += 1
            self.buf = [c]
            self.bpos = 0
            if c >= 0x80:
                count = _check_first(c)
                if not count:
                    return self._utf8_error(c)
                for _ in range(1, count):
                    if self.pos < len(self.data):
                        self.buf.append(self.data[self.pos])
                        self.pos += 1
                    else:
                        self.buf.append(0xFF)  # EOF stored in a char
                if not _check_full(self.buf, count):
                    return self._utf8_error(c)
            self.buf.append(0)
        c = self.buf[self.bpos]
        self.bpos += 1
        return c

    def _utf8_error(self, c: int) -> int:
        self.state = ERR
        self.error_set(f"unable to decode byte 0x{c:x}")
        return ERR

    def unget(self, c: int) -> None:
        if c in (EOF, ERR):
            return
        self.bpos -= 1

    def get_save(self) -> int:
        c = self.get()
        if c not in (EOF, ERR):
            self.saved.append(c)
        return c

    def unget_unsave(self, c: int) -> None:
        if c not in (EOF, ERR):
            self.bpos -= 1
            self.saved.pop()

    def save_cached(self) -> None:
        while self.buf[self.bpos] != 0:
            self.saved.append(self.buf[self.bpos])
            self.bpos += 1

    # tokens
    def scan_string(self) -> None:
        self.value = None
        self.token = T_INVALID
        c = self.get_save()
        while c != 0x22:
            if c == ERR:
                return
            if c == EOF:
                self.error_set("premature end of input")
                return
            if 0 <= c <= 0x1F:
                self.unget_unsave(c)
                if c == 0x0A:
                    self.error_set("unexpected newline")
                else:
                    self.error_set(f"control character 0x{c:x}")
                return
            if c == 0x5C:
                c = self.get_save()
                if c == 0x75:
                    c = self.get_save()
                    for _ in range(4):
                        if not _isxdigit(c):
                            self.error_set("invalid escape")
                            return
                        c = self.get_save()
                elif c >= 0 and c in b'"\\/bfnrt':
                    c = self.get_save()
                else:
                    self.error_set("invalid escape")
                    return
            else:
                c = self.get_save()
        s = bytes(self.saved)
        out = bytearray()
        p = 1
        simple = {0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08,
                  0x66: 0x0C, 0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09}
        while s[p] != 0x22:
            if s[p] == 0x5C:
                p += 1
                if s[p] == 0x75:
                    value = int(s[p + 1:p + 5], 16)
                    p += 5
                    if 0xD800 <= value <= 0xDBFF:
                        if s[p:p + 2] == b"\\u":
                            p += 1
                            value2 = int(s[p + 1:p + 5], 16)
                            p += 5
                            if 0xDC00 <= value2 <= 0xDFFF:
                                value = ((value - 0xD800) << 10) + \
                                    (value2 - 0xDC00) + 0x10000
                            else:
                                self.error_set(
                                    f"invalid Unicode '\\u{value:04X}"
                                    f"\\u{value2:04X}'")
                                return
                        else:
                            self.error_set(f"invalid Unicode "
                                           f"'\\u{value:04X}'")
                            return
                    elif 0xDC00 <= value <= 0xDFFF:
                        self.error_set(f"invalid Unicode '\\u{value:04X}'")
                        return
                    out += chr(value).encode("utf-8")
                else:
                    out.append(simple[s[p]])
                    p += 1
            else:
                out.append(s[p])
                p += 1
        self.value = bytes(out)
        self.token = T_STRING

    def scan_number(self, c: int) -> bool:
        self.token = T_INVALID
        if c == 0x2D:
            c = self.get_save()
        if c == 0x30:
            c = self.get_save()
            if _isdigit(c):
                self.unget_unsave(c)
                return False
        elif _isdigit(c):
            c = self.get_save()
            while _isdigit(c):
                c = self.get_save()
        else:
            self.unget_unsave(c)
            return False
        if c not in (0x2E, 0x45, 0x65):
            self.unget_unsave(c)
            v = int(bytes(self.saved))
            if v < _INT_MIN or v > _INT_MAX:
                self.error_set("too big negative integer" if v < 0
                               else "too big integer")
                return False
            self.token = T_INTEGER
            self.value = v
            return True
        if c == 0x2E:
            c = self.get()
            if not _isdigit(c):
                self.unget(c)
                return False
            self.saved.append(c)
            c = self.get_save()
            while _isdigit(c):
                c = self.get_save()
        if c in (0x45, 0x65):
            c = self.get_save()
            if c in (0x2B, 0x2D):
                c = self.get_save()
            if not _isdigit(c):
                self.unget_unsave(c)
                return False
            c = self.get_save()
            while _isdigit(c):
                c = self.get_save()
        self.unget_unsave(c)
        d = float(bytes(self.saved))
        if math.isinf(d):
            self.error_set("real number overflow")
            return False
        self.token = T_REAL
        self.value = d
        return True

    def scan(self) -> int:
        self.saved.clear()
        self.value = None
        c = self.get()
        while c in (0x20, 0x09, 0x0A, 0x0D):
            c = self.get()
        if c == EOF:
            self.token = T_EOF
            return self.token
        if c == ERR:
            self.token = T_INVALID
            return self.token
        self.saved.append(c)
        if c in b"{}[]:,":
            self.token = c
        elif c == 0x22:
            self.scan_string()
        elif _isdigit(c) or c == 0x2D:
            self.scan_number(c)
        elif _isalpha(c):
            c = self.get_save()
            while _isalpha(c):
                c = self.get_save()
            self.unget_unsave(c)
            word = bytes(self.saved)
            self.token = {b"true": T_TRUE, b"false": T_FALSE,
                          b"null": T_NULL}.get(word, T_INVALID)
        else:
            self.save_cached()
            self.token = T_INVALID
        return self.token

    # parser
    def parse_object(self) -> dict[bytes, Any]:
        obj: dict[bytes, Any] = {}
        self.scan()
        if self.token == 0x7D:
            return obj
        while True:
            if self.token != T_STRING:
                self.error_set("string or '}' expected")
                raise _Fail
            key = self.value
            if b"\0" in key:
                self.error_set("NUL byte in object key not supported")
                raise _Fail
            self.scan()
            if self.token != 0x3A:
                self.error_set("':' expected")
                raise _Fail
            self.scan()
            obj[key] = self.parse_value()
            self.scan()
            if self.token != 0x2C:
                break
            self.scan()
        if self.token != 0x7D:
            self.error_set("'}' expected")
            raise _Fail
        return obj

    def parse_array(self) -> list[Any]:
        arr: list[Any] = []
        self.scan()
        if self.token == 0x5D:
            return arr
        while self.token:
            arr.append(self.parse_value())
            self.scan()
            if self.token != 0x2C:
                break
            self.scan()
        if self.token != 0x5D:
            self.error_set("']' expected")
            raise _Fail
        return arr

    def parse_value(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.error_set("maximum parsing depth reached")
            raise _Fail
        t = self.token
        if t == T_STRING:
            if b"\0" in self.value:
                self.error_set("\\u0000 is not allowed without "
                               "JSON_ALLOW_NUL")
                raise _Fail
            v = self.value
        elif t in (T_INTEGER, T_REAL):
            v = self.value
        elif t == T_TRUE:
            v = True
        elif t == T_FALSE:
            v = False
        elif t == T_NULL:
            v = None
        elif t == 0x7B:
            v = self.parse_object()
        elif t == 0x5B:
            v = self.parse_array()
        elif t == T_INVALID:
            self.error_set("invalid token")
            raise _Fail
        else:
            self.error_set("unexpected token")
            raise _Fail
        self.depth -= 1
        return v


def load(data: bytes) -> tuple[Any, bytes | None]:
    """json_loadb(data, len, 0, &err): (value, None) or (None, err.text)."""
    if sys.getrecursionlimit() < 3 * MAX_DEPTH + 1000:
        sys.setrecursionlimit(3 * MAX_DEPTH + 1000)  # two frames a level
    lex = _Lex(data)
    try:
        lex.scan()
        if lex.token not in (0x5B, 0x7B):
            lex.error_set("'[' or '{' expected")
            raise _Fail
        root = lex.parse_value()
        lex.scan()
        if lex.token != T_EOF:
            lex.error_set("end of file expected")
            raise _Fail
    except _Fail:
        return None, lex.error or b""
    return root, None
