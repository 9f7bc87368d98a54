# SPDX-License-Identifier: MIT
"""ferrytest - the Python side of ferry's tests (stdlib only).

Two things live here:

* an independent encoder/decoder of the wire protocol (docs/protocol.md),
  written from the document, not from the C code; tests/vectors/ checks it
  against the recorded frames and integration tests use it as a raw client;
* the process harness: free ports, a Daemon and Worker that start real
  binaries from $FERRY_BIN, wait until they are ready, stop them by PID and
  keep their logs, a raw protocol connection (Conn), run_ferry() for the
  CLI, and FerryTestCase, which gives every test a hard time limit and
  fails it when a sanitizer reported anything in a process it started.

Every wait has a timeout: a hung daemon makes a test fail, never hang.
"""
import collections
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# ------------------------------------------------------------ error codes


def _load_errors():
    """Parses the X-macro list in include/ferry.h so the table never
    drifts from the C side."""
    path = os.path.join(ROOT, "include", "ferry.h")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r'X\((\w+),\s*(\d+),\s*"([^"]*)"\)', text)
    if len(rows) < 20:
        raise RuntimeError(f"could not parse the error list in {path}")
    return {name: int(code) for name, code, _ in rows}, \
        {int(code): msg for _, code, msg in rows}


ERRORS, ERROR_MESSAGES = _load_errors()          # name -> code, code -> msg
ERROR_NAMES = {code: name for name, code in ERRORS.items()}


def errname(code):
    return "OK" if code == 0 else ERROR_NAMES.get(code, "UNKNOWN_ERROR")


# ------------------------------------------------------------------ codec

HEADER = struct.Struct(">IBBHQ")                 # body_len type flags rsv id
HEADER_SIZE = 16
DEFAULT_MAX_BODY = 16 * 1024 * 1024
MAX_NAME = 255
MAX_KEY = 1024
MAX_ERRMSG = 1024
MAX_CREDIT = 65535
PROTOCOL_VERSION = 2                              # the highest we speak
MIN_CLIENT_MAX = 2 + 2 + MAX_ERRMSG               # least max_frame in HELLO

HELLO, HELLO_OK, REQUEST, REPLY, ERROR, CANCEL, REGISTER, REGISTERED, \
    PING, DRAIN = range(1, 11)
TYPE_NAMES = {HELLO: "HELLO", HELLO_OK: "HELLO_OK", REQUEST: "REQUEST",
              REPLY: "REPLY", ERROR: "ERROR", CANCEL: "CANCEL",
              REGISTER: "REGISTER", REGISTERED: "REGISTERED", PING: "PING",
              DRAIN: "DRAIN"}
TYPES = {v: k for k, v in TYPE_NAMES.items()}
ROLE_CALLER, ROLE_WORKER, ROLE_PEER = 1, 2, 3
IDEMPOTENT = 0x01

Frame = collections.namedtuple("Frame", "type flags id body")


class WireError(Exception):
    """A frame a receiver must refuse; .name is the error's name."""

    def __init__(self, name, detail=""):
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name


