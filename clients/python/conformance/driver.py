#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The conformance driver of the Python client (tests/conformance/DRIVER.md).

    driver.py caller      JSON commands on stdin, one answer line each
    driver.py worker --addr A --service S --credit N [...]

It only uses what the ferry package offers its users, plus its codec for
decode/encode: errors are reported from the exception's own .name, .code
and .message.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

import ferry  # noqa: E402
from ferry import _proto as P  # noqa: E402

_out_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def failure(e: BaseException) -> dict[str, Any]:
    if isinstance(e, ferry.FerryError):
        return {"ok": False, "error": e.name, "code": e.code,
                "message": e.message, "class": type(e).__name__}
    if isinstance(e, P.WireError):
        return {"ok": False, "error": e.name, "code": e.code,
                "message": e.detail, "class": "WireError"}
    return {"ok": False, "error": type(e).__name__, "message": str(e)}


def gen_payload(spec: dict[str, int]) -> bytes:
    n, seed = spec["size"], spec.get("seed", 0)
    return bytes((i * 7 + seed) % 251 for i in range(n))


# ------------------------------------------------------------ codec

def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def decode(cmd: dict[str, Any]) -> dict[str, Any]:
    wire = bytes.fromhex(cmd["hex"])
    max_body = cmd.get("max_frame") or P.DEFAULT_MAX_BODY
    try:
        f, _ = P.decode_frame(wire, max_body)
        if f is None:
            return {"ok": False, "error": "INCOMPLETE"}
        d = P.parse_body(f)
    except P.WireError as e:
        return failure(e)
    t = f.type
    fields: dict[str, Any] = {}
    if t == P.HELLO:
        fields = {"version": d["version"], "role": d["role"],
                  "heartbeat_ms": d["heartbeat_ms"], "name": _s(d["name"]),
                  "token": _s(d["token"])}
        if "max_frame" in d:
            fields["max_frame"] = d["max_frame"]
    elif t == P.HELLO_OK:
        fields = {"version": d["version"], "heartbeat_ms": d["heartbeat_ms"],
                  "max_frame": d["max_frame"], "name": _s(d["name"])}
        for k in ("max_deadline_ms", "default_deadline_ms"):
            if k in d:
                fields[k] = d[k]
    elif t == P.REQUEST:
        fields = {"deadline_ms": d["deadline_ms"],
                  "service": _s(d["service"]), "key_hex": d["key"].hex(),
                  "payload_hex": d["payload"].hex()}
    elif t == P.REPLY:
        fields = {"payload_hex": d["payload"].hex()}
    elif t == P.ERROR:
        fields = {"code": d["code"],
                  "code_name": ferry.errname(d["code"]),
                  "message": _s(d["message"])}
    elif t == P.REGISTER:
        fields = {"credit": d["credit"], "service": _s(d["service"])}
    return {"ok": True, "type": P.TYPE_NAMES[t], "flags": f.flags,
            "id": str(f.id), "fields": fields}


def encode(cmd: dict[str, Any]) -> dict[str, Any]:
    t = P.TYPES[cmd["type"]]
    fid = int(cmd.get("id", "0"))
    flags = cmd.get("flags", 0)
    fl = cmd.get("fields", {})
    if t == P.HELLO:
        b = P.encode_hello(fl["role"], fl["heartbeat_ms"], fl["name"],
                           fl["token"], fl["version"],
                           fl.get("max_frame", 0))
    elif t == P.HELLO_OK:
        b = P.encode_hello_ok(fl["version"], fl["heartbeat_ms"],
                              fl["max_frame"], fl["name"],
                              fl.get("max_deadline_ms", 0),
                              fl.get("default_deadline_ms", 0))
    elif t == P.REQUEST:
        b = P.encode_request(fid, fl["service"],
                             bytes.fromhex(fl["payload_hex"]),
                             fl["deadline_ms"], bytes.fromhex(fl["key_hex"]),
                             flags)
    elif t == P.REPLY:
        b = P.encode_reply(fid, bytes.fromhex(fl["payload_hex"]))
    elif t == P.ERROR:
        b = P.encode_error(fid, fl["code"], fl["message"])
    elif t == P.REGISTER:
        b = P.encode_register(fid, fl["service"], fl["credit"])
    else:
        b = P.encode_empty(t, fid)
    if flags and t != P.REQUEST:
        b = b[:5] + bytes([flags]) + b[6:]
    return {"ok": True, "hex": b.hex()}


# ----------------------------------------------------------- caller

class BadCommand(Exception):
    """A command the driver cannot run (DRIVER.md: BAD_COMMAND)."""


