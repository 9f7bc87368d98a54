# SPDX-License-Identifier: MIT
"""The codec (ferry._proto) against tests/vectors/frames.json, byte for
byte, and the errors' classes and names against include/ferry.h."""
import json
import os
import re
import unittest

import fhelp
import ferry
from ferry import _proto as P

def vectors():
    with open(os.path.join(fhelp.ROOT, "tests", "vectors", "frames.json"),
              encoding="utf-8") as f:
        return json.load(f)["frames"]


def fields_of(f):
    d = P.parse_body(f)
    t = f.type
    if t == P.REQUEST:
        return {"deadline_ms": d["deadline_ms"],
                "service": d["service"].decode(),
                "key_hex": d["key"].hex(), "payload_hex": d["payload"].hex()}
    if t == P.REPLY:
        return {"payload_hex": d["payload"].hex()}
    if t == P.ERROR:
        return {"code": d["code"], "code_name": ferry.errname(d["code"]),
                "message": d["message"].decode()}
    return {k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in d.items()}


def encode(v):
    fl, fid, t = v["fields"], int(v["id"]), P.TYPES[v["type"]]
    if t == P.HELLO:
        return P.encode_hello(fl["role"], fl["heartbeat_ms"], fl["name"],
                              fl["token"], fl["version"],
                              fl.get("max_frame", 0))
    if t == P.HELLO_OK:
        return P.encode_hello_ok(fl["version"], fl["heartbeat_ms"],
                                 fl["max_frame"], fl["name"],
                                 fl.get("max_deadline_ms", 0),
                                 fl.get("default_deadline_ms", 0))
    if t == P.REQUEST:
        return P.encode_request(fid, fl["service"],
                                bytes.fromhex(fl["payload_hex"]),
                                fl["deadline_ms"],
                                bytes.fromhex(fl["key_hex"]), v["flags"])
    if t == P.REPLY:
        return P.encode_reply(fid, bytes.fromhex(fl["payload_hex"]))
    if t == P.ERROR:
        return P.encode_error(fid, fl["code"], fl["message"])
    if t == P.REGISTER:
        return P.encode_register(fid, fl["service"], fl["credit"])
    return P.encode_empty(t, fid)


