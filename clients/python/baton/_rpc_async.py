"""`AsyncRpc`: the Baton RPCs over a ``grpc.aio`` channel, one method per RPC
(the worker and `AsyncClient` use it; see `baton._rpc` for the shared part)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from baton._errors import map_rpc_error
from baton._proto.baton.v1 import (
    event_service_pb2,
    event_service_pb2_grpc,
    message_service_pb2,
    message_service_pb2_grpc,
    queue_service_pb2,
    queue_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    stream_service_pb2,
    stream_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from baton._rpc import (
    CHECKPOINT_RETRY,
    CLIENT_RETRY,
    DEFAULT_TIMEOUT,
    WAIT_MARGIN,
    RetryPolicy,
    call_metadata,
    log_retry,
    open_channel,
    with_trace,
)
from baton._tls import TLSConfig

__all__ = ["AsyncRpc"]


class AsyncRpc:
    """The Baton RPCs over a ``grpc.aio`` channel. Create it inside the event loop
    that will use it.

    Args:
        target: ``host:port`` of the service.
        token: A bearer token sent with every call, if set.
    """

    def __init__(
        self, target: str, *, token: str | None = None, tls: TLSConfig | bool | None = None
    ) -> None:
        self._channel: Any = open_channel(target, tls, aio=True)
        self._metadata = call_metadata(token)
        # The generated gRPC stubs carry no annotations, hence the ignores.
        self._workflows = workflow_service_pb2_grpc.WorkflowServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._workers = worker_service_pb2_grpc.WorkerServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._queues = queue_service_pb2_grpc.QueueServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._messages = message_service_pb2_grpc.MessageServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._events = event_service_pb2_grpc.EventServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._streams = stream_service_pb2_grpc.StreamServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Closes the channel, cancelling calls still in flight."""
        await self._channel.close()

    async def _rpc_call(
        self,
        method: Callable[..., Any],
        request: object,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(request, timeout=timeout, metadata=with_trace(self._metadata))
            except grpc.aio.AioRpcError as exc:
                if retry is None or not retry.should_retry(exc.code(), attempt):
                    raise map_rpc_error(exc) from exc
                delay = retry.delay(attempt)
                log_retry(request, exc.code(), attempt, delay)
                await asyncio.sleep(delay)

    # -- WorkflowService ---------------------------------------------------------------

    async def start_workflow(
        self,
        request: workflow_service_pb2.StartWorkflowRequest,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = CLIENT_RETRY,
    ) -> workflow_service_pb2.StartWorkflowResponse:
        """StartWorkflow; retried because the workflow id makes it idempotent.
        ``timeout`` is the call's deadline; with ``request.wait`` it must exceed
        that wait."""
        response: workflow_service_pb2.StartWorkflowResponse = await self._rpc_call(
            self._workflows.StartWorkflow, request, timeout=timeout, retry=retry
        )
        return response

    async def get_workflow(
        self, request: workflow_service_pb2.GetWorkflowRequest
    ) -> workflow_service_pb2.GetWorkflowResponse:
        """GetWorkflow."""
        response: workflow_service_pb2.GetWorkflowResponse = await self._rpc_call(
            self._workflows.GetWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    async def await_workflow(
        self, request: workflow_service_pb2.AwaitWorkflowRequest, *, timeout: float
    ) -> workflow_service_pb2.AwaitWorkflowResponse:
        """AwaitWorkflow; ``timeout`` is the call's deadline and must exceed the
        server-side wait in the request."""
        response: workflow_service_pb2.AwaitWorkflowResponse = await self._rpc_call(
            self._workflows.AwaitWorkflow, request, timeout=timeout, retry=CLIENT_RETRY
        )
        return response

    async def list_workflows(
        self, request: workflow_service_pb2.ListWorkflowsRequest
    ) -> workflow_service_pb2.ListWorkflowsResponse:
        """ListWorkflows (one page)."""
        response: workflow_service_pb2.ListWorkflowsResponse = await self._rpc_call(
            self._workflows.ListWorkflows, request, retry=CLIENT_RETRY
        )
        return response

    async def list_workflow_steps(
        self, request: workflow_service_pb2.ListWorkflowStepsRequest
    ) -> workflow_service_pb2.ListWorkflowStepsResponse:
        """ListWorkflowSteps (one page)."""
        response: workflow_service_pb2.ListWorkflowStepsResponse = await self._rpc_call(
            self._workflows.ListWorkflowSteps, request, retry=CLIENT_RETRY
        )
        return response

    async def cancel_workflow(
        self, request: workflow_service_pb2.CancelWorkflowRequest
    ) -> workflow_service_pb2.CancelWorkflowResponse:
        """CancelWorkflow; retried (cancelling twice changes nothing more)."""
        response: workflow_service_pb2.CancelWorkflowResponse = await self._rpc_call(
            self._workflows.CancelWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    async def resume_workflow(
        self, request: workflow_service_pb2.ResumeWorkflowRequest
    ) -> workflow_service_pb2.ResumeWorkflowResponse:
        """ResumeWorkflow; not retried (a second resume would be refused)."""
        response: workflow_service_pb2.ResumeWorkflowResponse = await self._rpc_call(
            self._workflows.ResumeWorkflow, request
        )
        return response

    async def fork_workflow(
        self, request: workflow_service_pb2.ForkWorkflowRequest
    ) -> workflow_service_pb2.ForkWorkflowResponse:
        """ForkWorkflow; retried: the SDK always names the new id, which makes it idempotent."""
        response: workflow_service_pb2.ForkWorkflowResponse = await self._rpc_call(
            self._workflows.ForkWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    async def delete_workflow(
        self, request: workflow_service_pb2.DeleteWorkflowRequest
    ) -> workflow_service_pb2.DeleteWorkflowResponse:
        """DeleteWorkflow; not retried (a second delete finds nothing)."""
        response: workflow_service_pb2.DeleteWorkflowResponse = await self._rpc_call(
            self._workflows.DeleteWorkflow, request
        )
        return response

    async def start_workflows(
        self, request: workflow_service_pb2.StartWorkflowsRequest
    ) -> workflow_service_pb2.StartWorkflowsResponse:
        """StartWorkflows; retried because every item carries its workflow id."""
        response: workflow_service_pb2.StartWorkflowsResponse = await self._rpc_call(
            self._workflows.StartWorkflows, request, retry=CLIENT_RETRY
        )
        return response

    # -- QueueService ------------------------------------------------------------------

    async def upsert_queue(
        self, request: queue_service_pb2.UpsertQueueRequest
    ) -> queue_service_pb2.UpsertQueueResponse:
        """UpsertQueue; retried (it stores a whole configuration)."""
        response: queue_service_pb2.UpsertQueueResponse = await self._rpc_call(
            self._queues.UpsertQueue, request, retry=CLIENT_RETRY
        )
        return response

    async def get_queue(
        self, request: queue_service_pb2.GetQueueRequest
    ) -> queue_service_pb2.GetQueueResponse:
        """GetQueue."""
        response: queue_service_pb2.GetQueueResponse = await self._rpc_call(
            self._queues.GetQueue, request, retry=CLIENT_RETRY
        )
        return response

    async def list_queues(
        self, request: queue_service_pb2.ListQueuesRequest
    ) -> queue_service_pb2.ListQueuesResponse:
        """ListQueues (one page)."""
        response: queue_service_pb2.ListQueuesResponse = await self._rpc_call(
            self._queues.ListQueues, request, retry=CLIENT_RETRY
        )
        return response

    async def delete_queue(
        self, request: queue_service_pb2.DeleteQueueRequest
    ) -> queue_service_pb2.DeleteQueueResponse:
        """DeleteQueue (not retried: a retry after success would say NOT_FOUND)."""
        response: queue_service_pb2.DeleteQueueResponse = await self._rpc_call(
            self._queues.DeleteQueue, request
        )
        return response

    # -- ScheduleService ---------------------------------------------------------------

    async def create_schedule(
        self, request: schedule_service_pb2.CreateScheduleRequest
    ) -> schedule_service_pb2.CreateScheduleResponse:
        """CreateSchedule (not retried: a retry after success would say ALREADY_EXISTS)."""
        response: schedule_service_pb2.CreateScheduleResponse = await self._rpc_call(
            self._schedules.CreateSchedule, request
        )
        return response

    async def get_schedule(
        self, request: schedule_service_pb2.GetScheduleRequest
    ) -> schedule_service_pb2.GetScheduleResponse:
        """GetSchedule."""
        response: schedule_service_pb2.GetScheduleResponse = await self._rpc_call(
            self._schedules.GetSchedule, request, retry=CLIENT_RETRY
        )
        return response

    async def list_schedules(
        self, request: schedule_service_pb2.ListSchedulesRequest
    ) -> schedule_service_pb2.ListSchedulesResponse:
        """ListSchedules (one page)."""
        response: schedule_service_pb2.ListSchedulesResponse = await self._rpc_call(
            self._schedules.ListSchedules, request, retry=CLIENT_RETRY
        )
        return response

    async def pause_schedule(
        self, request: schedule_service_pb2.PauseScheduleRequest
    ) -> schedule_service_pb2.PauseScheduleResponse:
        """PauseSchedule; retried (pausing twice is pausing)."""
        response: schedule_service_pb2.PauseScheduleResponse = await self._rpc_call(
            self._schedules.PauseSchedule, request, retry=CLIENT_RETRY
        )
        return response

    async def resume_schedule(
        self, request: schedule_service_pb2.ResumeScheduleRequest
    ) -> schedule_service_pb2.ResumeScheduleResponse:
        """ResumeSchedule; retried (resuming twice is resuming)."""
        response: schedule_service_pb2.ResumeScheduleResponse = await self._rpc_call(
            self._schedules.ResumeSchedule, request, retry=CLIENT_RETRY
        )
        return response

    async def delete_schedule(
        self, request: schedule_service_pb2.DeleteScheduleRequest
    ) -> schedule_service_pb2.DeleteScheduleResponse:
        """DeleteSchedule (not retried: a retry after success would say NOT_FOUND)."""
        response: schedule_service_pb2.DeleteScheduleResponse = await self._rpc_call(
            self._schedules.DeleteSchedule, request
        )
        return response

    async def trigger_schedule(
        self, request: schedule_service_pb2.TriggerScheduleRequest
    ) -> schedule_service_pb2.TriggerScheduleResponse:
        """TriggerSchedule (not retried: each call starts a workflow)."""
        response: schedule_service_pb2.TriggerScheduleResponse = await self._rpc_call(
            self._schedules.TriggerSchedule, request
        )
        return response

    async def backfill_schedule(
        self, request: schedule_service_pb2.BackfillScheduleRequest
    ) -> schedule_service_pb2.BackfillScheduleResponse:
        """BackfillSchedule; retried (tick ids make it idempotent; a retry
        after a lost success reports no ids)."""
        response: schedule_service_pb2.BackfillScheduleResponse = await self._rpc_call(
            self._schedules.BackfillSchedule, request, retry=CLIENT_RETRY
        )
        return response

    # -- WorkerService -----------------------------------------------------------------

    def connect(
        self, requests: AsyncIterator[worker_service_pb2.ConnectRequest]
    ) -> grpc.aio.StreamStreamCall:
        """Opens the worker's Connect stream (no deadline; the caller iterates the
        returned call for responses and maps its errors with `map_rpc_error`)."""
        return self._workers.Connect(requests, metadata=self._metadata)

    async def record_step(
        self, request: worker_service_pb2.RecordStepRequest
    ) -> worker_service_pb2.RecordStepResponse:
        """RecordStep, retried until it lands or is fenced (`FailedPrecondition`)."""
        response: worker_service_pb2.RecordStepResponse = await self._rpc_call(
            self._workers.RecordStep, request, retry=CHECKPOINT_RETRY
        )
        return response

    async def complete_workflow(
        self, request: worker_service_pb2.CompleteWorkflowRequest
    ) -> worker_service_pb2.CompleteWorkflowResponse:
        """CompleteWorkflow, retried until it lands or is fenced (`FailedPrecondition`)."""
        response: worker_service_pb2.CompleteWorkflowResponse = await self._rpc_call(
            self._workers.CompleteWorkflow, request, retry=CHECKPOINT_RETRY
        )
        return response

    async def complete_step(
        self, request: worker_service_pb2.CompleteStepRequest
    ) -> worker_service_pb2.CompleteStepResponse:
        """CompleteStep (the result of a remote step run here), retried like a checkpoint."""
        response: worker_service_pb2.CompleteStepResponse = await self._rpc_call(
            self._workers.CompleteStep, request, retry=CHECKPOINT_RETRY
        )
        return response

    async def sleep(
        self, request: worker_service_pb2.SleepRequest, *, wait: float
    ) -> worker_service_pb2.SleepResponse:
        """Sleep (durable), retried like a checkpoint: the wake-up time is recorded."""
        response: worker_service_pb2.SleepResponse = await self._rpc_call(
            self._workers.Sleep, request, timeout=wait + WAIT_MARGIN, retry=CHECKPOINT_RETRY
        )
        return response

    async def recv(
        self, request: worker_service_pb2.RecvRequest, *, wait: float
    ) -> worker_service_pb2.RecvResponse:
        """Recv, retried like a checkpoint: the deadline and the result are recorded."""
        response: worker_service_pb2.RecvResponse = await self._rpc_call(
            self._workers.Recv, request, timeout=wait + WAIT_MARGIN, retry=CHECKPOINT_RETRY
        )
        return response

    async def call_step(
        self, request: worker_service_pb2.CallStepRequest
    ) -> worker_service_pb2.CallStepResponse:
        """CallStep (a remote step), retried like a checkpoint; the server holds
        it up to ~50 s, so the deadline allows a minute and more."""
        response: worker_service_pb2.CallStepResponse = await self._rpc_call(
            self._workers.CallStep, request, timeout=60.0 + WAIT_MARGIN, retry=CHECKPOINT_RETRY
        )
        return response

    # -- MessageService, EventService, StreamService -------------------------------------

    async def send(
        self, request: message_service_pb2.SendRequest, *, checkpoint: bool = False
    ) -> message_service_pb2.SendResponse:
        """Send. Retried when it is idempotent: from a workflow (``checkpoint``) or
        with an idempotency key."""
        retry = CHECKPOINT_RETRY if checkpoint else None
        if retry is None and request.idempotency_key:
            retry = CLIENT_RETRY
        response: message_service_pb2.SendResponse = await self._rpc_call(
            self._messages.Send, request, retry=retry
        )
        return response

    async def set_event(
        self, request: event_service_pb2.SetEventRequest
    ) -> event_service_pb2.SetEventResponse:
        """SetEvent, retried like a checkpoint."""
        response: event_service_pb2.SetEventResponse = await self._rpc_call(
            self._events.SetEvent, request, retry=CHECKPOINT_RETRY
        )
        return response

    async def get_event(
        self, request: event_service_pb2.GetEventRequest, *, wait: float
    ) -> event_service_pb2.GetEventResponse:
        """GetEvent; a checkpoint (retried until it lands) when ``context`` is set."""
        retry = CHECKPOINT_RETRY if request.HasField("context") else CLIENT_RETRY
        response: event_service_pb2.GetEventResponse = await self._rpc_call(
            self._events.GetEvent, request, timeout=wait + WAIT_MARGIN, retry=retry
        )
        return response

    async def list_events(
        self, request: event_service_pb2.ListEventsRequest
    ) -> event_service_pb2.ListEventsResponse:
        """ListEvents."""
        response: event_service_pb2.ListEventsResponse = await self._rpc_call(
            self._events.ListEvents, request, retry=CLIENT_RETRY
        )
        return response

    async def write_stream(
        self, request: stream_service_pb2.WriteStreamRequest
    ) -> stream_service_pb2.WriteStreamResponse:
        """WriteStream. From the workflow (a step number) it is idempotent and
        retried; from inside a step (step number 0) a retry may write twice,
        which at-least-once allows, so it is retried too."""
        response: stream_service_pb2.WriteStreamResponse = await self._rpc_call(
            self._streams.WriteStream, request, retry=CHECKPOINT_RETRY
        )
        return response

    async def close_stream(
        self, request: stream_service_pb2.CloseStreamRequest
    ) -> stream_service_pb2.CloseStreamResponse:
        """CloseStream (idempotent), retried like a checkpoint."""
        response: stream_service_pb2.CloseStreamResponse = await self._rpc_call(
            self._streams.CloseStream, request, retry=CHECKPOINT_RETRY
        )
        return response

    def read_stream(self, request: stream_service_pb2.ReadStreamRequest) -> Any:
        """Opens ReadStream (no deadline); the caller iterates the call and maps
        its errors with `map_rpc_error`."""
        return self._streams.ReadStream(request, metadata=self._metadata)

    def await_workflows(
        self, request: workflow_service_pb2.AwaitWorkflowsRequest, *, timeout: float
    ) -> Any:
        """Opens AwaitWorkflows; ``timeout`` is the call's deadline and must exceed
        the server-side wait. Iterate the returned call, mapping its errors with
        `map_rpc_error`."""
        return self._workflows.AwaitWorkflows(request, metadata=self._metadata, timeout=timeout)

    def watch_workflow(self, request: workflow_service_pb2.WatchWorkflowRequest) -> Any:
        """Opens WatchWorkflow (no deadline); iterate the returned call."""
        return self._workflows.WatchWorkflow(request, metadata=self._metadata)
