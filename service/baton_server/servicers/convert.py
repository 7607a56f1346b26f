"""Conversions between the store's dataclasses and the contract's messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from baton._proto.baton.v1 import common_pb2 as pb
from baton_server.errors import InvalidArgument
from baton_server.store.models import Failure, Payload, Step, Workflow

STATUS_TO_PROTO = {
    "ENQUEUED": pb.WORKFLOW_STATUS_ENQUEUED,
    "PENDING": pb.WORKFLOW_STATUS_PENDING,
    "SUCCESS": pb.WORKFLOW_STATUS_SUCCESS,
    "ERROR": pb.WORKFLOW_STATUS_ERROR,
    "CANCELLED": pb.WORKFLOW_STATUS_CANCELLED,
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": pb.WORKFLOW_STATUS_MAX_RECOVERY_ATTEMPTS_EXCEEDED,
}
STATUS_FROM_PROTO = {value: key for key, value in STATUS_TO_PROTO.items()}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def payload_in(message: pb.Payload) -> Payload | None:
    """A contract Payload as stored; an empty one is ``None``."""
    kind = message.WhichOneof("value")
    if kind == "json":
        return Payload("json", message.json.encode("utf-8"))
    if kind == "pickle":
        return Payload("pickle", message.pickle)
    return None


def payload_out(payload: Payload | None) -> pb.Payload | None:
    """A stored payload as a contract Payload."""
    if payload is None:
        return None
    if payload.encoding == "json":
        return pb.Payload(json=payload.data.decode("utf-8"))
    return pb.Payload(pickle=payload.data)


def failure_in(message: pb.WorkflowError) -> Failure:
    """A contract WorkflowError as stored."""
    return Failure(
        type=message.type,
        message=message.message,
        traceback=message.traceback,
        details=payload_in(message.details) if message.HasField("details") else None,
    )


def failure_out(failure: Failure | None) -> pb.WorkflowError | None:
    """A stored failure as a contract WorkflowError."""
    if failure is None:
        return None
    return pb.WorkflowError(
        type=failure.type,
        message=failure.message,
        traceback=failure.traceback,
        details=payload_out(failure.details),
    )


def timestamp(value: datetime | None) -> Timestamp | None:
    """A datetime as a Timestamp (``None`` stays unset; a naive one is local time)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.astimezone(UTC)
    # Timestamp.FromDatetime's arithmetic, a third of its cost: a hot path.
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def datetime_in(value: Timestamp, field: str) -> datetime:
    """A request's Timestamp ``field`` as an aware UTC datetime (to the microsecond).

    Raises:
        InvalidArgument: It is outside Timestamp's range (years 1 to 9999, nanos
            0 to 999,999,999).
    """
    if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos < 1_000_000_000):
        raise InvalidArgument(
            field, "is not a valid timestamp (years 1 to 9999, nanos 0 to 999,999,999)"
        )
    return _EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def workflow_out(
    workflow: Workflow, *, waiting_reason: str = "", omit_payloads: bool = False
) -> pb.Workflow:
    """A stored workflow as the contract's Workflow."""
    return pb.Workflow(
        workflow_id=workflow.workflow_id,
        workflow_name=workflow.workflow_name,
        status=STATUS_TO_PROTO[workflow.status],
        input=None if omit_payloads else payload_out(workflow.input),
        output=None if omit_payloads else payload_out(workflow.output),
        error=failure_out(workflow.error),
        queue=workflow.queue,
        app_version=workflow.app_version,
        attempt=workflow.attempt,
        max_attempts=workflow.max_attempts,
        owner_worker_id=workflow.owner_worker_id or "",
        created_at=timestamp(workflow.created_at),
        updated_at=timestamp(workflow.updated_at),
        started_at=timestamp(workflow.started_at),
        completed_at=timestamp(workflow.completed_at),
        deadline=timestamp(workflow.deadline),
        parent_workflow_id=workflow.parent_workflow_id or "",
        forked_from=workflow.forked_from or "",
        waiting_reason=waiting_reason,
    )


def step_out(step: Step) -> pb.Step:
    """A journal entry as the contract's Step."""
    message = pb.Step(
        function_id=step.function_id,
        step_name=step.step_name,
        child_workflow_id=step.child_workflow_id or "",
        started_at=timestamp(step.started_at),
        completed_at=timestamp(step.completed_at),
    )
    error = failure_out(step.error)
    if error is not None:
        message.error.CopyFrom(error)
    else:
        message.output.CopyFrom(payload_out(step.output) or pb.Payload())
    return message
