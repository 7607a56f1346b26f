"""A worker process serving queues, for the queue and schedule tests.

Each run of ``timed`` records its start and end (``clock_timestamp()``, this
process's pid) in the ``runs`` table of the test's database, so a test can
measure from outside how many ran at once. Environment:

- ``BATON_TARGET``: the server; ``EFFECTS_URL``: the database with ``runs``.
- ``QUEUES``: comma-separated queues this worker serves.
- ``SLOTS``: the worker's concurrency (default 20).
"""

from __future__ import annotations

import os
import time

import psycopg

from baton import AsyncWorkflowContext, Worker, WorkflowContext

worker = Worker(
    os.environ["BATON_TARGET"],
    concurrency=int(os.environ.get("SLOTS", "20")),
    queues=[q for q in os.environ.get("QUEUES", "").split(",") if q],
)


def _db() -> psycopg.Connection:
    return psycopg.connect(os.environ["EFFECTS_URL"], autocommit=True)


@worker.step()
def work(workflow_id: str, label: str, seconds: float) -> str:
    with _db() as conn:
        conn.execute(
            "INSERT INTO runs (workflow_id, label, pid) VALUES (%s, %s, %s)",
            (workflow_id, label, os.getpid()),
        )
        time.sleep(seconds)
        conn.execute(
            "UPDATE runs SET ended_at = clock_timestamp() WHERE workflow_id = %s", (workflow_id,)
        )
    return label


@worker.workflow()
def timed(ctx: WorkflowContext, label: str, seconds: float) -> str:
    return ctx.run(work, ctx.workflow_id, label, seconds)


@worker.step()
def tick(workflow_id: str, index: int, seconds: float) -> int:
    with _db() as conn:
        conn.execute(
            "INSERT INTO runs (workflow_id, label, pid) VALUES (%s, %s, %s)",
            (workflow_id, f"step-{index}", os.getpid()),
        )
    time.sleep(seconds)
    return index


@worker.workflow()
def many_steps(ctx: WorkflowContext, steps: int, seconds: float) -> int:
    for index in range(steps):
        ctx.run(tick, ctx.workflow_id, index, seconds)
    return steps


@worker.workflow()
def fan_out(ctx: WorkflowContext, queue: str, count: int, seconds: float) -> list[str]:
    """Starts ``count`` ``timed`` children on ``queue``, then gathers them in order."""
    children = [
        ctx.start_workflow(timed, f"part-{i}", seconds, queue=queue, timeout=600)
        for i in range(count)
    ]
    return [child.result() for child in children]


@worker.workflow()
async def async_fan_out(
    ctx: AsyncWorkflowContext, queue: str, count: int, seconds: float
) -> list[str]:
    """``fan_out`` as an ``async def`` workflow."""
    children = [
        await ctx.start_workflow(timed, f"part-{i}", seconds, queue=queue, timeout=600)
        for i in range(count)
    ]
    return [await child.result() for child in children]


if __name__ == "__main__":
    worker.run()
