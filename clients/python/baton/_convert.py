"""Conversions between wire messages and the SDK's own values."""

from __future__ import annotations

import traceback
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from baton._errors import BatonError
from baton._payload import Serializer
from baton._proto.baton.v1 import common_pb2
from baton._types import StepInfo, WorkflowErrorInfo, WorkflowInfo, WorkflowStatus

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STATUS_FROM_PROTO: dict[int, WorkflowStatus] = {
    common_pb2.WORKFLOW_STATUS_ENQUEUED: WorkflowStatus.ENQUEUED,
    common_pb2.WORKFLOW_STATUS_PENDING: WorkflowStatus.PENDING,
    common_pb2.WORKFLOW_STATUS_SUCCESS: WorkflowStatus.SUCCESS,
    common_pb2.WORKFLOW_STATUS_ERROR: WorkflowStatus.ERROR,
    common_pb2.WORKFLOW_STATUS_CANCELLED: WorkflowStatus.CANCELLED,
    common_pb2.WORKFLOW_STATUS_MAX_RECOVERY_ATTEMPTS_EXCEEDED: (
        WorkflowStatus.MAX_RECOVERY_ATTEMPTS_EXCEEDED
    ),
}
_STATUS_TO_PROTO: dict[WorkflowStatus, common_pb2.WorkflowStatus] = {
    WorkflowStatus.ENQUEUED: common_pb2.WORKFLOW_STATUS_ENQUEUED,
    WorkflowStatus.PENDING: common_pb2.WORKFLOW_STATUS_PENDING,
    WorkflowStatus.SUCCESS: common_pb2.WORKFLOW_STATUS_SUCCESS,
    WorkflowStatus.ERROR: common_pb2.WORKFLOW_STATUS_ERROR,
    WorkflowStatus.CANCELLED: common_pb2.WORKFLOW_STATUS_CANCELLED,
    WorkflowStatus.MAX_RECOVERY_ATTEMPTS_EXCEEDED: (
        common_pb2.WORKFLOW_STATUS_MAX_RECOVERY_ATTEMPTS_EXCEEDED
    ),
}


class _Message(Protocol):
    def HasField(self, field_name: str) -> bool: ...  # protobuf's spelling


def status_from_proto(value: int) -> WorkflowStatus:
    """Maps a ``WORKFLOW_STATUS_*`` value to `WorkflowStatus`."""
    try:
        return _STATUS_FROM_PROTO[value]
    except KeyError:
        raise BatonError(f"the service sent an unknown workflow status ({value})") from None


def status_to_proto(status: WorkflowStatus | str) -> common_pb2.WorkflowStatus:
    """Maps a `WorkflowStatus` (or its name, any case) to the proto enum."""
    try:
        return _STATUS_TO_PROTO[WorkflowStatus(str(status).upper())]
    except ValueError:
        names = ", ".join(s.value for s in WorkflowStatus)
        raise ValueError(f"unknown workflow status {status!r}; expected one of {names}") from None


def datetime_from_proto(message: _Message, field: str) -> datetime | None:
    """Reads an optional Timestamp field as an aware UTC datetime (``None`` if unset)."""
    if not message.HasField(field):
        return None
    stamp: Any = getattr(message, field)
    return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def timestamp(moment: datetime) -> Timestamp:
    """An aware datetime as a Timestamp: Timestamp.FromDatetime's arithmetic at
    a third of its cost (every step's request carries one)."""
    since = moment - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def duration(seconds: float) -> timedelta:
    """A span in seconds as a timedelta, which proto constructors accept for a Duration."""
    return timedelta(seconds=seconds)


def error_info_from_proto(error: common_pb2.WorkflowError) -> WorkflowErrorInfo:
    """Converts a recorded `WorkflowError`."""
    return WorkflowErrorInfo(type=error.type, message=error.message, traceback=error.traceback)


def error_type_name(exc: BaseException) -> str:
    """The portable type name of an exception: its qualname, ``baton.``-prefixed
    for the SDK's own errors so they cannot be mistaken for user classes."""
    cls = type(exc)
    if cls.__module__ == "baton" or cls.__module__.startswith("baton."):
        return f"baton.{cls.__qualname__}"
    return cls.__qualname__


def error_to_proto(exc: BaseException) -> common_pb2.WorkflowError:
    """Records an exception as a `WorkflowError` with its formatted traceback."""
    return common_pb2.WorkflowError(
        type=error_type_name(exc),
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
    )


def workflow_info_from_proto(workflow: common_pb2.Workflow, serializer: Serializer) -> WorkflowInfo:
    """Converts a `Workflow` message, decoding its input and output."""
    error = None
    if workflow.HasField("error"):
        error = error_info_from_proto(workflow.error)
    return WorkflowInfo(
        workflow_id=workflow.workflow_id,
        name=workflow.workflow_name,
        status=status_from_proto(workflow.status),
        input=serializer.decode_args(workflow.input),
        output=serializer.decode(workflow.output),
        error=error,
        queue=workflow.queue,
        app_version=workflow.app_version,
        attempt=workflow.attempt,
        max_attempts=workflow.max_attempts,
        owner_worker_id=workflow.owner_worker_id,
        created_at=datetime_from_proto(workflow, "created_at"),
        updated_at=datetime_from_proto(workflow, "updated_at"),
        started_at=datetime_from_proto(workflow, "started_at"),
        completed_at=datetime_from_proto(workflow, "completed_at"),
        parent_workflow_id=workflow.parent_workflow_id,
        deadline=datetime_from_proto(workflow, "deadline"),
        forked_from=workflow.forked_from,
        waiting_reason=workflow.waiting_reason,
    )


def step_info_from_proto(step: common_pb2.Step, serializer: Serializer) -> StepInfo:
    """Converts a journal `Step` message, decoding its output."""
    kind = step.WhichOneof("result")
    return StepInfo(
        function_id=step.function_id,
        name=step.step_name,
        output=serializer.decode(step.output) if kind == "output" else None,
        error=error_info_from_proto(step.error) if kind == "error" else None,
        child_workflow_id=step.child_workflow_id,
        started_at=datetime_from_proto(step, "started_at"),
        completed_at=datetime_from_proto(step, "completed_at"),
    )
