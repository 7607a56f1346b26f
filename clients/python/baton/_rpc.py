"""The thin typed tier: one method per RPC over the generated stubs.

Every unary call goes through one private funnel (`AsyncRpc._rpc_call` /
`SyncRpc._rpc_call`), where deadlines, retries of transient failures and the
translation of gRPC errors into `baton` exceptions live once. Nothing above this
module sees a ``grpc.RpcError``.

`AsyncRpc` runs on a ``grpc.aio`` channel (the worker and `AsyncClient`);
`SyncRpc` on a plain blocking channel (`Client`), so the sync client needs no
event loop or helper thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
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
from baton._tls import TLSConfig, channel_credentials, channel_target
from baton._tracing import outgoing_metadata

__all__ = [
    "CHECKPOINT_RETRY",
    "CLIENT_RETRY",
    "DEFAULT_TIMEOUT",
    "AsyncRpc",
    "RetryPolicy",
    "SyncRpc",
    "channel_options",
]

logger = logging.getLogger("baton.rpc")

DEFAULT_TIMEOUT = 30.0
"""The deadline of a unary call, in seconds, unless the call sets its own."""

WAIT_MARGIN = 10.0
"""Extra time a call that waits on the server (Sleep, Recv, GetEvent) allows
beyond the server-side wait, so the gRPC deadline always exceeds the wait."""

# A dispatch carries the whole journal, which can outgrow gRPC's 4 MiB default;
# the server enforces its own payload limits.
_MAX_MESSAGE_BYTES = 128 * 1024 * 1024


def channel_options() -> list[tuple[str, Any]]:
    """The channel options shared by every Baton channel."""
    return [
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ]


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures of an idempotent call are retried, and how patiently."""

    codes: frozenset[grpc.StatusCode]
    """The status codes that count as transient."""
    max_attempts: int | None
    """Attempts in total, the first included; ``None`` retries forever."""
    initial: float = 0.1
    """The first delay, in seconds."""
    maximum: float = 2.0
    """The cap on the delay, in seconds."""
    multiplier: float = 2.0
    """The growth of the delay from one retry to the next."""

    def should_retry(self, code: grpc.StatusCode, attempt: int) -> bool:
        """Whether to retry after failed attempt number ``attempt`` (1-based)."""
        if code not in self.codes:
            return False
        return self.max_attempts is None or attempt < self.max_attempts

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based), with jitter so
        that many callers retrying after one outage do not arrive in lockstep."""
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return base * random.uniform(0.8, 1.0)


CLIENT_RETRY = RetryPolicy(codes=frozenset({grpc.StatusCode.UNAVAILABLE}), max_attempts=6)
"""Idempotent client calls ride out a few seconds of unavailability, then fail."""

CHECKPOINT_RETRY = RetryPolicy(
    codes=frozenset(
        {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            # A replica shutting down or dying can end calls in flight with these.
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.UNKNOWN,
            grpc.StatusCode.INTERNAL,
        }
    ),
    max_attempts=None,
    initial=0.05,
    maximum=2.0,
)
"""A workflow's checkpoints retry until they land or get a definitive answer
(fenced off, or the request refused): a server restart or a replica shutting
down must never fail a workflow. Safe because checkpoint RPCs are idempotent."""


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


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
        credentials, tls_options = channel_credentials(tls, target)
        options = channel_options() + tls_options
        self._channel = (
            grpc.aio.insecure_channel(channel_target(target), options=options)
            if credentials is None
            else grpc.aio.secure_channel(channel_target(target), credentials, options=options)
        )
        self._metadata = _metadata(token)
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
                return await method(
                    request, timeout=timeout, metadata=self._metadata + outgoing_metadata()
                )
            except grpc.aio.AioRpcError as exc:
                if retry is None or not retry.should_retry(exc.code(), attempt):
                    raise map_rpc_error(exc) from exc
                delay = retry.delay(attempt)
                logger.debug(
                    "%s failed with %s (attempt %d); retrying in %.2fs",
                    type(request).__name__,
                    exc.code().name,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    # -- WorkflowService ---------------------------------------------------------------

    async def start_workflow(
        self, request: workflow_service_pb2.StartWorkflowRequest
    ) -> workflow_service_pb2.StartWorkflowResponse:
        """StartWorkflow; retried because the workflow id makes it idempotent."""
        response: workflow_service_pb2.StartWorkflowResponse = await self._rpc_call(
            self._workflows.StartWorkflow, request, retry=CLIENT_RETRY
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

    def watch_workflow(self, request: workflow_service_pb2.WatchWorkflowRequest) -> Any:
        """Opens WatchWorkflow (no deadline); iterate the returned call."""
        return self._workflows.WatchWorkflow(request, metadata=self._metadata)


class SyncRpc:
    """The client RPCs over a blocking gRPC channel; same funnel as `AsyncRpc`.

    Args:
        target: ``host:port`` of the service.
        token: A bearer token sent with every call, if set.
    """

    def __init__(
        self, target: str, *, token: str | None = None, tls: TLSConfig | bool | None = None
    ) -> None:
        credentials, tls_options = channel_credentials(tls, target)
        options = channel_options() + tls_options
        self._channel = (
            grpc.insecure_channel(channel_target(target), options=options)
            if credentials is None
            else grpc.secure_channel(channel_target(target), credentials, options=options)
        )
        self._metadata = _metadata(token)
        # The generated gRPC stubs carry no annotations, hence the ignores.
        self._workflows = workflow_service_pb2_grpc.WorkflowServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._queues = queue_service_pb2_grpc.QueueServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._messages = message_service_pb2_grpc.MessageServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._events = event_service_pb2_grpc.EventServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._streams = stream_service_pb2_grpc.StreamServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def _rpc_call(
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
                return method(
                    request, timeout=timeout, metadata=self._metadata + outgoing_metadata()
                )
            except grpc.RpcError as exc:
                if retry is None or not retry.should_retry(exc.code(), attempt):
                    raise map_rpc_error(exc) from exc
                delay = retry.delay(attempt)
                logger.debug(
                    "%s failed with %s (attempt %d); retrying in %.2fs",
                    type(request).__name__,
                    exc.code().name,
                    attempt,
                    delay,
                )
                time.sleep(delay)

    def start_workflow(
        self, request: workflow_service_pb2.StartWorkflowRequest
    ) -> workflow_service_pb2.StartWorkflowResponse:
        """StartWorkflow; retried because the workflow id makes it idempotent."""
        response: workflow_service_pb2.StartWorkflowResponse = self._rpc_call(
            self._workflows.StartWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    def get_workflow(
        self, request: workflow_service_pb2.GetWorkflowRequest
    ) -> workflow_service_pb2.GetWorkflowResponse:
        """GetWorkflow."""
        response: workflow_service_pb2.GetWorkflowResponse = self._rpc_call(
            self._workflows.GetWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    def await_workflow(
        self, request: workflow_service_pb2.AwaitWorkflowRequest, *, timeout: float
    ) -> workflow_service_pb2.AwaitWorkflowResponse:
        """AwaitWorkflow; ``timeout`` is the call's deadline and must exceed the
        server-side wait in the request."""
        response: workflow_service_pb2.AwaitWorkflowResponse = self._rpc_call(
            self._workflows.AwaitWorkflow, request, timeout=timeout, retry=CLIENT_RETRY
        )
        return response

    def list_workflows(
        self, request: workflow_service_pb2.ListWorkflowsRequest
    ) -> workflow_service_pb2.ListWorkflowsResponse:
        """ListWorkflows (one page)."""
        response: workflow_service_pb2.ListWorkflowsResponse = self._rpc_call(
            self._workflows.ListWorkflows, request, retry=CLIENT_RETRY
        )
        return response

    def list_workflow_steps(
        self, request: workflow_service_pb2.ListWorkflowStepsRequest
    ) -> workflow_service_pb2.ListWorkflowStepsResponse:
        """ListWorkflowSteps (one page)."""
        response: workflow_service_pb2.ListWorkflowStepsResponse = self._rpc_call(
            self._workflows.ListWorkflowSteps, request, retry=CLIENT_RETRY
        )
        return response

    def cancel_workflow(
        self, request: workflow_service_pb2.CancelWorkflowRequest
    ) -> workflow_service_pb2.CancelWorkflowResponse:
        """CancelWorkflow; retried (cancelling twice changes nothing more)."""
        response: workflow_service_pb2.CancelWorkflowResponse = self._rpc_call(
            self._workflows.CancelWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    def resume_workflow(
        self, request: workflow_service_pb2.ResumeWorkflowRequest
    ) -> workflow_service_pb2.ResumeWorkflowResponse:
        """ResumeWorkflow; not retried (a second resume would be refused)."""
        response: workflow_service_pb2.ResumeWorkflowResponse = self._rpc_call(
            self._workflows.ResumeWorkflow, request
        )
        return response

    def fork_workflow(
        self, request: workflow_service_pb2.ForkWorkflowRequest
    ) -> workflow_service_pb2.ForkWorkflowResponse:
        """ForkWorkflow; retried: the SDK always names the new id, which makes it idempotent."""
        response: workflow_service_pb2.ForkWorkflowResponse = self._rpc_call(
            self._workflows.ForkWorkflow, request, retry=CLIENT_RETRY
        )
        return response

    def delete_workflow(
        self, request: workflow_service_pb2.DeleteWorkflowRequest
    ) -> workflow_service_pb2.DeleteWorkflowResponse:
        """DeleteWorkflow; not retried (a second delete finds nothing)."""
        response: workflow_service_pb2.DeleteWorkflowResponse = self._rpc_call(
            self._workflows.DeleteWorkflow, request
        )
        return response

    def start_workflows(
        self, request: workflow_service_pb2.StartWorkflowsRequest
    ) -> workflow_service_pb2.StartWorkflowsResponse:
        """StartWorkflows; retried because every item carries its workflow id."""
        response: workflow_service_pb2.StartWorkflowsResponse = self._rpc_call(
            self._workflows.StartWorkflows, request, retry=CLIENT_RETRY
        )
        return response

    def upsert_queue(
        self, request: queue_service_pb2.UpsertQueueRequest
    ) -> queue_service_pb2.UpsertQueueResponse:
        """UpsertQueue; retried (it stores a whole configuration)."""
        response: queue_service_pb2.UpsertQueueResponse = self._rpc_call(
            self._queues.UpsertQueue, request, retry=CLIENT_RETRY
        )
        return response

    def get_queue(
        self, request: queue_service_pb2.GetQueueRequest
    ) -> queue_service_pb2.GetQueueResponse:
        """GetQueue."""
        response: queue_service_pb2.GetQueueResponse = self._rpc_call(
            self._queues.GetQueue, request, retry=CLIENT_RETRY
        )
        return response

    def list_queues(
        self, request: queue_service_pb2.ListQueuesRequest
    ) -> queue_service_pb2.ListQueuesResponse:
        """ListQueues (one page)."""
        response: queue_service_pb2.ListQueuesResponse = self._rpc_call(
            self._queues.ListQueues, request, retry=CLIENT_RETRY
        )
        return response

    def delete_queue(
        self, request: queue_service_pb2.DeleteQueueRequest
    ) -> queue_service_pb2.DeleteQueueResponse:
        """DeleteQueue (not retried: a retry after success would say NOT_FOUND)."""
        response: queue_service_pb2.DeleteQueueResponse = self._rpc_call(
            self._queues.DeleteQueue, request
        )
        return response

    def send(self, request: message_service_pb2.SendRequest) -> message_service_pb2.SendResponse:
        """Send; retried only with an idempotency key (else a retry could send twice)."""
        response: message_service_pb2.SendResponse = self._rpc_call(
            self._messages.Send, request, retry=CLIENT_RETRY if request.idempotency_key else None
        )
        return response

    def get_event(
        self, request: event_service_pb2.GetEventRequest, *, wait: float
    ) -> event_service_pb2.GetEventResponse:
        """GetEvent; the call's deadline exceeds the server-side ``wait``."""
        response: event_service_pb2.GetEventResponse = self._rpc_call(
            self._events.GetEvent, request, timeout=wait + WAIT_MARGIN, retry=CLIENT_RETRY
        )
        return response

    def list_events(
        self, request: event_service_pb2.ListEventsRequest
    ) -> event_service_pb2.ListEventsResponse:
        """ListEvents."""
        response: event_service_pb2.ListEventsResponse = self._rpc_call(
            self._events.ListEvents, request, retry=CLIENT_RETRY
        )
        return response

    def read_stream(self, request: stream_service_pb2.ReadStreamRequest) -> Any:
        """Opens ReadStream (no deadline); iterate the returned call, mapping its
        errors with `map_rpc_error`."""
        return self._streams.ReadStream(request, metadata=self._metadata)

    def watch_workflow(self, request: workflow_service_pb2.WatchWorkflowRequest) -> Any:
        """Opens WatchWorkflow (no deadline); iterate the returned call."""
        return self._workflows.WatchWorkflow(request, metadata=self._metadata)

    def create_schedule(
        self, request: schedule_service_pb2.CreateScheduleRequest
    ) -> schedule_service_pb2.CreateScheduleResponse:
        """CreateSchedule (not retried: a retry after success would say ALREADY_EXISTS)."""
        response: schedule_service_pb2.CreateScheduleResponse = self._rpc_call(
            self._schedules.CreateSchedule, request
        )
        return response

    def get_schedule(
        self, request: schedule_service_pb2.GetScheduleRequest
    ) -> schedule_service_pb2.GetScheduleResponse:
        """GetSchedule."""
        response: schedule_service_pb2.GetScheduleResponse = self._rpc_call(
            self._schedules.GetSchedule, request, retry=CLIENT_RETRY
        )
        return response

    def list_schedules(
        self, request: schedule_service_pb2.ListSchedulesRequest
    ) -> schedule_service_pb2.ListSchedulesResponse:
        """ListSchedules (one page)."""
        response: schedule_service_pb2.ListSchedulesResponse = self._rpc_call(
            self._schedules.ListSchedules, request, retry=CLIENT_RETRY
        )
        return response

    def pause_schedule(
        self, request: schedule_service_pb2.PauseScheduleRequest
    ) -> schedule_service_pb2.PauseScheduleResponse:
        """PauseSchedule; retried (pausing twice is pausing)."""
        response: schedule_service_pb2.PauseScheduleResponse = self._rpc_call(
            self._schedules.PauseSchedule, request, retry=CLIENT_RETRY
        )
        return response

    def resume_schedule(
        self, request: schedule_service_pb2.ResumeScheduleRequest
    ) -> schedule_service_pb2.ResumeScheduleResponse:
        """ResumeSchedule; retried (resuming twice is resuming)."""
        response: schedule_service_pb2.ResumeScheduleResponse = self._rpc_call(
            self._schedules.ResumeSchedule, request, retry=CLIENT_RETRY
        )
        return response

    def delete_schedule(
        self, request: schedule_service_pb2.DeleteScheduleRequest
    ) -> schedule_service_pb2.DeleteScheduleResponse:
        """DeleteSchedule (not retried: a retry after success would say NOT_FOUND)."""
        response: schedule_service_pb2.DeleteScheduleResponse = self._rpc_call(
            self._schedules.DeleteSchedule, request
        )
        return response

    def trigger_schedule(
        self, request: schedule_service_pb2.TriggerScheduleRequest
    ) -> schedule_service_pb2.TriggerScheduleResponse:
        """TriggerSchedule (not retried: each call starts a workflow)."""
        response: schedule_service_pb2.TriggerScheduleResponse = self._rpc_call(
            self._schedules.TriggerSchedule, request
        )
        return response

    def backfill_schedule(
        self, request: schedule_service_pb2.BackfillScheduleRequest
    ) -> schedule_service_pb2.BackfillScheduleResponse:
        """BackfillSchedule; retried (tick ids make it idempotent; a retry
        after a lost success reports no ids)."""
        response: schedule_service_pb2.BackfillScheduleResponse = self._rpc_call(
            self._schedules.BackfillSchedule, request, retry=CLIENT_RETRY
        )
        return response
