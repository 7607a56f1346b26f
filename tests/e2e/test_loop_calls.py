"""A plain ``def`` workflow's thread runs its async work (an ``async def``
step, a recv) on the worker's loop; what ends there is the call's outcome,
unless the run itself is being torn down."""

from __future__ import annotations

import asyncio

import pytest

from baton import Client, StepError, Worker, WorkflowContext
from tests.conftest import ThreadServer, worker_in_thread

pytestmark = pytest.mark.timeout(60)


def test_an_async_step_that_cancels_itself_fails_as_a_step_on_a_live_worker(
    server: ThreadServer,
) -> None:
    worker = Worker(server.target)

    @worker.step(max_attempts=1)
    async def gives_up() -> None:
        waiting = asyncio.get_running_loop().create_future()
        waiting.cancel()
        await waiting  # ends the step's task cancelled

    @worker.workflow()
    def tries(ctx: WorkflowContext) -> str:
        try:
            ctx.run(gives_up)
        except StepError as exc:
            return f"step failed: {exc.type}"
        return "step passed"

    with Client(server.target) as client, worker_in_thread(worker):
        handle = client.start_workflow("tries", workflow_id="self-cancelled")
        # Before: taken for the worker stopping, the run was dropped and the
        # workflow stayed PENDING on a live worker.
        assert handle.result(timeout=30) == "step failed: CancelledError"
