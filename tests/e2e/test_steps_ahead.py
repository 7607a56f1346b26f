"""A step's result is sent ahead: `ctx.run` returns while it is on its way, and
what the workflow does next waits until it is committed. The completion leaves
right behind the last step and is never written without it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import baton
from baton import AsyncWorkflowContext, Client, Worker, WorkflowContext, WorkflowStatus
from tests.conftest import ThreadServer, server_config, start_thread_server, worker_in_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ahead_worker(server: ThreadServer) -> Iterator[Worker]:
    """Workflows whose steps look at what the service has recorded so far."""
    worker = Worker(server.target)

    def recorded(workflow_id: str) -> list[str]:
        with Client(server.target) as client:
            return [step.name for step in client.list_steps(workflow_id)]

    @worker.step()
    def pay(order: str) -> str:
        return f"paid {order}"

    @worker.step()
    def look(workflow_id: str) -> list[str]:
        return recorded(workflow_id)

    @worker.step()
    async def look_async(workflow_id: str) -> list[str]:
        return await asyncio.to_thread(recorded, workflow_id)

    @worker.workflow()
    def sync_order(ctx: WorkflowContext, order: str) -> list[str]:
        paid = ctx.run(pay, order)
        seen = ctx.run(look, ctx.workflow_id)
        ctx.set_event("paid", paid)
        ctx.run(pay, "again")
        return seen

    @worker.workflow()
    async def async_order(ctx: AsyncWorkflowContext, order: str) -> list[str]:
        paid = await ctx.run(pay, order)
        seen: list[str] = await ctx.run(look_async, ctx.workflow_id)
        await ctx.set_event("paid", paid)
        await ctx.run(pay, "again")
        return seen

    @worker.workflow()
    def sync_branches(ctx: WorkflowContext, order: str) -> list[str]:
        ctx.run(pay, order)
        (seen,) = ctx.gather(ctx.go(look, ctx.workflow_id))
        return seen  # type: ignore[no-any-return]

    @worker.workflow()
    async def async_branches(ctx: AsyncWorkflowContext, order: str) -> list[str]:
        await ctx.run(pay, order)
        (seen,) = await ctx.gather(ctx.go(look_async, ctx.workflow_id))
        return seen  # type: ignore[no-any-return]

    @worker.step()
    def progress() -> str:
        baton.write_stream("progress", "half way")
        return "written"

    @worker.workflow()
    async def async_with_a_plain_step_writing(ctx: AsyncWorkflowContext, order: str) -> str:
        await ctx.run(pay, order)
        return await ctx.run(progress)  # type: ignore[no-any-return]

    with worker_in_thread(worker):
        yield worker


@pytest.mark.parametrize("workflow", ["sync_order", "async_order"])
def test_a_steps_result_is_committed_before_the_next_step_runs_and_the_end_follows_the_last(
    server: ThreadServer, ahead_worker: Worker, workflow: str
) -> None:
    with Client(server.target) as client:
        handle = client.start_workflow(workflow, "A-1", workflow_id=f"{workflow}-1")
        # The second step saw the first one already in the journal.
        assert handle.result(timeout=30) == ["pay"]
        # Once the event is visible, the step before it is recorded too.
        assert client.get_event(f"{workflow}-1", "paid", timeout=10) == "paid A-1"
        steps = client.list_steps(f"{workflow}-1")
    # Nothing is missing behind the completion, the last step included.
    assert [(s.function_id, s.name) for s in steps] == [
        (1, "pay"),
        (2, "look" if workflow == "sync_order" else "look_async"),
        (3, "baton.set_event"),
        (4, "pay"),
    ]
    assert steps[-1].output == "paid again"


@pytest.mark.parametrize("workflow", ["sync_branches", "async_branches"])
def test_a_concurrent_branch_also_starts_after_the_step_before_it_is_committed(
    server: ThreadServer, ahead_worker: Worker, workflow: str
) -> None:
    with Client(server.target) as client:
        assert client.start_workflow(workflow, "B-1").result(timeout=30) == ["pay"]


def test_a_plain_step_of_an_async_workflow_writes_to_a_stream(
    server: ThreadServer, ahead_worker: Worker
) -> None:
    with Client(server.target) as client:
        handle = client.start_workflow("async_with_a_plain_step_writing", "C-1")
        assert handle.result(timeout=30) == "written"
        assert list(client.read_stream(handle.workflow_id, "progress")) == ["half way"]


def test_a_last_step_the_service_refuses_fails_the_workflow_instead_of_leaving_it_running(
    database_url: str,
) -> None:
    small = start_thread_server(server_config(database_url, max_payload_bytes=4096))
    worker = Worker(small.target)

    @worker.step()
    def too_big() -> str:
        return "x" * 10_000

    @worker.workflow()
    def oversized(ctx: WorkflowContext) -> str:
        ctx.run(too_big)
        return "never seen"

    try:
        with worker_in_thread(worker), Client(small.target) as client:
            handle = client.start_workflow("oversized", workflow_id="oversized-1")
            with pytest.raises(Exception, match="4096 bytes"):
                handle.result(timeout=30)
            assert handle.status() == WorkflowStatus.ERROR
            assert client.list_steps("oversized-1") == []
    finally:
        small.stop()
