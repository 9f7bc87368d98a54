# SPDX-License-Identifier: MIT
"""tests/lib/promparse.py, the strict Prometheus text-format parser that
the /metrics tests rely on: it must take good expositions and refuse bad
ones, or a /metrics test proves nothing. No daemon here."""
import math
import unittest

from promparse import PromError, parse

GOOD = """\
# HELP ferry_requests_total Requests by service.
# TYPE ferry_requests_total counter
ferry_requests_total{service="echo"} 12
ferry_requests_total{service="fib",code="OK"} 3
# TYPE ferry_in_flight gauge
ferry_in_flight -1.5e3
# A free comment.
# HELP ferry_latency_seconds Latency.\\nSecond line \\\\ here.
# TYPE ferry_latency_seconds histogram
ferry_latency_seconds_bucket{service="echo",le="0.001"} 1
ferry_latency_seconds_bucket{service="echo",le="0.01"} 5
ferry_latency_seconds_bucket{service="echo",le="+Inf"} 7
ferry_latency_seconds_sum{service="echo"} 0.05
ferry_latency_seconds_count{service="echo"} 7
ferry_latency_seconds_bucket{service="fib",le="1"} 0
ferry_latency_seconds_bucket{service="fib",le="+Inf"} 0
ferry_latency_seconds_sum{service="fib"} 0
ferry_latency_seconds_count{service="fib"} 0

# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE odd untyped
odd{a="x\\"y\\\\z\\n",b="",} +Inf 1395066363000
odd{a="2"}\t-Inf
odd{ c = "3" } .5e1
"""


def bad(text):
    return text if text.endswith("\n") else text + "\n"


