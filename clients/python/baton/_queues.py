"""Queues as the SDK shows them, and the requests `Client` and `AsyncClient`
share for queues and batch starts (free of I/O, like `_client_shared`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

import grpc

from baton._client_shared import first_wait, start_request
from baton._convert import duration
from baton._errors import ERROR_BY_CODE, RpcError
from baton._payload import Serializer
from baton._proto.baton.v1 import queue_service_pb2, workflow_service_pb2

__all__ = ["QueueInfo", "WorkflowStart", "queue_info_from_proto", "upsert_queue_request"]


@dataclass(frozen=True)
class QueueInfo:
    """A queue's configuration, with its depth and running count when read."""

    name: str
    """The queue's name."""
    concurrency: int = 0
    """Most of its workflows running at once across all workers (per partition
    key on a partitioned queue); 0: no limit."""
    worker_concurrency: int = 0
    """Most running at once on one worker; 0: no limit."""
    rate_limit: tuple[int, float] | None = None
    """``(limit, period_seconds)``: at most ``limit`` starts in any rolling period."""
    priority_enabled: bool = False
    """Whether starts may carry a priority (lower first, FIFO within a priority)."""
    partitioned: bool = False
    """Whether ``concurrency`` applies per partition key."""
    start_to_close_timeout: float | None = None
    """Seconds a workflow may run, counted from dequeue, before it is cancelled."""
    depth: int = 0
    """Workflows waiting to start."""
    running: int = 0
    """Workflows running now."""


@dataclass(frozen=True)
class WorkflowStart:
    """One workflow to start with `Client.start_workflows`; the fields are the
    keyword arguments of `Client.start_workflow`."""

    workflow: str | Callable[..., Any]
    """The workflow's name, or a function registered with ``@worker.workflow``."""
    args: Sequence[Any] = ()
    """Its arguments (after ``ctx``)."""
    workflow_id: str | None = None
    queue: str | None = None
    app_version: str | None = None
    deduplication_id: str | None = None
    priority: int = 0
    partition_key: str | None = None
    delay: float | None = None
    start_at: datetime | None = None
    queue_timeout: float | None = None
    return_existing_duplicate: bool = False


def add_queue_options(
    request: workflow_service_pb2.StartWorkflowRequest, options: QueueOptions
) -> workflow_service_pb2.StartWorkflowRequest:
    """Sets the queue options of a StartWorkflow request (``delay`` counts from now)."""
    delay, start_at = options.get("delay"), options.get("start_at")
    if delay is not None and start_at is not None:
        raise ValueError("give delay or start_at, not both")
    request.queue = options.get("queue") or ""
    request.deduplication_id = options.get("deduplication_id") or ""
    request.priority = options.get("priority", 0)
    request.partition_key = options.get("partition_key") or ""
    request.return_existing_duplicate = options.get("return_existing_duplicate", False)
    if delay is not None:
        request.start_at.GetCurrentTime()
        request.start_at.FromNanoseconds(request.start_at.ToNanoseconds() + int(delay * 1e9))
    elif start_at is not None:
        request.start_at.FromDatetime(start_at)
    queue_timeout = options.get("queue_timeout")
    if queue_timeout is not None:
        request.queue_timeout.CopyFrom(_duration_message(queue_timeout))
    return request


def _duration_message(seconds: float) -> Any:
    from google.protobuf.duration_pb2 import Duration

    message = Duration()
    message.FromTimedelta(duration(seconds))
    return message


class QueueOptions(TypedDict, total=False):
    """The queue options of `Client.start_workflow` (see there), which a
    workflow's ``ctx.start_workflow`` takes for a child too."""

    queue: str | None
    deduplication_id: str | None
    priority: int
    partition_key: str | None
    delay: float | None
    start_at: datetime | None
    queue_timeout: float | None
    return_existing_duplicate: bool


def checked_queue_options(options: dict[str, Any], method: str) -> QueueOptions:
    """``options`` (a ``**kwargs``) when every key is a queue option; else the
    TypeError Python raises for an unexpected keyword argument."""
    unknown = sorted(set(options) - QueueOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r}")
    return options  # type: ignore[return-value]


class StartOptions(QueueOptions, total=False):
    """The keyword options of `Client.start_workflow` (see there), for the
    methods that take them all and pass them on (`Client.execute_workflow`)."""

    workflow_id: str | None
    app_version: str | None
    timeout: float | None


