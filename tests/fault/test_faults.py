# SPDX-License-Identifier: MIT
"""Faults that are not a single bad frame: floods of connections, a worker
that stops reading its socket, callers that vanish with requests in
flight. Every case is bounded in time and ends with ferryd still serving.
(The SIGKILLed worker under load lives in tests/integration/test_load.py.)
"""
import os
import socket
import time

from ferrytest import (ERROR, Conn, FerryTestCase, ROLE_WORKER, describe,
                       encode_request, errname, parse_error)


class TestFaults(FerryTestCase):
    TIME_LIMIT = 90

    def test_connection_flood(self):
        d = self.daemon()
        conns = []
        try:
            # Half of them never say HELLO, half do and then sit idle.
            for i in range(400):
                c = Conn(d.addr, timeout=10)
                conns.append(c)
                if i % 2:
                    c.hello(name=f"flood-{i}")
            probe = self.conn(d)
            self.assertReply(probe.call(1, "echo", b"through the flood",
                                        timeout=10), b"through the flood")
            # Every HELLO'd connection can still make a call.
            for i, c in enumerate(conns):
                if i % 2:
                    c.send_request(1, "echo", b"%d" % i)
            for i, c in enumerate(conns):
                if i % 2:
                    self.assertReply(c.recv_frame(timeout=10), b"%d" % i)
        finally:
            for c in conns:
                c.close()
        self.assertReply(self.conn(d).call(2, "echo", b"after"), b"after")

    def test_half_open_and_reset_connections(self):
        d = self.daemon()
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            if i % 3 == 0:
                s.sendall(b"\x00\x00")          # half a header
            elif i % 3 == 1:
                s.shutdown(socket.SHUT_WR)      # EOF at once
            # RST instead of FIN.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        self.assertReply(self.conn(d).call(1, "echo", b"ok"), b"ok")

    def test_worker_that_stops_reading(self):
        """A worker that never reads its socket: its requests end with
        DEADLINE, ferryd's memory stays bounded, other services work."""
        env = {"ASAN_OPTIONS": "detect_leaks=0:quarantine_size_mb=4"}
        d = self.daemon("--high-water", "1048576", "--low-water", "262144",
                        env=env)
        w = self.conn(d, role=ROLE_WORKER)
        w.register("stalled", credit=1000)
        # From here on the worker reads nothing.
        c = self.conn(d)
        base = d.rss()
        payload = os.urandom(256 << 10)
        n = 400                                  # 100 MiB of requests
        t0 = time.monotonic()
        sender = Conn(d.addr)
        self._conns.append(sender)
        sender.hello()
        sent = 0
        for i in range(1, n + 1):
            try:
                sender.send(encode_request(i, "stalled", payload, 3000),
                            timeout=5)
            except TimeoutError:
                break
            sent = i
        self.assertGreater(sent, 0)
        grown = d.rss() - base
        self.assertReply(c.call(1, "echo", b"others fine", timeout=10),
                         b"others fine")
        got = sender.collect(range(1, sent + 1), timeout=20)
        codes = {}
        for i, (f, t) in got.items():
            name = describe(f) if f.type != ERROR else \
                errname(parse_error(f.body)[0])
            codes[name] = codes.get(name, 0) + 1
        self.assertEqual(set(codes) - {"DEADLINE", "OVERLOADED"}, set(),
                         codes)
        self.assertLess(time.monotonic() - t0, 3 + 10)
        self.assertLess(grown, 48 << 20,
                        f"RSS grew {grown >> 20} MiB while {sent} requests "
                        f"of {len(payload) >> 10} KiB went to a worker that "
                        f"does not read (outcomes {codes})")

    def test_callers_vanish_with_requests_in_flight(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--credit", "50", "--mode", "sleep:300")
        for k in range(20):
            c = Conn(d.addr)
            c.hello()
            for i in range(1, 11):
                c.send_request(i, "slow", b"x" * 1000, 5000)
            c.close()
        time.sleep(0.6)   # the worker answers for callers that are gone
        c = self.conn(d)
        for i in range(1, 21):
            c.send_request(i, "slow", b"%d" % i, 5000)
        got = c.collect(range(1, 21), timeout=10)
        for i, (f, _) in got.items():
            self.assertReply(f, b"%d" % i)

    def test_worker_reconnects_after_daemon_restart(self):
        """libferry workers come back by themselves when ferryd returns
        on the same address."""
        d = self.daemon()
        self.worker("echo_worker", "--addr", d.addr, "--service", "again")
        self.assertReply(self.conn(d).call(1, "again", b"1"), b"1")
        d.stop()
        time.sleep(0.3)
        d2 = self.daemon_on(d)
        c = self.conn(d2)
        f = c.call(2, "again", b"2", deadline_ms=8000, timeout=12)
        self.assertReply(f, b"2")

    def daemon_on(self, old):
        """A new ferryd on the same TCP address as a stopped one."""
        from ferrytest import Daemon
        d = Daemon(unix=False)
        d.port, d.addr = old.port, old.addr
        self._procs.append(d)
        return d.start()