class Caller:
    def __init__(self) -> None:
        self.client: ferry.Client | None = None
        self.tags: dict[str, tuple[ferry.CallFuture, bytes | None]] = {}

    def need(self) -> ferry.Client:
        if self.client is None:
            raise BadCommand("no client yet (connect first)")
        return self.client

    def tag(self, cmd: dict[str, Any]) -> tuple[ferry.CallFuture,
                                                 bytes | None]:
        t = self.tags.get(cmd.get("tag", ""))
        if t is None:
            raise BadCommand(f"unknown tag {cmd.get('tag')!r}")
        return t

    @staticmethod
    def call_args(cmd: dict[str, Any]) -> tuple[bytes, bytes | None,
                                                dict[str, Any]]:
        gen = None
        if "payload_gen" in cmd:
            payload = gen = gen_payload(cmd["payload_gen"])
        else:
            payload = bytes.fromhex(cmd.get("payload_hex", ""))
        kw: dict[str, Any] = {
            "deadline_ms": cmd.get("deadline_ms"),
            "idempotent": bool(cmd.get("idempotent", False)),
        }
        if cmd.get("key_hex"):
            kw["key"] = bytes.fromhex(cmd["key_hex"])
        return payload, gen, kw

    @staticmethod
    def result(reply: bytes, gen: bytes | None) -> dict[str, Any]:
        if gen is not None:
            return {"ok": True, "reply_len": len(reply),
                    "echo_ok": reply == gen}
        return {"ok": True, "reply_hex": reply.hex()}

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd.get("op")
        if op == "decode":
            return decode(cmd)
        if op == "encode":
            return encode(cmd)
        if op == "connect":
            if self.client is not None:
                self.client.close()
                self.client = None
            kw: dict[str, Any] = {}
            if "heartbeat_ms" in cmd:
                kw["heartbeat_ms"] = cmd["heartbeat_ms"]
            if "max_frame" in cmd:
                kw["max_frame"] = cmd["max_frame"]
            self.client = ferry.Client(cmd["addr"], token=cmd.get("token"),
                                       name=cmd.get("name", "conformance"),
                                       **kw)
            return {"ok": True}
        if op == "call":
            payload, gen, kw = self.call_args(cmd)
            reply = self.need().call(cmd["service"], payload, **kw)
            return self.result(reply, gen)
        if op == "send":
            if cmd.get("tag") in self.tags:
                raise BadCommand(f"tag {cmd['tag']!r} is busy")
            payload, gen, kw = self.call_args(cmd)
            fut = self.need().submit(cmd["service"], payload, **kw)
            self.tags[cmd["tag"]] = (fut, gen)
            return {"ok": True}
        if op == "cancel":
            fut, _ = self.tag(cmd)
            fut.cancel()
            return {"ok": True}
        if op == "await":
            fut, gen = self.tag(cmd)
            timeout = cmd.get("timeout_ms", 30000) / 1000.0
            try:
                reply = fut.result(timeout)
            except TimeoutError:
                return {"ok": False, "error": "HUNG"}
            except ferry.FerryError:
                del self.tags[cmd["tag"]]
                raise
            del self.tags[cmd["tag"]]
            return self.result(reply, gen)
        if op == "pipeline":
            return self.pipeline(cmd)
        if op == "stats":
            return {"ok": True, "connects": self.need().connects}
        if op == "servant":
            return {"ok": True, **servant(self.need(), cmd)}
        if op == "cluster":
            return {"ok": True, **self.need().cluster()}
        if op == "close":
            if self.client is not None:
                self.client.close()
                self.client = None
            return {"ok": True}
        if op == "quit":
            return {"ok": True}
        raise BadCommand(f"unknown op {op!r}")

    def pipeline(self, cmd: dict[str, Any]) -> dict[str, Any]:
        c = self.need()
        size = cmd["payload_size"]
        payloads = [str(i).encode().ljust(size, b"x")
                    for i in range(cmd["count"])]
        futs = [c.submit(cmd["service"], p,
                         deadline_ms=cmd.get("deadline_ms"))
                for p in payloads]
        replied = mismatched = 0
        errors: dict[str, int] = {}
        for p, f in zip(payloads, futs):
            try:
                r = f.result()
            except ferry.FerryError as e:
                errors[e.name] = errors.get(e.name, 0) + 1
                continue
            replied += 1
            if r != p:
                mismatched += 1
        return {"ok": True, "replied": replied, "mismatched": mismatched,
                "errors": errors}


# --------------------------------------------------------- servants

