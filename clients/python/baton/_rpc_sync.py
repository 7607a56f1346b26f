"""`SyncRpc`: the client RPCs over a blocking gRPC channel, one method per RPC
(the sync `Client` uses it; see `baton._rpc` for the shared part)."""

from __future__ import annotations

import time
from collections.abc import Callable
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
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from baton._rpc import (
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

__all__ = ["SyncRpc"]


class SyncRpc:
    """The client RPCs over a blocking gRPC channel; same funnel as `AsyncRpc`.

    Args:
        target: ``host:port`` of the service.
        token: A bearer token sent with every call, if set.
    """

    def __init__(
        self, target: str, *, token: str | None = None, tls: TLSConfig | bool | None = None
    ) -> None:
        self._channel: Any = open_channel(target, tls, aio=False)
        self._metadata = call_metadata(token)
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
                return method(request, timeout=timeout, metadata=with_trace(self._metadata))
            except grpc.RpcError as exc:
                if retry is None or not retry.should_retry(exc.code(), attempt):
                    raise map_rpc_error(exc) from exc
                delay = retry.delay(attempt)
                log_retry(request, exc.code(), attempt, delay)
                time.sleep(delay)

    def start_workflow(
        self,
        request: workflow_service_pb2.StartWorkflowRequest,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = CLIENT_RETRY,
    ) -> workflow_service_pb2.StartWorkflowResponse:
        """StartWorkflow; retried because the workflow id makes it idempotent.
        ``timeout`` is the call's deadline; with ``request.wait`` it must exceed
        that wait."""
        response: workflow_service_pb2.StartWorkflowResponse = self._rpc_call(
            self._workflows.StartWorkflow, request, timeout=timeout, retry=retry
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
