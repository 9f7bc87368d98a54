# SPDX-License-Identifier: MIT
"""Hole 5 of the hostile-peers issue: the service table that peers fill.

A worker that sent 5,000 REGISTERs got 4,093 of them (max_services 4096
less the built-ins), disconnected, and left them for good: a real worker's
REGISTER of `payments` then got OVERLOADED 'too many services' and its
callers UNKNOWN_SERVICE until ferryd restarted, because a service that
ever had a worker was never forgotten.

The bounds tested here (docs/reliability.md, "Tables a peer can fill"):

* one worker connection registers at most max_services_per_worker services
  (256 by default); a REGISTER past it gets ERROR OVERLOADED naming the
  key, on that REGISTER only: the connection stays and serves;
* many connections together are bounded by max_services;
* once their workers are gone, services with no request waiting and no
  traffic are forgotten after service_idle_forget_ms, and their stats
  leave ferry.services, /v1/services, /v1/stats and /metrics: a real
  worker can register afterwards;
* a service with a request still waiting for a worker, or disabled by an
  operator, is not forgotten.

Each test prints its figures on a line starting with "FIGURE".
"""
import json
import time

from ferrytest import (BUILTIN_SERVICES, ERROR, REGISTERED, REPLY, ROLE_WORKER, Conn,
                       FerryTestCase, IDEMPOTENT, describe, encode_register,
                       errname, parse_error, run_ferry)

NO_TOKEN = {"FERRY_TOKEN": ""}
BUILTINS = set(BUILTIN_SERVICES)
DEFAULT_PER_WORKER = 256
# A small ASan quarantine, so that memory freed by forgetting is reused
# and RSS says something.
SMALL_QUARANTINE = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
                                    "quarantine_size_mb=4"}


def figure(name, **values):
    text = " ".join(f"{k}={v}" for k, v in values.items())
    print(f"\nFIGURE {name}: {text}", flush=True)


