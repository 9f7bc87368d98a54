# SPDX-License-Identifier: MIT
"""Replays tests/vectors/frames.json through the Python codec in
tests/lib/ferrytest.py, which is written from docs/protocol.md alone.

The C codec is checked against the same file by tests/unit/test_frame.c
(test_vectors); this side proves that a second, independent implementation
produces and accepts exactly the same bytes, and that the example in
docs/protocol.md is the recorded one.
"""
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ferrytest as ft  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    with open(os.path.join(HERE, "frames.json"), encoding="utf-8") as f:
        return json.load(f)


def encode_from_fields(v):
    """Builds a frame from a vector's fields with the Python encoder."""
    t = ft.TYPES[v["type"]]
    fid = int(v["id"])
    fl = v["fields"]
    trailing = bytes.fromhex(fl.get("trailing_hex", ""))
    if t == ft.HELLO:
        return ft.encode_hello(fl["role"], fl["heartbeat_ms"], fl["name"],
                               fl["token"], fl["version"],
                               fl.get("max_frame", 0), trailing)
    if t == ft.HELLO_OK:
        return ft.encode_hello_ok(fl["version"], fl["heartbeat_ms"],
                                  fl["max_frame"], fl["name"],
                                  fl.get("max_deadline_ms", 0),
                                  fl.get("default_deadline_ms", 0), trailing)
    if t == ft.REQUEST:
        return ft.encode_request(fid, fl["service"],
                                 bytes.fromhex(fl["payload_hex"]),
                                 fl["deadline_ms"],
                                 bytes.fromhex(fl["key_hex"]), v["flags"])
    if t == ft.REPLY:
        return ft.encode_reply(fid, bytes.fromhex(fl["payload_hex"]))
    if t == ft.ERROR:
        return ft.encode_error(fid, fl["code"], fl["message"])
    if t == ft.REGISTER:
        return ft.encode_register(fid, fl["service"], fl["credit"])
    return ft.encode_empty(t, fid)


def expected_fields(v):
    """The vector's fields as the Python parser returns them."""
    fl = v["fields"]
    t = ft.TYPES[v["type"]]
    if t == ft.HELLO:
        d = {"version": fl["version"], "role": fl["role"],
             "heartbeat_ms": fl["heartbeat_ms"],
             "name": fl["name"].encode(), "token": fl["token"].encode()}
        if fl["version"] >= 2:
            d["max_frame"] = fl["max_frame"]
        return d
    if t == ft.HELLO_OK:
        d = {"version": fl["version"], "heartbeat_ms": fl["heartbeat_ms"],
             "max_frame": fl["max_frame"], "name": fl["name"].encode()}
        if fl["version"] >= 2:
            d["max_deadline_ms"] = fl["max_deadline_ms"]
            d["default_deadline_ms"] = fl["default_deadline_ms"]
        return d
    if t == ft.REQUEST:
        return {"deadline_ms": fl["deadline_ms"],
                "service": fl["service"].encode(),
                "key": bytes.fromhex(fl["key_hex"]),
                "payload": bytes.fromhex(fl["payload_hex"])}
    if t == ft.REPLY:
        return {"payload": bytes.fromhex(fl["payload_hex"])}
    if t == ft.ERROR:
        return {"code": fl["code"], "message": fl["message"].encode()}
    if t == ft.REGISTER:
        return {"credit": fl["credit"], "service": fl["service"].encode()}
    return {}


class TestVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = load()
        cls.valid = [v for v in cls.data["frames"] if "type" in v]
        cls.invalid = [v for v in cls.data["frames"] if "type" not in v]

    def test_file_shape(self):
        self.assertEqual(self.data["version"], ft.PROTOCOL_VERSION)
        self.assertEqual(self.data["max_body"], ft.DEFAULT_MAX_BODY)
        names = [v["name"] for v in self.data["frames"]]
        self.assertEqual(len(names), len(set(names)), "duplicate names")
        types = {v["type"] for v in self.valid}
        self.assertEqual(types, set(ft.TYPES), "a frame type has no vector")
        for v in self.invalid:
            self.assertTrue(("error" in v) != bool(v.get("incomplete")),
                            v["name"])
            if "error" in v:
                self.assertIn(v["error"], ft.ERRORS, v["name"])
        self.assertGreaterEqual(len(self.valid), 20)
        self.assertGreaterEqual(len(self.invalid), 30)

    def test_encode_matches_recorded_bytes(self):
        for v in self.valid:
            with self.subTest(v["name"]):
                self.assertEqual(encode_from_fields(v).hex(), v["hex"])

    def test_decode_recorded_bytes(self):
        for v in self.valid:
            with self.subTest(v["name"]):
                wire = bytes.fromhex(v["hex"])
                f, n = ft.decode_frame(wire)
                self.assertIsNotNone(f)
                self.assertEqual(n, len(wire))
                self.assertEqual(ft.TYPE_NAMES[f.type], v["type"])
                self.assertEqual(f.flags, v["flags"])
                self.assertEqual(f.id, int(v["id"]))
                self.assertEqual(ft.parse_body(f), expected_fields(v))
                # Every proper prefix is incomplete.
                for k in range(len(wire)):
                    self.assertEqual(ft.decode_frame(wire[:k]), (None, 0),
                                     f"prefix {k}")

    def test_error_code_names(self):
        for v in self.valid:
            if v["type"] == "ERROR":
                with self.subTest(v["name"]):
                    self.assertEqual(ft.errname(v["fields"]["code"]),
                                     v["fields"]["code_name"])

    def test_invalid_frames(self):
        for v in self.invalid:
            with self.subTest(v["name"]):
                wire = bytes.fromhex(v["hex"])
                max_body = v.get("max_body", ft.DEFAULT_MAX_BODY)
                if v.get("incomplete"):
                    self.assertEqual(ft.decode_frame(wire, max_body),
                                     (None, 0))
                    continue
                with self.assertRaises(ft.WireError) as cm:
                    f, n = ft.decode_frame(wire, max_body)
                    self.assertIsNotNone(f, "decoded as incomplete")
                    self.assertEqual(n, len(wire))
                    ft.parse_body(f)
                self.assertEqual(cm.exception.name, v["error"])

    @staticmethod
    def doc_blocks():
        """The hex of each code block in docs/protocol.md's Example
        section."""
        path = os.path.join(ft.ROOT, "docs", "protocol.md")
        with open(path, encoding="utf-8") as f:
            doc = f.read()
        section = doc.split("## Example", 1)[1]
        blocks = section.split("```")[1::2]
        out = []
        for block in blocks:
            hexbytes = ""
            for line in block.splitlines():
                # Keep the leading run of two-digit hex groups.
                m = re.match(
                    r"\s*((?:[0-9a-f]{2}\s+)*[0-9a-f]{2})(\s{2,}|$)", line)
                if m:
                    hexbytes += m.group(1).replace(" ", "")
            out.append(hexbytes)
        return out

    def test_protocol_doc_example(self):
        """The hex dumps in docs/protocol.md's Example section are the
        recorded request_doc_example and a version-2 HELLO, byte for
        byte."""
        blocks = self.doc_blocks()
        self.assertEqual(len(blocks), 2)
        rec = {v["name"]: v for v in self.valid}["request_doc_example"]
        self.assertEqual(blocks[0], rec["hex"])
        self.assertEqual(ft.encode_request(7, "echo", b"hi", 1000).hex(),
                         blocks[0])
        hello = ft.encode_hello(ft.ROLE_CALLER, 0, "cli", "", 2, 1 << 20)
        self.assertEqual(blocks[1], hello.hex())
        f, _ = ft.decode_frame(hello)
        self.assertEqual(ft.parse_body(f)["max_frame"], 1 << 20)

    def test_error_table_matches_doc(self):
        """The header's error list (what ferrytest parses) matches the
        table in docs/protocol.md."""
        path = os.path.join(ft.ROOT, "docs", "protocol.md")
        with open(path, encoding="utf-8") as f:
            doc = f.read()
        table = doc.split("## Error codes", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| (\d+) \| ([A-Z_]+) \|", table, re.M)
        self.assertEqual(len(rows), len(ft.ERRORS))  # no row twice
        self.assertEqual({n: int(c) for c, n in rows}, ft.ERRORS)


if __name__ == "__main__":
    unittest.main()
