"""The queue options of StartWorkflowRequest, validated into a NewStart."""

from __future__ import annotations

from baton._proto.baton.v1 import workflow_service_pb2 as pb
from baton_server.errors import InvalidArgument
from baton_server.servicers import convert, validate
from baton_server.store.starts import NewStart
from baton_server.store.workflows import NewWorkflow

# The longest timeout counted from dequeue: one year.
_MAX_QUEUE_TIMEOUT = 365 * 24 * 3600.0
_MAX_PARTITION_KEY = 200


def uses_queue(request: pb.StartWorkflowRequest) -> bool:
    """Whether the request sets the queue or any queue option."""
    return bool(
        request.queue
        or request.deduplication_id
        or request.priority
        or request.partition_key
        or request.HasField("start_at")
        or request.HasField("queue_timeout")
        or request.return_existing_duplicate
    )


def new_start(request: pb.StartWorkflowRequest, base: NewWorkflow) -> NewStart:
    """``base`` (the validated plain start) with the request's queue options."""
    options = [
        (request.deduplication_id, "deduplication_id"),
        (request.priority, "priority"),
        (request.partition_key, "partition_key"),
        (request.HasField("start_at"), "start_at"),
        (request.HasField("queue_timeout"), "queue_timeout"),
        (request.return_existing_duplicate, "return_existing_duplicate"),
    ]
    if not request.queue:
        for present, field in options:
            if present:
                raise InvalidArgument(field, "needs a queue (set `queue`)")
    else:
        validate.name(request.queue, "queue")
    if request.deduplication_id:
        validate.workflow_id(request.deduplication_id, "deduplication_id")
    if request.priority < 0:
        raise InvalidArgument("priority", "must not be negative")
    if len(request.partition_key) > _MAX_PARTITION_KEY:
        raise InvalidArgument(
            "partition_key", f"is {len(request.partition_key)} characters; the limit is 200"
        )
    queue_timeout = None
    if request.HasField("queue_timeout"):
        queue_timeout = validate.seconds(
            request.queue_timeout, "queue_timeout", default=0.0, maximum=_MAX_QUEUE_TIMEOUT
        )
        if queue_timeout <= 0:
            raise InvalidArgument("queue_timeout", "must be positive")
    return NewStart(
        workflow_id=base.workflow_id,
        workflow_name=base.workflow_name,
        input=base.input,
        queue=request.queue,
        app_version=base.app_version,
        max_attempts=base.max_attempts,
        deduplication_id=request.deduplication_id or None,
        priority=request.priority,
        partition_key=request.partition_key,
        start_at=convert.datetime_in(request.start_at, "start_at")
        if request.HasField("start_at")
        else None,
        queue_timeout=queue_timeout,
        return_existing_duplicate=request.return_existing_duplicate,
        deadline=base.deadline,
        parent_workflow_id=base.parent_workflow_id,
        trace_carrier=base.trace_carrier,
    )
