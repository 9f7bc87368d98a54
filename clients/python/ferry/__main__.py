# SPDX-License-Identifier: MIT
"""python3 -m ferry call SERVICE [PAYLOAD | -] [--timeout MS] [--key KEY]
[--idempotent] [--addr ADDR] [--token TOKEN]

The Python twin of `ferry call` (src/cli/cmd_call.c): the reply goes to
stdout (plus a newline when it lacks one), a failure to stderr as
"NAME: message", and the exit status is the same: 0 success, 1 error from
ferryd or the worker, 2 usage error, 3 connection error.
"""
from __future__ import annotations

import os
import stat
import sys

from . import _proto as P
from ._common import parse_addr
from .client import Client
from .errors import FerryError

EXIT_OK = 0
EXIT_FERRY = 1
EXIT_USAGE = 2
EXIT_CONN = 3

USAGE = """usage: ferry call SERVICE [PAYLOAD | -] [--timeout MS] [--key KEY]
                  [--idempotent] [--addr ADDR] [--token TOKEN]

Calls SERVICE with PAYLOAD (- reads all of stdin, none sends an empty
payload) and prints the reply on stdout.

  --timeout MS    deadline of the call (default: the daemon's)
  --key KEY       routing key
  --idempotent    mark the request safe to run twice
  --token TOKEN   access token (default $FERRY_TOKEN)

Exit status: 0 success, 1 error from ferryd or the worker (NAME: message
on stderr), 2 usage error, 3 connection error.
"""

MAIN_USAGE = """usage: python3 -m ferry [--addr ADDR] [--token TOKEN] call SERVICE
                        [PAYLOAD | -] [--timeout MS] [--key KEY] [--idempotent]

Talks to ferryd at ADDR (host:port, [v6]:port or unix:/path);
default: $FERRY_ADDR, else 127.0.0.1:7700.
TOKEN is the access token sent in HELLO; default: $FERRY_TOKEN.

exit status:
  0  success
  1  error from ferryd or a worker (printed as NAME: message)
  2  usage error
  3  connection error (refused, lost, timed out)
"""


def _usage_error(msg: str) -> int:
    print(f"ferry call: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _opt(argv: list[str], i: int, name: str,
         flag: bool = False) -> tuple[int, str | None]:
    """As cli_opt(): (1, value) when argv[i] is the option (i advanced
    past a separate value by the caller), (0, None) when not, (-1, None)
    when its value is missing."""
    arg = argv[i]
    if not arg.startswith(name):
        return 0, None
    rest = arg[len(name):]
    if flag:
        return (1, None) if rest == "" else (0, None)
    if rest.startswith("="):
        return 1, rest[1:]
    if rest:
        return 0, None
    if i + 1 >= len(argv):
        print(f"ferry: option {name} needs a value", file=sys.stderr)
        return -1, None
    return 2, argv[i + 1]


def _service_uid() -> int:
    try:
        import pwd
        return pwd.getpwnam("ferry").pw_uid
    except (KeyError, ImportError):
        return -1


def _check_socket(addr: str, token: str | None) -> str | None:
    """As cli_check_socket(): before a token goes to a unix socket, its
    folders and the socket must be owned by us, root or the ferry user, and
    no folder writable by others (a sticky parent excepted). The reason it
    is unsafe, or None."""
    if token is None or not addr.startswith("unix:"):
        return None
    path = addr[5:]
    extra = _service_uid()

    def trusted(uid: int) -> bool:
        return uid in (0, os.geteuid()) or (extra != -1 and uid == extra)

    d, _, leaf = path.rpartition("/")
    if "/" not in path:
        d, leaf = ".", path
    elif d == "":
        d = "/"
    try:
        real = os.path.realpath(d, strict=True)
    except OSError as e:
        return f"'{d}': {e.strerror}"
    parts = ["/"]
    acc = ""
    for comp in real.strip("/").split("/"):
        if comp:
            acc += "/" + comp
            parts.append(acc)
    for n, p in enumerate(parts):
        is_leaf = n == len(parts) - 1
        try:
            st = os.stat(p)
        except OSError as e:
            return f"'{p}': {e.strerror}"
        if not trusted(st.st_uid):
            return (f"'{p}' is owned by uid {st.st_uid}, not by this user "
                    f"(uid {os.geteuid()}) or root: another user could "
                    "replace what is in it")
        if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o22:
            continue
        if not is_leaf and st.st_mode & stat.S_ISVTX:
            continue
        return (f"'{p}' may be written by others (mode "
                f"{st.st_mode & 0o7777:04o}): another user could replace "
                "what is in it")
    full = os.path.join(real, leaf)
    try:
        st = os.lstat(full)
    except OSError:
        return None
    if not trusted(st.st_uid):
        return (f"'{full}' is owned by uid {st.st_uid}, not by this user "
                f"(uid {os.geteuid()}) or root")
    return None


