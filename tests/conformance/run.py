# SPDX-License-Identifier: MIT
"""The conformance suite: plays tests/conformance/scenarios/*.json against a
real ferryd with one client's driver (tests/conformance/DRIVER.md).

    python3 tests/conformance/run.py --client c|python|node|php
                                     [--scenario NAME]... [-v] [--list]
                                     [--require-driver]

Each scenario gets its own ferryd ($FERRY_BIN/ferryd, a free port, a data
folder of its own, HTTP off) and its own driver processes; everything this
starts is stopped by PID when the scenario ends, whatever happened. One
line per scenario ("ok NAME" or "FAIL NAME: why" with the tails of the
logs), then "RESULT passed=N failed=M"; the exit status is 1 when a
scenario failed. A client whose driver does not exist yet gets one line
saying so and "RESULT passed=0 failed=0" (exit 0), or with
--require-driver "RESULT passed=0 failed=1" (exit 1).

Standard library only: scenarios are data, the runner only starts
processes, sends commands and compares answers (README.md has the format).
"""
import argparse
import copy
import glob
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# How each client's driver is started; the file that must exist first.
DRIVERS = {
    "c": (lambda b: [os.path.join(b, "tests", "ferry-conformance-driver")],
          lambda b: os.path.join(b, "tests", "ferry-conformance-driver")),
    "python": (lambda b: ["python3", os.path.join(
        ROOT, "clients/python/conformance/driver.py")],
        lambda b: os.path.join(ROOT, "clients/python/conformance/driver.py")),
    "node": (lambda b: ["node", os.path.join(
        ROOT, "clients/node/conformance/driver.js")],
        lambda b: os.path.join(ROOT, "clients/node/conformance/driver.js")),
    "php": (lambda b: ["php", os.path.join(
        ROOT, "clients/php/conformance/driver.php")],
        lambda b: os.path.join(ROOT, "clients/php/conformance/driver.php")),
}

STEP_TIMEOUT_S = 30.0      # a step without its own timeout_s
SCENARIO_TIMEOUT_S = 60.0  # a scenario without its own timeout_s
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")
# Answers that are failures of the driver, not ferry errors: no code.
DRIVER_ERRORS = ("INCOMPLETE", "HUNG", "BAD_COMMAND")


class Failure(Exception):
    """A scenario step did not get what the scenario expects."""


def ferry_bin():
    return os.path.abspath(os.environ.get("FERRY_BIN")
                           or os.path.join(ROOT, "build", "asan"))


def error_codes():
    """Name -> code, from the one list in include/ferry.h."""
    with open(os.path.join(ROOT, "include", "ferry.h"),
              encoding="utf-8") as f:
        text = f.read()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"X\((\w+), (\d+),", text)}


ERROR_CODES = error_codes()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def stop_proc(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after timeout; by PID, only ours."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    except ProcessLookupError:
        pass
    return proc.returncode


def tail(path, n=15):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-n:])


def sanitizer_report(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 2000]
    return None


# ---------------------------------------------------------------- ferryd

class Ferryd:
    """One ferryd on a free loopback port, in a folder of its own."""

    def __init__(self, tmp, options):
        self.tmp = tmp
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.unix_addr = "unix:" + os.path.join(tmp, "ferryd.sock")
        self.log_path = os.path.join(tmp, "ferryd.log")
        self.args = []
        for key, value in options.items():
            self.args += ["--" + key.replace("_", "-"), str(value)]
        self.proc = None
        self.stopped = False
        self.starts = 0

    def start(self, timeout=15.0):
        cmd = [os.path.join(ferry_bin(), "ferryd"), "--listen", self.addr,
               "--listen", self.unix_addr, "--http", "off",
               "--data-dir", self.tmp, "--run-dir", self.tmp] + self.args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd=self.tmp,
                                     env=child_env())
        log.close()
        self.stopped = False
        self.starts += 1
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failure(f"ferryd exited with {self.proc.returncode} "
                              f"at start: {' '.join(cmd)}")
            if self.answers_hello():
                return
            time.sleep(0.05)
        raise Failure(f"ferryd not ready after {timeout} s")

    def answers_hello(self):
        """Whether ferryd answers a version-1 caller HELLO (with HELLO_OK
        or ERROR: either way it is up)."""
        body = struct.pack(">HBBIH", 1, 1, 0, 0, 0) + struct.pack(">H", 0)
        frame = struct.pack(">IBBHQ", len(body), 1, 0, 0, 0) + body
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=2) as s:
                s.sendall(frame)
                head = b""
                while len(head) < 16:
                    got = s.recv(16 - len(head))
                    if not got:
                        return False
                    head += got
                return head[4] in (2, 5)
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            if self.stopped:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.stopped = False
            stop_proc(self.proc, 10.0)

    def signal(self, name):
        sig = getattr(signal, name)
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------- drivers

