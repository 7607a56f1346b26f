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
import functools
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

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


@dataclass(eq=False)
class _Pending:
    """A checkpoint on the stream, waiting for its answer."""

    result: asyncio.Future[Any]
    outbox: asyncio.Queue[pb.ConnectRequest | None] | None
    """The stream it went on (``None``: there was none)."""
    pick: Callable[[pb.Checkpointed], Any]
    """The answer's response, from the ``checkpointed`` message."""
    unary: Callable[[], Awaitable[Any]]
    """The same checkpoint as the unary call, for when the stream cannot answer."""
    late: asyncio.TimerHandle | None = None


class StreamCheckpoints:
    """Sends checkpoints on the current Connect stream, falling back to ``rpc``.

    Lives on the worker's event loop; the runner attaches each stream's outbox
    when the stream opens, passes every ``checkpointed`` answer to `answer`, and
    detaches the outbox when the stream ends.

    Each checkpoint's answer is a future that `answer` settles itself, in the
    stream reader's callback: no task per checkpoint, and no loop iteration
    between the answer arriving and whoever waits on it hearing of it.
    """

    def __init__(self, rpc: AsyncRpc) -> None:
        self._rpc = rpc
        self._outbox: asyncio.Queue[pb.ConnectRequest | None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._fallbacks: set[asyncio.Task[Any]] = set()

    def attach(self, outbox: asyncio.Queue[pb.ConnectRequest | None]) -> None:
        """Sends checkpoints on this stream's outbox from now on."""
        self._outbox = outbox

    def detach(self, outbox: asyncio.Queue[pb.ConnectRequest | None]) -> None:
        """The stream of ``outbox`` ended: what waits on it goes by the unary call."""
        if self._outbox is outbox:
            self._outbox = None
        for checkpoint_id, pending in list(self._pending.items()):
            if pending.outbox is outbox:
                self._fall_back(self._pending.pop(checkpoint_id))

    def answer(self, checkpointed: pb.Checkpointed) -> None:
        """Delivers an answer the service sent on the stream."""
        pending = self._pending.pop(checkpointed.id, None)
        if pending is None:
            return
        if pending.late is not None:
            pending.late.cancel()
        if pending.result.done():
            return  # its waiter gave up
        if checkpointed.WhichOneof("result") != "error":
            pending.result.set_result(pending.pick(checkpointed))
            return
        try:
            error = map_status(status_pb2.Status.FromString(checkpointed.error))
        except Exception as exc:  # a refusal that does not parse: the waiter hears it
            pending.result.set_exception(exc)
            return
        if error.code in CHECKPOINT_RETRY.codes:
            self._fall_back(pending)
        else:
            pending.result.set_exception(error)

    def record_step(self, request: pb.RecordStepRequest) -> asyncio.Future[pb.RecordStepResponse]:
        """Sends a step result now; the answer raises as `AsyncRpc.record_step`."""
        return self._send(
            pb.Checkpoint(record_step=request),
            _record_step_response,
            lambda: self._rpc.record_step(request),
        )

    def complete_workflow(
        self, request: pb.CompleteWorkflowRequest
    ) -> asyncio.Future[pb.CompleteWorkflowResponse]:
        """Sends a completion now; the answer raises as `AsyncRpc.complete_workflow`."""
        return self._send(
            pb.Checkpoint(complete_workflow=request),
            _complete_workflow_response,
            lambda: self._rpc.complete_workflow(request),
        )

    def _send(
        self,
        checkpoint: pb.Checkpoint,
        pick: Callable[[pb.Checkpointed], Any],
        unary: Callable[[], Awaitable[Any]],
    ) -> asyncio.Future[Any]:
        """Puts the checkpoint on the stream's outbox (or, with no stream, makes
        the unary call); returns the future of its answer."""
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        pending = _Pending(loop.create_future(), outbox, pick, unary)
        if outbox is None:
            self._fall_back(pending)
            return pending.result
        checkpoint.id = next(self._ids)
        checkpoint.trace_carrier.update(outgoing_metadata())
        pending.late = loop.call_later(DEFAULT_TIMEOUT, self._late, checkpoint.id)
        self._pending[checkpoint.id] = pending
        outbox.put_nowait(pb.ConnectRequest(checkpoint=checkpoint))
        return pending.result

    def _late(self, checkpoint_id: int) -> None:
        """No answer on the stream in time: the unary call takes over."""
        pending = self._pending.pop(checkpoint_id, None)
        if pending is not None:
            self._fall_back(pending)

    def _fall_back(self, pending: _Pending) -> None:
        """Sends the checkpoint as the unary call (with its retries); its outcome
        settles the checkpoint's future. Given up with the future."""
        if pending.late is not None:
            pending.late.cancel()
        if pending.result.done():
            return
        call = asyncio.ensure_future(pending.unary())
        self._fallbacks.add(call)
        call.add_done_callback(self._fallbacks.discard)
        call.add_done_callback(functools.partial(_settle, pending.result))
        pending.result.add_done_callback(functools.partial(_give_up, call))


def _record_step_response(answer: pb.Checkpointed) -> pb.RecordStepResponse:
    return answer.record_step


def _complete_workflow_response(answer: pb.Checkpointed) -> pb.CompleteWorkflowResponse:
    return answer.complete_workflow


def _settle(result: asyncio.Future[Any], call: asyncio.Future[Any]) -> None:
    """Gives ``result`` the outcome of the unary ``call``."""
    error = None if call.cancelled() else call.exception()  # retrieved even if unused
    if result.done():
        return
    if call.cancelled():
        result.cancel()
    elif error is not None:
        result.set_exception(error)
    else:
        result.set_result(call.result())


def _give_up(call: asyncio.Future[Any], result: asyncio.Future[Any]) -> None:
    """Cancels the unary ``call`` when its waiter cancelled ``result``."""
    if result.cancelled():
        call.cancel()