def _b(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def encode_header(ftype, flags, fid, body_len):
    return HEADER.pack(body_len, ftype, flags, 0, fid)


def encode_frame(ftype, body=b"", fid=0, flags=0):
    body = _b(body)
    return encode_header(ftype, flags, fid, len(body)) + body


def encode_hello(role=ROLE_CALLER, heartbeat_ms=0, name=b"", token=b"",
                 version=PROTOCOL_VERSION, max_frame=0, trailing=b""):
    """HELLO in the layout of its version: version 1 ends with the token;
    version 2 adds max_frame (u32); version 3 and up may carry trailing
    bytes after that, which the receiver ignores."""
    name, token = _b(name), _b(token)
    body = struct.pack(">HBBIH", version, role, 0, heartbeat_ms,
                       len(name)) + name + struct.pack(">H", len(token)) \
        + token
    if version >= 2:
        body += struct.pack(">I", max_frame)
    return encode_frame(HELLO, body + _b(trailing))


def encode_hello_ok(version=PROTOCOL_VERSION, heartbeat_ms=0,
                    max_frame=DEFAULT_MAX_BODY, name=b"", max_deadline_ms=0,
                    default_deadline_ms=0, trailing=b""):
    """HELLO_OK in the layout of its version: version 2 adds
    max_deadline_ms and default_deadline_ms (u32 each) after the name."""
    name = _b(name)
    body = struct.pack(">HHIIH", version, 0, heartbeat_ms, max_frame,
                       len(name)) + name
    if version >= 2:
        body += struct.pack(">II", max_deadline_ms, default_deadline_ms)
    return encode_frame(HELLO_OK, body + _b(trailing))


def encode_request(fid, service, payload=b"", deadline_ms=0, key=b"",
                   flags=0):
    service, key, payload = _b(service), _b(key), _b(payload)
    body = struct.pack(">IHH", deadline_ms, len(service), len(key)) + \
        service + key + payload
    return encode_frame(REQUEST, body, fid, flags)


def encode_reply(fid, payload=b""):
    return encode_frame(REPLY, payload, fid)


def encode_error(fid, code, message=b""):
    if isinstance(code, str):
        code = ERRORS[code]
    message = _b(message)[:MAX_ERRMSG]
    return encode_frame(ERROR, struct.pack(">HH", code, len(message)) +
                        message, fid)


def encode_register(fid, service, credit):
    service = _b(service)
    return encode_frame(REGISTER, struct.pack(">IH", credit, len(service)) +
                        service, fid)


def encode_empty(ftype, fid=0):
    return encode_frame(ftype, b"", fid)


def frame_of(ftype, fid=5):
    """A well-formed frame of ftype (for role tables: who may send what)."""
    if ftype == HELLO:
        return encode_hello()
    if ftype == HELLO_OK:
        return encode_hello_ok(name="x")
    if ftype == REQUEST:
        return encode_request(fid, "echo", b"r")
    if ftype == REPLY:
        return encode_reply(fid, b"r")
    if ftype == ERROR:
        return encode_error(fid, "WORKER_ERROR", "x")
    if ftype == REGISTER:
        return encode_register(fid, "tbl", 1)
    return encode_empty(ftype, fid if ftype == CANCEL else 0)


def decode_frame(buf, max_body=DEFAULT_MAX_BODY):
    """Decodes the frame at the start of buf. Returns (Frame, consumed),
    or (None, 0) when buf holds no whole frame yet. Raises WireError
    TOO_BIG / UNKNOWN_TYPE from the header alone."""
    if len(buf) < HEADER_SIZE:
        return None, 0
    body_len, ftype, flags, _, fid = HEADER.unpack_from(buf, 0)
    if body_len > max_body:
        raise WireError("TOO_BIG", f"body_len {body_len}")
    if ftype not in TYPE_NAMES:
        raise WireError("UNKNOWN_TYPE", f"type {ftype}")
    if len(buf) - HEADER_SIZE < body_len:
        return None, 0
    body = bytes(buf[HEADER_SIZE:HEADER_SIZE + body_len])
    return Frame(ftype, flags, fid, body), HEADER_SIZE + body_len


class _Reader:
    def __init__(self, body):
        self.b, self.i = body, 0

    def take(self, n):
        if len(self.b) - self.i < n:
            raise WireError("PROTO", "body too short")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def str16(self, limit):
        n = self.u16()
        if n > limit:
            raise WireError("PROTO", f"length {n} above {limit}")
        return self.take(n)

    def rest(self):
        v = self.b[self.i:]
        self.i = len(self.b)
        return v

    def end(self):
        if self.i != len(self.b):
            raise WireError("PROTO", "trailing bytes")


def parse_hello(body):
    """HELLO's fields; "max_frame" only from version 2 on. Bytes after
    the version-2 fields are PROTO up to version 2, ignored from 3."""
    r = _Reader(body)
    d = {"version": r.u16(), "role": r.u8()}
    r.u8()                                       # reserved: ignored
    d["heartbeat_ms"] = r.u32()
    d["name"] = r.str16(MAX_NAME)
    d["token"] = r.str16(MAX_NAME)
    if d["version"] >= 2:
        d["max_frame"] = r.u32()
    if d["version"] <= 2:
        r.end()
    if d["role"] not in (ROLE_CALLER, ROLE_WORKER, ROLE_PEER):
        raise WireError("PROTO", "bad role")
    return d


def parse_hello_ok(body):
    """HELLO_OK's fields; "max_deadline_ms" and "default_deadline_ms"
    only from version 2 on."""
    r = _Reader(body)
    d = {"version": r.u16()}
    r.u16()                                      # reserved: ignored
    d["heartbeat_ms"] = r.u32()
    d["max_frame"] = r.u32()
    d["name"] = r.str16(MAX_NAME)
    if d["version"] >= 2:
        d["max_deadline_ms"] = r.u32()
        d["default_deadline_ms"] = r.u32()
    if d["version"] <= 2:
        r.end()
    return d


def parse_request(body):
    r = _Reader(body)
    deadline, slen, klen = r.u32(), r.u16(), r.u16()
    if slen == 0 or slen > MAX_NAME or klen > MAX_KEY:
        raise WireError("PROTO", "bad service or key length")
    return {"deadline_ms": deadline, "service": r.take(slen),
            "key": r.take(klen), "payload": r.rest()}


def parse_error(body):
    """(code, message) of an ERROR body."""
    r = _Reader(body)
    code = r.u16()
    msg = r.str16(MAX_ERRMSG)
    r.end()
    return code, msg


def parse_register(body):
    """REGISTER's fields. Credit 0 or above MAX_CREDIT and an empty
    service are well formed: ferryd refuses those values with
    INVALID_ARGUMENT, not the codec."""
    r = _Reader(body)
    credit = r.u32()
    service = r.str16(MAX_NAME)
    r.end()
    return {"credit": credit, "service": service}


def parse_body(frame):
    """Parses a frame's body by its type; raises WireError PROTO."""
    t = frame.type
    if t == HELLO:
        return parse_hello(frame.body)
    if t == HELLO_OK:
        return parse_hello_ok(frame.body)
    if t == REQUEST:
        return parse_request(frame.body)
    if t == ERROR:
        code, msg = parse_error(frame.body)
        return {"code": code, "message": msg}
    if t == REGISTER:
        return parse_register(frame.body)
    if t == REPLY:
        return {"payload": frame.body}
    if frame.body:
        raise WireError("PROTO", "body must be empty")
    return {}


# -------------------------------------------------------------- processes

def ferry_bin():
    b = os.environ.get("FERRY_BIN")
    if not b:
        b = os.path.join(ROOT, "build", "asan")
    return os.path.abspath(b)


def binary(name):
    """Path of a built binary; fails loudly when it is missing."""
    p = os.path.join(ferry_bin(), name)
    if not os.access(p, os.X_OK):
        raise AssertionError(f"binary not built: {p} (set FERRY_BIN)")
    return p


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                   "ThreadSanitizer")


