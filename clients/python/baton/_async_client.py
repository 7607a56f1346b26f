"""`AsyncClient`: start workflows and follow them, from asyncio code."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import grpc

from baton import _client_shared as shared
from baton._convert import status_from_proto, step_info_from_proto, workflow_info_from_proto
from baton._errors import DeadlineExceeded, Unavailable, map_rpc_error
from baton._payload import Serializer, SerializerName
from baton._proto.baton.v1 import (
    common_pb2,
    event_service_pb2,
    message_service_pb2,
    stream_service_pb2,
    workflow_service_pb2,
)
from baton._rpc import AsyncRpc
from baton._types import StepInfo, WorkflowInfo, WorkflowStatus

__all__ = ["AsyncClient", "AsyncWorkflowHandle"]

logger = logging.getLogger("baton.client")


class AsyncClient:
    """The asyncio counterpart of `Client`; same methods, awaited.

    The connection opens on first use, inside the running event loop, and
    belongs to that loop. Use it as an async context manager, or await `close`.

    Example:
        ```python
        async with AsyncClient("localhost:50051") as client:
            handle = await client.start_workflow("checkout", {"id": 7})
            print(await handle.result(timeout=60))
        ```

    Args:
        target: ``host:port`` of the service. Default: the ``BATON_TARGET``
            environment variable, else ``"localhost:50051"``.
        token: Bearer token. Default: the ``BATON_TOKEN`` environment variable.
        serializer: ``"json"`` (portable, the default) or ``"pickle"`` (Python-only).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        token: str | None = None,
        serializer: SerializerName = "json",
    ) -> None:
        self._serializer = Serializer(serializer)
        self.target = shared.resolve_target(target)
        self._token = shared.resolve_token(token)
        self._rpc_instance: AsyncRpc | None = None

    @property
    def _rpc(self) -> AsyncRpc:
        # grpc.aio channels bind to the loop they are created in, so the channel
        # cannot be made in __init__, which may run outside any loop.
        if self._rpc_instance is None:
            self._rpc_instance = AsyncRpc(self.target, token=self._token)
        return self._rpc_instance

    async def close(self) -> None:
        """Closes the connection, if it was opened."""
        rpc, self._rpc_instance = self._rpc_instance, None
        if rpc is not None:
            await rpc.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        queue: str | None = None,
        app_version: str | None = None,
        timeout: float | None = None,
    ) -> AsyncWorkflowHandle:
        """Starts a workflow, or finds the one already started with this id.

        See `Client.start_workflow`.
        """
        request = shared.start_request(
            self._serializer,
            workflow,
            args,
            workflow_id=workflow_id,
            queue=queue,
            app_version=app_version,
            timeout=timeout,
        )
        response = await self._rpc.start_workflow(request)
        return AsyncWorkflowHandle(self, response.workflow.workflow_id)

    async def retrieve_workflow(self, workflow_id: str) -> AsyncWorkflowHandle:
        """Returns a handle to an existing workflow.

        Raises:
            NotFound: No workflow has this id.
        """
        await self._get(workflow_id, omit_payloads=True)
        return AsyncWorkflowHandle(self, workflow_id)

    async def get_workflow(self, workflow_id: str) -> WorkflowInfo:
        """Returns a workflow's current state.

        Raises:
            NotFound: No workflow has this id.
        """
        workflow = await self._get(workflow_id, omit_payloads=False)
        return workflow_info_from_proto(workflow, self._serializer)

    async def list_workflows(
        self,
        *,
        status: shared.StatusFilter = None,
        name: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> list[WorkflowInfo]:
        """Lists workflows, newest first; see `Client.list_workflows`."""
        shared.check_limit(limit)
        request = shared.list_request(status=status, name=name, page_size=page_size, limit=limit)
        found: list[WorkflowInfo] = []
        while limit is None or len(found) < limit:
            response = await self._rpc.list_workflows(request)
            found.extend(workflow_info_from_proto(w, self._serializer) for w in response.workflows)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return found if limit is None else found[:limit]

    async def list_steps(self, workflow_id: str) -> list[StepInfo]:
        """Lists a workflow's recorded steps in step order.

        Raises:
            NotFound: No workflow has this id.
        """
        request = workflow_service_pb2.ListWorkflowStepsRequest(workflow_id=workflow_id)
        steps: list[StepInfo] = []
        while True:
            response = await self._rpc.list_workflow_steps(request)
            steps.extend(step_info_from_proto(s, self._serializer) for s in response.steps)
            if not response.next_page_token:
                return steps
            request.page_token = response.next_page_token

    async def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Sends a message to a workflow; see `Client.send`."""
        await self._rpc.send(
            message_service_pb2.SendRequest(
                destination_id=destination_id,
                message=self._serializer.encode(message),
                topic=topic or "",
                idempotency_key=idempotency_key or "",
            )
        )

    async def get_event(self, workflow_id: str, key: str, timeout: float = 60.0) -> Any:
        """A workflow's event, waiting up to ``timeout``; see `Client.get_event`."""
        response = await self._rpc.get_event(
            shared.get_event_request(workflow_id, key, timeout), wait=timeout
        )
        return self._serializer.decode(response.value) if response.found else None

    async def list_events(self, workflow_id: str) -> dict[str, Any]:
        """A workflow's events and their latest values, by key."""
        response = await self._rpc.list_events(
            event_service_pb2.ListEventsRequest(workflow_id=workflow_id)
        )
        return {event.key: self._serializer.decode(event.value) for event in response.events}

    async def read_stream(
        self, workflow_id: str, key: str, from_offset: int = 0
    ) -> AsyncIterator[Any]:
        """Yields a stream's values as they are written; see `Client.read_stream`."""
        async for _, value in self.read_stream_entries(workflow_id, key, from_offset):
            yield value

    async def read_stream_entries(
        self, workflow_id: str, key: str, from_offset: int = 0
    ) -> AsyncIterator[tuple[int, Any]]:
        """Like `read_stream`, yielding ``(offset, value)`` pairs."""
        offset = from_offset
        failures = 0
        while True:
            call = self._rpc.read_stream(
                stream_service_pb2.ReadStreamRequest(
                    workflow_id=workflow_id, key=key, from_offset=offset
                )
            )
            try:
                async for response in call:
                    failures = 0
                    offset = response.offset + 1
                    yield response.offset, self._serializer.decode(response.value)
                return
            except grpc.RpcError as exc:
                error = map_rpc_error(exc)
                failures += 1
                if not isinstance(error, Unavailable) or failures > shared.STREAM_RETRIES:
                    raise error from exc
                await asyncio.sleep(shared.UNAVAILABLE_PAUSE)
            finally:
                call.cancel()

    async def watch_workflow(self, workflow_id: str) -> AsyncIterator[WorkflowInfo]:
        """Yields the workflow's state now and after each status change; see
        `Client.watch_workflow`."""
        call = self._rpc.watch_workflow(
            workflow_service_pb2.WatchWorkflowRequest(workflow_id=workflow_id)
        )
        try:
            async for response in call:
                yield workflow_info_from_proto(response.workflow, self._serializer)
        except grpc.RpcError as exc:
            raise map_rpc_error(exc) from exc
        finally:
            call.cancel()

    async def _get(self, workflow_id: str, *, omit_payloads: bool) -> common_pb2.Workflow:
        request = workflow_service_pb2.GetWorkflowRequest(
            workflow_id=workflow_id, omit_payloads=omit_payloads
        )
        return (await self._rpc.get_workflow(request)).workflow

    async def _result(self, workflow_id: str, timeout: float | None) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            wait = shared.AWAIT_SLICE
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    raise shared.timeout_error(workflow_id, timeout)
                wait = max(wait, shared.MIN_WAIT)
            try:
                response = await self._rpc.await_workflow(
                    shared.await_request(workflow_id, wait), timeout=wait + shared.AWAIT_MARGIN
                )
            except (Unavailable, DeadlineExceeded) as exc:
                # The service restarting must not fail a caller who is prepared to wait.
                logger.warning("waiting for workflow %s: %s; asking again", workflow_id, exc)
                await asyncio.sleep(shared.UNAVAILABLE_PAUSE)
                continue
            if response.done:
                return shared.outcome(response.workflow, self._serializer)


class AsyncWorkflowHandle:
    """A reference to a started workflow, for asyncio code.

    Attributes:
        workflow_id: The workflow's id.
    """

    def __init__(self, client: AsyncClient, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"AsyncWorkflowHandle({self.workflow_id!r})"

    async def result(self, timeout: float | None = None) -> Any:
        """Waits for the workflow to finish and returns its output.

        Args:
            timeout: Seconds to wait at most. Default: wait as long as it takes.

        Raises:
            TimeoutError: The timeout passed first (the workflow keeps running).
            WorkflowFailed: It finished with an error.
            WorkflowCancelled: It was cancelled.
            MaxRecoveryAttemptsExceeded: It was stopped as a dead letter.
        """
        return await self._client._result(self.workflow_id, timeout)

    async def status(self) -> WorkflowStatus:
        """Returns the workflow's current status."""
        workflow = await self._client._get(self.workflow_id, omit_payloads=True)
        return status_from_proto(workflow.status)

    async def get(self) -> WorkflowInfo:
        """Returns the workflow's current state."""
        return await self._client.get_workflow(self.workflow_id)
