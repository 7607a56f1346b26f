"""The benchmark's Baton worker: no-op workflows for W1-W3 and a start stamp.

BATON_TARGET=127.0.0.1:PORT [SLOTS=200] [BATON_QUEUES=bench] python bench/noop_app.py
"""

from __future__ import annotations

import os
import time

from baton import AsyncWorkflowContext, Worker, WorkflowContext

worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "200")),
    queues=[q for q in os.environ.get("BATON_QUEUES", "").split(",") if q],
)


@worker.step()
def noop(i: int) -> int:
    return i


@worker.workflow()
def three_noops(ctx: WorkflowContext, i: int) -> float:
    """W1 and W2: three checkpointed no-op steps; returns when it finished (wall
    clock, for W2's rate)."""
    for _ in range(3):
        i = ctx.run(noop, i)
    return time.time()


@worker.step()
async def async_noop(i: int) -> int:
    return i


@worker.workflow()
async def three_async_noops(ctx: AsyncWorkflowContext, i: int) -> float:
    """W1 as an ``async def`` workflow: no thread, each step's checkpoint
    leaves from the worker's loop."""
    for _ in range(3):
        i = await ctx.run(async_noop, i)
    return time.time()


@worker.workflow()
def one_task(ctx: WorkflowContext, i: int) -> float:
    """W3: one step; returns when it finished (wall clock, for the drain rate)."""
    ctx.run(noop, i)
    return time.time()


@worker.workflow()
def stamp(ctx: WorkflowContext) -> float:
    """Enqueue -> start latency: the wall clock at the workflow's first line."""
    return time.time()


if __name__ == "__main__":
    worker.run()
