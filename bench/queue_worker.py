"""The queue benchmark's Baton worker: serves the queues ``latency`` and ``drain``."""

from __future__ import annotations

import os
import time

from baton import Worker, WorkflowContext

worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "200")),
    queues=["latency", "drain"],
)


@worker.workflow()
def stamp(ctx: WorkflowContext, i: int) -> float:
    """Returns when it started (wall clock), for enqueue->start latency."""
    return time.time()


@worker.step()
def noop(i: int) -> int:
    return i


@worker.workflow()
def one_step(ctx: WorkflowContext, i: int) -> list[float]:
    """One step; returns when it started and ended (wall clock)."""
    began = time.time()
    ctx.run(noop, i)
    return [began, time.time()]


if __name__ == "__main__":
    worker.run()
