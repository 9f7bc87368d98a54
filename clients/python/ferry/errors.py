# SPDX-License-Identifier: MIT
"""ferry's errors as Python exceptions: FerryError carries the stable code
(.code), its name (.name, "DEADLINE") and the message ferryd or the worker
gave (.message); each code has its own subclass (DeadlineError, ...), so
callers catch what they care about.

The list mirrors include/ferry.h (append only; never renumber).
"""
from __future__ import annotations

import builtins
import concurrent.futures

# (code, NAME, default message), as in include/ferry.h.
CODES: tuple[tuple[int, str, str], ...] = (
    (1, "PROTO", "malformed frame"),
    (2, "TOO_BIG", "frame too large"),
    (3, "VERSION", "unsupported protocol version"),
    (4, "UNKNOWN_TYPE", "unknown frame type"),
    (5, "UNKNOWN_SERVICE", "unknown service"),
    (6, "NO_WORKER", "no worker available for service"),
    (7, "DEADLINE", "deadline exceeded"),
    (8, "WORKER_LOST", "worker lost while holding the request"),
    (9, "WORKER_ERROR", "worker failed to handle the request"),
    (10, "OVERLOADED", "overloaded, try again later"),
    (11, "INVALID_ARGUMENT", "invalid argument"),
    (12, "CANCELLED", "request cancelled"),
    (13, "SHUTTING_DOWN", "daemon is shutting down"),
    (14, "DUPLICATE_ID", "request id already in flight"),
    (15, "UNAUTHORIZED", "not authorized"),
    (16, "CONNECTION", "connection failed"),
    (17, "NOMEM", "out of memory"),
    (18, "SYS", "system error"),
    (19, "CIRCUIT_OPEN", "circuit open, failing fast"),
    (20, "SERVICE_DISABLED", "service disabled by an operator"),
    (21, "SLOW_CONSUMER", "peer does not read what is sent to it"),
    (22, "TIMED_OUT", "the connection was silent too long"),
    (23, "NO_SPACE", "no space left in the store"),
    (24, "NOT_MY_VBUCKET", "this node does not own the key's vbucket"),
    (25, "FENCED", "node is not a cluster member now"),
    (26, "UNAVAILABLE", "the data's node is down, try again"),
)

_NAMES = {c: n for c, n, _ in CODES}
_TEXTS = {c: t for c, _, t in CODES}


def errname(code: int) -> str:
    """The name of a code, "UNKNOWN_ERROR" for one this client does not
    know (a newer ferryd)."""
    return _NAMES.get(code, "UNKNOWN_ERROR")


class FerryError(Exception):
    """An error of a ferry call: .code (int), .name (str), .message (str).

    Raising FerryError(code, message) directly gives the subclass of that
    code's instance its attributes; FerryError.of(code, message) returns
    an instance of the right subclass.
    """

    code: int = 0
    name: str = "UNKNOWN_ERROR"

    def __init__(self, code: int | None = None,
                 message: str | None = None) -> None:
        if code is None:
            code = type(self).code
        self.code = code
        self.name = errname(code)
        self.message = message if message else _TEXTS.get(code, self.name)
        super().__init__(f"{self.name}: {self.message}")

    @staticmethod
    def of(code: int, message: str | None = None) -> "FerryError":
        """An instance of the class for code (FerryError if unknown)."""
        cls = _CLASSES.get(code, FerryError)
        return cls(code, message)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (FerryError.of, (self.code, self.message))


def _make(code: int, name: str, text: str) -> type[FerryError]:
    cls_name = "".join(w.capitalize() for w in name.split("_"))
    if not cls_name.endswith("Error"):
        cls_name += "Error"  # WORKER_ERROR is WorkerError
    bases: tuple[type, ...] = (FerryError,)
    if name == "CANCELLED":
        # A cancelled Future's result() raises this, so code that catches
        # concurrent.futures.CancelledError sees it too.
        bases = (FerryError, concurrent.futures.CancelledError)
    elif name == "CONNECTION":
        # And code that catches the built-in ConnectionError sees this.
        bases = (FerryError, builtins.ConnectionError)
    cls = type(cls_name, bases, {"code": code, "name": name,
                                 "__doc__": f"Code {code}: {text}.",
                                 "__module__": "ferry"})
    return cls


_CLASSES: dict[int, type[FerryError]] = {
    c: _make(c, n, t) for c, n, t in CODES}

ProtoError = _CLASSES[1]
TooBigError = _CLASSES[2]
VersionError = _CLASSES[3]
UnknownTypeError = _CLASSES[4]
UnknownServiceError = _CLASSES[5]
NoWorkerError = _CLASSES[6]
DeadlineError = _CLASSES[7]
WorkerLostError = _CLASSES[8]
WorkerError = _CLASSES[9]
OverloadedError = _CLASSES[10]
InvalidArgumentError = _CLASSES[11]
CancelledError = _CLASSES[12]
ShuttingDownError = _CLASSES[13]
DuplicateIdError = _CLASSES[14]
UnauthorizedError = _CLASSES[15]
ConnectionError = _CLASSES[16]  # noqa: A001 (ferry.ConnectionError)
NomemError = _CLASSES[17]
SysError = _CLASSES[18]
CircuitOpenError = _CLASSES[19]
ServiceDisabledError = _CLASSES[20]
SlowConsumerError = _CLASSES[21]
TimedOutError = _CLASSES[22]
NoSpaceError = _CLASSES[23]
NotMyVbucketError = _CLASSES[24]
FencedError = _CLASSES[25]
UnavailableError = _CLASSES[26]

__all__ = [
    "FerryError", "errname", "CODES", "ProtoError", "TooBigError",
    "VersionError", "UnknownTypeError", "UnknownServiceError",
    "NoWorkerError", "DeadlineError", "WorkerLostError", "WorkerError",
    "OverloadedError", "InvalidArgumentError", "CancelledError",
    "ShuttingDownError", "DuplicateIdError", "UnauthorizedError",
    "ConnectionError", "NomemError", "SysError", "CircuitOpenError",
    "ServiceDisabledError", "SlowConsumerError", "TimedOutError",
    "NoSpaceError", "NotMyVbucketError", "FencedError", "UnavailableError",
]
