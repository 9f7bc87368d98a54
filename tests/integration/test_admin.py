# SPDX-License-Identifier: MIT
"""The operator's commands (ferry admin, the built-in ferry.admin and
POST /v1/admin/{op}): disable a service (SERVICE_DISABLED, or a fixed
fallback reply), enable it, drain one worker; who may give them (the admin
token, or the unix socket when none is set); bad commands refused with a
message. Reload has its own file, test_reload.py."""
import json
import re

from ferrytest import FerryTestCase, run_ferry, sanitizer_report

AT = "admin-s3cret"
NO_TOKEN = {"FERRY_TOKEN": "", "FERRY_ADDR": ""}


class TestAdmin(FerryTestCase):
    TIME_LIMIT = 60

    def admin(self, d, *args, addr=None, token=None, rc=0):
        """Runs ferry admin ARGS on d's unix socket (or addr); checks the
        exit status; returns the CompletedProcess."""
        cmd = ["admin"] + list(args)
        if token is not None:
            cmd = ["--token", token] + cmd
        r = run_ferry(cmd, addr=addr or d.unix_addr, env=NO_TOKEN)
        err = r.stderr.decode(errors="replace")
        rep = sanitizer_report(err)
        if rep:
            self.fail(f"sanitizer report from ferry {cmd}:\n{rep}")
        self.assertEqual(r.returncode, rc, f"ferry {cmd}: {r.stdout!r} "
                                           f"{err}\n{d.log_tail()}")
        return r

    def service(self, d, name):
        r = d.http("GET", "/v1/services")
        self.assertEqual(r.status, 200, r)
        for s in r.json()["services"]:
            if s["name"] == name:
                return s
        return None

    def test_disable_then_enable(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service", "pay",
                    "--mode", "tag:w")
        c = self.conn(d)
        self.assertReply(c.call(1, "pay", b"a"), b"w:a")
        r = self.admin(d, "disable", "pay")
        self.assertIn("service 'pay' disabled", r.stdout.decode())
        msg = self.assertError(c.call(2, "pay", b"b"), "SERVICE_DISABLED")
        self.assertIn(b"disabled", msg)
        # The HTTP gateway sees the same state.
        h = d.http("POST", "/v1/call/pay", body=b"x")
        self.assertHttpError(h, 503, "SERVICE_DISABLED")
        s = self.service(d, "pay")
        self.assertTrue(s["disabled"])
        self.assertEqual(s["errors"].get("SERVICE_DISABLED"), 2, s)
        self.assertEqual(len(s["workers"]), 1, "the worker stays connected")
        m = d.http("GET", "/metrics").body.decode()
        self.assertRegex(m, r'ferry_service_disabled\{service="pay"\} 1\n')
        out = run_ferry(["services"], addr=d.addr,
                        env=NO_TOKEN).stdout.decode()
        self.assertRegex(out, r"(?m)^pay .*  \[disabled\]$")
        self.assertNotRegex(out, r"(?m)^echo .*\[")
        r = self.admin(d, "enable", "pay")
        self.assertIn("service 'pay' enabled", r.stdout.decode())
        self.assertReply(c.call(3, "pay", b"c"), b"w:c")
        self.assertFalse(self.service(d, "pay")["disabled"])
        # The log says who: the ferry command's HELLO name and socket.
        self.assertRegex(d.log, r"service 'pay' disabled by an operator "
                                r"\('[^']*' at 'unix:[^']*ferryd\.sock'\)")
        self.assertIn("service 'pay' enabled by an operator", d.log)

    def test_disable_with_fallback(self):
        d = self.daemon()
        self.worker("tests/test_worker", "--addr", d.addr, "--service", "pay",
                    "--mode", "tag:w")
        fb = '{"status":"maintenance"}'
        self.admin(d, "disable", "pay", "--fallback", fb)
        c = self.conn(d)
        for i in range(1, 6):
            self.assertReply(c.call(i, "pay", b"x"), fb.encode())
        h = d.http("POST", "/v1/call/pay", body=b"x")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.body, fb.encode())
        s = self.service(d, "pay")
        self.assertEqual(s["fallbacks"], 6, s)
        self.assertEqual(s["replies"], 6, s)
        # An empty fallback is a reply too, not an error.
        self.admin(d, "disable", "pay", "--fallback", "")
        self.assertReply(c.call(7, "pay", b"x"), b"")
        self.admin(d, "enable", "pay")
        self.assertReply(c.call(8, "pay", b"y"), b"w:y")

    def test_disable_before_any_worker(self):
        d = self.daemon()
        self.admin(d, "disable", "later")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "later", "--mode", "tag:w")
        c = self.conn(d)
        self.assertError(c.call(1, "later", b"x"), "SERVICE_DISABLED")
        self.admin(d, "enable", "later")
        self.assertReply(c.call(2, "later", b"x"), b"w:x")
        # Enabling what nobody knows is an error, and creates nothing.
        r = self.admin(d, "enable", "nosuch", rc=1)
        self.assertIn("UNKNOWN_SERVICE", r.stderr.decode())
        self.assertIsNone(self.service(d, "nosuch"))

    def test_drain_worker(self):
        d = self.daemon()
        slow = self.worker("tests/test_worker", "--addr", d.addr,
                           "--service", "job", "--mode", "sleep:600",
                           "--name", "slow")
        c = self.conn(d)
        c.send_request(1, "job", b"held")
        s = self.service(d, "job")
        wid = s["workers"][0]["id"]
        self.assertEqual(s["workers"][0]["in_flight"], 1, s)
        r = self.admin(d, "drain-worker", str(wid))
        self.assertRegex(r.stdout.decode(),
                         rf"worker {wid} 'slow' draining: no new requests, "
                         r"1 held")
        # It finishes what it holds...
        self.assertReply(c.recv_frame(timeout=10), b"held")
        # ...and gets nothing new: another worker takes the traffic.
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "job", "--mode", "tag:fresh")
        for i in range(2, 12):
            self.assertReply(c.call(i, "job", b"n"), b"fresh:n")
        w = [x for x in self.service(d, "job")["workers"] if x["id"] == wid]
        self.assertTrue(w[0]["draining"], w)
        self.assertIn("drained by an operator", d.log)
        self.assertIsNone(slow.proc.poll(), "the worker process lives on")
        # Not a worker: the caller's own connection, and an unknown id.
        r = self.admin(d, "drain-worker", "999999", rc=1)
        self.assertIn("INVALID_ARGUMENT: no worker with id 999999",
                      r.stderr.decode())

    def test_who_may_give_commands_without_admin_token(self):
        d = self.daemon()
        # TCP: refused; the unix socket: allowed.
        r = self.admin(d, "disable", "x", addr=d.addr, rc=1)
        self.assertIn("UNAUTHORIZED", r.stderr.decode())
        self.assertIsNone(self.service(d, "x"))
        # HTTP gateway calls of ferry.admin are never admin.
        h = d.http("POST", "/v1/call/ferry.admin",
                   body=b'{"op":"disable","service":"x"}')
        self.assertHttpError(h, 401, "UNAUTHORIZED")
        # /v1/admin needs admin_token set at all.
        h = d.http("POST", "/v1/admin/disable", body=b'{"service":"x"}')
        self.assertEqual(h.status, 403, h)
        self.assertEqual(h.json()["error"], "FORBIDDEN")
        self.assertIsNone(self.service(d, "x"))
        self.admin(d, "disable", "x")
        self.assertTrue(self.service(d, "x")["disabled"])

    def test_admin_token(self):
        d = self.daemon("--admin-token", AT)
        auth = {"Authorization": "Bearer " + AT}
        # With a token set, the unix socket alone is not enough.
        r = self.admin(d, "disable", "x", rc=1)
        self.assertIn("UNAUTHORIZED", r.stderr.decode())
        r = self.admin(d, "disable", "x", addr=d.addr, token=AT)
        self.assertIn("disabled", r.stdout.decode())
        # HTTP: Bearer admin token.
        h = d.http("POST", "/v1/admin/enable", body=b'{"service":"x"}')
        self.assertHttpError(h, 401, "UNAUTHORIZED")
        h = d.http("POST", "/v1/admin/enable",
                   body=b'{"service":"x"}', headers=auth)
        self.assertEqual(h.status, 200, h)
        doc = h.json()
        self.assertEqual(doc, {"ok": True, "op": "enable", "service": "x",
                               "was_disabled": True})
        h = d.http("POST", "/v1/admin/disable", headers=auth,
                   body=json.dumps({"service": "y",
                                    "fallback": "later"}).encode())
        self.assertEqual(h.status, 200, h)
        c = self.conn(d)
        self.assertReply(c.call(1, "y", b"q"), b"later")
        self.assertRegex(d.log, r"service 'y' disabled by an operator "
                                r"\(http from '127\.0\.0\.1:\d+'\)")
        h = d.http("GET", "/v1/admin/disable", headers=auth)
        self.assertEqual(h.status, 405, h)
        self.assertEqual(h.json()["error"], "METHOD_NOT_ALLOWED")
        self.assertEqual(h.headers.get("allow"), "POST")

    def test_bad_commands(self):
        d = self.daemon("--admin-token", AT)
        auth = {"Authorization": "Bearer " + AT}
        cases = [
            (b'{"service":"x"}', "/v1/admin/frob", 400, "unknown op 'frob'"),
            (b'{"service":', "/v1/admin/disable", 400, "bad JSON"),
            (b'[1]', "/v1/admin/disable", 400, "JSON object"),
            (b'{"service":7}', "/v1/admin/disable", 400,
             "'service' must be a string"),
            (b'{"service":""}', "/v1/admin/disable", 400, "1 to 255"),
            (b'{"service":"a\\nb"}', "/v1/admin/disable", 400,
             "none a control byte"),
            (b'{"service":"ferry.services"}', "/v1/admin/disable", 400,
             "ferryd's own"),
            (b'{"service":"x","fallback":3}', "/v1/admin/disable", 400,
             "'fallback' must be a string"),
            (b'{"worker":"1"}', "/v1/admin/drain-worker", 400,
             "'worker' must be a worker id"),
            (b'{"worker":0}', "/v1/admin/drain-worker", 400,
             "'worker' must be a worker id"),
        ]
        for body, path, status, text in cases:
            h = d.http("POST", path, body=body, headers=auth)
            doc = self.assertHttpError(h, status, "INVALID_ARGUMENT",
                                       f"{path} {body!r}")
            self.assertIn(text, doc["message"], f"{path} {body!r}")
        h = d.http("POST", "/v1/admin/a/b", headers=auth)
        self.assertEqual(h.status, 404, h)
        # The same refusals through ferry admin; usage errors exit 2.
        for args, rc, text in [
            (["frob"], 2, "unknown command 'frob'"),
            (["disable"], 2, "wrong arguments for 'disable'"),
            (["enable", "x", "--fallback", "y"], 2, "wrong arguments"),
            (["reload", "extra"], 2, "wrong arguments"),
            (["drain-worker", "abc"], 2, "ID"),
            ([], 2, "missing command"),
        ]:
            r = self.admin(d, *args, addr=d.addr, token=AT, rc=rc)
            self.assertIn(text, r.stderr.decode(), args)
        # Nothing was created or changed by the refusals.
        r = d.http("GET", "/v1/services", headers=auth)
        names = [s["name"] for s in r.json()["services"]]
        self.assertNotIn("x", names)

    def test_admin_help_and_json(self):
        d = self.daemon()
        r = run_ferry(["admin", "--help"], env=NO_TOKEN)
        self.assertEqual(r.returncode, 0)
        for word in ("drain-worker ID", "disable SERVICE", "--fallback",
                     "enable SERVICE", "reload"):
            self.assertIn(word, r.stdout.decode())
        r = self.admin(d, "disable", "z", "--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc, {"ok": True, "op": "disable", "service": "z",
                               "fallback": False})
        self.assertTrue(re.search(r"admin\s+drain a worker",
                                  run_ferry(["--help"]).stdout.decode()))