def full_start_request(
    serializer: Serializer,
    workflow: str | Callable[..., Any],
    args: Sequence[Any],
    **options: Unpack[StartOptions],
) -> workflow_service_pb2.StartWorkflowRequest:
    """Builds a StartWorkflow request with every option `Client.start_workflow`
    takes (the same defaults when left out)."""
    request = start_request(
        serializer,
        workflow,
        args,
        workflow_id=options.get("workflow_id"),
        queue=options.get("queue"),
        app_version=options.get("app_version"),
        timeout=options.get("timeout"),
    )
    return add_queue_options(request, options)


def waiting_start_request(
    serializer: Serializer,
    workflow: str | Callable[..., Any],
    args: Sequence[Any],
    result_timeout: float | None,
    options: StartOptions,
) -> tuple[workflow_service_pb2.StartWorkflowRequest, float]:
    """`execute_workflow`'s StartWorkflow request, waiting on the service for
    its first await slice (or ``result_timeout``, when shorter); returned with
    that wait in seconds."""
    request = full_start_request(serializer, workflow, args, **options)
    wait = first_wait(result_timeout)
    request.wait.FromTimedelta(duration(wait))
    return request, wait


def batch_request(
    serializer: Serializer, starts: Sequence[WorkflowStart]
) -> workflow_service_pb2.StartWorkflowsRequest:
    """Builds a StartWorkflows request (ids chosen here, so a retry is idempotent)."""
    items = [
        full_start_request(
            serializer,
            start.workflow,
            start.args,
            workflow_id=start.workflow_id,
            queue=start.queue,
            app_version=start.app_version,
            timeout=None,
            deduplication_id=start.deduplication_id,
            priority=start.priority,
            partition_key=start.partition_key,
            delay=start.delay,
            start_at=start.start_at,
            queue_timeout=start.queue_timeout,
            return_existing_duplicate=start.return_existing_duplicate,
        )
        for start in starts
    ]
    return workflow_service_pb2.StartWorkflowsRequest(workflows=items)


def item_error(error: workflow_service_pb2.ItemError) -> RpcError:
    """The exception StartWorkflow would have raised for one item of a batch."""
    code = next((c for c in grpc.StatusCode if c.value[0] == error.code), grpc.StatusCode.UNKNOWN)
    cls = ERROR_BY_CODE.get(code, RpcError)
    return cls(error.message, code=code, reason=error.reason)


def upsert_queue_request(
    name: str,
    *,
    concurrency: int,
    worker_concurrency: int,
    rate_limit: tuple[int, float] | None,
    priority_enabled: bool,
    partitioned: bool,
    start_to_close_timeout: float | None,
) -> queue_service_pb2.UpsertQueueRequest:
    """Builds an UpsertQueue request."""
    queue = queue_service_pb2.Queue(
        name=name,
        concurrency=concurrency,
        worker_concurrency=worker_concurrency,
        priority_enabled=priority_enabled,
        partitioned=partitioned,
    )
    if rate_limit is not None:
        limit, period = rate_limit
        queue.rate_limit.limit = limit
        queue.rate_limit.period.CopyFrom(_duration_message(period))
    if start_to_close_timeout is not None:
        queue.start_to_close_timeout.CopyFrom(_duration_message(start_to_close_timeout))
    return queue_service_pb2.UpsertQueueRequest(queue=queue)


def queue_info_from_proto(
    queue: queue_service_pb2.Queue, *, depth: int = 0, running: int = 0
) -> QueueInfo:
    """Converts a `Queue` message (and its counts)."""
    rate_limit = None
    if queue.HasField("rate_limit"):
        period = queue.rate_limit.period.ToTimedelta().total_seconds()
        rate_limit = (queue.rate_limit.limit, period)
    timeout = None
    if queue.HasField("start_to_close_timeout"):
        timeout = queue.start_to_close_timeout.ToTimedelta().total_seconds()
    return QueueInfo(
        name=queue.name,
        concurrency=queue.concurrency,
        worker_concurrency=queue.worker_concurrency,
        rate_limit=rate_limit,
        priority_enabled=queue.priority_enabled,
        partitioned=queue.partitioned,
        start_to_close_timeout=timeout,
        depth=depth,
        running=running,
    )
