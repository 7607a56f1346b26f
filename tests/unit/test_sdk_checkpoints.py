"""The worker sends checkpoints on its Connect stream and falls back to the unary
call whenever the stream cannot answer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from baton import FailedPrecondition
from baton._checkpoints import StreamCheckpoints
from baton._proto.baton.v1 import common_pb2 as common
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._rpc_async import AsyncRpc
from baton._runner import _drain_queue

pytestmark = pytest.mark.timeout(10)

REQUEST = wk.RecordStepRequest(
    context=common.WorkflowContext(workflow_id="w", function_id=1, attempt=1),
    step_name="pay",
    output=common.Payload(json="1"),
)


class _UnaryCalls:
    """Stands in for the worker's AsyncRpc: records which checkpoints went unary."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def record_step(self, request: wk.RecordStepRequest) -> wk.RecordStepResponse:
        self.calls.append(request)
        return wk.RecordStepResponse(step=common.Step(function_id=1, step_name="unary"))


def _checkpoints() -> tuple[StreamCheckpoints, _UnaryCalls]:
    unary = _UnaryCalls()
    return StreamCheckpoints(cast(AsyncRpc, unary)), unary


def _on_stream() -> tuple[StreamCheckpoints, _UnaryCalls, asyncio.Queue[wk.ConnectRequest | None]]:
    """Checkpoints attached to a stream's outbox, and the unary calls they fell back to."""
    checkpoints, unary = _checkpoints()
    outbox: asyncio.Queue[wk.ConnectRequest | None] = asyncio.Queue()
    checkpoints.attach(outbox)
    return checkpoints, unary, outbox


def _answer_on_stream(checkpoint_id: int) -> wk.Checkpointed:
    # A stream answer carries a step only when it was recorded before.
    step = common.Step(function_id=1, step_name="stream")
    response = wk.RecordStepResponse(step=step, already_recorded=True)
    return wk.Checkpointed(id=checkpoint_id, record_step=response)


async def _sent(outbox: asyncio.Queue[wk.ConnectRequest | None]) -> wk.Checkpoint:
    message = await outbox.get()
    assert message is not None and message.HasField("checkpoint")
    return message.checkpoint


async def test_a_checkpoint_goes_on_the_stream_and_its_answer_is_returned() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    assert sent.record_step == REQUEST
    checkpoints.answer(_answer_on_stream(sent.id))
    assert (await call).step.step_name == "stream"
    assert unary.calls == []


async def test_without_a_stream_the_checkpoint_is_a_unary_call() -> None:
    checkpoints, unary = _checkpoints()
    assert (await checkpoints.record_step(REQUEST)).step.step_name == "unary"
    assert unary.calls == [REQUEST]


async def test_a_checkpoint_whose_stream_ends_before_the_answer_is_sent_again_unary() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    await _sent(outbox)
    checkpoints.detach(outbox)
    assert (await call).step.step_name == "unary"
    assert unary.calls == [REQUEST]


async def test_a_checkpoint_unanswered_in_time_is_sent_again_unary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("baton._checkpoints.DEFAULT_TIMEOUT", 0.05)
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    assert (await call).step.step_name == "unary"
    assert unary.calls == [REQUEST]
    # The stream's answer, arriving after all, changes nothing.
    checkpoints.answer(_answer_on_stream(sent.id))
    assert (await call).step.step_name == "unary"


async def test_an_answer_for_a_checkpoint_given_up_on_is_dropped() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    call.cancel()
    checkpoints.answer(_answer_on_stream(sent.id))
    checkpoints.detach(outbox)
    assert call.cancelled()
    assert unary.calls == []


def _refusal(code: int, reason: str) -> bytes:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="baton.dev"))
    return status_pb2.Status(code=code, message="refused", details=[info]).SerializeToString()


async def test_a_transient_failure_on_the_stream_is_retried_unary() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    checkpoints.answer(wk.Checkpointed(id=sent.id, error=_refusal(code_pb2.UNAVAILABLE, "")))
    assert (await call).step.step_name == "unary"
    assert unary.calls == [REQUEST]


