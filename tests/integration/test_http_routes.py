# SPDX-License-Identifier: MIT
"""The default route table (issue 3): GET /fib/{n} -> service fib with
{"n": n}. The original Fibonacci service's test plan, over HTTP."""
import json
import os

from ferrytest import ROOT, FerryTestCase


def fib_list(n):
    out, a, b = [], 0, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out


class TestFibRoute(FerryTestCase):
    TIME_LIMIT = 40

    def setUp(self):
        super().setUp()
        self.d = self.daemon("--worker-wait-ms", "200")
        if not self.d.http_addr:
            self.fail("ferryd has no --http flag (issue 3 not built?)")
        self.worker("fib_worker", "--addr", self.d.addr)

    def get(self, path):
        return self.d.http("GET", path, timeout=15)

    def test_fib_1(self):
        r = self.get("/fib/1")
        self.assertEqual(r.status, 200, r)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        self.assertEqual(r.json(), {"N": 1, "result": "0"})

    def test_fib_1234_exact(self):
        r = self.get("/fib/1234")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["N"], 1234)
        nums = doc["result"].split(" ")
        self.assertEqual(len(nums), 1234)
        want = fib_list(1234)
        self.assertEqual(int(nums[-1]), want[-1])
        self.assertEqual([int(x) for x in nums], want)

    def test_fib_query_string_ignored(self):
        r = self.get("/fib/25?a=b")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"].split(" ")[-1],
                         str(fib_list(25)[-1]))

    def test_fib_bad_n(self):
        for path in ("/fib/0", "/fib/-1", "/fib/abc"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertHttpError(r, 400, "INVALID_ARGUMENT")
        for path in ("/fib/1.5", "/fib/99999999999999999999", "/fib/%00"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 400, r)
                self.assertIn("error", r.json())
        # The worker still serves.
        self.assertEqual(self.get("/fib/3").json(),
                         {"N": 3, "result": "0 1 1"})

    def test_fib_trailing_slash(self):
        """docs/http.md says what /fib/1/ does; the brief expects 404."""
        doc = os.path.join(ROOT, "docs", "http.md")
        text = open(doc, encoding="utf-8").read() if os.path.exists(doc) \
            else ""
        r = self.get("/fib/1/")
        self.assertEqual(r.status, 404, f"{r!r}; docs/http.md present: "
                         f"{bool(text)}")
        self.assertIsInstance(r.json(), dict)
        self.assertIn("error", r.json())

    def test_fib_wrong_method(self):
        r = self.d.http("POST", "/fib/3", b"")
        self.assertIn(r.status, (404, 405), r)
        json.loads(r.body)
