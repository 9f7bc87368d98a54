# SPDX-License-Identifier: MIT
"""A worker for the tests: tworker.py ADDR [CREDIT] [TOKEN]. Serves
  hang   never answers; prints "CANCEL <id>" when ferryd cancels it
  slow   answers "done:<payload>" 300 ms after the handler returned
  held   as slow, and prints "HELD <n>" (jobs held at once) at each start
  aecho  an async handler: answers the payload upper-cased
  boom   raises ValueError (WORKER_ERROR)
Prints READY once registered (again after each reconnection), START <id>
for every job, EXIT <handled> after a SIGTERM drain."""
import sys
import threading
import asyncio

import ferry

addr = sys.argv[1]
credit = int(sys.argv[2]) if len(sys.argv) > 2 else 8
token = sys.argv[3] if len(sys.argv) > 3 else None
w = ferry.Worker(addr, token=token, name="tworker", heartbeat_ms=500)
lock = threading.Lock()


def say(s):
    with lock:
        print(s, flush=True)


def hang(job):
    say(f"START {job.id}")
    job.on_cancel(lambda j: say(f"CANCEL {j.id}"))
    job.defer()


def slow(job):
    say(f"START {job.id}")
    job.defer()
    threading.Timer(0.3, job.reply, args=(b"done:" + job.payload,)).start()


def held(job):
    say(f"HELD {w.held}")
    slow(job)


async def aecho(job):
    await asyncio.sleep(0.01)
    return job.payload.upper()


def boom(job):
    if job.payload == b"int":
        return 5  # not a reply: WORKER_ERROR
    raise ValueError("boom")


w.register("hang", hang, credit)
w.register("slow", slow, credit)
w.register("held", held, credit)
w.register("aecho", aecho, credit)
w.register("boom", boom, credit)
try:
    w.run(lambda _: say("READY"))
except ferry.FerryError as e:
    say(f"FAILED {e.name}")
    sys.exit(1)
say(f"EXIT {w.handled}")