class Driver:
    """A driver process; its stdout lines go to a queue read by a thread."""

    def __init__(self, label, cmd, tmp, verbose):
        self.label = label
        self.verbose = verbose
        self.err_path = os.path.join(tmp, f"{label}.stderr")
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err,
                                     cwd=tmp, env=child_env())
        err.close()
        self.lines = queue.Queue()
        self.pending = None  # when the unanswered command was sent
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if self.verbose:
                print(f"    {self.label} > {line[:300]}", flush=True)
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout):
        """The next stdout line, None at end of stream; Failure on time."""
        try:
            return self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise Failure(f"{self.label}: nothing on stdout in "
                          f"{timeout:.1f} s") from None

    def stop(self, timeout=5.0):
        return stop_proc(self.proc, timeout)


class Caller(Driver):
    def command(self, cmd, timeout):
        self.send(cmd)
        return self.receive(timeout)

    def send(self, cmd):
        line = json.dumps(cmd)
        if self.verbose:
            print(f"    {self.label} < {line[:300]}", flush=True)
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise Failure(f"{self.label}: driver is gone "
                          f"(exit {self.proc.poll()})") from None

    def receive(self, timeout):
        got = self.next_line(timeout)
        if got is None:
            raise Failure(f"{self.label}: driver exited "
                          f"({self.proc.wait(5)}) without an answer")
        try:
            answer = json.loads(got)
        except ValueError:
            raise Failure(f"{self.label}: not JSON: {got[:200]}") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise Failure(f"{self.label}: answer without ok: {got[:200]}")
        return answer

    def quit(self):
        """quit, then the driver must exit 0 by itself."""
        if self.proc.poll() is None:
            try:
                if self.pending is not None:
                    self.receive(10.0)
                self.command({"op": "quit"}, 10.0)
            except Failure:
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                return self.stop()
        return self.proc.returncode


class Worker(Driver):
    def __init__(self, *args):
        super().__init__(*args)
        self.events = []
        self.cond = threading.Condition()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        while True:
            line = self.lines.get()
            with self.cond:
                if line is None:
                    self.events.append({"event": "<eof>"})
                    self.cond.notify_all()
                    return
                try:
                    ev = json.loads(line)
                except ValueError:
                    ev = {"event": "<bad>", "line": line}
                self.events.append(ev)
                self.cond.notify_all()

    def of_kind(self, kind):
        with self.cond:
            return [e for e in self.events if e.get("event") == kind]

    def wait_for(self, kind, count, timeout, match=None):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [e for e in self.events if e.get("event") == kind
                       and matches(e, as_hex(match or {})) is None]
                if len(got) >= count:
                    return got
                if any(e.get("event") == "<eof>" for e in self.events):
                    raise Failure(f"worker {self.label}: exited before "
                                  f"{count} '{kind}' event(s); events: "
                                  f"{summary(self.events)}")
                left = end - time.monotonic()
                if left <= 0:
                    raise Failure(f"worker {self.label}: {len(got)} of "
                                  f"{count} '{kind}' event(s) after "
                                  f"{timeout} s; events: "
                                  f"{summary(self.events)}")
                self.cond.wait(left)


def summary(events, n=12):
    kinds = [e.get("event", "?") for e in events]
    return ",".join(kinds[-n:]) or "none"


# ---------------------------------------------------------- expectations

OPERATORS = ("min", "max", "contains", "one_of", "increasing", "len", "gt")


def _dec(v):
    """A decimal string (a u64 in a servant answer) or int as an int."""
    return int(v) if isinstance(v, (int, str)) and str(v).isdigit() else None


_MISSING = object()