def sanitizer_report(text):
    """The first lines of a sanitizer report in text, or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 3000]
    return None


_HTTP_FLAG = {}


def ferryd_has_http():
    """True when $FERRY_BIN/ferryd knows --http (its --help mentions it);
    checked once per binary and cached."""
    path = os.path.join(ferry_bin(), "ferryd")
    if path not in _HTTP_FLAG:
        try:
            r = subprocess.run([path, "--help"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            _HTTP_FLAG[path] = b"--http" in r.stdout
        except (OSError, subprocess.TimeoutExpired):
            _HTTP_FLAG[path] = False
    return _HTTP_FLAG[path]


def _env(extra=None):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if extra:
        env.update(extra)
    return env


def _stop_pid(proc, term_timeout):
    """SIGTERM, then SIGKILL; returns the exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(term_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


class LogFile:
    """A process's log file at self.log_path: its text, and its last lines
    for failure messages (ferryd here, a cluster node's in ferrycluster)."""

    @property
    def log(self):
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log.splitlines()[-n:])


class Daemon(LogFile):
    """A ferryd listening on a free loopback port and a Unix socket in a
    fresh data dir. Use as a context manager or call start()/stop()."""

    def __init__(self, args=(), env=None, ready_timeout=10.0,
                 unix=True):
        self.tmp = tempfile.mkdtemp(prefix="ferryd-")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.sock_path = os.path.join(self.tmp, "ferryd.sock")
        self.unix_addr = "unix:" + self.sock_path
        self.args = list(args)
        self.env = env
        self.ready_timeout = ready_timeout
        self.unix = unix
        # HTTP on a free port of its own, so test daemons never collide
        # on the default 8080; None when this ferryd has no --http (or
        # the test passes its own --http).
        self.http_port = None
        self.http_addr = None
        self.http_url = None
        if "--http" not in self.args and ferryd_has_http():
            self.http_port = free_port()
            while self.http_port == self.port:
                self.http_port = free_port()
            self.http_addr = f"127.0.0.1:{self.http_port}"
            self.http_url = f"http://{self.http_addr}"
        self.proc = None
        self.log_path = os.path.join(self.tmp, "ferryd.log")
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid


    def start(self):
        cmd = [binary("ferryd"), "--listen", self.addr]
        if self.unix:
            cmd += ["--listen", self.unix_addr]
        if self.http_addr:
            cmd += ["--http", self.http_addr]
        cmd += ["--data-dir", self.tmp] + self.args
        self.cmd = cmd
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf,
                                     env=_env(self.env), cwd=self.tmp)
        deadline = time.monotonic() + self.ready_timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"ferryd exited with {self.proc.returncode} at start: "
                    f"{' '.join(cmd)}\n{self.log_tail()}")
            try:
                with Conn(self.addr, timeout=2) as c:
                    try:
                        c.hello()
                    except ProtocolFailure as e:
                        # A ferryd with caller_token refuses this HELLO:
                        # it answered, so it is up.
                        if "UNAUTHORIZED" not in str(e):
                            raise
                if self.http_addr:
                    socket.create_connection(("127.0.0.1", self.http_port),
                                             timeout=2).close()
                return self
            except (OSError, ProtocolFailure) as e:
                last = e
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"ferryd not ready after {self.ready_timeout}"
                             f" s ({last})\n{self.log_tail()}")

    def stop(self, timeout=10.0):
        """SIGTERM and wait, SIGKILL after timeout; returns exit status."""
        if self.proc is None:
            return None
        self.returncode = _stop_pid(self.proc, timeout)
        self._logf.close()
        return self.returncode

    def wait(self, timeout):
        """Waits for a signalled daemon to exit; its status or None."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def rss(self):
        """Resident set size in bytes (VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def http(self, method, path, body=None, headers=None, timeout=10.0):
        """One HTTP request on a new connection to this daemon's HTTP
        port; an HttpResponse."""
        if not self.http_addr:
            raise AssertionError("this ferryd has no --http")
        return http_request(self.http_addr, method, path, body, headers,
                            timeout)

    def conn(self, role=ROLE_CALLER, unix=False, **kw):
        """A connected Conn that has done HELLO."""
        c = Conn(self.unix_addr if unix else self.addr)
        c.hello(role, **kw)
        return c

    def remove_files(self):
        """Removes the data dir (after stop): a store's journal takes up
        to 64 MiB of disk, so a suite that kept them would fill it."""
        remove_tmp(self.tmp)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.remove_files()


def remove_tmp(path):
    """Removes a test's temp dir unless FERRY_KEEP_TMP=1 (to read them
    after a run)."""
    if path and os.environ.get("FERRY_KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)


class Worker:
    """A worker process; start() waits for READY on its stdout. prefix
    goes before the binary, e.g. ["ip", "netns", "exec", NS] to start it
    inside a network namespace (tests/lib/ferrycluster.py)."""

    def __init__(self, name, args=(), env=None, ready_timeout=10.0,
                 prefix=()):
        self.name = name
        self.args = list(args)
        self.prefix = list(prefix)
        self.env = env
        self.ready_timeout = ready_timeout
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="worker-")
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_lines = []
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    @property
    def log(self):
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        cmd = self.prefix + [binary(self.name)] + self.args
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self._logf, env=_env(self.env))
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + self.ready_timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise AssertionError(
                        f"{' '.join(cmd)}: no READY after "
                        f"{self.ready_timeout} s; stdout {buf!r}\n"
                        f"{self.log[-3000:]}")
                if not sel.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.stop()
                    raise AssertionError(
                        f"{' '.join(cmd)} exited ({self.proc.returncode}) "
                        f"before READY; stdout {buf!r}\n{self.log[-3000:]}")
                buf += chunk
                lines = buf.split(b"\n")
                if any(l.strip() == b"READY" for l in lines[:-1]):
                    self.stdout_lines += [l.decode(errors="replace")
                                          for l in lines[:-1]]
                    break
        finally:
            sel.close()
        # Keep draining stdout so the worker never blocks on it.
        self._drain = threading.Thread(target=self._drain_stdout,
                                       daemon=True)
        self._drain.start()
        return self

    def _drain_stdout(self):
        try:
            for line in self.proc.stdout:
                self.stdout_lines.append(line.decode(errors="replace")
                                         .rstrip("\n"))
        except (OSError, ValueError):
            pass

    def stop(self, timeout=5.0):
        if self.proc is None:
            return None
        self.returncode = _stop_pid(self.proc, timeout)
        self._logf.close()
        # The drain thread ends at EOF; then the pipe can be closed.
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.join(timeout)
        if self.proc.stdout is not None and (drain is None or
                                             not drain.is_alive()):
            self.proc.stdout.close()
        return self.returncode

    def kill(self):
        """SIGKILL, and wait for it."""
        self.proc.kill()
        self.returncode = self.proc.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# The services every ferryd serves itself (src/broker/builtin.c and
