#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Fibonacci service in Python: serves "fib", answering {"n": N} with
{"N": N, "result": "0 1 1 2 3 ..."}, the first N Fibonacci numbers
(F0 = 0, F1 = 1) in exact decimal, byte for byte what the C worker
(examples/fib/fib_worker.c) answers, refusals included.

    fib_worker.py [--addr ADDR] [--max N] [--credit N] [--token TOKEN]

Numbers are computed once into a growing table and every answer is a copy
of a prefix of its text. The request is read with the standard json module
and checked as examples/fib/README.md says, which the C worker follows too.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
from typing import NoReturn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python"))

import ferry  # noqa: E402

DEFAULT_MAX = 10000
MAX_MAX = 1000000
MAX_PAYLOAD = 4096                 # requests are tiny
MAX_REPLY = 16 * 1024 * 1024       # ferryd's default frame limit

USAGE = f"""usage: fib_worker [--addr ADDR] [--max N] [--credit N] [--token TOKEN]

Serves "fib": {{"n": N}} -> {{"N": N, "result": "0 1 1 2 ..."}},
the first N Fibonacci numbers, exact.

  --addr ADDR  ferryd address (default $FERRY_ADDR, else 127.0.0.1:7700)
  --max N      largest n accepted (default {DEFAULT_MAX})
  --credit N   requests taken at once, 1..65535 (default 16)
  --token TOKEN  access token sent in HELLO (default $FERRY_TOKEN)
"""


def format_size(n: int) -> int:
    """fib_format_size(): an upper bound of the reply's bytes, computed in
    doubles exactly as the C worker does."""
    digits = 0.20898764024997873 * float(n) * float(n) / 2.0 + 2.0 * float(n)
    return int(digits) + 64


class FibTable:
    """F(0) .. F(count - 1) and their decimal text, space-separated."""

    def __init__(self) -> None:
        self.a, self.b = 0, 1      # F(count), F(count + 1)
        self.count = 0
        self.text = bytearray()
        self.ends: list[int] = []
        self.lock = threading.Lock()

    def prefix(self, n: int) -> bytes:
        with self.lock:
            if n > self.count:
                parts = []
                a, b = self.a, self.b
                end = len(self.text)
                for k in range(self.count, n):
                    s = str(a).encode()
                    if k > 0:
                        parts.append(b" ")
                        end += 1
                    parts.append(s)
                    end += len(s)
                    self.ends.append(end)
                    a, b = b, a + b
                self.text += b"".join(parts)
                self.a, self.b, self.count = a, b, n
            return bytes(self.text[:self.ends[n - 1]])


NOT_OBJECT = 'payload must be a JSON object like {"n": 10}'
SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


class _Reader:
    """json.loads with every number a double, as in the other three
    workers, noting what the C worker's parser refuses but json takes (a
    lone surrogate, NUL in a key) and any number beyond double range, in
    every value, even one that a later duplicate key replaces."""

    def __init__(self) -> None:
        self.refused = False
        self.overflow = False

    def load(self, text: str) -> object:
        root = json.loads(text, parse_int=self.number,
                          parse_float=self.number,
                          parse_constant=_refuse_constant,
                          object_pairs_hook=self.pairs)
        self.check(root)
        return root

    def number(self, text: str) -> float:
        v = float(text)
        self.overflow |= math.isinf(v)
        return v

    def pairs(self, items: list[tuple[str, object]]) -> dict:
        for k, v in items:
            self.refused |= "\0" in k or SURROGATE.search(k) is not None
            self.check(v)
        return dict(items)

    def check(self, value: object) -> None:
        """The strings in value; objects were checked by pairs()."""
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, str):
                self.refused |= SURROGATE.search(v) is not None
            elif isinstance(v, list):
                stack.extend(v)


def parse_n(payload: bytes, max_n: int) -> tuple[int | None, str]:
    """n, or None and why (examples/fib/README.md)."""
    if len(payload) > MAX_PAYLOAD:
        return None, f"payload larger than {MAX_PAYLOAD} bytes"
    range_msg = f"n must be an integer between 1 and {max_n}"
    r = _Reader()
    try:
        root = r.load(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, NOT_OBJECT
    if r.refused:
        return None, NOT_OBJECT
    if r.overflow:
        return None, range_msg
    if not isinstance(root, dict):
        return None, NOT_OBJECT
    v = root.get("n")
    if not isinstance(v, float) or not 1 <= v <= max_n or v != int(v):
        return None, range_msg
    return int(v), ""


def main(argv: list[str]) -> int:
    addr = None
    token = os.environ.get("FERRY_TOKEN")
    credit, max_n = 16, DEFAULT_MAX
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        if v is None:
            sys.stderr.write(USAGE)
            return 2
        if a == "--addr":
            addr = v
        elif a == "--token":
            token = v
        elif a == "--max":
            if not (v[:1].isdigit() and v.isdigit() and
                    1 <= int(v) <= MAX_MAX):
                print(f"fib_worker: --max must be 1..{MAX_MAX}",
                      file=sys.stderr)
                return 2
            max_n = int(v)
        elif a == "--credit":
            if not (v[:1].isdigit() and v.isdigit() and
                    1 <= int(v) <= 65535):
                print("fib_worker: --credit must be 1..65535",
                      file=sys.stderr)
                return 2
            credit = int(v)
        else:
            sys.stderr.write(USAGE)
            return 2
        i += 2
    sys.set_int_max_str_digits(0)
    # A payload of MAX_PAYLOAD bytes nests at most that deep.
    sys.setrecursionlimit(MAX_PAYLOAD + 1000)
    table = FibTable()

    def fib(job: ferry.Job) -> bytes:
        n, why = parse_n(job.payload, max_n)
        if n is None:
            raise ferry.InvalidArgumentError(message=why)
        if format_size(n) > MAX_REPLY:
            raise ferry.InvalidArgumentError(
                message=f"the result for n={n} is larger than a frame "
                        "may be")
        return b'{"N": %d, "result": "' % n + table.prefix(n) + b'"}'

    try:
        w = ferry.Worker(addr, token=token, name="fib-worker-python")
    except ValueError as e:
        print(f"fib_worker: address '{addr or '(default)'}': {e}",
              file=sys.stderr)
        return 2
    w.register("fib", fib, credit)

    def ready(_: ferry.Worker) -> None:
        print("READY", flush=True)

    try:
        w.run(ready)
    except ferry.FerryError as e:
        print(f"fib_worker: {e.name}: {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
