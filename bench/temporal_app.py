"""The benchmark's Temporal worker: workflows and a no-op activity, served on
task queue ``bench`` (a module of its own, so the workflow sandbox can re-import it).

    TEMPORAL_TARGET=127.0.0.1:PORT python bench/temporal_app.py
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client
    from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=60)
TASK_QUEUE = "bench"


@activity.defn
async def noop(i: int) -> int:
    return i


@workflow.defn
class ThreeLocal:
    """W1 and W2 with steps as local activities."""

    @workflow.run
    async def run(self, i: int) -> int:
        for _ in range(3):
            i = await workflow.execute_local_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return i


@workflow.defn
class ThreeRemote:
    """W1 and W2 with steps as regular activities (each through the server)."""

    @workflow.run
    async def run(self, i: int) -> int:
        for _ in range(3):
            i = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return i


@workflow.defn
class OneTask:
    """W3: one local activity; returns when its last workflow task started."""

    @workflow.run
    async def run(self, i: int) -> float:
        await workflow.execute_local_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return workflow.now().timestamp()


@workflow.defn
class Stamp:
    """Enqueue -> start: the start time of the first workflow task."""

    @workflow.run
    async def run(self) -> float:
        return workflow.now().timestamp()


async def serve(target: str) -> None:
    """Runs a worker for every workflow and the activity on task queue ``bench``."""
    client = await Client.connect(target)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ThreeLocal, ThreeRemote, OneTask, Stamp],
        activities=[noop],
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(serve(os.environ["TEMPORAL_TARGET"]))
