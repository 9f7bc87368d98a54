# SPDX-License-Identifier: MIT
"""examples/fib/python/fib_worker.py answers exactly what the C worker
(examples/fib/fib_worker.c) answers: each behind its own real ferryd, the
same payloads to both, replies and errors compared byte for byte."""
import os
import random

import fhelp
import ferry

PYFIB = os.path.join(fhelp.ROOT, "examples", "fib", "python",
                     "fib_worker.py")
CFIB = os.path.join(os.environ["FERRY_BIN"], "fib_worker")

BAD = [
    b"", b"x", b"5", b"[1]", b"{}", b"null", b'{"n":0}', b'{"n":-1}',
    b'{"n":10001}', b'{"n":1.0}', b'{"n":1e2}', b'{"n":"5"}', b'{"n":true}',
    b'{"n":null}', b'{"n":99999999999999999999}', b'[99999999999999999999]',
    b'{"n":-99999999999999999999}', b'{"n":1e400}', b'{"n":5,}',
    b'{"n":05}', b'{"n":5}x', b'{"n":5\x00}', b'{"n":5,"n":7}',
    b'{"a":"\\u0000","n":5}', b'{"n\\u0000":5}', b'{"a":"\\ud800","n":5}',
    b'{"a":"too big\\x"}', b'{"too big":\xff}', b'"too big \xff',
    b'{"n":NaN}', b'{"n":Infinity}', b'\xef\xbb\xbf{"n":5}', b'{"n":5e}',
    b'{"n":-}', b'{"n":-0}', b'{"n":2.}', b"[" * 2049 + b"]" * 2049,
    b'{"a":' + b"[" * 1500 + b"]" * 1500 + b',"n":4}',
    b'{"n":4}' + b" " * 5000, b'{"n":9223372036854775807}',
    b'{"n":-9223372036854775808}', b'{"n":9223372036854775808}',
    b'{"n":3,"too big":1}', b'{"\xc3\xa9":1,"n":3}', b'{"\xed\xa0\x80":1}',
    b'{"n":3}\x00', b"\x00", b'{"a":"\\uDC00"}', b'{"a":"\\uD800\\u0041"}',
    b'{"a":"\\uD83D\\uDE00","n":2}', b'{"n":tru}', b'{"n":1E5}',
    b'{"a\nb":1}', b'{"a\x01":1}', b'{"n": 3 , "x": [1, {"y": null}]}',
    b'  {"n":2}\n', b'{"n":2}}', b'{"n":2', b'{"n"', b'{"n":"2"}',
    b'{"x":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\q","n":1}',
]


def outcome(c, payload):
    try:
        return ("ok", c.call("fib", payload, deadline_ms=20000))
    except ferry.FerryError as e:
        return (e.name, e.message)


class TestFib(fhelp.TestCase):
    LIMIT = 100

    def test_byte_identical_to_the_c_worker(self):
        dc = self.daemon()
        dp = self.daemon()
        wc = fhelp.PyProc([], timeout=10)
        wc.args = [CFIB, "--addr", dc.addr]
        self.addCleanup(wc.stop)
        wc.start()
        self.pyproc([PYFIB, "--addr", dp.addr])
        rnd = random.Random(10)
        fuzz = []
        for _ in range(200):
            fuzz.append(bytes(rnd.choice(b'{}[]":,n0123456789-.eE \\u\x00'
                                         b'\xc3\xa9tfrlx')
                              for _ in range(rnd.randint(0, 30))))
            fuzz.append(b'{"n":' + bytes(rnd.choice(b"0123456789-+.eE ")
                                         for _ in range(rnd.randint(0, 20)))
                        + b"}")
        payloads = [b'{"n": %d}' % n for n in range(1, 301)]
        payloads += [b'{"n":%d}' % n for n in (500, 1000, 2500, 9999, 10000)]
        payloads += BAD + fuzz
        with ferry.Client(dc.addr) as cc, ferry.Client(dp.addr) as cp:
            fc = [cc.submit("fib", p, deadline_ms=20000) for p in payloads]
            fp = [cp.submit("fib", p, deadline_ms=20000) for p in payloads]
            oks = errs = 0
            for p, a, b in zip(payloads, fc, fp):
                ra = ("ok", a.result(30)) if a.exception(30) is None else \
                    (a.exception().name, a.exception().message)
                rb = ("ok", b.result(30)) if b.exception(30) is None else \
                    (b.exception().name, b.exception().message)
                self.assertEqual(rb, ra, p[:60])
                if ra[0] == "ok":
                    oks += 1
                else:
                    errs += 1
            self.assertEqual(outcome(cp, b'{"n":10}')[1],
                             b'{"N": 10, "result": "0 1 1 2 3 5 8 13 21 34"}')
            self.assertGreaterEqual(oks, 305)
            self.assertGreaterEqual(errs, len(BAD) - 5)

    def test_max_and_frame_limit(self):
        d1 = self.daemon()
        d2 = self.daemon()
        wc = fhelp.PyProc([], timeout=10)
        wc.args = [CFIB, "--addr", d1.addr, "--max", "100000"]
        self.addCleanup(wc.stop)
        wc.start()
        self.pyproc([PYFIB, "--addr", d2.addr, "--max", "100000"])
        with ferry.Client(d1.addr) as a, ferry.Client(d2.addr) as b:
            for p in (b'{"n":100000}', b'{"n":100001}', b'{"n":20000}'):
                self.assertEqual(outcome(b, p), outcome(a, p))
