"""The memory benchmark's worker: workflows that wait long (``bench/memory.py``).

Environment: ``BATON_TARGET``; ``SLOTS`` (concurrency, default 100);
``EVICT_AFTER`` (``evict_waits_after`` in seconds, default 1; ``none`` never
evicts).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from baton import Worker, WorkflowContext

_evict = os.environ.get("EVICT_AFTER", "1")
worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "100")),
    evict_waits_after=None if _evict == "none" else float(_evict),
)


@worker.step()
def note(value: int) -> int:
    return value


@worker.workflow()
def sleeper(ctx: WorkflowContext, seconds: float) -> int:
    """A step, a durable sleep, a step."""
    ctx.run(note, 1)
    ctx.sleep(seconds)
    return int(ctx.run(note, 2))


@worker.workflow()
def receiver(ctx: WorkflowContext, timeout: float) -> Any:
    """A step, a recv on topic ``go``, a step; returns the message."""
    ctx.run(note, 1)
    message = ctx.recv("go", timeout=timeout)
    ctx.run(note, 2)
    return message


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    worker.run()
