#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An echo prober for the fault tests, run as its own process so that
the test's threads never delay it: one request at a time to ferryd's
built-in echo, each with a deadline; a reply that has not come by the
deadline counts as DEADLINE (the client's view, with no slack: what
protocol.md promises a caller). At the end it prints one JSON line:

  {"sent": N, "ok": N, "DEADLINE": N, "errors": {...}, "max_ms": X}

  prober.py ADDR SECONDS DEADLINE_MS
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ferrytest import (ERROR, REPLY, Conn, errname,  # noqa: E402
                       parse_error)


def main():
    addr, seconds, deadline_ms = sys.argv[1], float(sys.argv[2]), \
        int(sys.argv[3])
    c = Conn(addr, timeout=10)
    c.hello(name="prober")
    out = {"sent": 0, "ok": 0, "DEADLINE": 0, "errors": {}, "max_ms": 0.0}
    end = time.monotonic() + seconds
    fid = 0
    while time.monotonic() < end:
        fid += 1
        payload = b"probe %d" % fid
        t0 = time.monotonic()
        c.send_request(fid, "echo", payload, deadline_ms=deadline_ms)
        out["sent"] += 1
        try:
            f = c.wait_for(fid, timeout=deadline_ms / 1000)
        except TimeoutError:
            out["DEADLINE"] += 1
            # Its late answer, when it comes, is left in c.stray.
            continue
        ms = (time.monotonic() - t0) * 1000
        out["max_ms"] = max(out["max_ms"], round(ms, 1))
        if f.type == REPLY and f.body == payload:
            out["ok"] += 1
        else:
            name = errname(parse_error(f.body)[0]) if f.type == ERROR \
                else f"type {f.type}"
            out["errors"][name] = out["errors"].get(name, 0) + 1
        c.stray = []
    c.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
