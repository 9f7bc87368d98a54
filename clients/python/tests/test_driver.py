# SPDX-License-Identifier: MIT
"""The conformance driver (clients/python/conformance/driver.py) by hand,
in both modes, against a real ferryd: what tests/conformance/run.py
relies on."""
import json
import os
import signal
import subprocess

import fhelp

DRIVER = os.path.join(fhelp.PYROOT, "conformance", "driver.py")


class TestDriver(fhelp.TestCase):
    def test_caller_and_worker(self):
        d = self.daemon()
        w = self.pyproc([DRIVER, "worker", "--addr", d.addr, "--service",
                         "t", "--credit", "2", "--name", "drv"],
                        ready=lambda l: l == '{"event":"ready"}')
        with open(os.path.join(fhelp.ROOT, "tests", "vectors",
                               "frames.json")) as f:
            vec = json.load(f)["frames"]
        ok_vec = next(v for v in vec if v["name"] == "request_doc_example")
        cmds = [
            {"op": "decode", "hex": ok_vec["hex"]},
            {"op": "decode", "hex": "00000000"},
            {"op": "encode", "type": "REQUEST", "flags": 0, "id": "7",
             "fields": ok_vec["fields"]},
            {"op": "connect", "addr": d.addr},
            {"op": "call", "service": "t", "payload_hex": b"name".hex()},
            {"op": "call", "service": "t",
             "payload_hex": b"invalid:nope".hex()},
            {"op": "call", "service": "echo",
             "payload_gen": {"size": 70000, "seed": 9}},
            {"op": "send", "tag": "h", "service": "t",
             "payload_hex": b"hang".hex(), "deadline_ms": 10000},
            {"op": "cancel", "tag": "h"},
            {"op": "await", "tag": "h"},
            {"op": "send", "tag": "s", "service": "t",
             "payload_hex": b"sleep:50:zz".hex()},
            {"op": "await", "tag": "s"},
            {"op": "pipeline", "service": "echo", "count": 500,
             "payload_size": 8},
            {"op": "stats"},
            {"op": "close"},
            {"op": "quit"},
        ]
        r = subprocess.run([fhelp.PYTHON, DRIVER, "caller"],
                           input="".join(json.dumps(c) + "\n"
                                         for c in cmds).encode(),
                           capture_output=True, timeout=25, env=fhelp.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        ans = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(ans), len(cmds))
        self.assertEqual(ans[0]["fields"], ok_vec["fields"])
        self.assertEqual(ans[1], {"ok": False, "error": "INCOMPLETE"})
        self.assertEqual(ans[2]["hex"], ok_vec["hex"])
        self.assertEqual(ans[4]["reply_hex"], b"drv".hex())
        self.assertEqual((ans[5]["error"], ans[5]["code"], ans[5]["class"],
                          ans[5]["message"]),
                         ("INVALID_ARGUMENT", 11, "InvalidArgumentError",
                          "nope"))
        self.assertEqual(ans[6], {"ok": True, "reply_len": 70000,
                                  "echo_ok": True})
        self.assertEqual(ans[9]["error"], "CANCELLED")
        self.assertEqual(ans[11]["reply_hex"], b"zz".hex())
        self.assertEqual(ans[12], {"ok": True, "replied": 500,
                                   "mismatched": 0, "errors": {}})
        self.assertEqual(ans[13], {"ok": True, "connects": 1})
        w.signal(signal.SIGTERM)
        self.assertEqual(w.wait(10), 0)
        events = [json.loads(l) for l in w.lines if l.startswith("{")]
        kinds = [e["event"] for e in events]
        self.assertIn("cancel", kinds)
        self.assertEqual(kinds[-1], "exit")
        self.assertEqual(events[-1]["handled"], 2 + 1)
        self.assertTrue(all(e["held"] <= 2 for e in events if "held" in e))