def _item(i: ferry.CacheItem | None) -> dict[str, Any]:
    if i is None:
        return {"status": "NOT_FOUND"}
    return {"status": "OK", "flags": i.flags, "cas": str(i.cas),
            "value_hex": i.value.hex()}


def _entry(e: Any, with_key: bool = True) -> dict[str, Any]:
    d = {"key_hex": e.key.hex()} if with_key else {}
    d.update({"create_rev": str(e.create_rev), "mod_rev": str(e.mod_rev),
              "version": str(e.version), "value_hex": e.value.hex()})
    return d


def servant(c: ferry.Client, cmd: dict[str, Any]) -> dict[str, Any]:
    """DRIVER.md's servant command through client.cache / kv / id /
    queue / topic."""
    service, _, op = cmd.get("call", "").partition(".")
    a = cmd.get("args", {})
    dl = {"deadline_ms": cmd.get("deadline_ms")}
    key = bytes.fromhex(a.get("key_hex", ""))
    value = bytes.fromhex(a.get("value_hex", ""))
    if service == "cache":
        h = c.cache
        store = {"flags": a.get("flags", 0), "ttl_ms": a.get("ttl_ms", 0)}
        if op in ("get", "gat"):
            return _item(h.get(key, **dl) if op == "get"
                         else h.gat(key, a.get("ttl_ms", 0), **dl))
        if op == "get_many":
            keys = [bytes.fromhex(k) for k in a.get("keys_hex", [])]
            return {"status": "OK",
                    "items": [_item(i) for i in h.get_many(keys, **dl)]}
        if op in ("set", "add", "replace", "append", "prepend", "cas"):
            if op == "cas":
                w = h.cas(key, value, int(a.get("cas", "0")), **store, **dl)
            elif op in ("append", "prepend"):
                w = getattr(h, op)(key, value, **dl)
            else:
                w = getattr(h, op)(key, value, **store, **dl)
            return ({"status": w.status, "cas": str(w.cas)} if w
                    else {"status": w.status})
        if op in ("incr", "decr"):
            v = getattr(h, op)(key, int(a.get("delta", "1")), **dl)
            return ({"status": "NOT_FOUND"} if v is None
                    else {"status": "OK", "value": str(v)})
        if op in ("delete", "touch", "flush"):
            ok = (h.delete(key, **dl) if op == "delete" else
                  h.touch(key, a.get("ttl_ms", 0), **dl) if op == "touch"
                  else h.flush(a.get("delay_ms", 0), **dl) is None)
            return {"status": "OK" if ok else "NOT_FOUND"}
    elif service == "kv":
        h = c.kv
        rev = int(a.get("rev", "0"))
        cond = a.get("cond", "any")
        end = bytes.fromhex(a["end_hex"]) if "end_hex" in a else None
        if op == "get":
            g = h.get_rev(key, **dl)
            d = {"status": "OK" if g.entry else "NOT_FOUND",
                 "rev": str(g.rev)}
            if g.entry:
                d.update(_entry(g.entry, False))
            return d
        if op in ("put", "delete"):
            mod = rev if cond == "mod_rev" else None
            w = (h.put(key, value, if_absent=cond == "absent",
                       if_mod_rev=mod, **dl) if op == "put"
                 else h.delete(key, if_mod_rev=mod, **dl))
            return {"status": w.status, "rev": str(w.rev)}
        if op == "range":
            r = h.range(key, end, limit=a.get("limit", 0),
                        keys_only=bool(a.get("keys_only")), **dl)
            return {"status": "OK", "rev": str(r.rev), "more": r.more,
                    "items": [_entry(e) for e in r.items]}
        if op == "count":
            return {"status": "OK", "count": str(h.count(key, end, **dl))}
        if op == "watch":
            w = h.watch(key, prefix=bool(a.get("prefix")),
                        from_rev=int(a.get("from_rev", "0")),
                        wait_ms=a.get("wait_ms", 0),
                        max_events=a.get("max_events", 0), **dl)
            return {"status": "OK", "rev": str(w.rev),
                    "events": [{"type": e.type, **_entry(e)}
                               for e in w.events]}
    elif service == "queue":
        return queue_call(c, op, a, dl)
    elif service == "topic":
        return topic_call(c, op, a, dl)
    elif service == "id":
        if op == "next":
            return {"status": "OK", "ids": [str(i) for i in c.id.next(
                a.get("count", 1), **dl)]}
        if op == "decode":
            p = c.id.decode(int(a.get("id", "0")), **dl)
            return {"status": "OK", "unix_ms": str(p.unix_ms),
                    "node": p.node, "seq": p.seq}
    raise BadCommand(f"unknown servant call {cmd.get('call')!r}")