# src/servants/), checked against a fresh daemon by test_backends: tests that
# count the service table take them from here.
BUILTIN_SERVICES = ("echo", "ferry.services", "ferry.cluster", "ferry.admin",
                    "ferry.cache", "ferry.kv", "ferry.id", "ferry.queue",
                    "ferry.topic")


def run_ferry(args, addr=None, input=None, timeout=30.0, env=None):
    """Runs the ferry CLI; returns CompletedProcess with text stdout and
    stderr. A run past timeout raises subprocess.TimeoutExpired."""
    cmd = [binary("ferry")]
    if addr is not None:
        cmd += ["--addr", addr]
    cmd += list(args)
    return subprocess.run(cmd, input=input, capture_output=True,
                          timeout=timeout, env=_env(env))


# --------------------------------------------------------------- raw conn

class ProtocolFailure(Exception):
    """The peer answered with something other than expected."""


def recv_some(sock, deadline, late):
    """What sock has, up to 1 MiB, waiting until deadline (monotonic);
    b"" at end of stream or on a reset; TimeoutError(late) when nothing
    came in time."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(late)
    sock.settimeout(left)
    try:
        return sock.recv(1 << 20)
    except socket.timeout:
        raise TimeoutError(late) from None
    except ConnectionResetError:
        return b""


class ConnClosed(Exception):
    """The peer closed the connection."""


class Conn:
    """A raw protocol connection to ferryd, for tests that need to see
    (or send) exact frames. addr: "host:port" or "unix:/path"."""

    def __init__(self, addr, timeout=10.0):
        self.addr = addr
        if addr.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = addr[5:]
        else:
            host, port = addr.rsplit(":", 1)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (host.strip("[]"), int(port))
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(target)
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.eof = False
        self.hello_ok = None
        self.send_lock = threading.Lock()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data, timeout=10.0):
        with self.send_lock:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)

    # -- frames out
    def hello(self, role=ROLE_CALLER, heartbeat_ms=0, name="ferrytest",
              token="", version=PROTOCOL_VERSION, max_frame=0, trailing=b"",
              timeout=10.0):
        """Sends HELLO and returns the parsed HELLO_OK; raises
        ProtocolFailure on an ERROR answer."""
        self.send(encode_hello(role, heartbeat_ms, name, token, version,
                               max_frame, trailing))
        f = self.recv_frame(timeout)
        if f.type == ERROR:
            code, msg = parse_error(f.body)
            raise ProtocolFailure(f"HELLO refused: {errname(code)}: {msg!r}")
        if f.type != HELLO_OK:
            raise ProtocolFailure(f"HELLO answered with {f}")
        self.hello_ok = parse_hello_ok(f.body)
        return self.hello_ok

    def register(self, service, credit=1, reg_id=1, timeout=10.0):
        """REGISTER and wait for REGISTERED (frames of other types that
        arrive meanwhile are an error)."""
        self.send(encode_register(reg_id, service, credit))
        f = self.recv_frame(timeout)
        if f.type == ERROR:
            code, msg = parse_error(f.body)
            raise ProtocolFailure(f"REGISTER refused: {errname(code)}: "
                                  f"{msg!r}")
        if f.type != REGISTERED or f.id != reg_id:
            raise ProtocolFailure(f"REGISTER answered with {f}")
        return f

    def send_request(self, fid, service, payload=b"", deadline_ms=0,
                     key=b"", flags=0):
        self.send(encode_request(fid, service, payload, deadline_ms, key,
                                 flags))

    def send_reply(self, fid, payload=b""):
        self.send(encode_reply(fid, payload))

    def send_error(self, fid, code, message=b""):
        self.send(encode_error(fid, code, message))

    def send_cancel(self, fid):
        self.send(encode_empty(CANCEL, fid))

    def send_ping(self):
        self.send(encode_empty(PING))

    def send_drain(self):
        self.send(encode_empty(DRAIN))

    # -- frames in
    def _fill(self, deadline):
        chunk = recv_some(self.sock, deadline, "no frame in time")
        if not chunk:
            self.eof = True
            raise ConnClosed("connection closed by peer")
        self.buf += chunk

    def recv_frame(self, timeout=10.0, skip_pings=True):
        """The next frame as Frame(type, flags, id, body). Raises
        TimeoutError, or ConnClosed at end of stream. PINGs from the
        daemon are skipped unless skip_pings is False."""
        deadline = time.monotonic() + timeout
        while True:
            f, n = decode_frame(self.buf, max_body=1 << 30)
            if f is not None:
                del self.buf[:n]
                if skip_pings and f.type == PING:
                    continue
                return f
            if self.eof:
                raise ConnClosed("connection closed by peer")
            self._fill(deadline)

    def expect_closed(self, timeout=5.0):
        """Waits for the peer to close; returns the frames it sent before
        (PINGs skipped). Raises TimeoutError if it stays open."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                frames.append(self.recv_frame(deadline - time.monotonic()))
            except ConnClosed:
                return frames
            except TimeoutError:
                raise TimeoutError(
                    f"connection still open after {timeout} s; got "
                    f"{frames}") from None

    def call(self, fid, service, payload=b"", deadline_ms=0, key=b"",
             flags=0, timeout=10.0):
        """One request, waiting for the frame with its id (others are
        kept in self.stray). Returns the Frame."""
        self.send_request(fid, service, payload, deadline_ms, key, flags)
        return self.wait_for(fid, timeout)

    def collect(self, ids, timeout=10.0):
        """Waits for one frame for each id in ids; returns {id: (Frame,
        monotonic time of arrival)}. A second frame for an id, or a frame
        for an id not asked for, is an error (every request ends with
        exactly one answer). Raises TimeoutError naming the missing ids."""
        want = set(ids)
        got = {}
        deadline = time.monotonic() + timeout
        for f in getattr(self, "stray", []):
            if f.id in want:
                got[f.id] = (f, time.monotonic())
        self.stray = [f for f in getattr(self, "stray", [])
                      if f.id not in want]
        while len(got) < len(want):
            left = deadline - time.monotonic()
            try:
                f = self.recv_frame(max(0.0, left))
            except TimeoutError:
                missing = sorted(want - set(got))
                raise TimeoutError(
                    f"{len(missing)} of {len(want)} answers missing after "
                    f"{timeout} s, e.g. ids {missing[:10]}") from None
            if f.id not in want:
                raise ProtocolFailure(f"unexpected frame {describe(f)}")
            if f.id in got:
                raise ProtocolFailure(f"second answer for id {f.id}: "
                                      f"{describe(f)} after "
                                      f"{describe(got[f.id][0])}")
            got[f.id] = (f, time.monotonic())
        return got

    def wait_for(self, fid, timeout=10.0):
        if not hasattr(self, "stray"):
            self.stray = []
        for i, f in enumerate(self.stray):
            if f.id == fid:
                return self.stray.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if f.id == fid:
                return f
            self.stray.append(f)