def lookup(answer, key):
    """answer[key], or for a dotted key ("ids.0", "items.1.value_hex") the
    field it walks to; _MISSING when there is none."""
    if key in answer:
        return answer[key]
    cur = answer
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and \
                int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def matches(answer, expect, path=""):
    """None when answer has what expect asks, else why not."""
    for key, want in expect.items():
        where = f"{path}{key}"
        got = lookup(answer, key)
        if got is _MISSING:
            return f"{where}: missing (want {json.dumps(want)})"
        if isinstance(want, dict) and want and set(want) <= set(OPERATORS):
            if "min" in want and not (isinstance(got, (int, float))
                                      and got >= want["min"]):
                return f"{where}: {got!r} < {want['min']}"
            if "max" in want and not (isinstance(got, (int, float))
                                      and got <= want["max"]):
                return f"{where}: {got!r} > {want['max']}"
            if "contains" in want and not (isinstance(got, str)
                                           and want["contains"] in got):
                return f"{where}: {got!r} lacks {want['contains']!r}"
            if "one_of" in want and got not in want["one_of"]:
                return f"{where}: {got!r} not one of {want['one_of']}"
            if "len" in want and not (isinstance(got, list)
                                      and len(got) == want["len"]):
                return f"{where}: {got!r} is not a list of {want['len']}"
            if want.get("increasing"):
                nums = [_dec(v) for v in got] if isinstance(got, list) \
                    else [None]
                if None in nums or any(a >= b for a, b in zip(nums,
                                                              nums[1:])):
                    return f"{where}: {got!r} not strictly increasing"
            if "gt" in want and not (_dec(got) is not None and
                                     _dec(want["gt"]) is not None and
                                     _dec(got) > _dec(want["gt"])):
                return f"{where}: {got!r} not above {want['gt']!r}"
        elif got != want:
            return (f"{where}: got {json.dumps(got)[:200]}, "
                    f"want {json.dumps(want)[:200]}")
    return None


def as_hex(expect):
    """The text forms of a scenario ("reply", "payload": UTF-8 text) as the
    hex fields drivers answer with ("reply_hex", "payload_hex")."""
    out = dict(expect)
    for text, hexkey in (("reply", "reply_hex"), ("payload", "payload_hex")):
        if text in out:
            out[hexkey] = out.pop(text).encode().hex()
    return out


def error_class(client, name):
    """The class a client raises for error NAME, in its language's idiom
    (DRIVER.md: Python and Node 'DeadlineError', PHP
    'Ferry\\Exception\\DeadlineException'); None for C, which has none."""
    camel = "".join(w.capitalize() for w in name.split("_"))
    if client in ("python", "node"):
        # WORKER_ERROR is WorkerError, not WorkerErrorError.
        return camel if camel.endswith("Error") else camel + "Error"
    if client == "php":
        return "Ferry\\Exception\\" + camel + "Exception"
    return None


def check_error_pair(answer, client=None):
    """A failure answer carries a known name and the code of that name,
    read by the driver from the client's error (DRIVER.md), and the class
    of the language's idiom."""
    if answer.get("ok") is not False:
        return None
    name = answer.get("error")
    if name in DRIVER_ERRORS:
        return None
    if name not in ERROR_CODES:
        return f"unknown error name {name!r}"
    if answer.get("code") != ERROR_CODES[name]:
        return (f"error {name} carries code {answer.get('code')!r}, "
                f"ferry.h says {ERROR_CODES[name]}")
    want = error_class(client, name)
    got = answer.get("class")
    if want is not None and not (isinstance(got, str) and
                                 (got == want or got.endswith("." + want))):
        return f"error {name} raised as class {got!r}, want {want!r}"
    return None


# -------------------------------------------------------------- scenario

RUNNER_KEYS = ("caller", "expect", "within_ms", "timeout_s", "repeat",
               "comment", "payload", "key", "background", "save")


def servant_args(args):
    """A servant command's args in text form ("key", "value", "end",
    ferry.queue's "payload", "dedup", "reason" and ferry.topic's
    "message": UTF-8; "keys": a list of them) as the hex fields drivers
    read. A queue's name, a topic's subject, pattern and group stay
    text."""
    out = dict(args)
    for text in ("key", "value", "end", "payload", "dedup", "reason",
                 "message"):
        if text in out:
            out[text + "_hex"] = out.pop(text).encode().hex()
    if "keys" in out:
        out["keys_hex"] = [k.encode().hex() for k in out.pop("keys")]
    return out


def use_vars(value, saved):
    """"${NAME}" (a whole string) becomes what a "save" kept as NAME."""
    if isinstance(value, str) and value.startswith("${") and \
            value.endswith("}"):
        name = value[2:-1]
        if name not in saved:
            raise Failure(f"{value}: nothing saved under {name!r}")
        return copy.deepcopy(saved[name])
    if isinstance(value, list):
        return [use_vars(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: use_vars(v, saved) for k, v in value.items()}
    return value


def substitute(value, i):
    """{i} in every string of value becomes i (for repeat)."""
    if isinstance(value, str):
        return value.replace("{i}", str(i))
    if isinstance(value, list):
        return [substitute(v, i) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, i) for k, v in value.items()}
    return value


