"""The worker's slots, against a scripted Connect stream: a run grants its slot
back as soon as its workflow code is done, with its completion, so the service
can dispatch the next workflow while that completion is being written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from baton import Worker, WorkflowContext
from baton._checkpoints import StreamCheckpoints
from baton._proto.baton.v1 import common_pb2
from baton._proto.baton.v1 import worker_service_pb2 as wk
from baton._runner import WorkerRunner

pytestmark = pytest.mark.timeout(10)

worker = Worker("localhost:1", concurrency=1)


@worker.workflow()
def done_at_once(ctx: WorkflowContext) -> str:
    return "done"


class _Call:
    """The service's side of one Connect stream: the test pushes responses."""

    def __init__(self, requests: AsyncIterator[wk.ConnectRequest]) -> None:
        self.requests = requests
        self.responses: asyncio.Queue[wk.ConnectResponse | None] = asyncio.Queue()

    def __aiter__(self) -> _Call:
        return self

    async def __anext__(self) -> wk.ConnectResponse:
        response = await self.responses.get()
        if response is None:
            raise StopAsyncIteration
        return response

    def cancel(self) -> None:
        pass


class _Rpc:
    call: _Call

    def connect(self, requests: AsyncIterator[wk.ConnectRequest]) -> _Call:
        self.call = _Call(requests)
        return self.call


async def test_a_run_grants_its_slot_back_with_its_completion_not_after_the_answer() -> None:
    runner = WorkerRunner(worker._config, worker._workflows, worker._steps)
    rpc: Any = _Rpc()
    sent: list[wk.ConnectRequest] = []
    completion = asyncio.Event()

    async def collect() -> None:
        async for request in rpc.call.requests:
            sent.append(request)
            checkpoints = [request.checkpoint] if request.HasField("checkpoint") else []
            checkpoints += list(request.checkpoints.checkpoints)
            if any(c.HasField("complete_workflow") for c in checkpoints):
                completion.set()

    with ThreadPoolExecutor(1) as executor:
        session = asyncio.create_task(runner._run_session(rpc, StreamCheckpoints(rpc), executor))
        await asyncio.sleep(0)  # the session opens its stream
        collector = asyncio.create_task(collect())
        registered = wk.Registered(worker_id="w", completion_follows_step=True)
        registered.heartbeat_interval.FromSeconds(60)
        rpc.call.responses.put_nowait(wk.ConnectResponse(registered=registered))
        dispatch = wk.DispatchWorkflow(
            workflow_id="wf-1",
            workflow_name="done_at_once",
            attempt=1,
            input=common_pb2.Payload(json="[]"),
        )
        rpc.call.responses.put_nowait(wk.ConnectResponse(dispatch=dispatch))
        await asyncio.wait_for(completion.wait(), 5)
        # The completion is not answered yet, and the slot is back already.
        await asyncio.wait_for(_until(lambda: any(r.HasField("slots") for r in sent)), 5)
        assert sent[0].WhichOneof("message") == "register"
        assert sum(r.slots.workflow_slots for r in sent if r.HasField("slots")) == 1
        (checkpoint,) = [r.checkpoint for r in sent if r.HasField("checkpoint")]
        answer = wk.Checkpointed(
            id=checkpoint.id,
            complete_workflow=wk.CompleteWorkflowResponse(
                status=common_pb2.WORKFLOW_STATUS_SUCCESS
            ),
        )
        rpc.call.responses.put_nowait(wk.ConnectResponse(checkpointed=answer))
        await asyncio.wait_for(_until(lambda: not runner._active), 5)
        # The run has ended: no second grant for the same slot.
        assert sum(r.slots.workflow_slots for r in sent if r.HasField("slots")) == 1
        assert runner._registration().register.workflow_slots == 1
        rpc.call.responses.put_nowait(None)
        await asyncio.wait_for(session, 5)
        collector.cancel()


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.001)
