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
from collections.abc import Awaitable
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
    """Where a running workflow sends its checkpoints (`AsyncRpc` is one).

    Both methods return an awaitable of the answer; an implementation that can
    (`StreamCheckpoints`) sends the checkpoint when called rather than when
    awaited, so checkpoints made one after the other leave in that order.
    """

    def record_step(self, request: pb.RecordStepRequest) -> Awaitable[pb.RecordStepResponse]:
        """Records a step result (idempotent); raises as the RecordStep call."""
        ...

    def complete_workflow(
        self, request: pb.CompleteWorkflowRequest
    ) -> Awaitable[pb.CompleteWorkflowResponse]:
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

    def record_step(self, request: pb.RecordStepRequest) -> Awaitable[pb.RecordStepResponse]:
        """Sends a step result now; the answer raises as `AsyncRpc.record_step`."""
        return self._record_step(request, self._send(pb.Checkpoint(record_step=request)))

    def complete_workflow(
        self, request: pb.CompleteWorkflowRequest
    ) -> Awaitable[pb.CompleteWorkflowResponse]:
        """Sends a completion now; the answer raises as `AsyncRpc.complete_workflow`."""
        return self._complete(request, self._send(pb.Checkpoint(complete_workflow=request)))

    async def _record_step(
        self, request: pb.RecordStepRequest, sent: tuple[int, _Pending] | None
    ) -> pb.RecordStepResponse:
        answer = await self._answer(sent)
        if answer is None:
            return await self._rpc.record_step(request)
        return answer.record_step

    async def _complete(
        self, request: pb.CompleteWorkflowRequest, sent: tuple[int, _Pending] | None
    ) -> pb.CompleteWorkflowResponse:
        answer = await self._answer(sent)
        if answer is None:
            return await self._rpc.complete_workflow(request)
        return answer.complete_workflow

    def _send(self, checkpoint: pb.Checkpoint) -> tuple[int, _Pending] | None:
        """Puts the checkpoint on the stream's outbox; ``None`` when there is no stream."""
        outbox = self._outbox
        if outbox is None:
            return None
        checkpoint.id = next(self._ids)
        checkpoint.trace_carrier.update(outgoing_metadata())
        pending = _Pending(asyncio.get_running_loop().create_future(), outbox)
        self._pending[checkpoint.id] = pending
        outbox.put_nowait(pb.ConnectRequest(checkpoint=checkpoint))
        return checkpoint.id, pending

    async def _answer(self, sent: tuple[int, _Pending] | None) -> pb.Checkpointed | None:
        """Waits for the answer to what `_send` sent; ``None`` when the unary
        call must be used instead.

        Raises:
            RpcError: The service refused the checkpoint (not transiently).
        """
        if sent is None:
            return None
        checkpoint_id, pending = sent
        try:
            async with asyncio.timeout(DEFAULT_TIMEOUT):
                answer = await pending.answer
        except (_StreamLost, TimeoutError):
            return None
        finally:
            self._pending.pop(checkpoint_id, None)
        if answer.WhichOneof("result") != "error":
            return answer
        error = map_status(status_pb2.Status.FromString(answer.error))
        if error.code in CHECKPOINT_RETRY.codes:
            return None
        raise error