def _peek_entry(e: ferry.PeekEntry) -> dict[str, Any]:
    return {"id": str(e.id), "attempts": e.attempts, "priority": e.priority,
            "state": e.state, "age_ms": str(e.age_ms),
            "reason_hex": e.reason.hex(), "payload_hex": e.payload.hex()}


def queue_call(c: ferry.Client, op: str, a: dict[str, Any],
               dl: dict[str, Any]) -> dict[str, Any]:
    """DRIVER.md's queue.* servant calls through client.queue."""
    h = c.queue
    q = a.get("queue")
    job = {"id": int(a.get("id", "0")), "token": int(a.get("token", "0"))}
    if op == "push":
        r = h.push(q, bytes.fromhex(a.get("payload_hex", "")),
                   priority=a.get("priority", 0),
                   delay_ms=a.get("delay_ms", 0),
                   visibility_ms=a.get("visibility_ms", 0),
                   max_deliveries=a.get("max_deliveries", 0),
                   dedup=(bytes.fromhex(a["dedup_hex"]) if "dedup_hex" in a
                          else None), **dl)
        return {"status": "OK", "id": str(r.id), "dup": r.dup}
    if op == "reserve":
        j = h.reserve(q, wait_ms=a.get("wait_ms", 0),
                      visibility_ms=a.get("visibility_ms", 0), **dl)
        if j is None:
            return {"status": "EMPTY"}
        return {"status": "OK", "id": str(j.id), "token": str(j.token),
                "attempts": j.attempts, "priority": j.priority,
                "payload_hex": j.payload.hex()}
    if op in ("ack", "release", "touch", "bury"):
        if op == "ack":
            o = h.ack(q, **job, **dl)
        elif op == "release":
            o = h.release(q, **job, delay_ms=a.get("delay_ms", 0),
                          backoff=bool(a.get("backoff")), **dl)
        elif op == "touch":
            o = h.touch(q, **job, visibility_ms=a.get("visibility_ms", 0),
                        **dl)
        else:
            o = h.bury(q, **job, reason=bytes.fromhex(a.get("reason_hex",
                                                             "")), **dl)
        d: dict[str, Any] = {"status": o.status}
        if op == "touch" and o:
            d["visibility_ms"] = o.visibility_ms
        return d
    if op == "peek":
        es = h.peek(q, a.get("which", "ready"), a.get("limit", 10), **dl)
        return ({"status": "NOT_FOUND"} if es is None else
                {"status": "OK", "entries": [_peek_entry(e) for e in es]})
    if op in ("stats", "configure"):
        j = (h.stats(q, **dl) if op == "stats"
             else h.configure(q, **a.get("settings", {}), **dl))
        return ({"status": "NOT_FOUND"} if j is None else
                {"status": "OK", ("stats" if op == "stats" else "settings"):
                 j})
    if op in ("redrive", "purge"):
        n = (h.redrive(q, a.get("limit", 0), **dl) if op == "redrive"
             else h.purge(q, **dl))
        return ({"status": "NOT_FOUND"} if n is None else
                {"status": "OK",
                 ("moved" if op == "redrive" else "removed"): str(n)})
    if op in ("pause", "resume", "delete"):
        ok = getattr(h, op)(q, **dl)
        return {"status": "OK" if ok else "NOT_FOUND"}
    raise BadCommand(f"unknown queue call {op!r}")


def topic_call(c: ferry.Client, op: str, a: dict[str, Any],
               dl: dict[str, Any]) -> dict[str, Any]:
    """DRIVER.md's topic.* servant calls through client.topic."""
    h = c.topic
    sub = int(a["sub_id"]) if "sub_id" in a else None
    if op == "publish":
        n = h.publish(a.get("subject", ""),
                      bytes.fromhex(a.get("message_hex", "")), **dl)
        return {"status": "OK", "receivers": n}
    if op == "subscribe":
        s = h.subscribe(a.get("pattern", ""), a.get("group"),
                        a.get("max_pending", 0),
                        a.get("policy", "drop_oldest"), **dl)
        return {"status": "OK", "sub_id": str(s)}
    if op == "poll":
        got = h.poll(sub or 0, a.get("wait_ms", 0), a.get("max_msgs", 0),
                     **dl)
        if got is None:
            return {"status": "NOT_FOUND"}
        d: dict[str, Any] = {"status": "OK" if got.messages else "EMPTY",
                             "dropped": str(got.dropped)}
        if got.messages:
            d["messages"] = [{"seq": str(m.seq), "subject": m.subject,
                              "payload_hex": m.payload.hex()}
                             for m in got.messages]
        return d
    if op == "unsubscribe":
        return {"status": "OK" if h.unsubscribe(sub or 0, **dl)
                else "NOT_FOUND"}
    if op == "stats":
        st = h.stats(sub, **dl)
        return ({"status": "NOT_FOUND"} if st is None
                else {"status": "OK", "stats": st})
    raise BadCommand(f"unknown topic call {op!r}")


