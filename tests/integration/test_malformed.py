# SPDX-License-Identifier: MIT
"""Malformed input: each kind gets an ERROR frame with the right code and
id 0, then the connection is closed, while another client connected all
along keeps being served."""
import random
import struct
import time

from ferrytest import (ERROR, FerryTestCase, REQUEST, HELLO_OK, ROLE_WORKER,
                       WireError, decode_frame, describe, encode_frame,
                       encode_header, encode_hello, encode_request,
                       errname, parse_body, parse_error)


class TestMalformed(FerryTestCase):
    TIME_LIMIT = 60

    def setUp(self):
        super().setUp()
        self.d = self.daemon()
        self.good = self.conn(self.d)
        self.next_id = 1

    def check_good_client(self):
        self.next_id += 1
        p = b"still served %d" % self.next_id
        self.assertReply(self.good.call(self.next_id, "echo", p, timeout=5),
                         p)

    def expect_error_and_close(self, c, name):
        frames = c.expect_closed(timeout=5)
        errs = [f for f in frames if f.type == ERROR]
        self.assertTrue(errs, f"no ERROR before close, got "
                        f"{[describe(f) for f in frames]}")
        f = errs[-1]
        self.assertEqual(f.id, 0, describe(f))
        self.assertEqual(errname(parse_error(f.body)[0]), name, describe(f))
        self.check_good_client()

    def fresh(self, hello=True):
        c = self.raw(self.d.addr)
        if hello:
            c.hello()
        return c

    def test_request_before_hello(self):
        c = self.fresh(hello=False)
        c.send(encode_request(1, "echo", b"x"))
        self.expect_error_and_close(c, "PROTO")

    def test_bad_length_in_body(self):
        c = self.fresh()
        body = struct.pack(">IHH", 1000, 50, 0) + b"echo" + b"hi"
        c.send(encode_frame(REQUEST, body, 3))
        self.expect_error_and_close(c, "PROTO")

    def test_control_bytes_in_service_names(self):
        """Well-formed frames naming a service with a control byte: that
        request or REGISTER is refused (INVALID_ARGUMENT, same id), the
        connection stays, nothing is created and nothing reaches the
        log with a line break."""
        c = self.fresh()
        for i, name in enumerate([b"a\nfake log line", b"x\x00y", b"t\tab",
                                  b"del\x7f"], start=1):
            msg = self.assertError(c.call(i, name, b"x"), "INVALID_ARGUMENT")
            self.assertEqual(msg, b"a service name must not hold control "
                                  b"bytes")
        self.assertReply(c.call(9, "echo", b"same conn"), b"same conn")
        w = self.raw(self.d.addr)
        w.hello(role=ROLE_WORKER)
        with self.assertRaises(Exception) as ctx:
            w.register(b"evil\nname", credit=1)
        self.assertIn("INVALID_ARGUMENT", str(ctx.exception))
        w.register("good", credit=1)
        self.assertNotIn("fake log line", self.d.log)
        self.assertNotIn("evil", self.d.log)
        # UTF-8 and spaces are fine.
        self.assertError(c.call(10, "caf\u00e9 au lait", b"x",
                                deadline_ms=100), "UNKNOWN_SERVICE")
        if self.d.http_addr:
            r = self.d.http("POST", "/v1/call/a%0Ab", body=b"x")
            self.assertHttpError(r, 400, "INVALID_ARGUMENT")

    def test_service_len_zero(self):
        c = self.fresh()
        c.send(encode_frame(REQUEST, struct.pack(">IHH", 0, 0, 0) + b"x", 3))
        self.expect_error_and_close(c, "PROTO")

    def test_bad_hello_body(self):
        c = self.fresh(hello=False)
        hello = bytearray(encode_hello(name="abc"))
        hello[16 + 8:16 + 10] = struct.pack(">H", 200)
        c.send(bytes(hello))
        self.expect_error_and_close(c, "PROTO")

    def test_oversize_body_len_before_body(self):
        c = self.fresh()
        # Only the header: ferryd must not wait for 16 MiB + 1 of body.
        c.send(encode_header(REQUEST, 0, 1, 16 * 1024 * 1024 + 1))
        self.expect_error_and_close(c, "TOO_BIG")

    def test_oversize_max_u32(self):
        c = self.fresh(hello=False)
        c.send(encode_header(REQUEST, 0, 1, 0xffffffff))
        self.expect_error_and_close(c, "TOO_BIG")

    def test_unknown_type(self):
        for t in (0, 11, 200, 255):
            with self.subTest(type=t):
                c = self.fresh()
                c.send(encode_header(t, 0, 0, 0))
                self.expect_error_and_close(c, "UNKNOWN_TYPE")

    def test_unsupported_version(self):
        c = self.fresh(hello=False)
        c.send(encode_hello(version=0))
        self.expect_error_and_close(c, "VERSION")

    def test_newer_version_gets_version_2(self):
        """A HELLO of version 9 (version-2 fields, then its own) is
        answered in version 2; test_protocol.py has the whole
        negotiation."""
        c = self.fresh(hello=False)
        ok = c.hello(version=9, trailing=b"\x01\x02")
        self.assertEqual(ok["version"], 2)
        self.assertReply(c.call(1, "echo", b"v"), b"v")

    def test_second_hello(self):
        c = self.fresh()
        c.send(encode_hello())
        self.expect_error_and_close(c, "PROTO")

    @staticmethod
    def random_cases(seed0, after_hello, count=6):
        """Seeded random inputs with the error the independent Python codec
        expects for each: raw noise (mostly TOO_BIG), noise with a small
        body_len (mostly UNKNOWN_TYPE) and noise with a known type and a
        small body_len (PROTO). Inputs a receiver would accept are
        skipped."""
        rng = random.Random(seed0)
        out = []
        while len(out) < count:
            mode = len(out) % 3
            data = bytearray(rng.getrandbits(8) for _ in range(4096))
            if mode >= 1:
                data[0:4] = struct.pack(">I", rng.randrange(1, 4000))
            if mode == 2:
                data[4] = rng.choice([1, 2, 3, 5, 6, 7, 8, 9, 10] if
                                     after_hello else [2, 3, 5, 7, 9])
            data = bytes(data)
            try:
                f, _ = decode_frame(data)
                if f is None:
                    continue
                if not after_hello and f.type != 1:
                    want = "PROTO"      # anything before HELLO
                else:
                    parse_body(f)
                    continue
            except WireError as e:
                want = e.name
            out.append((data, want))
        return out

    def run_random(self, after_hello, seed0):
        cases = self.random_cases(seed0, after_hello)
        self.assertEqual({w for _, w in cases},
                         {"TOO_BIG", "UNKNOWN_TYPE", "PROTO"})
        for k, (data, want) in enumerate(cases):
            with self.subTest(case=k, want=want):
                c = self.fresh(hello=after_hello)
                try:
                    c.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.expect_error_and_close(c, want)

    def test_random_bytes(self):
        self.run_random(False, 20240601)

    def test_random_bytes_after_hello(self):
        self.run_random(True, 7)

    def test_frame_split_byte_by_byte_is_fine(self):
        """Not malformed: a frame arriving one byte at a time works."""
        c = self.fresh(hello=False)
        for b in encode_hello():
            c.send(bytes([b]))
            time.sleep(0.001)
        f = c.recv_frame(timeout=5)
        self.assertEqual(f.type, HELLO_OK, describe(f))
        for b in encode_request(9, "echo", b"slow"):
            c.send(bytes([b]))
        self.assertReply(c.recv_frame(timeout=5), b"slow")

    def test_silent_connection_without_hello_closed(self):
        """ferryd closes a connection that sends no HELLO within 5 s."""
        c = self.fresh(hello=False)
        t0 = time.monotonic()
        c.expect_closed(timeout=9)
        el = time.monotonic() - t0
        self.assertGreaterEqual(el, 4.9)
        self.check_good_client()