class TestVectors(unittest.TestCase):
    def test_encode_decode_valid(self):
        n = 0
        for v in vectors():
            if "type" not in v:
                continue
            with self.subTest(v["name"]):
                wire = bytes.fromhex(v["hex"])
                want = dict(v["fields"])
                # A later version's extra bytes are decoded past (ignored)
                # and never encoded.
                if want.pop("trailing_hex", None) is None:
                    self.assertEqual(encode(v).hex(), v["hex"])
                f, used = P.decode_frame(wire)
                self.assertEqual(used, len(wire))
                self.assertEqual(P.TYPE_NAMES[f.type], v["type"])
                self.assertEqual(f.flags, v["flags"])
                self.assertEqual(str(f.id), v["id"])
                self.assertEqual(fields_of(f), want)
                for k in (0, 15, len(wire) - 1):
                    if k < len(wire):
                        self.assertEqual(P.decode_frame(wire[:k]),
                                         (None, 0))
                n += 1
        self.assertGreaterEqual(n, 20)

    def test_invalid_refused_with_their_code(self):
        n = 0
        for v in vectors():
            if "type" in v:
                continue
            with self.subTest(v["name"]):
                wire = bytes.fromhex(v["hex"])
                mb = v.get("max_body", P.DEFAULT_MAX_BODY)
                if v.get("incomplete"):
                    self.assertEqual(P.decode_frame(wire, mb), (None, 0))
                    continue
                with self.assertRaises(P.WireError) as cm:
                    f, _ = P.decode_frame(wire, mb)
                    self.assertIsNotNone(f)
                    P.parse_body(f)
                self.assertEqual(cm.exception.name, v["error"])
                self.assertEqual(cm.exception.code,
                                 ferry.FerryError.of(1).code
                                 if v["error"] == "PROTO" else
                                 {"TOO_BIG": 2, "UNKNOWN_TYPE": 4}[v["error"]])
                n += 1
        self.assertGreaterEqual(n, 25)

    def test_register_values_parse(self):
        """REGISTER with credit 0, 65536 or an empty name is well formed:
        the codec parses it (ferryd refuses it with INVALID_ARGUMENT)."""
        self.assertEqual(P.parse_register(
            P.encode_register(1, "x", 0)[16:]), (0, b"x"))
        self.assertEqual(P.parse_register(
            P.encode_register(1, "x", 65536)[16:]), (65536, b"x"))
        self.assertEqual(P.parse_register(
            P.encode_register(1, "", 5)[16:]), (5, b""))

    def test_hello_versions(self):
        v1 = P.encode_hello(1, 0, "a", "", version=1)
        self.assertEqual(P.parse_hello(v1[16:])["version"], 1)
        v2 = P.encode_hello(1, 0, "a", "", version=2, max_frame=4096)
        d = P.parse_hello(v2[16:])
        self.assertEqual((d["version"], d["max_frame"]), (2, 4096))
        with self.assertRaises(P.WireError):
            P.parse_hello(v1[16:] + b"\0\0\0\0")  # v1: no trailing bytes
        with self.assertRaises(P.WireError):
            P.parse_hello(v2[16:] + b"\0")        # v2: exactly
        v3 = P.encode_hello(1, 0, "a", "", version=3, max_frame=9) + b"more"
        self.assertEqual(P.parse_hello(v3[16:])["max_frame"], 9)
        ok2 = P.encode_hello_ok(2, 100, 1024, "f", 60000, 5000)
        d = P.parse_hello_ok(ok2[16:])
        self.assertEqual((d["max_deadline_ms"], d["default_deadline_ms"]),
                         (60000, 5000))

    def test_doc_example(self):
        self.assertEqual(P.encode_request(7, "echo", b"hi", 1000).hex(),
                         "0000000e030000000000000000000007000003e8000400006563"
                         "686f6869")


class TestErrors(unittest.TestCase):
    def test_codes_match_header(self):
        with open(os.path.join(fhelp.ROOT, "include", "ferry.h")) as f:
            rows = re.findall(r"X\((\w+), (\d+), \"", f.read())
        header = {int(c): n for n, c in rows}
        mine = {c: n for c, n, _ in ferry.CODES}
        for c, n in header.items():
            self.assertEqual(mine.get(c), n, f"code {c}")
        self.assertEqual(mine[22], "TIMED_OUT")
        self.assertEqual(mine[23], "NO_SPACE")

    def test_one_class_per_code(self):
        names = set()
        for code, name, _ in ferry.CODES:
            e = ferry.FerryError.of(code, "m")
            self.assertIsInstance(e, ferry.FerryError)
            self.assertEqual((e.code, e.name, e.message), (code, name, "m"))
            cls = type(e)
            self.assertIsNot(cls, ferry.FerryError)
            self.assertTrue(cls.__name__.endswith("Error"))
            self.assertIs(getattr(ferry, cls.__name__), cls)
            names.add(cls.__name__)
        self.assertEqual(len(names), len(ferry.CODES))
        self.assertIs(type(ferry.FerryError.of(7)), ferry.DeadlineError)
        self.assertEqual(ferry.DeadlineError().message, "deadline exceeded")
        self.assertEqual(ferry.TimedOutError().code, 22)
        self.assertEqual(ferry.NoSpaceError().code, 23)
        self.assertEqual(ferry.WorkerError(message="x").name, "WORKER_ERROR")
        unknown = ferry.FerryError.of(999, "later")
        self.assertEqual((type(unknown), unknown.name),
                         (ferry.FerryError, "UNKNOWN_ERROR"))
        self.assertIsInstance(ferry.ConnectionError(), ConnectionError)


if __name__ == "__main__":
    unittest.main()
