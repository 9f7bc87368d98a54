# SPDX-License-Identifier: MIT
"""Hot reload: SIGHUP and `ferry admin reload` re-read the config file
(then the same flags, which still win). Limits, timeouts, routes, tokens
and the log level change without dropping a connection; an invalid file
is refused with its line named and the running configuration stays; keys
only a restart can change are kept and reported."""
import os
import signal
import time

from ferrytest import FerryTestCase, Conn, run_ferry, sanitizer_report

NO_TOKEN = {"FERRY_TOKEN": "", "FERRY_ADDR": ""}


class TestReload(FerryTestCase):
    TIME_LIMIT = 60

    def write_config(self, d_or_path, text):
        path = d_or_path if isinstance(d_or_path, str) else d_or_path.cfg
        with open(path, "w") as f:
            f.write("[ferryd]\n" + text)

    def daemon_with(self, text, *args):
        path = os.path.join(self.tmpdir(), "ferryd.ini")
        self.write_config(path, text)
        d = self.daemon("--config", path, *args)
        d.cfg = path
        return d

    def tmpdir(self):
        import tempfile
        t = tempfile.mkdtemp(prefix="ferry-reload-")
        self.addCleanup(lambda: __import__("shutil").rmtree(t, True))
        return t

    def reload(self, d, rc=0):
        r = run_ferry(["admin", "reload"], addr=d.unix_addr, env=NO_TOKEN)
        err = r.stderr.decode(errors="replace")
        rep = sanitizer_report(err)
        if rep:
            self.fail(f"sanitizer report from ferry admin reload:\n{rep}")
        self.assertEqual(r.returncode, rc, f"{r.stdout!r} {err}")
        return r

    def sighup(self, d, expect):
        """Sends SIGHUP and waits for the log line expect."""
        before = d.log.count(expect)
        d.signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if d.log.count(expect) > before:
                return
            time.sleep(0.02)
        self.fail(f"no '{expect}' after SIGHUP:\n{d.log_tail()}")

    def test_limits_change_without_dropping_connections(self):
        d = self.daemon_with("queue_limit = 8\n")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--mode", "never", "--credit", "1")
        c = self.conn(d)
        # queue_limit 8: one at the worker, 8 queued, the 10th refused.
        for i in range(1, 11):
            c.send_request(i, "slow", b"x", deadline_ms=20000)
        self.assertError(c.recv_frame(), "OVERLOADED")
        for i in range(1, 10):
            c.send_cancel(i)
        for _ in range(9):
            self.assertError(c.recv_frame(), "CANCELLED")
        self.write_config(d, "queue_limit = 0\nlog_level = debug\n")
        self.sighup(d, "reloaded '")
        self.assertIn("changed log_level, queue_limit", d.log)
        # Same connection, same worker: now nothing may wait.
        c.send_request(20, "slow", b"x", deadline_ms=20000)
        c.send_request(21, "slow", b"x", deadline_ms=20000)
        self.assertError(c.recv_frame(), "OVERLOADED")
        c.send_cancel(20)
        self.assertError(c.recv_frame(), "CANCELLED")
        self.assertReply(c.call(22, "echo", b"still here"), b"still here")
        # log_level debug took effect: debug lines appear.
        self.conn(d).call(1, "echo", b"x")
        self.assertRegex(d.log, r" debug ")

    def test_routes_and_body_limit_reload(self):
        d = self.daemon_with("route = GET /hello/{name} echo\n")
        h = d.http("GET", "/hello/bob")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.json(), {"name": "bob"})
        self.assertEqual(d.http("GET", "/hi/bob").status, 404)
        self.write_config(d, "route = GET /hi/{who} echo\n"
                             "http_max_body = 10\n")
        r = self.reload(d)
        self.assertIn("reloaded; changed: ", r.stdout.decode())
        self.assertIn("route", r.stdout.decode())
        self.assertIn("http_max_body", r.stdout.decode())
        h = d.http("GET", "/hi/ann")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.json(), {"who": "ann"})
        self.assertEqual(d.http("GET", "/hello/bob").status, 404)
        h = d.http("POST", "/v1/call/echo", body=b"x" * 11)
        self.assertHttpError(h, 413, "TOO_BIG")
        h = d.http("POST", "/v1/call/echo", body=b"x" * 10)
        self.assertEqual(h.status, 200, h)

    def test_invalid_file_keeps_running_config(self):
        d = self.daemon_with("queue_limit = 0\n")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--mode", "never", "--credit", "1")
        c = self.conn(d)
        self.write_config(d, "log_level = warn\n"
                             "queue_limit = lots\n")
        r = self.reload(d, rc=1)
        err = r.stderr.decode()
        self.assertIn("INVALID_ARGUMENT", err)
        self.assertIn("line 3: queue_limit: bad value 'lots'", err)
        self.assertIn("reload refused, running configuration kept", d.log)
        # A syntax error and an unknown key by SIGHUP: refused the same way.
        self.write_config(d, "queue_limit = 5\nno equals sign here\n")
        self.sighup(d, "reload refused")
        self.assertRegex(d.log, r"line 3: syntax error")
        self.write_config(d, "queue_limit = 5\nroute = GET x/{a} echo\n")
        r = self.reload(d, rc=1)
        self.assertIn("line 3: route 'GET x/{a} echo': path must start",
                      r.stderr.decode())
        # Nothing of the refused files applied: still queue_limit 0, and
        # info lines still logged (log_level warn was not taken).
        c.send_request(1, "slow", b"x", deadline_ms=20000)
        c.send_request(2, "slow", b"x", deadline_ms=20000)
        self.assertError(c.recv_frame(), "OVERLOADED")
        n = d.log.count(" info ")
        self.write_config(d, "queue_limit = 0\n")
        self.reload(d)
        self.assertGreater(d.log.count(" info "), n)

    def test_restart_only_keys_are_kept(self):
        d = self.daemon_with("max_frame = 1m\n")
        self.write_config(d, "max_frame = 2m\nname = other\n"
                             "heartbeat_ms = 1000\n")
        r = self.reload(d)
        out = r.stdout.decode()
        self.assertIn("changed: heartbeat_ms", out)
        self.assertIn("need a restart (old values kept): name, max_frame",
                      out)
        self.assertIn("name, max_frame changed but need a restart", d.log)
        # max_frame kept: HELLO_OK still announces 1 MiB.
        c = Conn(d.addr)
        self.addCleanup(c.close)
        ok = c.hello()
        self.assertEqual(ok["max_frame"], 1 << 20)

    def test_flags_still_win_over_reloaded_file(self):
        d = self.daemon_with("queue_limit = 0\n", "--queue-limit", "0")
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "slow", "--mode", "never", "--credit", "1")
        self.write_config(d, "queue_limit = 100\n")
        r = self.reload(d)
        self.assertIn("changed: none", r.stdout.decode())
        c = self.conn(d)
        c.send_request(1, "slow", b"x", deadline_ms=20000)
        c.send_request(2, "slow", b"x", deadline_ms=20000)
        self.assertError(c.recv_frame(), "OVERLOADED")

    def test_tokens_rotate_for_new_connections(self):
        d = self.daemon_with("caller_token = tok-old-1\n")
        kept = self.conn(d, token="tok-old-1")
        self.write_config(d, "caller_token = tok-new-2\n")
        self.sighup(d, "reloaded '")
        self.assertIn("changed caller_token", d.log)
        self.assertNotIn("tok-new-2", d.log)
        # The connection made with the old token stays; new ones need the
        # new token.
        self.assertReply(kept.call(1, "echo", b"a"), b"a")
        self.assertReply(
            self.conn(d, token="tok-new-2").call(1, "echo", b"b"), b"b")
        bad = Conn(d.addr)
        self.addCleanup(bad.close)
        with self.assertRaises(Exception) as ctx:
            bad.hello(token="tok-old-1")
        self.assertIn("UNAUTHORIZED", str(ctx.exception))
