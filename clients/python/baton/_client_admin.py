"""`Client`'s administration of queues and schedules, from blocking code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from baton._proto.baton.v1 import queue_service_pb2, schedule_service_pb2
from baton._queues import QueueInfo, queue_info_from_proto, upsert_queue_request
from baton._rpc_sync import SyncRpc
from baton._schedules import ScheduleInfo, create_schedule_request, schedule_info_from_proto

__all__ = ["AdminOps"]


class AdminOps:
    """Queues and schedules: configuration and listing (`Client` has these)."""

    _rpc: SyncRpc

    def upsert_queue(
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
        """Creates a queue or replaces its configuration (see `QueueInfo`).

        Args:
            name: The queue's name.
            concurrency: Most running at once across all workers (per key when
                ``partitioned``); 0: no limit.
            worker_concurrency: Most running at once on one worker; 0: no limit.
            rate_limit: ``(limit, period_seconds)``: at most ``limit`` starts in
                any rolling period.
            priority_enabled: Let starts carry a ``priority``.
            partitioned: Apply ``concurrency`` per partition key.
            start_to_close_timeout: Seconds a workflow may run from dequeue.

        Raises:
            InvalidArgument: A negative limit, or a rate limit without a period.
        """
        request = upsert_queue_request(
            name,
            concurrency=concurrency,
            worker_concurrency=worker_concurrency,
            rate_limit=rate_limit,
            priority_enabled=priority_enabled,
            partitioned=partitioned,
            start_to_close_timeout=start_to_close_timeout,
        )
        return queue_info_from_proto(self._rpc.upsert_queue(request).queue)

    def get_queue(self, name: str) -> QueueInfo:
        """Returns a queue's configuration, depth and running count.

        Raises:
            NotFound: No queue has this name.
        """
        response = self._rpc.get_queue(queue_service_pb2.GetQueueRequest(name=name))
        return queue_info_from_proto(response.queue, depth=response.depth, running=response.running)

    def list_queues(self) -> list[QueueInfo]:
        """Lists every queue by name, with its counts."""
        request = queue_service_pb2.ListQueuesRequest()
        found: list[QueueInfo] = []
        while True:
            response = self._rpc.list_queues(request)
            found.extend(
                queue_info_from_proto(q.queue, depth=q.depth, running=q.running)
                for q in response.queues
            )
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    def delete_queue(self, name: str) -> None:
        """Deletes a queue.

        Raises:
            NotFound: No queue has this name.
            FailedPrecondition: Workflows wait on it or run from it.
        """
        self._rpc.delete_queue(queue_service_pb2.DeleteQueueRequest(name=name))

    # -- schedules -------------------------------------------------------------------

    def create_schedule(
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
        """Creates a cron schedule that starts ``workflow`` on every tick.

        Each tick starts the workflow with the id ``<name>-<tick>`` (the tick in
        ISO 8601 UTC), once, however many server replicas run, and with the
        arguments ``(scheduled_time, context)``: the tick as an ISO 8601 UTC
        string and ``context``. A tick more than 60 s overdue (no server was
        running) is skipped; `backfill_schedule` starts such ticks.

        Args:
            name: The schedule's name (at most 150 characters).
            workflow: The workflow's name, or a function registered with
                ``@worker.workflow``.
            cron: 5 fields (``"0 2 * * *"``: 02:00 daily), or 6 with seconds
                first (``"*/5 * * * * *"``: every five seconds).
            time_zone: The IANA time zone the cron is read in. Default: UTC.
            queue: Start the workflows on this queue. Default: start directly.
            context: A JSON-compatible value passed to every workflow.
            paused: Create it paused.

        Raises:
            InvalidArgument: An invalid cron or time zone (the error names the field).
            NotFound: The queue does not exist.
            AlreadyExists: A schedule has this name.
        """
        request = create_schedule_request(
            name, workflow, cron, time_zone=time_zone, queue=queue, context=context, paused=paused
        )
        return schedule_info_from_proto(self._rpc.create_schedule(request).schedule)

    def get_schedule(self, name: str) -> ScheduleInfo:
        """Returns a schedule.

        Raises:
            NotFound: No schedule has this name.
        """
        request = schedule_service_pb2.GetScheduleRequest(name=name)
        return schedule_info_from_proto(self._rpc.get_schedule(request).schedule)

    def list_schedules(self) -> list[ScheduleInfo]:
        """Lists every schedule by name."""
        request = schedule_service_pb2.ListSchedulesRequest()
        found: list[ScheduleInfo] = []
        while True:
            response = self._rpc.list_schedules(request)
            found.extend(schedule_info_from_proto(s) for s in response.schedules)
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    def pause_schedule(self, name: str) -> ScheduleInfo:
        """Stops a schedule from firing until resumed.

        Raises:
            NotFound: No schedule has this name.
        """
        request = schedule_service_pb2.PauseScheduleRequest(name=name)
        return schedule_info_from_proto(self._rpc.pause_schedule(request).schedule)

    def resume_schedule(self, name: str) -> ScheduleInfo:
        """Lets a paused schedule fire again from its next tick (ticks that passed
        while paused are not started).

        Raises:
            NotFound: No schedule has this name.
        """
        request = schedule_service_pb2.ResumeScheduleRequest(name=name)
        return schedule_info_from_proto(self._rpc.resume_schedule(request).schedule)

    def delete_schedule(self, name: str) -> None:
        """Deletes a schedule; the workflows it started stay.

        Raises:
            NotFound: No schedule has this name.
        """
        self._rpc.delete_schedule(schedule_service_pb2.DeleteScheduleRequest(name=name))