class Run:
    """One scenario being played."""

    def __init__(self, client, scenario, verbose):
        self.client = client
        self.sc = scenario
        self.verbose = verbose
        self.tmp = tempfile.mkdtemp(prefix=f"ferry-conf-{scenario['name']}-")
        self.ferryd = Ferryd(self.tmp, scenario.get("ferryd", {}))
        self.callers = {}
        self.workers = {}
        self.saved = {}  # "save": answer fields kept for "${NAME}"
        self.end = time.monotonic() + scenario.get("timeout_s",
                                                   SCENARIO_TIMEOUT_S)

    def driver_cmd(self):
        return DRIVERS[self.client][0](ferry_bin())

    def left(self, step_timeout=None):
        left = self.end - time.monotonic()
        if left <= 0:
            raise Failure("scenario ran out of time")
        return min(left, step_timeout or STEP_TIMEOUT_S)

    def caller(self, name):
        if name not in self.callers:
            self.callers[name] = Caller(name, self.driver_cmd() + ["caller"],
                                        self.tmp, self.verbose)
        return self.callers[name]

    def play(self):
        self.ferryd.start()
        for n, step in enumerate(self.sc["steps"], 1):
            reps = step.get("repeat", 1)
            for i in range(reps):
                s = substitute(step, i) if reps > 1 else step
                try:
                    self.step(s)
                except Failure as e:
                    label = f"step {n}" + (f" (#{i})" if reps > 1 else "")
                    brief = {k: v for k, v in s.items() if k != "expect"}
                    raise Failure(f"{label} {json.dumps(brief)[:160]}: "
                                  f"{e}") from None

    def step(self, s):
        if "caller" in s:
            return self.step_caller(s)
        if "answer_of" in s:
            return self.step_answer(use_vars(s, self.saved),
                                    self.callers[s["answer_of"]])
        if "worker" in s:
            return self.step_worker(s)
        if "events" in s:
            return self.step_events(s)
        if "ferryd" in s:
            return self.step_ferryd(s["ferryd"])
        if "signal" in s:
            w = self.workers[s["to"]]
            os.kill(w.proc.pid, getattr(signal, s["signal"]))
            return None
        if "exit" in s:
            return self.step_exit(s)
        if "sleep_ms" in s:
            time.sleep(s["sleep_ms"] / 1000.0)
            return None
        if "ferryd_log" in s:
            return self.step_log(s["ferryd_log"])
        if "vectors" in s:
            return self.step_vectors(s)
        raise Failure(f"unknown step {s}")

    def step_caller(self, s):
        s = use_vars(s, self.saved)
        cmd = {k: copy.deepcopy(v) for k, v in s.items()
               if k not in RUNNER_KEYS}
        if cmd.get("op") == "servant":
            cmd["args"] = servant_args(cmd.get("args", {}))
        if "payload" in s:
            cmd["payload_hex"] = s["payload"].encode().hex()
        if "key" in s:
            cmd["key_hex"] = s["key"].encode().hex()
        if cmd.get("op") == "connect":
            cmd["addr"] = self.address(cmd.get("addr"))
        caller = self.caller(s["caller"])
        if caller.pending is not None:
            raise Failure(f"{caller.label}: a background command is still "
                          f"unanswered")
        caller.send(cmd)
        caller.pending = time.monotonic()
        if s.get("background"):
            return None  # answered by a later answer_of step
        return self.step_answer(s, caller)

    def step_answer(self, s, caller):
        """Reads the answer to the caller's last command and checks it."""
        if caller.pending is None:
            raise Failure(f"{caller.label}: no command to answer")
        answer = caller.receive(self.left(s.get("timeout_s")))
        took = (time.monotonic() - caller.pending) * 1000
        caller.pending = None
        why = check_error_pair(answer, self.client)
        if why is None and "expect" in s:
            why = matches(answer, as_hex(s["expect"]))
        if why is None and "within_ms" in s and took > s["within_ms"]:
            why = f"answered after {took:.0f} ms, not within {s['within_ms']}"
        if why is not None:
            raise Failure(f"{why}; answer {json.dumps(answer)[:300]}")
        for name, field in s.get("save", {}).items():
            got = lookup(answer, field)
            if got is _MISSING:
                raise Failure(f"save {name}: no {field!r} in the answer "
                              f"{json.dumps(answer)[:200]}")
            self.saved[name] = got
        return answer

    def address(self, addr):
        """ferryd's TCP address by default, "$unix" for its unix socket."""
        if addr is None:
            return self.ferryd.addr
        return self.ferryd.unix_addr if addr == "$unix" else addr

    def step_worker(self, s):
        name = s["worker"]
        cmd = self.driver_cmd() + ["worker", "--addr",
                                   self.address(s.get("addr"))]
        for svc in s["services"]:
            cmd += ["--service", svc["service"], "--credit",
                    str(svc.get("credit", 1))]
        cmd += ["--name", s.get("name", name)]
        if "token" in s:
            cmd += ["--token", s["token"]]
        if "heartbeat_ms" in s:
            cmd += ["--heartbeat-ms", str(s["heartbeat_ms"])]
        if name in self.workers:
            raise Failure(f"worker {name} started twice")
        w = Worker(name, cmd, self.tmp, self.verbose)
        self.workers[name] = w
        wait = s.get("wait", "ready")
        if wait:
            w.wait_for(wait, 1, self.left(s.get("timeout_s", 15)))

    def step_events(self, s):
        w = self.workers[s["events"]]
        kind = s["kind"]
        count = s.get("count", 1)
        if isinstance(count, int):
            got = w.wait_for(kind, count, self.left(s.get("timeout_s", 15)),
                             s.get("match"))
            if s.get("exactly") and len(got) != count:
                raise Failure(f"{len(got)} '{kind}' events, want {count}")
        else:
            got = [e for e in w.of_kind(kind)
                   if matches(e, as_hex(s.get("match", {}))) is None]
            why = matches({"count": len(got)}, {"count": count})
            if why:
                raise Failure(f"worker {w.label} '{kind}' events: {why}")
        for field, limit in s.get("max", {}).items():
            top = max((e.get(field, 0) for e in got), default=0)
            if top > limit:
                raise Failure(f"worker {w.label}: max {field} over "
                              f"'{kind}' events is {top} > {limit}")

    def step_ferryd(self, action):
        if action == "restart":
            self.ferryd.stop()
            self.ferryd.start()
        elif action == "stop":
            self.ferryd.stop()
        elif action == "start":
            self.ferryd.start()
        elif action in ("SIGSTOP", "SIGCONT"):
            self.ferryd.signal(action)
        else:
            raise Failure(f"unknown ferryd action {action}")

    def step_exit(self, s):
        w = self.workers[s["exit"]]
        try:
            rc = w.proc.wait(self.left(s.get("timeout_s", 15)))
        except subprocess.TimeoutExpired:
            raise Failure(f"worker {w.label} did not exit") from None
        if "status" in s and rc != s["status"]:
            raise Failure(f"worker {w.label} exited with {rc}, "
                          f"want {s['status']}")

    def step_log(self, s):
        end = time.monotonic() + self.left(s.get("timeout_s", 10))
        for text in s.get("until", []):
            while text not in self.ferryd.log():
                if time.monotonic() >= end:
                    raise Failure(f"ferryd's log still lacks {text!r}")
                time.sleep(0.02)
        log = self.ferryd.log()
        for text in s.get("lacks", []):
            if text in log:
                line = next(x for x in log.splitlines() if text in x)
                raise Failure(f"ferryd's log has {text!r}: {line}")
        for text in s.get("has", []):
            if text not in log:
                raise Failure(f"ferryd's log lacks {text!r}")

    def step_vectors(self, s):
        path = os.path.join(ROOT, s["vectors"])
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        c = self.caller(s["caller"])
        bad = []
        count = 0
        for v in data["frames"]:
            count += 1
            limit = v.get("max_body", data.get("max_body", 16777216))
            got = c.command({"op": "decode", "hex": v["hex"],
                             "max_frame": limit}, self.left())
            if v.get("incomplete"):
                want = {"ok": False, "error": "INCOMPLETE"}
            elif "error" in v:
                want = {"ok": False, "error": v["error"]}
            else:
                want = {"ok": True, "type": v["type"], "flags": v["flags"],
                        "id": v["id"], "fields": dict(v["fields"])}
            # A frame of a later version (HELLO 3+) carries bytes after the
            # fields a client knows: it must decode, the extra bytes
            # ignored (reporting them as trailing_hex is optional), and a
            # client never encodes one.
            later = want.get("fields", {}).pop("trailing_hex", None)
            if later is not None and isinstance(got.get("fields"), dict):
                extra = got["fields"].pop("trailing_hex", later)
                if extra != later:
                    why = f"trailing_hex {extra!r}, want {later!r}"
                    bad.append(f"{v['name']}: {why}")
                    continue
            why = check_error_pair(got, self.client) or matches(got, want)
            if why is None and want["ok"] and later is None:
                enc = c.command({"op": "encode", "type": v["type"],
                                 "flags": v["flags"], "id": v["id"],
                                 "fields": v["fields"]}, self.left())
                why = matches(enc, {"ok": True, "hex": v["hex"]})
            if why is not None:
                bad.append(f"{v['name']}: {why}")
        if bad:
            raise Failure(f"{len(bad)} of {count} vectors: "
                          + "; ".join(bad[:5]))

    def finish(self):
        """Stops everything; returns problems found on the way out."""
        problems = []
        for c in self.callers.values():
            try:
                rc = c.quit()
            except Exception as e:  # stop the rest whatever happens
                rc = repr(e)
                c.stop()
            if rc != 0:
                problems.append(f"caller {c.label} exited with {rc}")
        for w in self.workers.values():
            w.stop()
        self.ferryd.stop()
        for d in list(self.callers.values()) + list(self.workers.values()):
            rep = sanitizer_report(d.err_path)
            if rep:
                problems.append(f"sanitizer report from {d.label}:\n{rep}")
        rep = sanitizer_report(self.ferryd.log_path)
        if rep:
            problems.append(f"sanitizer report from ferryd:\n{rep}")
        return problems

    def tails(self):
        out = []
        for d in list(self.callers.values()) + list(self.workers.values()):
            t = tail(d.err_path)
            if t:
                out.append(f"  --- {d.label} stderr:\n{t}")
        t = tail(self.ferryd.log_path)
        if t:
            out.append(f"  --- ferryd log:\n{t}")
        return "\n".join(out)