async def test_a_refusal_on_the_stream_raises_what_the_unary_call_would() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    checkpoints.answer(
        wk.Checkpointed(id=sent.id, error=_refusal(code_pb2.FAILED_PRECONDITION, "STALE_ATTEMPT"))
    )
    with pytest.raises(FailedPrecondition) as refused:
        await call
    assert refused.value.reason == "STALE_ATTEMPT"
    assert unary.calls == []


async def test_a_refusal_that_does_not_parse_fails_the_waiter_instead_of_hanging() -> None:
    checkpoints, unary, outbox = _on_stream()
    call = checkpoints.record_step(REQUEST)
    sent = await _sent(outbox)
    checkpoints.answer(wk.Checkpointed(id=sent.id, error=b"\xff not a status"))
    with pytest.raises(Exception, match=r"(?i)pars|decod"):
        await call
    assert unary.calls == []


async def test_what_queued_together_leaves_together_checkpoints_in_one_message_grants_in_one() -> (
    None
):
    outbox: asyncio.Queue[wk.ConnectRequest | None] = asyncio.Queue()
    for checkpoint_id in (1, 2, 3):
        outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=checkpoint_id)))
        outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(workflow_slots=1)))
    outbox.put_nowait(wk.ConnectRequest(heartbeat=wk.Heartbeat()))
    outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=4)))
    outbox.put_nowait(None)
    outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=5)))  # after the end
    sent = [message async for message in _drain_queue(outbox)]
    assert [m.WhichOneof("message") for m in sent] == ["heartbeat", "checkpoints", "slots"]
    assert [c.id for c in sent[1].checkpoints.checkpoints] == [1, 2, 3, 4]
    assert sent[2].slots.workflow_slots == 3


async def test_a_grant_rides_in_the_last_checkpoint_batch_for_a_service_that_takes_it() -> None:
    outbox: asyncio.Queue[wk.ConnectRequest | None] = asyncio.Queue()
    outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=1)))
    outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(workflow_slots=1)))
    outbox.put_nowait(None)
    sent = [message async for message in _drain_queue(outbox, lambda: True)]
    assert [m.WhichOneof("message") for m in sent] == ["checkpoints"]
    assert [c.id for c in sent[0].checkpoints.checkpoints] == [1]
    assert sent[0].checkpoints.workflow_slots == 1
    # With no checkpoint to ride with, a grant goes alone.
    outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(workflow_slots=2)))
    outbox.put_nowait(None)
    sent = [message async for message in _drain_queue(outbox, lambda: True)]
    assert [m.WhichOneof("message") for m in sent] == ["slots"]
    assert sent[0].slots.workflow_slots == 2


async def test_step_slot_grants_queued_together_leave_as_one_grant_and_are_never_dropped() -> None:
    outbox: asyncio.Queue[wk.ConnectRequest | None] = asyncio.Queue()
    outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=1)))
    outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(workflow_slots=1)))
    outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(step_slots=1)))
    outbox.put_nowait(wk.ConnectRequest(slots=wk.GrantSlots(step_slots=1)))
    outbox.put_nowait(None)
    sent = [message async for message in _drain_queue(outbox, lambda: True)]
    assert [m.WhichOneof("message") for m in sent] == ["checkpoints", "slots"]
    assert sent[0].checkpoints.workflow_slots == 1  # rode with the checkpoint
    assert (sent[1].slots.workflow_slots, sent[1].slots.step_slots) == (0, 2)


async def test_a_lone_checkpoint_leaves_as_one_and_the_stream_waits_for_more() -> None:
    outbox: asyncio.Queue[wk.ConnectRequest | None] = asyncio.Queue()
    stream = _drain_queue(outbox)
    outbox.put_nowait(wk.ConnectRequest(checkpoint=wk.Checkpoint(id=1)))
    assert (await anext(stream)).checkpoint.id == 1
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not waiting.done()
    outbox.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await waiting
