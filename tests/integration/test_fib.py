# SPDX-License-Identifier: MIT
"""The Fibonacci service (examples/fib): {"n": N} -> {"N": N, "result":
"0 1 1 2 ..."}, the first N numbers exact; bad input -> INVALID_ARGUMENT
with the contract's message (examples/fib/README.md, its corpus
examples/fib/payloads.json) and the worker keeps serving."""
import json
import os

from ferrytest import FerryTestCase

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "examples", "fib", "payloads.json")
MESSAGES = {
    "object": 'payload must be a JSON object like {"n": 10}',
    "range": "n must be an integer between 1 and 10000",
    "size": "payload larger than 4096 bytes",
}


def corpus_payload(p):
    """A payload of payloads.json: a string of bytes, or parts joined."""
    if isinstance(p, str):
        return p.encode("latin-1")
    return b"".join(corpus_payload(x) if isinstance(x, str)
                    else corpus_payload(x[0]) * x[1] for x in p)


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

    def test_the_contract_corpus(self):
        """Every payload of payloads.json gets the answer it expects: the
        "compare" ones and what the C worker answers to the "differ" ones."""
        with open(CORPUS, encoding="utf-8") as f:
            doc = json.load(f)
        cases = [(want, corpus_payload(p)) for want, p in doc["compare"]]
        cases += [(d["c"], corpus_payload(d["payload"]))
                  for d in doc["differ"]]
        for want, p in cases:
            with self.subTest(payload=p[:60]):
                f = self.fib(p)
                if want == "ok":
                    self.assertReply(f)
                    n = json.loads(f.body)["N"]
                    self.assertEqual(f.body, json.dumps(
                        {"N": n, "result": " ".join(
                            map(str, fib_list(n)))}).encode())
                else:
                    self.assertEqual(
                        self.assertError(f, "INVALID_ARGUMENT"),
                        MESSAGES[want].encode())

    def test_max_flag(self):
        d = self.daemon()
        self.worker("fib_worker", "--addr", d.addr, "--max", "20")
        c = self.conn(d)
        f = c.call(1, "fib", b'{"n": 20}', deadline_ms=5000)
        self.assertReply(f)
        self.assertEqual(len(json.loads(f.body)["result"].split(" ")), 20)
        f = c.call(2, "fib", b'{"n": 21}', deadline_ms=5000)
        self.assertError(f, "INVALID_ARGUMENT")
