"""`Client`: start workflows and follow them, from blocking code."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
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
from baton._rpc import SyncRpc
from baton._types import StepInfo, WorkflowInfo, WorkflowStatus

__all__ = ["Client", "WorkflowHandle"]

logger = logging.getLogger("baton.client")


class Client:
    """A connection to the Baton service for starting and inspecting workflows.

    Thread-safe; create one and share it. Use it as a context manager, or call
    `close` when done.

    Example:
        ```python
        with Client("localhost:50051") as client:
            handle = client.start_workflow("checkout", {"id": 7}, workflow_id="order-7")
            print(handle.result(timeout=60))
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
        self._rpc = SyncRpc(self.target, token=shared.resolve_token(token))

    def close(self) -> None:
        """Closes the connection."""
        self._rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        queue: str | None = None,
        app_version: str | None = None,
        timeout: float | None = None,
    ) -> WorkflowHandle:
        """Starts a workflow, or finds the one already started with this id.

        The workflow id is an idempotency key: starting the same id again
        returns a handle to the existing workflow (which never runs twice).

        Args:
            workflow: The workflow's name, or a function registered with
                ``@worker.workflow``.
            *args: The workflow's arguments (after ``ctx``).
            workflow_id: The id to give it. Default: a random UUID.
            queue: The queue to start it on. Default: start at once.
            app_version: Run it only on workers of this app version.
            timeout: Start-to-close timeout in seconds.

        Returns:
            A handle to the workflow.

        Raises:
            AlreadyExists: The id belongs to a workflow with another name.
            InvalidArgument: A malformed name, id or an oversized input.
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
        response = self._rpc.start_workflow(request)
        return WorkflowHandle(self, response.workflow.workflow_id)

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle:
        """Returns a handle to an existing workflow.

        Raises:
            NotFound: No workflow has this id.
        """
        self._get(workflow_id, omit_payloads=True)
        return WorkflowHandle(self, workflow_id)

    def get_workflow(self, workflow_id: str) -> WorkflowInfo:
        """Returns a workflow's current state.

        Raises:
            NotFound: No workflow has this id.
        """
        workflow = self._get(workflow_id, omit_payloads=False)
        return workflow_info_from_proto(workflow, self._serializer)

    def list_workflows(
        self,
        *,
        status: shared.StatusFilter = None,
        name: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> list[WorkflowInfo]:
        """Lists workflows, newest first, following pages until done or ``limit``.

        Args:
            status: Only workflows in this status (or any of these statuses).
            name: Only workflows with this name.
            limit: Return at most this many.
            page_size: Workflows fetched per call (1 to 1000; default the server's).
        """
        shared.check_limit(limit)
        request = shared.list_request(status=status, name=name, page_size=page_size, limit=limit)
        found: list[WorkflowInfo] = []
        while limit is None or len(found) < limit:
            response = self._rpc.list_workflows(request)
            found.extend(workflow_info_from_proto(w, self._serializer) for w in response.workflows)
            if not response.next_page_token:
                break
            request.page_token = response.next_page_token
        return found if limit is None else found[:limit]

    def list_steps(self, workflow_id: str) -> list[StepInfo]:
        """Lists a workflow's recorded steps in step order.

        Raises:
            NotFound: No workflow has this id.
        """
        request = workflow_service_pb2.ListWorkflowStepsRequest(workflow_id=workflow_id)
        steps: list[StepInfo] = []
        while True:
            response = self._rpc.list_workflow_steps(request)
            steps.extend(step_info_from_proto(s, self._serializer) for s in response.steps)
            if not response.next_page_token:
                return steps
            request.page_token = response.next_page_token

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Sends a message to a workflow, which receives it with ``ctx.recv(topic)``.

        At least once; exactly once when ``idempotency_key`` is given (a repeated
        send with the same key is a no-op, so it is also retried on outages).

        Raises:
            NotFound: No workflow has this id.
        """
        self._rpc.send(
            message_service_pb2.SendRequest(
                destination_id=destination_id,
                message=self._serializer.encode(message),
                topic=topic or "",
                idempotency_key=idempotency_key or "",
            )
        )

    def get_event(self, workflow_id: str, key: str, timeout: float = 60.0) -> Any:
        """Returns a workflow's event, waiting up to ``timeout`` seconds for it to be set.

        Returns:
            The latest value, or ``None`` if it was not set in time.

        Raises:
            NotFound: No workflow has this id.
        """
        response = self._rpc.get_event(
            shared.get_event_request(workflow_id, key, timeout), wait=timeout
        )
        return self._serializer.decode(response.value) if response.found else None

    def list_events(self, workflow_id: str) -> dict[str, Any]:
        """A workflow's events and their latest values, by key."""
        response = self._rpc.list_events(
            event_service_pb2.ListEventsRequest(workflow_id=workflow_id)
        )
        return {event.key: self._serializer.decode(event.value) for event in response.events}

    def read_stream(self, workflow_id: str, key: str, from_offset: int = 0) -> Iterator[Any]:
        """Yields a stream's values in order as the workflow writes them, until the
        stream is closed or the workflow ends; ``list(...)`` gets them all.

        A broken connection is resumed from the next offset, so nothing is missed
        or repeated.

        Raises:
            NotFound: No workflow has this id.
        """
        for _, value in self.read_stream_entries(workflow_id, key, from_offset):
            yield value

    def read_stream_entries(
        self, workflow_id: str, key: str, from_offset: int = 0
    ) -> Iterator[tuple[int, Any]]:
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
                for response in call:
                    failures = 0
                    offset = response.offset + 1
                    yield response.offset, self._serializer.decode(response.value)
                return
            except grpc.RpcError as exc:
                error = map_rpc_error(exc)
                failures += 1
                if not isinstance(error, Unavailable) or failures > shared.STREAM_RETRIES:
                    raise error from exc
                time.sleep(shared.UNAVAILABLE_PAUSE)
            finally:
                call.cancel()

    def watch_workflow(self, workflow_id: str) -> Iterator[WorkflowInfo]:
        """Yields the workflow's state now and after each status change, until it
        has finished.

        Raises:
            NotFound: No workflow has this id.
        """
        call = self._rpc.watch_workflow(
            workflow_service_pb2.WatchWorkflowRequest(workflow_id=workflow_id)
        )
        try:
            for response in call:
                yield workflow_info_from_proto(response.workflow, self._serializer)
        except grpc.RpcError as exc:
            raise map_rpc_error(exc) from exc
        finally:
            call.cancel()

    def _get(self, workflow_id: str, *, omit_payloads: bool) -> common_pb2.Workflow:
        request = workflow_service_pb2.GetWorkflowRequest(
            workflow_id=workflow_id, omit_payloads=omit_payloads
        )
        return self._rpc.get_workflow(request).workflow

    def _result(self, workflow_id: str, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = shared.AWAIT_SLICE
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise shared.timeout_error(workflow_id, timeout)
                wait = max(wait, shared.MIN_WAIT)
            try:
                response = self._rpc.await_workflow(
                    shared.await_request(workflow_id, wait), timeout=wait + shared.AWAIT_MARGIN
                )
            except (Unavailable, DeadlineExceeded) as exc:
                # The service restarting must not fail a caller who is prepared to wait.
                logger.warning("waiting for workflow %s: %s; asking again", workflow_id, exc)
                time.sleep(shared.UNAVAILABLE_PAUSE)
                continue
            if response.done:
                return shared.outcome(response.workflow, self._serializer)


class WorkflowHandle:
    """A reference to a started workflow.

    Attributes:
        workflow_id: The workflow's id.
    """

    def __init__(self, client: Client, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

    def result(self, timeout: float | None = None) -> Any:
        """Waits for the workflow to finish and returns its output.

        Args:
            timeout: Seconds to wait at most. Default: wait as long as it takes.

        Raises:
            TimeoutError: The timeout passed first (the workflow keeps running).
            WorkflowFailed: It finished with an error.
            WorkflowCancelled: It was cancelled.
            MaxRecoveryAttemptsExceeded: It was stopped as a dead letter.
        """
        return self._client._result(self.workflow_id, timeout)

    def status(self) -> WorkflowStatus:
        """Returns the workflow's current status."""
        workflow = self._client._get(self.workflow_id, omit_payloads=True)
        return status_from_proto(workflow.status)

    def get(self) -> WorkflowInfo:
        """Returns the workflow's current state."""
        return self._client.get_workflow(self.workflow_id)
