"""A worker process for the eviction tests: few slots, long waits.

Steps record side effects in the ``effects`` table like ``steps_app.py``.
Environment:

- ``BATON_TARGET``, ``EFFECTS_URL``: the server and the database with ``effects``.
- ``SLOTS``: the worker's concurrency (default 4).
- ``EVICT_AFTER``: ``evict_waits_after`` in seconds (default 0.5; ``none`` disables).
- ``QUEUE``: a queue the worker serves, if any.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

from baton import AsyncWorkflowContext, Worker, WorkflowContext

_evict = os.environ.get("EVICT_AFTER", "0.5")
worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "4")),
    evict_waits_after=None if _evict == "none" else float(_evict),
    queues=[os.environ["QUEUE"]] if os.environ.get("QUEUE") else [],
)


@worker.step()
def mark(workflow_id: str, name: str) -> str:
    with psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO effects (step, workflow_id, pid) VALUES (%s, %s, %s)",
            (name, workflow_id, os.getpid()),
        )
    return name


@worker.workflow()
def napper(ctx: WorkflowContext, seconds: float) -> str:
    ctx.run(mark, ctx.workflow_id, "before")
    ctx.sleep(seconds)
    ctx.run(mark, ctx.workflow_id, "after")
    return "rested"


@worker.workflow()
async def async_napper(ctx: AsyncWorkflowContext, seconds: float) -> str:
    await ctx.run(mark, ctx.workflow_id, "before")
    await ctx.sleep(seconds)
    await ctx.run(mark, ctx.workflow_id, "after")
    return "rested"


@worker.workflow()
def listener(ctx: WorkflowContext, timeout: float) -> Any:
    ctx.run(mark, ctx.workflow_id, "before")
    message = ctx.recv("ping", timeout=timeout)
    ctx.run(mark, ctx.workflow_id, "after")
    return message


@worker.workflow()
async def async_listener(ctx: AsyncWorkflowContext, timeout: float) -> Any:
    await ctx.run(mark, ctx.workflow_id, "before")
    message = await ctx.recv("ping", timeout=timeout)
    await ctx.run(mark, ctx.workflow_id, "after")
    return message


@worker.workflow()
def doubler(ctx: WorkflowContext, n: int) -> int:
    ctx.run(mark, ctx.workflow_id, "child")
    return n * 2


@worker.workflow()
def parent(ctx: WorkflowContext, child: str, arg: Any) -> Any:
    """Starts workflow ``child`` with ``arg`` and returns what it returned."""
    ctx.run(mark, ctx.workflow_id, "before")
    result = ctx.start_workflow(child, arg).result()
    ctx.run(mark, ctx.workflow_id, "after")
    return result


@worker.workflow()
async def async_parent(ctx: AsyncWorkflowContext, child: str, arg: Any) -> Any:
    await ctx.run(mark, ctx.workflow_id, "before")
    result = await (await ctx.start_workflow(child, arg)).result()
    await ctx.run(mark, ctx.workflow_id, "after")
    return result


@worker.workflow()
def announcer(ctx: WorkflowContext, key: str) -> None:
    """Publishes as event ``key`` the first message it receives on "ping"."""
    ctx.set_event(key, ctx.recv("ping", timeout=300))


@worker.workflow()
def event_reader(ctx: WorkflowContext, workflow_id: str, key: str, timeout: float) -> Any:
    ctx.run(mark, ctx.workflow_id, "before")
    value = ctx.get_event(workflow_id, key, timeout=timeout)
    ctx.run(mark, ctx.workflow_id, "after")
    return value


@worker.workflow()
async def async_event_reader(
    ctx: AsyncWorkflowContext, workflow_id: str, key: str, timeout: float
) -> Any:
    await ctx.run(mark, ctx.workflow_id, "before")
    value = await ctx.get_event(workflow_id, key, timeout=timeout)
    await ctx.run(mark, ctx.workflow_id, "after")
    return value


@worker.workflow(max_attempts=1)
def many_naps(ctx: WorkflowContext, naps: int, seconds: float) -> int:
    """Evicted at every nap; with max_attempts=1 a single counted re-dispatch
    would dead-letter it."""
    for index in range(naps):
        ctx.run(mark, ctx.workflow_id, f"nap-{index}")
        ctx.sleep(seconds)
    return naps


if __name__ == "__main__":
    worker.run()