def load_scenarios(names):
    scenarios = []
    for path in sorted(glob.glob(os.path.join(HERE, "scenarios", "*.json"))):
        with open(path, encoding="utf-8") as f:
            sc = json.load(f)
        sc.setdefault("name", os.path.basename(path)[:-5])
        scenarios.append(sc)
    if names:
        known = {s["name"] for s in scenarios}
        missing = [n for n in names if n not in known]
        if missing:
            sys.exit(f"run.py: no scenario {', '.join(missing)} "
                     f"(known: {', '.join(sorted(known))})")
        scenarios = [s for s in scenarios if s["name"] in names]
    return scenarios


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", required=True, choices=sorted(DRIVERS))
    ap.add_argument("--scenario", action="append", default=[],
                    help="run only this one (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show every command, answer and event")
    ap.add_argument("--require-driver", action="store_true",
                    help="a missing driver is a failure, not a skip")
    ap.add_argument("--list", action="store_true",
                    help="list the scenarios and what each shows, then exit")
    args = ap.parse_args()
    if args.list:
        for sc in load_scenarios(args.scenario):
            print(f"{sc['name']}: {sc.get('doc', '')}")
        return 0

    driver_file = DRIVERS[args.client][1](ferry_bin())
    if not os.path.exists(driver_file):
        print(f"conformance {args.client}: no driver yet ({driver_file})")
        if args.require_driver:
            print("RESULT passed=0 failed=1")
            return 1
        print("RESULT passed=0 failed=0")
        return 0
    passed = failed = 0
    for sc in load_scenarios(args.scenario):
        t0 = time.monotonic()
        run = Run(args.client, sc, args.verbose)
        why = None
        try:
            run.play()
        except Failure as e:
            why = str(e)
        except Exception as e:  # a runner bug must not hide the rest
            why = f"runner error: {e!r}"
        problems = run.finish()
        if why is None and problems:
            why = "; ".join(problems)
        took = time.monotonic() - t0
        if why is None:
            shutil.rmtree(run.tmp, ignore_errors=True)
            passed += 1
            print(f"ok   {sc['name']} ({took:.1f} s)", flush=True)
        else:
            failed += 1
            print(f"FAIL {sc['name']} ({took:.1f} s): {why}\n{run.tails()}"
                  f"\n  (logs kept in {run.tmp})", flush=True)
    print(f"RESULT passed={passed} failed={failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
