# SPDX-License-Identifier: MIT
"""The memcached face with real memcached clients from Debian:
python3-pymemcache (run by Debian's /usr/bin/python3, which has it),
php-memcached (libmemcached, text protocol) from a php -r script, and
libmemcached-tools (memccp, memccat, memcstat, memcexist, memcrm,
memctouch, memcflush, and memccapable's ASCII suite)."""
import os
import shutil
import subprocess
import unittest

from ferrytest import FerryTestCase, free_port, run_ferry

SYS_PY = "/usr/bin/python3"

PYMEMCACHE = r'''
import sys
from pymemcache.client.base import Client
server = sys.argv[1]
c = Client(server if server.startswith("/") else
           (server.split(":")[0], int(server.split(":")[1])),
           default_noreply=False)
assert c.version()
assert c.set("a", b"1", expire=100) is True
assert c.get("a") == b"1"
assert c.add("a", b"2") is False
assert c.add("b", b"2") is True
assert c.replace("nope", b"x") is False
assert c.replace("b", b"3") is True
assert c.append("b", b"4") is True
assert c.prepend("b", b"5") is True
assert c.get("b") == b"534"
assert c.get_many(["a", "b", "nope"]) == {"a": b"1", "b": b"534"}
v, cas = c.gets("a")
assert v == b"1" and cas
assert c.cas("a", b"10", cas) is True
assert c.cas("a", b"11", cas) is False
assert c.incr("a", 5) == 15
assert c.decr("a", 20) == 0
assert c.incr("nope", 1) is None
assert c.touch("a", 100) is True
assert c.touch("nope", 100) is False
assert c.delete("a") is True
assert c.delete("a") is False
big = b"x" * 400000
assert c.set("big", big) is True
assert c.get("big") == big
c.set("nr", b"v", noreply=True)
assert c.get("nr") == b"v"
st = c.stats()
assert b"curr_connections" in st or "curr_connections" in st, st
assert c.flush_all() is True
assert c.get("b") is None
print("pymemcache ok")
'''

PHP = r'''
$m = new Memcached();
$m->addServer("127.0.0.1", (int)$argv[1]);
$m->setOption(Memcached::OPT_COMPRESSION, false); // append needs it off
function check($ok, $what) { if (!$ok) { fwrite(STDERR, "FAIL $what\n"); exit(1); } }
check($m->set("a", "1", 100), "set");
check($m->get("a") === "1", "get");
check($m->add("a", "2") === false, "add exists");
check($m->add("b", "x"), "add");
check($m->replace("b", "y"), "replace");
check($m->getMulti(["a", "b", "nope"]) == ["a" => "1", "b" => "y"], "getMulti");
check($m->increment("a", 4) === 5, "increment");
check($m->decrement("a", 10) === 0, "decrement");
$r = $m->get("b", null, Memcached::GET_EXTENDED);
check($r["value"] === "y" && $r["cas"] > 0, "get extended");
check($m->cas($r["cas"], "b", "z"), "cas");
check($m->cas($r["cas"], "b", "w") === false, "cas again");
check($m->getResultCode() === Memcached::RES_DATA_EXISTS, "cas code");
check($m->set("arr", ["x" => 1]), "set array");
check($m->get("arr") === ["x" => 1], "get array (flags kept)");
check($m->append("b", "!") && $m->get("b") === "z!", "append");
check($m->delete("b"), "delete");
check($m->get("b") === false && $m->getResultCode() === Memcached::RES_NOTFOUND, "miss");
check($m->flush(), "flush");
echo "php-memcached ok\n";
'''


def have(cmd):
    return shutil.which(cmd) is not None


