"""Replay of communication: recorded messages, events, clock, randomness,
children and selections come from the journal without calling the service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from baton import AsyncWorkflowContext, NonDeterministicError, Worker, WorkflowContext
from baton._context import ContextCore
from baton._proto.baton.v1 import common_pb2
from tests.unit.contexts import offline_core

worker = Worker("localhost:1")


@worker.step()
def never_runs(name: str) -> str:
    raise AssertionError(f"step {name} ran during replay")


def _core(journal: list[common_pb2.Step]) -> ContextCore:
    # No rpc and no loop: any attempt to reach the service would fail loudly.
    return offline_core(journal)


def _ok(function_id: int, name: str, json: str | None = None) -> common_pb2.Step:
    step = common_pb2.Step(function_id=function_id, step_name=name)
    payload = common_pb2.Payload(json=json) if json is not None else common_pb2.Payload()
    step.output.CopyFrom(payload)
    return step


JOURNAL = [
    _ok(1, "baton.send"),
    _ok(2, "baton.recv", '{"status": "completed"}'),
    _ok(3, "baton.recv"),  # timed out
    _ok(4, "baton.set_event"),
    _ok(5, "baton.get_event", '"https://pay.example/1"'),
    _ok(6, "baton.write_stream", "0"),
    _ok(7, "baton.close_stream"),
    _ok(8, "baton.sleep"),
    _ok(9, "baton.now", '"2026-01-02T03:04:05+00:00"'),
    _ok(10, "baton.random", "0.25"),
    common_pb2.Step(function_id=11, step_name="baton.start_workflow", child_workflow_id="kid"),
    _ok(12, "baton.await_workflow", "70"),
    _ok(13, "never_runs", '"first"'),
    _ok(14, "never_runs", '"second"'),
    _ok(15, "baton.select", "1"),
]


def test_a_sync_workflow_replays_every_operation_from_the_journal() -> None:
    ctx = WorkflowContext(_core(JOURNAL))
    ctx.send("other", "hi")
    assert ctx.recv("payment_status", timeout=300) == {"status": "completed"}
    assert ctx.recv(timeout=1) is None
    ctx.set_event("payment_url", "x")
    assert ctx.get_event("other", "url") == "https://pay.example/1"
    ctx.write_stream("progress", "paid")
    ctx.close_stream("progress")
    ctx.sleep(300)
    assert ctx.now() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ctx.random() == 0.25
    child = ctx.start_workflow("child", 7)
    assert child.workflow_id == "kid"
    assert child.result() == 70
    first = ctx.go(never_runs, "a")
    second = ctx.go(never_runs, "b")
    assert ctx.select([first, second]) == "second"
    assert ctx.gather(first, second) == ["first", "second"]


def test_an_async_workflow_replays_every_operation_from_the_journal() -> None:
    async def body() -> None:
        ctx = AsyncWorkflowContext(_core(JOURNAL))
        await ctx.send("other", "hi")
        assert await ctx.recv("payment_status", timeout=300) == {"status": "completed"}
        assert await ctx.recv(timeout=1) is None
        await ctx.set_event("payment_url", "x")
        assert await ctx.get_event("other", "url") == "https://pay.example/1"
        await ctx.write_stream("progress", "paid")
        await ctx.close_stream("progress")
        await ctx.sleep(300)
        assert await ctx.now() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert await ctx.random() == 0.25
        child = await ctx.start_workflow("child", 7)
        assert await child.result() == 70
        first = ctx.go(never_runs, "a")
        second = ctx.go(never_runs, "b")
        assert await ctx.select([first, second]) == "second"
        assert await ctx.gather(first, second) == ["first", "second"]

    asyncio.run(body())


def test_a_recv_where_the_journal_recorded_a_send_is_a_non_determinism_error() -> None:
    ctx = WorkflowContext(_core([_ok(1, "baton.send")]))
    with pytest.raises(NonDeterministicError):
        ctx.recv("payment_status")


def test_write_stream_outside_a_step_says_where_it_belongs() -> None:
    import baton

    with pytest.raises(RuntimeError, match="inside a step"):
        baton.write_stream("progress", 1)
