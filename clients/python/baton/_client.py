"""`Client`: start workflows and follow them, from blocking code."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Unpack

import grpc

from baton import _client_shared as shared
from baton._client_admin import AdminOps
from baton._convert import (
    status_from_proto,
    step_info_from_proto,
    workflow_info_from_proto,
)
from baton._errors import DeadlineExceeded, RpcError, Unavailable, map_rpc_error
from baton._payload import Serializer, SerializerName
from baton._proto.baton.v1 import (
    common_pb2,
    event_service_pb2,
    message_service_pb2,
    schedule_service_pb2,
    stream_service_pb2,
    workflow_service_pb2,
)
from baton._queues import (
    StartOptions,
    WorkflowStart,
    batch_request,
    full_start_request,
    item_error,
    waiting_start_request,
)
from baton._rpc_sync import SyncRpc
from baton._schedules import (
    backfill_schedule_request,
)
from baton._tls import TLSConfig
from baton._types import StepInfo, WorkflowInfo, WorkflowStatus

__all__ = ["Client", "WorkflowHandle"]

logger = logging.getLogger("baton.client")


class Client(AdminOps):
    """A connection to the Baton service for starting and inspecting workflows
    (and administering queues and schedules, see `AdminOps`).

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
        tls: TLS settings: a `TLSConfig`, ``True`` (system CAs) or ``False``
            (plaintext). Default: ``BATON_TLS_CA``/``BATON_TLS_CERT``/``BATON_TLS_KEY``
            if set, else plaintext for a target on this machine and TLS otherwise.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        token: str | None = None,
        serializer: SerializerName = "json",
        tls: TLSConfig | bool | None = None,
    ) -> None:
        self._serializer = Serializer(serializer)
        self.target = shared.resolve_target(target)
        self._rpc = SyncRpc(self.target, token=shared.resolve_token(token), tls=tls)

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
        deduplication_id: str | None = None,
        priority: int = 0,
        partition_key: str | None = None,
        delay: float | None = None,
        start_at: datetime | None = None,
        queue_timeout: float | None = None,
        return_existing_duplicate: bool = False,
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
            deduplication_id: With ``queue``: at most one workflow with this id
                waits or runs on the queue at a time; a second start raises
                `AlreadyExists` whose ``metadata["workflow_id"]`` names the
                first (free again once it finishes).
            priority: With a queue that has priorities enabled: lower starts
                first, FIFO within a priority; 0 (the default) is the highest.
            partition_key: Required on a partitioned queue: the queue's
                concurrency applies per key (e.g. one tenant at a time).
            delay: With ``queue``: do not start for this many seconds (counted
                from this call, on this host's clock).
            start_at: With ``queue``: do not start before this (aware) time.
            queue_timeout: With ``queue``: seconds it may run, counted from
                dequeue, before it is cancelled. Default: the queue's.
            return_existing_duplicate: On a duplicate ``deduplication_id``,
                return a handle to the workflow in flight instead of raising.

        Returns:
            A handle to the workflow.

        Raises:
            AlreadyExists: The id belongs to a workflow with another name, or
                the deduplication id is held by a workflow in flight.
            NotFound: The queue does not exist.
            InvalidArgument: A malformed name, id or an oversized input, or a
                queue option the queue does not allow.
        """
        request = full_start_request(
            self._serializer,
            workflow,
            args,
            workflow_id=workflow_id,
            queue=queue,
            app_version=app_version,
            timeout=timeout,
            deduplication_id=deduplication_id,
            priority=priority,
            partition_key=partition_key,
            delay=delay,
            start_at=start_at,
            queue_timeout=queue_timeout,
            return_existing_duplicate=return_existing_duplicate,
        )
        response = self._rpc.start_workflow(request)
        return WorkflowHandle(self, response.workflow.workflow_id)

    def execute_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        result_timeout: float | None = None,
        **options: Unpack[StartOptions],
    ) -> Any:
        """Starts a workflow and waits for its result: `start_workflow`, then
        the handle's ``result``, in one call to the service when the workflow
        finishes within its first 30 s (StartWorkflow's ``wait``; past that,
        it waits as ``result`` does).

        Args:
            workflow: As `start_workflow`.
            *args: The workflow's arguments.
            result_timeout: Seconds to wait for the result at most. Default:
                wait as long as it takes.
            **options: `start_workflow`'s keyword arguments (``timeout`` is
                still the workflow's start-to-close timeout).

        Returns:
            The workflow's output.

        Raises:
            TimeoutError: ``result_timeout`` passed first (the workflow keeps running).
            WorkflowFailed: It finished with an error.
            WorkflowCancelled: It was cancelled.
            MaxRecoveryAttemptsExceeded: It was stopped as a dead letter.
            AlreadyExists: As `start_workflow` (and its other errors). Once
                started, the wait outlasts the service being unavailable,
                as `result` does.
        """
        began = time.monotonic()
        request, wait = waiting_start_request(
            self._serializer, workflow, args, result_timeout, options
        )
        try:
            # Not retried: a retry would wait anew. An outage ends the wait and
            # the workflow is awaited as `result` does, through outages.
            response = self._rpc.start_workflow(
                request, timeout=wait + shared.AWAIT_MARGIN, retry=None
            )
        except (Unavailable, DeadlineExceeded) as exc:
            logger.warning("starting workflow %s: %s; awaiting it", request.workflow_id, exc)
            request.ClearField("wait")
            response = self._rpc.start_workflow(request)
        if response.done:
            return shared.outcome(response.workflow, self._serializer)
        return self._result(response.workflow.workflow_id, result_timeout, since=began)

    def start_workflows(self, starts: Sequence[WorkflowStart]) -> list[WorkflowHandle | RpcError]:
        """Starts many workflows in one call (one transaction on the service).

        Returns:
            One result per item, in order: a handle, or the `RpcError` that
            `start_workflow` would have raised for that item.
        """
        response = self._rpc.start_workflows(batch_request(self._serializer, starts))
        results: list[WorkflowHandle | RpcError] = []
        for result in response.results:
            if result.HasField("started"):
                results.append(WorkflowHandle(self, result.started.workflow.workflow_id))
            else:
                results.append(item_error(result.error))
        return results

    # -- schedules that start workflows (their configuration: `AdminOps`) -----------

    def trigger_schedule(self, name: str) -> WorkflowHandle:
        """Starts the schedule's workflow once, now (also when paused); its
        scheduled time is the service's current time, to the microsecond.

        Raises:
            NotFound: No schedule has this name, or its queue is gone.
        """
        request = schedule_service_pb2.TriggerScheduleRequest(name=name)
        return WorkflowHandle(self, self._rpc.trigger_schedule(request).workflow_id)

    def backfill_schedule(self, name: str, start: datetime, end: datetime) -> list[WorkflowHandle]:
        """Starts the workflow of every tick in ``[start, end)`` that has not
        started (up to now: later ticks are left to the schedule).

        Returns:
            Handles of the workflows this call started, in tick order (ticks
            that had started already are not included).

        Raises:
            NotFound: No schedule has this name, or its queue is gone.
            InvalidArgument: ``end`` is not after ``start``, or the window holds
                more than 10000 ticks.
        """
        response = self._rpc.backfill_schedule(backfill_schedule_request(name, start, end))
        return [WorkflowHandle(self, workflow_id) for workflow_id in response.workflow_ids]

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle:
        """Returns a handle to an existing workflow.

        Raises:
            NotFound: No workflow has this id.
        """
        self._get(workflow_id, omit_payloads=True)
        return WorkflowHandle(self, workflow_id)

    def get_workflow(self, workflow_id: str, *, load_payloads: bool = True) -> WorkflowInfo:
        """Returns a workflow's current state.

        Args:
            workflow_id: The workflow.
            load_payloads: Fetch and decode its input and output (``False``
                leaves them empty).

        Raises:
            NotFound: No workflow has this id.
        """
        workflow = self._get(workflow_id, omit_payloads=not load_payloads)
        return workflow_info_from_proto(workflow, self._serializer)

    def list_workflows(
        self,
        *,
        status: shared.StatusFilter = None,
        name: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        queue: str | None = None,
        app_version: str | None = None,
        parent_workflow_id: str | None = None,
        workflow_id_prefix: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        completed_after: datetime | None = None,
        completed_before: datetime | None = None,
        oldest_first: bool = False,
        load_payloads: bool = True,
    ) -> list[WorkflowInfo]:
        """Lists workflows, newest first, following pages until done or ``limit``.

        Args:
            status: Only workflows in this status (or any of these statuses).
            name: Only workflows with this name.
            limit: Return at most this many.
            page_size: Workflows fetched per call (1 to 1000; default the server's).
            queue: Only workflows on this queue.
            app_version: Only workflows pinned to this app version.
            parent_workflow_id: Only children of this workflow.
            workflow_id_prefix: Only workflows whose id starts with this.
            created_after: Only workflows created at or after this time.
            created_before: Only workflows created before this time.
            completed_after: Only workflows finished at or after this time.
            completed_before: Only workflows finished before this time.
            oldest_first: Oldest first instead of newest first.
            load_payloads: Fetch and decode inputs and outputs (``False`` leaves
                them empty: faster, and safe for payloads this client cannot decode).
        """
        shared.check_limit(limit)
        filters = shared.ListFilters(
            queue=queue,
            app_version=app_version,
            parent_workflow_id=parent_workflow_id,
            workflow_id_prefix=workflow_id_prefix,
            created_after=created_after,
            created_before=created_before,
            completed_after=completed_after,
            completed_before=completed_before,
            oldest_first=oldest_first,
            load_payloads=load_payloads,
        )
        request = shared.list_request(
            status=status, name=name, page_size=page_size, limit=limit, filters=filters
        )
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

    def cancel_workflow(self, workflow_id: str, *, include_children: bool = False) -> list[str]:
        """Cancels a workflow: it ends ``CANCELLED`` at once, and its worker stops
        it at its next step (the step running now finishes, unrecorded).

        Args:
            workflow_id: The workflow to cancel.
            include_children: Also cancel every descendant (child workflows).

        Returns:
            The ids of the workflows this call cancelled, the workflow itself
            first; empty when everything was already finished (nothing changed).

        Raises:
            NotFound: No workflow has this id.
        """
        request = workflow_service_pb2.CancelWorkflowRequest(
            workflow_id=workflow_id, include_children=include_children
        )
        return list(self._rpc.cancel_workflow(request).cancelled_workflow_ids)

    def resume_workflow(
        self, workflow_id: str, *, app_version: str | None = None
    ) -> WorkflowHandle:
        """Resumes a ``CANCELLED`` or ``MAX_RECOVERY_ATTEMPTS_EXCEEDED`` workflow:
        it continues from its last recorded step with a fresh attempt budget.

        Args:
            workflow_id: The workflow to resume.
            app_version: Run it on workers of this app version from now on.

        Raises:
            NotFound: No workflow has this id.
            FailedPrecondition: It is in another status (``WORKFLOW_NOT_RESUMABLE``).
        """
        request = workflow_service_pb2.ResumeWorkflowRequest(
            workflow_id=workflow_id, app_version=app_version or ""
        )
        self._rpc.resume_workflow(request)
        return WorkflowHandle(self, workflow_id)

    def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        new_workflow_id: str | None = None,
        app_version: str | None = None,
    ) -> WorkflowHandle:
        """Starts a new workflow that reuses ``workflow_id``'s recorded steps
        before ``start_step`` (and the events and stream values they wrote) and
        runs the rest.

        Args:
            workflow_id: The workflow to fork (in any status).
            start_step: The first step to run again; 1 re-runs everything.
            new_workflow_id: The fork's id. Default: a random UUID.
            app_version: Run the fork on workers of this app version.

        Returns:
            A handle to the fork.

        Raises:
            NotFound: No workflow has this id.
            AlreadyExists: ``new_workflow_id`` is taken by another workflow.
        """
        request = shared.fork_request(
            workflow_id, start_step, new_workflow_id=new_workflow_id, app_version=app_version
        )
        response = self._rpc.fork_workflow(request)
        return WorkflowHandle(self, response.workflow.workflow_id)

    def delete_workflow(self, workflow_id: str, *, include_children: bool = False) -> int:
        """Deletes a finished workflow with its steps, messages, events and streams.

        Args:
            workflow_id: The workflow to delete.
            include_children: Also delete every descendant.

        Returns:
            How many workflows were deleted.

        Raises:
            NotFound: No workflow has this id.
            FailedPrecondition: One of them is not finished (``WORKFLOW_NOT_FINISHED``);
                nothing was deleted.
        """
        request = workflow_service_pb2.DeleteWorkflowRequest(
            workflow_id=workflow_id, include_children=include_children
        )
        return self._rpc.delete_workflow(request).deleted_count

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

    def as_completed(
        self, workflows: Iterable[WorkflowHandle | str], timeout: float | None = None
    ) -> Iterator[WorkflowHandle]:
        """Yields each workflow's handle as it finishes, like
        `concurrent.futures.as_completed`: the handles given (a new one for a
        bare id), each once, whose `~WorkflowHandle.result` then answers at
        once from the final state received (a snapshot: a workflow resumed
        later is not seen).

        One AwaitWorkflows stream waits for up to 10,000 workflows (their final
        states arrive as they finish); more are waited for 10,000 at a time, in
        the order given. Far cheaper than one `result` call per workflow when
        there are many; it holds one of the connection's streams while it waits.

        Args:
            workflows: Handles or workflow ids (a repeated one counts once).
            timeout: Seconds to wait in all. Default: as long as it takes.
                Those finished already are yielded even with ``timeout=0``.

        Raises:
            TimeoutError: The timeout passed first; its ``workflow_ids`` names
                those not yielded, which keep running.
            NotFound: No workflow has one of the ids.
        """
        waiting = shared.AwaitingMany(
            workflows, lambda i: WorkflowHandle(self, i), timeout, time.monotonic
        )
        for _ in waiting.chunks():
            while waiting.pending:
                request, deadline = waiting.next_call()
                call = self._rpc.await_workflows(request, timeout=deadline)
                try:
                    for response in call:
                        yield from waiting.finished(response)
                except grpc.RpcError as exc:
                    time.sleep(waiting.pause_after(exc))
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

    def _result(
        self, workflow_id: str, timeout: float | None, *, since: float | None = None
    ) -> Any:
        """The workflow's outcome, waiting ``timeout`` seconds at most counted
        from ``since`` (`time.monotonic`; default: now)."""
        began = time.monotonic() if since is None else since
        deadline = None if timeout is None else began + timeout
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

    def __init__(
        self, client: Client, workflow_id: str, finished: common_pb2.Workflow | None = None
    ) -> None:
        self._client = client
        self.workflow_id = workflow_id
        self._finished = finished  # its final state, when known (`Client.as_completed`)

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
        if self._finished is not None:
            return shared.outcome(self._finished, self._client._serializer)
        return self._client._result(self.workflow_id, timeout)

    def status(self) -> WorkflowStatus:
        """Returns the workflow's current status."""
        workflow = self._client._get(self.workflow_id, omit_payloads=True)
        return status_from_proto(workflow.status)

    def get(self) -> WorkflowInfo:
        """Returns the workflow's current state."""
        return self._client.get_workflow(self.workflow_id)

    def cancel(self, *, include_children: bool = False) -> list[str]:
        """Cancels the workflow; see `Client.cancel_workflow`."""
        return self._client.cancel_workflow(self.workflow_id, include_children=include_children)
