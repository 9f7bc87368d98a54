# SPDX-License-Identifier: MIT
"""Replays the recorded payloads of the services ferryd serves itself
(tests/vectors/services/<name>.json, one file per service) against a
running ferryd: each file gets a fresh daemon started with its
daemon_args and one caller connection; its steps run in order, each a
REQUEST of the file's service with the step's routing key (key_hex) and
payload (request, hex), answered by exactly the recorded REPLY payload
(reply, hex), or by the recorded ERROR (error: its name; message, when
given, exactly). Clients in other languages replay the same files
through their own encoders."""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import ferrytest as ft  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = sorted(glob.glob(os.path.join(HERE, "services", "*.json")))


class TestServiceVectors(ft.FerryTestCase):
    TIME_LIMIT = 60

    def test_files_are_well_formed(self):
        self.assertTrue(FILES, "no tests/vectors/services/*.json")
        for path in FILES:
            with self.subTest(file=os.path.basename(path)):
                with open(path, encoding="utf-8") as f:
                    doc = json.load(f)
                self.assertIsInstance(doc["service"], str)
                self.assertTrue(doc["steps"])
                for s in doc["steps"]:
                    self.assertIn("name", s)
                    bytes.fromhex(s["key_hex"])
                    bytes.fromhex(s["request"])
                    self.assertTrue(("reply" in s) != ("error" in s), s)

    def test_replay_against_ferryd(self):
        for path in FILES:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            d = self.daemon(*doc.get("daemon_args", []))
            c = self.conn(d)
            for i, s in enumerate(doc["steps"], 1):
                with self.subTest(file=os.path.basename(path), step=s["name"]):
                    fr = c.call(i, doc["service"], bytes.fromhex(s["request"]),
                                key=bytes.fromhex(s["key_hex"]))
                    if "reply" in s:
                        self.assertReply(fr, bytes.fromhex(s["reply"]),
                                         s["name"])
                    else:
                        msg = self.assertError(fr, s["error"], s["name"])
                        if "message" in s:
                            self.assertEqual(msg.decode(), s["message"])
