# SPDX-License-Identifier: MIT
"""Access tokens: caller_token, worker_token and admin_token checked at
HELLO (ERROR UNAUTHORIZED, id 0, then close), a worker without the worker
token cannot register its service, admin_token for either role, the ferry
command's --token and $FERRY_TOKEN, the HTTP side (admin endpoints need
Bearer admin_token, gateway calls the caller token; /healthz stays open),
ferry_auth_failures_total, and the startup warning for listeners beyond
loopback."""
import re
import subprocess

from ferrytest import (FerryTestCase, ROLE_CALLER, ROLE_WORKER, ERROR,
                       REQUEST, binary, encode_hello, errname,
                       free_port, parse_error, run_ferry, sanitizer_report,
                       _env)

CT = "caller-s3cret"
WT = "worker-s3cret"
AT = "admin-s3cret"
NO_TOKEN = {"FERRY_TOKEN": ""}


class TestAuth(FerryTestCase):
    TIME_LIMIT = 60

    def refused(self, d, role, token, msg=None):
        """HELLO with token is answered ERROR UNAUTHORIZED (id 0) and the
        connection closed; returns the error message."""
        c = self.raw(d.addr)
        c.send(encode_hello(role, 0, "authtest", token))
        frames = c.expect_closed()
        self.assertEqual(len(frames), 1, frames)
        f = frames[0]
        self.assertEqual(f.type, ERROR, f)
        self.assertEqual(f.id, 0, f)
        code, text = parse_error(f.body)
        self.assertEqual(errname(code), "UNAUTHORIZED", text)
        return text.decode() if isinstance(text, bytes) else text

    def accepted(self, d, role, token):
        c = self.raw(d.addr)
        c.hello(role, token=token)
        return c

    def ferry(self, args, addr, env=None):
        r = run_ferry(args, addr=addr, env=env, timeout=30)
        rep = sanitizer_report(r.stderr.decode(errors="replace"))
        if rep:
            self.fail(f"sanitizer report from ferry {args}:\n{rep}")
        return r

    def metric(self, d, name, headers=None):
        r = d.http("GET", "/metrics", headers=headers)
        self.assertEqual(r.status, 200, r)
        m = re.search(rf"^{name} (\S+)$", r.body.decode(), re.M)
        self.assertIsNotNone(m, r.body[-2000:])
        return float(m.group(1))

    def test_caller_token(self):
        d = self.daemon("--caller-token", CT)
        # Without admin_token, /metrics needs what a call needs: the
        # caller token (tests/fault/test_internals.py has every case).
        bearer = {"Authorization": "Bearer " + CT}
        self.assertHttpError(d.http("GET", "/metrics"), 401, "UNAUTHORIZED")
        # The test helper's readiness probe may already have been refused.
        before = self.metric(d, "ferry_auth_failures_total", bearer)
        msg = self.refused(d, ROLE_CALLER, "")
        self.assertEqual(msg, "invalid token for role 'caller'")
        self.refused(d, ROLE_CALLER, "caller-s3creT")
        self.refused(d, ROLE_CALLER, CT + "x")
        self.refused(d, ROLE_CALLER, CT[:-1])
        c = self.accepted(d, ROLE_CALLER, CT)
        self.assertReply(c.call(1, "echo", b"hi"), b"hi")
        # Workers need no token here (worker_token is off).
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "open", "--mode", "tag:w", env=NO_TOKEN)
        self.assertReply(c.call(2, "open", b"x"), b"w:x")
        self.assertEqual(self.metric(d, "ferry_auth_failures_total",
                                     bearer), before + 4)
        log = d.log
        self.assertRegex(log, r"caller at '127\.0\.0\.1:\d+': refused: "
                              r"no token")
        self.assertRegex(log, r"refused: wrong token")
        self.assertNotIn(CT, log)

    def test_worker_token(self):
        d = self.daemon("--worker-token", WT, "--worker-wait-ms", "300")
        msg = self.refused(d, ROLE_WORKER, "")
        self.assertEqual(msg, "invalid token for role 'worker'")
        self.refused(d, ROLE_WORKER, "worker-s3creX")
        # The real worker without the token gives up: UNAUTHORIZED, exit 1.
        r = subprocess.run([binary("tests/test_worker"), "--addr", d.addr,
                            "--service", "payments"],
                           capture_output=True, timeout=20,
                           env=_env(NO_TOKEN))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"UNAUTHORIZED", r.stderr)
        self.assertNotIn(b"READY", r.stdout)
        # So nobody serves payments: callers (no token needed) get
        # UNKNOWN_SERVICE once worker_wait_ms is over.
        c = self.accepted(d, ROLE_CALLER, "")
        self.assertError(c.call(1, "payments", b"x", timeout=10),
                         "UNKNOWN_SERVICE")
        # With the token (flag, then $FERRY_TOKEN) it serves.
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "payments", "--mode", "tag:paid", "--token", WT,
                    env=NO_TOKEN)
        self.assertReply(c.call(2, "payments", b"x"), b"paid:x")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "refunds", "--mode", "tag:ref", env={"FERRY_TOKEN": WT})
        self.assertReply(c.call(3, "refunds", b"y"), b"ref:y")
        self.assertNotIn(WT, d.log)

    def test_admin_token_for_both_roles(self):
        d = self.daemon("--caller-token", CT, "--worker-token", WT,
                        "--admin-token", AT)
        # Each role's token is for that role only.
        self.refused(d, ROLE_CALLER, WT)
        self.refused(d, ROLE_WORKER, CT)
        self.refused(d, ROLE_CALLER, "")
        w = self.accepted(d, ROLE_WORKER, AT)
        w.register("adm", credit=1)
        c = self.accepted(d, ROLE_CALLER, AT)
        c.send_request(7, "adm", b"q")
        f = w.recv_frame()
        self.assertEqual(f.type, REQUEST, f)
        w.send_reply(f.id, b"ok")
        self.assertReply(c.wait_for(7, 10), b"ok")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "admsvc", "--mode", "tag:a", "--token", AT)
        self.assertReply(c.call(8, "admsvc", b"z"), b"a:z")

    def test_ferry_command_token(self):
        d = self.daemon("--caller-token", CT)
        r = self.ferry(["call", "echo", "x"], d.addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^UNAUTHORIZED: ")
        self.assertEqual(r.stdout, b"")
        r = self.ferry(["call", "echo", "x", "--token", "nope"], d.addr,
                       env=NO_TOKEN)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^UNAUTHORIZED: ")
        r = self.ferry(["call", "echo", "x", "--token", CT], d.addr,
                       env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, b"x\n")
        r = self.ferry(["--token=" + CT, "call", "echo", "y"], d.addr,
                       env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, b"y\n")
        r = self.ferry(["call", "echo", "z"], d.addr,
                       env={"FERRY_TOKEN": CT})
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, b"z\n")
        r = self.ferry(["services", "--json"], d.addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stderr.decode(), r"^UNAUTHORIZED: ")
        r = self.ferry(["services", "--json", "--token", CT], d.addr,
                       env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(b'"echo"', r.stdout)
        bench = ["bench", "--seconds", "1", "--warmup", "0"]
        r = self.ferry(bench, d.addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"UNAUTHORIZED", r.stderr)
        r = self.ferry(bench + ["--token", CT], d.addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout.decode(), r"^rps=\d+ ")

    def test_http_admin_token(self):
        d = self.daemon("--admin-token", AT)
        if not d.http_addr:
            self.fail("ferryd has no --http")
        bearer = {"Authorization": "Bearer " + AT}
        for path in ("/v1/stats", "/v1/services", "/metrics",
                     "/v1/stats/stream"):
            r = d.http("GET", path)
            self.assertHttpError(r, 401, "UNAUTHORIZED", path)
            self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
            r = d.http("GET", path,
                       headers={"Authorization": "Bearer " + AT + "x"})
            self.assertHttpError(r, 401, "UNAUTHORIZED", path)
        r = d.http("GET", "/v1/stats", headers=bearer)
        self.assertEqual(r.status, 200, r)
        self.assertIn("services", r.json())
        r = d.http("GET", "/v1/services",
                   headers={"authorization": "bearer " + AT})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.metric(d, "ferry_auth_failures_total",
                                     bearer), 0)
        for path in ("/healthz", "/readyz"):
            self.assertEqual(d.http("GET", path).status, 200, path)
        # The gateway stays open: caller_token is off.
        r = d.http("POST", "/v1/call/echo", b"open")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"open")

    def test_http_gateway_caller_token(self):
        d = self.daemon("--caller-token", CT, "--admin-token", AT)
        r = d.http("POST", "/v1/call/echo", b"hi")
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        r = d.http("POST", "/v1/call/echo", b"hi",
                   headers={"Ferry-Token": "wrong"})
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        r = d.http("GET", "/fib/10")
        self.assertHttpError(r, 401, "UNAUTHORIZED")
        for h in ({"Ferry-Token": CT}, {"Authorization": "Bearer " + CT},
                  {"Authorization": "Bearer " + AT}):
            r = d.http("POST", "/v1/call/echo", b"hi", headers=h)
            self.assertEqual(r.status, 200, (h, r))
            self.assertEqual(r.body, b"hi")
        # The caller token opens no admin endpoint.
        r = d.http("GET", "/v1/stats",
                   headers={"Authorization": "Bearer " + CT})
        self.assertHttpError(r, 401, "UNAUTHORIZED")

    def test_startup_warning(self):
        port = free_port()
        d = self.daemon("--listen", f"0.0.0.0:{port}")
        self.assertIn(f"listening on '0.0.0.0:{port}' beyond loopback with "
                      f"no access tokens set", d.log)
        self.assertNotIn("127.0.0.1", "".join(
            l for l in d.log.splitlines() if "beyond loopback" in l))
        d.stop()
        port = free_port()
        d = self.daemon("--listen", f"0.0.0.0:{port}", "--worker-token", WT)
        self.assertIn(f"0.0.0.0:{port}", d.log)
        self.assertNotIn("beyond loopback", d.log)
        d.stop()
        hport = free_port()
        d = self.daemon("--http", f"0.0.0.0:{hport}", "--caller-token", CT)
        self.assertIn(f"http listening on '0.0.0.0:{hport}' beyond loopback "
                      f"with no admin_token set", d.log)
        d.stop()
        d = self.daemon("--http", f"0.0.0.0:{free_port()}", "--admin-token",
                        AT)
        self.assertNotIn("beyond loopback", d.log)
        # Loopback only (the default test daemon): no warning.
        d2 = self.daemon()
        self.assertNotIn("beyond loopback", d2.log)
