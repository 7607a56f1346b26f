"""Replay: a workflow re-run from its journal returns recorded results without
executing steps or calling the service, and refuses a changed step order."""

from __future__ import annotations

import asyncio

import pytest

from baton import AsyncWorkflowContext, NonDeterministicError, StepError, Worker, WorkflowContext
from baton._context import ContextCore
from baton._proto.baton.v1 import common_pb2
from baton._run_state import LeaseLost, RunState, WorkflowStop
from tests.unit.contexts import offline_core

worker = Worker("localhost:1")
executed: list[str] = []


@worker.step()
def a() -> str:
    executed.append("a")
    return "fresh a"


@worker.step()
def b() -> str:
    executed.append("b")
    return "fresh b"


@worker.step()
async def async_a() -> str:
    executed.append("async_a")
    return "fresh async a"


def _core(journal: list[common_pb2.Step], state: RunState | None = None) -> ContextCore:
    # No rpc and no loop: any attempt to reach the service would fail loudly.
    return offline_core(journal, state=state)


def _ok(function_id: int, name: str, json: str) -> common_pb2.Step:
    return common_pb2.Step(
        function_id=function_id, step_name=name, output=common_pb2.Payload(json=json)
    )


def test_recorded_steps_return_their_output_without_running() -> None:
    executed.clear()
    ctx = WorkflowContext(_core([_ok(1, "a", '"recorded a"'), _ok(2, "b", '"recorded b"')]))
    assert ctx.run(a) == "recorded a"
    assert ctx.run(b) == "recorded b"
    assert executed == []


async def test_async_workflows_replay_the_same_way() -> None:
    executed.clear()
    ctx = AsyncWorkflowContext(_core([_ok(1, "async_a", '"recorded"'), _ok(2, "b", '""')]))
    assert await ctx.run(async_a) == "recorded"
    assert await ctx.run(b) == ""
    assert executed == []


def test_a_recorded_failure_is_raised_as_step_error() -> None:
    failed = common_pb2.Step(
        function_id=1,
        step_name="a",
        error=common_pb2.WorkflowError(type="ValueError", message="boom", traceback="tb"),
    )
    ctx = WorkflowContext(_core([failed]))
    with pytest.raises(StepError) as caught:
        ctx.run(a)
    assert (caught.value.type, caught.value.message, caught.value.traceback) == (
        "ValueError",
        "boom",
        "tb",
    )
    assert caught.value.step_name == "a"
    assert caught.value.function_id == 1


def test_a_different_step_than_recorded_is_a_clear_non_determinism_error() -> None:
    core = _core([_ok(1, "a", '"x"'), _ok(2, "a", '"y"')])
    ctx = WorkflowContext(core)
    ctx.run(a)
    with pytest.raises(NonDeterministicError) as caught:
        ctx.run(b)
    assert str(caught.value) == (
        "workflow 'checkout' (id order-7), step 2: the journal recorded step 'a'"
        " but the code now calls 'b'"
    )
    assert core.nondeterminism is caught.value


def test_a_stale_run_stops_at_its_next_step_with_a_base_exception() -> None:
    state = RunState()
    ctx = WorkflowContext(_core([_ok(1, "a", '"x"')], state))
    state.stale = True
    with pytest.raises(LeaseLost):
        ctx.run(a)
    assert not issubclass(WorkflowStop, Exception)


def test_only_registered_steps_can_run() -> None:
    ctx = WorkflowContext(_core([]))
    with pytest.raises(TypeError, match=r"@worker\.step"):
        ctx.run(lambda: 1)


def test_replay_needs_no_event_loop() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    assert WorkflowContext(_core([_ok(1, "async_a", '"r"')])).run(async_a) == "r"