class TestPromParse(unittest.TestCase):

    def test_good(self):
        m = parse(GOOD)
        self.assertEqual(m.families["ferry_requests_total"].type, "counter")
        self.assertEqual(m.families["ferry_requests_total"].help,
                         "Requests by service.")
        self.assertEqual(m.value("ferry_requests_total", service="echo"), 12)
        self.assertEqual(m.value("ferry_requests_total", service="fib",
                                 code="OK"), 3)
        self.assertEqual(m.value("ferry_in_flight"), -1500.0)
        self.assertEqual(m.families["ferry_latency_seconds"].help,
                         "Latency.\nSecond line \\ here.")
        self.assertEqual(m.value("ferry_latency_seconds_bucket",
                                 service="echo", le="+Inf"), 7)
        self.assertEqual(len(m.find("ferry_latency_seconds_bucket",
                                    service="fib")), 2)
        self.assertTrue(math.isnan(m.value("rpc_duration_seconds",
                                           quantile="0.99")))
        odd = m.find("odd", b="")[0]
        self.assertEqual(odd.labels["a"], 'x"y\\z\n')
        self.assertEqual(odd.value, math.inf)
        self.assertEqual(odd.timestamp, 1395066363000)
        self.assertEqual(m.value("odd", a="2"), -math.inf)
        self.assertEqual(m.value("odd", c="3"), 5.0)
        with self.assertRaises(KeyError):
            m.value("ferry_requests_total", service="nope")

    def test_empty(self):
        self.assertEqual(parse("").families, {})
        self.assertEqual(parse(b"# just a comment\n").families, {})

    def test_bad(self):
        T = "# TYPE m counter\n"
        H = "# TYPE h histogram\n"
        cases = {
            "no final newline": T + "m 1",
            "carriage return": T.replace("\n", "\r\n") + "m 1\r\n",
            "no TYPE": "m 1\n",
            "HELP only": "# HELP m help\nm 1\n",
            "bad TYPE": "# TYPE m countr\nm 1\n",
            "TYPE extra": "# TYPE m counter x\nm 1\n",
            "two TYPEs": T + T + "m 1\n",
            "two HELPs": "# HELP m a\n# HELP m b\n" + T + "m 1\n",
            "TYPE after sample": "# TYPE m gauge\nm 1\n# TYPE m gauge\n",
            "bad HELP escape": "# HELP m a\\tb\n" + T + "m 1\n",
            "bad metric name": "# TYPE 1m counter\n1m 1\n",
            "bad name char": "# TYPE m-x counter\nm-x 1\n",
            "no value": T + "m\n",
            "no blank": T + 'm{a="1"}1\n',
            "bad value": T + "m one\n",
            "bad value 2": T + "m 1..2\n",
            "inf spelling": "# TYPE g gauge\ng inf\n",
            "Inf unsigned": "# TYPE g gauge\ng Inf\n",
            "hex value": "# TYPE g gauge\ng 0x1F\n",
            "three tokens": T + "m 1 2 3\n",
            "bad timestamp": T + "m 1 1.5\n",
            "negative counter": T + "m -1\n",
            "NaN counter": T + "m NaN\n",
            "duplicate sample": T + 'm{a="1"} 1\nm{a="1"} 2\n',
            "duplicate label": T + 'm{a="1",a="2"} 1\n',
            "reserved label": T + 'm{__a="1"} 1\n',
            "bad label name": T + 'm{1a="1"} 1\n',
            "unquoted label": T + "m{a=1} 1\n",
            "unterminated label": T + 'm{a="1} 1\n',
            "unclosed brace": T + 'm{a="1" 1\n',
            "bad label escape": T + 'm{a="\\t"} 1\n',
            "label no comma": T + 'm{a="1" b="2"} 1\n',
            "double comma": T + 'm{a="1",,b="2"} 1\n',
            "not one group": T + "m 1\n# TYPE g gauge\ng 1\nm{a=\"x\"} 2\n",
            "wrong family suffix": T + "m_total 1\n",
            "bucket of a counter": T + 'm_bucket{le="1"} 1\n',
            "hist no inf": H + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
            "hist not ascending": H + 'h_bucket{le="2"} 1\n'
            'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\n'
            'h_count 1\n',
            "hist equal le": H + 'h_bucket{le="1"} 1\n'
            'h_bucket{le="1.0"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\n'
            'h_count 1\n',
            "hist not cumulative": H + 'h_bucket{le="1"} 3\n'
            'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
            "hist count mismatch": H + 'h_bucket{le="1"} 1\n'
            'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
            "hist no sum": H + 'h_bucket{le="+Inf"} 2\nh_count 2\n',
            "hist no count": H + 'h_bucket{le="+Inf"} 2\nh_sum 2\n',
            "hist bucket no le": H + 'h_bucket 2\nh_sum 2\nh_count 2\n',
            "hist le on sum": H + 'h_bucket{le="+Inf"} 2\n'
            'h_sum{le="1"} 2\nh_count 2\n',
            "hist bare sample": H + 'h 2\n',
            "hist bad le": H + 'h_bucket{le="x"} 2\nh_sum 2\nh_count 2\n',
            "hist negative bucket": H + 'h_bucket{le="1"} -1\n'
            'h_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n',
            "hist one label set bad": H + 'h_bucket{s="a",le="+Inf"} 1\n'
            'h_sum{s="a"} 1\nh_count{s="a"} 1\nh_bucket{s="b",le="+Inf"} 1\n'
            'h_sum{s="b"} 1\nh_count{s="b"} 2\n',
            "summary no quantile": "# TYPE s summary\ns 1\ns_sum 1\n"
            "s_count 1\n",
            "summary bad quantile": "# TYPE s summary\n"
            's{quantile="2"} 1\ns_sum 1\ns_count 1\n',
            "summary no count": "# TYPE s summary\n"
            's{quantile="0.5"} 1\ns_sum 1\n',
            "not utf-8": b"# TYPE m counter\nm{a=\"\xff\"} 1\n",
        }
        for name, text in cases.items():
            with self.subTest(case=name):
                with self.assertRaises(PromError, msg=repr(text)):
                    parse(text)


if __name__ == "__main__":
    unittest.main()