class TestServiceTable(FerryTestCase):
    TIME_LIMIT = 120

    def register_many(self, c, names, credit=1, first_id=1):
        """Pipelines one REGISTER per name, then reads one answer each.
        Returns (accepted names, {name: (error name, message)})."""
        ids = {first_id + i: n for i, n in enumerate(names)}
        c.send(b"".join(encode_register(i, n, credit)
                        for i, n in ids.items()), timeout=30)
        accepted, refused = [], {}
        for _ in range(len(ids)):
            f = c.recv_frame(timeout=30)
            self.assertIn(f.id, ids, describe(f))
            name = ids.pop(f.id)
            if f.type == REGISTERED:
                accepted.append(name)
            elif f.type == ERROR:
                code, msg = parse_error(f.body)
                refused[name] = (errname(code), msg.decode())
            else:
                self.fail(f"REGISTER of {name} answered {describe(f)}")
        self.assertEqual(ids, {}, "answers missing")
        return accepted, refused

    def services(self, d):
        """{name: entry} of ferry.services, on the unix socket."""
        r = run_ferry(["services", "--json"], addr=d.unix_addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)
        return {s["name"]: s for s in json.loads(r.stdout)["services"]}

    def admin(self, d, *args):
        r = run_ferry(["admin"] + list(args), addr=d.unix_addr, env=NO_TOKEN)
        self.assertEqual(r.returncode, 0, r)

    def wait_until(self, what, cond, limit=20.0):
        """Polls cond() every 50 ms for at most limit seconds (a bound on
        the test, not a timing asserted); returns the seconds it took."""
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > limit:
                self.fail(f"not {what} after {limit} s")
            time.sleep(0.05)
        return time.monotonic() - t0

    def test_one_worker_cannot_fill_the_table(self):
        """The probe's 5,000 REGISTERs on one connection, defaults."""
        d = self.daemon(env=SMALL_QUARANTINE)
        rss0 = d.rss()
        w = self.conn(d, role=ROLE_WORKER, name="hostile")
        names = [f"h-{i:04d}" for i in range(5000)]
        accepted, refused = self.register_many(w, names)
        self.assertEqual(len(accepted), DEFAULT_PER_WORKER)
        self.assertEqual(accepted, names[:DEFAULT_PER_WORKER])
        self.assertEqual(len(refused), 5000 - DEFAULT_PER_WORKER)
        want = ("OVERLOADED", "too many services on one worker connection "
                "(max_services_per_worker 256)")
        self.assertEqual(set(refused.values()), {want})
        # The connection stays: registering a service it has again only
        # changes its credit, at the limit too, and it serves.
        w.register(names[0], credit=5, reg_id=9001)
        c = self.conn(d)
        c.send_request(1, names[0], b"q")
        f = w.recv_frame()
        self.assertEqual(describe(f)[:7], "REQUEST", describe(f))
        w.send_reply(f.id, b"served")
        self.assertReply(c.wait_for(1), b"served")
        # A real worker registers its service and serves.
        self.worker("tests/test_worker", "--addr", d.addr, "--service",
                    "payments", "--mode", "tag:paid", env=NO_TOKEN)
        self.assertReply(c.call(2, "payments", b"x"), b"paid:x")
        svcs = self.services(d)
        self.assertEqual(len(svcs), len(BUILTIN_SERVICES) + DEFAULT_PER_WORKER + 1)
        self.assertEqual(svcs[names[0]]["credit"], 5)
        self.assertNotIn(names[DEFAULT_PER_WORKER], svcs)
        figure("one_worker_5000_registers", accepted=len(accepted),
               refused=len(refused), services=len(svcs),
               rss_growth_kib=(d.rss() - rss0) // 1024)

    def test_gone_workers_leave_no_trace(self):
        """Many connections, each at the per-worker limit, fill the table;
        once they are gone it empties after the forget time, and a real
        worker registers."""
        forget_ms = 1000
        d = self.daemon("--max-services", "300",
                        "--max-services-per-worker", "100",
                        "--service-idle-forget-ms", str(forget_ms),
                        "--worker-wait-ms", "2500", env=SMALL_QUARANTINE)
        # Disabled before any worker exists: kept while disabled.
        self.admin(d, "disable", "reserved")
        rss0 = d.rss()
        hostile = []
        got = []
        for k in range(4):
            h = self.conn(d, role=ROLE_WORKER, name=f"hostile-{k}")
            hostile.append(h)
            got.append(self.register_many(
                h, [f"h{k}-{i:03d}" for i in range(100)]))
        # 300 less the built-ins and 'reserved' fit.
        third = 300 - len(BUILTIN_SERVICES) - 1 - 200
        self.assertEqual([len(a) for a, _ in got], [100, 100, third, 0])
        self.assertEqual([len(r) for _, r in got], [0, 0, 100 - third, 100])
        full = ("OVERLOADED", "too many services (max_services 300)")
        self.assertEqual(set(got[2][1].values()), {full})
        self.assertEqual(set(got[3][1].values()), {full})
        # While they are connected the table is full: the bound holds.
        real = self.conn(d, role=ROLE_WORKER, name="real")
        _, refused = self.register_many(real, ["payments"])
        self.assertEqual(refused, {"payments": full})
        real.close()
        self.assertEqual(len(self.services(d)), 300)
        rss_full = d.rss()
        # A request that waits for a worker keeps its service: an
        # idempotent request at h0-001's worker, which then disconnects,
        # is retried, waits worker_wait_ms (2.5 s, longer than the forget
        # time) and ends NO_WORKER: its service was remembered as one
        # that had workers.
        c = self.conn(d)
        c.send_request(7, "h0-001", b"kept", deadline_ms=10000,
                       flags=IDEMPOTENT)
        f = hostile[0].recv_frame()
        self.assertEqual(describe(f)[:7], "REQUEST", describe(f))
        t0 = time.monotonic()
        for h in hostile:
            h.close()
        left = BUILTINS | {"reserved"}
        self.wait_until("forgotten but h0-001",
                        lambda: set(self.services(d)) - {"h0-001"} == left)
        took_idle = time.monotonic() - t0
        f = c.wait_for(7, timeout=15)
        self.assertEqual(describe(f)[:5], "ERROR", describe(f))
        self.assertEqual(errname(parse_error(f.body)[0]), "NO_WORKER",
                         describe(f))
        self.wait_until("forgotten", lambda: set(self.services(d)) == left)
        took_waited = time.monotonic() - t0
        svcs = self.services(d)
        self.assertTrue(svcs["reserved"]["disabled"])
        r = d.http("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertNotIn(b'service="h', r.body)
        self.assertIn(b'ferry_service_disabled{service="reserved"} 1',
                      r.body)
        r = d.http("GET", "/v1/services")
        self.assertEqual({s["name"] for s in r.json()["services"]}, left)
        r = d.http("GET", "/v1/stats")
        self.assertEqual({s["name"] for s in r.json()["services"]}, left)
        # A forgotten service is unknown again: no worker ever served it.
        f = c.call(8, "h1-005", b"x", deadline_ms=300, timeout=10)
        self.assertEqual(errname(parse_error(f.body)[0]), "UNKNOWN_SERVICE",
                         describe(f))
        self.assertEqual(set(self.services(d)), left)
        rss_after = d.rss()
        # The real worker registers now and serves.
        pay = self.worker("tests/test_worker", "--addr", d.addr,
                          "--service", "payments", "--mode", "tag:paid",
                          env=NO_TOKEN)
        self.assertReply(c.call(9, "payments", b"y"), b"paid:y")
        # A service disabled after its worker left is not forgotten: it
        # outlives 'marker', which became idle after it.
        self.admin(d, "disable", "payments")
        pay.stop()
        self.wait_until("payments without worker",
                        lambda: self.services(d)["payments"]["workers"] == [])
        m = self.conn(d, role=ROLE_WORKER, name="marker")
        m.register("marker")
        m.close()
        self.wait_until("marker forgotten",
                        lambda: "marker" not in self.services(d))
        svcs = self.services(d)
        self.assertTrue(svcs["payments"]["disabled"])
        self.assertEqual(svcs["payments"]["requests"], 1)
        # Enabled, it is forgotten like any idle service.
        self.admin(d, "enable", "payments")
        self.wait_until("payments forgotten",
                        lambda: "payments" not in self.services(d))
        # 'reserved', enabled, never had a worker: forgotten at once.
        self.admin(d, "enable", "reserved")
        self.assertEqual(set(self.services(d)), BUILTINS)
        figure("many_workers_then_gone", accepted=sum(len(a) for a, _ in got),
               refused=sum(len(r) for _, r in got),
               forget_ms=forget_ms,
               gone_to_forgotten_s=f"{took_idle:.2f}",
               with_a_waiting_request_s=f"{took_waited:.2f}",
               rss_empty_full_after_kib=f"{rss0 // 1024}/"
                                        f"{rss_full // 1024}/"
                                        f"{rss_after // 1024}")