def _report(addr: str, err: FerryError) -> int:
    msg = err.message
    if err.code == 16 and addr not in msg:
        print(f"{err.name}: {msg} ({addr})", file=sys.stderr)
    else:
        print(f"{err.name}: {msg}", file=sys.stderr)
    return EXIT_CONN if err.code == 16 else EXIT_FERRY


def cmd_call(addr: str, token: str | None, argv: list[str]) -> int:
    positional: list[str] = []
    timeout = 0
    key: str | None = None
    idempotent = False
    done = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if not done and a.startswith("-") and a != "-":
            if a == "--":
                done = True
                i += 1
                continue
            if a in ("--help", "-h"):
                sys.stdout.write(USAGE)
                return EXIT_OK
            m, v = _opt(argv, i, "--timeout")
            if m:
                if m < 0:
                    return EXIT_USAGE
                i += m
                assert v is not None
                if not (v[:1].isdigit() and v.isdigit() and
                        1 <= int(v) <= 0xFFFFFFFF):
                    print(f"ferry call: --timeout must be a number from 1 "
                          f"to 4294967295, not '{v}'", file=sys.stderr)
                    return EXIT_USAGE
                timeout = int(v)
                continue
            m, v = _opt(argv, i, "--key")
            if m:
                if m < 0:
                    return EXIT_USAGE
                i += m
                key = v
                continue
            m, _ = _opt(argv, i, "--idempotent", flag=True)
            if m:
                idempotent = True
                i += 1
                continue
            return _usage_error(f"unknown option '{a}'")
        if len(positional) == 2:
            return _usage_error(f"unexpected argument '{a}'")
        positional.append(a)
        i += 1
    if not positional:
        sys.stderr.write(USAGE)
        return EXIT_USAGE
    service = positional[0]
    sb = os.fsencode(service)
    if not 0 < len(sb) <= P.MAX_NAME:
        return _usage_error("SERVICE must be 1 to 255 bytes")
    kb = os.fsencode(key) if key is not None else None
    if kb is not None and len(kb) > P.MAX_KEY:
        return _usage_error("--key must be at most 1024 bytes")
    max_payload = P.DEFAULT_MAX_BODY - (8 + len(sb) + len(kb or b""))
    payload = b""
    if len(positional) > 1 and positional[1] == "-":
        try:
            payload = sys.stdin.buffer.read(max_payload + 1)
        except OSError as e:
            print(f"ferry call: reading stdin: {e.strerror}",
                  file=sys.stderr)
            return EXIT_USAGE
        if len(payload) > max_payload:
            return _usage_error(f"payload on stdin is larger than "
                                f"{max_payload} bytes")
    elif len(positional) > 1:
        payload = os.fsencode(positional[1])
        if len(payload) > max_payload:
            return _usage_error(f"PAYLOAD is larger than {max_payload} "
                                "bytes")
    try:
        parse_addr(addr)
    except ValueError:
        return _usage_error(f"bad address '{addr}'")
    why = _check_socket(addr, token)
    if why is not None:
        print(f"ferry call: not sending the token to '{addr}': {why}",
              file=sys.stderr)
        return EXIT_CONN
    try:
        with Client(addr, token=token, name="ferry-call",
                    heartbeat_ms=0) as c:
            reply = c.call(sb.decode("utf-8", "surrogateescape"), payload,
                           deadline_ms=timeout, key=kb,
                           idempotent=idempotent)
    except FerryError as e:
        return _report(addr, e)
    try:
        out = sys.stdout.buffer
        out.write(reply)
        if not reply.endswith(b"\n"):
            out.write(b"\n")
        out.flush()
    except OSError as e:
        print(f"ferry call: writing the reply: {e.strerror}",
              file=sys.stderr)
        return EXIT_FERRY
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    addr = os.environ.get("FERRY_ADDR") or "127.0.0.1:7700"
    token = os.environ.get("FERRY_TOKEN")
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":
            rest.extend(args[i:])
            break
        m, v = _opt(args, i, "--addr")
        if m:
            if m < 0:
                return EXIT_USAGE
            addr = v  # type: ignore[assignment]
            i += m
            continue
        m, v = _opt(args, i, "--token")
        if m:
            if m < 0:
                return EXIT_USAGE
            token = v
            i += m
            continue
        rest.append(args[i])
        i += 1
    if not rest:
        sys.stderr.write(MAIN_USAGE)
        return EXIT_USAGE
    if rest[0] in ("--help", "-h", "help"):
        sys.stdout.write(MAIN_USAGE)
        return EXIT_OK
    if addr == "":
        print("ferry: --addr must not be empty", file=sys.stderr)
        return EXIT_USAGE
    if token is not None and len(os.fsencode(token)) > P.MAX_NAME:
        print("ferry: --token must be at most 255 bytes", file=sys.stderr)
        return EXIT_USAGE
    if rest[0] == "call":
        return cmd_call(addr, token, rest)
    print(f"ferry: unknown command '{rest[0]}' (see python3 -m ferry "
          "--help)", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
