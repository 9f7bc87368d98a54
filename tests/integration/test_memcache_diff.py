# SPDX-License-Identifier: MIT
"""The memcached face beside Debian's memcached: the same command scripts
sent to both, every answer compared byte for byte after normalise()
(tests/lib/mctest.py), which removes only the differences listed in
docs/services.md ("memcached face"): cas values, the version string and
the contents of stats. Scripts run in order on one server each, so later
scripts see the items earlier ones left (both servers alike)."""
import socket
import time

from ferrytest import FerryTestCase, free_port
from mctest import FENCE, FENCE_ANSWER, Memcached, exchange, normalise

BIG = b"v" * 500000
HUGE = b"h" * 2000000
K250 = b"k" * 250
K251 = b"k" * 251

# (name, bytes, fence): fence False for scripts that close the connection.
SCRIPTS = [
    ("empty line", b"\r\n", True),
    ("unknown command", b"bogus\r\nSET k 0 0 1\r\n", True),
    ("get no key", b"get\r\ngets\r\n", True),
    ("get miss", b"get nope\r\ngets nope\r\n", True),
    ("set get", b"set a 5 0 3\r\nabc\r\nget a\r\ngets a\r\n", True),
    ("set LF only", b"set lf 0 0 1\nx\r\nget lf\n", True),
    ("multi get", b"set b 1 0 1\r\nB\r\nget a b nope a\r\n", True),
    ("double spaces", b"get a  b\r\nget a \r\n", True),
    ("set noreply", b"set n1 0 0 2 noreply\r\nnn\r\nget n1\r\n", True),
    ("set bad chunk", b"set c 0 0 5\r\nhelloXX\r\nget c\r\n", True),
    ("set short chunk", b"set c 0 0 1\r\nab\r\n", True),
    ("set neg len", b"set c 0 0 -1\r\n", True),
    ("set few args", b"set c 0 0\r\nset c\r\n", True),
    ("set bad flags", b"set c abc 0 1\r\nz\r\n", True),
    ("set bad exptime", b"set c 0 x 1\r\nz\r\n", True),
    ("key 250", b"set " + K250 + b" 0 0 1\r\nz\r\nget " + K250 + b"\r\n", True),
    ("key 251 get", b"get " + K251 + b"\r\n", True),
    ("key 251 mg", b"mg " + K251 + b" v\r\n", True),
    ("add", b"add a 0 0 1\r\nX\r\nadd a2 0 0 1\r\nX\r\nget a a2\r\n", True),
    ("replace", b"replace nope 0 0 1\r\nX\r\nreplace a 7 0 2\r\nYY\r\n"
     b"get a\r\n", True),
    ("append prepend", b"append a 0 0 2\r\n>>\r\nprepend a 0 0 2\r\n<<\r\n"
     b"get a\r\nappend nope 0 0 1\r\nz\r\nprepend nope 0 0 1\r\nz\r\n",
     True),
    ("append noreply", b"append a 0 0 1 noreply\r\n!\r\nget a\r\n", True),
    ("cas miss", b"cas nope 0 0 1 1\r\nx\r\n", True),
    ("cas bad", b"cas a 0 0 1 abc\r\nz\r\ncas a 0 0 1\r\n", True),
    ("cas wrong", b"cas a 0 0 1 999999\r\nz\r\nget a\r\n", True),
    ("delete", b"set d 0 0 1\r\nd\r\ndelete d\r\ndelete d\r\n"
     b"delete d 0\r\ndelete d 5\r\ndelete\r\n", True),
    ("delete noreply", b"set d 0 0 1\r\nd\r\ndelete d noreply\r\nget d\r\n"
     b"delete d 0 noreply\r\n", True),
    ("incr decr", b"set i 0 0 2\r\n10\r\nincr i 5\r\ndecr i 3\r\n"
     b"decr i 100\r\nincr nope 1\r\ndecr nope 1\r\nget i\r\n", True),
    ("incr wrap", b"set w 0 0 20\r\n18446744073709551615\r\nincr w 1\r\n"
     b"incr w 18446744073709551615\r\n", True),
    ("incr bad delta", b"incr i abc\r\nincr i -1\r\n"
     b"incr i 18446744073709551616\r\nincr i\r\n", True),
    ("incr non number", b"set t 0 0 3\r\nabc\r\nincr t 1\r\ndecr t 1\r\n",
     True),
    ("incr noreply", b"incr i 1 noreply\r\nget i\r\n", True),
    ("incr grows", b"set g 0 0 1\r\n9\r\nincr g 1\r\nget g\r\n", True),
    ("touch", b"touch a 100\r\ntouch nope 100\r\ntouch a x\r\n"
     b"touch a 100 noreply\r\ntouch\r\n", True),
    ("gat gats", b"set g 3 0 1\r\nz\r\ngat 100 g\r\ngats 100 g nope\r\n"
     b"gat\r\ngat 100\r\ngat x g\r\n", True),
    ("verbosity", b"verbosity 1\r\nverbosity\r\nverbosity a\r\n"
     b"verbosity 1 noreply\r\n", True),
    ("version", b"version\r\n", True),
    ("stats", b"stats\r\nstats nope\r\nstats noreply\r\nstats reset\r\n",
     True),
    ("big value", b"set big 0 0 500000\r\n" + BIG + b"\r\nget big\r\n",
     True),
    ("too large", b"set huge 0 0 2000000\r\n" + HUGE + b"\r\nget huge\r\n",
     True),
    ("ms too large", b"ms huge 2000000\r\n" + HUGE + b"\r\nmg huge v\r\n",
     True),
    ("mn", b"mn\r\nmn extra\r\n", True),
    ("base64 keys", b"set foo 0 0 1\r\nx\r\nmg Zm9v b k v c\r\nmg Zm9v b\r\n"
     b"ms YmFy 2 b k\r\nhi\r\nget bar\r\nmd YmFy b k q\r\n"
     b"mg Zm9v k b v\r\nmg Zm9 b v\r\nmg !!!! b v\r\nma Zm9v b\r\n"
     b"mg Zm9vYmFy b v k\r\nmd Zm9vYmFy b k\r\nms Zm9 2 b\r\nhi\r\n"
     b"mg " + b"QUFB" * 84 + b" b v\r\n", True),
    ("mg flags", b"set m 9 0 3\r\nabc\r\nmg m v f s k t c\r\nmg m\r\n"
     b"mg m k\r\nmg m s v\r\n", True),
    ("mg miss", b"mg nope v\r\nmg nope v q\r\nmg nope k Oop\r\n"
     b"mg nope q k\r\n", True),
    ("mg opaque", b"mg m Oabc v\r\nmg m q v Oq\r\n", True),
    ("mg no key", b"mg\r\n", True),
    ("mg bad flag", b"mg m zz\r\nmg m v !\r\n", True),
    ("mg touch", b"mg m T100 t v\r\nmg m t\r\n", True),
    ("ms", b"ms s1 2\r\nhi\r\nmg s1 v\r\nms s1 3 F7 T0\r\nbye\r\n"
     b"mg s1 v f t\r\n", True),
    ("ms bad", b"ms s1\r\nms s1 x\r\n", True),
    ("ms modes", b"ms s2 2 ME\r\nAA\r\nms s2 2 ME\r\nBB\r\nms s2 1 MA\r\nC\r\n"
     b"ms s2 1 MP\r\nD\r\nms s2 1 MR\r\nE\r\nms nope 1 MR\r\nE\r\n"
     b"ms nope 1 MA\r\nE\r\nms s2 1 MS\r\nF\r\nmg s2 v\r\n", True),
    ("ms bad mode", b"ms s2 2 MX\r\nhi\r\nms s2 2 MZ q\r\nhi\r\n", True),
    ("ms quiet", b"ms s3 2 q\r\nhi\r\nms s3 2 q ME\r\nhi\r\n", True),
    ("ms opaque key", b"ms s3 2 Oxy k\r\nhi\r\n", True),
    ("ms cas", b"ms s3 2 C1\r\nXY\r\nms nope 2 C1\r\nXY\r\n", True),
    ("ms ret cas", b"ms s4 2 c\r\nhi\r\n", True),
    ("ms neg ttl", b"ms s5 2 T-1\r\nhi\r\nmg s5 v\r\n", True),
    ("md", b"ms e1 1\r\nx\r\nmd e1\r\nmd e1\r\nmd e1 q\r\nms e1 1\r\nx\r\n"
     b"md e1 q\r\nmg e1\r\nmd e1 k Oo\r\n", True),
    ("md cas", b"ms e2 1\r\nx\r\nmd e2 C1\r\nmg e2 v\r\n", True),
    ("md no key", b"md\r\n", True),
    ("ma", b"ms c1 1\r\n5\r\nma c1\r\nma c1 v\r\nma c1 MD D10 v\r\n"
     b"ma c1 D7 v\r\nma c1 MI D1 v\r\nma c1 q\r\nmg c1 v\r\n", True),
    ("ma miss", b"ma nope\r\nma nope q\r\nma nope v\r\n", True),
    ("ma vivify", b"ma v1 N0 J5 v\r\nma v1 N0 J5 v\r\nma v1\r\nmg v1 v\r\n",
     True),
    ("ma non number", b"ms c2 1\r\nx\r\nma c2\r\n", True),
    ("ma bad mode", b"ma c1 MX\r\n", True),
    ("ma opaque", b"ma c1 Oab k v\r\n", True),
    ("flush_all", b"flush_all\r\nget a b\r\nflush_all noreply\r\n"
     b"flush_all 0\r\nflush_all abc\r\n", True),
    ("after flush", b"set a 0 0 1\r\n1\r\nget a\r\n", True),
    ("noreply errors", b"incr k abc noreply\r\nset k 0 0 -1 noreply\r\n"
     b"touch k x noreply\r\ndelete k 5 noreply\r\n"
     b"flush_all abc noreply\r\nverbosity noreply\r\n"
     b"verbosity a noreply\r\nincr " + K251 + b" 1 noreply\r\n", True),
    ("noreply bad chunk", b"set k 0 0 1 noreply\r\nab\r\n"
     b"set k abc 0 1 noreply\r\nz\r\n", True),
    ("noreply too large", b"set huge 0 0 2000000 noreply\r\n" + HUGE +
     b"\r\nget huge\r\n", True),
    ("verbosity odd", b"verbosity foo bar my\r\nverbosity 1 2\r\n", True),
    ("quit", b"set q 0 0 1\r\nq\r\nquit\r\nget q\r\n", False),
    ("garbage line", b"x" * 3000, False),
    ("long get", b"get " + b" ".join(b"k%d" % i for i in range(800)) +
     b"\r\n", True),
]


