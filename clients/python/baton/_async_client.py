"""`AsyncClient`: start workflows and follow them, from asyncio code."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Unpack

import grpc

from baton import _client_shared as shared
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
    queue_service_pb2,
    schedule_service_pb2,
    stream_service_pb2,
    workflow_service_pb2,
)
from baton._queues import (
    QueueInfo,
    StartOptions,
    WorkflowStart,
    batch_request,
    full_start_request,
    item_error,
    queue_info_from_proto,
    upsert_queue_request,
    waiting_start_request,
)
from baton._rpc_async import AsyncRpc
from baton._schedules import (
    ScheduleInfo,
    backfill_schedule_request,
    create_schedule_request,
    schedule_info_from_proto,
)
from baton._tls import TLSConfig
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
        self._token = shared.resolve_token(token)
        self._tls = tls
        self._rpc_instance: AsyncRpc | None = None

    @property
    def _rpc(self) -> AsyncRpc:
        # grpc.aio channels bind to the loop they are created in, so the channel
        # cannot be made in __init__, which may run outside any loop.
        if self._rpc_instance is None:
            self._rpc_instance = AsyncRpc(self.target, token=self._token, tls=self._tls)
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
        deduplication_id: str | None = None,
        priority: int = 0,
        partition_key: str | None = None,
        delay: float | None = None,
        start_at: datetime | None = None,
        queue_timeout: float | None = None,
        return_existing_duplicate: bool = False,
    ) -> AsyncWorkflowHandle:
        """Starts a workflow, or finds the one already started with this id.

        See `Client.start_workflow`.
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
        response = await self._rpc.start_workflow(request)
        return AsyncWorkflowHandle(self, response.workflow.workflow_id)

    async def execute_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        result_timeout: float | None = None,
        **options: Unpack[StartOptions],
    ) -> Any:
        """Starts a workflow and waits for its result, in one call to the
        service when it finishes within 30 s; see `Client.execute_workflow`."""
        began = asyncio.get_running_loop().time()
        request, wait = waiting_start_request(
            self._serializer, workflow, args, result_timeout, options
        )
        try:
            # Not retried: a retry would wait anew. An outage ends the wait and
            # the workflow is awaited as `result` does, through outages.
            response = await self._rpc.start_workflow(
                request, timeout=wait + shared.AWAIT_MARGIN, retry=None
            )
        except (Unavailable, DeadlineExceeded) as exc:
            logger.warning("starting workflow %s: %s; awaiting it", request.workflow_id, exc)
            request.ClearField("wait")
            response = await self._rpc.start_workflow(request)
        if response.done:
            return shared.outcome(response.workflow, self._serializer)
        return await self._result(response.workflow.workflow_id, result_timeout, since=began)

    async def start_workflows(
        self, starts: Sequence[WorkflowStart]
    ) -> list[AsyncWorkflowHandle | RpcError]:
        """Starts many workflows in one call; see `Client.start_workflows`."""
        response = await self._rpc.start_workflows(batch_request(self._serializer, starts))
        results: list[AsyncWorkflowHandle | RpcError] = []
        for result in response.results:
            if result.HasField("started"):
                results.append(AsyncWorkflowHandle(self, result.started.workflow.workflow_id))
            else:
                results.append(item_error(result.error))
        return results

    async def upsert_queue(
        self,
        name: str,
        *,
        concurrency: int = 0,
        worker_concurrency: int = 0,
        rate_limit: tuple[int, float] | None = None,
        priority_enabled: bool = False,
        partitioned: bool = False,
        start_to_close_timeout: float | None = None,
    ) -> QueueInfo:
        """Creates a queue or replaces its configuration; see `Client.upsert_queue`."""
        request = upsert_queue_request(
            name,
            concurrency=concurrency,
            worker_concurrency=worker_concurrency,
            rate_limit=rate_limit,
            priority_enabled=priority_enabled,
            partitioned=partitioned,
            start_to_close_timeout=start_to_close_timeout,
        )
        return queue_info_from_proto((await self._rpc.upsert_queue(request)).queue)

    async def get_queue(self, name: str) -> QueueInfo:
        """Returns a queue's configuration, depth and running count; see `Client.get_queue`."""
        response = await self._rpc.get_queue(queue_service_pb2.GetQueueRequest(name=name))
        return queue_info_from_proto(response.queue, depth=response.depth, running=response.running)

    async def list_queues(self) -> list[QueueInfo]:
        """Lists every queue by name, with its counts."""
        request = queue_service_pb2.ListQueuesRequest()
        found: list[QueueInfo] = []
        while True:
            response = await self._rpc.list_queues(request)
            found.extend(
                queue_info_from_proto(q.queue, depth=q.depth, running=q.running)
                for q in response.queues
            )
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    async def delete_queue(self, name: str) -> None:
        """Deletes a queue; see `Client.delete_queue`."""
        await self._rpc.delete_queue(queue_service_pb2.DeleteQueueRequest(name=name))

    # -- schedules -------------------------------------------------------------------

    async def create_schedule(
        self,
        name: str,
        workflow: str | Callable[..., Any],
        cron: str,
        *,
        time_zone: str | None = None,
        queue: str | None = None,
        context: Any = None,
        paused: bool = False,
    ) -> ScheduleInfo:
        """Creates a cron schedule; see `Client.create_schedule`."""
        request = create_schedule_request(
            name, workflow, cron, time_zone=time_zone, queue=queue, context=context, paused=paused
        )
        return schedule_info_from_proto((await self._rpc.create_schedule(request)).schedule)

    async def get_schedule(self, name: str) -> ScheduleInfo:
        """Returns a schedule; see `Client.get_schedule`."""
        request = schedule_service_pb2.GetScheduleRequest(name=name)
        return schedule_info_from_proto((await self._rpc.get_schedule(request)).schedule)

    async def list_schedules(self) -> list[ScheduleInfo]:
        """Lists every schedule by name."""
        request = schedule_service_pb2.ListSchedulesRequest()
        found: list[ScheduleInfo] = []
        while True:
            response = await self._rpc.list_schedules(request)
            found.extend(schedule_info_from_proto(s) for s in response.schedules)
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    async def pause_schedule(self, name: str) -> ScheduleInfo:
        """Pauses a schedule; see `Client.pause_schedule`."""
        request = schedule_service_pb2.PauseScheduleRequest(name=name)
        return schedule_info_from_proto((await self._rpc.pause_schedule(request)).schedule)

    async def resume_schedule(self, name: str) -> ScheduleInfo:
        """Resumes a schedule; see `Client.resume_schedule`."""
        request = schedule_service_pb2.ResumeScheduleRequest(name=name)
        return schedule_info_from_proto((await self._rpc.resume_schedule(request)).schedule)

    async def delete_schedule(self, name: str) -> None:
        """Deletes a schedule; see `Client.delete_schedule`."""
        await self._rpc.delete_schedule(schedule_service_pb2.DeleteScheduleRequest(name=name))

    async def trigger_schedule(self, name: str) -> AsyncWorkflowHandle:
        """Starts the schedule's workflow now; see `Client.trigger_schedule`."""
        request = schedule_service_pb2.TriggerScheduleRequest(name=name)
        response = await self._rpc.trigger_schedule(request)
        return AsyncWorkflowHandle(self, response.workflow_id)

    async def backfill_schedule(
        self, name: str, start: datetime, end: datetime
    ) -> list[AsyncWorkflowHandle]:
        """Starts the missed ticks of a window; see `Client.backfill_schedule`."""
        response = await self._rpc.backfill_schedule(backfill_schedule_request(name, start, end))
        return [AsyncWorkflowHandle(self, workflow_id) for workflow_id in response.workflow_ids]

    async def retrieve_workflow(self, workflow_id: str) -> AsyncWorkflowHandle:
        """Returns a handle to an existing workflow.

        Raises:
            NotFound: No workflow has this id.
        """
        await self._get(workflow_id, omit_payloads=True)
        return AsyncWorkflowHandle(self, workflow_id)

    async def get_workflow(self, workflow_id: str, *, load_payloads: bool = True) -> WorkflowInfo:
        """Returns a workflow's current state.

        Args:
            workflow_id: The workflow.
            load_payloads: Fetch and decode its input and output (``False``
                leaves them empty).

        Raises:
            NotFound: No workflow has this id.
        """
        workflow = await self._get(workflow_id, omit_payloads=not load_payloads)
        return workflow_info_from_proto(workflow, self._serializer)

    async def list_workflows(
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
        """Lists workflows, newest first; see `Client.list_workflows` for the filters."""
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

    async def cancel_workflow(
        self, workflow_id: str, *, include_children: bool = False
    ) -> list[str]:
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
        return list((await self._rpc.cancel_workflow(request)).cancelled_workflow_ids)

    async def resume_workflow(
        self, workflow_id: str, *, app_version: str | None = None
    ) -> AsyncWorkflowHandle:
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
        await self._rpc.resume_workflow(request)
        return AsyncWorkflowHandle(self, workflow_id)

    async def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        new_workflow_id: str | None = None,
        app_version: str | None = None,
    ) -> AsyncWorkflowHandle:
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
        response = await self._rpc.fork_workflow(request)
        return AsyncWorkflowHandle(self, response.workflow.workflow_id)

    async def delete_workflow(self, workflow_id: str, *, include_children: bool = False) -> int:
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
        return (await self._rpc.delete_workflow(request)).deleted_count

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

    async def as_completed(
        self, workflows: Iterable[AsyncWorkflowHandle | str], timeout: float | None = None
    ) -> AsyncIterator[AsyncWorkflowHandle]:
        """Yields a handle for each workflow as it finishes; its `result` then
        answers at once. See `Client.as_completed`."""
        waiting = shared.AwaitingMany(
            workflows,
            lambda i: AsyncWorkflowHandle(self, i),
            timeout,
            asyncio.get_running_loop().time,
        )
        for _ in waiting.chunks():
            while waiting.pending:
                request, deadline = waiting.next_call()
                call = self._rpc.await_workflows(request, timeout=deadline)
                try:
                    async for response in call:
                        for handle in waiting.finished(response):
                            yield handle
                except grpc.RpcError as exc:
                    await asyncio.sleep(waiting.pause_after(exc))
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

    async def _result(
        self, workflow_id: str, timeout: float | None, *, since: float | None = None
    ) -> Any:
        """The workflow's outcome, waiting ``timeout`` seconds at most counted
        from ``since`` (the loop's clock; default: now)."""
        loop = asyncio.get_running_loop()
        began = loop.time() if since is None else since
        deadline = None if timeout is None else began + timeout
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

    def __init__(
        self, client: AsyncClient, workflow_id: str, finished: common_pb2.Workflow | None = None
    ) -> None:
        self._client = client
        self.workflow_id = workflow_id
        self._finished = finished  # its final state, when known (`AsyncClient.as_completed`)

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
        if self._finished is not None:
            return shared.outcome(self._finished, self._client._serializer)
        return await self._client._result(self.workflow_id, timeout)

    async def status(self) -> WorkflowStatus:
        """Returns the workflow's current status."""
        workflow = await self._client._get(self.workflow_id, omit_payloads=True)
        return status_from_proto(workflow.status)

    async def get(self) -> WorkflowInfo:
        """Returns the workflow's current state."""
        return await self._client.get_workflow(self.workflow_id)

    async def cancel(self, *, include_children: bool = False) -> list[str]:
        """Cancels the workflow; see `Client.cancel_workflow`."""
        return await self._client.cancel_workflow(
            self.workflow_id, include_children=include_children
        )
