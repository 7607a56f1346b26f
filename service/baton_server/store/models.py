"""The rows the store returns, as frozen dataclasses."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TERMINAL_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


@dataclass(frozen=True)
class Payload:
    """An encoded user value; the service never decodes it."""

    encoding: str
    """``json`` or ``pickle``."""
    data: bytes
    """The encoded bytes (UTF-8 text for JSON)."""


@dataclass(frozen=True)
class Failure:
    """A workflow's or step's error, recorded as data."""

    type: str
    """The error's type name."""
    message: str
    """Human-readable message."""
    traceback: str = ""
    """Where it was raised, if known."""
    details: Payload | None = None
    """Optional structured details."""

    def to_json(self) -> dict[str, Any]:
        """The JSONB form stored in Postgres."""
        doc: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.traceback:
            doc["traceback"] = self.traceback
        if self.details is not None:
            doc["details"] = {
                "encoding": self.details.encoding,
                "data": base64.b64encode(self.details.data).decode("ascii"),
            }
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> Failure | None:
        """Reads the JSONB form; ``None`` stays ``None``."""
        if doc is None:
            return None
        details = doc.get("details")
        return cls(
            type=doc.get("type", ""),
            message=doc.get("message", ""),
            traceback=doc.get("traceback", ""),
            details=(
                Payload(details["encoding"], base64.b64decode(details["data"])) if details else None
            ),
        )


def payload_from(encoding: str | None, data: bytes | None) -> Payload | None:
    """A :class:`Payload` from its two columns."""
    if encoding is None or data is None:
        return None
    return Payload(encoding, bytes(data))


@dataclass(frozen=True)
class Workflow:
    """A row of ``workflows``."""

    workflow_id: str
    workflow_name: str
    status: str
    input: Payload | None
    output: Payload | None
    error: Failure | None
    queue: str
    app_version: str
    attempt: int
    max_attempts: int
    owner_worker_id: str | None
    parent_workflow_id: str | None
    forked_from: str | None
    deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts_base: int = 0
    """The attempt at the last resume, plus one per release while waiting: the
    dispatch budget counts from it."""
    trace_carrier: dict[str, str] | None = None
    """The W3C trace context it was started in, if the caller sent one."""
    start_at: datetime | None = None
    """Not dispatched before then: a queue's delayed start, or the end of the
    wait of a workflow released while it waits."""
    wait_topic: str | None = None
    """A workflow released in a recv: the topic whose next message ends its wait."""
    wait_workflow_id: str | None = None
    """A workflow released while it awaits another: the one whose end ends its
    wait; or, with ``wait_event_key``, the one whose event it reads."""
    wait_event_key: str | None = None
    """A workflow released while it reads an event: the key whose setting ends its wait."""

    @property
    def finished(self) -> bool:
        """Whether the status is terminal."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Workflow:
        """Builds it from a ``SELECT *`` row."""
        return cls(
            workflow_id=row["workflow_id"],
            workflow_name=row["workflow_name"],
            status=row["status"],
            input=payload_from(row["input_encoding"], row["input"]),
            output=payload_from(row["output_encoding"], row["output"]),
            error=Failure.from_json(row["error"]),
            queue=row["queue"],
            app_version=row["app_version"],
            attempt=row["attempt"],
            max_attempts=row["max_attempts"],
            owner_worker_id=row["owner_worker_id"],
            parent_workflow_id=row["parent_workflow_id"],
            forked_from=row["forked_from"],
            deadline=row["deadline"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            attempts_base=row.get("attempts_base", 0),
            trace_carrier=row.get("trace_carrier"),
            start_at=row.get("start_at"),
            wait_topic=row.get("wait_topic"),
            wait_workflow_id=row.get("wait_workflow_id"),
            wait_event_key=row.get("wait_event_key"),
        )


@dataclass(frozen=True)
class Step:
    """A row of ``steps``: one journal entry."""

    workflow_id: str
    function_id: int
    step_name: str
    output: Payload | None
    error: Failure | None
    child_workflow_id: str | None
    attempt: int
    started_at: datetime | None
    completed_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Step:
        """Builds it from a ``SELECT *`` row."""
        return cls(
            workflow_id=row["workflow_id"],
            function_id=row["function_id"],
            step_name=row["step_name"],
            output=payload_from(row["output_encoding"], row["output"]),
            error=Failure.from_json(row["error"]),
            child_workflow_id=row["child_workflow_id"],
            attempt=row["attempt"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
        )
