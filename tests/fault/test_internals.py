# SPDX-License-Identifier: MIT
"""Hole 7 of the hostile-peers issue: who may see ferryd's internals (every
service with its workers' names and addresses, counters, latencies).

There is one rule (docs/http.md, Access tokens): with admin_token set,
internals need the admin token; without it, they need what a call needs
(caller_token when it is set, else nothing). The worker token never opens
them. Before the fix the binary protocol and the HTTP gateway's
POST /v1/call/ferry.services followed the caller rule while GET
/v1/services followed the admin rule, so a caller token (or no token at
all, with only admin_token set) read through one door what another door
refused.

The test is a table: every token setting (none, caller, worker, admin,
caller+worker, caller+admin, all three) times every token a client may
show (none, caller's, worker's, admin's, a wrong one) times every door
(REQUEST ferry.services on TCP and on the unix socket, POST
/v1/call/ferry.services, a route to ferry.services, GET /v1/services,
/v1/stats, /metrics and the dashboard's /v1/stats/stream). Each case must
be let through exactly when the rule says so, and a refused one must show
nothing of the worker registered for the test. Then `ferry services`, the
operator's way in, is checked with --token and on the unix socket.
"""
import json
import socket
import time

from ferrytest import (ERROR, REPLY, ROLE_CALLER, ROLE_WORKER, Conn,
                       FerryTestCase, ProtocolFailure, describe,
                       encode_hello, errname, http_req_bytes, parse_error,
                       run_ferry, sanitizer_report)

CT = "caller-s3cret"
WT = "worker-s3cret"
AT = "admin-s3cret"
NO_TOKEN = {"FERRY_TOKEN": ""}

# (name, caller_token, worker_token, admin_token)
SETTINGS = [
    ("none", None, None, None),
    ("caller", CT, None, None),
    ("worker", None, WT, None),
    ("admin", None, None, AT),
    ("caller+worker", CT, WT, None),
    ("caller+admin", CT, None, AT),
    ("all three", CT, WT, AT),
]
SHOWN = [("no token", None), ("caller's", CT), ("worker's", WT),
         ("admin's", AT), ("a wrong one", "wrong-s3cret")]

# What only the internals reveal: the worker's name and service.
SECRET_WORKER = "hidden-worker-7"
SECRET_SERVICE = "ledger"


def may_see_internals(caller, worker, admin, shown):
    """The rule of docs/http.md, written out independently of the C."""
    if admin is not None:
        return shown == admin
    if caller is not None:
        return shown == caller
    return True


