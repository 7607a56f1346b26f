"""Checkpoints sent on the worker's Connect stream.

A running workflow's step results and its completion travel as ``checkpoint``
messages on the stream the worker already holds, rather than as one unary call
each; the service group-commits them and answers each with a ``checkpointed``
message carrying the same id, after the commit. That saves a gRPC call per
checkpoint on both sides.

Whenever the stream cannot give an answer (none is registered, it breaks while
the checkpoint waits, the answer is late, or it reports a transient failure),
the checkpoint is sent again as the unary call, with that call's retries. Both
are idempotent, so a checkpoint that landed twice is recorded once.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Protocol

from google.rpc import status_pb2

from baton._errors import map_status
from baton._proto.baton.v1 import worker_service_pb2 as pb
from baton._rpc import CHECKPOINT_RETRY, DEFAULT_TIMEOUT
from baton._rpc_async import AsyncRpc
from baton._tracing import outgoing_metadata

__all__ = ["Checkpointer", "StreamCheckpoints"]


class Checkpointer(Protocol):
    """Where a running workflow sends its checkpoints (`AsyncRpc` is one)."""

    async def record_step(self, request: pb.RecordStepRequest) -> pb.RecordStepResponse:
        """Records a step result (idempotent); raises as the RecordStep call."""
        ...

    async def complete_workflow(
        self, request: pb.CompleteWorkflowRequest
    ) -> pb.CompleteWorkflowResponse:
        """Completes the workflow (idempotent); raises as the CompleteWorkflow call."""
        ...


class _StreamLost(Exception):
    """The stream a checkpoint was sent on ended before its answer."""


@dataclass(frozen=True)
class _Pending:
    answer: asyncio.Future[pb.Checkpointed]
    outbox: asyncio.Queue[pb.ConnectRequest | None]


class StreamCheckpoints:
    """Sends checkpoints on the current Connect stream, falling back to ``rpc``.

    Lives on the worker's event loop; the runner attaches each stream's outbox
    when the stream opens, passes every ``checkpointed`` answer to `answer`, and
    detaches the outbox when the stream ends.
    """

    def __init__(self, rpc: AsyncRpc) -> None:
        self._rpc = rpc
        self._outbox: asyncio.Queue[pb.ConnectRequest | None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}

    def attach(self, outbox: asyncio.Queue[pb.ConnectRequest | None]) -> None:
        """Sends checkpoints on this stream's outbox from now on."""
        self._outbox = outbox

    def detach(self, outbox: asyncio.Queue[pb.ConnectRequest | None]) -> None:
        """The stream of ``outbox`` ended: what waits on it goes by the unary call."""
        if self._outbox is outbox:
            self._outbox = None
        for checkpoint_id, pending in list(self._pending.items()):
            if pending.outbox is outbox:
                del self._pending[checkpoint_id]
                if not pending.answer.done():
                    pending.answer.set_exception(_StreamLost())

    def answer(self, checkpointed: pb.Checkpointed) -> None:
        """Delivers an answer the service sent on the stream."""
        pending = self._pending.pop(checkpointed.id, None)
        if pending is not None and not pending.answer.done():
            pending.answer.set_result(checkpointed)

    async def record_step(self, request: pb.RecordStepRequest) -> pb.RecordStepResponse:
        """Records a step result; raises as `AsyncRpc.record_step`."""
        answer = await self._send(pb.Checkpoint(record_step=request))
        if answer is None:
            return await self._rpc.record_step(request)
        return answer.record_step

    async def complete_workflow(
        self, request: pb.CompleteWorkflowRequest
    ) -> pb.CompleteWorkflowResponse:
        """Completes a workflow; raises as `AsyncRpc.complete_workflow`."""
        answer = await self._send(pb.Checkpoint(complete_workflow=request))
        if answer is None:
            return await self._rpc.complete_workflow(request)
        return answer.complete_workflow

    async def _send(self, checkpoint: pb.Checkpoint) -> pb.Checkpointed | None:
        """Sends on the stream and waits for the answer; ``None`` when the unary
        call must be used instead.

        Raises:
            RpcError: The service refused the checkpoint (not transiently).
        """
        outbox = self._outbox
        if outbox is None:
            return None
        checkpoint.id = next(self._ids)
        checkpoint.trace_carrier.update(outgoing_metadata())
        pending = _Pending(asyncio.get_running_loop().create_future(), outbox)
        self._pending[checkpoint.id] = pending
        outbox.put_nowait(pb.ConnectRequest(checkpoint=checkpoint))
        try:
            async with asyncio.timeout(DEFAULT_TIMEOUT):
                answer = await pending.answer
        except (_StreamLost, TimeoutError):
            return None
        finally:
            self._pending.pop(checkpoint.id, None)
        if answer.WhichOneof("result") != "error":
            return answer
        error = map_status(status_pb2.Status.FromString(answer.error))
        if error.code in CHECKPOINT_RETRY.codes:
            return None
        raise error
