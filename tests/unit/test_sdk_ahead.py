"""Steps sent ahead, without a service: the next operation waits for the commit
(and is not hurt by a caller's cancellation), and the completion goes right
behind the last step, or after it when the service would not wait for it."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from baton import InvalidArgument, Worker
from baton._context import AsyncWorkflowContext, ContextCore
from baton._proto.baton.v1 import common_pb2
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._runner import _batches, _complete
from tests.unit.contexts import offline_core

pytestmark = pytest.mark.timeout(10)

worker = Worker("localhost:1")


@worker.step()
def pay() -> str:
    return "paid"


class _Checkpoints:
    """A checkpointer whose answers the test gives; records what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.answers: dict[str, asyncio.Future[Any]] = {}

    def _send(self, key: str) -> asyncio.Future[Any]:
        self.sent.append(key)
        answer = asyncio.get_running_loop().create_future()
        self.answers[key] = answer
        return answer

    def record_step(self, request: wk.RecordStepRequest) -> asyncio.Future[Any]:
        return self._send(f"step {request.context.function_id}")

    def complete_workflow(self, request: wk.CompleteWorkflowRequest) -> asyncio.Future[Any]:
        return self._send(
            f"complete after {request.follows_step}" if request.error.type == "" else "fail"
        )

    def answer_step(self, function_id: int) -> None:
        self.answers[f"step {function_id}"].set_result(wk.RecordStepResponse())


def _core(checkpoints: _Checkpoints) -> ContextCore:
    return offline_core(attempt=1, loop=asyncio.get_running_loop(), checkpoints=checkpoints)


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0)


async def test_a_step_returns_before_its_commit_and_the_next_step_waits_for_it() -> None:
    checkpoints = _Checkpoints()
    ctx = AsyncWorkflowContext(_core(checkpoints))
    assert await ctx.run(pay) == "paid"  # answered or not
    assert checkpoints.sent == ["step 1"]
    second = asyncio.ensure_future(ctx.run(pay))
    await asyncio.sleep(0.05)
    assert checkpoints.sent == ["step 1"]  # step 2 has not run
    checkpoints.answer_step(1)
    await _until(lambda: checkpoints.sent == ["step 1", "step 2"])
    checkpoints.answer_step(2)
    assert await second == "paid"


async def test_a_cancelled_wait_does_not_cancel_the_write_it_waited_for() -> None:
    checkpoints = _Checkpoints()
    core = _core(checkpoints)
    await AsyncWorkflowContext(core).run(pay)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await core.settled()
    assert not checkpoints.answers["step 1"].cancelled()
    checkpoints.answer_step(1)
    await core.settled()
    assert core.ahead_step == 0


async def test_a_refused_step_surfaces_at_the_next_operation() -> None:
    checkpoints = _Checkpoints()
    ctx = AsyncWorkflowContext(_core(checkpoints))
    await ctx.run(pay)
    checkpoints.answers["step 1"].set_exception(_too_large())
    with pytest.raises(InvalidArgument):
        await ctx.run(pay)
    assert checkpoints.sent == ["step 1"]


def _too_large() -> InvalidArgument:
    return InvalidArgument("output: too large", code=grpc.StatusCode.INVALID_ARGUMENT)


def _completion(follows_step: int) -> wk.CompleteWorkflowRequest:
    return wk.CompleteWorkflowRequest(
        workflow_id="order-7",
        attempt=1,
        output=common_pb2.Payload(json='"done"'),
        follows_step=follows_step,
    )


async def test_the_completion_leaves_behind_its_last_step_without_waiting_for_it() -> None:
    checkpoints = _Checkpoints()
    core = _core(checkpoints)
    await AsyncWorkflowContext(core).run(pay)
    completing = asyncio.ensure_future(
        _complete(checkpoints, _completion(core.ahead_step), core.settled)
    )  # type: ignore[arg-type]
    await _until(lambda: len(checkpoints.sent) == 2)
    assert checkpoints.sent == ["step 1", "complete after 1"]
    checkpoints.answer_step(1)
    checkpoints.answers["complete after 1"].set_result(wk.CompleteWorkflowResponse())
    await completing


async def test_without_follows_step_the_completion_waits_for_the_step() -> None:
    checkpoints = _Checkpoints()
    core = _core(checkpoints)
    await AsyncWorkflowContext(core).run(pay)
    completing = asyncio.ensure_future(_complete(checkpoints, _completion(0), core.settled))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert checkpoints.sent == ["step 1"]
    checkpoints.answer_step(1)
    await _until(lambda: len(checkpoints.sent) == 2)
    checkpoints.answers["complete after 0"].set_result(wk.CompleteWorkflowResponse())
    await completing


async def test_a_last_step_refused_for_good_fails_the_workflow_instead() -> None:
    checkpoints = _Checkpoints()
    core = _core(checkpoints)
    await AsyncWorkflowContext(core).run(pay)
    completing = asyncio.ensure_future(_complete(checkpoints, _completion(1), core.settled))  # type: ignore[arg-type]
    await _until(lambda: len(checkpoints.sent) == 2)
    checkpoints.answers["step 1"].set_exception(_too_large())
    await _until(lambda: len(checkpoints.sent) == 3)
    assert checkpoints.sent[2] == "fail"
    assert checkpoints.answers["complete after 1"].cancelled()
    checkpoints.answers["fail"].set_result(wk.CompleteWorkflowResponse())
    await completing


async def test_a_step_reaching_the_loop_after_the_code_returned_waits_for_the_completion() -> None:
    """A plain ``def`` workflow's step sent from its thread, whose send reaches
    the loop only after the workflow's code returned, is its last: it is held
    until `release_held` (called right before the completion is sent), so the
    two leave together. Once released, nothing is held any more."""
    checkpoints = _Checkpoints()
    core = _core(checkpoints)

    def from_thread(*steps: int) -> None:
        def run() -> None:
            for function_id in steps:
                request = core.record_request(function_id, "pay", datetime.now(UTC), output="paid")
                core.record_ahead(request, from_thread=True)
            core.code_returned()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()  # blocks the loop: the sends reach it after the code returned

    from_thread(1)
    await asyncio.sleep(0)  # the loop runs the send it was handed
    assert checkpoints.sent == []
    assert core.ahead_step == 1  # the completion still follows it
    core.release_held()
    assert checkpoints.sent == ["step 1"]

    from_thread(2)  # a stray step after the release (say, a step thread's)
    await asyncio.sleep(0)
    assert checkpoints.sent == ["step 1", "step 2"]


def test_checkpoints_queued_together_are_cut_into_batches_that_fit_a_message() -> None:
    big = wk.Checkpoint(
        id=1, record_step=wk.RecordStepRequest(output=common_pb2.Payload(json="x" * 1_500_000))
    )
    small = wk.Checkpoint(id=2)
    batches = list(_batches([big, big, big, small, big]))
    assert [len(b) for b in batches] == [2, 3]
    assert all(sum(c.ByteSize() for c in b) <= 4 * 1024 * 1024 for b in batches)
    assert [len(b) for b in _batches([small] * 5)] == [5]
    assert list(_batches([])) == []