# ------------------------------------------------------------------- http

class HttpResponse:
    """status, reason, headers (lower-case name -> last value), header_list
    ([(name, value)] as sent) and body (bytes)."""

    def __init__(self, status, reason, header_list, body):
        self.status, self.reason, self.body = status, reason, body
        self.header_list = header_list
        self.headers = {k.lower(): v for k, v in header_list}

    def json(self):
        import json
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"HTTP {self.status}: body is not JSON "
                                 f"({e}): {self.body[:300]!r}") from None

    def __repr__(self):
        b = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"<HTTP {self.status} {self.reason} {b!r}>"


def http_request(addr, method, path, body=None, headers=None, timeout=10.0):
    """One request with http.client on a new connection to addr
    ("host:port"); returns an HttpResponse. Raises OSError / http.client
    errors as they come (a test that expects a dropped connection catches
    them)."""
    import http.client
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request(method, path, body=_b(body) if body is not None else None,
                  headers=dict(headers or {}))
        r = c.getresponse()
        data = r.read()
        return HttpResponse(r.status, r.reason, r.getheaders(), data)
    finally:
        c.close()


class RawHttp:
    """An HTTP/1.1 client on a plain socket, for what http.client hides:
    pipelining, partial requests, requests left hanging, and seeing the
    server close. read_response() parses one response (Content-Length or
    chunked body) from the stream."""

    def __init__(self, addr, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)),
                                             timeout=timeout)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(_b(data))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no HTTP response in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no HTTP response in time") from None
        if not chunk:
            self.eof = True
            raise ConnClosed("HTTP connection closed by the server")
        self.buf += chunk

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill(deadline)

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, timeout=10.0, head=False):
        """The next response as an HttpResponse; ConnClosed when the server
        closed first, TimeoutError when none came."""
        deadline = time.monotonic() + timeout
        status_line = self._line(deadline).decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolFailure(f"bad status line {status_line!r}")
        headers = []
        while True:
            line = self._line(deadline)
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        h = {k.lower(): v for k, v in headers}
        status = int(parts[1])
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif h.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._line(deadline):
                        pass
                    break
                body += self._take(size, deadline)
                self._take(2, deadline)
        elif "content-length" in h:
            body = self._take(int(h["content-length"]), deadline)
        else:
            while not self.eof:
                try:
                    self._fill(deadline)
                except ConnClosed:
                    break
            body = bytes(self.buf)
            self.buf.clear()
        return HttpResponse(status, parts[2] if len(parts) > 2 else "",
                            headers, body)

    def wait_closed(self, timeout=10.0):
        """Waits until the server closes; returns the bytes it sent before.
        Raises TimeoutError when the connection stays open."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except (ConnClosed, ConnectionResetError):
                return bytes(self.buf)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_req_bytes(method, path, body=b"", headers=None,
                   host="127.0.0.1"):
    """The bytes of one HTTP/1.1 request with Content-Length."""
    body = _b(body)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def describe(frame):
    """A readable one-line description of a frame, for messages."""
    if frame.type == ERROR:
        try:
            code, msg = parse_error(frame.body)
            return f"ERROR id={frame.id} {errname(code)}: {msg!r}"
        except WireError:
            pass
    body = frame.body if len(frame.body) <= 80 else \
        frame.body[:80] + b"..."
    return f"{TYPE_NAMES.get(frame.type, frame.type)} id={frame.id} {body!r}"


# -------------------------------------------------------------- test case

class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit")


class FerryTestCase(unittest.TestCase):
    """Base class of the integration tests: a hard time limit per test
    (SIGALRM; TIME_LIMIT seconds), processes started with daemon() and
    worker() are stopped by PID after the test, and a sanitizer report in
    any of their logs fails the test."""

    TIME_LIMIT = 60

    def setUp(self):
        self._procs = []
        self._conns = []
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(self.TIME_LIMIT)

    def tearDown(self):
        signal.alarm(0)
        for c in self._conns:
            c.close()
        reports = []
        for p in reversed(self._procs):
            p.stop()
            rep = sanitizer_report(p.log)
            if rep:
                reports.append(f"--- {getattr(p, 'cmd', p)}:\n{rep}")
        # The logs are read: their folders go (a store's journal is up to
        # 64 MiB; a suite's worth of them filled the disk).
        for p in self._procs:
            remove_tmp(getattr(p, "tmp", None))
        if reports:
            self.fail("sanitizer report:\n" + "\n".join(reports))

    def daemon(self, *args, env=None):
        d = Daemon(args, env=env)
        self._procs.append(d)
        return d.start()

    def worker(self, name, *args, env=None):
        w = Worker(name, args, env=env)
        w.cmd = name
        self._procs.append(w)
        return w.start()

    def conn(self, d, role=ROLE_CALLER, unix=False, **kw):
        c = d.conn(role, unix=unix, **kw)
        self._conns.append(c)
        return c

    def raw(self, addr):
        c = Conn(addr)
        self._conns.append(c)
        return c

    def rawhttp(self, d, timeout=10.0):
        """A RawHttp to daemon d's HTTP port, closed after the test."""
        c = RawHttp(d.http_addr, timeout)
        self._conns.append(c)
        return c

    def assertHttpError(self, r, status, name, msg=None):
        """r is an HttpResponse with this status and a JSON body
        {"error": name, "code": <name's code>, "message": "<not empty>"};
        returns the body."""
        where = f"{r!r}" + (f" ({msg})" if msg else "")
        self.assertEqual(r.status, status, where)
        self.assertIn("application/json",
                      r.headers.get("content-type", ""), where)
        doc = r.json()
        self.assertIsInstance(doc, dict, where)
        self.assertEqual(doc.get("error"), name, where)
        self.assertEqual(doc.get("code"), ERRORS[name], where)
        self.assertIsInstance(doc.get("message"), str, where)
        self.assertTrue(doc["message"], f"empty message: {where}")
        return doc

    def assertReply(self, frame, payload=None, msg=None):
        if frame.type != REPLY:
            self.fail(f"expected REPLY, got {describe(frame)}"
                      + (f" ({msg})" if msg else ""))
        if payload is not None:
            self.assertEqual(frame.body, _b(payload), msg)

    def assertError(self, frame, name, msg=None):
        if frame.type != ERROR:
            self.fail(f"expected ERROR {name}, got {describe(frame)}"
                      + (f" ({msg})" if msg else ""))
        code, _ = parse_error(frame.body)
        if errname(code) != name:
            self.fail(f"expected ERROR {name}, got {describe(frame)}"
                      + (f" ({msg})" if msg else ""))
        return parse_error(frame.body)[1]
