"""Limits on long-lived calls, checked before a call reaches its servicer.

- Streams per connection: server-streaming and bidirectional calls (Connect,
  WatchWorkflow, AwaitWorkflows, ReadStream) open at once on one client
  connection.
- Readers per workflow: server-streaming calls whose request names a
  ``workflow_id`` (WatchWorkflow, ReadStream) open at once on one workflow.

Over a limit the call fails with RESOURCE_EXHAUSTED naming the limit and its
setting; nothing is written and other calls go on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from baton_server.servicers.handlers import HandlerInterceptor, responses, rewrap


class StreamLimits(HandlerInterceptor):
    """Counts open streaming calls per connection and per workflow."""

    def __init__(self, per_connection: int, per_workflow: int) -> None:
        self._per_connection = per_connection
        self._per_workflow = per_workflow
        self._by_peer: Counter[str] = Counter()
        self._by_workflow: Counter[str] = Counter()

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        # A server-streaming request may name the workflow it reads; a bidi one does not.
        reads_workflow = handler.unary_stream is not None
        return rewrap(
            handler,
            streaming=lambda behaviour: self._guard(behaviour, reads_workflow=reads_workflow),
        )

    def _guard(self, behaviour: Callable[..., Any], *, reads_workflow: bool) -> Callable[..., Any]:
        async def guarded(request: Any, context: Any) -> AsyncIterator[Any]:
            peer = context.peer()
            workflow_id = getattr(request, "workflow_id", "") if reads_workflow else ""
            if self._by_peer[peer] >= self._per_connection:
                await _refuse(
                    context,
                    f"this connection has {self._by_peer[peer]} streams open; the limit is "
                    f"{self._per_connection} (max_streams_per_connection)",
                )
            if workflow_id and self._by_workflow[workflow_id] >= self._per_workflow:
                await _refuse(
                    context,
                    f"workflow {workflow_id!r} has {self._by_workflow[workflow_id]} readers; "
                    f"the limit is {self._per_workflow} (max_readers_per_workflow)",
                )
            self._by_peer[peer] += 1
            if workflow_id:
                self._by_workflow[workflow_id] += 1
            try:
                async for response in responses(behaviour, request, context):
                    yield response
            finally:
                _release(self._by_peer, peer)
                if workflow_id:
                    _release(self._by_workflow, workflow_id)

        return guarded


def _release(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


async def _refuse(context: Any, message: str) -> None:
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message)
    await context.abort_with_status(rpc_status.to_status(status))
