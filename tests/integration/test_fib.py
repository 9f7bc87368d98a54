# SPDX-License-Identifier: MIT
"""The Fibonacci service (examples/fib): {"n": N} -> {"N": N, "result":
"0 1 1 2 ..."}, the first N numbers exact; bad input -> INVALID_ARGUMENT
and the worker keeps serving."""
import json

from ferrytest import FerryTestCase


def fib_list(n):
    out, a, b = [], 0, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out


class TestFib(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        self.d = self.daemon()
        self.worker("fib_worker", "--addr", self.d.addr)
        self.c = self.conn(self.d)
        self.ids = iter(range(1, 10 ** 6))

    def fib(self, payload):
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        return self.c.call(next(self.ids), "fib", payload, deadline_ms=10000,
                           timeout=15)

    def result(self, n):
        f = self.fib({"n": n})
        self.assertReply(f)
        doc = json.loads(f.body)
        self.assertEqual(doc["N"], n)
        return doc["result"]

    def test_small(self):
        self.assertEqual(self.result(1), "0")
        self.assertEqual(self.result(2), "0 1")
        self.assertEqual(self.result(10), "0 1 1 2 3 5 8 13 21 34")

    def test_1000_exact(self):
        nums = self.result(1000).split(" ")
        self.assertEqual(len(nums), 1000)
        want = fib_list(1000)
        self.assertEqual(int(nums[999]), want[999])    # F999, 209 digits
        self.assertEqual(len(nums[999]), 209)
        self.assertEqual([int(x) for x in nums], want)

    def test_larger_then_smaller(self):
        """The table grows; a later small request is a prefix."""
        nums = self.result(5000).split(" ")
        self.assertEqual(len(nums), 5000)
        self.assertEqual(int(nums[-1]), fib_list(5000)[-1])
        self.assertEqual(self.result(3), "0 1 1")

    def test_bad_inputs(self):
        bad = [
            b'{"n": 0}', b'{"n": -1}', b'{"n": "abc"}', b'{"n": 1.5}',
            b'{}', b'{"m": 5}', b'not json', b'{"n": 10', b'',
            b'{"n": 1000000000000}', b'[10]', b'10', b'{"n": null}',
            b'{"n": true}', b'{"n": 10001}',
        ]
        for p in bad:
            with self.subTest(payload=p):
                f = self.fib(p)
                msg = self.assertError(f, "INVALID_ARGUMENT")
                self.assertTrue(msg, "no message with INVALID_ARGUMENT")
                # The worker still serves.
                self.assertEqual(self.result(4), "0 1 1 2")

    def test_max_flag(self):
        d = self.daemon()
        self.worker("fib_worker", "--addr", d.addr, "--max", "20")
        c = self.conn(d)
        f = c.call(1, "fib", b'{"n": 20}', deadline_ms=5000)
        self.assertReply(f)
        self.assertEqual(len(json.loads(f.body)["result"].split(" ")), 20)
        f = c.call(2, "fib", b'{"n": 21}', deadline_ms=5000)
        self.assertError(f, "INVALID_ARGUMENT")