class TestMemcacheDiff(FerryTestCase):
    TIME_LIMIT = 120

    def setUp(self):
        super().setUp()
        self.mc = Memcached(mem_mb=64)
        self._procs.append(self.mc)
        self.mc.start()
        self.mport = free_port()
        self.d = self.daemon("--memcache-listen", f"127.0.0.1:{self.mport}")

    def both(self, data, fence=True):
        a = exchange(self.mc.port, data, fence)
        b = exchange(self.mport, data, fence)
        return a, b

    def test_scripts(self):
        bad = []
        for name, data, fence in SCRIPTS:
            a, b = self.both(data, fence)
            if normalise(a) != normalise(b):
                bad.append(f"{name}:\n  memcached: {a[:300]!r}\n"
                           f"  ferry:     {b[:300]!r}")
        self.assertEqual(bad, [], "\n".join(bad))
        self.assertGreater(len(SCRIPTS), 60)

    def test_pipelined_in_pieces(self):
        """The same script cut at every few bytes: the parser resumes."""
        data = b"".join(s for _, s, f in SCRIPTS if f and len(s) < 5000)
        for port in (self.mc.port, self.mport):
            exchange(port, b"flush_all\r\n")
        outs = []
        for port in (self.mc.port, self.mport):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            for i in range(0, len(data), 7):
                s.sendall(data[i:i + 7])
            s.sendall(FENCE)
            out = b""
            deadline = time.monotonic() + 10
            while (not out.endswith(FENCE_ANSWER) and
                   time.monotonic() < deadline):
                out += s.recv(1 << 20)
            s.close()
            outs.append(normalise(out))
        self.assertEqual(outs[0], outs[1])

    def test_expiry(self):
        """Relative TTLs, a negative one, an absolute one in the past."""
        past = int(time.time()) - 100
        future = int(time.time()) + 100
        setup = (b"set x1 0 1 1\r\na\r\nset x2 0 100 1\r\nb\r\n"
                 b"set x3 0 %d 1\r\nc\r\nset x4 0 %d 1\r\nd\r\n"
                 b"ms x5 1 T1\r\ne\r\nmg x5 t v\r\ntouch x2 1\r\n"
                 b"get x1 x2 x3 x4\r\n" % (past, future))
        a, b = self.both(setup)
        self.assertEqual(normalise(a), normalise(b))
        time.sleep(2.2)
        a, b = self.both(b"get x1 x2 x3 x4 x5\r\nmg x5 v\r\n")
        self.assertEqual(normalise(a), normalise(b))
        self.assertIn(b"VALUE x4", b)

    def test_cas_race(self):
        """Two clients read the same cas; the first cas wins, the second
        gets EXISTS; on both servers."""
        for port in (self.mc.port, self.mport):
            exchange(port, b"set r 0 0 1\r\n0\r\n")
            out = exchange(port, b"gets r\r\n")
            cas = out.split(b"\r\n")[0].split()[-1]
            one = exchange(port, b"cas r 0 0 1 " + cas + b"\r\n1\r\n")
            two = exchange(port, b"cas r 0 0 1 " + cas + b"\r\n2\r\n")
            got = exchange(port, b"get r\r\n")
            self.assertEqual((one, two, got),
                             (b"STORED\r\n" + FENCE_ANSWER,
                              b"EXISTS\r\n" + FENCE_ANSWER,
                              b"VALUE r 0 1\r\n1\r\nEND\r\n" +
                              FENCE_ANSWER),
                             f"port {port}")
        # meta cas: C with the cas mg returned
        for port in (self.mc.port, self.mport):
            out = exchange(port, b"mg r c\r\n")
            cas = out.split()[1][1:]
            one = exchange(port, b"ms r 1 C" + cas + b"\r\n3\r\n")
            two = exchange(port, b"ms r 1 C" + cas + b"\r\n4\r\n")
            self.assertEqual((one, two), (b"HD\r\n" + FENCE_ANSWER,
                                          b"EX\r\n" + FENCE_ANSWER))


if __name__ == "__main__":
    import unittest
    unittest.main()
