# SPDX-License-Identifier: MIT
"""ferry: the Python client and worker of the ferry RPC engine.

    import ferry
    with ferry.Client("127.0.0.1:7700") as c:
        print(c.call("echo", b"hello"))

Client (threads), AsyncClient (asyncio) and Worker speak the wire protocol
of docs/protocol.md; every failure is a FerryError subclass with .code,
.name and .message.
"""
from ._common import Hello
from ._proto import PROTOCOL_VERSION
from .aio import AsyncClient
from .client import CallFuture, Client
from .worker import Job, Worker
from . import servants
from .servants import (CacheItem, CacheWrite, IdParts, JobOutcome, KvEntry,
                       KvEvent, KvGet, KvRange, KvWatch, KvWrite, PeekEntry,
                       PushResult, QueueJob, TopicGap, TopicMessage,
                       TopicPoll)
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "CallFuture", "Hello", "Job", "Worker", "PROTOCOL_VERSION",
           "servants", "CacheItem", "CacheWrite", "IdParts", "KvEntry", "KvEvent",
           "KvGet", "KvRange", "KvWatch", "KvWrite", "JobOutcome", "PeekEntry",
           "PushResult", "QueueJob", "TopicGap", "TopicMessage", "TopicPoll",
           "__version__"] + list(_errors_all)