def run_caller() -> int:
    caller = Caller()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = {}
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise BadCommand("not a JSON object")
            ans = caller.handle(cmd)
        except json.JSONDecodeError as e:
            ans = {"ok": False, "error": "BAD_COMMAND",
                   "message": f"not JSON: {e}"}
        except BadCommand as e:
            ans = {"ok": False, "error": "BAD_COMMAND", "message": str(e)}
        except (ferry.FerryError, P.WireError) as e:
            ans = failure(e)
        except Exception as e:  # noqa: BLE001
            ans = {"ok": False, "error": "BAD_COMMAND",
                   "message": f"{type(e).__name__}: {e}"}
        emit(ans)
        if cmd.get("op") == "quit":
            break
    if caller.client is not None:
        caller.client.close()
    return 0


# ----------------------------------------------------------- worker

def run_worker(argv: list[str]) -> int:
    addr = None
    token = None
    name = "conformance-python"
    heartbeat = None
    services: list[list[Any]] = []
    i = 0
    while i < len(argv):
        a, v = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        if v is None:
            print(f"driver: {a} needs a value", file=sys.stderr)
            return 2
        if a == "--addr":
            addr = v
        elif a == "--service":
            services.append([v, 1])
        elif a == "--credit":
            if not services:
                print("driver: --credit before --service", file=sys.stderr)
                return 2
            services[-1][1] = int(v)
        elif a == "--token":
            token = v
        elif a == "--name":
            name = v
        elif a == "--heartbeat-ms":
            heartbeat = int(v)
        else:
            print(f"driver: unknown option {a}", file=sys.stderr)
            return 2
        i += 2
    kw: dict[str, Any] = {}
    if heartbeat is not None:
        kw["heartbeat_ms"] = heartbeat
    w = ferry.Worker(addr, token=token, name=name, **kw)

    hanging: set[ferry.Job] = set()

    def on_stop(_: ferry.Worker) -> None:
        # A drain waits for the jobs that will be answered, not for hang.
        for job in list(hanging):
            job.drop()

    def on_end(job: ferry.Job) -> None:
        emit({"event": "end", "id": str(job.id), "held": w.held})

    def on_cancel(job: ferry.Job) -> None:
        emit({"event": "cancel", "id": str(job.id)})

    def handler(job: ferry.Job) -> bytes | None:
        ev = {"event": "start", "id": str(job.id), "service": job.service,
              "payload_hex": job.payload[:1024].hex(), "held": w.held}
        if len(job.payload) > 1024:
            ev["payload_len"] = len(job.payload)
        emit(ev)
        job.on_cancel(on_cancel)
        job.add_done_callback(on_end)
        p = job.payload
        if p.startswith(b"sleep:"):
            _, ms, rest = (p.split(b":", 2) + [b""])[:3]
            job.defer()
            t = threading.Timer(int(ms) / 1000.0, job.reply, args=(rest,))
            t.daemon = True
            t.start()
            return None
        if p.startswith(b"fail:"):
            raise ferry.WorkerError(message=p[5:].decode("utf-8",
                                                         "replace"))
        if p.startswith(b"invalid:"):
            raise ferry.InvalidArgumentError(
                message=p[8:].decode("utf-8", "replace"))
        if p == b"hang":
            job.defer()
            hanging.add(job)
            job.add_done_callback(hanging.discard)
            return None
        if p == b"exit":
            os._exit(3)
        if p == b"name":
            return name.encode()
        if p.startswith(b"size:"):
            return b"x" * int(p[5:])
        return p

    credit_total = 0
    for svc, credit in services:
        w.register(svc, handler, credit)
        credit_total += credit

    def ready(_: ferry.Worker) -> None:
        emit({"event": "ready"})

    try:
        w.run(ready, on_stop)
    except ferry.FerryError as e:
        emit({"event": "failed", "error": e.name, "code": e.code,
              "message": e.message})
        return 1
    emit({"event": "exit", "handled": w.handled})
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("caller", "worker"):
        print("usage: driver.py caller | driver.py worker --addr A "
              "--service S --credit N ...", file=sys.stderr)
        return 2
    if sys.argv[1] == "caller":
        return run_caller()
    return run_worker(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
