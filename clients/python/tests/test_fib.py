# SPDX-License-Identifier: MIT
"""examples/fib/python/fib_worker.py answers exactly what the C worker
(examples/fib/fib_worker.c) answers: each behind its own real ferryd, the
same payloads to both, replies and errors compared byte for byte. The
payloads are every n up to the max and beyond, the contract's corpus
(examples/fib/payloads.json: each payload's expected answer too) and
seeded random ones; the corpus's known differences are checked apart."""
import json
import os
import random
import re

import fhelp
import ferry

PYFIB = os.path.join(fhelp.ROOT, "examples", "fib", "python",
                     "fib_worker.py")
CFIB = os.path.join(os.environ["FERRY_BIN"], "fib_worker")
CORPUS = os.path.join(fhelp.ROOT, "examples", "fib", "payloads.json")
MAX = 10000
MESSAGES = {
    "object": 'payload must be a JSON object like {"n": 10}',
    "range": f"n must be an integer between 1 and {MAX}",
    "size": "payload larger than 4096 bytes",
}
# A number that may be beyond double range (an exponent of three digits
# or more, or a long run of digits): with another fault after it, the C
# worker answers differently (payloads.json, "differ"), so random payloads
# with one are left out of the comparison.
MAYBE_OVERFLOW = re.compile(rb"[eE]\+?0*[1-9][0-9]{2}|[0-9]{300}")


def corpus_payload(p) -> bytes:
    """A payload of payloads.json: a string of bytes, or parts joined."""
    if isinstance(p, str):
        return p.encode("latin-1")
    return b"".join(corpus_payload(x) if isinstance(x, str)
                    else corpus_payload(x[0]) * x[1] for x in p)


def load_corpus():
    with open(CORPUS, encoding="utf-8") as f:
        doc = json.load(f)
    return ([(e, corpus_payload(p)) for e, p in doc["compare"]],
            [(corpus_payload(d["payload"]), d["c"], d["python"], d["why"])
             for d in doc["differ"]])


def kind(answer) -> str:
    """ok, object, range or size: which answer of the contract this is."""
    if answer[0] == "ok":
        return "ok"
    for k, msg in MESSAGES.items():
        if answer == ("INVALID_ARGUMENT", msg):
            return k
    return repr(answer)


def outcome(c, payload):
    try:
        return ("ok", c.call("fib", payload, deadline_ms=20000))
    except ferry.FerryError as e:
        return (e.name, e.message)


class TestFib(fhelp.TestCase):
    LIMIT = 100

    def setUp(self):
        super().setUp()
        dc = self.daemon()
        dp = self.daemon()
        wc = fhelp.PyProc([], timeout=10)
        wc.args = [CFIB, "--addr", dc.addr]
        self.addCleanup(wc.stop)
        wc.start()
        self.pyproc([PYFIB, "--addr", dp.addr])
        self.cc = ferry.Client(dc.addr)
        self.addCleanup(self.cc.close)
        self.cp = ferry.Client(dp.addr)
        self.addCleanup(self.cp.close)

    def answers(self, payloads):
        """(C's answer, Python's answer) for each payload, pipelined a few
        at a time (big replies are megabytes: all at once would pile up
        in ferryd's output)."""
        out = []
        for i in range(0, len(payloads), 8):
            batch = payloads[i:i + 8]
            fc = [self.cc.submit("fib", p, deadline_ms=20000) for p in batch]
            fp = [self.cp.submit("fib", p, deadline_ms=20000) for p in batch]
            for a, b in zip(fc, fp):
                out.append((self.answer(a), self.answer(b)))
        return out

    @staticmethod
    def answer(f):
        e = f.exception(30)
        return ("ok", f.result()) if e is None else (e.name, e.message)

    def test_every_n_gives_the_same_bytes(self):
        ns = list(range(1, 301)) + list(range(301, MAX, 487)) + \
            [MAX - 1, MAX, MAX + 1]
        payloads = [b'{"n": %d}' % n for n in ns]
        for n, p, (ra, rb) in zip(ns, payloads, self.answers(payloads)):
            self.assertEqual(rb, ra, p)
            self.assertEqual(kind(ra), "ok" if n <= MAX else "range", p)
        self.assertEqual(outcome(self.cp, b'{"n":10}')[1],
                         b'{"N": 10, "result": "0 1 1 2 3 5 8 13 21 34"}')

    def test_the_corpus_gets_the_same_answers(self):
        compare, _ = load_corpus()
        self.assertGreater(len(compare), 150)
        got = self.answers([p for _, p in compare])
        for (want, p), (ra, rb) in zip(compare, got):
            self.assertEqual(rb, ra, p[:80])
            self.assertEqual(kind(ra), want, p[:80])

    def test_random_payloads_get_the_same_answers(self):
        rnd = random.Random(10)
        payloads = []
        while len(payloads) < 400:
            p = bytes(rnd.choice(b'{}[]":,n0123456789-.eE \\u\x00\xc3\xa9'
                                 b'\xff\xedtfrlx')
                      for _ in range(rnd.randint(0, 30)))
            q = b'{"n":' + bytes(rnd.choice(b"0123456789-+.eE ")
                                 for _ in range(rnd.randint(0, 20))) + b"}"
            payloads += [x for x in (p, q) if not MAYBE_OVERFLOW.search(x)]
        kinds = set()
        for p, (ra, rb) in zip(payloads, self.answers(payloads)):
            self.assertEqual(rb, ra, p)
            kinds.add(kind(ra))
        self.assertEqual({"ok", "object", "range"}, kinds)

    def test_the_known_differences_are_real(self):
        """Each listed difference still is one; when one goes away, move
        it into "compare"."""
        _, differ = load_corpus()
        got = self.answers([p for p, _, _, _ in differ])
        for (p, c, py, why), (ra, rb) in zip(differ, got):
            self.assertEqual((kind(ra), kind(rb)), (c, py), why)
        with open(CORPUS, encoding="utf-8") as f:
            for d in json.load(f)["differ"]:
                self.assertGreater(len({d["c"], d["python"], d["node"],
                                        d["php"]}), 1, d["why"])

    def test_max_and_frame_limit(self):
        d1 = self.daemon()
        d2 = self.daemon()
        wc = fhelp.PyProc([], timeout=10)
        wc.args = [CFIB, "--addr", d1.addr, "--max", "100000"]
        self.addCleanup(wc.stop)
        wc.start()
        self.pyproc([PYFIB, "--addr", d2.addr, "--max", "100000"])
        with ferry.Client(d1.addr) as a, ferry.Client(d2.addr) as b:
            for p in (b'{"n":100000}', b'{"n":100001}', b'{"n":20000}',
                      b'{"n":1e5}', b'{"n":12000}'):
                self.assertEqual(outcome(b, p), outcome(a, p))
            self.assertIn(b"larger than a frame",
                          outcome(a, b'{"n":20000}')[1].encode())