class TestMemcacheClients(FerryTestCase):
    TIME_LIMIT = 120

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.d = self.daemon("--memcache-listen", f"127.0.0.1:{self.port}")
        self.server = f"127.0.0.1:{self.port}"

    def run_ok(self, args, **kw):
        p = subprocess.run(args, capture_output=True, timeout=60, **kw)
        self.assertEqual(p.returncode, 0,
                         f"{args[0]}: {p.stdout!r} {p.stderr!r}\n"
                         f"{self.d.log_tail()}")
        return p.stdout

    @unittest.skipUnless(os.path.exists(SYS_PY), "no /usr/bin/python3")
    def test_pymemcache(self):
        out = self.run_ok([SYS_PY, "-c", PYMEMCACHE, self.server])
        self.assertIn(b"pymemcache ok", out)

    def test_one_cache_behind_both_faces(self):
        """An item stored through the memcached face is a hit for
        ferry.cache, and the other way round: one cache, two faces."""
        from mctest import FENCE_ANSWER, exchange
        out = exchange(self.port, b"set shared 7 0 5\r\nhello\r\n")
        self.assertEqual(out, b"STORED\r\n" + FENCE_ANSWER)
        r = run_ferry(["cache", "get", "shared", "--json"], self.d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'"flags": 7', r.stdout.replace(b'"flags":7', b'"flags": 7'))
        r = run_ferry(["cache", "set", "back", "world"], self.d.addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = exchange(self.port, b"get back\r\n")
        self.assertEqual(out, b"VALUE back 0 5\r\nworld\r\nEND\r\n" + FENCE_ANSWER)

    def test_php_memcached(self):
        out = self.run_ok(["php", "-r", PHP, "--", str(self.port)])
        self.assertIn(b"php-memcached ok", out)

    def test_libmemcached_tools(self):
        srv = "--servers=" + self.server
        path = os.path.join(self.d.tmp, "file.txt")
        with open(path, "wb") as f:
            f.write(b"contents of a file\n" * 100)
        self.run_ok(["memccp", srv, path])
        # memccat ends what it prints with a newline of its own
        self.assertEqual(self.run_ok(["memccat", srv, "file.txt"]),
                         b"contents of a file\n" * 100 + b"\n")
        self.run_ok(["memcexist", srv, "file.txt"])
        self.run_ok(["memctouch", srv, "--expire=100", "file.txt"])
        stat = self.run_ok(["memcstat", srv])
        self.assertIn(b"curr_connections", stat.replace(b" ", b"_")
                      + stat)
        self.run_ok(["memcrm", srv, "file.txt"])
        p = subprocess.run(["memccat", srv, "file.txt"], capture_output=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.run_ok(["memcflush", srv])

    def test_memccapable_ascii(self):
        out = self.run_ok(["memccapable", "-a", "-h", "127.0.0.1", "-p",
                           str(self.port)])
        self.assertNotIn(b"FAIL", out)
        self.assertIn(b"ascii cas", out)


class TestMemcacheUnix(FerryTestCase):
    TIME_LIMIT = 60

    @unittest.skipUnless(os.path.exists(SYS_PY), "no /usr/bin/python3")
    def test_unix_socket(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="mc-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "mc.sock")
        d = self.daemon("--memcache-listen", "unix:" + path)
        p = subprocess.run([SYS_PY, "-c", PYMEMCACHE, path],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, f"{p.stderr!r}\n{d.log_tail()}")


if __name__ == "__main__":
    unittest.main()


class TestMemcacheBackPressure(FerryTestCase):
    TIME_LIMIT = 60

    def test_slow_reader_is_paused_not_buffered(self):
        """A client that pipelines 200 gets of a 500 kB value and reads
        nothing: the face stops reading it near high_water (the conn's
        pending output stays bounded, ferryd's RSS does not take the 100 MB
        of answers), then, once it reads, every answer arrives whole."""
        import socket
        import time
        port = free_port()
        d = self.daemon("--memcache-listen", f"127.0.0.1:{port}",
                        "--high-water", "1048576")
        big = b"b" * 500000
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"set big 0 0 %d\r\n%s\r\n" % (len(big), big))
        self.assertEqual(s.recv(100), b"STORED\r\n")
        s.sendall(b"get big\r\n" * 200)
        time.sleep(1.0)
        with open(f"/proc/{d.pid}/status") as f:
            rss_kb = int([ln for ln in f if ln.startswith("VmRSS")][0].split()[1])
        self.assertLess(rss_kb, 90 * 1024, "answers were buffered")
        want = (b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (len(big), big)) * 200
        got = bytearray()
        deadline = time.monotonic() + 30
        while len(got) < len(want) and time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        s.close()
        self.assertEqual(len(got), len(want))
        self.assertTrue(bytes(got) == want)


class TestMemcacheStats(FerryTestCase):
    TIME_LIMIT = 60

    def test_stats_and_metrics(self):
        import json
        import urllib.request
        from mctest import FENCE_ANSWER, exchange
        port = free_port()
        d = self.daemon("--memcache-listen", f"127.0.0.1:{port}")
        if d.http_url is None:
            self.skipTest("no HTTP in this ferryd")
        exchange(port, b"set a 0 0 1\r\n1\r\nget a\r\nget b\r\nbogus\r\n")
        with urllib.request.urlopen(d.http_url + "/v1/stats") as r:
            st = json.load(r)["servants"]["memcache"]
        self.assertEqual(st["commands"]["set"], 1)
        self.assertEqual(st["commands"]["get"], 2)
        self.assertEqual(st["commands"]["mg"], 1)  # the fence
        self.assertEqual(st["errors"], 1)
        self.assertEqual(st["connections_total"], 1)
        with urllib.request.urlopen(d.http_url + "/metrics") as r:
            text = r.read().decode()
        self.assertIn('ferry_memcache_commands_total{command="get"} 2', text)
        self.assertIn("ferry_memcache_connections_total 1", text)
        self.assertIn("ferry_memcache_errors_total 1", text)


class TestMemcacheBudget(FerryTestCase):
    TIME_LIMIT = 60

    def test_sets_refused_past_the_memory_budget(self):
        """The cache (64 MiB cap) is filled through the face of a ferryd
        with max_memory 48 MiB: the budget stops it, by refusing sets
        (SERVER_ERROR out of memory storing object) or by closing the
        connection holding the most (its 500 kB input buffer: the budget's
        shedding, core/mem.h); ferryd keeps serving reads."""
        import socket
        port = free_port()
        self.daemon("--memcache-listen", f"127.0.0.1:{port}",
                    "--max-memory", str(48 << 20))
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        val = b"m" * 500000
        refused = None
        for i in range(120):
            try:
                s.sendall(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(val), val))
                line = f.readline()
            except (ConnectionResetError, BrokenPipeError):
                # Shed with our input unread: the kernel answers RST.
                line = b""
            if line != b"STORED\r\n":
                refused = (i, line)
                break
        self.assertIsNotNone(refused, "never refused")
        self.assertIn(refused[1],
                      (b"SERVER_ERROR out of memory storing object\r\n", b""))
        self.assertGreater(refused[0], 10)
        s.close()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        s.sendall(b"get k0\r\n")
        self.assertEqual(f.readline(), b"VALUE k0 0 %d\r\n" % len(val))
        s.close()