class TestInternalsAccess(FerryTestCase):
    TIME_LIMIT = 240

    # ---------------------------------------------------------- the doors
    # Each door returns (allowed, body) for one token shown (None: none);
    # allowed is None when the answer is neither a success nor a refusal.

    def binary_door(self, d, token, unix=False):
        c = Conn(d.unix_addr if unix else d.addr, timeout=10)
        self._conns.append(c)
        try:
            c.hello(ROLE_CALLER, name="peek", token=token or "")
        except ProtocolFailure as e:
            # Refused at HELLO: the caller token was needed first.
            if "UNAUTHORIZED" in str(e):
                return False, str(e).encode()
            return None, str(e).encode()
        f = c.call(1, "ferry.services", b"", timeout=10)
        if f.type == REPLY:
            return True, f.body
        if f.type == ERROR and errname(parse_error(f.body)[0]) == \
                "UNAUTHORIZED":
            # Refused without dropping the connection: it still calls.
            f2 = c.call(2, "echo", b"still here", timeout=10)
            if f2.type != REPLY or f2.body != b"still here":
                return None, b"connection unusable after the refusal: " + \
                    describe(f2).encode()
            return False, f.body
        return None, describe(f).encode()

    def http_door(self, d, token, method, path):
        headers = {"Authorization": "Bearer " + token} if token else {}
        r = d.http(method, path, b"" if method == "POST" else None,
                   headers=headers)
        if r.status == 200:
            return True, r.body
        if r.status == 401:
            doc = r.json()
            if doc.get("error") != "UNAUTHORIZED" or \
                    r.headers.get("www-authenticate") != "Bearer":
                return None, r.body
            return False, r.body
        return None, f"HTTP {r.status}: ".encode() + r.body

    def stream_door(self, d, token):
        """GET /v1/stats/stream: the head, then the first event (or the
        whole 401)."""
        headers = {"Authorization": "Bearer " + token} if token else {}
        s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        try:
            s.sendall(http_req_bytes("GET", "/v1/stats/stream",
                                     headers=headers))
            buf = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if b"\r\n\r\n" in buf:
                    head, _, body = buf.partition(b"\r\n\r\n")
                    status = int(head.split(b" ", 2)[1])
                    if status == 200 and b"\n\n" in body:
                        return True, body
                    if status == 401:
                        lines = head.lower().split(b"\r\n")
                        n = [int(x.split(b":")[1]) for x in lines
                             if x.startswith(b"content-length:")]
                        if n and len(body) >= n[0]:
                            ok = b"www-authenticate: bearer" in lines and \
                                b'"UNAUTHORIZED"' in body
                            return (False if ok else None), body
                    if status not in (200, 401):
                        return None, buf
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return None, b"no whole answer: " + buf[:300]
        finally:
            s.close()

    DOORS = [
        ("REQUEST ferry.services (tcp)",
         lambda self, d, t: self.binary_door(d, t)),
        ("REQUEST ferry.services (unix)",
         lambda self, d, t: self.binary_door(d, t, unix=True)),
        ("POST /v1/call/ferry.services",
         lambda self, d, t: self.http_door(d, t, "POST",
                                           "/v1/call/ferry.services")),
        ("GET /peek (a route to ferry.services)",
         lambda self, d, t: self.http_door(d, t, "GET", "/peek")),
        ("GET /v1/services",
         lambda self, d, t: self.http_door(d, t, "GET", "/v1/services")),
        ("GET /v1/stats",
         lambda self, d, t: self.http_door(d, t, "GET", "/v1/stats")),
        ("GET /metrics",
         lambda self, d, t: self.http_door(d, t, "GET", "/metrics")),
        ("GET /v1/stats/stream",
         lambda self, d, t: self.stream_door(d, t)),
    ]

    def start(self, caller, worker, admin):
        args = ["--route", "GET /peek ferry.services"]
        for flag, tok in (("--caller-token", caller),
                          ("--worker-token", worker),
                          ("--admin-token", admin)):
            if tok is not None:
                args += [flag, tok]
        d = self.daemon(*args)
        w = Conn(d.addr)
        self._conns.append(w)
        w.hello(ROLE_WORKER, name=SECRET_WORKER, token=worker or "")
        w.register(SECRET_SERVICE, credit=3)
        return d, w

    def test_one_rule_on_every_door(self):
        wrong = []
        cases = 0
        for sname, caller, worker, admin in SETTINGS:
            d, w = self.start(caller, worker, admin)
            for tname, token in SHOWN:
                want = may_see_internals(caller, worker, admin, token)
                for dname, door in self.DOORS:
                    cases += 1
                    got, body = door(self, d, token)
                    where = f"tokens {sname}, shown {tname}, {dname}"
                    if got is None:
                        wrong.append(f"{where}: unexpected answer "
                                     f"{body[:200]!r}")
                    elif got != want:
                        wrong.append(f"{where}: "
                                     f"{'let through' if got else 'refused'}"
                                     f", the rule says "
                                     f"{'let through' if want else 'refuse'}")
                    elif got and SECRET_SERVICE.encode() not in body:
                        wrong.append(f"{where}: let through without the "
                                     f"document: {body[:200]!r}")
                    elif not got and (SECRET_WORKER.encode() in body or
                                      SECRET_SERVICE.encode() in body):
                        wrong.append(f"{where}: refused, but the answer "
                                     f"shows internals: {body[:200]!r}")
            w.close()
            d.stop()
        self.assertEqual(cases, len(SETTINGS) * len(SHOWN) * len(self.DOORS))
        self.assertEqual(cases, 280)
        self.assertEqual(wrong, [], f"{len(wrong)} of {cases} cases break "
                                    f"the rule:\n" + "\n".join(wrong))

    def test_the_document_let_through_is_whole(self):
        """What a door that lets through gives is the whole document: the
        worker's name and address for ferry.services, the same on every
        door that serves it."""
        d, w = self.start(CT, WT, AT)
        bearer = {"Authorization": "Bearer " + AT}
        docs = []
        ok, body = self.binary_door(d, AT)
        self.assertTrue(ok, body)
        docs.append(json.loads(body))
        for method, path in (("POST", "/v1/call/ferry.services"),
                             ("GET", "/v1/services"), ("GET", "/peek")):
            r = d.http(method, path, b"" if method == "POST" else None,
                       headers=bearer)
            self.assertEqual(r.status, 200, (path, r))
            docs.append(r.json())
        for doc in docs:
            svc = [s for s in doc["services"] if s["name"] == SECRET_SERVICE]
            self.assertEqual(len(svc), 1, doc)
            self.assertEqual([x["name"] for x in svc[0]["workers"]],
                             [SECRET_WORKER])
            self.assertRegex(svc[0]["workers"][0]["addr"],
                             r"^127\.0\.0\.1:\d+$")
            self.assertEqual(svc[0]["credit"], 3)

    def ferry(self, args, addr, rc):
        r = run_ferry(args, addr=addr, env=NO_TOKEN, timeout=30)
        err = r.stderr.decode(errors="replace")
        rep = sanitizer_report(err)
        if rep:
            self.fail(f"sanitizer report from ferry {args}:\n{rep}")
        self.assertEqual(r.returncode, rc, f"ferry {args}: {r.stdout!r} "
                                           f"{err}")
        return r

    def test_ferry_services_for_the_operator(self):
        # All three tokens: the admin token, on TCP or on the unix socket.
        d, w = self.start(CT, WT, AT)
        for addr in (d.addr, d.unix_addr):
            r = self.ferry(["services", "--json", "--token", AT], addr, 0)
            self.assertIn(SECRET_WORKER.encode(), r.stdout)
            r = self.ferry(["services", "--token", AT], addr, 0)
            self.assertRegex(r.stdout.decode(),
                             rf"(?m)^\s+worker \d+\s+{SECRET_WORKER}\s+"
                             r"127\.0\.0\.1:\d+")
            r = self.ferry(["services", "--json", "--token", CT], addr, 1)
            self.assertRegex(r.stderr.decode(),
                             r"^UNAUTHORIZED: ferry\.services .*admin token")
            self.assertEqual(r.stdout, b"")
        w.close()
        d.stop()
        # No token set at all: anyone who may call, the unix socket too.
        d, w = self.start(None, None, None)
        for addr in (d.addr, d.unix_addr):
            r = self.ferry(["services", "--json"], addr, 0)
            self.assertIn(SECRET_WORKER.encode(), r.stdout)
        # The help says who may list.
        r = self.ferry(["services", "--help"], None, 0)
        self.assertIn(b"admin_token", r.stdout)
